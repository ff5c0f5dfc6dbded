"""Dictionaries are kept forever and never replaced, on both backends."""

from __future__ import annotations

import os

import pytest

from probelink.server.errors import DictionaryIdTaken
from probelink.server.store import DictionaryRecord, Store


def test_no_dictionary_yet(store: Store) -> None:
    assert store.max_dictionary_id() == 0
    assert store.latest_dictionary() is None
    assert store.get_dictionary(1) is None


def test_add_get_latest_and_max(store: Store) -> None:
    # 110 KB of arbitrary bytes: the content must come back exactly.
    first = DictionaryRecord(1, os.urandom(110_000), trained_on_reports=1000, created_at_us=5)
    second = DictionaryRecord(2, bytes(range(256)) * 4, trained_on_reports=2000, created_at_us=9)
    store.add_dictionary(first)
    store.add_dictionary(second)
    assert store.get_dictionary(1) == first
    assert store.get_dictionary(2) == second
    assert store.get_dictionary(3) is None
    assert store.latest_dictionary() == second
    assert store.max_dictionary_id() == 2


def test_an_id_taken_is_refused_and_the_first_kept(store: Store) -> None:
    first = DictionaryRecord(1, b"first", trained_on_reports=10, created_at_us=5)
    store.add_dictionary(first)
    with pytest.raises(DictionaryIdTaken, match="dictionary 1 exists already"):
        store.add_dictionary(DictionaryRecord(1, b"second", trained_on_reports=20, created_at_us=6))
    assert store.get_dictionary(1) == first
