"""Storing reports exactly once, and reading them back, on both backends."""

from __future__ import annotations

import dataclasses

from probelink.server.store import (
    DeviceRecord,
    ReportRow,
    Store,
    StoredReport,
    StoreOutcome,
    StoreResult,
)
from probelink.server.store.base import UNSIGNED
from tests.server.conftest import raw_sql
from tests.server.store.factories import SUMMARY, incoming, signature_of

STORED, DUPLICATE, CONFLICT = StoreOutcome.STORED, StoreOutcome.DUPLICATE, StoreOutcome.CONFLICT


def test_a_new_report_is_stored_with_its_frame_byte_for_byte(store: Store) -> None:
    item = incoming("r1", frame=bytes(range(256)) * 6, dictionary_id=3)
    assert store.store_reports([item], received_at_us=1_000) == [StoreResult(STORED, 1_000)]
    assert store.get_report("r1") == StoredReport(
        row=ReportRow(
            report_id="r1",
            device_id="d1",
            received_at_us=1_000,
            dictionary_id=3,
            report_bytes=4096,
            stored_bytes=1536,
            content_sha256=item.content_sha256,
            summary=SUMMARY,
            signature=signature_of(b"report r1"),
        ),
        frame=bytes(range(256)) * 6,
        # No device d1 is enrolled: no key to hand out.
        device_public_key=None,
    )
    assert store.get_report("r2") is None


def test_a_resend_is_a_duplicate_that_keeps_the_first_copy(store: Store) -> None:
    first = incoming("r1")
    store.store_reports([first], received_at_us=1_000)
    # The same report, compressed again: same content hash, other frame bytes.
    again = incoming("r1")
    assert store.store_reports([again], received_at_us=2_000) == [StoreResult(DUPLICATE, 1_000)]
    stored = store.get_report("r1")
    assert stored is not None
    assert (stored.frame, stored.row.received_at_us) == (first.frame, 1_000)
    assert store.count_reports() == 1


def test_the_same_id_with_other_content_is_a_conflict_and_changes_nothing(store: Store) -> None:
    first = incoming("r1", content=b"one")
    store.store_reports([first], received_at_us=1_000)
    before = store.get_report("r1")
    assert store.store_reports([incoming("r1", content=b"two")], received_at_us=2_000) == [
        StoreResult(CONFLICT, 0)
    ]
    assert store.get_report("r1") == before


def test_the_same_id_from_another_device_is_a_conflict(store: Store) -> None:
    store.store_reports([incoming("r1", device_id="d1")], received_at_us=1_000)
    before = store.get_report("r1")
    assert store.store_reports([incoming("r1", device_id="d2")], received_at_us=2_000) == [
        StoreResult(CONFLICT, 0)
    ]
    assert store.get_report("r1") == before
    assert store.count_reports("d2") == 0


def test_one_id_twice_in_a_batch_behaves_as_if_sent_one_after_the_other(store: Store) -> None:
    first = incoming("r1", content=b"one")
    batch = [
        first,
        incoming("r1", content=b"one"),  # a resend: duplicate of the first
        incoming("r1", content=b"two"),  # other content: conflict
        incoming("r1", content=b"one", device_id="d2"),  # other device: conflict
        incoming("r2"),
    ]
    assert store.store_reports(batch, received_at_us=5) == [
        StoreResult(STORED, 5),
        StoreResult(DUPLICATE, 5),
        StoreResult(CONFLICT, 0),
        StoreResult(CONFLICT, 0),
        StoreResult(STORED, 5),
    ]
    stored = store.get_report("r1")
    assert stored is not None
    assert (stored.frame, stored.row.content_sha256) == (first.frame, first.content_sha256)
    assert store.count_reports() == 2


def test_a_mixed_batch_against_stored_reports(store: Store) -> None:
    store.store_reports([incoming("a"), incoming("b", content=b"b1")], received_at_us=1)
    batch = [incoming("a"), incoming("b", content=b"b2"), incoming("c")]
    assert store.store_reports(batch, received_at_us=2) == [
        StoreResult(DUPLICATE, 1),
        StoreResult(CONFLICT, 0),
        StoreResult(STORED, 2),
    ]


