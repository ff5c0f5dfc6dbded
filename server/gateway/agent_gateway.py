"""AgentGatewayService: where devices enroll, stream their reports and fetch dictionaries.

A Connect stream is pipelined: the agent sends many reports without waiting, each joins
the next group commit as soon as it is read, and each is answered — an ack after its
commit, or a refusal naming its sequence number — in the order the commits finish. The
acks of one commit travel in one message. A bad frame is refused on its own; the stream
stays open.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc

from probelink.server.auth import credentials
from probelink.server.auth.authenticator import Caller
from probelink.server.clock import now_us
from probelink.server.diagnosis.service import Diagnoses
from probelink.server.errors import (
    IngestRefused,
    InvalidArgument,
    NotFound,
    ServerError,
    Unauthenticated,
    status_of,
)
from probelink.server.gateway.calls import Guard, abort, rpc
from probelink.server.gateway.convert import dictionary_message as to_message
from probelink.server.gateway.hub import Hub, Outbox
from probelink.server.ingest.dictionaries import DictionaryBook
from probelink.server.ingest.pipeline import Accepted, Ingestor
from probelink.server.metrics import Metrics
from probelink.server.store.async_store import AsyncStore
from probelink.server.store.base import DeviceRecord
from probelink.signing import check_public_key
from probelink.v1 import gateway_pb2, gateway_pb2_grpc, wire_pb2

logger = logging.getLogger(__name__)

_SERVICE = "probelink.v1.AgentGatewayService/"
CONNECT = _SERVICE + "Connect"
# A stream may have this many reports in flight; past it the server stops reading the
# stream until answers go out (gRPC flow control then holds the sender back).
MAX_IN_FLIGHT = 512
# Answers (messages) waiting for a peer that does not read, before the reader pauses.
MAX_UNSENT = 64
_MAX_IDENTITY_FIELD = 256
# How often a stream re-checks that its device was not revoked (on another replica; a
# revocation on this one ends the stream at once).
RECHECK_S = 2.0


class AgentGateway(gateway_pb2_grpc.AgentGatewayServiceServicer):
    def __init__(
        self,
        store: AsyncStore,
        guard: Guard,
        ingestor: Ingestor,
        book: DictionaryBook,
        hub: Hub,
        metrics: Metrics,
        diagnoses: Diagnoses | None = None,
    ) -> None:
        self.store = store
        # Where advisories come from; None in a gateway without diagnosis (tests of ingest).
        self.diagnoses = diagnoses
        self.guard = guard
        self.ingestor = ingestor
        self.book = book
        self.hub = hub
        self.metrics = metrics
        self.draining = False

    async def Enroll(
        self,
        request: gateway_pb2.EnrollRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> gateway_pb2.EnrollResponse:
        try:
            return await self._enroll(request)
        except ServerError as error:
            await abort(context, error)

    async def _enroll(self, request: gateway_pb2.EnrollRequest) -> gateway_pb2.EnrollResponse:
        secret = request.enroll_secret.strip()
        if not secret:
            raise InvalidArgument(
                "enroll_secret is empty: give the agent the enroll secret an admin handed "
                "out (the server's data dir holds the default one in enroll.secret)"
            )
        if credentials.kind_of(secret) != credentials.ENROLL_SECRET:
            raise Unauthenticated("that is not an enroll secret (they start with ple_)")
        identity = request.identity
        for name in ("manufacturer", "model"):
            if len(getattr(identity, name)) > _MAX_IDENTITY_FIELD:
                raise InvalidArgument(
                    f"identity.{name} is longer than {_MAX_IDENTITY_FIELD} characters"
                )
        store = self.store.store
        found = await self.store.read(store.enroll_secret_by_hash, credentials.hash_secret(secret))
        if found is None:
            raise Unauthenticated("this enroll secret is not known to this server")
        if found.revoked_at_us is not None:
            raise Unauthenticated(
                f"enroll secret {found.secret_id} was revoked; ask an admin for a current one"
            )
        # Checked once the secret is: a stranger learns nothing from this endpoint.
        public_key = _public_key(request.device_public_key)
        credential = credentials.new_secret(credentials.DEVICE_CREDENTIAL)
        device = DeviceRecord(
            device_id=str(uuid.uuid4()),
            credential_hash=credentials.hash_secret(credential),
            enroll_secret_id=found.secret_id,
            manufacturer=identity.manufacturer,
            model=identity.model,
            agent_version=request.agent_version[:_MAX_IDENTITY_FIELD],
            enrolled_at_us=now_us(),
            public_key=public_key,
        )
        await self.store.write(store.add_device, device)
        response = gateway_pb2.EnrollResponse(device_id=device.device_id, credential=credential)
        current = self.book.current
        if current is not None:
            response.dictionary.CopyFrom(to_message(current))
        return response

    @rpc(_SERVICE + "UploadReport")
    async def UploadReport(
        self,
        request: gateway_pb2.UploadReportRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> gateway_pb2.UploadReportResponse:
        if not request.HasField("frame"):
            raise InvalidArgument("UploadReport needs a frame (the report's zstd frame)")
        self.refuse_if_draining()
        assert caller.device_id is not None
        ack = await self.ingestor.ingest(request.frame, caller.device_id, caller.public_key)
        return gateway_pb2.UploadReportResponse(ack=ack)

    @rpc(_SERVICE + "GetDictionary")
    async def GetDictionary(
        self,
        request: gateway_pb2.GetDictionaryRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> gateway_pb2.GetDictionaryResponse:
        if request.dictionary_id == 0:
            record = self.book.current
            if record is None:
                raise NotFound(
                    "this server has no dictionary yet: send frames with dictionary_id 0"
                )
        else:
            record = self.book.get(request.dictionary_id)
            if record is None:
                raise NotFound(f"this server never issued dictionary {request.dictionary_id}")
        return gateway_pb2.GetDictionaryResponse(dictionary=to_message(record))

    async def Connect(
        self,
        request_iterator: AsyncIterator[gateway_pb2.ConnectRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[gateway_pb2.ConnectResponse]:
        try:
            caller = await self.guard.admit(context, CONNECT)
        except ServerError as error:
            await abort(context, error)
        assert caller.device_id is not None
        # Headers now, not with the first answer: they tell the agent its credential
        # was accepted, which it would otherwise learn only when a report is acked.
        await context.send_initial_metadata(())
        outbox: Outbox = asyncio.Queue()
        stream = _Stream(self, caller, outbox)
        self.hub.join(caller.device_id, outbox)
        self.metrics.streams.inc()
        pump = asyncio.create_task(stream.pump(request_iterator))
        try:
            while True:
                message = await outbox.get()
                stream.sent()
                if message is None:
                    # Ending (the peer half-closed, or shutdown): what is in flight is
                    # answered first, so every report committed is acked.
                    await stream.settle()
                    for rest in stream.unsent():
                        yield rest
                    break
                if isinstance(message, ServerError):
                    await abort(context, message)
                yield message
        finally:
            self.metrics.streams.dec()
            self.hub.leave(caller.device_id, outbox)
            if not pump.done():
                pump.cancel()
            await stream.settle()

    def refuse_if_draining(self) -> None:
        if self.draining:
            raise IngestRefused(
                wire_pb2.REFUSAL_REASON_SHUTTING_DOWN,
                "the server is shutting down and stored nothing of this report; send it "
                "again in a moment (to this server or another replica)",
            )


def _public_key(public_key: bytes) -> bytes:
    """The device's public key, if it can verify signatures; else InvalidArgument."""
    if not public_key:
        raise InvalidArgument(
            "device_public_key is empty: every report must be signed, so a device "
            "registers its Ed25519 public key (32 raw bytes) when it enrolls; upgrade "
            "the agent to one that signs its reports"
        )
    problem = check_public_key(public_key)
    if problem is not None:
        raise InvalidArgument(
            f"device_public_key is not usable ({problem}): send the raw public half of "
            "the device's Ed25519 key (probelink.signing.DeviceKey.public_key)"
        )
    return public_key


