"""Real agent daemons and real servers for the daemon's tests.

    with ServerProcess(tmp_path / "server") as server:
        agent = AgentProcess(tmp_path / "agent", server.address, server.data_dir / SECRET)
        agent.start()
        agent.wait(lambda s: s["link"] == "connected")
        prefill(agent.spool_path, varied_reports(100))   # a backlog, as after an outage
        wait_until(lambda: len(stored_ids(server.data_dir)) == 100)
        agent.kill()                                     # kill -9

The agent is `python -m probelink.agent.daemon.cli` — exactly what `probelink-agent run`
runs — on a captured fixture machine, its log appended to a file next to its state dir
(a pipe nobody reads would fill and block it).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from probelink.agent.daemon.produce import spool_report
from probelink.agent.daemon.status import SPOOL_FILE, read_status
from probelink.agent.spool import Spool
from probelink.channel import bearer, open_channel
from probelink.v1 import report_pb2, reports_pb2, reports_pb2_grpc

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MACHINE = FIXTURES / "machines" / "laptop-worn-battery" / "sys"
SECRET = "enroll.secret"
SPOOL_BOUND = 1 << 40


# What the daemon logs once a report's put has committed.
SPOOLED = re.compile(r"spooled report ([0-9a-f-]{36})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    """Poll until `condition()` is truthy; its value. TimeoutError names `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what or condition}")
        time.sleep(0.05)


class AgentProcess:
    def __init__(
        self,
        state_dir: Path,
        server: str,
        secret_file: Path | None,
        *args: str,
        interval: float = 3600,
    ) -> None:
        self.state_dir = state_dir
        self.log_path = state_dir.parent / f"{state_dir.name}.log"
        self.argv = [
            sys.executable,
            "-m",
            "probelink.agent.daemon.cli",
            "--server",
            server,
            "--state-dir",
            str(state_dir),
            "--sysfs-root",
            str(MACHINE),
            "--interval",
            str(interval),
            # The first report at once (no spread): tests wait for it.
            "--jitter",
            "0",
            "--backoff-initial",
            "0.05",
            "--backoff-max",
            "0.5",
            "--spool-poll",
            "0.1",
            *(["--enroll-secret-file", str(secret_file)] if secret_file else []),
            *args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def spool_path(self) -> Path:
        return self.state_dir / SPOOL_FILE

    def start(self) -> AgentProcess:
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log)
        return self

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def status(self) -> dict[str, Any]:
        return read_status(self.state_dir)

    def wait(
        self, condition: Callable[[dict[str, Any]], Any], timeout: float = 60
    ) -> dict[str, Any]:
        """Poll `status` until `condition` holds for it; that status."""

        def check() -> dict[str, Any] | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the agent exited {self.proc.returncode}:\n{self.log()}")
            status = self.status()
            return status if condition(status) else None

        try:
            found: dict[str, Any] = wait_until(check, timeout)
        except TimeoutError:
            raise TimeoutError(f"status now: {self.status()}\nlog:\n{self.log()}") from None
        return found

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def prefill(spool_path: Path, reports: Iterable[report_pb2.Report]) -> list[str]:
    """Spool reports the way the daemon's producer does; their ids."""
    ids = []
    with Spool(spool_path, max_bytes=SPOOL_BOUND, max_reports=1 << 30) as spool:
        for report in reports:
            spool_report(spool, report, [])
            ids.append(report.report_id)
    return ids


def stored_ids(data_dir: Path) -> list[str]:
    """Every report id in a server's SQLite database, one row each (duplicates show)."""
    conn = sqlite3.connect(data_dir / "probelink.db", timeout=30)
    try:
        return [row[0] for row in conn.execute("SELECT report_id FROM reports")]
    finally:
        conn.close()


def integrity(data_dir: Path) -> str:
    conn = sqlite3.connect(data_dir / "probelink.db", timeout=30)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def spool_evicted_on_server(address: str, token: str) -> dict[str, int]:
    """Every stored report's id and the evictions it told (ListReports, all pages)."""
    channel = open_channel(address)
    try:
        stub = reports_pb2_grpc.ReportsServiceStub(channel)
        out: dict[str, int] = {}
        page = ""
        while True:
            response = stub.ListReports(
                reports_pb2.ListReportsRequest(page_size=500, page_token=page),
                metadata=bearer(token),
                timeout=30,
            )
            out.update({r.report_id: r.spool_evicted for r in response.reports})
            page = response.next_page_token
            if not page:
                return out
    finally:
        channel.close()
