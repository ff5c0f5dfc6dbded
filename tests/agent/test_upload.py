"""`probelink-agent check --upload` as a person runs it, against a real server on loopback.

The agent runs as a real process on a captured laptop (so its report is the same on
every machine); the server runs in this process (`tests.server.running`), and what it
stored is read back through ReportsService with the admin token. Every report is signed
with the device key the agent keeps in its state dir (and registers when it enrolls):
the server stores it as verified with that key.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from probelink.agent.privacy import SALT_FILE, PrivacyFilter, load_or_create_salt
from probelink.agent.state import AgentState, StateError
from probelink.agent.upload import UploadPlan, upload_report
from probelink.channel import bearer
from probelink.probes.results import FAIL
from probelink.signing import DeviceKey, verify
from probelink.v1 import admin_pb2, report_pb2, reports_pb2
from tests.conftest import MACHINES
from tests.server.conftest import raw_sql
from tests.server.ingest.reports import varied_reports
from tests.server.running import RunningServer

AGENT = [sys.executable, "-m", "probelink.agent.cli"]
LAPTOP = MACHINES / "laptop-worn-battery" / "sys"


def _env() -> dict[str, str]:
    # The person's own settings must not leak into a test (or a test into their state).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBELINK_")}
    env.pop("XDG_STATE_HOME", None)
    return env


def agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AGENT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env or _env(),
    )


def words(text: str) -> str:
    """`text` with rich's boxes and line breaks flattened, to compare the words."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with RunningServer(tmp_path / "data") as running:
        yield running


@pytest.fixture
def secret_file(tmp_path: Path, server: RunningServer) -> Path:
    path = tmp_path / "enroll.secret"
    path.write_text(server.enroll_secret + "\n")
    return path


class Check:
    """One `check --upload` run on the laptop, and what it wrote."""

    def __init__(self, tmp_path: Path, address: str, *extra: str, name: str = "report") -> None:
        self.out = tmp_path / f"{name}.pb"
        self.state_dir = tmp_path / "state"
        self.proc = agent(
            "check",
            "--sysfs-root",
            str(LAPTOP),
            "--out",
            str(self.out),
            "--upload",
            "--server",
            address,
            "--state-dir",
            str(self.state_dir),
            *extra,
        )

    @property
    def report(self) -> report_pb2.Report:
        return report_pb2.Report.FromString(self.out.read_bytes())

    @property
    def sent(self) -> report_pb2.Report:
        """The report as it left the device: personal fields hashed or dropped."""
        salt = load_or_create_salt(self.state_dir / SALT_FILE)
        return PrivacyFilter(salt).apply(self.report)

    @property
    def device_id(self) -> str:
        return str(json.loads((self.state_dir / "device.json").read_text())["device_id"])

    @property
    def key(self) -> DeviceKey:
        return AgentState(self.state_dir).device_key()

    def assert_exit(self, code: int) -> None:
        assert self.proc.returncode == code, (self.proc.stdout, self.proc.stderr)


def _verdict(report: report_pb2.Report) -> int:
    """The exit code `check` gives for this report's verdict."""
    return 1 if report.overall == FAIL else 0


def _stored(server: RunningServer, report_id: str) -> reports_pb2.GetReportResponse:
    response: reports_pb2.GetReportResponse = server.reports().GetReport(
        reports_pb2.GetReportRequest(report_id=report_id),
        metadata=bearer(server.admin_token),
        timeout=30,
    )
    return response


def _devices(server: RunningServer) -> list[admin_pb2.DeviceInfo]:
    response = server.admin().ListDevices(
        admin_pb2.ListDevicesRequest(), metadata=bearer(server.admin_token), timeout=30
    )
    return list(response.devices)


def _train(server: RunningServer) -> admin_pb2.TrainDictionaryResponse:
    response: admin_pb2.TrainDictionaryResponse = server.admin().TrainDictionary(
        admin_pb2.TrainDictionaryRequest(), metadata=bearer(server.admin_token), timeout=60
    )
    return response


