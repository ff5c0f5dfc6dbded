"""One report frame in, one ack or one refusal out: the ingest path end to end.

    ingestor = Ingestor(writer, book, metrics, max_content_size=1 << 20)
    ack = await ingestor.ingest(frame, device_id="…", public_key=key, sequence=7)
    # or IngestRefused

Order matters, and is the point of this module: check the frame's header before
allocating (`frames.py`), decompress within the declared size (`decode.py`), verify the
device's signature of the content with the key it registered (`signature.py`) before
anything else trusts the report, check the report against the contract (`validate.py`),
then hand it to the group-commit writer and answer only after the commit. A report id
already stored with the same content is acked as a duplicate (keeping the signature it
was first stored with: Ed25519 is deterministic, so an honest resend carries the same
one anyway); with other content (or from another device) it is refused and the stored
copy stays as it was.

A Connect stream uses the same steps without a coroutine per report — `accept` and
`writer.enqueue` right away, `answer` when the commit's future resolves — because at
thousands of reports a second the event loop's own bookkeeping is a cost that shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from probelink.server.clock import now_us, timestamp
from probelink.server.errors import IngestRefused, StoreError
from probelink.server.ingest.decode import decode_frame
from probelink.server.ingest.dictionaries import DictionaryBook
from probelink.server.ingest.frames import DEFAULT_MAX_CONTENT_SIZE
from probelink.server.ingest.signature import SignatureChecker
from probelink.server.ingest.validate import summarize
from probelink.server.ingest.writer import GroupCommitWriter
from probelink.server.metrics import Metrics
from probelink.server.store.async_store import AsyncStore
from probelink.server.store.base import IncomingReport, StoreOutcome, StoreResult
from probelink.v1 import wire_pb2


@dataclass(slots=True)
class Accepted:
    """A report that passed every check and waits for its commit."""

    incoming: IncomingReport
    sequence: int
    started: float
    committed: asyncio.Future[StoreResult]


class Ingestor:
    def __init__(
        self,
        writer: GroupCommitWriter,
        book: DictionaryBook,
        metrics: Metrics,
        max_content_size: int = DEFAULT_MAX_CONTENT_SIZE,
        on_stored: Callable[[int], None] | None = None,
        store: AsyncStore | None = None,
        on_report: Callable[[str, str], None] | None = None,
    ) -> None:
        self._writer = writer
        self._book = book
        self._metrics = metrics
        self.max_content_size = max_content_size
        # Told how many reports were stored, so dictionaries can be trained after N.
        self._on_stored = on_stored
        # Where to look for a dictionary another replica issued since this one started.
        self._store = store
        self._signatures = SignatureChecker()
        # Told (device id, report id) of each newly stored report: diagnoses follow.
        self._on_report = on_report

    async def ingest(
        self,
        frame: wire_pb2.ReportFrame,
        device_id: str,
        public_key: bytes | None,
        sequence: int = 0,
    ) -> wire_pb2.ReportAck:
        """Store the report in `frame` once for `device_id`, whose registered key is
        `public_key` (None: it has none); raises IngestRefused."""
        started = time.perf_counter()
        try:
            accepted = self.accept(frame, device_id, public_key, sequence, started)
        except IngestRefused as refused:
            return await self.after_refusal(
                refused, frame, device_id, public_key, sequence, started
            )
        return await self.committed(accepted)

    async def after_refusal(
        self,
        refused: IngestRefused,
        frame: wire_pb2.ReportFrame,
        device_id: str,
        public_key: bytes | None,
        sequence: int,
        started: float,
    ) -> wire_pb2.ReportAck:
        """`accept` refused the frame: if it names a dictionary another replica issued
        since this one started, learn that dictionary and go on; else re-raise."""
        if not await self._learn_dictionary(refused, frame.dictionary_id):
            raise refused
        return await self.committed(
            self.accept(frame, device_id, public_key, sequence, started, True)
        )

    async def committed(self, accepted: Accepted) -> wire_pb2.ReportAck:
        """Wait for `accepted`'s commit; its ack (or IngestRefused)."""
        with contextlib.suppress(StoreError):  # answer() turns it into the refusal
            await asyncio.shield(accepted.committed)
        return self.answer(accepted)

    def accept(
        self,
        frame: wire_pb2.ReportFrame,
        device_id: str,
        public_key: bytes | None,
        sequence: int = 0,
        started: float | None = None,
        counted: bool = False,
    ) -> Accepted:
        """Check `frame` and queue its report for the next commit; IngestRefused if bad."""
        if started is None:
            started = time.perf_counter()
        metrics = self._metrics
        if not counted:
            metrics.received.inc()
        try:
            decoded = decode_frame(frame, self._book, self.max_content_size)
            report = decoded.report
            signature = self._signatures.check(frame.signature, public_key, decoded, device_id)
            incoming = IncomingReport(
                report_id=report.report_id,
                device_id=device_id,
                content_sha256=decoded.sha256,
                frame=frame.zstd_frame,
                dictionary_id=frame.dictionary_id,
                report_bytes=len(decoded.serialized),
                summary=summarize(report, now_us()),
                signature=signature,
            )
            committed = self._writer.enqueue(incoming)
        except IngestRefused as refused:
            if refused.reason != wire_pb2.REFUSAL_REASON_UNKNOWN_DICTIONARY or counted:
                self._refused(refused, started)
            raise
        return Accepted(incoming, sequence, started, committed)

    def answer(self, accepted: Accepted) -> wire_pb2.ReportAck:
        """The ack for a committed report; IngestRefused if the commit failed or clashed."""
        report_id = accepted.incoming.report_id
        try:
            result = accepted.committed.result()
            if result.outcome is StoreOutcome.CONFLICT:
                raise IngestRefused(
                    wire_pb2.REFUSAL_REASON_ID_CONFLICT,
                    f"report id {report_id} is already stored with different content "
                    "(or for another device); the stored report is kept. A new report "
                    "needs a new id",
                    report_id,
                )
        except StoreError as exc:
            # Whatever the database said, nothing of this report was written.
            refused = IngestRefused(
                wire_pb2.REFUSAL_REASON_STORE_UNAVAILABLE,
                f"{exc} — report {report_id} was not stored; send it again later",
                report_id,
            )
            self._refused(refused, accepted.started)
            raise refused from exc
        except IngestRefused as refused:
            self._refused(refused, accepted.started)
            raise
        metrics = self._metrics
        duplicate = result.outcome is StoreOutcome.DUPLICATE
        if duplicate:
            metrics.duplicates.inc()
        else:
            metrics.stored.inc()
            if self._on_stored is not None:
                self._on_stored(1)
            if self._on_report is not None:
                self._on_report(accepted.incoming.device_id, report_id)
        metrics.latency.observe(time.perf_counter() - accepted.started)
        return wire_pb2.ReportAck(
            report_id=report_id,
            sequence=accepted.sequence,
            duplicate=duplicate,
            stored_at=timestamp(result.stored_at_us),
        )

    def _refused(self, refused: IngestRefused, started: float) -> None:
        self._metrics.refused.labels(reason=refused.reason_name).inc()
        self._metrics.latency.observe(time.perf_counter() - started)

    async def _learn_dictionary(self, refused: IngestRefused, dictionary_id: int) -> bool:
        """Whether another replica issued `dictionary_id`; if so, it is now in the book."""
        if refused.reason != wire_pb2.REFUSAL_REASON_UNKNOWN_DICTIONARY:
            return False
        if self._store is not None and await self._store.read(
            self._book.learn, self._store.store, dictionary_id
        ):
            return True
        self._refused(refused, time.perf_counter())
        return False