class _Stream:
    """One Connect stream: reads requests, ingests each report, answers each.

    A report is checked and queued for the next commit as soon as it is read, and
    answered from the commit future's callback: no coroutine per report.
    """

    def __init__(self, gateway: AgentGateway, caller: Caller, outbox: Outbox) -> None:
        self._gateway = gateway
        self._ingestor = gateway.ingestor
        self._caller = caller
        self._device_id = caller.device_id or ""
        self._public_key = caller.public_key
        self._outbox = outbox
        self._in_flight = 0
        self._room = asyncio.Event()
        self._room.set()
        self._settled = asyncio.Event()
        self._settled.set()
        self._slow: set[asyncio.Task[None]] = set()
        self._acks: list[wire_pb2.ReportAck] = []
        self._sent_dictionary = False
        self._offered_advisories = False
        # The credential was checked on admission; it is checked again every RECHECK_S.
        self._valid_until = time.monotonic() + RECHECK_S

    async def pump(self, requests: AsyncIterator[gateway_pb2.ConnectRequest]) -> None:
        try:
            async for request in requests:
                try:
                    if not await self._handle(request):
                        break
                except Exception as exc:  # a bug of ours: say so, and end the stream
                    logger.exception("Connect stream of device %s failed", self._device_id)
                    self._outbox.put_nowait(
                        ServerError(
                            f"internal server error ({type(exc).__name__}); reports not "
                            "acked were not stored: send them again"
                        )
                    )
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer went away mid-read: answer what is in flight
            pass
        await self.settle()
        self._flush_acks()
        self._outbox.put_nowait(None)

    async def _handle(self, request: gateway_pb2.ConnectRequest) -> bool:
        """Take one request; False when the stream must end (credential revoked)."""
        body = request.WhichOneof("body")
        if body == "report":
            self._offer_dictionary(None)
            self._offer_advisories()
            if time.monotonic() > self._valid_until and not await self._still_valid():
                return False
            # Bounded both ways: reports waiting for a commit, and answers waiting for a
            # peer that does not read (gRPC flow control then holds the sender back).
            while self._in_flight >= MAX_IN_FLIGHT or self._outbox.qsize() >= MAX_UNSENT:
                self._room.clear()
                await self._room.wait()
            self._start(request.report)
        elif body == "hello":
            self._offer_dictionary(request.hello.dictionary_id)
            self._offer_advisories()
        elif body == "advisories_received":
            diagnoses = self._gateway.diagnoses
            if diagnoses is not None:
                ids = request.advisories_received.advisory_ids
                await diagnoses.delivered(self._device_id, list(ids))
        return True

    def sent(self) -> None:
        """The stream took a message from the outbox: maybe there is room to read on."""
        if self._outbox.qsize() < MAX_UNSENT:
            self._room.set()

    def unsent(self) -> list[gateway_pb2.ConnectResponse]:
        """Gathered acks and every answer still in the outbox (when the stream ends)."""
        self._flush_acks()
        out = []
        while not self._outbox.empty():
            message = self._outbox.get_nowait()
            if isinstance(message, gateway_pb2.ConnectResponse):
                out.append(message)
        return out

    async def settle(self) -> None:
        """Wait for every report in flight to be answered (or fail)."""
        await self._settled.wait()
        if self._slow:
            await asyncio.gather(*list(self._slow), return_exceptions=True)

    def _start(self, upload: gateway_pb2.ReportUpload) -> None:
        started = time.perf_counter()
        try:
            self._gateway.refuse_if_draining()
            accepted = self._ingestor.accept(
                upload.frame, self._device_id, self._public_key, upload.sequence, started
            )
        except IngestRefused as refused:
            if refused.reason == wire_pb2.REFUSAL_REASON_UNKNOWN_DICTIONARY:
                # Maybe another replica issued it: look it up without holding the stream.
                task = asyncio.create_task(self._after_refusal(refused, upload, started))
                self._slow.add(task)
                task.add_done_callback(self._slow.discard)
            else:
                self._refuse(upload.sequence, refused)
            return
        self._in_flight += 1
        self._settled.clear()
        accepted.committed.add_done_callback(lambda _: self._answer(accepted))

    def _answer(self, accepted: Accepted) -> None:
        try:
            ack = self._ingestor.answer(accepted)
        except IngestRefused as refused:
            self._refuse(accepted.sequence, refused)
        else:
            self._queue_ack(ack)
        self._in_flight -= 1
        if self._in_flight < MAX_IN_FLIGHT:
            self._room.set()
        if self._in_flight == 0:
            self._settled.set()

    async def _after_refusal(
        self, refused: IngestRefused, upload: gateway_pb2.ReportUpload, started: float
    ) -> None:
        try:
            ack = await self._ingestor.after_refusal(
                refused, upload.frame, self._device_id, self._public_key, upload.sequence, started
            )
        except IngestRefused as final:
            self._refuse(upload.sequence, final)
        else:
            self._queue_ack(ack)

    def _queue_ack(self, ack: wire_pb2.ReportAck) -> None:
        # The futures of one commit resolve in one turn of the loop: their acks are
        # gathered and leave together, one message instead of one per report.
        if not self._acks:
            asyncio.get_running_loop().call_soon(self._flush_acks)
        self._acks.append(ack)

    def _flush_acks(self) -> None:
        if self._acks:
            acks, self._acks = self._acks, []
            self._outbox.put_nowait(
                gateway_pb2.ConnectResponse(acks=gateway_pb2.ReportAcks(acks=acks))
            )

    def _refuse(self, sequence: int, refused: IngestRefused) -> None:
        self._outbox.put_nowait(
            gateway_pb2.ConnectResponse(
                refusal=wire_pb2.ReportRefusal(
                    sequence=sequence,
                    report_id=refused.report_id,
                    reason=refused.reason,
                    code=status_of(refused).value[0],
                    message=str(refused),
                )
            )
        )

    def _offer_dictionary(self, held: int | None) -> None:
        if self._sent_dictionary:
            return
        self._sent_dictionary = True
        current = self._gateway.book.current
        if current is not None and current.dictionary_id != held:
            self._outbox.put_nowait(gateway_pb2.ConnectResponse(dictionary=to_message(current)))

    def _offer_advisories(self) -> None:
        """Once per stream: every advisory the device has not confirmed, in the background
        (a database read must not hold the stream's reports back)."""
        diagnoses = self._gateway.diagnoses
        if self._offered_advisories or diagnoses is None:
            return
        self._offered_advisories = True

        async def offer() -> None:
            try:
                for message in await diagnoses.undelivered(self._device_id):
                    self._outbox.put_nowait(message)
            except Exception:  # the store is away: the next stream offers them again
                logger.warning("could not read advisories of device %s", self._device_id)

        task = asyncio.create_task(offer())
        self._slow.add(task)
        task.add_done_callback(self._slow.discard)

    async def _still_valid(self) -> bool:
        try:
            await self._gateway.guard.authenticator.recheck(self._caller)
        except Unauthenticated as error:
            self._outbox.put_nowait(error)
            return False
        self._valid_until = time.monotonic() + RECHECK_S
        return True
