"""Every zstd dictionary the server ever issued, ready to decompress with; and training.

    book = DictionaryBook.load(store)            # all issued dictionaries, by id
    book.decompressor(frame.dictionary_id)       # cached per thread; 0 = no dictionary
    content = train(samples, dictionary_id=store.max_dictionary_id() + 1)

A dictionary is never replaced or forgotten: a report compressed with dictionary 3
may be resent from a spool long after dictionary 4 was issued, and every stored
frame must stay readable.

Training takes serialized Reports (decompressed) as samples and writes our id inside
the dictionary, so the id in each frame's header equals `Dictionary.dictionary_id`.
64 KiB was chosen by measurement (tests' varied corpus of the captured machines,
trained on 1,000 reports, measured on 200 others, level 3; mean frame bytes):
raw 7,766 · no dictionary 3,961 · 8 KiB 2,379 · 16 KiB 1,578 · 32 KiB 972 ·
64 KiB 907 · 112 KiB 894 — beyond 64 KiB the gain is ~1 % for a larger download
to every agent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import zstandard
from google.protobuf.message import DecodeError

from probelink.server.errors import FailedPrecondition, StoreError
from probelink.server.ingest.frames import MAX_WINDOW_SIZE
from probelink.server.store.base import DictionaryRecord, Store, StoredReport
from probelink.v1 import report_pb2

DEFAULT_DICTIONARY_SIZE = 64 * 1024
# zstd's trainer fails below ~7 samples; a dictionary worth sending to every agent
# should see more than a handful of devices, so we ask for more than it needs.
MIN_TRAINING_REPORTS = 100
# zstd dictionary ids are 32-bit; 0 means "no dictionary".
_MAX_DICTIONARY_ID = 2**32 - 1


def train(
    samples: Sequence[bytes], dictionary_id: int, size: int = DEFAULT_DICTIONARY_SIZE
) -> bytes:
    """A zstd dictionary (as `Dictionary.content`) trained on serialized Reports.

    Raises FailedPrecondition when there are too few reports to train on.
    Takes about a quarter of a second for 1,000 reports: run it off the event loop.
    """
    if not 1 <= dictionary_id <= _MAX_DICTIONARY_ID:
        raise ValueError(f"dictionary id {dictionary_id} is not in 1..{_MAX_DICTIONARY_ID}")
    if len(samples) < MIN_TRAINING_REPORTS:
        raise FailedPrecondition(
            f"training a dictionary needs at least {MIN_TRAINING_REPORTS} stored reports; "
            f"there are {len(samples)}: train again after {MIN_TRAINING_REPORTS - len(samples)} "
            "more reports have arrived"
        )
    try:
        trained = zstandard.train_dictionary(size, list(samples), dict_id=dictionary_id)
    except zstandard.ZstdError as err:
        # The trainer refuses corpora it cannot learn from (e.g. tiny or identical reports).
        raise FailedPrecondition(
            f"zstd could not train a {size // 1024} KiB dictionary from {len(samples)} "
            f"reports ({err}); train again when more varied reports have arrived"
        ) from err
    content: bytes = trained.as_bytes()
    return content


def _loaded(record: DictionaryRecord) -> zstandard.ZstdCompressionDict:
    """The record's dictionary, checked and with its decoding tables built."""
    if not 1 <= record.dictionary_id <= _MAX_DICTIONARY_ID:
        raise ValueError(f"dictionary id {record.dictionary_id} is not in 1..{_MAX_DICTIONARY_ID}")
    zdict = zstandard.ZstdCompressionDict(record.content)
    if zdict.dict_id() != record.dictionary_id:
        raise ValueError(
            f"dictionary {record.dictionary_id}'s content says it is dictionary "
            f"{zdict.dict_id()}: its frames would never match; was it trained with dict_id?"
        )
    # A round trip proves the content loads, and builds the shared decoding tables now,
    # once, before any ingest thread can race to build them.
    probe = zstandard.ZstdCompressor(dict_data=zdict, write_checksum=True).compress(b"probelink")
    if zstandard.ZstdDecompressor(dict_data=zdict).decompress(probe) != b"probelink":
        raise ValueError(f"dictionary {record.dictionary_id} does not round-trip")
    return zdict


