"""`probelink-server diagnose`, `device warranty` and `serve --rules-dir` end to end.

A real server (in a thread, or `probelink-server serve` as a process) holds real reports
uploaded by a really enrolled device; the commands run as an operator types them, and what
they print is checked against what the server holds.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from probelink.channel import bearer, open_channel
from probelink.server.cli import app
from probelink.server.cli.client import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
)
from probelink.server.diagnosis.engine import Diagnoser
from probelink.signing import DeviceKey
from probelink.v1 import (
    admin_pb2,
    gateway_pb2,
    gateway_pb2_grpc,
    report_pb2,
    reports_pb2,
    reports_pb2_grpc,
)
from tests.server.cli.conftest import Cli
from tests.server.diagnosis.test_facts import machine_report
from tests.server.ingest.reports import captured_report
from tests.server.running import Device, RunningServer, ServerProcess, serve_argv

SHIPPED_VERSION = Diagnoser.load().version

# An operator's rule that replaces the shipped battery.worn: stricter, and says so.
OPERATOR_RULE = """
[[rule]]
id = "battery.worn"
family = "battery"
severity = "critical"
condition = 'has(battery.health_pct) && battery.health_pct < 70.0'
action = "battery_replacement"
[rule.evidence]
health = "battery.health_pct"
[rule.text]
en = "Operator rule: battery at {health} %, replace it now."
"zh-CN" = "运营方规则：电池 {health}%，请立即更换。"
"""

# The same rule with a CEL syntax error in its condition (line 7 of the file).
BROKEN_RULE = OPERATOR_RULE.replace("battery.health_pct < 70.0", "battery.health_pct < < 70.0")


def _rules(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "local.toml").write_text(text, encoding="utf-8")
    return folder


def _fresh(machine: str = "laptop-worn-battery", hours_ago: float = 1.0) -> report_pb2.Report:
    """The machine's real report with its own id, started `hours_ago` before now."""
    report = captured_report(machine)
    report.report_id = str(uuid.uuid4())
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    report.started_at.FromDatetime(at)
    report.finished_at.FromDatetime(at + timedelta(milliseconds=41))
    return report


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with RunningServer(tmp_path / "data") as running:
        yield running


@pytest.fixture
def cli(server: RunningServer) -> Cli:
    return Cli(server)


@pytest.fixture
def uploaded(cli: Cli) -> tuple[Device, report_pb2.Report]:
    device = cli.server.enroll()
    report = _fresh()
    device.upload(report)
    return device, report


def _rpc(
    server: RunningServer, report_id: str, token: str | None = None, **fields: Any
) -> reports_pb2.GetDiagnosisResponse:
    response: reports_pb2.GetDiagnosisResponse = server.reports().GetDiagnosis(
        reports_pb2.GetDiagnosisRequest(report_id=report_id, **fields),
        metadata=bearer(token or server.admin_token),
        timeout=30,
    )
    return response


def _json(cli: Cli, *args: str, token: str | None = None) -> Any:
    result = cli("diagnose", *args, "--format", "json", token=token)
    assert result.exit_code == EXIT_OK, result.stderr
    return json.loads(result.stdout)


