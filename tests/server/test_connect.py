"""Connect: one long-lived stream per device, reports pipelined up, answers down.

Real server on loopback, real grpc.aio client; on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from probelink.channel import bearer
from probelink.v1 import admin_pb2, gateway_pb2, reports_pb2, wire_pb2
from tests.server.ingest.reports import varied_reports
from tests.server.running import RunningServer
from tests.server.streams import acks_of, connect_status, open_stream, refusals_of, stream_frames


@pytest.fixture
def server(tmp_path: Path, store_url: str) -> Iterator[RunningServer]:
    with RunningServer(tmp_path / "data", db=store_url) as running:
        yield running


def _stored(server: RunningServer) -> set[str]:
    response = server.reports().ListReports(
        reports_pb2.ListReportsRequest(page_size=1000), metadata=bearer(server.admin_token)
    )
    return {r.report_id for r in response.reports}


async def _read(call: Any) -> gateway_pb2.ConnectResponse:
    answer = await asyncio.wait_for(call.read(), 10)
    assert isinstance(answer, gateway_pb2.ConnectResponse), answer
    return answer


async def test_a_pipelined_backlog_is_acked_once_each_after_commit(
    server: RunningServer,
) -> None:
    device = server.enroll()
    reports = varied_reports(300, seed=2)
    encoder = device.encoder()
    frames = [encoder.encode(r.SerializeToString()) for r in reports]
    frames.append(frames[10])  # a resend inside the same stream
    answers = await stream_frames(server.address, device.credential, frames)
    acks = acks_of(answers)
    assert not refusals_of(answers)
    assert sorted(a.sequence for a in acks) == list(range(1, 302))
    by_sequence = {a.sequence: a for a in acks}
    assert all(by_sequence[i + 1].report_id == r.report_id for i, r in enumerate(reports))
    assert by_sequence[301].duplicate and by_sequence[301].report_id == reports[10].report_id
    assert _stored(server) == {r.report_id for r in reports}


async def test_a_bad_frame_is_refused_alone_and_the_stream_goes_on(
    server: RunningServer,
) -> None:
    device = server.enroll()
    good = [device.frame(r) for r in varied_reports(3, seed=4)]
    bad = wire_pb2.ReportFrame(zstd_frame=b"definitely not zstd")
    answers = await stream_frames(
        server.address, device.credential, [good[0], bad, good[1], good[2]]
    )
    refusals = refusals_of(answers)
    assert len(refusals) == 1
    refusal = refusals[0]
    assert (refusal.sequence, refusal.reason) == (2, wire_pb2.REFUSAL_REASON_NOT_ZSTD)
    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert refusal.message
    assert sorted(a.sequence for a in acks_of(answers)) == [1, 3, 4]


async def test_the_current_dictionary_goes_down_on_connect_and_when_trained(
    server: RunningServer,
) -> None:
    device = server.enroll()
    reports = varied_reports(240, seed=6)
    await stream_frames(
        server.address,
        device.credential,
        [device.frame(r) for r in reports[:200]],
    )
    channel, call, queue = await open_stream(server.address, device.credential)
    try:
        # No dictionary yet: nothing comes down until one is trained.
        trained = (
            server.admin()
            .TrainDictionary(
                admin_pb2.TrainDictionaryRequest(), metadata=bearer(server.admin_token)
            )
            .dictionary
        )
        pushed = await _read(call)
        assert pushed.dictionary == trained
        assert trained.dictionary_id == 1 and trained.trained_on_reports == 200
        # Frames made with it are accepted, and smaller.
        encoder = device.encoder(trained.content, trained.dictionary_id)
        frame = encoder.encode(reports[200].SerializeToString())
        plain = device.frame(reports[200])
        assert len(frame.zstd_frame) < len(plain.zstd_frame)
        queue.put_nowait(
            gateway_pb2.ConnectRequest(report=gateway_pb2.ReportUpload(sequence=1, frame=frame))
        )
        answer = await _read(call)
        assert [a.report_id for a in answer.acks.acks] == [reports[200].report_id]
    finally:
        queue.put_nowait(None)
        await channel.close()
    # A new stream that already holds it gets no copy; one holding none gets it first.
    answers = await stream_frames(
        server.address,
        device.credential,
        [encoder.encode(reports[201].SerializeToString())],
        dictionary_id=1,
    )
    assert [a.WhichOneof("body") for a in answers] == ["acks"]
    answers = await stream_frames(
        server.address, device.credential, [encoder.encode(reports[202].SerializeToString())]
    )
    assert [a.WhichOneof("body") for a in answers] == ["dictionary", "acks"]
    # GetDictionary serves it too, by id and as the current one.
    got = device.gateway.GetDictionary(gateway_pb2.GetDictionaryRequest(), metadata=device.metadata)
    assert got.dictionary == trained


async def test_training_needs_enough_reports(server: RunningServer) -> None:
    with pytest.raises(grpc.RpcError) as excinfo:
        server.admin().TrainDictionary(
            admin_pb2.TrainDictionaryRequest(), metadata=bearer(server.admin_token)
        )
    assert excinfo.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "at least" in (excinfo.value.details() or "")


async def test_revoking_a_device_ends_its_open_stream(server: RunningServer) -> None:
    device = server.enroll()
    channel, call, queue = await open_stream(server.address, device.credential)
    try:
        frame = device.frame(varied_reports(1)[0])
        queue.put_nowait(
            gateway_pb2.ConnectRequest(report=gateway_pb2.ReportUpload(sequence=1, frame=frame))
        )
        assert (await _read(call)).HasField("acks")
        server.admin().RevokeDevice(
            admin_pb2.RevokeDeviceRequest(device_id=device.device_id),
            metadata=bearer(server.admin_token),
        )
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await asyncio.wait_for(call.read(), 10)
        assert excinfo.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "revoked" in (excinfo.value.details() or "")
    finally:
        queue.put_nowait(None)
        await channel.close()


def test_connect_without_a_device_credential_is_refused(server: RunningServer) -> None:
    assert connect_status(server.address, "pld_" + "x" * 43) == grpc.StatusCode.UNAUTHENTICATED
    assert connect_status(server.address, server.admin_token) == grpc.StatusCode.PERMISSION_DENIED
    assert connect_status(server.address, server.enroll().credential) == grpc.StatusCode.OK


def _dictionary_ids(server: RunningServer, wait_for: int, timeout: float = 30) -> int:
    """The server's newest dictionary id once it reaches `wait_for` (training runs in
    the background), or what it has when `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        assert server.server is not None
        current = server.server.book.current
        got = current.dictionary_id if current else 0
        if got >= wait_for or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


@pytest.mark.parametrize(("retrain_every_s", "expected"), [(3600.0, 1), (0.0, 2)])
async def test_dictionaries_are_trained_by_themselves_and_not_too_often(
    tmp_path: Path, retrain_every_s: float, expected: int
) -> None:
    with RunningServer(
        tmp_path / "data", dict_train_after=120, dict_retrain_every_s=retrain_every_s
    ) as server:
        device = server.enroll()
        reports = varied_reports(240, seed=8)
        encoder = device.encoder()
        first = [encoder.encode(r.SerializeToString()) for r in reports[:120]]
        await stream_frames(server.address, device.credential, first)
        assert _dictionary_ids(server, 1) == 1
        second = [encoder.encode(r.SerializeToString()) for r in reports[120:]]
        await stream_frames(server.address, device.credential, second)
        assert _dictionary_ids(server, expected, timeout=30 if expected == 2 else 1) == expected
