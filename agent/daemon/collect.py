"""One telemetry cycle: the probes run in a child process that the daemon watches.

    plan = CollectPlan(salt_file=state_dir / SALT_FILE)
    got = await collect(plan, Budget(), Denylist.load(state_dir / DENYLIST_FILE))
    got.report     # the Report (REPORT_KIND_SCHEDULED), personal fields hashed; or None
    got.events     # WatchdogEvents of the probes stopped in this cycle
    got.error      # "" or why there is no report

Why a child: the daemon must stay light (it never imports the probes, psutil or rich),
and a probe that spins, swells or hangs in a driver must not take the daemon with it. As
osquery's watcher does with its worker, the parent samples the child's CPU time and
resident memory from /proc every ~100 ms. A probe past its budget (`Budget`: CPU seconds
and wall seconds of one probe, resident bytes of the child) is stopped: the child is
killed (SIGKILL, with its process group), a WatchdogEvent names the probe, the probe
goes on the denylist (`watchdog.py`) for `skip_for_s`, and the cycle runs again without
it. The report that arrives then says, in the stopped probe's place, that the watchdog
stopped it and until when; later cycles skip it the same way until then. `collect`
never raises for what the child does: a crash is a Collected with an error and the tail
of the child's stderr.

The child is this module run as a program:

    python -m probelink.agent.daemon.collect --progress-fd 5  < request.json

    stdin         {"plan": CollectPlan, "skip": {probe: base64 ProbeResult},
                   "parent_pid": int}; "skip" holds the result to report in place of each
                   probe not to run (the parent words it, the child only places it)
    progress fd   one line as each probe starts and ends: "start NAME", "done NAME".
                  The parent blames the oldest probe started and not done: the runner
                  abandons a probe past its own timeout but cannot stop its thread, so
                  a spinning probe may still be the one using the CPU after others ran
    stdout        "probelink-collect/1 {json}\\n" then exactly json["report_bytes"] bytes
                  of serialized Report; the child points its own fd 1 at stderr first,
                  so nothing a probe prints can be taken for the report
    stderr        anything else, tracebacks included; exit status 2 = a bad request

Everything the child needs (probes, psutil, the privacy filter) is imported inside
`_collect_here`, so importing this module costs the daemon only the contract's messages;
asyncio, in turn, is imported inside the parent's functions, as the child (which runs
this module as a program) has no use for it: it would add ~30 ms and ~3 MiB to every
child's start.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError

from probelink.agent.daemon.watchdog import (
    CPU_SECONDS,
    MIB,
    RSS_BYTES,
    WALL_SECONDS,
    Denylist,
    ProcUsage,
    describe,
    event,
    read_usage,
    stopped_reason,
)
from probelink.v1 import probe_pb2, report_pb2, status_pb2

if TYPE_CHECKING:
    import asyncio

    from probelink.probes.context import ProbeContext
    from probelink.probes.registry import ProbeSpec

log = logging.getLogger(__name__)

CHILD_MODULE = "probelink.agent.daemon.collect"
FRAME_MAGIC = b"probelink-collect/1"
# How often the parent samples the child and reads its progress.
TICK_S = 0.1
# A report is tens of kilobytes; a child writing more than this is broken.
MAX_REPORT_BYTES = 64 * MIB
# Of the child's stderr, this much of the end is kept for the error message.
STDERR_TAIL_BYTES = 4096
# After the child exits or is killed, how long its pipes may take to close (a grandchild
# such as smartctl can hold them) before the parent stops reading them.
PIPE_DRAIN_S = 5.0
EXIT_BAD_REQUEST = 2
# The child's exit status when the parent is gone (its progress pipe is closed).
EXIT_PARENT_GONE = 3

# The child's resident size at its peak, in the rusage unit (KiB on Linux).
_RUSAGE_UNIT_BYTES = 1024


@dataclass(frozen=True)
class CollectPlan:
    """What one cycle runs, on which machine, and the salt its personal fields are hashed with."""

    salt_file: Path
    # Telemetry probes to run; empty: every telemetry probe.
    probes: tuple[str, ...] = ()
    # A captured machine's sysfs tree (tests, bench fixtures); None: this machine.
    sysfs_root: Path | None = None
    # Captured `smartctl --json` outputs to judge instead of running smartctl.
    smartctl_json: tuple[Path, ...] = ()
    # Each probe's own timeout in the runner; the watchdog's budget is the backstop.
    timeout_s: float = 5.0
    # Extra modules that register probes, imported by the child (tests, site probes).
    probe_modules: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "salt_file": str(self.salt_file),
            "probes": list(self.probes),
            "sysfs_root": None if self.sysfs_root is None else str(self.sysfs_root),
            "smartctl_json": [str(p) for p in self.smartctl_json],
            "timeout_s": self.timeout_s,
            "probe_modules": list(self.probe_modules),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CollectPlan:
        """The plan `to_json` wrote; ValueError/KeyError/TypeError for anything else."""
        root = data["sysfs_root"]
        return cls(
            salt_file=Path(_text(data["salt_file"])),
            probes=tuple(_text(p) for p in data["probes"]),
            sysfs_root=None if root is None else Path(_text(root)),
            smartctl_json=tuple(Path(_text(p)) for p in data["smartctl_json"]),
            timeout_s=float(data["timeout_s"]),
            probe_modules=tuple(_text(m) for m in data["probe_modules"]),
        )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {value!r}")
    return value


@dataclass(frozen=True)
class Budget:
    """What the watchdog allows: one probe's CPU and wall time, the child's resident size."""

    cpu_seconds: float = 10.0
    rss_bytes: int = 200 * MIB
    wall_seconds: float = 120.0


@dataclass
class Collected:
    """How a cycle went. `report` is None exactly when `error` says why."""

    report: report_pb2.Report | None
    # Probes stopped in this cycle (the daemon puts them in the next report's AgentNotes).
    events: list[report_pb2.WatchdogEvent] = field(default_factory=list)
    duration_s: float = 0.0
    error: str = ""
    # Children started: 1, plus one per probe stopped.
    attempts: int = 0
    # Of the children, the largest resident size and the CPU time they used in all.
    peak_rss_bytes: int = 0
    cpu_seconds: float = 0.0


async def collect(
    plan: CollectPlan,
    budget: Budget,
    denylist: Denylist | None = None,
    *,
    skip_for_s: float = 24 * 3600.0,
    max_reruns: int = 3,
    python: str = sys.executable,
) -> Collected:
    """Run one cycle's probes in a watched child; rerun without each probe it has to stop.

    Probes on the `denylist` are not run; a probe stopped now is added to it (and the
    file saved) for `skip_for_s`. After `max_reruns` stops in one cycle it gives up with
    an error, the events so far kept: the next cycle skips those probes.
    """
    began = time.monotonic()
    now = datetime.now(UTC)
    skip: dict[str, probe_pb2.ProbeResult] = {}
    if denylist is not None:
        for name, earlier in denylist.active(now).items():
            skip[name] = _stopped_result(earlier, now_stopped=False)
    got = Collected(None)
    while True:
        got.attempts += 1
        run = await _run_child(python, plan, skip, budget)
        got.peak_rss_bytes = max(got.peak_rss_bytes, run.peak_rss_bytes)
        got.cpu_seconds += run.cpu_seconds
        if run.overrun is not None and run.overrun.probe:
            until = datetime.now(UTC) + timedelta(seconds=skip_for_s)
            stopped = run.overrun.event(until)
            got.events.append(stopped)
            log.warning("%s", stopped_reason(stopped))
            if denylist is not None:
                denylist.add(stopped)
                denylist.save()
            skip[stopped.probe] = _stopped_result(stopped, now_stopped=True)
            if got.attempts > max_reruns:
                got.error = (
                    f"gave up after stopping {got.attempts} probes in one cycle "
                    f"({', '.join(e.probe for e in got.events)}); the next cycle skips them"
                )
                break
            continue
        if run.overrun is not None:
            got.error = (
                f"{describe(run.overrun.event())} and was stopped; no probe was running, "
                "so none is skipped"
            )
        elif run.report is None:
            got.error = run.error
        got.report = run.report
        break
    got.duration_s = time.monotonic() - began
    if got.error:
        log.warning("telemetry cycle without a report: %s", got.error)
    return got


def _stopped_result(e: report_pb2.WatchdogEvent, *, now_stopped: bool) -> probe_pb2.ProbeResult:
    """What a report says in place of a probe the watchdog stopped, now or in a past cycle.

    Stopped in this cycle: ERROR, it ran and could not finish. Stopped before: SKIP, it did
    not run. Both carry the error, typed as the runner types a timeout or a memory kill.
    """
    kind = (
        probe_pb2.PROBE_ERROR_KIND_TIMEOUT
        if e.resource == WALL_SECONDS
        else probe_pb2.PROBE_ERROR_KIND_RESOURCE_LIMIT
    )
    return probe_pb2.ProbeResult(
        status=status_pb2.STATUS_ERROR if now_stopped else status_pb2.STATUS_SKIP,
        evidence=stopped_reason(e),
        error=probe_pb2.ProbeError(kind=kind, message=describe(e), source=e.probe),
    )


@dataclass(frozen=True)
class _Overrun:
    """A resource the child passed: `probe` is "" when no probe was running."""

    probe: str
    resource: str
    observed: float
    budget: float

    def event(self, until: datetime | None = None) -> report_pb2.WatchdogEvent:
        return event(
            self.probe or "the collector", self.resource, self.observed, self.budget, until
        )


@dataclass
class _ChildRun:
    report: report_pb2.Report | None = None
    error: str = ""
    overrun: _Overrun | None = None
    peak_rss_bytes: int = 0
    cpu_seconds: float = 0.0


class _Meters:
    """The child's progress, and what the current culprit has used since it started."""

    def __init__(self, budget: Budget, start: float) -> None:
        self.budget = budget
        # Probe -> (wall, cpu) when it started; in start order, the oldest first.
        self.running: dict[str, tuple[float, float]] = {}
        # The same for the collector's own work (start-up, between probes, the report).
        self.own_since = (start, 0.0)
        self.partial = b""

    def feed(self, data: bytes, wall: float, cpu: float) -> None:
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            what, _, name = line.decode("utf-8", "replace").partition(" ")
            if what == "start" and name:
                self.running[name] = (wall, cpu)
            elif what == "done":
                self.running.pop(name, None)
                if not self.running:
                    self.own_since = (wall, cpu)

    def overrun(self, usage: ProcUsage, wall: float) -> _Overrun | None:
        culprit = next(iter(self.running), "")
        since_wall, since_cpu = self.running[culprit] if culprit else self.own_since
        b = self.budget
        if usage.rss_bytes > b.rss_bytes:
            return _Overrun(culprit, RSS_BYTES, usage.rss_bytes, b.rss_bytes)
        if usage.cpu_seconds - since_cpu > b.cpu_seconds:
            return _Overrun(culprit, CPU_SECONDS, usage.cpu_seconds - since_cpu, b.cpu_seconds)
        if wall - since_wall > b.wall_seconds:
            return _Overrun(culprit, WALL_SECONDS, wall - since_wall, b.wall_seconds)
        return None