def _days_ago(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


# --- the three formats ----------------------------------------------------------------------


def test_text_in_english_and_chinese(cli: Cli, uploaded: tuple[Device, report_pb2.Report]) -> None:
    _, report = uploaded
    english = cli("diagnose", report.report_id)
    assert english.exit_code == EXIT_OK, english.stderr
    for words in ("A repair is recommended.", "62 %", "Replace the battery", "109.00"):
        assert words in english.stdout, words
    chinese = cli("diagnose", report.report_id, "--lang", "zh-CN")
    assert chinese.exit_code == EXIT_OK, chinese.stderr
    for words in ("建议维修", "电池容量仅为设计容量的 62%", "更换电池"):
        assert words in chinese.stdout, words
    assert "Replace the battery" not in chinese.stdout


def test_json_is_the_servers_document(cli: Cli, uploaded: tuple[Device, report_pb2.Report]) -> None:
    device, report = uploaded
    doc = _json(cli, report.report_id)
    assert json.loads(_rpc(cli.server, report.report_id).diagnosis_json) == doc
    assert doc["schema"] == "probelink.diagnosis/v1"
    assert (doc["report_id"], doc["device_id"]) == (report.report_id, device.device_id)
    assert doc["device"] == {
        "manufacturer": "LENOVO",
        "model": "20XW00GMUS",
        "kind": "laptop",
        "model_known": True,
    }
    assert doc["ruleset_version"] == SHIPPED_VERSION
    assert doc["verdict"]["code"] == "repair_recommended"
    assert [f["rule_id"] for f in doc["findings"]] == ["battery.worn"]
    assert doc["warranty"]["source"] == "none"
    assert doc["totals"]["customer_pays"] == {"amount": "109.00", "currency": "USD"}
    assert doc["report_time"] == report.finished_at.ToDatetime(tzinfo=UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    # --json is the same as --format json.
    again = cli("diagnose", report.report_id, "--json")
    assert again.exit_code == EXIT_OK and json.loads(again.stdout) == doc


def test_html_goes_to_the_file(
    cli: Cli, uploaded: tuple[Device, report_pb2.Report], tmp_path: Path
) -> None:
    _, report = uploaded
    out = tmp_path / "d.html"
    result = cli("diagnose", report.report_id, "--format", "html", "-o", str(out))
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout == ""
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "Replace the battery" in page
    zh = tmp_path / "zh.html"
    result = cli("diagnose", report.report_id, "--format", "html", "--lang", "zh-CN", "-o", str(zh))
    assert result.exit_code == EXIT_OK, result.stderr
    assert "更换电池" in zh.read_text(encoding="utf-8")


# --- stored, recomputed, and what warranty is judged by -------------------------------------


def test_a_diagnosis_is_stored_and_given_again(
    cli: Cli, uploaded: tuple[Device, report_pb2.Report]
) -> None:
    _, report = uploaded
    # The server may already have made it after ingest; either way the second is stored.
    first = _rpc(cli.server, report.report_id)
    second = _rpc(cli.server, report.report_id)
    assert second.made_now is False
    assert second.diagnosis_json == first.diagnosis_json
    assert second.ruleset_version == second.current_ruleset_version == SHIPPED_VERSION
    made = _rpc(cli.server, report.report_id, recompute=True)
    assert made.made_now is True
    assert json.loads(made.diagnosis_json)["made_at"] >= json.loads(first.diagnosis_json)["made_at"]
    # The recomputed one is what is stored now.
    assert _rpc(cli.server, report.report_id).diagnosis_json == made.diagnosis_json
    result = cli("diagnose", report.report_id, "--recompute", "--format", "json")
    assert result.exit_code == EXIT_OK, result.stderr
    assert json.loads(result.stdout)["verdict"]["code"] == "repair_recommended"


def test_device_warranty_then_recompute_covers_the_battery(
    cli: Cli, uploaded: tuple[Device, report_pb2.Report]
) -> None:
    device, report = uploaded
    before = _json(cli, report.report_id)
    # 18 months ago: the maker's 12 months are over, the 24-month renewal plan is not.
    bought = _days_ago(540)
    result = cli(
        "device",
        "warranty",
        device.device_id,
        "--purchased",
        bought,
        "--region",
        "CN",
        "--plan",
        "battery_renewal",
    )
    assert result.exit_code == EXIT_OK, result.stderr
    assert f"Device {device.device_id} bought {bought} in CN (battery_renewal)." in " ".join(
        result.stdout.split()
    )
    # The device's newest report is diagnosed again at once: what the customer reads
    # (check --upload, GetDiagnosis) is judged by the facts just recorded...
    doc = _json(cli, report.report_id)
    assert doc != before and before["warranty"]["source"] == "none"
    assert _rpc(cli.server, report.report_id).made_now is False
    # ...and recomputing it gives the same judgement.
    again = _json(cli, report.report_id, "--recompute")
    assert {k: v for k, v in again.items() if k != "made_at"} == {
        k: v for k, v in doc.items() if k != "made_at"
    }
    assert doc["warranty"] == {
        "purchase_date": bought,
        "region": "CN",
        "plans": ["battery_renewal"],
        "exclusions": [],
        "currency": "CNY",
        "source": "device",
        "problem": None,
    }
    (action,) = doc["actions"]
    assert action["coverage"]["covered"] is True
    assert action["coverage"]["term_id"] == "battery_renewal"
    assert action["list_price"] == {"amount": "399.00", "currency": "CNY"}
    assert action["customer_pays"] == {"amount": "0.00", "currency": "CNY"}
    assert doc["totals"]["customer_pays"] == {"amount": "0.00", "currency": "CNY"}
    text = cli("diagnose", report.report_id)
    assert text.exit_code == EXIT_OK and "0.00" in text.stdout
    # --json answers with the facts as recorded.
    recorded = cli.json(
        "device", "warranty", device.device_id, "--purchased", bought, "--region", "EU"
    )
    assert recorded == {"purchase_date": bought, "region": "EU"}


def test_what_if_flags_do_not_change_the_stored_diagnosis(
    cli: Cli, uploaded: tuple[Device, report_pb2.Report]
) -> None:
    _, report = uploaded
    stored = _json(cli, report.report_id)
    what_if = _json(
        cli,
        report.report_id,
        "--purchased",
        "2020-01-01",
        "--region",
        "EU",
        "--plan",
        "battery_renewal",
    )
    assert what_if["warranty"]["source"] == "request"
    assert what_if["warranty"]["currency"] == "EUR"
    (action,) = what_if["actions"]
    assert action["coverage"]["term_id"] == "not_covered"
    assert action["customer_pays"] == {"amount": "99.00", "currency": "EUR"}
    # The device's stored diagnosis is as it was, and is not remade.
    kept = _rpc(cli.server, report.report_id)
    assert kept.made_now is False
    assert json.loads(kept.diagnosis_json) == stored
    # Nor did the what-if record warranty facts for the device.
    again = _json(cli, report.report_id, "--recompute")
    assert again["warranty"]["source"] == "none"
    # A what-if is always made now, never stored.
    response = _rpc(
        cli.server,
        report.report_id,
        warranty={"purchase_date": "2020-01-01", "region": "EU"},
    )
    assert response.made_now is True


def test_recompute_all_remakes_what_other_rules_made(tmp_path: Path) -> None:
    data = tmp_path / "data"
    operator = _rules(tmp_path / "rules", OPERATOR_RULE)
    with RunningServer(data, rules_dir=operator) as first:
        device = first.enroll()
        reports = [_fresh(hours_ago=h) for h in (3, 2)]
        for report in reports:
            device.upload(report)
        for report in reports:
            response = _rpc(first, report.report_id)
            assert response.ruleset_version == Diagnoser.load(operator).version
    with RunningServer(data) as second:
        cli = Cli(second)
        stale = cli("diagnose", reports[0].report_id, "--format", "json")
        assert stale.exit_code == EXIT_OK, stale.stderr
        assert json.loads(stale.stdout)["findings"][0]["severity"] == "critical"
        assert "--recompute diagnoses it again" in " ".join(stale.stderr.split())
        result = cli("diagnose", "--recompute", "--all", "--json")
        assert result.exit_code == EXIT_OK, result.stderr
        assert json.loads(result.stdout) == {
            "recomputed": 2,
            "current": 0,
            "ruleset_version": SHIPPED_VERSION,
        }
        again = cli("diagnose", "--recompute", "--all", "--json")
        assert json.loads(again.stdout) == {
            "recomputed": 0,
            "current": 2,
            "ruleset_version": SHIPPED_VERSION,
        }
        words = cli("diagnose", "--recompute", "--all")
        assert words.exit_code == EXIT_OK, words.stderr
        assert "Diagnosed 0 report(s) again" in words.stdout
        remade = _json(cli, reports[0].report_id)
        assert remade["ruleset_version"] == SHIPPED_VERSION
        assert remade["findings"][0]["severity"] == "major"


# --- bad input and who may do what -----------------------------------------------------------


def test_an_unknown_report_is_not_found(cli: Cli) -> None:
    result = cli("diagnose", str(uuid.uuid4()))
    assert result.exit_code == EXIT_NOT_FOUND
    assert "no report" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "yaml"), "--format 'yaml': use one of text, json, html"),
        (("--lang", "fr"), "--lang 'fr': use one of en, zh-CN"),
        (("--purchased", "2025-01-01"), "--purchased and --region go together"),
        (("--region", "CN"), "--purchased and --region go together"),
    ],
)
def test_bad_options_are_refused_before_asking(
    cli: Cli, uploaded: tuple[Device, report_pb2.Report], args: tuple[str, ...], message: str
) -> None:
    _, report = uploaded
    result = cli("diagnose", report.report_id, *args)
    assert result.exit_code == EXIT_USAGE
    assert message in result.stderr


