"""`reports list` and `reports show` against a real server holding real reports.

The JSON is compared whole with what ReportsService itself answers, and `show --format
json` gives back the very report the device uploaded.
"""

from __future__ import annotations

import base64
import json

import pytest
from google.protobuf import json_format

from probelink import wire
from probelink.channel import bearer
from probelink.server.cli.client import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    to_dict,
)
from probelink.server.cli.reports import EXIT_NOT_VERIFIED
from probelink.signing import DeviceKey
from probelink.v1 import admin_pb2, probe_pb2, report_pb2, reports_pb2, status_pb2
from tests.server.cli.conftest import Cli
from tests.server.conftest import raw_sql
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
    assert set(document) == {"summary", "report", "signature"}
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


# -- signatures: what the server verified, and `show --verify` checking it here ---------


def _db(cli: Cli) -> str:
    return f"sqlite://{cli.server.data_dir / 'probelink.db'}"


def _flat(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


def test_list_says_which_reports_were_verified(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]]
) -> None:
    _, reports = uploaded
    raw_sql(
        _db(cli),
        "UPDATE reports SET signature = NULL, signing_key = NULL, signature_verdict = 0 "
        "WHERE report_id = ?",
        (reports[0].report_id,),
    )
    lines = cli("reports", "list").stdout.splitlines()
    for report in reports:
        line = next(x for x in lines if report.report_id in x)
        word = "-" if report is reports[0] else "verified"
        assert line.rstrip().endswith(f"│ {word}"), line


def test_show_says_the_report_was_verified_and_with_which_key(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]]
) -> None:
    device, reports = uploaded
    result = cli("reports", "show", reports[0].report_id)
    assert result.exit_code == EXIT_OK, result.stderr
    assert f"signed verified when stored, with the device's key {device.key.key_id}" in _flat(
        result.stdout
    )
    assert "checked" not in result.stdout  # only --verify checks here


def test_show_verify_checks_the_signature_here(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]]
) -> None:
    device, reports = uploaded
    report = reports[1]
    result = cli("reports", "show", report.report_id, "--verify")
    assert result.exit_code == EXIT_OK, result.stderr
    assert (
        f"checked here: the signature holds: this is exactly the report device "
        f"{device.device_id} signed with key {device.key.key_id}"
    ) in " ".join(result.stdout.split())
    document = cli.json("reports", "show", report.report_id, "--verify")
    serialized = report.SerializeToString()
    assert document["signature"] == {
        "verdict": "SIGNATURE_VERDICT_VERIFIED",
        "signing_key": device.key.key_id,
        "signature": base64.b64encode(device.key.sign(serialized)).decode(),
        "device_public_key": base64.b64encode(device.key.public_key).decode(),
        "checked_here": {
            "ok": True,
            "message": f"the signature holds: this is exactly the report device "
            f"{device.device_id} signed with key {device.key.key_id}",
        },
    }
    assert json_format.ParseDict(document["report"], report_pb2.Report()) == report


def _tamper_frame(cli: Cli, report: report_pb2.Report) -> report_pb2.Report:
    """Rewrite the stored report in the database, as someone with access to it could."""
    changed = report_pb2.Report()
    changed.CopyFrom(report)
    changed.overall = (
        status_pb2.STATUS_PASS
        if report.overall != status_pb2.STATUS_PASS
        else (status_pb2.STATUS_FAIL)
    )
    frame = wire.encode_report(changed.SerializeToString())
    raw_sql(
        _db(cli),
        "UPDATE reports SET frame = ?, dictionary_id = 0 WHERE report_id = ?",
        (frame.zstd_frame, report.report_id),
    )
    return changed


def test_show_verify_catches_a_report_changed_in_the_database(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]]
) -> None:
    device, reports = uploaded
    report = reports[2]
    changed = _tamper_frame(cli, report)
    # Without --verify the changed report is shown as the server holds it...
    plain = cli.json("reports", "show", report.report_id)
    assert json_format.ParseDict(plain["report"], report_pb2.Report()) == changed
    # ...with it, the check fails, says why, and exits 3.
    result = cli("reports", "show", report.report_id, "--verify")
    assert result.exit_code == EXIT_NOT_VERIFIED == 3
    assert (
        f"checked here: DOES NOT VERIFY with device {device.device_id}'s key "
        f"{device.key.key_id}: the stored report or its signature was changed after the "
        "device signed it"
    ) in " ".join(result.stdout.split())
    document = json.loads(cli("reports", "show", report.report_id, "--verify", "--json").stdout)
    assert document["signature"]["checked_here"]["ok"] is False


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        (
            "UPDATE reports SET signature = ? WHERE report_id = ?",
            "DOES NOT VERIFY with device",
        ),
        (
            "UPDATE reports SET signature = NULL, signing_key = NULL, signature_verdict = 0 "
            "WHERE report_id = ?",
            "it was stored before the server checked signatures",
        ),
    ],
)
def test_show_verify_fails_on_a_changed_or_missing_signature(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]], sql: str, words: str
) -> None:
    _, reports = uploaded
    report_id = reports[0].report_id
    params: tuple[object, ...] = (report_id,)
    if "signature = ?" in sql:
        params = (DeviceKey.generate().sign(b"something else"), report_id)
    raw_sql(_db(cli), sql, params)
    result = cli("reports", "show", report_id, "--verify")
    assert result.exit_code == EXIT_NOT_VERIFIED
    assert words in " ".join(result.stdout.split())


def test_show_verify_catches_a_swapped_device_key(
    cli: Cli, uploaded: tuple[Device, list[report_pb2.Report]]
) -> None:
    # Someone rewrote the report, signed it with their own key and registered that key
    # for the device: the key id stored with the verdict gives it away.
    device, reports = uploaded
    report = reports[1]
    forger = DeviceKey.generate()
    changed = _tamper_frame(cli, report)
    raw_sql(
        _db(cli),
        "UPDATE reports SET signature = ? WHERE report_id = ?",
        (forger.sign(changed.SerializeToString()), report.report_id),
    )
    raw_sql(
        _db(cli),
        "UPDATE devices SET public_key = ? WHERE device_id = ?",
        (forger.public_key, device.device_id),
    )
    result = cli("reports", "show", report.report_id, "--verify")
    assert result.exit_code == EXIT_NOT_VERIFIED
    assert (
        f"the server says the report was verified with key {device.key.key_id}, but device "
        f"{device.device_id}'s registered key is {forger.key_id}"
    ) in " ".join(result.stdout.split())
