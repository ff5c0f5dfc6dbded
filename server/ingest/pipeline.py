"""One report frame in, one ack or one refusal out: the ingest path end to end.

    ingestor = Ingestor(writer, book, metrics, max_content_size=1 << 20)
    ack = await ingestor.ingest(frame, device_id="…", sequence=7)   # or IngestRefused

Order matters, and is the point of this module: check the frame's header before
allocating (`frames.py`), decompress within the declared size (`decode.py`), check the
report against the contract (`validate.py`), then hand it to the group-commit writer and
answer only after the commit. A report id already stored with the same content is
acked as a duplicate; with other content (or from another device) it is refused and the
stored copy stays as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from google.protobuf.timestamp_pb2 import Timestamp

from probelink.server.auth.credentials import now_us
from probelink.server.errors import IngestRefused, StoreUnavailable
from probelink.server.ingest.decode import decode_frame
from probelink.server.ingest.dictionaries import DictionaryBook
from probelink.server.ingest.validate import summarize
from probelink.server.ingest.writer import GroupCommitWriter
from probelink.server.metrics import Metrics
from probelink.server.store.async_store import AsyncStore
from probelink.server.store.base import IncomingReport, StoreOutcome
from probelink.v1 import wire_pb2

DEFAULT_MAX_CONTENT_SIZE = 1 << 20


class Ingestor:
    def __init__(
        self,
        writer: GroupCommitWriter,
        book: DictionaryBook,
        metrics: Metrics,
        max_content_size: int = DEFAULT_MAX_CONTENT_SIZE,
        on_stored: Callable[[int], None] | None = None,
        store: AsyncStore | None = None,
    ) -> None:
        self._writer = writer
        self._book = book
        self._metrics = metrics
        self.max_content_size = max_content_size
        # Told how many reports were stored, so dictionaries can be trained after N.
        self._on_stored = on_stored
        # Where to look for a dictionary another replica issued since this one started.
        self._store = store

    async def ingest(
        self, frame: wire_pb2.ReportFrame, device_id: str, sequence: int = 0
    ) -> wire_pb2.ReportAck:
        """Store the report in `frame` once for `device_id`; raises IngestRefused."""
        started = time.perf_counter()
        self._metrics.received.inc()
        try:
            return await self._ingest(frame, device_id, sequence)
        except IngestRefused as refused:
            self._metrics.refused.labels(reason=refused.reason_name).inc()
            raise
        finally:
            self._metrics.latency.observe(time.perf_counter() - started)

    async def _ingest(
        self, frame: wire_pb2.ReportFrame, device_id: str, sequence: int
    ) -> wire_pb2.ReportAck:
        try:
            decoded = decode_frame(frame, self._book, self.max_content_size)
        except IngestRefused as refused:
            if not await self._learn_dictionary(refused, frame.dictionary_id):
                raise
            decoded = decode_frame(frame, self._book, self.max_content_size)
        report = decoded.report
        summary = summarize(report, now_us())
        incoming = IncomingReport(
            report_id=report.report_id,
            device_id=device_id,
            content_sha256=decoded.sha256,
            frame=frame.zstd_frame,
            dictionary_id=frame.dictionary_id,
            report_bytes=len(decoded.serialized),
            summary=summary,
        )
        try:
            result = await self._writer.submit(incoming)
        except StoreUnavailable as exc:
            raise IngestRefused(
                wire_pb2.REFUSAL_REASON_STORE_UNAVAILABLE,
                f"{exc} — report {report.report_id} was not stored; send it again later",
                report.report_id,
            ) from exc
        if result.outcome is StoreOutcome.CONFLICT:
            raise IngestRefused(
                wire_pb2.REFUSAL_REASON_ID_CONFLICT,
                f"report id {report.report_id} is already stored with different content "
                "(or for another device); the stored report is kept. A new report needs "
                "a new id",
                report.report_id,
            )
        duplicate = result.outcome is StoreOutcome.DUPLICATE
        if duplicate:
            self._metrics.duplicates.inc()
        else:
            self._metrics.stored.inc()
            if self._on_stored is not None:
                self._on_stored(1)
        stored_at = Timestamp()
        stored_at.FromMicroseconds(result.stored_at_us)
        return wire_pb2.ReportAck(
            report_id=report.report_id,
            sequence=sequence,
            duplicate=duplicate,
            stored_at=stored_at,
        )

    async def _learn_dictionary(self, refused: IngestRefused, dictionary_id: int) -> bool:
        """Whether another replica issued `dictionary_id`; if so, it is now in the book."""
        if refused.reason != wire_pb2.REFUSAL_REASON_UNKNOWN_DICTIONARY or self._store is None:
            return False
        return await self._store.read(self._book.learn, self._store.store, dictionary_id)
