"""The ceiling: a bare grpc.aio bidirectional stream that answers each message with an ack.

    .venv/bin/python bench/echo.py [--messages 20000] [--clients 1 8]

No validation, no storage: the server process reads each message and writes back one
small serialized ConnectResponse holding one ack, a real ack's size. The clients are the very
ones bench/ingest.py uses against the real server (bench/streams.py: one process per
stream, 64 in flight, frames made from the realistic corpus), so the ratio
ingest / echo is what the server's own work costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from multiprocessing.connection import Connection

import grpc
from streams import CONNECT, ClientPlan, StreamRate, corpus_dictionary, run_clients

from probelink.v1 import gateway_pb2, wire_pb2

SERVICE, METHOD = CONNECT.strip("/").split("/")


def _ack() -> bytes:
    ack = wire_pb2.ReportAck(report_id=str(uuid.uuid4()), sequence=123456)
    ack.stored_at.GetCurrentTime()
    return gateway_pb2.ConnectResponse(acks=gateway_pb2.ReportAcks(acks=[ack])).SerializeToString()


async def _serve(port_out: Connection) -> None:
    reply = _ack()

    async def stream(requests: AsyncIterator[bytes], context: object) -> AsyncIterator[bytes]:
        async for _ in requests:
            yield reply

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {METHOD: grpc.stream_stream_rpc_method_handler(stream)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_out.send(port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(grace=1)


def _server_process(port_out: Connection) -> None:
    asyncio.run(_serve(port_out))


@contextlib.contextmanager
def echo_server() -> Iterator[str]:
    """An echo server in its own process; yields its address."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_server_process, args=(theirs,), daemon=True)
    proc.start()
    try:
        if not ours.poll(30):
            raise RuntimeError("the echo server did not start within 30 s")
        yield f"127.0.0.1:{ours.recv()}"
    finally:
        proc.terminate()
        proc.join(10)


def measure(clients: int, messages: int, dictionary: tuple[int, bytes] | None = None) -> StreamRate:
    """Messages/s through the echo server with `clients` streams sharing `messages`.

    `dictionary` (id, content) makes the frames the size an agent holding one sends.
    """
    with echo_server() as target:
        plans = [
            ClientPlan(target, CONNECT, n, messages // clients, dictionary=dictionary)
            for n in range(clients)
        ]
        return run_clients(plans)


def main() -> None:
    parser = argparse.ArgumentParser(description="bare grpc.aio stream ceiling")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--no-dictionary", action="store_true", help="send plain zstd frames")
    args = parser.parse_args()
    dictionary = None if args.no_dictionary else corpus_dictionary()
    for clients in args.clients:
        rate = measure(clients, args.messages, dictionary)
        print(f"{clients} streams: {rate.per_second:,.0f} messages/s ({rate.seconds:.2f} s)")


if __name__ == "__main__":
    main()