def test_all_goes_with_recompute_and_no_report(
    cli: Cli, uploaded: tuple[Device, report_pb2.Report]
) -> None:
    _, report = uploaded
    for args in (("--all",), ("--all", "--recompute", report.report_id)):
        result = cli("diagnose", *args)
        assert result.exit_code == EXIT_USAGE
        assert "--all goes with --recompute and no report id" in result.stderr
    result = cli("diagnose")
    assert result.exit_code == EXIT_USAGE
    assert "give a report id" in result.stderr


@pytest.mark.parametrize(
    ("purchased", "region", "message"),
    [
        ("FUTURE", "CN", "is in the future"),
        ("2025-01-01", "XX", "unknown region 'XX'; known regions: CN, EU, US"),
        ("2025-13-01", "CN", "purchase date '2025-13-01' is not a date; write it as YYYY-MM-DD"),
    ],
)
def test_bad_purchase_facts_are_the_servers_invalid_argument(
    cli: Cli,
    uploaded: tuple[Device, report_pb2.Report],
    purchased: str,
    region: str,
    message: str,
) -> None:
    device, report = uploaded
    if purchased == "FUTURE":
        purchased = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    what_if = cli("diagnose", report.report_id, "--purchased", purchased, "--region", region)
    assert what_if.exit_code == EXIT_USAGE
    assert message in " ".join(what_if.stderr.split())
    record = cli(
        "device", "warranty", device.device_id, "--purchased", purchased, "--region", region
    )
    assert record.exit_code == EXIT_USAGE
    assert message in " ".join(record.stderr.split())


