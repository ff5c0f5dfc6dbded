"""The text of a stored report, rendered without a server: every part a person reads."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.text import Text

from probelink.server.render import format_bytes, format_time, render_report
from probelink.v1 import probe_pb2, report_pb2, reports_pb2, status_pb2

# 2025-06-01T00:00:00Z
T0 = 1_748_736_000


def _ts(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromMicroseconds(int(seconds * 1_000_000))
    return ts


def _summary(**fields: object) -> reports_pb2.ReportSummary:
    base: dict[str, object] = {
        "report_id": "0b7e0000-aaaa-4bbb-8ccc-dddddddddddd",
        "device_id": "4f1c0000-1111-4222-8333-444455556666",
        "manufacturer": "LENOVO",
        "model": "20XW00GMUS",
        "kind": report_pb2.REPORT_KIND_INTAKE,
        "overall": status_pb2.STATUS_FAIL,
        "agent_version": "0.1.0",
        "started_at": _ts(T0),
        "finished_at": _ts(T0 + 2.5),
        "received_at": _ts(T0 + 60),
        "result_count": 3,
        "fail_count": 1,
        "warn_count": 0,
        "error_count": 1,
        "report_bytes": 20_480,
        "stored_bytes": 5_120,
        "dictionary_id": 4,
    }
    base.update(fields)
    return reports_pb2.ReportSummary(**base)  # type: ignore[arg-type]


def _report() -> report_pb2.Report:
    return report_pb2.Report(
        device=report_pb2.DeviceIdentity(
            firmware=[report_pb2.FirmwareVersion(component="bios", version="N32ET91W")]
        ),
        results=[
            probe_pb2.ProbeResult(
                probe="system.cpu",
                category=status_pb2.CATEGORY_SYSTEM,
                status=status_pb2.STATUS_PASS,
                evidence="8 cores",
            ),
            probe_pb2.ProbeResult(
                probe="battery.power_supply",
                category=status_pb2.CATEGORY_BATTERY,
                status=status_pb2.STATUS_FAIL,
                subject="BAT0",
                evidence="health 41 %",
                checks=[
                    probe_pb2.Check(
                        code="battery.health_low",
                        status=status_pb2.STATUS_FAIL,
                        message="health 41 % is below 70 %",
                    ),
                    probe_pb2.Check(code="battery.cycles", status=status_pb2.STATUS_PASS),
                ],
            ),
            probe_pb2.ProbeResult(
                probe="storage.smart",
                category=status_pb2.CATEGORY_STORAGE,
                status=status_pb2.STATUS_ERROR,
                subject="[b]nvme0[/b]",
                error=probe_pb2.ProbeError(
                    kind=probe_pb2.PROBE_ERROR_KIND_MISSING_UTILITY,
                    message="smartctl is not installed",
                ),
            ),
        ],
    )


def _render(summary: reports_pb2.ReportSummary, report: report_pb2.Report) -> list[str]:
    console = Console(record=True, width=120, color_system=None)
    render_report(console, summary, report)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_the_header_says_who_what_when_and_the_verdict() -> None:
    lines = _render(_summary(), _report())
    assert lines[:10] == [
        "report    0b7e0000-aaaa-4bbb-8ccc-dddddddddddd",
        "device    4f1c0000-1111-4222-8333-444455556666  (LENOVO 20XW00GMUS)",
        "firmware  bios N32ET91W",
        "kind      service intake",
        "agent     0.1.0",
        "ran       2025-06-01 00:00:00 UTC (took 2.5 s)",
        "received  2025-06-01 00:01:00 UTC",
        "verdict   needs attention: a check failed",
        "results   3 results · 1 failed · 0 to watch · 1 could not run",
        "stored    5.0 KiB of 20.0 KiB (25 %), zstd with dictionary 4",
    ]


def test_one_table_per_category_in_the_contracts_order() -> None:
    lines = _render(_summary(), _report())
    titles = [line for line in lines if line in ("Battery", "Storage", "System")]
    assert titles == ["Battery", "Storage", "System"]
    flat = [" ".join(line.split()) for line in lines]
    assert "battery.power_supply │ BAT0 │ FAIL │ health 41 %" in flat
    # Only the checks that found something are repeated under the evidence.
    assert "│ │ │ • health 41 % is below 70 %" in flat
    assert not any("battery.cycles" in line for line in flat)
    # An error says what kind of error, and the device's text is never markup.
    assert "storage.smart │ [b]nvme0[/b] │ ERROR │ missing utility: smartctl is not installed" in (
        flat
    )
    assert "system.cpu │ │ PASS │ 8 cores" in flat


def test_verdicts_in_plain_words() -> None:
    words = {
        status_pb2.STATUS_PASS: "healthy: every check that could judge passed",
        status_pb2.STATUS_WARN: "working, with something to keep an eye on",
        status_pb2.STATUS_UNSPECIFIED: "not judged: no check could read the hardware",
    }
    for overall, expected in words.items():
        lines = _render(_summary(overall=overall), report_pb2.Report())
        assert f"verdict   {expected}" in lines


def test_a_report_without_results_or_times() -> None:
    summary = _summary(
        started_at=None, finished_at=None, dictionary_id=0, report_bytes=0, stored_bytes=0
    )
    lines = _render(summary, report_pb2.Report())
    assert "ran       -" in lines
    assert "stored    0 B of 0 B, zstd, no dictionary" in lines
    assert lines[-1] == "The report holds no results."


def test_sizes_and_times() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1024, 1536, 5 << 20, 3 << 30, 5 << 40)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
        "5120.0 GiB",
    ]
    assert format_time(Timestamp()) == "-"
    assert format_time(_ts(T0 + 0.9)) == "2025-06-01 00:00:00 UTC"


def test_the_signature_verdict_and_evictions_follow_the_header() -> None:
    verified = _summary(
        signature=reports_pb2.SIGNATURE_VERDICT_VERIFIED,
        signing_key="SHA256:3f2a00112233aabb",
        spool_evicted=3,
    )
    lines = _render(verified, _report())
    assert lines[10:12] == [
        "signed    verified when stored, with the device's key SHA256:3f2a00112233aabb",
        "evicted   the device's spool dropped 3 reports unsent before this one (full); they "
        "will never arrive",
    ]
    older = _render(_summary(), _report())
    assert older[10] == "signed    not checked: stored before this server verified signatures"
    assert not any(line.startswith("evicted") for line in older)


def test_extra_rows_come_last_in_the_header() -> None:
    console = Console(record=True, width=120, color_system=None)
    render_report(console, _summary(), _report(), [("checked", Text("here: fine"))])
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert lines[11] == "checked   here: fine"
