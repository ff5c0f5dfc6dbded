"""Group commit: one writer batches the reports of every stream into one transaction.

    writer = GroupCommitWriter(astore, metrics)
    writer.start()
    result = await writer.enqueue(incoming)   # resolves once the batch holding it committed
    await writer.close()                      # commit what is queued, then stop

A durable commit costs about the same for one row as for a hundred (the fsync
dominates), so the writer takes whatever has queued up while the previous commit ran,
up to `max_batch`, and commits it at once. Under load batches grow by themselves; when
idle, a lone report commits at once — no timer adds latency.

A batch that fails (database locked or gone) fails every report in it with the same
error, and nothing of it was written: callers refuse those reports, they never ack.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from probelink.server.clock import now_us
from probelink.server.errors import IngestRefused, StoreError, StoreUnavailable
from probelink.server.metrics import Metrics
from probelink.server.store.async_store import AsyncStore
from probelink.server.store.base import IncomingReport, StoreResult
from probelink.v1 import wire_pb2


@dataclass(slots=True)
class _Pending:
    item: IncomingReport
    done: asyncio.Future[StoreResult] = field(default_factory=lambda: _new_future())


def _new_future() -> asyncio.Future[StoreResult]:
    return asyncio.get_running_loop().create_future()


class GroupCommitWriter:
    def __init__(self, store: AsyncStore, metrics: Metrics, max_batch: int = 256) -> None:
        self._store = store
        self._metrics = metrics
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit-writer")

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def enqueue(self, item: IncomingReport) -> asyncio.Future[StoreResult]:
        """Queue `item`; a future that resolves once its transaction has committed
        (or fails with the StoreError that kept it from committing)."""
        if self._closing:
            raise IngestRefused(
                wire_pb2.REFUSAL_REASON_SHUTTING_DOWN,
                "the server is shutting down and stored nothing of this report; "
                "send it again in a moment (to this server or another replica)",
            )
        pending = _Pending(item)
        self._queue.put_nowait(pending)
        return pending.done

    async def close(self) -> None:
        """Refuse new reports, commit every queued one, then stop."""
        self._closing = True
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    # Stop after this batch: everything queued before close() is in it
                    # or was committed before it.
                    stopping = True
                    break
                batch.append(nxt)
            # Sampled once a batch: setting a gauge per report costs more than it tells.
            self._metrics.queue_depth.set(self._queue.qsize())
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        items = [p.item for p in batch]
        try:
            results = await self._store.write(self._store.store.store_reports, items, now_us())
        except StoreError as exc:
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(exc)
            return
        except Exception as exc:  # a bug in a backend must not kill the writer
            error = StoreUnavailable(f"the database failed while committing: {exc}")
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(error)
            return
        self._metrics.batch_size.observe(len(batch))
        self._metrics.queue_depth.set(self._queue.qsize())
        for p, result in zip(batch, results, strict=True):
            if not p.done.done():  # the caller may have gone (stream cancelled)
                p.done.set_result(result)