def _fill(server: RunningServer, count: int = 100) -> None:
    """Enough reports from another device for the server to train a dictionary on."""
    device = server.enroll(model="Fleet")
    for report in varied_reports(count, seed=7):
        device.upload(report)


def test_first_upload_enrolls_and_stores_exactly_the_report_the_check_made(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    first = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file))
    report = first.report
    first.assert_exit(_verdict(report))
    assert report.kind == report_pb2.REPORT_KIND_SELF_CHECK
    # The table and the verdict, one calm line, then the server's diagnosis (tested below).
    assert "Battery" in first.proc.stdout
    lines = first.proc.stdout.strip().splitlines()
    assert f"Uploaded to {server.address} as report {report.report_id} (stored)" in lines
    assert f"Enrolled with {server.address} as device {first.device_id}" in words(first.proc.stderr)

    stored = _stored(server, report.report_id)
    assert stored.report == first.sent
    # Signed with the device key the agent made and registered when it enrolled.
    key = first.key
    assert (stored.summary.signature, stored.summary.signing_key) == (
        reports_pb2.SIGNATURE_VERDICT_VERIFIED,
        key.key_id,
    )
    assert stored.device_public_key == key.public_key
    assert verify(
        key.public_key, stored.signature, hashlib.sha256(stored.serialized_report).digest()
    )
    # The local report keeps what the filter took out before sending.
    assert report.device.serial_number and not report.device.serial_number.startswith("h:")
    assert stored.report.device.serial_number.startswith("h:")
    assert stored.summary.device_id == first.device_id
    assert stored.summary.kind == report_pb2.REPORT_KIND_SELF_CHECK
    assert stored.summary.dictionary_id == 0  # the server has no dictionary yet
    [device] = _devices(server)
    assert (device.device_id, device.manufacturer, device.model) == (
        first.device_id,
        report.device.manufacturer,
        report.device.model,
    )

    # The credential is the device's password: 0600 in a 0700 dir, whole, on its own line.
    credential = first.state_dir / "credential"
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.state_dir.stat().st_mode) == 0o700
    assert json.loads((first.state_dir / "device.json").read_text()) == {
        "device_id": first.device_id,
        "server": server.address,
    }
    assert sorted(p.name for p in first.state_dir.iterdir()) == [
        "credential",
        "device.json",
        "device.key",
        "privacy-salt",
    ]
    assert stat.S_IMODE((first.state_dir / "privacy-salt").stat().st_mode) == 0o600
    # The signing key: 32 raw private bytes, 0600.
    assert stat.S_IMODE((first.state_dir / "device.key").stat().st_mode) == 0o600
    assert (first.state_dir / "device.key").read_bytes() == key.private_bytes()

    # Later uses keep the credential: no secret needed, no second device.
    second = Check(tmp_path, server.address, name="second")
    second.assert_exit(_verdict(second.report))
    assert second.report.report_id != report.report_id
    assert "Enrolled" not in second.proc.stderr
    assert (
        f"Uploaded to {server.address} as report {second.report.report_id} (stored)"
        in second.proc.stdout.strip().splitlines()
    )
    assert [d.device_id for d in _devices(server)] == [first.device_id]
    assert _stored(server, second.report.report_id).report == second.sent
    assert second.device_id == first.device_id
    assert _stored(server, second.report.report_id).summary.signing_key == key.key_id


