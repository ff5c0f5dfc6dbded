"""The collector: real child processes on the captured machines, and probes that misbehave.

What a cycle reports is checked against what `probelink-agent check --json` reports for
the same tree, run as a real process: the same results, personal fields hashed with the
cycle's salt. The misbehaving probes (`misbehaving_probes.py`) are imported by the child
only, named in the plan: this process never imports them, so they never reach the
registry that other tests list.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from google.protobuf import json_format

from probelink.agent.daemon.collect import (
    CHILD_MODULE,
    EXIT_BAD_REQUEST,
    Budget,
    CollectPlan,
    collect,
)
from probelink.agent.daemon.watchdog import (
    CPU_SECONDS,
    DENYLIST_FILE,
    MIB,
    RSS_BYTES,
    WALL_SECONDS,
    Denylist,
    describe,
    stopped_reason,
    until_of,
)
from probelink.agent.privacy import PrivacyFilter
from probelink.probes.registry import ROUTINE, SYSTEM, TELEMETRY, ProbeSpec, all_probes
from probelink.probes.runner import timed_out
from probelink.v1 import probe_pb2, report_pb2, status_pb2
from tests.conftest import MACHINES

AGENT_CHECK = (sys.executable, "-m", "probelink.agent.cli", "check", "--json")
REPO = Path(__file__).resolve().parents[2]
LAPTOP = MACHINES / "laptop-worn-battery" / "sys"
MACHINE_NAMES = sorted(p.name for p in MACHINES.iterdir() if (p / "sys").is_dir())
SKIP_FOR_S = 3600.0
# Each probe's own timeout in the runner, set past the watchdog's budgets so that the
# watchdog is the one to act.
PATIENT_S = 60.0


# The probes of `tests/agent/misbehaving_probes.py`, by name (see its docstring).
TEST_PROBES = "tests.agent.misbehaving_probes"
BURNS_CPU = "watchdogtest.burns_cpu"
HOGS_MEMORY = "watchdogtest.hogs_memory"
SLEEPS_FOREVER = "watchdogtest.sleeps_forever"
CRASHES = "watchdogtest.crashes"
PRINTS = "watchdogtest.prints"
BEHAVES = "watchdogtest.behaves"

ERROR, SKIP, PASS = status_pb2.STATUS_ERROR, status_pb2.STATUS_SKIP, status_pb2.STATUS_PASS
RESOURCE_LIMIT = probe_pb2.PROBE_ERROR_KIND_RESOURCE_LIMIT
TIMEOUT = probe_pb2.PROBE_ERROR_KIND_TIMEOUT


@pytest.fixture(autouse=True)
def child_finds_the_test_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child imports `tests.agent.misbehaving_probes`: it needs the checkout on its path."""
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{path}" if path else str(REPO))


