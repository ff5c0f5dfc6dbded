"""UploadReport against a real server on loopback, on SQLite and on PostgreSQL.

Each refusal is a gRPC status a client can act on, with the reason in the trailing
metadata; nothing refused is stored, and what was stored before stays as it was.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import zstandard

from probelink import wire
from probelink.channel import bearer
from probelink.v1 import gateway_pb2, gateway_pb2_grpc, reports_pb2, wire_pb2
from probelink.wire import REFUSAL_REASON_KEY
from tests.server.ingest.reports import varied_reports
from tests.server.running import Device, RunningServer


@pytest.fixture
def server(tmp_path: Path, store_url: str) -> Iterator[RunningServer]:
    with RunningServer(tmp_path / "data", db=store_url) as running:
        yield running


def _refusal(excinfo: pytest.ExceptionInfo[grpc.RpcError]) -> tuple[grpc.StatusCode, str, str]:
    error = excinfo.value
    assert isinstance(error, grpc.Call)
    trailing = {key: value for key, value in error.trailing_metadata() or ()}
    reason = trailing.get(REFUSAL_REASON_KEY, "")
    return error.code(), error.details() or "", str(reason)


def _stored_ids(server: RunningServer) -> list[str]:
    response = server.reports().ListReports(
        reports_pb2.ListReportsRequest(page_size=1000), metadata=bearer(server.admin_token)
    )
    return sorted(r.report_id for r in response.reports)


def test_a_report_is_stored_once_and_read_back_whole(server: RunningServer) -> None:
    device = server.enroll()
    report = varied_reports(1)[0]
    first = device.upload(report).ack
    again = device.upload(report).ack
    assert (first.report_id, first.duplicate) == (report.report_id, False)
    assert (again.report_id, again.duplicate) == (report.report_id, True)
    assert again.stored_at == first.stored_at
    assert _stored_ids(server) == [report.report_id]
    got = server.reports().GetReport(
        reports_pb2.GetReportRequest(report_id=report.report_id), metadata=device.metadata
    )
    assert got.report == report
    assert got.summary.device_id == device.device_id
    assert got.summary.report_bytes == report.ByteSize()
    metrics = server.server.metrics  # type: ignore[union-attr]
    assert metrics.stored._value.get() == 1
    assert metrics.duplicates._value.get() == 1


def test_the_same_id_with_other_content_is_refused_and_the_first_kept(
    server: RunningServer,
) -> None:
    device = server.enroll()
    report = varied_reports(1)[0]
    device.upload(report)
    forged = type(report)()
    forged.CopyFrom(report)
    forged.agent_version = "tampered"
    with pytest.raises(grpc.RpcError) as excinfo:
        device.upload(forged)
    code, details, reason = _refusal(excinfo)
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "id_conflict")
    assert report.report_id in details and "new id" in details
    got = server.reports().GetReport(
        reports_pb2.GetReportRequest(report_id=report.report_id), metadata=device.metadata
    )
    assert got.report == report


def test_another_device_cannot_claim_a_stored_report_id(server: RunningServer) -> None:
    report = varied_reports(1)[0]
    server.enroll().upload(report)
    with pytest.raises(grpc.RpcError) as excinfo:
        server.enroll("Other").upload(report)
    assert _refusal(excinfo)[2] == "id_conflict"


def _frame(data: bytes, dictionary_id: int = 0) -> wire_pb2.ReportFrame:
    return wire_pb2.ReportFrame(dictionary_id=dictionary_id, zstd_frame=data)


def _bomb_without_size() -> bytes:
    # Streamed: zstd cannot know the size in advance, so the header declares none.
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    chunk = compressor.compressobj()
    parts = [chunk.compress(b"\0" * (1 << 20)) for _ in range(64)]
    return b"".join(parts) + chunk.flush()


def _forged_size(declared: int) -> bytes:
    real = wire.encode_report(varied_reports(1)[0].SerializeToString()).zstd_frame
    # Rewrite the header to a single-segment frame with an 8-byte content size field.
    descriptor = 0b11100100  # FCS 8 bytes, single segment, checksum
    body = real[4 + 1 + _header_tail(real) :]
    return real[:4] + bytes([descriptor]) + struct.pack("<Q", declared) + body


def _header_tail(frame: bytes) -> int:
    fhd = frame[4]
    fcs_flag, single, dict_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
    window = 0 if single else 1
    dict_len = (0, 1, 2, 4)[dict_flag]
    fcs_len = (1 if single else 0, 2, 4, 8)[fcs_flag]
    return window + dict_len + fcs_len


def _bad_frames() -> dict[str, tuple[wire_pb2.ReportFrame, grpc.StatusCode, str]]:
    report = varied_reports(1, seed=5)[0].SerializeToString()
    good = wire.encode_report(report).zstd_frame
    no_checksum = zstandard.ZstdCompressor(write_checksum=False).compress(report)
    flipped = bytearray(good)
    flipped[-1] ^= 0xFF
    bad = grpc.StatusCode.INVALID_ARGUMENT
    return {
        "not zstd": (_frame(b"PK\x03\x04 not a frame"), bad, "not_zstd"),
        "empty": (_frame(b""), bad, "not_zstd"),
        "bomb, no declared size": (_frame(_bomb_without_size()), bad, "no_content_size"),
        "bomb, size declared": (
            _frame(zstandard.ZstdCompressor(write_checksum=True).compress(b"\0" * (64 << 20))),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "too_large",
        ),
        "forged huge size": (
            _frame(_forged_size(1 << 40)),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "too_large",
        ),
        "truncated": (_frame(good[: len(good) // 2]), bad, "truncated"),
        "no checksum": (_frame(no_checksum), bad, "no_checksum"),
        "checksum wrong": (_frame(bytes(flipped)), grpc.StatusCode.DATA_LOSS, "corrupt"),
        "size 0 then garbage": (
            _frame(zstandard.ZstdCompressor(write_checksum=True).compress(b"") + b"garbage!"),
            bad,
            "trailing_data",
        ),
        "not a report": (
            _frame(wire.encode_report(b"\xff\xff\xff\xff not protobuf").zstd_frame),
            bad,
            "malformed_report",
        ),
        "unknown dictionary": (
            _frame(good, dictionary_id=77),
            grpc.StatusCode.FAILED_PRECONDITION,
            "unknown_dictionary",
        ),
    }


BAD = _bad_frames()


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_frame_gets_its_status_and_nothing_is_stored(
    server: RunningServer, name: str
) -> None:
    frame, code, reason = BAD[name]
    device = server.enroll()
    with pytest.raises(grpc.RpcError) as excinfo:
        device.upload_frame(frame)
    got_code, details, got_reason = _refusal(excinfo)
    assert (got_code, got_reason) == (code, reason), details
    assert details  # a sentence for a person, checked in the ingest unit tests
    assert _stored_ids(server) == []
    refused = server.server.metrics.refused.labels(reason=reason)  # type: ignore[union-attr]
    assert refused._value.get() == 1
    # The server still takes a good report afterwards.
    assert not device.upload(varied_reports(1, seed=9)[0]).ack.duplicate


def test_unknown_dictionary_tells_the_agent_to_fetch_the_current_one(
    server: RunningServer,
) -> None:
    device = server.enroll()
    with pytest.raises(grpc.RpcError) as excinfo:
        device.upload_frame(BAD["unknown dictionary"][0])
    details = excinfo.value.details() or ""
    assert "77" in details and "GetDictionary" in details


def test_an_oversized_grpc_message_is_refused_by_grpc_itself(server: RunningServer) -> None:
    device = server.enroll()
    huge = _frame(b"\x28\xb5\x2f\xfd" + b"\0" * (2 << 20))
    with pytest.raises(grpc.RpcError) as excinfo:
        device.upload_frame(huge)
    assert excinfo.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _stored_ids(server) == []


def test_upload_without_a_frame_is_invalid(server: RunningServer) -> None:
    device = server.enroll()
    with pytest.raises(grpc.RpcError) as excinfo:
        device.gateway.UploadReport(gateway_pb2.UploadReportRequest(), metadata=device.metadata)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_revoked_device_can_no_longer_upload(server: RunningServer) -> None:
    from probelink.v1 import admin_pb2

    device = server.enroll()
    device.upload(varied_reports(1)[0])
    server.admin().RevokeDevice(
        admin_pb2.RevokeDeviceRequest(device_id=device.device_id),
        metadata=bearer(server.admin_token),
    )
    with pytest.raises(grpc.RpcError) as excinfo:
        device.upload(varied_reports(1, seed=3)[0])
    assert excinfo.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (excinfo.value.details() or "")


def test_enroll_refuses_wrong_revoked_and_missing_secrets(server: RunningServer) -> None:
    from probelink.v1 import admin_pb2, report_pb2

    stub = gateway_pb2_grpc.AgentGatewayServiceStub(server.channel())

    def enroll(secret: str) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as excinfo:
            stub.Enroll(
                gateway_pb2.EnrollRequest(
                    enroll_secret=secret, identity=report_pb2.DeviceIdentity(model="X")
                )
            )
        return excinfo.value

    assert enroll("").code() == grpc.StatusCode.INVALID_ARGUMENT
    assert enroll("ple_" + "x" * 43).code() == grpc.StatusCode.UNAUTHENTICATED
    assert enroll(server.admin_token).code() == grpc.StatusCode.UNAUTHENTICATED
    created = server.admin().CreateEnrollSecret(
        admin_pb2.CreateEnrollSecretRequest(label="desk"), metadata=bearer(server.admin_token)
    )
    assert server.enroll(secret=created.secret).device_id
    server.admin().RevokeEnrollSecret(
        admin_pb2.RevokeEnrollSecretRequest(secret_id=created.info.secret_id),
        metadata=bearer(server.admin_token),
    )
    error = enroll(created.secret)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (error.details() or "")


def test_devices_keep_working_after_the_secret_they_enrolled_with_is_revoked(
    server: RunningServer,
) -> None:
    # Revoking a secret stops new enrollments; devices already enrolled are revoked
    # one by one (RevokeDevice), so a leaked secret does not take a fleet offline.
    from probelink.v1 import admin_pb2

    admin = server.admin()
    created = admin.CreateEnrollSecret(
        admin_pb2.CreateEnrollSecretRequest(label="bench"), metadata=bearer(server.admin_token)
    )
    device: Device = server.enroll(secret=created.secret)
    admin.RevokeEnrollSecret(
        admin_pb2.RevokeEnrollSecretRequest(secret_id=created.info.secret_id),
        metadata=bearer(server.admin_token),
    )
    assert not device.upload(varied_reports(1)[0]).ack.duplicate


def test_a_damaged_stored_report_is_an_explained_internal_error(
    server: RunningServer, store_url: str
) -> None:
    from tests.server.conftest import raw_sql

    device = server.enroll()
    report = varied_reports(1, seed=61)[0]
    device.upload(report)
    raw_sql(
        store_url,
        "UPDATE reports SET frame = ? WHERE report_id = ?",
        (b"\0" * 16, report.report_id),
    )
    with pytest.raises(grpc.RpcError) as excinfo:
        server.reports().GetReport(
            reports_pb2.GetReportRequest(report_id=report.report_id), metadata=device.metadata
        )
    assert isinstance(excinfo.value, grpc.Call)
    assert excinfo.value.code() == grpc.StatusCode.INTERNAL
    assert "cannot be read back" in (excinfo.value.details() or "")