def test_warranty_for_an_unknown_device_is_not_found(cli: Cli) -> None:
    result = cli(
        "device", "warranty", str(uuid.uuid4()), "--purchased", "2025-01-01", "--region", "CN"
    )
    assert result.exit_code == EXIT_NOT_FOUND
    assert "is enrolled on this server" in result.stderr


def test_an_unknown_plan_is_refused(cli: Cli, uploaded: tuple[Device, report_pb2.Report]) -> None:
    device, _ = uploaded
    result = cli(
        "device",
        "warranty",
        device.device_id,
        "--purchased",
        "2025-01-01",
        "--region",
        "CN",
        "--plan",
        "gold",
    )
    assert result.exit_code == EXIT_USAGE
    assert "unknown plan 'gold'" in result.stderr


def test_a_customer_reads_the_stored_diagnosis_and_nothing_more(
    cli: Cli, uploaded: tuple[Device, report_pb2.Report]
) -> None:
    device, report = uploaded
    customer = cli.server.token(admin_pb2.ROLE_CUSTOMER, device_id=device.device_id)
    mine = _json(cli, report.report_id, token=customer)
    assert mine["report_id"] == report.report_id
    refused = [
        ("--recompute",),
        ("--purchased", "2025-01-01", "--region", "CN"),
    ]
    for args in refused:
        result = cli("diagnose", report.report_id, *args, token=customer)
        assert result.exit_code == EXIT_REFUSED, args
        assert "for technicians, engineers and admins" in " ".join(result.stderr.split())
    result = cli("diagnose", "--recompute", "--all", token=customer)
    assert result.exit_code == EXIT_REFUSED
    result = cli(
        "device",
        "warranty",
        device.device_id,
        "--purchased",
        "2025-01-01",
        "--region",
        "CN",
        token=customer,
    )
    assert result.exit_code == EXIT_REFUSED
    other = cli.server.enroll()
    stranger = cli.server.token(admin_pb2.ROLE_CUSTOMER, device_id=other.device_id)
    result = cli("diagnose", report.report_id, token=stranger)
    assert result.exit_code == EXIT_REFUSED
    assert "belongs to another device" in result.stderr