@functools.cache
def checked(machine: str) -> report_pb2.Report:
    """What `probelink-agent check --json --sysfs-root` reports for a captured machine."""
    proc = subprocess.run(
        [*AGENT_CHECK, "--sysfs-root", str(MACHINES / machine / "sys")],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode in (0, 1), proc.stderr
    printed = json.loads(proc.stdout)
    # The one key beside the report's own: what the service network told this device.
    assert isinstance(printed.pop("advisories"), list)
    return json_format.ParseDict(printed, report_pb2.Report())


def settled(report: report_pb2.Report) -> report_pb2.Report:
    """`report` without what differs from run to run: id, kind, times, durations."""
    out = report_pb2.Report()
    out.CopyFrom(report)
    for name in ("report_id", "kind", "started_at", "finished_at"):
        out.ClearField(name)
    for r in out.results:
        r.ClearField("duration")
    return out


def without_durations(results: list[probe_pb2.ProbeResult]) -> list[probe_pb2.ProbeResult]:
    return [r for r in settled(report_pb2.Report(results=results)).results]


def real_probes() -> list[str]:
    names = [s.name for s in all_probes(TELEMETRY)]
    assert not [n for n in names if n.startswith("watchdogtest.")], "test probes leaked"
    return names


def test_importing_the_collector_costs_the_daemon_no_probes() -> None:
    code = (
        "import sys, probelink.agent.daemon.collect, probelink.agent.daemon.watchdog\n"
        "heavy = ('probelink.probes', 'psutil', 'rich', 'typer', 'pyudev')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("machine", MACHINE_NAMES)
async def test_a_cycle_reports_what_check_reports_with_personal_fields_hashed(
    machine: str, tmp_path: Path
) -> None:
    salt_file = tmp_path / "privacy-salt"
    plan = CollectPlan(salt_file=salt_file, sysfs_root=MACHINES / machine / "sys")
    got = await collect(plan, Budget())
    assert (got.error, got.events, got.attempts) == ("", [], 1)
    assert got.report is not None
    assert got.report.kind == report_pb2.REPORT_KIND_SCHEDULED
    assert got.peak_rss_bytes > 0 and got.cpu_seconds > 0
    # The child made the salt (0600) and hashed with it: the same as the filter does.
    assert salt_file.stat().st_mode & 0o777 == 0o600
    salt = salt_file.read_bytes()
    assert settled(got.report) == settled(PrivacyFilter(salt).apply(checked(machine)))


async def test_personal_fields_are_hashed_with_the_deployments_salt(tmp_path: Path) -> None:
    salt = bytes(range(32))
    (tmp_path / "salt").write_bytes(salt)
    got = await collect(CollectPlan(salt_file=tmp_path / "salt", sysfs_root=LAPTOP), Budget())
    assert got.report is not None
    original = checked("laptop-worn-battery")
    serial = original.device.serial_number
    assert serial
    digest = hmac.new(salt, serial.encode(), hashlib.sha256).hexdigest()[:32]
    assert got.report.device.serial_number == "h:" + digest
    assert serial.encode() not in got.report.SerializeToString()
    hostnames = [r.os.hostname for r in got.report.results if r.WhichOneof("data") == "os"]
    assert hostnames == [""]


@pytest.mark.parametrize(
    ("culprit", "budget", "resource", "kind"),
    [
        pytest.param(BURNS_CPU, Budget(cpu_seconds=1.0), CPU_SECONDS, RESOURCE_LIMIT, id="cpu"),
        pytest.param(
            HOGS_MEMORY, Budget(rss_bytes=200 * MIB), RSS_BYTES, RESOURCE_LIMIT, id="memory"
        ),
        pytest.param(SLEEPS_FOREVER, Budget(wall_seconds=3.0), WALL_SECONDS, TIMEOUT, id="wall"),
    ],
)
async def test_a_probe_over_budget_is_stopped_named_and_skipped_until_its_time(
    culprit: str,
    budget: Budget,
    resource: str,
    kind: probe_pb2.ProbeErrorKind.ValueType,
    tmp_path: Path,
) -> None:
    real = real_probes()
    half = len(real) // 2
    plan = CollectPlan(
        salt_file=tmp_path / "salt",
        sysfs_root=LAPTOP,
        # In the middle: the probes after it must report too.
        probes=(*real[:half], culprit, *real[half:]),
        timeout_s=PATIENT_S,
        probe_modules=(TEST_PROBES,),
    )
    denylist_path = tmp_path / "state" / DENYLIST_FILE
    before = datetime.now(UTC)
    got = await collect(plan, budget, Denylist.load(denylist_path), skip_for_s=SKIP_FOR_S)
    after = datetime.now(UTC)

    assert (got.error, got.attempts, len(got.events)) == ("", 2, 1)
    stopped = got.events[0]
    assert (stopped.probe, stopped.resource) == (culprit, resource)
    assert stopped.observed > stopped.budget == getattr(budget, resource)
    span = timedelta(seconds=SKIP_FOR_S)
    assert before + span <= until_of(stopped) <= after + span
    # The rest of the report arrived, as `check` reports it.
    salt = plan.salt_file.read_bytes()
    want = without_durations(
        list(PrivacyFilter(salt).apply(checked("laptop-worn-battery")).results)
    )
    assert got.report is not None
    results = without_durations(list(got.report.results))
    in_place = probe_pb2.ProbeResult(
        probe=culprit,
        category=SYSTEM,
        kind=TELEMETRY,
        status=ERROR,
        evidence=stopped_reason(stopped),
        error=probe_pb2.ProbeError(kind=kind, message=describe(stopped), source=culprit),
    )
    n = sum(1 for r in want if r.probe in real[:half])
    assert results == [*want[:n], in_place, *want[n:]]

    # Kept in the state dir: a new cycle (or a restarted agent) skips it without running it.
    assert Denylist.load(denylist_path).active() == {culprit: stopped}
    again = await collect(plan, budget, Denylist.load(denylist_path), skip_for_s=SKIP_FOR_S)
    assert (again.error, again.attempts, again.events) == ("", 1, [])
    assert again.report is not None
    in_place.status = SKIP
    assert without_durations(list(again.report.results)) == [*want[:n], in_place, *want[n:]]


async def test_an_expired_stop_lets_the_probe_run_again(tmp_path: Path) -> None:
    plan = CollectPlan(
        salt_file=tmp_path / "salt",
        probes=(BURNS_CPU, BEHAVES),
        sysfs_root=LAPTOP,
        timeout_s=PATIENT_S,
        probe_modules=(TEST_PROBES,),
    )
    denylist = Denylist(tmp_path / DENYLIST_FILE)
    budget = Budget(cpu_seconds=1.0)
    # Skipped for no time at all: stopped, rerun without it, but not skipped next time.
    first = await collect(plan, budget, denylist, skip_for_s=0.0)
    assert [e.probe for e in first.events] == [BURNS_CPU] and first.attempts == 2
    second = await collect(plan, budget, Denylist.load(denylist.path), skip_for_s=0.0)
    assert [e.probe for e in second.events] == [BURNS_CPU] and second.attempts == 2


async def test_reruns_are_capped_and_the_next_cycle_skips_what_was_stopped(
    tmp_path: Path,
) -> None:
    plan = CollectPlan(
        salt_file=tmp_path / "salt",
        probes=(BURNS_CPU, HOGS_MEMORY, BEHAVES),
        sysfs_root=LAPTOP,
        timeout_s=PATIENT_S,
        probe_modules=(TEST_PROBES,),
    )
    budget = Budget(cpu_seconds=1.0, rss_bytes=200 * MIB)
    denylist = Denylist.load(tmp_path / DENYLIST_FILE)
    got = await collect(plan, budget, denylist, max_reruns=1)
    assert got.report is None
    assert [(e.probe, e.resource) for e in got.events] == [
        (BURNS_CPU, CPU_SECONDS),
        (HOGS_MEMORY, RSS_BYTES),
    ]
    assert got.error == (
        f"gave up after stopping 2 probes in one cycle ({BURNS_CPU}, {HOGS_MEMORY}); "
        "the next cycle skips them"
    )
    assert got.attempts == 2

    again = await collect(plan, budget, Denylist.load(denylist.path), max_reruns=1)
    assert (again.error, again.attempts, again.events) == ("", 1, [])
    assert again.report is not None
    assert [(r.probe, r.status) for r in again.report.results] == [
        (BURNS_CPU, SKIP),
        (HOGS_MEMORY, SKIP),
        (BEHAVES, PASS),
    ]


async def test_the_runners_own_timeout_acts_first_when_it_is_shorter(tmp_path: Path) -> None:
    plan = CollectPlan(
        salt_file=tmp_path / "salt",
        probes=(SLEEPS_FOREVER, BEHAVES),
        sysfs_root=LAPTOP,
        timeout_s=0.5,
        probe_modules=(TEST_PROBES,),
    )
    got = await collect(plan, Budget(wall_seconds=60.0))
    # No watchdog event: the runner abandoned the probe, and the child still finished.
    assert (got.error, got.events, got.attempts) == ("", [], 1)
    assert got.report is not None
    sleeper = ProbeSpec(SLEEPS_FOREVER, SYSTEM, TELEMETRY, "", lambda ctx: [])
    want = [
        *timed_out(sleeper, 0.5),
        probe_pb2.ProbeResult(
            probe=BEHAVES, category=SYSTEM, kind=TELEMETRY, status=PASS, evidence="all is well"
        ),
    ]
    assert without_durations(list(got.report.results)) == without_durations(want)


async def test_what_a_probe_prints_cannot_pass_for_the_report(tmp_path: Path) -> None:
    plan = CollectPlan(
        salt_file=tmp_path / "salt",
        probes=(PRINTS, BEHAVES),
        sysfs_root=LAPTOP,
        probe_modules=(TEST_PROBES,),
    )
    got = await collect(plan, Budget())
    assert got.error == ""
    assert got.report is not None
    assert [(r.probe, r.status) for r in got.report.results] == [
        (PRINTS, PASS),
        (BEHAVES, PASS),
    ]


async def test_a_child_that_crashes_gives_a_clean_error(tmp_path: Path) -> None:
    plan = CollectPlan(
        salt_file=tmp_path / "salt",
        probes=(BEHAVES, CRASHES),
        sysfs_root=LAPTOP,
        probe_modules=(TEST_PROBES,),
    )
    got = await collect(plan, Budget(), Denylist(tmp_path / DENYLIST_FILE))
    assert (got.report, got.events, got.attempts) == (None, [], 1)
    assert got.error.startswith("the collector child was killed by SIGABRT without a report: ")
    assert "watchdogtest: about to abort" in got.error
    # A crash is not a budget: nothing is skipped for it.
    assert not (tmp_path / DENYLIST_FILE).exists()


def _bad_request(case: str, tmp_path: Path) -> tuple[CollectPlan, str]:
    salt = tmp_path / "salt"
    if case == "unknown probe":
        return CollectPlan(salt, probes=("nope.nothing",)), "no probe named 'nope.nothing'"
    if case == "routine":
        routine = all_probes(ROUTINE)[0].name
        return (
            CollectPlan(salt, probes=(routine,)),
            f"{routine}: a routine; a telemetry cycle runs telemetry probes only",
        )
    if case == "missing sysfs root":
        missing = tmp_path / "missing"
        return (
            CollectPlan(salt, sysfs_root=missing),
            f"the sysfs root {missing} is not a directory",
        )
    if case == "damaged salt":
        damaged = tmp_path / "damaged-salt"
        damaged.write_bytes(b"short")
        return (
            CollectPlan(damaged, sysfs_root=LAPTOP),
            f"the privacy salt {damaged} holds 5 bytes, not 32",
        )
    assert case == "probe module that does not import"
    return (
        CollectPlan(salt, probe_modules=("tests.agent.no_such_probes",)),
        "cannot import the probe module tests.agent.no_such_probes: "
        "ModuleNotFoundError(\"No module named 'tests.agent.no_such_probes'\")",
    )


@pytest.mark.parametrize(
    "case",
    [
        "unknown probe",
        "routine",
        "missing sysfs root",
        "damaged salt",
        "probe module that does not import",
    ],
)
async def test_a_request_the_child_cannot_run_is_a_clear_error(case: str, tmp_path: Path) -> None:
    plan, says = _bad_request(case, tmp_path)
    got = await collect(plan, Budget())
    assert (got.report, got.events, got.attempts) == (None, [], 1)
    prefix = f"the collector child exited with status {EXIT_BAD_REQUEST} without a report: "
    assert got.error.startswith(prefix + "collect: " + says), got.error


async def test_the_collectors_own_overrun_stops_it_and_skips_no_probe(tmp_path: Path) -> None:
    # Smaller than any Python process: over budget before its first probe starts.
    budget = Budget(rss_bytes=1 * MIB)
    denylist = Denylist(tmp_path / DENYLIST_FILE)
    got = await collect(CollectPlan(tmp_path / "salt", sysfs_root=LAPTOP), budget, denylist)
    assert (got.report, got.events, got.attempts) == (None, [], 1)
    assert got.error.startswith("the collector used ")
    assert got.error.endswith(
        " MiB of memory, over its budget of 1 MiB and was stopped; no probe was running, "
        "so none is skipped"
    )
    assert denylist.active() == {}


@pytest.mark.parametrize(
    ("output", "says"),
    [
        pytest.param(b"", "no output", id="nothing"),
        pytest.param(b"hello\n", "output does not start with probelink-collect/1", id="magic"),
        pytest.param(
            b"probelink-collect/1 {",
            "output does not start with probelink-collect/1",
            id="no-newline",
        ),
        pytest.param(b"probelink-collect/1 [1]\n", "a damaged output header", id="header"),
        pytest.param(
            b'probelink-collect/1 {"report_bytes": 10}\nabc',
            "a report of 3 bytes where 10 were announced",
            id="short",
        ),
        pytest.param(
            b'probelink-collect/1 {"report_bytes": 3, "peak_rss_bytes": "x"}\n\xff\xff\xff',
            "a report that does not parse: Error parsing message with type "
            "'probelink.v1.Report': Wire format was corrupt",
            id="corrupt",
        ),
    ],
)
async def test_a_child_whose_output_is_damaged_gives_a_clear_error(
    output: bytes, says: str, tmp_path: Path
) -> None:
    # A stand-in for the interpreter that answers any request with `output`, exit 0.
    (tmp_path / "output").write_bytes(output)
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\ncat >/dev/null\ncat '{tmp_path / 'output'}'\n")
    fake.chmod(0o755)
    got = await collect(CollectPlan(tmp_path / "salt"), Budget(), python=str(fake))
    assert (got.report, got.events, got.attempts) == (None, [], 1)
    assert got.error == f"the collector child's report could not be read ({says})"


async def test_a_python_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-python"
    got = await collect(CollectPlan(salt_file=tmp_path / "salt"), Budget(), python=str(missing))
    assert got.report is None
    assert got.error.startswith(f"cannot start the collector ({missing}): [Errno 2]")


@pytest.mark.parametrize(
    ("argv", "stdin", "says"),
    [
        ([], b"", f"usage: python -m {CHILD_MODULE} --progress-fd N < request.json"),
        (["--progress-fd", "PROGRESS"], b"not json", "collect: not a collect request on stdin:"),
        (
            ["--progress-fd", "PROGRESS"],
            b'{"plan": {}}',
            "collect: not a collect request on stdin:",
        ),
    ],
)
def test_the_child_refuses_what_is_not_a_request(argv: list[str], stdin: bytes, says: str) -> None:
    r, w = os.pipe()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", CHILD_MODULE, *(str(w) if a == "PROGRESS" else a for a in argv)],
            input=stdin,
            capture_output=True,
            pass_fds=(w,),
            timeout=60,
        )
    finally:
        os.close(r)
        os.close(w)
    assert proc.returncode == EXIT_BAD_REQUEST
    assert proc.stdout == b""
    assert proc.stderr.decode().startswith(says)


def _collector_children(of: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in of.children(recursive=True):
        try:
            if CHILD_MODULE in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


async def test_cancelling_a_cycle_leaves_no_child(tmp_path: Path) -> None:
    plan = CollectPlan(
        salt_file=tmp_path / "salt",
        probes=(SLEEPS_FOREVER,),
        sysfs_root=LAPTOP,
        timeout_s=PATIENT_S,
        probe_modules=(TEST_PROBES,),
    )
    task = asyncio.create_task(collect(plan, Budget()))
    me = psutil.Process()
    deadline = time.monotonic() + 30
    while not (children := _collector_children(me)):
        assert time.monotonic() < deadline, "the collector child never started"
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not psutil.pid_exists(children[0].pid)


def test_a_child_dies_with_a_daemon_killed_by_sigkill(tmp_path: Path) -> None:
    plan = CollectPlan(
        salt_file=tmp_path / "salt",
        probes=(SLEEPS_FOREVER,),
        sysfs_root=LAPTOP,
        timeout_s=PATIENT_S,
        probe_modules=(TEST_PROBES,),
    )
    code = (
        "import asyncio, json, sys\n"
        "from probelink.agent.daemon.collect import Budget, CollectPlan, collect\n"
        "plan = CollectPlan.from_json(json.loads(sys.argv[1]))\n"
        "asyncio.run(collect(plan, Budget()))\n"
    )
    daemon = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(plan.to_json())], stdin=subprocess.DEVNULL
    )
    try:
        parent = psutil.Process(daemon.pid)
        found: list[psutil.Process] = []

        def started() -> bool:
            found[:] = _collector_children(parent)
            return bool(found)

        _wait_for(started, "the collector child to start")
        daemon.kill()
        daemon.wait(timeout=30)

        def gone() -> bool:
            try:
                return found[0].status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        _wait_for(gone, "the orphaned collector child to die")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
