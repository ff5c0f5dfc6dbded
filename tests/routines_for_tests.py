"""Routines for the tests of the routine watchdog (`tests/test_routine_process.py`).

Each does one thing a real routine may do: pass, fail, ask, hang, grow, ignore a cancel.
They live in an importable module because a child process finds a routine by importing
its module and looking its name up in the registry:

    >>> run_routine(registry.get("selftest.passes"), ctx)

Their family, "selftest", is not a product family; the tests remove them from the
registry when they are done so that no other test lists them.
"""

from __future__ import annotations

import os
import time

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unavailable, Unsupported
from probelink.probes.registry import SYSTEM
from probelink.probes.routine import Finished, RoutineRun, routine
from probelink.v1 import routine_pb2

MIB = 1024 * 1024

LOOPBACK = routine_pb2.SerialLoopbackDetail(
    device="ttyUSB0", baud_rate=115200, bytes_sent=4096, bytes_matched=4096, rounds=4
)
SLOW_READ = routine_pb2.StorageReadSpeedDetail(
    path="/dev/sda", bytes_read=64 * MIB, seconds=5.12, mib_per_s=12.5, min_allowed_mib_per_s=50.0
)
# What the long-running routines keep before they wait: the partial detail that must
# survive a cancel, a kill or a crash.
PARTIAL = routine_pb2.BatteryDischargeDetail(
    battery="BAT0", window_s=600.0, start_capacity_pct=81.0
)


@routine("selftest.passes", SYSTEM, "Reports progress, then passes", time_budget_s=30)
def passes(ctx: ProbeContext, run: RoutineRun) -> Finished:
    run.progress(30, "writing")
    run.progress(60, "reading back")
    run.progress(90, "comparing")
    return Finished(True, "4096 of 4096 bytes came back intact", LOOPBACK)


@routine("selftest.fails", SYSTEM, "Finds slow storage", time_budget_s=30)
def fails(ctx: ProbeContext, run: RoutineRun) -> Finished:
    run.progress(50, "reading")
    return Finished(False, "read 12.5 MiB/s, below the 50 MiB/s expected", SLOW_READ)


@routine("selftest.unsupported", SYSTEM, "Needs a battery", time_budget_s=30)
def unsupported(ctx: ProbeContext, run: RoutineRun) -> Finished:
    raise Unsupported("this machine has no battery")


@routine("selftest.raises", SYSTEM, "Has a bug", time_budget_s=30)
def raises(ctx: ProbeContext, run: RoutineRun) -> Finished:
    run.progress(20, "computing")
    raise ZeroDivisionError("division by zero")


@routine("selftest.source_error", SYSTEM, "Cannot open its port", time_budget_s=30)
def source_error(ctx: ProbeContext, run: RoutineRun) -> Finished:
    raise Unavailable("ttyUSB0 could not be opened: device or resource busy", "ttyUSB0")


@routine("selftest.asks", SYSTEM, "Asks for the charger", time_budget_s=1.0)
def asks(ctx: ProbeContext, run: RoutineRun) -> Finished:
    if run.ask("plug_in_charger", "Plug in the charger, then press Enter."):
        return Finished(True, "charging started")
    return Finished(False, "nobody plugged in the charger")


@routine("selftest.sleeps_forever", SYSTEM, "Never finishes", time_budget_s=0.5)
def sleeps_forever(ctx: ProbeContext, run: RoutineRun) -> Finished:
    run.keep(PARTIAL)
    run.progress(20, "measuring")
    while True:
        time.sleep(0.05)  # not run.sleep: it does not even look for a cancel


@routine("selftest.waits_for_cancel", SYSTEM, "Waits, cancellable", time_budget_s=120)
def waits_for_cancel(ctx: ProbeContext, run: RoutineRun) -> Finished:
    run.keep(PARTIAL)
    # The pid lets a test kill this process from outside.
    run.progress(40, f"pid {os.getpid()}")
    while True:
        run.sleep(0.1)


@routine("selftest.ignores_cancel", SYSTEM, "Waits, deaf to a cancel", time_budget_s=120)
def ignores_cancel(ctx: ProbeContext, run: RoutineRun) -> Finished:
    run.keep(PARTIAL)
    run.progress(40, f"pid {os.getpid()}")
    while True:
        time.sleep(0.05)


@routine("selftest.grows_slowly", SYSTEM, "Leaks memory", time_budget_s=120, memory_budget_mib=50)
def grows_slowly(ctx: ProbeContext, run: RoutineRun) -> Finished:
    held = []
    for step in range(1, 51):
        held.append(bytearray(b"\x01") * (8 * MIB))  # repeated, so every page is touched
        run.progress(step, f"{8 * step} MiB held")
        run.sleep(0.05)
    return Finished(True, "held 400 MiB without being stopped")


@routine(
    "selftest.grabs_at_once",
    SYSTEM,
    "Allocates a lot at once",
    time_budget_s=120,
    memory_budget_mib=50,
)
def grabs_at_once(ctx: ProbeContext, run: RoutineRun) -> Finished:
    run.progress(10, "allocating")
    block = bytearray(b"\x01") * (300 * MIB)
    return Finished(True, f"held {len(block) // MIB} MiB without being stopped")


@routine("selftest.context", SYSTEM, "Describes the context it received", time_budget_s=30)
def describes_context(ctx: ProbeContext, run: RoutineRun) -> Finished:
    psutil_name = getattr(ctx.psutil, "__name__", type(ctx.psutil).__name__)
    return Finished(
        True,
        f"sysfs={ctx.sysfs.root} live={ctx.live} psutil={psutil_name} "
        f"udev={ctx.udev() is not None} limit={ctx.limit('selftest.limit', 0):g} "
        f"asked={ctx.ask('code', 'question')}",
    )


NAMES = (
    "selftest.passes",
    "selftest.fails",
    "selftest.unsupported",
    "selftest.raises",
    "selftest.source_error",
    "selftest.asks",
    "selftest.sleeps_forever",
    "selftest.waits_for_cancel",
    "selftest.ignores_cancel",
    "selftest.grows_slowly",
    "selftest.grabs_at_once",
    "selftest.context",
)