# --- serve --rules-dir ------------------------------------------------------------------------


def test_serve_refuses_a_rule_that_does_not_compile(tmp_path: Path) -> None:
    folder = _rules(tmp_path / "bad-rules", BROKEN_RULE)
    data = tmp_path / "data"
    port_file = tmp_path / "port"
    done = subprocess.run(
        serve_argv(data, "--rules-dir", str(folder), "--port-file", str(port_file)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_USAGE, done.stderr
    # The path whole on the first line (an operator copies it from a log), then CEL's own
    # message, which points at the column.
    stderr = done.stderr.splitlines()[0]
    assert (
        f"cannot start: {folder / 'local.toml'}:3: rule battery.worn: condition does not compile"
        in stderr
    ), stderr
    assert "Syntax error" in done.stderr and "battery.health_pct < < 70.0" in done.stderr
    # It stopped before listening, and before making anything.
    assert not port_file.exists()
    assert not data.exists()
    assert done.stdout == ""


def _enroll(address: str, data: Path) -> Device:
    channel = open_channel(address)
    key = DeviceKey.generate()
    response = gateway_pb2_grpc.AgentGatewayServiceStub(channel).Enroll(
        gateway_pb2.EnrollRequest(
            enroll_secret=(data / "enroll.secret").read_text().strip(),
            identity=report_pb2.DeviceIdentity(manufacturer="LENOVO", model="20XW00GMUS"),
            agent_version="test",
            device_public_key=key.public_key,
        ),
        timeout=30,
    )
    return Device(response.device_id, response.credential, channel, key, response)


def test_serve_with_an_operator_rule_uses_it(tmp_path: Path) -> None:
    folder = _rules(tmp_path / "rules", OPERATOR_RULE)
    data = tmp_path / "data"
    with ServerProcess(data, "--rules-dir", str(folder)) as proc:
        device = _enroll(proc.address, data)
        report = _fresh()
        device.upload(report)
        try:
            result = CliRunner().invoke(
                app,
                [
                    "diagnose",
                    report.report_id,
                    "--format",
                    "json",
                    "--server",
                    proc.address,
                    "--token-file",
                    str(data / "admin.token"),
                ],
                env={"PROBELINK_SERVER": None, "PROBELINK_TOKEN": None, "PROBELINK_TLS_CA": None},
            )
            assert result.exit_code == EXIT_OK, result.stderr
            doc = json.loads(result.stdout)
            stub = reports_pb2_grpc.ReportsServiceStub(device.channel)
            response = stub.GetDiagnosis(
                reports_pb2.GetDiagnosisRequest(report_id=report.report_id),
                metadata=bearer((data / "admin.token").read_text().strip()),
                timeout=30,
            )
        finally:
            device.channel.close()
        code, _, _ = proc.terminate()
        assert code == 0
    operator_version = Diagnoser.load(folder).version
    assert doc["ruleset_version"] == operator_version != SHIPPED_VERSION
    assert response.current_ruleset_version == operator_version
    (finding,) = doc["findings"]
    assert finding == {
        "rule_id": "battery.worn",
        "family": "battery",
        "severity": "critical",
        "text": {
            "en": "Operator rule: battery at 62 %, replace it now.",
            "zh-CN": "运营方规则：电池 62%，请立即更换。",
        },
        "evidence": {"health": 62.0},
        "action": "battery_replacement",
    }
    assert doc["verdict"]["code"] == "urgent"


# --- advisories: raised from the device's newest report only ---------------------------


def _worn_nvme(hours_ago: float) -> report_pb2.Report:
    """The laptop with a worn NVMe drive (rule storage.nvme_wear, severity advisory)."""
    report = report_pb2.Report()
    report.CopyFrom(machine_report("laptop-worn-battery", "nvme-worn"))
    report.report_id = str(uuid.uuid4())
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    report.started_at.FromDatetime(at)
    report.finished_at.FromDatetime(at + timedelta(milliseconds=41))
    return report


def _advisories(server: RunningServer, device_id: str) -> list[reports_pb2.AdvisoryRecord]:
    return list(
        server.reports()
        .ListAdvisories(
            reports_pb2.ListAdvisoriesRequest(device_id=device_id),
            metadata=bearer(server.admin_token),
            timeout=30,
        )
        .advisories
    )


def test_an_old_report_raises_no_advisory_even_when_diagnosed_again(cli: Cli) -> None:
    device = cli.server.enroll()
    old = _worn_nvme(hours_ago=240)  # the drive was worn ten days ago...
    new = _fresh(hours_ago=1)  # ...and the newest report has no such drive
    device.upload(new)
    device.upload(old)
    for made in (_rpc(cli.server, old.report_id), _rpc(cli.server, old.report_id, recompute=True)):
        findings = [f["rule_id"] for f in json.loads(made.diagnosis_json)["findings"]]
        assert "storage.nvme_wear" in findings
    assert cli("diagnose", "--recompute", "--all").exit_code == EXIT_OK
    assert _advisories(cli.server, device.device_id) == []


def test_the_newest_report_raises_its_advisory_once_and_advisories_list_shows_it(
    cli: Cli,
) -> None:
    device = cli.server.enroll()
    newest = _worn_nvme(hours_ago=1)
    device.upload(newest)
    made = _rpc(cli.server, newest.report_id)
    (record,) = _advisories(cli.server, device.device_id)
    advisory = record.advisory
    assert (advisory.kind, advisory.code, advisory.report_id) == (
        "finding",
        "storage.nvme_wear",
        newest.report_id,
    )
    finding = next(
        f
        for f in json.loads(made.diagnosis_json)["findings"]
        if f["rule_id"] == "storage.nvme_wear"
    )
    assert dict(advisory.text) == finding["text"]
    assert not record.HasField("delivered_at")  # no agent has confirmed it
    # Diagnosed again: the same subject raises nothing new.
    _rpc(cli.server, newest.report_id, recompute=True)
    assert len(_advisories(cli.server, device.device_id)) == 1

    listed = cli.json("advisories", "list", "--device", device.device_id)
    assert [a["advisory"]["advisory_id"] for a in listed] == [advisory.advisory_id]
    text = cli("advisories", "list", "--lang", "zh-CN")
    assert text.exit_code == EXIT_OK
    assert "storage.nvme_wear" in text.stdout and "not yet" in text.stdout
    assert finding["text"]["zh-CN"][:6] in " ".join(text.stdout.split())
    bad = cli("advisories", "list", "--lang", "fr")
    assert bad.exit_code == EXIT_USAGE and "'fr': use one of en, zh-CN" in bad.stderr