async def _run_child(
    python: str, plan: CollectPlan, skip: Mapping[str, probe_pb2.ProbeResult], budget: Budget
) -> _ChildRun:
    import asyncio

    request = {
        "plan": plan.to_json(),
        "skip": {
            name: base64.b64encode(r.SerializeToString()).decode() for name, r in skip.items()
        },
        "parent_pid": os.getpid(),
    }
    progress_r, progress_w = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            python,
            "-m",
            CHILD_MODULE,
            "--progress-fd",
            str(progress_w),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=(progress_w,),
            # Its own process group, so a kill takes the helpers it started along.
            start_new_session=True,
        )
    except OSError as err:
        os.close(progress_r)
        return _ChildRun(error=f"cannot start the collector ({python}): {err}")
    finally:
        os.close(progress_w)
    os.set_blocking(progress_r, False)
    try:
        return await _watch(proc, json.dumps(request).encode(), progress_r, budget)
    finally:
        os.close(progress_r)
        if proc.returncode is None:  # cancelled (the daemon is stopping): leave no child
            _kill(proc)
            with contextlib.suppress(ProcessLookupError):
                await asyncio.shield(proc.wait())


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


async def _watch(
    proc: asyncio.subprocess.Process, request: bytes, progress_r: int, budget: Budget
) -> _ChildRun:
    import asyncio

    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdout = asyncio.create_task(_read_capped(proc.stdout, MAX_REPORT_BYTES + 4096))
    stderr = asyncio.create_task(_read_tail(proc.stderr, STDERR_TAIL_BYTES))
    exited = asyncio.create_task(proc.wait())
    # A task of its own: a child that never reads its stdin must not stall the watchdog.
    sent = asyncio.create_task(_send(proc.stdin, request))
    try:
        run = _ChildRun()
        meters = _Meters(budget, time.monotonic())
        usage = ProcUsage(0.0, 0)
        while not exited.done():
            wall = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                usage = read_usage(proc.pid)
            run.peak_rss_bytes = max(run.peak_rss_bytes, usage.rss_bytes)
            meters.feed(_read_available(progress_r), wall, usage.cpu_seconds)
            run.overrun = meters.overrun(usage, wall)
            if run.overrun is not None:
                _kill(proc)
                break
            await asyncio.wait({exited}, timeout=TICK_S)
        returncode = await exited
        run.cpu_seconds = usage.cpu_seconds
        out, err_tail = await _drained(stdout, stderr)
    finally:
        for task in (stdout, stderr, exited, sent):
            task.cancel()
    if run.overrun is not None:
        return run
    report, frame = _parse_frame(out)
    with contextlib.suppress(ValueError, TypeError):  # only figures for the log
        run.peak_rss_bytes = max(run.peak_rss_bytes, int(frame.get("peak_rss_bytes", 0)))
        run.cpu_seconds = max(run.cpu_seconds, float(frame.get("cpu_seconds", 0.0)))
    tail = err_tail.decode("utf-8", "replace").strip()
    if returncode != 0:
        run.error = f"the collector child {_exit_words(returncode)} without a report"
    elif isinstance(report, str):
        run.error = f"the collector child's report could not be read ({report})"
    else:
        run.report = report
        return run
    if tail:
        run.error += f": {tail}"
    return run


