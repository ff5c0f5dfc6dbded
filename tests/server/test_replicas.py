"""Two server replicas on one PostgreSQL: what one issues, the other honours.

Bootstrap happens once, a device enrolled on one replica uploads to the other, a
dictionary trained on one is understood by the other, and a revocation on one is
seen by the other within its identity cache's lifetime.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from probelink.channel import bearer, open_channel
from probelink.v1 import admin_pb2, gateway_pb2, gateway_pb2_grpc, reports_pb2
from tests.server.ingest.reports import varied_reports
from tests.server.running import RunningServer


@pytest.fixture
def replicas(tmp_path: Path, pg_isolated_url: str) -> Iterator[tuple[RunningServer, RunningServer]]:
    with (
        RunningServer(tmp_path / "a", db=pg_isolated_url) as a,
        RunningServer(tmp_path / "b", db=pg_isolated_url) as b,
    ):
        yield a, b


def test_two_replicas_share_identities_reports_and_dictionaries(
    replicas: tuple[RunningServer, RunningServer],
) -> None:
    a, b = replicas
    # Exactly one replica bootstrapped; its admin token works on both.
    assert (a.data_dir / "admin.token").exists()
    assert not (b.data_dir / "admin.token").exists()
    admin = bearer(a.admin_token)
    device = a.enroll()
    reports = varied_reports(121, seed=71)
    for report in reports[:120]:
        device.upload(report)
    trained = a.admin().TrainDictionary(admin_pb2.TrainDictionaryRequest(), metadata=admin)
    dictionary = trained.dictionary
    # Replica b never saw the training or the enrollment, yet takes a frame made with
    # that dictionary from a device enrolled on a, checks its signature with the key
    # the device registered on a, and serves the report back.
    encoder = device.encoder(dictionary.content, dictionary.dictionary_id)
    frame = encoder.encode(reports[120].SerializeToString())
    with open_channel(b.address) as channel:
        stub = gateway_pb2_grpc.AgentGatewayServiceStub(channel)
        ack = stub.UploadReport(
            gateway_pb2.UploadReportRequest(frame=frame), metadata=device.metadata, timeout=30
        ).ack
    assert ack.report_id == reports[120].report_id and not ack.duplicate
    got = b.reports().GetReport(
        reports_pb2.GetReportRequest(report_id=ack.report_id), metadata=admin
    )
    assert got.report == reports[120]
    assert got.summary.dictionary_id == dictionary.dictionary_id
    assert (got.summary.signature, got.summary.signing_key) == (
        reports_pb2.SIGNATURE_VERDICT_VERIFIED,
        device.key.key_id,
    )
    # The same report sent to a is a duplicate, not a second copy.
    assert device.upload(reports[120], encoder).ack.duplicate


def test_a_revocation_on_one_replica_reaches_the_other(
    replicas: tuple[RunningServer, RunningServer],
) -> None:
    a, b = replicas
    device = a.enroll()
    with open_channel(b.address) as channel:
        stub = gateway_pb2_grpc.AgentGatewayServiceStub(channel)
        frame = device.frame(varied_reports(1, seed=72)[0])
        stub.UploadReport(gateway_pb2.UploadReportRequest(frame=frame), metadata=device.metadata)
        a.admin().RevokeDevice(
            admin_pb2.RevokeDeviceRequest(device_id=device.device_id),
            metadata=bearer(a.admin_token),
        )
        frame = device.frame(varied_reports(1, seed=73)[0])
        deadline = time.monotonic() + 30  # b's identity cache holds it for up to 2 s
        while True:
            try:
                stub.UploadReport(
                    gateway_pb2.UploadReportRequest(frame=frame), metadata=device.metadata
                )
            except grpc.RpcError as error:
                assert isinstance(error, grpc.Call)
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
                break
            assert time.monotonic() < deadline, "replica b never saw the revocation"
            frame = device.frame(varied_reports(1, seed=int(time.time()))[0])
            time.sleep(0.1)
