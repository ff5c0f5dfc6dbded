"""DictionaryBook keeps every issued dictionary; train() makes one our frames can name."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import zstandard

from probelink.server.errors import FailedPrecondition
from probelink.server.ingest.dictionaries import (
    DEFAULT_DICTIONARY_SIZE,
    MIN_TRAINING_REPORTS,
    DictionaryBook,
    train,
)
from probelink.server.store.base import DictionaryRecord
from probelink.server.store.open import open_store
from probelink.wire import Encoder
from tests.server.ingest.reports import varied_reports


@pytest.fixture(scope="module")
def samples() -> list[bytes]:
    return [r.SerializeToString() for r in varied_reports(MIN_TRAINING_REPORTS, seed=4)]


@pytest.fixture(scope="module")
def contents(samples: list[bytes]) -> dict[int, bytes]:
    return {i: train(samples, i, size=16 * 1024) for i in (1, 2, 3)}


def record(dictionary_id: int, content: bytes) -> DictionaryRecord:
    return DictionaryRecord(dictionary_id, content, MIN_TRAINING_REPORTS, 1_000 * dictionary_id)


def test_training_writes_our_id_inside_the_dictionary(samples: list[bytes]) -> None:
    content = train(samples, 70_000)
    zdict = zstandard.ZstdCompressionDict(content)
    assert zdict.dict_id() == 70_000
    assert len(content) == DEFAULT_DICTIONARY_SIZE


def test_training_needs_enough_reports(samples: list[bytes]) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        train(samples[:37], 1)
    assert str(caught.value) == (
        f"training a dictionary needs at least {MIN_TRAINING_REPORTS} stored reports; "
        f"there are 37: train again after {MIN_TRAINING_REPORTS - 37} more reports have arrived"
    )


def test_training_on_reports_zstd_cannot_learn_from_is_a_failed_precondition() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        train([b""] * MIN_TRAINING_REPORTS, 1)
    assert str(caught.value).startswith(
        f"zstd could not train a 64 KiB dictionary from {MIN_TRAINING_REPORTS} reports ("
    )
    assert str(caught.value).endswith("train again when more varied reports have arrived")


@pytest.mark.parametrize("bad_id", [0, -1, 2**32])
def test_training_refuses_an_id_zstd_cannot_carry(samples: list[bytes], bad_id: int) -> None:
    with pytest.raises(ValueError, match=r"is not in 1\.\.4294967295"):
        train(samples, bad_id)


def test_the_book_knows_what_it_holds_and_the_newest_is_current(
    contents: dict[int, bytes],
) -> None:
    book = DictionaryBook([record(2, contents[2]), record(1, contents[1])])
    assert (book.ids, book.current, book.get(1), book.get(3)) == (
        [1, 2],
        record(2, contents[2]),
        record(1, contents[1]),
        None,
    )
    assert (0 in book, 1 in book, 2 in book, 3 in book) == (True, True, True, False)
    book.add(record(3, contents[3]))
    assert book.current == record(3, contents[3])


def test_an_empty_book_has_no_current_and_understands_only_no_dictionary() -> None:
    book = DictionaryBook()
    assert (book.ids, book.current, 0 in book, 1 in book) == ([], None, True, False)
    assert book.decompressor(0).decompress(zstandard.compress(b"abc")) == b"abc"
    with pytest.raises(KeyError):
        book.decompressor(1)


def test_each_dictionary_decompresses_its_own_frames(
    contents: dict[int, bytes], samples: list[bytes]
) -> None:
    book = DictionaryBook(record(i, c) for i, c in contents.items())
    for dictionary_id, content in contents.items():
        frame = Encoder(content, dictionary_id).encode(samples[0])
        assert book.decompressor(dictionary_id).decompress(frame.zstd_frame) == samples[0]


def test_decompressors_are_cached_per_thread(contents: dict[int, bytes]) -> None:
    book = DictionaryBook([record(1, contents[1])])
    mine = book.decompressor(1)
    assert book.decompressor(1) is mine
    theirs: list[zstandard.ZstdDecompressor] = []
    worker = threading.Thread(target=lambda: theirs.extend([book.decompressor(1)] * 2))
    worker.start()
    worker.join()
    assert theirs[0] is theirs[1] and theirs[0] is not mine


def test_adding_the_same_dictionary_again_changes_nothing(contents: dict[int, bytes]) -> None:
    book = DictionaryBook([record(1, contents[1])])
    book.add(record(1, contents[1]))
    assert book.ids == [1]


def test_an_id_is_never_given_other_content(contents: dict[int, bytes]) -> None:
    # Same id, different content: train() with dict_id=1 on other samples.
    other = train([r.SerializeToString() for r in varied_reports(100, seed=99)], 1, 8192)
    book = DictionaryBook([record(1, contents[1])])
    with pytest.raises(ValueError, match="already held with other content"):
        book.add(record(1, other))
    assert book.get(1) == record(1, contents[1])


def test_a_record_whose_content_names_another_id_is_refused(contents: dict[int, bytes]) -> None:
    with pytest.raises(ValueError) as caught:
        DictionaryBook([record(5, contents[2])])
    assert str(caught.value) == (
        "dictionary 5's content says it is dictionary 2: its frames would never match; "
        "was it trained with dict_id?"
    )


def test_content_that_is_not_a_dictionary_is_refused() -> None:
    with pytest.raises(ValueError, match="content says it is dictionary 0"):
        DictionaryBook([record(1, b"raw bytes, no dictionary header" * 20)])


def test_load_and_learn_read_the_store(tmp_path: Path, contents: dict[int, bytes]) -> None:
    store = open_store(str(tmp_path / "probelink.db"))
    try:
        store.migrate()
        store.add_dictionary(record(1, contents[1]))
        store.add_dictionary(record(2, contents[2]))
        book = DictionaryBook.load(store)
        assert (book.ids, book.current) == ([1, 2], record(2, contents[2]))
        # Another replica issues dictionary 3 after this one loaded.
        store.add_dictionary(record(3, contents[3]))
        assert 3 not in book
        assert (book.learn(store, 3), book.learn(store, 4), book.ids) == (True, False, [1, 2, 3])
    finally:
        store.close()