def test_a_batch_of_500_is_stored_whole(store: Store) -> None:
    batch = [incoming(f"r{i:04}", device_id=f"d{i % 7}") for i in range(500)]
    results = store.store_reports(batch, received_at_us=77)
    assert results == [StoreResult(STORED, 77)] * 500
    assert store.count_reports() == 500
    assert store.count_reports("d3") == len([i for i in range(500) if i % 7 == 3])
    for item in (batch[0], batch[250], batch[499]):
        stored = store.get_report(item.report_id)
        assert stored is not None
        assert (stored.frame, stored.row.device_id) == (item.frame, item.device_id)
    # And resent whole: every one a duplicate, nothing added.
    assert store.store_reports(batch, received_at_us=78) == [StoreResult(DUPLICATE, 77)] * 500
    assert store.count_reports() == 500


def test_an_empty_batch_is_nothing(store: Store) -> None:
    assert store.store_reports([], received_at_us=1) == []


def _keys(rows: list[ReportRow]) -> list[tuple[int, str]]:
    return [(r.received_at_us, r.report_id) for r in rows]


def test_list_pages_newest_first_with_a_cursor(store: Store) -> None:
    # Two reports share each receive time, so the id must break ties.
    for t in range(1, 6):
        store.store_reports([incoming(f"r{t}a"), incoming(f"r{t}b")], received_at_us=t * 100)
    everything = [(t * 100, f"r{t}{s}") for t in range(5, 0, -1) for s in "ba"]
    pages: list[list[tuple[int, str]]] = []
    after: tuple[int, str] | None = None
    while True:
        page = store.list_reports(None, limit=3, after=after)
        if not page:
            break
        pages.append(_keys(page))
        after = (page[-1].received_at_us, page[-1].report_id)
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert [k for p in pages for k in p] == everything


def test_list_for_one_device_and_whole_rows(store: Store) -> None:
    mine = incoming("m1", device_id="mine")
    store.store_reports([mine, incoming("o1", device_id="other")], received_at_us=10)
    store.store_reports([incoming("m2", device_id="mine")], received_at_us=20)
    rows = store.list_reports("mine", limit=10)
    assert _keys(rows) == [(20, "m2"), (10, "m1")]
    assert rows[1] == ReportRow(
        report_id="m1",
        device_id="mine",
        received_at_us=10,
        dictionary_id=0,
        report_bytes=4096,
        stored_bytes=len(mine.frame),
        content_sha256=mine.content_sha256,
        summary=SUMMARY,
        signature=signature_of(b"report m1"),
    )
    assert _keys(store.list_reports("mine", limit=10, after=(20, "m2"))) == [(10, "m1")]
    assert store.list_reports("nobody", limit=10) == []


def test_count_all_and_per_device(store: Store) -> None:
    assert store.count_reports() == 0
    store.store_reports(
        [incoming("a", device_id="x"), incoming("b", device_id="x"), incoming("c", device_id="y")],
        received_at_us=1,
    )
    assert (store.count_reports(), store.count_reports("x"), store.count_reports("y")) == (3, 2, 1)
    assert store.count_reports("z") == 0


def test_sample_frames_are_the_newest_with_their_dictionary(store: Store) -> None:
    old = incoming("old", dictionary_id=0)
    mid = incoming("mid", dictionary_id=1)
    new = incoming("new", dictionary_id=2)
    store.store_reports([old], received_at_us=1)
    store.store_reports([mid], received_at_us=2)
    store.store_reports([new], received_at_us=3)
    assert store.sample_frames(2) == [(2, new.frame), (1, mid.frame)]
    assert store.sample_frames(10) == [(2, new.frame), (1, mid.frame), (0, old.frame)]


def test_a_report_reads_back_with_its_devices_registered_key(store: Store) -> None:
    key = bytes(range(32))
    store.add_device(
        DeviceRecord("d1", b"credential hash", "s1", "Acme", "Tab 10", "0.1", 1, None, key)
    )
    store.store_reports([incoming("r1"), incoming("r2", device_id="gone")], received_at_us=5)
    mine = store.get_report("r1")
    assert mine is not None
    assert (mine.device_public_key, mine.row.signature) == (key, signature_of(b"report r1"))
    orphan = store.get_report("r2")
    assert orphan is not None and orphan.device_public_key is None


def test_rows_stored_before_signatures_read_back_unsigned(store: Store, store_url: str) -> None:
    store.store_reports([incoming("r1")], received_at_us=5)
    # What migration 2 leaves in a row stored before it: NULLs and the defaults.
    raw_sql(
        store_url,
        "UPDATE reports SET signature = NULL, signing_key = NULL, signature_verdict = 0, "
        "spool_evicted = 0 WHERE report_id = ?",
        ("r1",),
    )
    stored = store.get_report("r1")
    assert stored is not None
    assert stored.row.signature == UNSIGNED
    assert stored.row.summary == dataclasses.replace(SUMMARY, spool_evicted=0)
