"""Real reports for the ingest tests: the self-check run on the captured machines.

    report = captured_report("laptop-worn-battery")       # a fresh copy each call
    corpus = varied_reports(200, seed=1)                  # a fleet's worth, varied

`varied_reports` makes what many devices of the captured models would send: each
copy gets its own id, times, durations, serial and slightly different readings,
so a dictionary trained on one part of the corpus is measured fairly on another.
"""

from __future__ import annotations

import functools
import random
import uuid

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from probelink.agent.selfcheck import SelfCheckPlan, run_selfcheck
from probelink.probes.context import ProbeContext
from probelink.v1 import report_pb2
from tests.conftest import MACHINES

MACHINE_NAMES = tuple(sorted(p.name for p in MACHINES.iterdir() if (p / "sys").is_dir()))
# 2025-06-01T00:00:00Z, in seconds: the reports' times start here.
BASE_SECONDS = 1_748_736_000


@functools.cache
def _captured_bytes(machine: str) -> bytes:
    ctx = ProbeContext.for_machine(MACHINES / machine / "sys", timeout_s=30)
    report = run_selfcheck(ctx, SelfCheckPlan()).report
    report.report_id = str(uuid.UUID(int=random.Random(machine).getrandbits(128), version=4))
    report.started_at.FromMicroseconds(BASE_SECONDS * 1_000_000)
    report.finished_at.FromMicroseconds(BASE_SECONDS * 1_000_000 + 41_250)
    return report.SerializeToString(deterministic=True)


def captured_report(machine: str = "laptop-worn-battery") -> report_pb2.Report:
    """The machine's self-check report with a fixed id and times (2025-06-01)."""
    return report_pb2.Report.FromString(_captured_bytes(machine))


def _jitter(message: Message, rng: random.Random) -> None:
    """Nudge every number in `message` (recursively) as another unit's readings would."""
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            items = value if field.is_repeated else [value]
            for item in items:
                _jitter(item, rng)
        elif field.is_repeated:
            continue
        elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            setattr(message, field.name, value * rng.uniform(0.95, 1.05))
        elif field.type in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64):
            setattr(message, field.name, max(0, value + rng.randint(-3, 3)))
        elif field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
            setattr(message, field.name, value + rng.randint(-3, 3))


def varied_reports(count: int, seed: int = 0) -> list[report_pb2.Report]:
    """`count` reports from the captured machines in turn, each like another unit's."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        report = captured_report(MACHINE_NAMES[i % len(MACHINE_NAMES)])
        report.report_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        started_us = (BASE_SECONDS + i * 3_600 + rng.randrange(3_600)) * 1_000_000
        report.started_at.FromMicroseconds(started_us + rng.randrange(1_000_000))
        report.finished_at.FromMicroseconds(started_us + 1_000_000 + rng.randrange(2_000_000))
        report.device.serial_number = rng.randbytes(32).hex()
        for result in report.results:
            _jitter(result, rng)
            result.duration.FromMicroseconds(rng.randrange(50, 40_000))
        out.append(report)
    return out
