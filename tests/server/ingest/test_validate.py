"""summarize: a report that keeps the contract gives its index fields; each broken rule
is refused with a message naming the field."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from probelink.server.errors import IngestRefused
from probelink.server.ingest.validate import report_id_of, summarize
from probelink.server.store.base import ReportSummaryFields
from probelink.v1 import report_pb2, status_pb2, wire_pb2
from tests.server.ingest.reports import BASE_SECONDS, MACHINE_NAMES, captured_report

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
SECOND = 1_000_000
STARTED_US = BASE_SECONDS * SECOND
NOW_US = STARTED_US + 3_600 * SECOND


@pytest.mark.parametrize("machine", MACHINE_NAMES)
def test_a_real_report_is_summarized_whole(machine: str) -> None:
    report = captured_report(machine)
    # The expected counts come from the golden JSON, not from the code under test.
    golden = json.loads((GOLDEN / f"{machine}.json").read_text(encoding="utf-8"))
    statuses = Counter(r.get("status", "STATUS_UNSPECIFIED") for r in golden["results"])
    assert summarize(report, NOW_US) == ReportSummaryFields(
        manufacturer=golden["device"].get("manufacturer", ""),
        model=golden["device"].get("model", ""),
        kind=report_pb2.REPORT_KIND_SELF_CHECK,
        overall=status_pb2.Status.Value(golden.get("overall", "STATUS_UNSPECIFIED")),
        agent_version=report.agent_version,
        started_at_us=STARTED_US,
        finished_at_us=STARTED_US + 41_250,
        result_count=len(golden["results"]),
        fail_count=statuses["STATUS_FAIL"],
        warn_count=statuses["STATUS_WARN"],
        error_count=statuses["STATUS_ERROR"],
        spool_evicted=0,
    )


def test_the_spool_evictions_the_agent_reports_are_indexed() -> None:
    report = captured_report()
    report.agent.spool_evicted = 12
    assert summarize(report, NOW_US).spool_evicted == 12


def test_report_id_of_gives_only_a_canonical_id() -> None:
    report = captured_report()
    assert report_id_of(report) == report.report_id
    for bad in ("", "not-a-uuid", report.report_id.upper(), "x" * 36, "{" + "0" * 34 + "}"):
        report.report_id = bad
        assert report_id_of(report) == ""


def test_a_report_without_results_is_valid() -> None:
    report = captured_report()
    del report.results[:]
    report.overall = status_pb2.STATUS_UNSPECIFIED
    summary = summarize(report, NOW_US)
    assert (summary.result_count, summary.fail_count, summary.overall) == (0, 0, 0)


def test_a_clock_a_little_ahead_of_the_server_is_accepted() -> None:
    report = captured_report()
    assert summarize(report, STARTED_US - 86_000 * SECOND).started_at_us == STARTED_US


def _set(field: str, value: object) -> Callable[[report_pb2.Report], None]:
    return lambda r: setattr(r, field, value)


def _time(field: str, us: int) -> Callable[[report_pb2.Report], None]:
    return lambda r: getattr(r, field).FromMicroseconds(us)


def _both_times(us: int) -> Callable[[report_pb2.Report], None]:
    def breaks(report: report_pb2.Report) -> None:
        # Set directly: FromMicroseconds refuses times beyond year 9999.
        for ts in (report.started_at, report.finished_at):
            ts.seconds, ts.nanos = us // SECOND, 0

    return breaks


def _result(field: str, value: object) -> Callable[[report_pb2.Report], None]:
    return lambda r: setattr(r.results[2], field, value)


BROKEN: dict[str, tuple[Callable[[report_pb2.Report], None], str]] = {
    "empty id": (
        _set("report_id", ""),
        "report_id is empty: the agent must give each report a fresh UUID in lower-case "
        "8-4-4-4-12 form (str(uuid.uuid4()))",
    ),
    "id not a uuid": (_set("report_id", "report-1"), "report_id is 'report-1', not a canonical"),
    "upper-case id": (
        _set("report_id", "6F1C0A39-1111-4222-8333-944455556666"),
        "report_id is '6F1C0A39-1111-4222-8333-944455556666', not a canonical UUID",
    ),
    "id in braces": (_set("report_id", "{6f1c0a39-1111-4222-8333-944455556666}"), "not a canon"),
    "id without hyphens": (_set("report_id", "6f1c0a3911114222833394445555666f"), "not a canon"),
    "nil id": (
        _set("report_id", "00000000-0000-0000-0000-000000000000"),
        "report_id is the nil UUID, which every sender could use: "
        "give each report a fresh str(uuid.uuid4())",
    ),
    "no kind": (
        _set("kind", 0),
        "kind is not set: say why the report was made (e.g. SELF_CHECK)",
    ),
    "unknown kind": (
        _set("kind", 42),
        "report: kind 42 is not a ReportKind this server knows: the agent is newer than the "
        "server (upgrade the server) or the report is damaged",
    ),
    "no start": (
        lambda r: r.ClearField("started_at"),
        "started_at is not set: the agent must record when the run started",
    ),
    "no finish": (
        lambda r: r.ClearField("finished_at"),
        "finished_at is not set: the agent must record when the run finished",
    ),
    "bad nanos": (
        lambda r: setattr(r.started_at, "nanos", 1_000_000_000),
        "started_at.nanos is 1000000000, outside 0..999999999",
    ),
    "negative nanos": (
        lambda r: setattr(r.finished_at, "nanos", -1),
        "finished_at.nanos is -1, outside 0..999999999",
    ),
    "finished before started": (
        _time("finished_at", STARTED_US - SECOND),
        "finished_at (2025-05-31T23:59:59Z) is before started_at (2025-06-01T00:00:00Z)",
    ),
    "clock never set": (
        _time("started_at", 0),
        "started_at is 1970-01-01T00:00:00Z, before 2000-01-01: the device's clock was not "
        "set; set it (NTP) before running checks",
    ),
    "clock far ahead": (
        _time("finished_at", NOW_US + 86_401 * SECOND),
        "finished_at is 2025-06-02T01:00:01Z, more than a day after this server's clock "
        "(2025-06-01T01:00:00Z): the device's clock is wrong; set it (NTP)",
    ),
    "start in the future too": (
        _both_times(NOW_US + 2 * 86_400 * SECOND),
        "finished_at is 2025-06-03T01:00:00Z, more than a day after this server's clock",
    ),
    "time beyond any calendar": (
        _both_times(2**62 * SECOND),
        "finished_at is 4611686018427387904000000 µs since 1970, more than a day after",
    ),
    "unknown overall": (_set("overall", 9), "report: overall 9 is not a Status this server knows"),
    "unnamed probe": (
        _result("probe", ""),
        "results[2]: probe is empty: every result names its probe",
    ),
    "unknown status": (
        _result("status", 6),
        "results[2] (probe 'storage.filesystems'): status 6 is not a Status this server knows",
    ),
    "unknown category": (_result("category", 77), "category 77 is not a Category"),
    "unknown probe kind": (_result("kind", 3), "kind 3 is not a ProbeKind"),
    "negative enum": (_result("status", -1), "status -1 is not a Status"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_rule_is_refused_naming_the_field(case: str) -> None:
    breaks, message = BROKEN[case]
    report = captured_report()
    assert report.results[2].probe == "storage.filesystems"
    breaks(report)
    with pytest.raises(IngestRefused) as caught:
        summarize(report, NOW_US)
    assert caught.value.reason == wire_pb2.REFUSAL_REASON_INVALID_REPORT
    assert message in str(caught.value), str(caught.value)
    # Once the id is known good, the refusal carries it for the agent's spool.
    want_id = report.report_id if not case.endswith("id") and "id " not in case else ""
    assert caught.value.report_id == want_id


def test_broken_reports_survive_the_wire_as_unknown_enum_numbers() -> None:
    # proto3 enums are open: an unknown number parses and must be caught by summarize.
    report = captured_report()
    report.results[0].status = 6  # type: ignore[assignment]
    parsed = report_pb2.Report.FromString(report.SerializeToString())
    assert parsed.results[0].status == 6
    with pytest.raises(IngestRefused, match="status 6 is not a Status"):
        summarize(parsed, NOW_US)
