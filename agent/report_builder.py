"""Builds a Report from probe results: identity, kind, times, and the overall status.

    >>> report = build_report(results, ctx, kind=REPORT_KIND_SELF_CHECK, started=t0)

The report id is a UUID chosen here, on the device: it is the idempotency key the
server stores each report under exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from probelink import __version__
from probelink.agent.verdict import verdict
from probelink.probes.context import ProbeContext
from probelink.probes.errors import ProbeProblem
from probelink.v1 import probe_pb2, report_pb2


def _timestamp(when: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(when)
    return ts


def device_identity(ctx: ProbeContext) -> report_pb2.DeviceIdentity:
    """What the device is, from DMI where the machine has it; empty fields otherwise."""
    from probelink.probes.system.identity import device_identity as from_dmi

    try:
        identity: report_pb2.DeviceIdentity = from_dmi(ctx)
        return identity
    except ProbeProblem:
        # A machine whose DMI cannot be read is still checked; system.dmi reports why.
        return report_pb2.DeviceIdentity()


def build_report(
    results: Iterable[probe_pb2.ProbeResult],
    ctx: ProbeContext,
    *,
    kind: report_pb2.ReportKind.ValueType = report_pb2.REPORT_KIND_SELF_CHECK,
    started: datetime,
    finished: datetime | None = None,
) -> report_pb2.Report:
    report = report_pb2.Report(
        report_id=str(uuid.uuid4()),
        device=device_identity(ctx),
        kind=kind,
        agent_version=__version__,
        started_at=_timestamp(started),
        finished_at=_timestamp(finished or datetime.now(UTC)),
        results=list(results),
    )
    report.overall = verdict(report).overall
    return report
