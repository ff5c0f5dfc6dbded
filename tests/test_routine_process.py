"""Tests of the routine watchdog with real child processes, budgets and signals.

The routines are in `tests/routines_for_tests.py` (a child imports them by module name).
Budgets are functional, never timed: a routine either stays well inside them or runs
forever / grows without end, so no assertion depends on how fast this machine is.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias

import pytest
from google.protobuf import json_format

from probelink.probes import registry
from probelink.probes.context import LIVE_SYSFS, ProbeContext
from probelink.probes.psutil_source import PsutilSnapshot
from probelink.probes.registry import ROUTINE, SYSTEM, ProbeSpec
from probelink.probes.results import ERROR, FAIL, PASS, SKIP
from probelink.probes.routine_process import run_routine
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import probe_pb2, routine_pb2, status_pb2

# Tests that start child processes take a fraction of a second each.
slow = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024

RUNNING = routine_pb2.ROUTINE_STATE_RUNNING
WAITING = routine_pb2.ROUTINE_STATE_WAITING
FINISHED = routine_pb2.ROUTINE_STATE_FINISHED
K = probe_pb2

if TYPE_CHECKING:
    Status: TypeAlias = status_pb2.Status.ValueType
    State: TypeAlias = routine_pb2.RoutineState.ValueType
    Outcome: TypeAlias = routine_pb2.RoutineOutcome.ValueType
    ErrorKind: TypeAlias = probe_pb2.ProbeErrorKind.ValueType


@pytest.fixture(scope="module")
def t() -> Iterator[ModuleType]:
    """The test routines, registered for this module's tests only.

    They are imported here rather than at the top so that they are not in the registry
    while other test modules list or run every routine, and taken out afterwards.
    """
    module = importlib.import_module("tests.routines_for_tests")
    if any(name not in registry._REGISTRY for name in module.NAMES):
        module = importlib.reload(module)  # taken out by an earlier run in this process
    yield module
    for name in module.NAMES:
        registry._REGISTRY.pop(name, None)


@pytest.fixture
def ctx(tmp_path: Path) -> ProbeContext:
    return ProbeContext(sysfs=SysfsRoot(tmp_path))


def spec(name: str) -> ProbeSpec:
    return registry.get(name)


def settled(r: probe_pb2.ProbeResult) -> probe_pb2.ProbeResult:
    """`r` without what differs from run to run (duration, peak memory), once both are checked."""
    assert r.duration.ToNanoseconds() > 0
    assert r.routine.HasField("peak_rss_bytes") and r.routine.peak_rss_bytes > 0
    out = probe_pb2.ProbeResult()
    out.CopyFrom(r)
    out.ClearField("duration")
    out.routine.ClearField("peak_rss_bytes")
    return out


def expected(
    name: str,
    status: Status,
    evidence: str,
    *,
    subject: str = "",
    error: probe_pb2.ProbeError | None = None,
    **routine: Any,
) -> probe_pb2.ProbeResult:
    return probe_pb2.ProbeResult(
        probe=name,
        category=SYSTEM,
        kind=ROUTINE,
        status=status,
        evidence=evidence,
        subject=subject,
        error=error,
        routine=routine_pb2.RoutineResult(routine=name, **routine),
    )


def update(
    name: str, state: State, percent: int, message: str, **extra: Any
) -> routine_pb2.RoutineUpdate:
    return routine_pb2.RoutineUpdate(
        routine=name,
        state=state,
        percent=percent,
        message=message,
        **extra,
    )


def error(kind: ErrorKind, message: str, source: str) -> probe_pb2.ProbeError:
    return probe_pb2.ProbeError(kind=kind, message=message, source=source)


# --- routines that end by themselves -------------------------------------------------------


@slow
def test_a_passing_routine_streams_its_progress_in_order(t: ModuleType, ctx: ProbeContext) -> None:
    updates: list[routine_pb2.RoutineUpdate] = []
    r = run_routine(spec("selftest.passes"), ctx, on_update=updates.append)
    name = "selftest.passes"
    assert updates == [
        update(name, RUNNING, 0, "starting"),
        update(name, RUNNING, 30, "writing"),
        update(name, RUNNING, 60, "reading back"),
        update(name, RUNNING, 90, "comparing"),
    ]
    assert settled(r) == expected(
        name,
        PASS,
        "4096 of 4096 bytes came back intact",
        subject="ttyUSB0",
        outcome=routine_pb2.ROUTINE_OUTCOME_PASSED,
        reason="4096 of 4096 bytes came back intact",
        percent=100,
        last_state=FINISHED,
        serial_loopback=t.LOOPBACK,
    )


@slow
def test_a_failing_routine_is_a_fail_with_its_detail(t: ModuleType, ctx: ProbeContext) -> None:
    r = run_routine(spec("selftest.fails"), ctx)
    reason = "read 12.5 MiB/s, below the 50 MiB/s expected"
    assert settled(r) == expected(
        "selftest.fails",
        FAIL,
        reason,
        subject="/dev/sda",
        outcome=routine_pb2.ROUTINE_OUTCOME_FAILED,
        reason=reason,
        percent=100,
        last_state=FINISHED,
        storage_read_speed=t.SLOW_READ,
    )


@slow
def test_an_unsupported_routine_is_skipped_with_its_reason(
    t: ModuleType, ctx: ProbeContext
) -> None:
    r = run_routine(spec("selftest.unsupported"), ctx)
    assert settled(r) == expected(
        "selftest.unsupported",
        SKIP,
        "this machine has no battery",
        outcome=routine_pb2.ROUTINE_OUTCOME_UNSUPPORTED,
        reason="this machine has no battery",
        last_state=RUNNING,
    )


@slow
def test_a_routine_that_raises_is_an_internal_error_not_a_fail(
    t: ModuleType, ctx: ProbeContext
) -> None:
    r = run_routine(spec("selftest.raises"), ctx)
    reason = "ZeroDivisionError: division by zero"
    assert settled(r) == expected(
        "selftest.raises",
        ERROR,
        f"the routine failed unexpectedly: {reason}",
        error=error(K.PROBE_ERROR_KIND_INTERNAL, reason, "selftest.raises"),
        outcome=routine_pb2.ROUTINE_OUTCOME_RUNTIME_ERROR,
        reason=reason,
        percent=20,
        last_state=RUNNING,
    )


@slow
def test_a_source_error_keeps_its_kind_across_the_pipe(t: ModuleType, ctx: ProbeContext) -> None:
    r = run_routine(spec("selftest.source_error"), ctx)
    reason = "ttyUSB0 could not be opened: device or resource busy"
    assert settled(r) == expected(
        "selftest.source_error",
        ERROR,
        f"could not run: {reason}",
        error=error(K.PROBE_ERROR_KIND_UNAVAILABLE, reason, "ttyUSB0"),
        outcome=routine_pb2.ROUTINE_OUTCOME_RUNTIME_ERROR,
        reason=reason,
        last_state=RUNNING,
    )


@slow
@pytest.mark.parametrize(
    ("answer", "status", "outcome", "reason"),
    [
        (True, PASS, routine_pb2.ROUTINE_OUTCOME_PASSED, "charging started"),
        (False, FAIL, routine_pb2.ROUTINE_OUTCOME_FAILED, "nobody plugged in the charger"),
    ],
)
def test_an_inquiry_is_answered_through_the_pipe(
    t: ModuleType, ctx: ProbeContext, answer: bool, status: Status, outcome: Outcome, reason: str
) -> None:
    asked: list[tuple[str, str]] = []
    updates: list[routine_pb2.RoutineUpdate] = []

    def ask(code: str, question: str) -> bool:
        asked.append((code, question))
        return answer

    r = run_routine(spec("selftest.asks"), ctx, ask=ask, on_update=updates.append)
    name, question = "selftest.asks", "Plug in the charger, then press Enter."
    assert asked == [("plug_in_charger", question)]
    assert updates == [
        update(name, RUNNING, 0, "starting"),
        update(
            name,
            WAITING,
            0,
            question,
            inquiry=routine_pb2.RoutineInquiry(code="plug_in_charger", question=question),
        ),
        update(name, RUNNING, 0, "continuing"),
    ]
    assert settled(r) == expected(
        name, status, reason, outcome=outcome, reason=reason, percent=100, last_state=FINISHED
    )


@slow
def test_the_context_asks_nobody_unless_run_routine_is_given_an_asker(
    t: ModuleType, ctx: ProbeContext
) -> None:
    # ctx.ask is the default asker of run_routine: here, the context's default (nobody).
    r = run_routine(spec("selftest.asks"), ctx)
    assert r.status == FAIL
    assert r.evidence == "nobody plugged in the charger"


@slow
def test_time_spent_waiting_for_a_person_does_not_count(t: ModuleType, ctx: ProbeContext) -> None:
    def slow_person(code: str, question: str) -> bool:
        time.sleep(1.5)  # longer than the routine's whole 1 s budget
        return True

    r = run_routine(spec("selftest.asks"), ctx, ask=slow_person)
    assert r.routine.outcome == routine_pb2.ROUTINE_OUTCOME_PASSED
    assert r.evidence == "charging started"


@slow
def test_an_asker_that_breaks_counts_as_nobody_answering(t: ModuleType, ctx: ProbeContext) -> None:
    def no_terminal(code: str, question: str) -> bool:
        raise EOFError

    r = run_routine(spec("selftest.asks"), ctx, ask=no_terminal)
    assert (r.status, r.evidence) == (FAIL, "nobody plugged in the charger")


@slow
def test_the_context_reaches_the_child_with_live_sources_recreated(t: ModuleType) -> None:
    live = ProbeContext.for_machine(limits={"selftest.limit": 3})
    live.ask = lambda code, question: True  # stays behind: the child asks through the pipe
    r = run_routine(spec("selftest.context"), live, ask=lambda code, question: True)
    psutil_name = getattr(live.psutil, "__name__", "NoneType")
    assert r.evidence == (
        f"sysfs={LIVE_SYSFS} live=True psutil={psutil_name} udev={live.udev() is not None} "
        "limit=3 asked=False"
    )


# --- budgets ------------------------------------------------------------------------------


@slow
def test_a_routine_past_its_time_budget_is_killed_and_named(
    t: ModuleType, ctx: ProbeContext
) -> None:
    r = run_routine(spec("selftest.sleeps_forever"), ctx)
    reason = (
        "selftest.sleeps_forever exceeded its time budget of 0.5 s "
        "and was killed at 20 % while running"
    )
    assert settled(r) == expected(
        "selftest.sleeps_forever",
        ERROR,
        reason,
        subject="BAT0",
        error=error(K.PROBE_ERROR_KIND_TIMEOUT, reason, "selftest.sleeps_forever"),
        outcome=routine_pb2.ROUTINE_OUTCOME_KILLED,
        reason=reason,
        percent=20,
        last_state=RUNNING,
        battery_discharge=t.PARTIAL,
    )


@slow
def test_a_routine_that_keeps_growing_is_killed_for_memory(
    t: ModuleType, ctx: ProbeContext
) -> None:
    r = run_routine(spec("selftest.grows_slowly"), ctx)
    assert r.status == ERROR
    assert r.routine.outcome == routine_pb2.ROUTINE_OUTCOME_KILLED
    assert r.error.kind == K.PROBE_ERROR_KIND_RESOURCE_LIMIT
    # Usually the watchdog's RSS sampling catches it ("grew by 52 MiB, over ..."); on a
    # machine too busy to sample in time, the address-space cap refuses the allocation.
    assert r.evidence.startswith("selftest.grows_slowly ")
    assert "its memory budget of 50 MiB" in r.evidence
    assert r.error.message == r.evidence == r.routine.reason
    assert r.routine.peak_rss_bytes > 50 * MIB
    assert 0 < r.routine.percent < 50  # stopped long before it held its 400 MiB


@slow
def test_an_allocation_too_fast_to_sample_is_refused_by_the_cap(
    t: ModuleType, ctx: ProbeContext
) -> None:
    r = run_routine(spec("selftest.grabs_at_once"), ctx)
    reason = (
        "selftest.grabs_at_once ran out of its memory budget of 50 MiB at 10 % "
        "(an allocation past it was refused)"
    )
    assert settled(r) == expected(
        "selftest.grabs_at_once",
        ERROR,
        reason,
        error=error(K.PROBE_ERROR_KIND_RESOURCE_LIMIT, reason, "selftest.grabs_at_once"),
        outcome=routine_pb2.ROUTINE_OUTCOME_KILLED,
        reason=reason,
        percent=10,
        last_state=RUNNING,
    )
    assert r.routine.peak_rss_bytes < 300 * MIB  # refused before it was ever resident


# --- cancelling and dying -------------------------------------------------------------------


def cancel_at(percent: int, cancel: threading.Event) -> Callable[[routine_pb2.RoutineUpdate], None]:
    def on_update(u: routine_pb2.RoutineUpdate) -> None:
        if u.percent == percent:
            cancel.set()

    return on_update


@slow
def test_a_cancelled_routine_stops_and_keeps_its_partial_detail(
    t: ModuleType, ctx: ProbeContext
) -> None:
    cancel = threading.Event()
    r = run_routine(
        spec("selftest.waits_for_cancel"), ctx, on_update=cancel_at(40, cancel), cancel=cancel
    )
    reason = "selftest.waits_for_cancel was stopped by its caller at 40 %"
    assert settled(r) == expected(
        "selftest.waits_for_cancel",
        ERROR,
        reason,
        subject="BAT0",
        error=error(K.PROBE_ERROR_KIND_CANCELLED, reason, "selftest.waits_for_cancel"),
        outcome=routine_pb2.ROUTINE_OUTCOME_CANCELLED,
        reason=reason,
        percent=40,
        last_state=RUNNING,
        battery_discharge=t.PARTIAL,
    )


@slow
def test_a_routine_deaf_to_cancel_is_killed_after_the_grace(
    t: ModuleType, ctx: ProbeContext
) -> None:
    cancel = threading.Event()
    r = run_routine(
        spec("selftest.ignores_cancel"),
        ctx,
        on_update=cancel_at(40, cancel),
        cancel=cancel,
        cancel_grace_s=0.5,
    )
    reason = (
        "selftest.ignores_cancel was stopped by its caller at 40 %; "
        "it did not stop within 0.5 s and was killed"
    )
    # The partial detail is the parent's copy: the child could not report it.
    assert settled(r) == expected(
        "selftest.ignores_cancel",
        ERROR,
        reason,
        subject="BAT0",
        error=error(K.PROBE_ERROR_KIND_CANCELLED, reason, "selftest.ignores_cancel"),
        outcome=routine_pb2.ROUTINE_OUTCOME_CANCELLED,
        reason=reason,
        percent=40,
        last_state=RUNNING,
        battery_discharge=t.PARTIAL,
    )


@slow
def test_a_cancel_before_the_routine_starts_stops_it_at_once(
    t: ModuleType, ctx: ProbeContext
) -> None:
    cancel = threading.Event()
    cancel.set()
    r = run_routine(spec("selftest.passes"), ctx, cancel=cancel)
    assert r.routine.outcome == routine_pb2.ROUTINE_OUTCOME_CANCELLED
    assert r.evidence == "selftest.passes was stopped by its caller at 0 %"


@slow
def test_a_child_killed_from_outside_is_a_runtime_error(t: ModuleType, ctx: ProbeContext) -> None:
    def kill_it(u: routine_pb2.RoutineUpdate) -> None:
        if u.message.startswith("pid "):
            os.kill(int(u.message.removeprefix("pid ")), signal.SIGKILL)

    r = run_routine(spec("selftest.waits_for_cancel"), ctx, on_update=kill_it)
    reason = (
        "selftest.waits_for_cancel stopped without a result: its process was killed by signal "
        "SIGKILL at 40 % while running"
    )
    assert settled(r) == expected(
        "selftest.waits_for_cancel",
        ERROR,
        reason,
        subject="BAT0",
        error=error(K.PROBE_ERROR_KIND_INTERNAL, reason, "selftest.waits_for_cancel"),
        outcome=routine_pb2.ROUTINE_OUTCOME_RUNTIME_ERROR,
        reason=reason,
        percent=40,
        last_state=RUNNING,
        battery_discharge=t.PARTIAL,
    )


@slow
def test_a_context_that_cannot_reach_a_child_is_an_error(t: ModuleType, tmp_path: Path) -> None:
    # A test seam holding a lambda cannot be pickled, so no child can be given it.
    ctx = ProbeContext(sysfs=SysfsRoot(tmp_path, read=lambda path: b""))
    r = run_routine(spec("selftest.passes"), ctx)
    assert r.status == ERROR
    assert r.error.kind == K.PROBE_ERROR_KIND_UNAVAILABLE
    assert r.evidence.startswith("selftest.passes could not be started in a child process: ")
    assert r.routine.outcome == routine_pb2.ROUTINE_OUTCOME_RUNTIME_ERROR


def _not_importable(ctx: ProbeContext, run: object) -> None:
    raise AssertionError("never runs: its module cannot be imported in the child")


_not_importable.__module__ = "tests.no_such_module"


@slow
def test_a_routine_whose_module_cannot_be_loaded_is_an_error(ctx: ProbeContext) -> None:
    lost = ProbeSpec(
        "selftest.unloadable", SYSTEM, ROUTINE, "Lost", _not_importable, time_budget_s=30
    )
    r = run_routine(lost, ctx)
    reason = (
        "selftest.unloadable could not be loaded: "
        "ModuleNotFoundError: No module named 'tests.no_such_module'"
    )
    assert settled(r) == expected(
        "selftest.unloadable",
        ERROR,
        f"could not run: {reason}",
        error=error(K.PROBE_ERROR_KIND_INTERNAL, reason, "tests.no_such_module"),
        outcome=routine_pb2.ROUTINE_OUTCOME_RUNTIME_ERROR,
        reason=reason,
        last_state=routine_pb2.ROUTINE_STATE_INITIALIZED,
    )


# --- Ctrl-C, for real: SIGINT to the process group of a program running a routine -----------

SCRIPT = """
import signal, sys, threading
from google.protobuf import json_format
from probelink.probes import registry
from probelink.probes.context import ProbeContext
from probelink.probes.routine_process import run_routine
from probelink.probes.sysread import SysfsRoot
import tests.routines_for_tests


