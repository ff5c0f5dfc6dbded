"""`reports list` and `reports show` against a real server holding real reports.

The JSON is compared whole with what ReportsService itself answers, and `show --format
json` gives back the very report the device uploaded.
"""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format

from probelink.channel import bearer
from probelink.server.cli.client import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    to_dict,
)
from probelink.v1 import admin_pb2, probe_pb2, report_pb2, reports_pb2, status_pb2
from tests.server.cli.conftest import Cli
from tests.server.ingest.reports import varied_reports
from tests.server.running import Device


def _with_an_error(report: report_pb2.Report) -> report_pb2.Report:
    report.results.append(
        probe_pb2.ProbeResult(
            probe="storage.smart",
            category=status_pb2.CATEGORY_STORAGE,
            kind=status_pb2.PROBE_KIND_TELEMETRY,
            status=status_pb2.STATUS_ERROR,
            subject="nvme9",
            evidence="[dim]smartctl[/dim] did not answer",
            error=probe_pb2.ProbeError(
                kind=probe_pb2.PROBE_ERROR_KIND_TIMEOUT,
                message="smartctl ran past its 5 s budget",
                source="smartctl -a /dev/nvme9",
            ),
        )
    )
    return report


@pytest.fixture
def uploaded(cli: Cli) -> tuple[Device, list[report_pb2.Report]]:
    device = cli.server.enroll()
    reports = varied_reports(3, seed=7)
    _with_an_error(reports[0])
    for report in reports:
        device.upload(report)
    return device, reports


def _served(cli: Cli, **request: object) -> list[reports_pb2.ReportSummary]:
    response = cli.server.reports().ListReports(
        reports_pb2.ListReportsRequest(page_size=1000, **request),  # type: ignore[arg-type]
        metadata=bearer(cli.server.admin_token),
    )
    return list(response.reports)


def test_list_json_is_what_the_server_holds(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]]
) -> None:
    _, reports = uploaded
    listed = cli.json("reports", "list")
    assert listed == [to_dict(s) for s in _served(cli)]
    assert sorted(s["report_id"] for s in listed) == sorted(r.report_id for r in reports)


def test_list_text_names_every_report(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]]
) -> None:
    device, _ = uploaded
    result = cli("reports", "list")
    assert result.exit_code == EXIT_OK, result.stderr
    for summary in _served(cli):
        line = next(x for x in result.stdout.splitlines() if summary.report_id in x)
        assert device.device_id in line
        assert summary.model in line
        word = status_pb2.Status.Name(summary.overall).removeprefix("STATUS_")
        assert f"self-check │ {word}" in line
        counts = f"{summary.fail_count} │ {summary.warn_count} │ {summary.error_count} │"
        assert counts in " ".join(line.split())
    assert result.stderr == ""


def test_limit_and_all_page_through_everything(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]]
) -> None:
    served = [to_dict(s) for s in _served(cli)]
    result = cli("reports", "list", "--limit", "2", "--json")
    assert json.loads(result.stdout) == served[:2]
    result = cli("reports", "list", "--limit", "2")
    assert "--all lists every report" in result.stderr
    assert cli.json("reports", "list", "--limit", "1", "--all") == served


def test_device_filters_the_list(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]]
) -> None:
    other = cli.server.enroll(model="Other Model")
    report = varied_reports(4, seed=8)[3]
    other.upload(report)
    listed = cli.json("reports", "list", "--device", other.device_id)
    assert listed == [to_dict(s) for s in _served(cli, device_id=other.device_id)]
    assert [s["report_id"] for s in listed] == [report.report_id]


def test_an_empty_server_says_so(cli: Cli) -> None:
    result = cli("reports", "list")
    assert (result.exit_code, result.stdout) == (EXIT_OK, "No reports stored yet.\n")
    assert cli.json("reports", "list") == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--limit", "0"), "--limit 0: give a number from 1 to 1000"),
        (("--limit", "1001"), "--limit 1001: give a number from 1 to 1000"),
        (("--device", " "), "--device is empty"),
    ],
)
def test_list_checks_its_options(cli: Cli, args: tuple[str, ...], words: str) -> None:
    result = cli("reports", "list", *args)
    assert result.exit_code == EXIT_USAGE
    assert words in result.stderr


@pytest.mark.parametrize("form", [("--format", "json"), ("--json",), ("--format", "JSON")])
def test_show_json_gives_back_the_uploaded_report(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]], form: tuple[str, ...]
) -> None:
    _, reports = uploaded
    report = reports[0]
    result = cli("reports", "show", report.report_id, *form)
    assert result.exit_code == EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"summary", "report"}
    assert json_format.ParseDict(document["report"], report_pb2.Report()) == report
    served = next(s for s in _served(cli) if s.report_id == report.report_id)
    assert document["summary"] == to_dict(served)


def test_show_text_reads_like_a_report(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]]
) -> None:
    device, reports = uploaded
    report = reports[0]
    result = cli("reports", "show", report.report_id)
    assert result.exit_code == EXIT_OK, result.stderr
    text = result.stdout
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert f"report {report.report_id}" in lines
    assert any(x.startswith(f"device {device.device_id} (") for x in lines)
    assert "kind self-check" in lines
    assert f"agent {report.agent_version}" in lines
    assert "stored" in text and "zstd, no dictionary" in text
    for result_ in report.results:
        assert result_.probe in text
    # The error: its kind in words, its message and where, and the evidence as sent.
    error_line = next(x for x in lines if x.startswith("storage.smart │ nvme9"))
    assert error_line == "storage.smart │ nvme9 │ ERROR │ [dim]smartctl[/dim] did not answer"
    assert "timed out: smartctl ran past its 5 s budget (smartctl -a /dev/nvme9)" in (
        " ".join(text.split())
    )


def test_show_checks_its_arguments(cli: Cli) -> None:
    result = cli("reports", "show", " ")
    assert result.exit_code == EXIT_USAGE
    assert "reports list" in result.stderr
    result = cli("reports", "show", "some-id", "--format", "yaml")
    assert result.exit_code == EXIT_USAGE
    assert "--format 'yaml': choose one of text, json" in result.stderr


def test_show_of_an_unknown_report(cli: Cli) -> None:
    result = cli("reports", "show", "0b7e0000-aaaa-4bbb-8ccc-dddddddddddd")
    assert result.exit_code == EXIT_NOT_FOUND
    assert result.stderr == (
        "not found: no report 0b7e0000-aaaa-4bbb-8ccc-dddddddddddd on this server "
        "(`probelink-server reports list` shows the ids)\n"
    )


def test_a_customer_cannot_read_another_devices_report(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]]
) -> None:
    _, reports = uploaded
    other = cli.server.enroll()
    customer = cli.server.token(admin_pb2.ROLE_CUSTOMER, device_id=other.device_id)
    result = cli("reports", "show", reports[0].report_id, token=customer)
    assert result.exit_code == EXIT_REFUSED
    assert "belongs to another device" in result.stderr
