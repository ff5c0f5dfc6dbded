"""The daemon's link to the server: enroll once, hold one Connect stream, drain the spool.

    link = Link(config, state, key, spool, board, log, wake, identity=first_identity,
                advisories_dir=state_dir)
    await link.run(stopping)        # returns once `stopping` is set and the stream is closed

One stream at a time, and on it a window of reports in flight: the link reads up to
`window` unacked reports from the spool (oldest first), signs and compresses each
with the current dictionary, and writes them without waiting; every ack that comes
back deletes its reports from the spool in one commit and opens the window again.
A backlog of thousands therefore drains at the server's ingest rate, not one round
trip per report.

When the stream breaks (server restart, network gone, a stall noticed by keepalive
or by reports unanswered for `ack_timeout_s`), what was in flight stays in the spool
and goes again on the next stream: the server acks a report it already holds as a
duplicate, so a resend is harmless. Reconnects wait a capped exponential backoff
with jitter (`backoff.py`).

What the server says about a report decides what happens to it:

- acked (stored or duplicate): deleted from the spool (by the acker task: all acks
  that arrived during its previous commit, in one commit);
- STORE_UNAVAILABLE or SHUTTING_DOWN: kept, and sending pauses `backoff_initial_s`;
- UNKNOWN_DICTIONARY: the kept dictionary is dropped, the report is sent again
  without one, and the server's current dictionary is fetched (GetDictionary);
- SIGNATURE_MISSING: the server holds no key for this device (it enrolled before
  the server kept keys): kept, and the link enrolls again as for a refused credential;
- NOT_ZSTD, TRUNCATED, TRAILING_DATA, CORRUPT (damaged on the way): sent again, up to
  MAX_DAMAGED_ATTEMPTS times;
- anything else (a contract violation, an id conflict, SIGNATURE_INVALID): moved out
  of the queue with the reason (`Spool.reject`), logged as an error and counted in
  `status` — it can never be stored, and resending it forever would hide the fault.
  A signature that does not verify is evidence (a report changed, a key replaced), so
  the daemon does not enroll its way around it.

An advisory the server sends down the stream is committed to the advisory store
(`probelink.agent.advisories`, on the spool's worker thread) and only then confirmed
(`AdvisoriesReceived`): the server never sends a confirmed advisory again, so one lost
here would be lost for good. One the store refuses (no id, no English text) is logged
and not confirmed. Without a store (advisories.db unusable) nothing is confirmed and
the server keeps sending them at each connect until it works. The store is opened for
each advisory and closed after it: advisories come a few times a year, and an idle
daemon should not hold a second SQLite connection for them (its memory budget is tight).

A refused credential (UNAUTHENTICATED) means the device was revoked or the server
was reset: with an enroll secret the link enrolls again (once per healthy spell),
otherwise it says so and keeps retrying at the longest backoff, keeping every report
in the spool. A stream that had been healthy (an ack, or 10 s up) starts the backoff
over when it breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import zstandard

from probelink import __version__
from probelink.agent.advisories import AdvisoryError, AdvisoryStore, KeepResult
from probelink.agent.daemon.backoff import Backoff
from probelink.agent.daemon.config import DaemonConfig
from probelink.agent.daemon.status import StatusBoard
from probelink.agent.spool import Spool, SpoolError
from probelink.agent.state import AgentState, Enrollment, StateError

# Unary calls (Enroll, GetDictionary) take the upload's deadline; the stream has none.
from probelink.agent.upload import CALL_TIMEOUT_S, UploadSetupError, read_secret
from probelink.channel import ClientTls, bearer, open_aio_channel
from probelink.signing import DeviceKey
from probelink.v1 import advisory_pb2, gateway_pb2, gateway_pb2_grpc, report_pb2, wire_pb2
from probelink.wire import Encoder

# A stream that lasted this long, or got an ack, was healthy: the backoff starts over.
HEALTHY_AFTER_S = 10.0
# On stop: how long to wait for the acks of reports in flight.
DRAIN_S = 3.0
MAX_DAMAGED_ATTEMPTS = 3
# Keepalive pings notice a dead or stalled connection while nothing is in flight.
KEEPALIVE_MS = 30_000
KEEPALIVE_TIMEOUT_MS = 10_000

_R = wire_pb2.RefusalReason
_TRANSIENT = {_R.REFUSAL_REASON_STORE_UNAVAILABLE, _R.REFUSAL_REASON_SHUTTING_DOWN}
_DAMAGED = {
    _R.REFUSAL_REASON_NOT_ZSTD,
    _R.REFUSAL_REASON_TRUNCATED,
    _R.REFUSAL_REASON_TRAILING_DATA,
    _R.REFUSAL_REASON_CORRUPT,
}


def reason_name(reason: int) -> str:
    """`signature_invalid` for REFUSAL_REASON_SIGNATURE_INVALID (as in the server's log)."""
    try:
        return wire_pb2.RefusalReason.Name(reason).removeprefix("REFUSAL_REASON_").lower()  # type: ignore[arg-type]
    except ValueError:
        return f"reason_{reason}"


class CredentialRefused(Exception):
    """The server refused the device credential (revoked, or the server was reset)."""


class EnrollFailed(Exception):
    """Enrolling did not work; the message says why and what to do."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class StreamStalled(Exception):
    """Reports in flight went unanswered for too long: the connection is presumed dead."""


@dataclass
class _InFlight:
    report_id: str
    sent_at: float


class Link:
    def __init__(
        self,
        config: DaemonConfig,
        state: AgentState,
        key: DeviceKey,
        spool: Spool,
        board: StatusBoard,
        log: logging.Logger,
        wake: asyncio.Event,
        identity: Callable[[], report_pb2.DeviceIdentity | None],
        advisories_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.key = key
        self.spool = spool
        self.board = board
        self.log = log
        self.wake = wake
        self.identity = identity
        # Where advisories.db lives; None: advisories are not kept (nor confirmed).
        self.advisories_dir = advisories_dir
        self.backoff = Backoff(config.backoff_initial_s, config.backoff_max_s)
        tls = None
        if config.tls_ca is not None or config.tls_cert is not None:
            tls = ClientTls(ca=config.tls_ca, cert=config.tls_cert, key=config.tls_key)
        self.channel = open_aio_channel(
            config.server,
            tls,
            extra_options=[
                ("grpc.keepalive_time_ms", KEEPALIVE_MS),
                ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
            ],
        )
        self.gateway = gateway_pb2_grpc.AgentGatewayServiceStub(self.channel)
        self.encoder = self._encoder()
        # Reports the server refused as damaged, by id: how many times.
        self._damaged: dict[str, int] = {}
        self._pause_until = 0.0
        self._reenrolled = False
        self._stream_acks = 0
        self._healthy = False
        self._acker_done = False
        self._credential_now = ""
        self._needs_enrollment = ""
        self._fetching: asyncio.Task[None] | None = None
        # Answered by the server, not yet settled in the spool (acked and awaiting the
        # acker's delete, or refused and being moved aside): never sent again meanwhile.
        # The acker deletes acked ones in one commit per burst, so reading the stream
        # never waits for an fsync.
        self._settling: set[str] = set()
        self._ack_queue: list[str] = []
        self._ack_ready = asyncio.Event()
        # Advisories kept, to confirm on the stream. The reader keeps them; the sending
        # loop writes the confirmation: a gRPC call takes one write at a time.
        self._to_confirm: list[str] = []

    # -- the outer loop: connect, and when that fails, wait --------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        acker = asyncio.create_task(self._acker(), name="acker")
        self._acker_done = False
        try:
            while not stopping.is_set():
                wait = await self._attempt(stopping)
                if wait is None or stopping.is_set():
                    continue
                self.board.update(link="waiting", next_attempt_at=time.time() + wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), wait)
        finally:
            # Not cancelled: a commit in progress finishes, then what the server acked
            # last is deleted too, so it does not go again at the next start.
            self._acker_done = True
            self._ack_ready.set()
            await asyncio.wait({acker})
            self.board.update(link="stopped")
            await self.channel.close()

    async def _attempt(self, stopping: asyncio.Event) -> float | None:
        """One try at a stream; the wait before the next one (None: go again now)."""
        self._healthy = False
        try:
            credential = await self._credential(stopping)
            if credential is None:
                return None  # stopping while waiting for the first report's identity
            await self._stream(credential, stopping)
        except CredentialRefused as refused:
            return self._after_refusal(str(refused))
        except EnrollFailed as failed:
            self.board.update(last_error=str(failed))
            self.log.error("%s", failed)
            return self.backoff.next() if failed.retry else self.config.backoff_max_s
        except StateError as err:
            self.board.update(last_error=str(err))
            self.log.error("%s", err)
            return self.config.backoff_max_s
        except StreamStalled as stalled:
            self.board.update(last_error=str(stalled))
            self.log.warning("%s; reconnecting", stalled)
            return self._next_wait()
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError as error:
            why = _describe(error)
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                return self._after_refusal(
                    f"the server refused this device's credential ({error.details()})"
                )
            self.board.update(last_error=why)
            # gRPC's asyncio client may report a dropped connection as INTERNAL
            # "Internal error from Core" (grpc#36066): like UNAVAILABLE, it is the network.
            self.log.warning("the stream to %s ended: %s", self.config.server, why)
            return self._next_wait()
        except Exception as err:  # the link must outlive any one stream's fault
            self.board.update(last_error=f"{type(err).__name__}: {err}")
            self.log.exception("the stream to %s failed unexpectedly: %s", self.config.server, err)
            return self._next_wait()
        if stopping.is_set():
            return None
        self.log.info("the server closed the stream; reconnecting")
        return self._next_wait()

    def _next_wait(self) -> float:
        """The backoff before the next try; a stream that had been healthy starts it over
        (a device connected for a day reconnects at once after a server restart)."""
        if self._healthy:
            self.backoff.reset()
            self._reenrolled = False
        return self.backoff.next()

    def _after_refusal(self, why: str) -> float:
        self.board.update(last_error=why)
        if self.config.enroll_secret_file is not None and not self._reenrolled:
            self.log.warning("%s; enrolling again with %s", why, self.config.enroll_secret_file)
            self.state.forget_enrollment()
            self._reenrolled = True
            return 0.0
        self.log.error(
            "%s; the reports stay in the spool. Give the daemon an enroll secret "
            "(--enroll-secret-file) to enroll again, or ask an admin why it was refused",
            why,
        )
        return self.config.backoff_max_s

    # -- enrollment -------------------------------------------------------------------
    async def _credential(self, stopping: asyncio.Event) -> str | None:
        credential = self.state.credential()
        if credential is not None:
            return credential
        if self.config.enroll_secret_file is None:
            raise EnrollFailed(
                f"this device has not enrolled (no credential in {self.state.root}): give "
                "--enroll-secret-file FILE with the enroll secret an admin handed out",
                retry=False,
            )
        try:
            secret = read_secret(self.config.enroll_secret_file)
        except UploadSetupError as err:
            raise EnrollFailed(str(err), retry=False) from None
        identity = self.identity()
        while identity is None:
            # The identity comes from the first report: wait for the collector.
            self.board.update(link="waiting for the first report")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stopping, self.wake), self.config.spool_poll_s)
            if stopping.is_set():
                return None
            identity = self.identity()
        self.board.update(link="enrolling")
        try:
            response = await self.gateway.Enroll(
                gateway_pb2.EnrollRequest(
                    enroll_secret=secret,
                    identity=identity,
                    agent_version=__version__,
                    device_public_key=self.key.public_key,
                ),
                timeout=CALL_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as error:
            refused = error.code() in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.PERMISSION_DENIED,
            )
            raise EnrollFailed(
                f"enrolling with {self.config.server} failed: {_describe(error)}"
                + (
                    f"; check the enroll secret in {self.config.enroll_secret_file}"
                    if refused
                    else ""
                ),
                retry=not refused,
            ) from None
        self.state.save_enrollment(
            Enrollment(device_id=response.device_id, server=self.config.server),
            response.credential,
        )
        self.log.info(
            "enrolled with %s as device %s (signing key %s)",
            self.config.server,
            response.device_id,
            self.key.key_id,
        )
        self.board.update(device_id=response.device_id)
        if response.HasField("dictionary") and response.dictionary.dictionary_id:
            self._take_dictionary(response.dictionary)
        return str(response.credential)

    # -- one stream -------------------------------------------------------------------
    async def _stream(self, credential: str, stopping: asyncio.Event) -> None:
        self.board.update(link="connecting", next_attempt_at=0.0)
        self._credential_now = credential
        self._needs_enrollment = ""
        call = self.gateway.Connect(metadata=bearer(credential))
        in_flight: dict[int, _InFlight] = {}
        opened = time.monotonic()
        self._stream_acks = 0
        # A new stream: the server sends again whatever it has not seen confirmed.
        self._to_confirm = []
        reader: asyncio.Task[None] | None = None
        try:
            hello = gateway_pb2.ConnectRequest(
                hello=gateway_pb2.ConnectHello(
                    dictionary_id=self.encoder.dictionary_id, agent_version=__version__
                )
            )
            # The server sends its headers once it has checked the credential.
            if not await self._write(call, hello) or (
                await call.initial_metadata() is not None and call.done()
            ):
                await self._raise_ended(call)
                return
            kept = self.state.enrollment()
            self.board.update(
                link="connected", last_error="", device_id=kept.device_id if kept else ""
            )
            self.log.info("connected to %s", self.config.server)
            reader = asyncio.create_task(self._read(call, in_flight))
            sequence = 0
            while not stopping.is_set():
                if reader.done() or call.done():
                    break
                if self._needs_enrollment:
                    raise CredentialRefused(
                        f"the server has no signing key for this device ({self._needs_enrollment})"
                    )
                if self._to_confirm:
                    ids, self._to_confirm = self._to_confirm, []
                    confirm = gateway_pb2.ConnectRequest(
                        advisories_received=gateway_pb2.AdvisoriesReceived(advisory_ids=ids)
                    )
                    if not await self._write(call, confirm):
                        continue  # the call ended: the server sends them again next time
                # Cleared before looking, so a report spooled meanwhile wakes the wait.
                self.wake.clear()
                room = self.config.window - len(in_flight)
                if room > 0 and time.monotonic() >= self._pause_until:
                    skip = {f.report_id for f in in_flight.values()} | self._settling
                    batch = await asyncio.to_thread(self.spool.pending, room, skip)
                    for report_id, serialized in batch:
                        sequence += 1
                        frame = self.encoder.encode(serialized)
                        in_flight[sequence] = _InFlight(report_id, time.monotonic())
                        request = gateway_pb2.ConnectRequest(
                            report=gateway_pb2.ReportUpload(sequence=sequence, frame=frame)
                        )
                        if not await self._write(call, request):
                            break
                    if batch:
                        continue
                await self._idle(reader, in_flight, stopping)
            if stopping.is_set():
                await self._drain(call, reader, in_flight)
                return  # the finally cancels the call: no waiting for the server's status
            if call.done() and not reader.done():
                # The reader will see the end in a moment; its error says why.
                await asyncio.wait({reader}, timeout=1.0)
            if reader.done():
                reader.result()  # the stream's end, or its error
            await self._raise_ended(call)
        finally:
            if reader is not None:
                if not reader.done():
                    reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                    await reader
            call.cancel()
            self._healthy = self._stream_acks > 0 or time.monotonic() - opened >= HEALTHY_AFTER_S

    async def _write(
        self,
        call: grpc.aio.StreamStreamCall[gateway_pb2.ConnectRequest, gateway_pb2.ConnectResponse],
        request: gateway_pb2.ConnectRequest,
    ) -> bool:
        """Send one message; False when the call has ended (its status tells why).

        A write waits for HTTP/2 flow control: on a stalled connection it would wait
        until keepalive gave up, so it gets the ack timeout too.
        """
        try:
            # asyncio.timeout, not wait_for: no task per message on the hot path.
            async with asyncio.timeout(self.config.ack_timeout_s):
                await call.write(request)
        except asyncio.InvalidStateError:
            return False
        except TimeoutError:
            raise StreamStalled(
                f"the server took no data for {self.config.ack_timeout_s:g} s"
            ) from None
        return True

    async def _idle(
        self, reader: asyncio.Task[None], in_flight: dict[int, _InFlight], stopping: asyncio.Event
    ) -> None:
        """Wait for something to do: a new report, an ack, the stream's end, a timeout."""
        # An idle link wakes only to look for reports another process spooled.
        timeout = self.config.spool_poll_s
        now = time.monotonic()
        if in_flight:
            oldest = min(f.sent_at for f in in_flight.values())
            left = oldest + self.config.ack_timeout_s - now
            if left <= 0:
                raise StreamStalled(
                    f"{len(in_flight)} reports in flight had no answer for "
                    f"{self.config.ack_timeout_s:g} s"
                )
            timeout = min(timeout, left)
        if self._pause_until > now:
            timeout = min(timeout, self._pause_until - now)
        # Another process's reports matter only when this one has none to send; the look
        # takes the spool's lock, which the acker holds through its fsync.
        changes = self.spool.changes() if not in_flight else None
        waiter = asyncio.ensure_future(_first(stopping, self.wake))
        done, _ = await asyncio.wait(
            {waiter, reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
        if not done and changes is not None and self.spool.changes() != changes:
            self.wake.set()  # another process spooled reports

    async def _drain(
        self,
        call: grpc.aio.StreamStreamCall[gateway_pb2.ConnectRequest, gateway_pb2.ConnectResponse],
        reader: asyncio.Task[None],
        in_flight: dict[int, _InFlight],
    ) -> None:
        """Stopping: close our side and give the acks of what is in flight a moment."""
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call.done_writing()
        deadline = time.monotonic() + DRAIN_S
        while in_flight and not reader.done() and time.monotonic() < deadline:
            await asyncio.wait({reader}, timeout=0.05)

    async def _raise_ended(
        self,
        call: grpc.aio.StreamStreamCall[gateway_pb2.ConnectRequest, gateway_pb2.ConnectResponse],
    ) -> None:
        code = await call.code()
        if code == grpc.StatusCode.OK:
            return
        details = await call.details()
        if code == grpc.StatusCode.UNAUTHENTICATED:
            raise CredentialRefused(f"the server refused this device's credential ({details})")
        raise grpc.aio.AioRpcError(
            code, await call.initial_metadata(), await call.trailing_metadata(), details
        )

    # -- what comes down --------------------------------------------------------------
    async def _read(
        self,
        call: grpc.aio.StreamStreamCall[gateway_pb2.ConnectRequest, gateway_pb2.ConnectResponse],
        in_flight: dict[int, _InFlight],
    ) -> None:
        while True:
            response = await call.read()
            if response is grpc.aio.EOF:
                return
            assert isinstance(response, gateway_pb2.ConnectResponse)
            which = response.WhichOneof("body")
            if which == "acks":
                await self._acked(response.acks, in_flight)
            elif which == "refusal":
                await self._refused(response.refusal, in_flight)
            elif which == "dictionary":
                # Rare, and small: on the loop, so the board is only touched from here.
                self._take_dictionary(response.dictionary)
            elif which == "advisory":
                await self._advised(response.advisory)
            self.wake.set()

    async def _acked(self, acks: gateway_pb2.ReportAcks, in_flight: dict[int, _InFlight]) -> None:
        ids = [ack.report_id for ack in acks.acks]
        for ack in acks.acks:
            in_flight.pop(ack.sequence, None)
            self._damaged.pop(ack.report_id, None)
        self._settling.update(ids)
        self._ack_queue += ids
        self._ack_ready.set()
        self._stream_acks += len(ids)

    async def _acker(self) -> None:
        """Delete acked reports from the spool: all that arrived meanwhile, one commit."""
        while True:
            await self._ack_ready.wait()
            self._ack_ready.clear()
            ids, self._ack_queue = self._ack_queue, []
            if ids:
                try:
                    await asyncio.to_thread(self.spool.ack_many, ids)
                except SpoolError as err:
                    # Kept for the next try: deleting late only risks a harmless resend.
                    self.log.error("cannot delete acked reports from the spool: %s", err)
                    self._ack_queue = ids + self._ack_queue
                    self._ack_ready.set()
                    if self._acker_done:
                        return
                    await asyncio.sleep(1.0)
                    continue
                self._settling.difference_update(ids)
                self.board.acked(ids)
            if self._acker_done and not self._ack_queue:
                return

    async def _refused(
        self, refusal: wire_pb2.ReportRefusal, in_flight: dict[int, _InFlight]
    ) -> None:
        sent = in_flight.pop(refusal.sequence, None)
        if sent is None:
            return
        report_id = sent.report_id
        reason = reason_name(refusal.reason)
        if refusal.reason in _TRANSIENT:
            # Kept; it goes again once the server has had a moment. One pause for the
            # whole window refused together, not one backoff step per report.
            now = time.monotonic()
            if self._pause_until <= now:
                self.log.warning(
                    "report %s not stored yet (%s): %s", report_id, reason, refusal.message
                )
            self._pause_until = now + self.config.backoff_initial_s
            return
        if refusal.reason == _R.REFUSAL_REASON_UNKNOWN_DICTIONARY:
            if self.encoder.dictionary_id:
                self.log.warning(
                    "the server does not know dictionary %d; sending without one and "
                    "asking for its current dictionary",
                    self.encoder.dictionary_id,
                )
                await asyncio.to_thread(self.state.forget_dictionary)
                self.encoder = Encoder(key=self.key)
                self._fetching = asyncio.create_task(self._fetch_dictionary())
            return
        if refusal.reason == _R.REFUSAL_REASON_SIGNATURE_MISSING:
            # The server holds no key for this device (enrolled before it kept keys):
            # the report is fine, the enrollment is not. Kept; enrolled again, it goes.
            self._needs_enrollment = refusal.message
            return
        if refusal.reason in _DAMAGED:
            tries = self._damaged.get(report_id, 0) + 1
            self._damaged[report_id] = tries
            if tries < MAX_DAMAGED_ATTEMPTS:
                self.log.warning("report %s arrived damaged (%s); sending again", report_id, reason)
                return
        self._damaged.pop(report_id, None)
        # Not resent while it is being moved aside.
        self._settling.add(report_id)
        try:
            await asyncio.to_thread(self.spool.reject, report_id, reason, refusal.message)
        finally:
            self._settling.discard(report_id)
        self.log.error(
            "the server refused report %s for good (%s): %s. It is kept aside in the spool; "
            "`probelink-agent status` shows it",
            report_id,
            reason,
            refusal.message,
        )

    # -- advisories -------------------------------------------------------------------
    async def _advised(self, advisory: advisory_pb2.Advisory) -> None:
        """Keep an advisory, then have the sending loop confirm it."""
        if self.advisories_dir is None:
            return  # not confirmed: the server sends it again at the next connect
        try:
            # Open, commit (its fsync) and close on the spool's worker thread, not the loop.
            kept, max_kept = await asyncio.to_thread(_keep, self.advisories_dir, advisory)
        except AdvisoryError as err:
            # Advisories are a courtesy; reports are the job. Unconfirmed, the server sends
            # it again at the next connect, when the file may be usable again.
            self.log.error("advisories from the server will not be kept: %s", err)
            return
        for refused in kept.refused:
            self.log.warning(
                "ignoring an advisory from the server (%r): %s; it is not confirmed",
                refused.advisory_id[:80],
                refused.why,
            )
        for new in kept.new:
            self.log.info(
                "advisory from the service network (%s, %s): %s",
                new.code,
                new.severity,
                new.text["en"],
            )
        if kept.evicted:
            self.log.info(
                "dropped %d old advisories to keep at most %d", len(kept.evicted), max_kept
            )
        self._to_confirm += kept.stored

    # -- the dictionary ---------------------------------------------------------------
    async def _fetch_dictionary(self) -> None:
        try:
            response = await self.gateway.GetDictionary(
                gateway_pb2.GetDictionaryRequest(dictionary_id=0),
                metadata=bearer(self._credential_now),
                timeout=CALL_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                self.log.warning("cannot fetch the current dictionary: %s", _describe(error))
            return
        if response.dictionary.dictionary_id:
            self._take_dictionary(response.dictionary)

    def _take_dictionary(self, dictionary: wire_pb2.Dictionary) -> None:
        try:
            encoder = Encoder(dictionary.content, dictionary.dictionary_id, key=self.key)
        except (ValueError, zstandard.ZstdError) as err:
            self.log.warning("ignoring dictionary %d: %s", dictionary.dictionary_id, err)
            return
        try:
            self.state.save_dictionary(dictionary.dictionary_id, dictionary.content)
        except StateError as err:
            # Used from memory all the same; the next start asks for it again.
            self.log.warning("cannot keep dictionary %d: %s", dictionary.dictionary_id, err)
        self.encoder = encoder
        self.board.update(dictionary_id=dictionary.dictionary_id)
        self.log.info("compressing with dictionary %d from now on", dictionary.dictionary_id)

    def _encoder(self) -> Encoder:
        kept = self.state.dictionary()
        if kept is not None:
            try:
                return Encoder(kept[1], kept[0], key=self.key)
            except (ValueError, zstandard.ZstdError) as err:
                self.log.warning("the kept dictionary %d is unusable (%s)", kept[0], err)
                self.state.forget_dictionary()
        return Encoder(key=self.key)


async def _first(stopping: asyncio.Event, wake: asyncio.Event) -> None:
    """Return when either event is set."""
    tasks = {asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(wake.wait())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _describe(error: grpc.aio.AioRpcError) -> str:
    details = error.details() or ""
    return f"{error.code().name}: {details}" if details else error.code().name


def _keep(state_dir: Path, advisory: advisory_pb2.Advisory) -> tuple[KeepResult, int]:
    with AdvisoryStore.open(state_dir) as store:
        return store.keep([advisory]), store.max_kept