def on_update(u):
    if u.percent == 40:
        print("ready", u.message, flush=True)


def ask(code, question):
    print("ready", code, flush=True)
    threading.Event().wait()  # a person who never answers; Ctrl-C is the way out


if __name__ == "__main__":
    # As at a terminal: a runner started in the background (`pytest &`) hands its
    # children SIGINT ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    name, root = sys.argv[1:]
    r = run_routine(registry.get(name), ProbeContext(sysfs=SysfsRoot(root)), ask=ask,
                    on_update=on_update)
    print(json_format.MessageToJson(r), flush=True)
"""


def start_script(tmp_path: Path, name: str) -> subprocess.Popen[str]:
    """A program running one routine, in its own process group as a terminal's foreground job.

    It prints "ready ..." once the routine runs (or asks), then the result as JSON.
    """
    script = tmp_path / "run_one_routine.py"
    script.write_text(SCRIPT)
    return subprocess.Popen(
        [sys.executable, str(script), name, str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@slow
@pytest.mark.parametrize(
    ("name", "percent", "state", "detail"),
    [
        ("selftest.waits_for_cancel", 40, RUNNING, True),  # Ctrl-C while it runs
        ("selftest.asks", 0, WAITING, False),  # Ctrl-C at the prompt
    ],
)
def test_ctrl_c_cancels_the_routine_and_returns_its_partial_result(
    t: ModuleType, tmp_path: Path, name: str, percent: int, state: State, detail: bool
) -> None:
    proc = start_script(tmp_path, name)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("ready ")
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0
    r = json_format.Parse(out, probe_pb2.ProbeResult())
    reason = f"{name} was stopped by Ctrl-C at {percent} %"
    assert settled(r) == expected(
        name,
        ERROR,
        reason,
        subject="BAT0" if detail else "",
        error=error(K.PROBE_ERROR_KIND_CANCELLED, reason, name),
        outcome=routine_pb2.ROUTINE_OUTCOME_CANCELLED,
        reason=reason,
        percent=percent,
        last_state=state,
        **({"battery_discharge": t.PARTIAL} if detail else {}),
    )
    assert json.loads(out)["routine"]["outcome"] == "ROUTINE_OUTCOME_CANCELLED"


@slow
@pytest.mark.parametrize(
    "name",
    [
        "selftest.waits_for_cancel",  # finds the pipe closed at its next run.sleep
        "selftest.ignores_cancel",  # never looks: the kernel kills it (PR_SET_PDEATHSIG)
    ],
)
def test_a_routine_does_not_outlive_a_killed_agent(
    t: ModuleType, tmp_path: Path, name: str
) -> None:
    proc = start_script(tmp_path, name)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready pid ")
        child = int(line.removeprefix("ready pid "))
        os.kill(proc.pid, signal.SIGKILL)  # the agent dies with no chance to clean up
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # Generous: this waits for the kernel to deliver a signal, it measures nothing.
    deadline = time.monotonic() + 30
    while is_running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    survived = is_running(child)
    if survived:
        os.kill(child, signal.SIGKILL)  # leave no orphan behind a failing test
    assert not survived


def is_running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie left for its new parent to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --- the context across a process boundary (no child needed) --------------------------------


def test_a_live_context_pickles_with_its_live_sources_recreated() -> None:
    live = ProbeContext.for_machine(limits={"battery.min_health_pct": 75})
    live.ask = lambda code, question: True
    udev_here = live.udev()  # kept in the context once made, and not picklable
    back = pickle.loads(pickle.dumps(live))
    assert back.sysfs.root == live.sysfs.root
    assert back.psutil is live.psutil  # the module itself, imported again on the other side
    assert (back.udev() is None) == (udev_here is None)  # made again there, on first use
    assert back.ask("code", "question") is False  # the default: the child asks through the pipe
    assert back.limits == {"battery.min_health_pct": 75}


def test_a_captured_context_pickles_as_it_is(tmp_path: Path) -> None:
    snapshot = PsutilSnapshot({"boot_time": 1700000000.0}, "captured")
    captured = ProbeContext(
        sysfs=SysfsRoot(tmp_path / "sys"),
        devfs_root=tmp_path / "dev",
        psutil=snapshot,
        smartctl_json=[tmp_path / "sda.json"],
        serial_port="ttyUSB0",
    )
    back = pickle.loads(pickle.dumps(captured))
    assert back.psutil is not None and back.psutil.boot_time() == 1700000000.0
    assert back.udev() is None
    assert (back.sysfs.root, back.devfs_root, back.smartctl_json, back.serial_port) == (
        tmp_path / "sys",
        tmp_path / "dev",
        [tmp_path / "sda.json"],
        "ttyUSB0",
    )