class DictionaryBook:
    """The dictionaries by id, and a zstd decompressor for each (one per thread)."""

    def __init__(self, records: Iterable[DictionaryRecord] = ()) -> None:
        # Replaced, never mutated, on add(): readers in other threads see a whole dict.
        self._records: dict[int, DictionaryRecord] = {}
        self._zdicts: dict[int, zstandard.ZstdCompressionDict] = {}
        self._lock = threading.Lock()
        # A ZstdDecompressor is not safe for concurrent use; its dictionary tables are.
        self._local = threading.local()
        for record in records:
            self.add(record)

    @classmethod
    def load(cls, store: Store) -> DictionaryBook:
        """Every dictionary the store holds."""
        book = cls()
        for dictionary_id in range(1, store.max_dictionary_id() + 1):
            book.learn(store, dictionary_id)
        return book

    def add(self, record: DictionaryRecord) -> None:
        """Keep `record`. Adding the same dictionary again is a no-op.

        Raises ValueError for content that is not a zstd dictionary with this id, or
        for a different dictionary under an id already held (ids are never reused).
        """
        held = self._records.get(record.dictionary_id)
        if held is not None:
            if held.content != record.content:
                raise ValueError(
                    f"dictionary {record.dictionary_id} is already held with other content; "
                    "dictionaries are never replaced"
                )
            return
        zdict = _loaded(record)
        with self._lock:
            self._records = {**self._records, record.dictionary_id: record}
            self._zdicts = {**self._zdicts, record.dictionary_id: zdict}

    def learn(self, store: Store, dictionary_id: int) -> bool:
        """Add dictionary `dictionary_id` from the store (another replica may have trained
        it); True if the book holds it now."""
        if dictionary_id in self:
            return True
        record = store.get_dictionary(dictionary_id)
        if record is None:
            return False
        self.add(record)
        return True

    def __contains__(self, dictionary_id: object) -> bool:
        return dictionary_id == 0 or dictionary_id in self._records

    @property
    def ids(self) -> list[int]:
        """The ids held, ascending (0, "no dictionary", is always understood)."""
        return sorted(self._records)

    @property
    def current(self) -> DictionaryRecord | None:
        """The newest dictionary (highest id): the one agents should compress with."""
        records = self._records
        return records[max(records)] if records else None

    def get(self, dictionary_id: int) -> DictionaryRecord | None:
        return self._records.get(dictionary_id)

    def decompressor(self, dictionary_id: int) -> zstandard.ZstdDecompressor:
        """This thread's decompressor for `dictionary_id` (0: none). KeyError if unknown."""
        cache: dict[int, zstandard.ZstdDecompressor] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        found = cache.get(dictionary_id)
        if found is None:
            zdict = self._zdicts[dictionary_id] if dictionary_id else None
            # Bounded window: a frame asking for more is refused, not allocated for.
            found = zstandard.ZstdDecompressor(dict_data=zdict, max_window_size=MAX_WINDOW_SIZE)
            cache[dictionary_id] = found
        return found

    def read_back(self, store: Store, stored: StoredReport) -> tuple[bytes, report_pb2.Report]:
        """A stored report's serialized bytes and the parsed Report (blocking: a thread).

        Raises StoreError when its dictionary is missing from the database or the stored
        bytes are damaged.
        """
        dictionary_id = stored.row.dictionary_id
        if dictionary_id not in self:  # issued by another replica since we started
            self.learn(store, dictionary_id)
        try:
            serialized = self.decompressor(dictionary_id).decompress(stored.frame)
            return serialized, report_pb2.Report.FromString(serialized)
        except (KeyError, zstandard.ZstdError, DecodeError) as exc:
            raise StoreError(
                f"report {stored.row.report_id} is stored but cannot be read back ({exc!r}): "
                f"its dictionary {dictionary_id} is missing from the database or the stored "
                "bytes are damaged"
            ) from exc