def test_json_keeps_the_report_and_adds_the_upload(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    check = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file), "--json")
    report = check.report
    check.assert_exit(_verdict(report))
    printed = json.loads(check.proc.stdout)
    upload = printed.pop("upload")
    # The daemon never ran with this state dir: no advisories, and the key says so.
    assert printed.pop("advisories") == []
    # Everything else is the report's JSON as it was sent (personal fields hashed or
    # dropped), in the same shape `check --json` prints without --upload.
    assert printed == json_format.MessageToDict(check.sent, preserving_proto_field_name=True)
    stored = _stored(server, report.report_id)
    assert upload == {
        "server": server.address,
        "report_id": report.report_id,
        "device_id": check.device_id,
        "duplicate": False,
        "stored_at": stored.summary.received_at.ToJsonString(),
        "dictionary_id": 0,
        "enrolled": True,
        # The server's diagnosis of exactly this report, as it stored it.
        "diagnosis": _stored_diagnosis(server, report.report_id),
        "diagnosis_problem": None,
    }


def _stored_diagnosis(server: RunningServer, report_id: str) -> dict[str, object]:
    response = server.reports().GetDiagnosis(
        reports_pb2.GetDiagnosisRequest(report_id=report_id), metadata=bearer(server.admin_token)
    )
    assert not response.made_now  # the upload asked first: this is the stored one
    document: dict[str, object] = json.loads(response.diagnosis_json)
    return document


def test_the_servers_diagnosis_is_printed_after_the_upload(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    check = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file))
    check.assert_exit(_verdict(check.report))
    document = _stored_diagnosis(server, check.report.report_id)
    # The captured laptop's battery holds 62 % of its design capacity: the server says so.
    assert document["verdict"]["code"] == "repair_recommended"  # type: ignore[index]
    out = check.proc.stdout
    assert "The service network's diagnosis" in out
    assert out.index("Uploaded to") < out.index("A repair is recommended.")
    finding = document["findings"][0]  # type: ignore[index]
    assert finding["rule_id"] == "battery.worn"
    assert " ".join(finding["text"]["en"].split()) in " ".join(out.split())
    assert "Replace the battery" in out


def test_the_diagnosis_speaks_chinese_with_lang_zh_cn(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    check = Check(
        tmp_path, server.address, "--enroll-secret-file", str(secret_file), "--lang", "zh-CN"
    )
    check.assert_exit(_verdict(check.report))
    out = check.proc.stdout
    assert "诊断结果（服务端）" in out
    assert "建议维修。" in out
    assert "更换电池" in out
    assert "A repair is recommended." not in out


def test_an_unknown_lang_is_refused_before_any_probe_runs(tmp_path: Path) -> None:
    proc = agent("check", "--sysfs-root", str(LAPTOP), "--lang", "fr")
    assert proc.returncode == 2
    assert "'fr': use one of en, zh-CN" in proc.stderr
    assert proc.stdout == ""


def test_a_resend_is_acked_as_already_stored(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    check = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file))
    plan = UploadPlan.from_options(server.address, check.state_dir)
    again = upload_report(check.sent, plan)
    assert (again.report_id, again.duplicate, again.enrolled) == (
        check.report.report_id,
        True,
        False,
    )
    assert again.device_id == check.device_id


def test_a_revoked_device_is_told_and_enrolls_again_when_it_has_the_secret(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    first = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file))
    first.assert_exit(_verdict(first.report))
    old_device = first.device_id
    server.admin().RevokeDevice(
        admin_pb2.RevokeDeviceRequest(device_id=old_device),
        metadata=bearer(server.admin_token),
        timeout=30,
    )

    refused = Check(tmp_path, server.address, name="refused")
    refused.assert_exit(3)
    assert "Battery" in refused.proc.stdout  # the verdict is still shown
    said = words(refused.proc.stderr)
    assert "upload failed (UNAUTHENTICATED)" in said
    assert f"device {old_device} was revoked" in said
    assert "this device's credential was refused" in said
    assert "enroll again with --enroll-secret-file" in said
    with pytest.raises(grpc.RpcError) as nothing:
        _stored(server, refused.report.report_id)
    assert isinstance(nothing.value, grpc.Call)
    assert nothing.value.code() == grpc.StatusCode.NOT_FOUND

    again = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file), name="again")
    again.assert_exit(_verdict(again.report))
    said = words(again.proc.stderr)
    assert "This device's credential was refused" in said
    assert f"enrolling again with the secret in {secret_file}" in said
    assert again.device_id != old_device
    assert _stored(server, again.report.report_id).summary.device_id == again.device_id
    # The key outlives the enrollment: the new device registered the same one.
    assert _stored(server, again.report.report_id).summary.signing_key == first.key.key_id
    devices = {d.device_id: d.HasField("revoked_at") for d in _devices(server)}
    assert devices == {old_device: True, again.device_id: False}