async def _send(stdin: asyncio.StreamWriter, request: bytes) -> None:
    with contextlib.suppress(OSError):  # a child dead on arrival shows as its exit status
        stdin.write(request)
        await stdin.drain()
        stdin.close()


def _exit_words(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


async def _drained(stdout: asyncio.Task[bytes], stderr: asyncio.Task[bytes]) -> tuple[bytes, bytes]:
    import asyncio

    done, _ = await asyncio.wait({stdout, stderr}, timeout=PIPE_DRAIN_S)
    out = stdout.result() if stdout in done else b""
    err = stderr.result() if stderr in done else b""
    return out, err


def _read_available(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Everything up to `limit` bytes; the rest is read and thrown away."""
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


async def _read_tail(stream: asyncio.StreamReader, keep: int) -> bytes:
    """The last `keep` bytes: a child that floods its stderr costs the daemon no memory."""
    tail = b""
    while chunk := await stream.read(65536):
        tail = (tail + chunk)[-keep:]
    return tail


def _parse_frame(out: bytes) -> tuple[report_pb2.Report | str, dict[str, Any]]:
    """The report from the child's stdout, or words saying what is wrong with the output."""
    if not out:
        return "no output", {}
    header, newline, payload = out.partition(b"\n")
    magic, _, meta = header.partition(b" ")
    if magic != FRAME_MAGIC or not newline:
        return f"output does not start with {FRAME_MAGIC.decode()}", {}
    try:
        frame = json.loads(meta)
        size = int(frame["report_bytes"])
    except (ValueError, KeyError, TypeError):
        return "a damaged output header", {}
    if len(payload) != size:
        return f"a report of {len(payload)} bytes where {size} were announced", frame
    try:
        return report_pb2.Report.FromString(payload), frame
    except DecodeError as err:
        return f"a report that does not parse: {err}", frame


# ---------------------------------------------------------------------------------------
# The child.


class BadRequest(Exception):
    """The child cannot run this request; the message says why (exit status 2)."""


def child_main(argv: list[str]) -> int:
    """The child process: read the request, run the probes, write the report."""
    if len(argv) != 2 or argv[0] != "--progress-fd" or not argv[1].isdigit():
        print(f"usage: python -m {CHILD_MODULE} --progress-fd N < request.json", file=sys.stderr)
        return EXIT_BAD_REQUEST
    progress_fd = int(argv[1])
    # Not for the helpers the probes start: a progress line is a promise only we make.
    os.set_inheritable(progress_fd, False)
    report_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        request = json.loads(sys.stdin.buffer.read())
        plan = CollectPlan.from_json(request["plan"])
        skip = {
            _text(name): probe_pb2.ProbeResult.FromString(base64.b64decode(_text(blob)))
            for name, blob in request["skip"].items()
        }
        parent_pid = int(request["parent_pid"])
    except (ValueError, KeyError, TypeError, AttributeError, DecodeError) as err:
        print(f"collect: not a collect request on stdin: {err!r}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    try:
        report = _collect_here(plan, skip, parent_pid, _announcer(progress_fd))
    except BadRequest as err:
        print(f"collect: {err}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    payload = report.SerializeToString()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    meta = {
        "report_bytes": len(payload),
        "peak_rss_bytes": usage.ru_maxrss * _RUSAGE_UNIT_BYTES,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }
    with os.fdopen(report_fd, "wb") as out:
        out.write(FRAME_MAGIC + b" " + json.dumps(meta).encode() + b"\n" + payload)
    return 0


def _announcer(fd: int) -> Callable[[str], None]:
    def say(line: str) -> None:
        try:
            os.write(fd, line.encode() + b"\n")
        except OSError:
            # The parent is gone (or closed our pipe): nobody is left to take the report.
            os._exit(EXIT_PARENT_GONE)

    return say


def _collect_here(
    plan: CollectPlan,
    skip: Mapping[str, probe_pb2.ProbeResult],
    parent_pid: int,
    say: Callable[[str], None],
) -> report_pb2.Report:
    import importlib

    from probelink.agent.privacy import PrivacyFilter, load_or_create_salt
    from probelink.agent.report_builder import build_report
    from probelink.agent.selfcheck import SelfCheckPlan
    from probelink.agent.state import StateError
    from probelink.probes.context import ProbeContext
    from probelink.probes.errors import ProbeProblem
    from probelink.probes.routine_process import _die_with_parent
    from probelink.probes.runner import run_telemetry

    # Killed with the daemon, not left running probes nobody waits for.
    _die_with_parent(parent_pid)
    try:
        privacy = PrivacyFilter(load_or_create_salt(plan.salt_file))
    except StateError as err:
        raise BadRequest(str(err)) from None
    root = plan.sysfs_root
    if root is not None and not root.is_dir():
        raise BadRequest(f"the sysfs root {root} is not a directory")
    try:
        ctx = ProbeContext.for_machine(
            root, smartctl_json=list(plan.smartctl_json), timeout_s=plan.timeout_s
        )
    except ProbeProblem as err:
        raise BadRequest(str(err)) from None
    for module in plan.probe_modules:
        try:
            importlib.import_module(module)
        except Exception as err:
            raise BadRequest(f"cannot import the probe module {module}: {err!r}") from None
    try:
        telemetry, routines = SelfCheckPlan(plan.probes).select()
    except KeyError as err:
        raise BadRequest(str(err.args[0])) from None
    if routines:
        names = ", ".join(s.name for s in routines)
        raise BadRequest(f"{names}: a routine; a telemetry cycle runs telemetry probes only")
    specs = [_placed(s, skip[s.name]) if s.name in skip else _announced(s, say) for s in telemetry]
    # What run_selfcheck does for telemetry, with these wrapped probes in its place.
    started = datetime.now(UTC)
    results = run_telemetry(specs, ctx)
    report = build_report(results, ctx, kind=report_pb2.REPORT_KIND_SCHEDULED, started=started)
    return privacy.apply(report)


def _announced(spec: ProbeSpec, say: Callable[[str], None]) -> ProbeSpec:
    """`spec`, saying on the progress fd when it starts and ends (its support check too)."""
    from dataclasses import replace

    from probelink.probes.errors import Unsupported

    def run(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
        say(f"start {spec.name}")
        try:
            reason = spec.unsupported_reason(ctx)
            if reason:
                raise Unsupported(reason)
            return list(spec.fn(ctx))
        finally:
            say(f"done {spec.name}")

    return replace(spec, fn=run, support=None)


def _placed(spec: ProbeSpec, stopped: probe_pb2.ProbeResult) -> ProbeSpec:
    """`spec` replaced by the result the parent gave for it: it does not run."""
    from dataclasses import replace

    def run(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
        out = probe_pb2.ProbeResult()
        out.CopyFrom(stopped)
        return [out]

    return replace(spec, fn=run, support=None)


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
