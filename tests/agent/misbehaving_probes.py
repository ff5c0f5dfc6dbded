"""Telemetry probes that misbehave, for the collector's watchdog tests (`test_collect.py`).

    CollectPlan(salt_file, probe_modules=("tests.agent.misbehaving_probes",))

Each does one thing a broken probe or driver may do: spin on the CPU, swell its memory,
hang, print where it should not, or take the whole process down. Only the collector's
child imports this module (it is named in the plan): the tests never import it, so
these probes never reach the registry of the test process, where other tests list and
run every probe. The tests name them by the strings below, kept in step by hand. Their
family, "watchdogtest", is not a product family: it sorts after every real one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from probelink.probes.context import ProbeContext
from probelink.probes.registry import SYSTEM, telemetry
from probelink.probes.results import PASS, result
from probelink.v1 import probe_pb2

MIB = 1 << 20
HOG_BYTES = 300 * MIB

BURNS_CPU = "watchdogtest.burns_cpu"
HOGS_MEMORY = "watchdogtest.hogs_memory"
SLEEPS_FOREVER = "watchdogtest.sleeps_forever"
CRASHES = "watchdogtest.crashes"
PRINTS = "watchdogtest.prints"
BEHAVES = "watchdogtest.behaves"
# What PRINTS writes to stdout: a counterfeit of the collector's report header.
COUNTERFEIT = 'probelink-collect/1 {"report_bytes": 0}\n'


@telemetry(BURNS_CPU, SYSTEM, "Spins on the CPU forever")
def burns_cpu(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    n = 0
    while True:
        n += 1


@telemetry(HOGS_MEMORY, SYSTEM, "Allocates 300 MiB and holds it")
def hogs_memory(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    # Written, not only reserved: untouched pages would not be resident.
    held = []
    for _ in range(HOG_BYTES // (16 * MIB)):
        held.append(b"\x01" * (16 * MIB))
    while True:
        time.sleep(1)


@telemetry(SLEEPS_FOREVER, SYSTEM, "Hangs, as in a driver's read that never returns")
def sleeps_forever(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    while True:
        time.sleep(1)


@telemetry(CRASHES, SYSTEM, "Takes its process down, as a segfault in a C library would")
def crashes(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    os.write(2, b"watchdogtest: about to abort\n")
    os.abort()


@telemetry(PRINTS, SYSTEM, "Prints to stdout, as a chatty library does")
def prints(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    print(COUNTERFEIT, end="", flush=True)
    return [result(PASS, "printed")]


@telemetry(BEHAVES, SYSTEM, "Finishes at once")
def behaves(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    return [result(PASS, "all is well")]
