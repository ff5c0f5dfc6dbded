"""Judge a parsed Report against the contract and take the summary the server indexes.

    summary = summarize(decoded.report, now_us=now_us())   # ReportSummaryFields

Refuses (IngestRefused INVALID_REPORT, naming the field) a report without a
canonical UUID id, without a known kind, with missing or impossible times, or with
enum values this server does not know. proto3 enums are open: an unknown number
survives parsing as a plain int, so each is checked against the generated enum.

What is checked, and why only this: the id is the idempotency key; kind, times,
statuses and counts go into the index and drive listing and diagnosis (so does the
count of reports the agent's spool evicted, `Report.agent.spool_evicted`, taken as it
came). Enums deeper down (a check's status, typed family data) are kept as they came:
the stored bytes hold them for a newer server, and one odd value there is no reason to
lose a report.
"""

from __future__ import annotations

import uuid
from typing import Literal

from google.protobuf.timestamp_pb2 import Timestamp

from probelink.server.errors import IngestRefused
from probelink.server.store.base import ReportSummaryFields
from probelink.v1 import probe_pb2, report_pb2, status_pb2, wire_pb2

# 2000-01-01T00:00:00Z: earlier start times are a device whose clock was never set.
EARLIEST_US = 946_684_800 * 1_000_000
# How far ahead of the server's clock a device's clock may run.
MAX_CLOCK_SKEW_US = 86_400 * 1_000_000

_KINDS = frozenset(report_pb2.ReportKind.values()) - {report_pb2.REPORT_KIND_UNSPECIFIED}
_STATUSES = frozenset(status_pb2.Status.values())
_CATEGORIES = frozenset(status_pb2.Category.values())
_PROBE_KINDS = frozenset(status_pb2.ProbeKind.values())
_NIL_UUID = str(uuid.UUID(int=0))


def _invalid(message: str) -> IngestRefused:
    return IngestRefused(wire_pb2.REFUSAL_REASON_INVALID_REPORT, message)


def report_id_of(report: report_pb2.Report) -> str:
    """The report's id if it is a canonical UUID, else "": for a refusal that comes before
    the report is judged (a bad signature), so that what is logged and sent back is
    never a device's arbitrary string."""
    report_id = report.report_id
    if len(report_id) != 36:
        return ""
    try:
        return report_id if str(uuid.UUID(report_id)) == report_id else ""
    except ValueError:
        return ""


def _check_report_id(report_id: str) -> None:
    shown = repr(report_id[:64])
    try:
        canonical = str(uuid.UUID(report_id))
    except ValueError:
        canonical = None
    if canonical != report_id:
        what = "empty" if not report_id else f"{shown}, not a canonical UUID"
        raise _invalid(
            f"report_id is {what}: the agent must give each report a fresh UUID in "
            "lower-case 8-4-4-4-12 form (str(uuid.uuid4()))"
        )
    if report_id == _NIL_UUID:
        raise _invalid(
            "report_id is the nil UUID, which every sender could use: "
            "give each report a fresh str(uuid.uuid4())"
        )


def _micros(report: report_pb2.Report, name: Literal["started_at", "finished_at"]) -> int:
    if not report.HasField(name):
        raise _invalid(f"{name} is not set: the agent must record when the run {name[:-3]}")
    ts: Timestamp = getattr(report, name)
    if not 0 <= ts.nanos < 1_000_000_000:
        raise _invalid(f"{name}.nanos is {ts.nanos}, outside 0..999999999")
    return ts.seconds * 1_000_000 + ts.nanos // 1_000


def _when(us: int) -> str:
    try:
        ts = Timestamp()
        ts.FromMicroseconds(us)
        return ts.ToJsonString()
    except ValueError:
        return f"{us} µs since 1970"


def _check_times(started_us: int, finished_us: int, now_us: int) -> None:
    if started_us < EARLIEST_US:
        raise _invalid(
            f"started_at is {_when(started_us)}, before 2000-01-01: the device's clock "
            "was not set; set it (NTP) before running checks"
        )
    if finished_us < started_us:
        raise _invalid(
            f"finished_at ({_when(finished_us)}) is before started_at ({_when(started_us)})"
        )
    if finished_us > now_us + MAX_CLOCK_SKEW_US:
        raise _invalid(
            f"finished_at is {_when(finished_us)}, more than a day after this server's "
            f"clock ({_when(now_us)}): the device's clock is wrong; set it (NTP)"
        )


def _unknown(where: str, field: str, value: int, enum_name: str) -> IngestRefused:
    return _invalid(
        f"{where}: {field} {value} is not a {enum_name} this server knows: "
        "the agent is newer than the server (upgrade the server) or the report is damaged"
    )


def _bad_result(i: int, result: probe_pb2.ProbeResult) -> IngestRefused:
    if not result.probe:
        return _invalid(f"results[{i}]: probe is empty: every result names its probe")
    where = f"results[{i}] (probe {result.probe[:64]!r})"
    if result.status not in _STATUSES:
        return _unknown(where, "status", result.status, "Status")
    if result.category not in _CATEGORIES:
        return _unknown(where, "category", result.category, "Category")
    return _unknown(where, "kind", result.kind, "ProbeKind")


def summarize(report: report_pb2.Report, now_us: int) -> ReportSummaryFields:
    """The index fields of a report that keeps the contract; IngestRefused otherwise.

    Once the id is known good, a refusal carries it (the agent matches it to its spool).
    """
    _check_report_id(report.report_id)
    try:
        return _summary(report, now_us)
    except IngestRefused as refused:
        refused.report_id = report.report_id
        raise


def _summary(report: report_pb2.Report, now_us: int) -> ReportSummaryFields:
    if report.kind not in _KINDS:
        if report.kind == report_pb2.REPORT_KIND_UNSPECIFIED:
            raise _invalid("kind is not set: say why the report was made (e.g. SELF_CHECK)")
        raise _unknown("report", "kind", report.kind, "ReportKind")
    started_us = _micros(report, "started_at")
    finished_us = _micros(report, "finished_at")
    _check_times(started_us, finished_us, now_us)
    if report.overall not in _STATUSES:
        raise _unknown("report", "overall", report.overall, "Status")

    fail = warn = error = 0
    for i, result in enumerate(report.results):
        status = result.status
        # One cheap test per result; the message is built only for a bad one.
        if not (
            result.probe
            and status in _STATUSES
            and result.category in _CATEGORIES
            and result.kind in _PROBE_KINDS
        ):
            raise _bad_result(i, result)
        if status == status_pb2.STATUS_FAIL:
            fail += 1
        elif status == status_pb2.STATUS_WARN:
            warn += 1
        elif status == status_pb2.STATUS_ERROR:
            error += 1

    return ReportSummaryFields(
        manufacturer=report.device.manufacturer,
        model=report.device.model,
        kind=report.kind,
        overall=report.overall,
        agent_version=report.agent_version,
        started_at_us=started_us,
        finished_at_us=finished_us,
        result_count=len(report.results),
        fail_count=fail,
        warn_count=warn,
        error_count=error,
        spool_evicted=report.agent.spool_evicted,
    )
