"""A test client for `Connect`: one stream, frames pipelined, every answer collected.

    answers = await stream_frames(address, credential, frames)   # acks, refusals, dictionaries
    acks = {a.sequence: a for a in acks_of(answers)}

It sends a hello, then every frame without waiting (numbered 1..n), then waits until
each has been answered and half-closes the stream — what a real agent does with a
backlog.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import grpc

from probelink.channel import bearer, open_aio_channel, open_channel
from probelink.v1 import gateway_pb2, gateway_pb2_grpc, wire_pb2


def acks_of(answers: Sequence[gateway_pb2.ConnectResponse]) -> list[wire_pb2.ReportAck]:
    """Every ack in `answers`, in the order they came (acks travel in groups)."""
    return [ack for answer in answers for ack in answer.acks.acks]


def refusals_of(answers: Sequence[gateway_pb2.ConnectResponse]) -> list[wire_pb2.ReportRefusal]:
    return [a.refusal for a in answers if a.HasField("refusal")]


async def stream_frames(
    address: str,
    credential: str,
    frames: Sequence[wire_pb2.ReportFrame],
    dictionary_id: int = 0,
    timeout: float = 60,
) -> list[gateway_pb2.ConnectResponse]:
    """Send `frames` on one stream; every message the server sent back, in order."""
    answers: list[gateway_pb2.ConnectResponse] = []
    answered = asyncio.Event()
    pending = set(range(1, len(frames) + 1))
    if not pending:
        answered.set()

    async def requests() -> AsyncIterator[gateway_pb2.ConnectRequest]:
        yield gateway_pb2.ConnectRequest(
            hello=gateway_pb2.ConnectHello(dictionary_id=dictionary_id)
        )
        for sequence, frame in enumerate(frames, start=1):
            yield gateway_pb2.ConnectRequest(
                report=gateway_pb2.ReportUpload(sequence=sequence, frame=frame)
            )
        await answered.wait()

    async with open_aio_channel(address) as channel:
        call = gateway_pb2_grpc.AgentGatewayServiceStub(channel).Connect(
            requests(), metadata=bearer(credential), timeout=timeout
        )
        async for answer in call:
            answers.append(answer)
            for ack in answer.acks.acks:
                pending.discard(ack.sequence)
            if answer.HasField("refusal"):
                pending.discard(answer.refusal.sequence)
            if not pending:
                answered.set()
    return answers


async def open_stream(
    address: str, credential: str, dictionary_id: int = 0
) -> tuple[
    grpc.aio.Channel,
    grpc.aio.StreamStreamCall[gateway_pb2.ConnectRequest, gateway_pb2.ConnectResponse],
    asyncio.Queue[gateway_pb2.ConnectRequest | None],
]:
    """A stream the test drives by hand: put requests in the queue, read the call."""
    channel = open_aio_channel(address)
    queue: asyncio.Queue[gateway_pb2.ConnectRequest | None] = asyncio.Queue()
    queue.put_nowait(
        gateway_pb2.ConnectRequest(hello=gateway_pb2.ConnectHello(dictionary_id=dictionary_id))
    )

    async def requests() -> AsyncIterator[gateway_pb2.ConnectRequest]:
        while (request := await queue.get()) is not None:
            yield request

    call = gateway_pb2_grpc.AgentGatewayServiceStub(channel).Connect(
        requests(), metadata=bearer(credential)
    )
    return channel, call, queue


def connect_status(address: str, credential: str | None) -> grpc.StatusCode:
    """Whether Connect admits `credential`: OK, or the status the server refused with.

    Uses the blocking API on purpose: grpc.aio's client can report INTERNAL ("Internal
    error from Core") instead of the server's status when its own write races the
    server's early refusal (grpc/grpc#36066); the blocking client reports the status.
    """
    probe = gateway_pb2.ConnectRequest(
        report=gateway_pb2.ReportUpload(
            sequence=1, frame=wire_pb2.ReportFrame(zstd_frame=b"not zstd: answered, not stored")
        )
    )
    requests = [gateway_pb2.ConnectRequest(hello=gateway_pb2.ConnectHello()), probe]
    with open_channel(address) as channel:
        stub = gateway_pb2_grpc.AgentGatewayServiceStub(channel)
        try:
            answers = list(
                stub.Connect(
                    iter(requests), metadata=bearer(credential) if credential else None, timeout=30
                )
            )
        except grpc.RpcError as error:
            assert isinstance(error, grpc.Call)
            return error.code()
    assert [a.WhichOneof("body") for a in answers][-1] == "refusal"
    return grpc.StatusCode.OK