def test_a_wrong_enroll_secret_is_refused_after_the_verdict(
    tmp_path: Path, server: RunningServer
) -> None:
    wrong = tmp_path / "wrong.secret"
    wrong.write_text("ple_not-a-secret-this-server-knows\n")
    check = Check(tmp_path, server.address, "--enroll-secret-file", str(wrong))
    check.assert_exit(3)
    assert "Battery" in check.proc.stdout
    said = words(check.proc.stderr)
    assert f"the enroll secret in {wrong} was refused" in said
    assert "ask an admin for a current one" in said
    assert not (check.state_dir / "credential").exists()
    assert _devices(server) == []


def test_a_trained_dictionary_is_fetched_kept_and_used(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    first = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file))
    assert _stored(server, first.report.report_id).summary.dictionary_id == 0
    _fill(server)
    trained = _train(server).dictionary

    second = Check(tmp_path, server.address, name="second")
    second.assert_exit(_verdict(second.report))
    stored = _stored(server, second.report.report_id)
    assert stored.report == second.sent
    assert stored.summary.dictionary_id == trained.dictionary_id != 0
    kept = second.state_dir / f"dictionary-{trained.dictionary_id}.zdict"
    assert kept.read_bytes() == trained.content
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert AgentState(second.state_dir).dictionary() == (trained.dictionary_id, trained.content)


def test_a_new_device_gets_the_dictionary_with_its_enrollment(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    _fill(server)
    trained = _train(server).dictionary
    check = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file), "--json")
    check.assert_exit(_verdict(check.report))
    assert json.loads(check.proc.stdout)["upload"]["dictionary_id"] == trained.dictionary_id
    summary = _stored(server, check.report.report_id).summary
    assert summary.dictionary_id == trained.dictionary_id


def test_a_server_restored_from_a_backup_hands_out_its_own_dictionary(
    tmp_path: Path, secret_file: Path, server: RunningServer
) -> None:
    # The backup holds this device and 101 reports, but no dictionary yet.
    first = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file))
    first.assert_exit(_verdict(first.report))
    _fill(server)
    data = server.data_dir
    server.stop()
    backup = tmp_path / "backup"
    shutil.copytree(data, backup)

    # The live server trains twice after the backup: the agent keeps dictionary 2.
    with RunningServer(data) as live:
        _train(live)
        newer = _train(live).dictionary
        kept = Check(tmp_path, live.address, name="kept")
        kept.assert_exit(_verdict(kept.report))
        assert _stored(live, kept.report.report_id).summary.dictionary_id == newer.dictionary_id

    # Restored: dictionary 2 was never issued here; its own first one is.
    with RunningServer(backup) as restored:
        own = _train(restored).dictionary
        assert own.dictionary_id != newer.dictionary_id
        check = Check(tmp_path, restored.address, name="restored")
        check.assert_exit(_verdict(check.report))
        said = words(check.proc.stderr)
        assert f"The server does not know dictionary {newer.dictionary_id}" in said
        stored = _stored(restored, check.report.report_id)
        assert stored.report == check.sent
        assert stored.summary.dictionary_id == own.dictionary_id
        assert AgentState(check.state_dir).dictionary() == (own.dictionary_id, own.content)
        assert [p.name for p in check.state_dir.glob("dictionary-*")] == [
            f"dictionary-{own.dictionary_id}.zdict"
        ]


