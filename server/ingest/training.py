"""The life of dictionaries: train from stored reports, issue, keep, push to agents.

    trainer = DictionaryTrainer(astore, book, on_issued=hub_broadcast, train_after=1000)
    record = await trainer.train()      # `probelink-server dict train`, or by itself:
    trainer.note_stored(1)              # ... once `train_after` reports were stored

By itself it trains the first dictionary as soon as `train_after` reports have been
stored, and a new one only when `train_after` more have arrived AND `retrain_every_s`
has passed since the current one: every new dictionary is a download for every agent,
and at thousands of reports a second "every N reports" would mean several a second.

Ids count up from 1 and are also the zstd dictionary id inside the dictionary, so a
frame's header names the dictionary it needs. A dictionary is never replaced or deleted:
every stored frame stays readable. With several replicas, two may train at once; the
second to insert gets DictionaryIdTaken and takes the next id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from probelink.server.clock import now_us
from probelink.server.errors import DictionaryIdTaken
from probelink.server.ingest.dictionaries import DictionaryBook, train
from probelink.server.store.async_store import AsyncStore
from probelink.server.store.base import DictionaryRecord

DEFAULT_SAMPLE_LIMIT = 2000
DEFAULT_RETRAIN_EVERY_S = 24 * 3600.0


class DictionaryTrainer:
    def __init__(
        self,
        store: AsyncStore,
        book: DictionaryBook,
        on_issued: Callable[[DictionaryRecord], None],
        train_after: int = 1000,
        sample_limit: int = DEFAULT_SAMPLE_LIMIT,
        retrain_every_s: float = DEFAULT_RETRAIN_EVERY_S,
    ) -> None:
        self._store = store
        self._book = book
        self._on_issued = on_issued
        self._train_after = train_after
        self._sample_limit = sample_limit
        self._retrain_every_us = int(retrain_every_s * 1_000_000)
        self._since_last = 0
        self._lock = asyncio.Lock()
        self._auto: asyncio.Task[None] | None = None

    def note_stored(self, count: int) -> None:
        """Count stored reports; start a training in the background every `train_after`."""
        if self._train_after <= 0:
            return
        self._since_last += count
        if self._since_last < self._train_after or not (self._auto is None or self._auto.done()):
            return
        current = self._book.current
        if current is not None and now_us() - current.created_at_us < self._retrain_every_us:
            return
        self._since_last = 0
        self._auto = asyncio.create_task(self._train_quietly(), name="dictionary-training")

    async def _train_quietly(self) -> None:
        # A failed automatic training (too few distinct reports, a busy database) is
        # retried after the next `train_after` reports; ingest never depends on it.
        with contextlib.suppress(Exception):
            await self.train()

    async def train(self, sample_limit: int = 0) -> DictionaryRecord:
        """Train on the newest stored reports, store and issue the new dictionary."""
        async with self._lock:
            store = self._store.store
            frames = await self._store.read(store.sample_frames, sample_limit or self._sample_limit)
            for dictionary_id in {d for d, _ in frames} - set(self._book.ids) - {0}:
                # Frames made with a dictionary another replica issued since we started.
                await self._store.read(self._book.learn, store, dictionary_id)
            samples = [
                self._book.decompressor(dictionary_id).decompress(frame)
                for dictionary_id, frame in frames
            ]
            for _attempt in range(3):
                next_id = await self._store.read(store.max_dictionary_id) + 1
                content = await asyncio.to_thread(train, samples, next_id)
                record = DictionaryRecord(next_id, content, len(samples), now_us())
                try:
                    await self._store.write(store.add_dictionary, record)
                except DictionaryIdTaken:
                    continue
                break
            else:
                raise DictionaryIdTaken("three other replicas trained dictionaries meanwhile")
            self._book.add(record)
            self._on_issued(record)
            return record

    async def close(self) -> None:
        if self._auto is not None:
            self._auto.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._auto
