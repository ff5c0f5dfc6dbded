"""The agent daemon's costs: idle resources, and how fast a backlog drains after an outage.

    .venv/bin/python bench/agent.py [--idle-seconds 60] [--backlog 10000] [--runs 3] [--json]

1. Idle. A real server (`probelink-server serve`, SQLite) and `probelink-agent run` on
   this machine, connected, its first report delivered; then its CPU time (the sum of
   every thread's /proc/PID/task/*/schedstat, nanoseconds) and resident memory (sampled
   each second) over `--idle-seconds`. The baseline, measured the same way in the same
   run: a bare grpc.aio client that enrolls and holds one idle Connect stream, importing
   only grpc and the contract (the design brief's "idle bidirectional stream").
2. Delivery. The agent is connected and enrolled; the server is killed (the outage);
   `--backlog` corpus reports are spooled the way the daemon's producer spools them;
   the server comes back on the same port and data dir; the time from its port opening
   to the agent's spool being empty gives reports/s. The ceiling, in the same run: the
   server-core bench's durable ingest with one streaming client (bench/ingest.py), whose
   reports are pre-signed and pre-compressed before its clock starts.

Results go to bench/results/agent.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ingest
from corpus import build_corpus
from selfcheck import REPO

from probelink.agent.daemon.produce import spool_report
from probelink.agent.daemon.status import SPOOL_FILE, read_status
from probelink.agent.daemon.watchdog import read_usage
from probelink.agent.spool import Spool
from probelink.v1 import report_pb2

AGENT = Path(sys.executable).parent / "probelink-agent"
SERVER = Path(sys.executable).parent / "probelink-server"
MIB = 1 << 20
TARGET_RSS_MIB, TARGET_CPU_PERCENT = 45.0, 0.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


class Server:
    """`probelink-server serve` on a fixed port and data dir, so it can come back."""

    def __init__(self, tmp: Path) -> None:
        self.data_dir = tmp / "server"
        self.port = free_port()
        self.port_file = tmp / "port"
        self.log = tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start it; the monotonic time its port opened."""
        self.port_file.unlink(missing_ok=True)
        argv = [str(SERVER), "serve", "--listen", self.target, "--data-dir", str(self.data_dir)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*argv, "--port-file", str(self.port_file)], stdout=out, stderr=out
            )
        wait_for(lambda: self.port_file.exists() and self.port_file.read_text(), 60, "the server")
        return time.monotonic()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of `pid`, in nanoseconds (schedstat's first field)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        # A thread may end between the listing and the read.
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


def watch_idle(pid: int, seconds: float) -> dict[str, float]:
    """CPU % and resident memory of `pid` over `seconds` of idling."""
    start_cpu, start = cpu_ns(pid), time.monotonic()
    samples = []
    while time.monotonic() - start < seconds:
        samples.append(read_usage(pid).rss_bytes)
        time.sleep(1.0)
    used = cpu_ns(pid) - start_cpu
    span = time.monotonic() - start
    return {
        "cpu_percent": 100.0 * used / 1e9 / span,
        "rss_mib_mean": statistics.fmean(samples) / MIB,
        "rss_mib_max": max(samples) / MIB,
        "seconds": span,
    }


def start_agent(server: Server, state: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    argv = [
        str(AGENT),
        "run",
        "--server",
        server.target,
        "--enroll-secret-file",
        str(server.data_dir / "enroll.secret"),
        "--state-dir",
        str(state),
        "--interval",
        "86400",
        "--jitter",
        "0",
        *extra,
    ]
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=out)


def measure_idle(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="probelink-bench-agent-") as tmp_name:
        tmp = Path(tmp_name)
        server = Server(tmp)
        server.start()
        agent = start_agent(server, tmp / "agent", tmp / "agent.log")
        baseline = subprocess.Popen(
            [sys.executable, __file__, "--baseline-client", server.target, str(server.data_dir)],
            stdout=subprocess.PIPE,
        )
        try:
            wait_for(lambda: read_status(tmp / "agent")["acked"] >= 1, 60, "the first ack")
            assert baseline.stdout is not None
            if baseline.stdout.readline().strip() != b"connected":
                raise RuntimeError("the baseline client did not connect")
            time.sleep(2.0)  # let start-up settle: the collector child has exited
            # The two idle side by side over the same minute: the same machine noise.
            results: dict[str, dict[str, float]] = {}

            async def both() -> None:
                agent_job = asyncio.to_thread(watch_idle, agent.pid, seconds)
                base_job = asyncio.to_thread(watch_idle, baseline.pid, seconds)
                results["agent"], results["baseline"] = await asyncio.gather(agent_job, base_job)

            asyncio.run(both())
            status = read_status(tmp / "agent")
            if status["link"] != "connected":
                raise RuntimeError(f"the agent did not stay connected: {status}")
            results["agent"]["vm_hwm_mib"] = _hwm(agent.pid)
            results["baseline"]["vm_hwm_mib"] = _hwm(baseline.pid)
        finally:
            for proc in (agent, baseline):
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
            server.stop()
    return results


def _hwm(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_delivery(backlog: int) -> dict[str, Any]:
    corpus = build_corpus(min(backlog, 2000))
    with tempfile.TemporaryDirectory(prefix="probelink-bench-agent-") as tmp_name:
        tmp = Path(tmp_name)
        server = Server(tmp)
        server.start()
        state = tmp / "agent"
        agent = start_agent(
            server, state, tmp / "agent.log", "--backoff-initial", "0.05", "--backoff-max", "0.1"
        )
        try:
            wait_for(lambda: read_status(state)["acked"] >= 1, 60, "the first ack")
            server.kill()  # the outage
            with Spool(state / SPOOL_FILE, max_bytes=1 << 34, max_reports=1 << 30) as spool:
                for i in range(backlog):
                    report = report_pb2.Report.FromString(corpus[i % len(corpus)])
                    report.report_id = str(uuid.uuid4())
                    spool_report(spool, report, [])
            opened = server.start()
            done = wait_for(
                lambda: read_status(state)["spool_reports"] == 0 and time.monotonic(),
                600,
                "the backlog to drain",
            )
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)
            server.stop()
        conn_stored = _stored(server.data_dir)
    span = done - opened
    return {
        "reports": backlog,
        "seconds": span,
        "per_second": backlog / span,
        "stored": conn_stored,
    }


def _stored(data_dir: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(data_dir / "probelink.db")
    try:
        return int(conn.execute("SELECT count(*) FROM reports").fetchone()[0])
    finally:
        conn.close()


def baseline_client(target: str, data_dir: str) -> None:
    """A bare grpc.aio client: enroll, open Connect, say hello, then only wait."""
    import grpc

    from probelink.signing import DeviceKey
    from probelink.v1 import gateway_pb2, gateway_pb2_grpc

    async def hold() -> None:
        secret = (Path(data_dir) / "enroll.secret").read_text().strip()
        async with grpc.aio.insecure_channel(target) as channel:
            stub = gateway_pb2_grpc.AgentGatewayServiceStub(channel)
            enrolled = await stub.Enroll(
                gateway_pb2.EnrollRequest(
                    enroll_secret=secret,
                    identity=report_pb2.DeviceIdentity(model="baseline"),
                    device_public_key=DeviceKey.generate().public_key,
                ),
                timeout=30,
            )
            call = stub.Connect(metadata=(("authorization", f"Bearer {enrolled.credential}"),))
            await call.write(gateway_pb2.ConnectRequest(hello=gateway_pb2.ConnectHello()))
            await call.initial_metadata()
            print("connected", flush=True)
            await asyncio.Event().wait()

    asyncio.run(hold())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--baseline-client", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_client:
        baseline_client(*args.baseline_client)
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("idle agent and bare stream, side by side"):
        idle = measure_idle(args.idle_seconds)
    deliveries, ceilings = [], []
    for run in range(args.runs):
        with console.status(f"run {run + 1}/{args.runs}: a {args.backlog}-report backlog"):
            deliveries.append(measure_delivery(args.backlog))
        with console.status(f"run {run + 1}/{args.runs}: the ingest ceiling, one client"):
            ceilings.append(ingest.measure(1, args.backlog).rate.per_second)
    delivery = statistics.median(d["per_second"] for d in deliveries)
    ceiling = statistics.median(ceilings)
    result = {
        "machine": {"cpus": os.cpu_count()},
        "idle": idle,
        "delivery": {
            "runs": deliveries,
            "median_per_second": delivery,
            "ingest_ceiling_one_client_per_second": ceiling,
            "ratio_to_ceiling": delivery / ceiling,
        },
        "targets": {"idle_rss_mib": TARGET_RSS_MIB, "idle_cpu_percent": TARGET_CPU_PERCENT},
    }
    out = REPO / "bench" / "results" / "agent.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    a, b = idle["agent"], idle["baseline"]
    print(f"idle over {a['seconds']:.0f} s:")
    print(
        f"  agent     RSS {a['rss_mib_mean']:.1f} MiB (max {a['rss_mib_max']:.1f}, "
        f"peak {a['vm_hwm_mib']:.1f}), CPU {a['cpu_percent']:.3f} %   "
        f"targets <= {TARGET_RSS_MIB:g} MiB, <= {TARGET_CPU_PERCENT} %"
    )
    print(
        f"  baseline  RSS {b['rss_mib_mean']:.1f} MiB (max {b['rss_mib_max']:.1f}), "
        f"CPU {b['cpu_percent']:.3f} %   (bare grpc.aio stream)"
    )
    each = ", ".join(f"{d['per_second']:,.0f}" for d in deliveries)
    print(
        f"delivery of {args.backlog} spooled reports after an outage: {delivery:,.0f}/s "
        f"(median of {args.runs}; runs {each})"
    )
    print(
        f"  ingest ceiling, one client, same run: {ceiling:,.0f}/s -> "
        f"{delivery / ceiling:.2f}x the ceiling"
    )


if __name__ == "__main__":
    main()
