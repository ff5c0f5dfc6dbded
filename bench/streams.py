"""Streaming clients in their own processes, as agents are: the part echo and ingest share.

    messages = report_messages(client_no=0, count=5000)     # serialized ConnectRequests
    rate = run_clients(target, clients=8, per_client=2500, setup=..., path=CONNECT)

Each client process holds one bidirectional stream and keeps up to `window` messages in
flight (the real agent pipelines the same way). It first sends `warmup` messages and
waits for their answers, so connection set-up and the first allocations are not timed;
then all clients start together at a barrier. Messages and answers cross as raw bytes
(serialized ConnectRequest / ConnectResponse) so the echo ceiling and the real server
cost the clients exactly the same; every answer is parsed, and a refusal stops the run.

Every frame is signed, as an agent's are: with the key the client enrolled with
(`ClientSetup.key`), or a key of its own against the echo server, so both carry the
same 64 bytes more. Signing happens while the messages are made, before the clock runs.
The rate is all timed messages over the span from the first start to the last answer,
on one monotonic clock shared by the processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

import grpc
from corpus import build_corpus

from probelink.signing import DeviceKey
from probelink.v1 import gateway_pb2
from probelink.wire import Encoder


@dataclass(frozen=True)
class ClientSetup:
    """What a client learned by enrolling: how to call, and how to make its frames."""

    # Call metadata (the credential), and serialized ConnectRequests to send first.
    metadata: list[tuple[str, str]]
    preamble: list[bytes]
    # (dictionary id, content) to compress with, or None.
    dictionary: tuple[int, bytes] | None
    # The key the client registered: its frames must be signed with it.
    key: DeviceKey


# (target, client number, ClientPlan.setup_arg) -> ClientSetup; runs in the client
# process before anything is timed. A module-level function, so that it can be pickled.
Setup = Callable[[str, int, str], ClientSetup]
CONNECT = "/probelink.v1.AgentGatewayService/Connect"
WINDOW = 64
WARMUP = 200
# Reports the clients draw their frames from (cycled, each with a fresh id).
CORPUS_REPORTS = 2000


@dataclass(frozen=True)
class ClientPlan:
    """What one client process does; picklable, so it can cross into a spawned process."""

    target: str
    path: str
    client_no: int
    count: int
    window: int = WINDOW
    warmup: int = WARMUP
    setup: Setup | None = None
    setup_arg: str = ""
    # (id, content) of the dictionary to compress with, unless `setup` names one.
    dictionary: tuple[int, bytes] | None = None


@dataclass(frozen=True)
class StreamRate:
    clients: int
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


class RefusedError(RuntimeError):
    """The server answered a report with a refusal: the benchmark is void."""


def report_messages(
    client_no: int,
    count: int,
    dictionary: tuple[int, bytes] | None = None,
    key: DeviceKey | None = None,
) -> list[bytes]:
    """`count` serialized ConnectRequest(report=…) from the corpus, each a fresh report id,
    signed with `key` (a fresh key when none is given)."""
    corpus = build_corpus(CORPUS_REPORTS)
    key = key or DeviceKey.generate()
    encoder = Encoder(dictionary[1], dictionary[0], key=key) if dictionary else Encoder(key=key)
    out = []
    for i in range(count):
        report = corpus[(client_no * 7919 + i) % len(corpus)]
        # Field 1 (report_id, 36 characters) comes first in a serialized Report.
        if report[:2] != b"\n$":
            raise ValueError("a corpus report does not start with its 36-character report id")
        report = report[:2] + str(uuid.uuid4()).encode() + report[38:]
        upload = gateway_pb2.ReportUpload(sequence=i + 1, frame=encoder.encode(report))
        out.append(gateway_pb2.ConnectRequest(report=upload).SerializeToString())
    return out


def run_clients(plans: list[ClientPlan]) -> StreamRate:
    """Run one process per plan, all starting together; the combined rate."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(plans))
    results: multiprocessing.Queue[tuple[str, Any]] = ctx.Queue()
    procs = [ctx.Process(target=_client_process, args=(p, barrier, results)) for p in plans]
    for proc in procs:
        proc.start()
    spans = []
    try:
        for _ in procs:
            kind, value = results.get(timeout=600)
            if kind == "error":
                raise RefusedError(value)
            spans.append(value)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    start = min(s[0] for s in spans)
    end = max(s[1] for s in spans)
    return StreamRate(len(plans), sum(p.count for p in plans), end - start)


def _client_process(
    plan: ClientPlan, barrier: Barrier, results: multiprocessing.Queue[tuple[str, Any]]
) -> None:
    try:
        results.put(("span", asyncio.run(_client(plan, barrier))))
    except BaseException as err:  # the parent must hear of every failure, not hang
        barrier.abort()
        results.put(("error", f"client {plan.client_no}: {type(err).__name__}: {err}"))


async def _client(plan: ClientPlan, barrier: Barrier) -> tuple[float, float]:
    metadata: list[tuple[str, str]] = []
    preamble: list[bytes] = []
    dictionary = plan.dictionary
    key = None
    if plan.setup is not None:
        setup = plan.setup(plan.target, plan.client_no, plan.setup_arg)
        metadata, preamble, key = setup.metadata, setup.preamble, setup.key
        dictionary = setup.dictionary or dictionary
    messages = report_messages(plan.client_no, plan.warmup + plan.count, dictionary, key)
    loop = asyncio.get_running_loop()
    window = asyncio.Semaphore(plan.window)
    warmed = asyncio.Event()
    if plan.warmup == 0:
        warmed.set()
    times = [0.0, 0.0]

    async def requests() -> AsyncIterator[bytes]:
        for message in preamble:
            yield message
        for i, message in enumerate(messages):
            if i == plan.warmup:
                await warmed.wait()
                # A blocking wait: let the loop keep reading meanwhile.
                await loop.run_in_executor(None, barrier.wait, 300)
                times[0] = time.monotonic()
            await window.acquire()
            yield message

    async with grpc.aio.insecure_channel(plan.target) as channel:
        # Raw bytes both ways (no serializers): the clients pay the same on echo and ingest.
        method: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(plan.path)
        call = method(requests(), metadata=tuple(metadata))
        answered = 0
        async for raw in call:
            reply = gateway_pb2.ConnectResponse.FromString(raw)
            body = reply.WhichOneof("body")
            if body == "refusal":
                raise RefusedError(f"report refused: {reply.refusal}")
            if body != "acks":
                continue  # a dictionary pushed down: the frames are already made
            count = len(reply.acks.acks)
            for _ in range(count):
                window.release()
            before, answered = answered, answered + count
            if before < plan.warmup <= answered:
                warmed.set()
            if answered >= len(messages):
                times[1] = time.monotonic()
                call.cancel()
                break
    return times[0], times[1]


def corpus_dictionary(dict_id: int = 1) -> tuple[int, bytes]:
    """A dictionary trained on the first half of the clients' corpus, as the server would."""
    from sizes import train_dictionary

    corpus = build_corpus(CORPUS_REPORTS)
    return dict_id, train_dictionary(corpus[: len(corpus) // 2], dict_id)
