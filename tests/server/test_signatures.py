"""Signed reports against a real server on loopback, on SQLite and on PostgreSQL.

A device registers its Ed25519 public key when it enrolls and signs every report; the
server verifies each signature with that key, stores the verdict beside the report and
hands out the signed bytes, the signature and the key so anyone can check them again.
A report that is unsigned, signed by another key, changed after signing, or sent by a
device that never registered a key is refused (INVALID_ARGUMENT, with its reason in the
trailing metadata), stored nowhere, counted in /metrics and logged at WARNING.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from probelink import wire
from probelink.channel import bearer
from probelink.server.auth import credentials
from probelink.signing import DeviceKey, verify
from probelink.v1 import (
    admin_pb2,
    gateway_pb2,
    gateway_pb2_grpc,
    report_pb2,
    reports_pb2,
    wire_pb2,
)
from probelink.wire import REFUSAL_REASON_KEY
from tests.server.conftest import raw_sql
from tests.server.ingest.reports import varied_reports
from tests.server.running import Device, RunningServer
from tests.server.streams import acks_of, refusals_of, stream_frames

SIGNATURE_LOG = "probelink.server.ingest.signature"


@pytest.fixture
def server(tmp_path: Path, store_url: str) -> Iterator[RunningServer]:
    with RunningServer(tmp_path / "data", db=store_url, metrics_listen="127.0.0.1:0") as running:
        yield running


def _refusal(excinfo: pytest.ExceptionInfo[grpc.RpcError]) -> tuple[grpc.StatusCode, str, str]:
    error = excinfo.value
    assert isinstance(error, grpc.Call)
    trailing = {key: value for key, value in error.trailing_metadata() or ()}
    return error.code(), error.details() or "", str(trailing.get(REFUSAL_REASON_KEY, ""))


def _stored_ids(server: RunningServer) -> list[str]:
    response = server.reports().ListReports(
        reports_pb2.ListReportsRequest(page_size=1000), metadata=bearer(server.admin_token)
    )
    return sorted(r.report_id for r in response.reports)


def _get(server: RunningServer, report_id: str) -> reports_pb2.GetReportResponse:
    response: reports_pb2.GetReportResponse = server.reports().GetReport(
        reports_pb2.GetReportRequest(report_id=report_id), metadata=bearer(server.admin_token)
    )
    return response


def _metrics(server: RunningServer) -> str:
    assert server.server is not None
    url = f"http://127.0.0.1:{server.server.metrics_port}/metrics"
    text: str = urllib.request.urlopen(url, timeout=10).read().decode()
    return text


def _refused_count(server: RunningServer, reason: str) -> float:
    prefix = f'probelink_reports_refused_total{{reason="{reason}"}} '
    line = next(x for x in _metrics(server).splitlines() if x.startswith(prefix))
    return float(line.removeprefix(prefix))


def _frame(serialized: bytes, signature: bytes, dictionary_id: int = 0) -> wire_pb2.ReportFrame:
    frame = wire.encode_report(serialized)
    frame.signature = signature
    frame.dictionary_id = dictionary_id
    return frame


def _tampered(serialized: bytes, report: report_pb2.Report) -> bytes:
    """`serialized` with one byte of the agent version flipped: still a valid Report."""
    where = serialized.index(report.agent_version.encode())
    changed = bytearray(serialized)
    changed[where] ^= 0x01
    assert report_pb2.Report.FromString(bytes(changed)).agent_version != report.agent_version
    return bytes(changed)


# -- enrollment ----------------------------------------------------------------------


def _gateway(server: RunningServer) -> gateway_pb2_grpc.AgentGatewayServiceStub:
    return gateway_pb2_grpc.AgentGatewayServiceStub(server.channel())


def _enroll(server: RunningServer, public_key: bytes) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as excinfo:
        _gateway(server).Enroll(
            gateway_pb2.EnrollRequest(
                enroll_secret=server.enroll_secret,
                identity=report_pb2.DeviceIdentity(model="Keyless"),
                device_public_key=public_key,
            ),
            timeout=30,
        )
    return excinfo.value


@pytest.mark.parametrize(
    ("public_key", "words"),
    [
        (b"", "device_public_key is empty: every report must be signed"),
        (bytes(31), "is 32 raw bytes, not 31"),
        (bytes(33), "is 32 raw bytes, not 33"),
        # The identity point: with it, one signature would verify for every report.
        ((1).to_bytes(32, "little"), "a weak Ed25519 public key"),
        (b"\xff" * 32, "not a point on the curve"),
    ],
)
def test_enrollment_without_a_usable_key_is_refused_and_adds_no_device(
    server: RunningServer, public_key: bytes, words: str
) -> None:
    error = _enroll(server, public_key)
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in (error.details() or "")
    devices = server.admin().ListDevices(
        admin_pb2.ListDevicesRequest(), metadata=bearer(server.admin_token)
    )
    assert list(devices.devices) == []


def test_a_wrong_secret_is_refused_before_the_key_is_looked_at(server: RunningServer) -> None:
    with pytest.raises(grpc.RpcError) as excinfo:
        _gateway(server).Enroll(
            gateway_pb2.EnrollRequest(enroll_secret="ple_" + "x" * 43), timeout=30
        )
    assert excinfo.value.code() == grpc.StatusCode.UNAUTHENTICATED


# -- the good path --------------------------------------------------------------------


def test_a_signed_report_is_stored_verified_with_its_signature_and_key(
    server: RunningServer,
) -> None:
    device = server.enroll()
    report = varied_reports(1, seed=101)[0]
    report.agent.spool_evicted = 7
    serialized = report.SerializeToString()
    first = device.upload(report).ack
    assert (first.report_id, first.duplicate) == (report.report_id, False)
    got = _get(server, report.report_id)
    assert got.report == report
    assert (got.summary.signature, got.summary.signing_key, got.summary.spool_evicted) == (
        reports_pb2.SIGNATURE_VERDICT_VERIFIED,
        device.key.key_id,
        7,
    )
    assert got.serialized_report == serialized
    assert got.signature == device.key.sign(serialized)
    assert got.device_public_key == device.key.public_key
    assert verify(got.device_public_key, got.signature, hashlib.sha256(serialized).digest())
    listed = server.reports().ListReports(
        reports_pb2.ListReportsRequest(), metadata=bearer(server.admin_token)
    )
    assert list(listed.reports) == [got.summary]


def test_a_resend_with_another_dictionary_is_a_duplicate_with_the_same_signature(
    server: RunningServer,
) -> None:
    device = server.enroll()
    reports = varied_reports(101, seed=102)
    for report in reports[:100]:
        device.upload(report)
    trained = (
        server.admin()
        .TrainDictionary(admin_pb2.TrainDictionaryRequest(), metadata=bearer(server.admin_token))
        .dictionary
    )
    last = reports[100]
    device.upload(last)
    before = _get(server, last.report_id)
    # The signature covers the report, not its compression: the same one travels again.
    again = device.upload(last, device.encoder(trained.content, trained.dictionary_id)).ack
    assert again.duplicate
    assert _get(server, last.report_id) == before


# -- refusals ---------------------------------------------------------------------------


def _bad_frames(
    device: Device, report: report_pb2.Report
) -> dict[str, tuple[wire_pb2.ReportFrame, str, str]]:
    """name -> (frame, refusal reason, words the message holds)."""
    serialized = report.SerializeToString()
    signature = device.key.sign(serialized)
    other = DeviceKey.generate()
    return {
        "unsigned": (
            _frame(serialized, b""),
            "signature_missing",
            f"carries no signature: every report must be signed with the key device "
            f"{device.device_id} registered ({device.key.key_id})",
        ),
        "truncated signature": (
            _frame(serialized, signature[:63]),
            "signature_missing",
            "carries 63 bytes of signature, not 64",
        ),
        "another key": (
            _frame(serialized, other.sign(serialized)),
            "signature_invalid",
            f"does not verify with the key device {device.device_id} registered at "
            f"enrollment ({device.key.key_id})",
        ),
        "tampered report": (
            _frame(_tampered(serialized, report), signature),
            "signature_invalid",
            "changed after it was signed, or signed with another key",
        ),
        "signature of another report": (
            _frame(serialized, device.key.sign(varied_reports(1, seed=9)[0].SerializeToString())),
            "signature_invalid",
            "resending it cannot help",
        ),
    }


BAD_NAMES = (
    "unsigned",
    "truncated signature",
    "another key",
    "tampered report",
    "signature of another report",
)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_badly_signed_report_is_refused_counted_logged_and_not_stored(
    server: RunningServer, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    device = server.enroll()
    report = varied_reports(1, seed=103)[0]
    frame, reason, words = _bad_frames(device, report)[name]
    before = _refused_count(server, reason)
    with (
        caplog.at_level(logging.WARNING, logger=SIGNATURE_LOG),
        pytest.raises(grpc.RpcError) as excinfo,
    ):
        device.upload_frame(frame)
    code, details, got_reason = _refusal(excinfo)
    assert (code, got_reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert words in details, details
    assert _stored_ids(server) == []
    assert _refused_count(server, reason) == before + 1
    # What the operator reads: one WARNING naming the device, the report and the key.
    [record] = [r for r in caplog.records if r.name == SIGNATURE_LOG]
    assert record.levelno == logging.WARNING
    line = record.getMessage()
    assert line.startswith(
        f"refused report {report.report_id} from device {device.device_id} "
        f"({reason}, key {device.key.key_id}): "
    )
    assert details in line
    # The device's properly signed report is still taken afterwards.
    assert not device.upload(report).ack.duplicate
    assert _stored_ids(server) == [report.report_id]


def test_a_bad_signature_on_a_stored_report_is_refused_and_the_copy_kept(
    server: RunningServer,
) -> None:
    device = server.enroll()
    report = varied_reports(1, seed=104)[0]
    device.upload(report)
    before = _get(server, report.report_id)
    serialized = report.SerializeToString()
    forged = _frame(serialized, DeviceKey.generate().sign(serialized))
    with pytest.raises(grpc.RpcError) as excinfo:
        device.upload_frame(forged)
    assert _refusal(excinfo)[2] == "signature_invalid"
    assert _get(server, report.report_id) == before


def test_a_device_enrolled_before_keys_is_told_to_enroll_again(
    server: RunningServer, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A row as the server wrote it before migration 2: no public key.
    credential = credentials.new_secret(credentials.DEVICE_CREDENTIAL)
    device_id = "4f1c0000-1111-4222-8333-444455556666"
    secret_id = (
        server.admin()
        .ListEnrollSecrets(
            admin_pb2.ListEnrollSecretsRequest(), metadata=bearer(server.admin_token)
        )
        .secrets[0]
        .secret_id
    )
    raw_sql(
        store_url,
        "INSERT INTO devices (device_id, credential_hash, enroll_secret_id, manufacturer, "
        "model, agent_version, enrolled_at_us) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (device_id, credentials.hash_secret(credential), secret_id, "Acme", "Old", "0.0.9", 1),
    )
    legacy = Device(device_id, credential, server.channel(), DeviceKey.generate())
    report = varied_reports(1, seed=105)[0]
    with (
        caplog.at_level(logging.WARNING, logger=SIGNATURE_LOG),
        pytest.raises(grpc.RpcError) as excinfo,
    ):
        legacy.upload(report)
    code, details, reason = _refusal(excinfo)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "signature_missing")
    assert details == (
        f"device {device_id} enrolled before this server kept device keys, so its reports "
        "cannot be verified and none is stored: enroll the device again (the agent "
        "registers its public key when it enrolls), then resend"
    )
    assert _stored_ids(server) == []
    assert _refused_count(server, "signature_missing") == 1
    [record] = [r for r in caplog.records if r.name == SIGNATURE_LOG]
    assert f"device {device_id} (signature_missing, key none registered)" in record.getMessage()
    # Enrolled again (with its key), the same report goes in.
    again = server.enroll(key=legacy.key)
    assert not again.upload(report).ack.duplicate


async def test_on_a_stream_a_badly_signed_report_is_refused_alone(
    server: RunningServer,
) -> None:
    device = server.enroll()
    reports = varied_reports(4, seed=106)
    frames = [device.frame(r) for r in reports]
    serialized = reports[1].SerializeToString()
    frames[1] = _frame(serialized, DeviceKey.generate().sign(serialized))
    frames[2] = _frame(reports[2].SerializeToString(), b"")
    answers = await stream_frames(server.address, device.credential, frames)
    refusals = {r.sequence: r for r in refusals_of(answers)}
    assert sorted(refusals) == [2, 3]
    assert (refusals[2].reason, refusals[2].report_id) == (
        wire_pb2.REFUSAL_REASON_SIGNATURE_INVALID,
        reports[1].report_id,
    )
    assert refusals[3].reason == wire_pb2.REFUSAL_REASON_SIGNATURE_MISSING
    invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert {r.code for r in refusals.values()} == {invalid}
    assert sorted(a.sequence for a in acks_of(answers)) == [1, 4]
    assert _stored_ids(server) == sorted([reports[0].report_id, reports[3].report_id])
    assert _refused_count(server, "signature_invalid") == 1
    assert _refused_count(server, "signature_missing") == 1


def test_one_devices_flood_of_refusals_is_logged_a_few_times_and_counted_whole(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    noisy, other = server.enroll("Noisy"), server.enroll("Other")
    reports = varied_reports(9, seed=107)
    with caplog.at_level(logging.WARNING, logger=SIGNATURE_LOG):
        for report in reports[:8]:
            with pytest.raises(grpc.RpcError):
                noisy.upload_frame(_frame(report.SerializeToString(), b""))
        with pytest.raises(grpc.RpcError):
            other.upload_frame(_frame(reports[8].SerializeToString(), b""))
    lines = [r.getMessage() for r in caplog.records if r.name == SIGNATURE_LOG]
    from_noisy = [x for x in lines if noisy.device_id in x]
    assert len(from_noisy) == 5
    assert "further refusals from this device within 60 s are only counted" in from_noisy[-1]
    assert not any("further" in x for x in from_noisy[:-1])
    # Another device's refusal is not hidden by the first one's flood.
    assert [x for x in lines if other.device_id in x] != []
    assert _refused_count(server, "signature_missing") == 9