def test_a_server_without_the_kept_dictionary_and_none_of_its_own_gets_plain_frames(
    tmp_path: Path, secret_file: Path, server: RunningServer
) -> None:
    first = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file))
    first.assert_exit(_verdict(first.report))
    # A dictionary this server never issued, as if kept from an earlier server.
    _fill(server)
    data = server.data_dir
    server.stop()
    backup = tmp_path / "backup"
    shutil.copytree(data, backup)
    with RunningServer(data) as live:
        _train(live)
        kept = Check(tmp_path, live.address, name="kept")
        kept.assert_exit(_verdict(kept.report))
        assert AgentState(kept.state_dir).dictionary() is not None
    with RunningServer(backup) as restored:
        check = Check(tmp_path, restored.address, name="restored")
        check.assert_exit(_verdict(check.report))
        assert _stored(restored, check.report.report_id).summary.dictionary_id == 0
        assert AgentState(check.state_dir).dictionary() is None


def test_no_secret_and_no_credential_is_refused_before_any_probe_runs(
    tmp_path: Path, server: RunningServer
) -> None:
    check = Check(tmp_path, server.address)
    check.assert_exit(2)
    said = words(check.proc.stderr)
    assert "this device has not enrolled yet" in said
    assert "--enroll-secret-file" in said and "PROBELINK_ENROLL_SECRET_FILE" in said
    assert check.proc.stdout == ""
    assert not check.out.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the enroll secret from"),
        ("", "is empty: it should hold one enroll secret"),
        ("  \n", "is empty: it should hold one enroll secret"),
        (b"\xff\xfe", "cannot read the enroll secret from"),
    ],
)
def test_an_unusable_secret_file_is_refused_before_any_probe_runs(
    tmp_path: Path, server: RunningServer, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "enroll.secret"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    check = Check(tmp_path, server.address, "--enroll-secret-file", str(path))
    check.assert_exit(2)
    assert message in words(check.proc.stderr)
    assert not check.out.exists()


def test_the_secret_file_can_come_from_the_environment(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    env = {**_env(), "PROBELINK_ENROLL_SECRET_FILE": str(secret_file)}
    env["PROBELINK_SERVER"] = server.address
    env["PROBELINK_AGENT_STATE"] = str(tmp_path / "env-state")
    proc = agent("check", "--sysfs-root", str(LAPTOP), "--upload", "--json", env=env)
    assert proc.returncode in (0, 1), proc.stderr
    upload = json.loads(proc.stdout)["upload"]
    assert (upload["server"], upload["enrolled"]) == (server.address, True)
    assert (tmp_path / "env-state" / "credential").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "nohost"], "expected HOST:PORT"),
        (["--server", "127.0.0.1:99999"], "the port must be a number from 1 to 65535"),
        (["--tls-cert", "/etc/hostname"], "--tls-cert and --tls-key go together"),
        (["--tls-ca", "/no/such/ca.pem"], "--tls-ca /no/such/ca.pem: no such file"),
    ],
)
def test_bad_connection_options_exit_2(
    tmp_path: Path, secret_file: Path, args: list[str], message: str
) -> None:
    proc = agent(
        "check",
        "--sysfs-root",
        str(LAPTOP),
        "--upload",
        "--state-dir",
        str(tmp_path / "state"),
        "--enroll-secret-file",
        str(secret_file),
        "--server",
        "127.0.0.1:1",
        *args,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in words(proc.stderr)
    assert proc.stdout == ""


def test_a_state_dir_that_cannot_be_made_exits_2(tmp_path: Path, secret_file: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    proc = agent(
        "check",
        "--upload",
        "--enroll-secret-file",
        str(secret_file),
        "--state-dir",
        str(blocker / "state"),
    )
    assert proc.returncode == 2, proc.stderr
    assert f"cannot create the state dir {blocker / 'state'}" in words(proc.stderr)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_that_is_down_gives_exit_3_after_the_verdict(
    tmp_path: Path, secret_file: Path
) -> None:
    address = f"127.0.0.1:{_free_port()}"
    check = Check(tmp_path, address, "--enroll-secret-file", str(secret_file))
    check.assert_exit(3)
    # The check ran and its verdict is shown; the report is still written.
    assert "Battery" in check.proc.stdout
    assert check.report.report_id
    said = words(check.proc.stderr)
    assert "upload failed (UNAVAILABLE)" in said
    assert f"is the server running at {address}?" in said
    assert not (check.state_dir / "credential").exists()


def test_a_server_that_is_down_keeps_the_json_valid(tmp_path: Path, secret_file: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    check = Check(tmp_path, address, "--enroll-secret-file", str(secret_file), "--json")
    check.assert_exit(3)
    printed = json.loads(check.proc.stdout)
    upload = printed.pop("upload")
    assert printed["report_id"] == check.report.report_id
    assert (upload["server"], upload["status"]) == (address, "UNAVAILABLE")
    assert f"is the server running at {address}?" in upload["error"]


def test_preview_prints_what_would_be_sent_and_sends_nothing_unasked(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    check = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file), "--preview")
    check.assert_exit(_verdict(check.report))
    shown = json.loads(check.proc.stdout[check.proc.stdout.index("{") :])
    assert shown == json_format.MessageToDict(check.sent, preserving_proto_field_name=True)
    assert shown["device"]["serial_number"].startswith("h:")
    assert check.report.device.serial_number not in check.proc.stdout
    assert "thinkpad-x1" not in check.proc.stdout  # the hostname is dropped
    assert f"Preview only: nothing was sent to {server.address}" in words(check.proc.stderr)
    listed = server.reports().ListReports(
        reports_pb2.ListReportsRequest(), metadata=bearer(server.admin_token)
    )
    assert list(listed.reports) == []


def test_a_deployment_salt_file_makes_hashes_agree_across_devices(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    salt = tmp_path / "deployment.salt"
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = Check(
        tmp_path / "one",
        server.address,
        "--enroll-secret-file",
        str(secret_file),
        "--privacy-salt-file",
        str(salt),
    )
    two = Check(
        tmp_path / "two",
        server.address,
        "--enroll-secret-file",
        str(secret_file),
        "--privacy-salt-file",
        str(salt),
    )
    one.assert_exit(_verdict(one.report))
    two.assert_exit(_verdict(two.report))
    # Two agents (two state dirs) on the same hardware and salt: the same hashed serial.
    a = _stored(server, one.report.report_id).report.device.serial_number
    b = _stored(server, two.report.report_id).report.device.serial_number
    assert a == b and a.startswith("h:")
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600


def test_preview_needs_upload(tmp_path: Path) -> None:
    done = agent("check", "--sysfs-root", str(LAPTOP), "--preview")
    assert done.returncode == 2
    assert "add --upload" in words(done.stderr)


# -- the device signing key ---------------------------------------------------------------


def test_the_device_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    state = AgentState(tmp_path / "state")
    key = state.device_key()
    again = AgentState(tmp_path / "state").device_key()
    assert again.private_bytes() == key.private_bytes()
    assert stat.S_IMODE(state.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.root.stat().st_mode) == 0o700
    # Dropping the enrollment keeps the key unless asked.
    state.forget_enrollment()
    assert state.device_key().public_key == key.public_key
    state.forget_enrollment(forget_key=True)
    assert not state.key_path.exists()
    assert state.device_key().public_key != key.public_key


def _make_key(state_dir: str, out: multiprocessing.Queue[bytes]) -> None:
    out.put(AgentState(Path(state_dir)).device_key().public_key)


def test_agents_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[bytes] = ctx.Queue()
    procs = [ctx.Process(target=_make_key, args=(str(tmp_path / "s"), out)) for _ in range(4)]
    for proc in procs:
        proc.start()
    keys = {out.get(timeout=60) for _ in procs}
    for proc in procs:
        proc.join(60)
    assert keys == {AgentState(tmp_path / "s").device_key().public_key}
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["device.key"]  # no drafts left


@pytest.mark.parametrize("content", [b"", b"\x00" * 31, b"\x00" * 64])
def test_a_damaged_key_file_names_the_file_and_what_to_do(tmp_path: Path, content: bytes) -> None:
    state = AgentState(tmp_path / "state")
    state.ensure()
    state.key_path.write_bytes(content)
    with pytest.raises(StateError) as caught:
        state.device_key()
    message = str(caught.value)
    assert message.startswith(f"{state.key_path} is not a device signing key ({len(content)} ")
    assert "Move it away, then enroll again" in message
    assert state.key_path.read_bytes() == content  # left for the person to look at


def test_a_damaged_key_file_stops_the_upload_before_any_probe_runs(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    (state_dir / "device.key").write_bytes(b"not a key")
    check = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file))
    check.assert_exit(2)
    # Spaces dropped: rich folds the long temporary path anywhere in its error box.
    said = "".join(words(check.proc.stderr).split())
    assert f"{state_dir / 'device.key'}isnotadevicesigningkey(9bytes" in said
    assert "Moveitaway,thenenrollagain" in said
    assert not check.out.exists()
    assert _devices(server) == []


def test_a_device_enrolled_before_keys_enrolls_again_when_it_has_the_secret(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    first = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file))
    first.assert_exit(_verdict(first.report))
    old_device = first.device_id
    # The server as an older release left it: no key for this device. (Restarted, so no
    # cached identity still holds the key.)
    data = server.data_dir
    server.stop()
    raw_sql(
        f"sqlite://{data / 'probelink.db'}",
        "UPDATE devices SET public_key = NULL WHERE device_id = ?",
        (old_device,),
    )
    with RunningServer(data) as restarted:
        refused = Check(tmp_path, restarted.address, name="refused")
        refused.assert_exit(3)
        said = words(refused.proc.stderr)
        assert "upload failed (INVALID_ARGUMENT)" in said
        assert "the server cannot verify this device's signature with the key it holds" in said
        assert f"device {old_device} enrolled before this server kept device keys" in said
        assert "enroll again with --enroll-secret-file" in said

        again = Check(
            tmp_path, restarted.address, "--enroll-secret-file", str(secret_file), name="again"
        )
        again.assert_exit(_verdict(again.report))
        said = words(again.proc.stderr)
        assert "The server cannot verify this device's signature with the key it holds" in said
        assert f"enrolling again with the secret in {secret_file}" in said
        stored = _stored(restarted, again.report.report_id)
        assert stored.summary.device_id == again.device_id != old_device
        assert (stored.summary.signature, stored.summary.signing_key) == (
            reports_pb2.SIGNATURE_VERDICT_VERIFIED,
            first.key.key_id,
        )


def test_a_replaced_key_is_refused_then_registered_by_enrolling_again(
    tmp_path: Path, server: RunningServer, secret_file: Path
) -> None:
    first = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file))
    first.assert_exit(_verdict(first.report))
    old_key = first.key
    # The damaged key was moved away, as the message says: the agent makes a new one,
    # which the server does not know.
    (first.state_dir / "device.key").rename(tmp_path / "device.key.damaged")
    refused = Check(tmp_path, server.address, name="refused")
    refused.assert_exit(3)
    said = words(refused.proc.stderr)
    assert "the server cannot verify this device's signature with the key it holds" in said
    assert f"does not verify with the key device {first.device_id} registered" in said
    assert old_key.key_id in said
    again = Check(tmp_path, server.address, "--enroll-secret-file", str(secret_file), name="again")
    again.assert_exit(_verdict(again.report))
    new_key = again.key
    assert new_key.key_id != old_key.key_id
    assert _stored(server, again.report.report_id).summary.signing_key == new_key.key_id
