"""The spool (durable outbox) on real SQLite files, including `kill -9` mid-write.

The crash tests run `tests/agent/spool_child.py` as a real process, kill it at a random
moment, and hold the reopened file to every line the child printed after a call returned.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probelink.agent.spool import SCHEMA_VERSION, ReportTooLarge, Spool, SpoolError
from tests.agent.spool_child import payload

CHILD = Path(__file__).with_name("spool_child.py")
BIG = 1 << 30


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "spool.db"


@pytest.fixture
def spool(spool_path: Path) -> Iterator[Spool]:
    s = Spool(spool_path, max_bytes=BIG, max_reports=1000)
    yield s
    s.close()


def raw_rows(path: Path) -> list[tuple[str, bytes, int, int]]:
    """(report_id, serialized, bytes, attempts) in spool order, read with a plain connection."""
    conn = sqlite3.connect(path)
    try:
        return [
            (r, bytes(d), n, a)
            for r, d, n, a in conn.execute(
                "SELECT report_id, serialized, bytes, attempts FROM reports ORDER BY seq"
            )
        ]
    finally:
        conn.close()


# -- the round trip ------------------------------------------------------------------
def test_put_pending_ack_round_trip_in_order(spool: Spool, spool_path: Path) -> None:
    reports = [(f"r{i}", f"report {i}".encode() * (i + 1)) for i in range(5)]
    for report_id, data in reports:
        assert spool.put(report_id, data) == 0
    assert spool.pending(10) == reports
    assert spool.pending(2) == reports[:2]
    assert spool.pending(0) == []
    assert spool.depth() == (5, sum(len(d) for _, d in reports))

    assert spool.ack("r2") is True
    assert spool.ack("r0") is True
    left = [reports[1], reports[3], reports[4]]
    assert spool.pending(10) == left
    assert spool.depth() == (3, sum(len(d) for _, d in left))
    assert [(r, d, n) for r, d, n, _ in raw_rows(spool_path)] == [(r, d, len(d)) for r, d in left]
    assert spool.evicted() == (0, 0)


def test_pending_skips_reports_in_flight(spool: Spool) -> None:
    for i in range(6):
        spool.put(f"r{i}", b"x")
    window = spool.pending(2)
    assert [r for r, _ in window] == ["r0", "r1"]
    # Topping up the window: the next two, not the two in flight again.
    more = spool.pending(2, skip={"r0", "r1", "long-acked"})
    assert [r for r, _ in more] == ["r2", "r3"]
    assert [r for r, _ in spool.pending(10, skip={"r1", "r3"})] == ["r0", "r2", "r4", "r5"]


def test_put_same_id_again_is_a_no_op(spool: Spool, spool_path: Path) -> None:
    spool.put("a", b"first")
    spool.put("b", b"second")
    assert spool.put("a", b"first") == 0
    # Even with other bytes: the id is the report's identity; the first copy stays.
    assert spool.put("a", b"changed") == 0
    assert spool.pending(10) == [("a", b"first"), ("b", b"second")]
    assert spool.depth() == (2, len(b"first") + len(b"second"))
    assert len(raw_rows(spool_path)) == 2


def test_ack_of_unknown_or_already_acked_id_is_false(spool: Spool) -> None:
    spool.put("a", b"data")
    assert spool.ack("never-spooled") is False
    assert spool.ack("a") is True
    assert spool.ack("a") is False  # the ack of a resend
    assert spool.depth() == (0, 0)
    assert spool.pending(5) == []


def test_ack_many_in_one_commit(spool: Spool) -> None:
    for i in range(700):  # more than one IN (...) chunk
        spool.put(f"r{i:03d}", b"xy")
    gone = spool.ack_many([f"r{i:03d}" for i in range(0, 700, 2)] + ["r000", "unknown"])
    assert gone == 350
    assert spool.depth() == (350, 700)
    assert [r for r, _ in spool.pending(3)] == ["r001", "r003", "r005"]
    assert spool.ack_many([]) == 0


def test_threads_share_one_spool(spool: Spool) -> None:
    # The daemon calls the spool from its loop's worker threads: puts and acks interleave.
    def put_many(t: int) -> None:
        for i in range(100):
            spool.put(f"t{t}-{i:03d}", b"x" * (i + 1))

    def ack_evens() -> None:
        for i in range(0, 100, 2):
            while not spool.ack(f"t0-{i:03d}"):
                time.sleep(0.001)

    threads = [threading.Thread(target=put_many, args=(t,)) for t in range(4)]
    threads.append(threading.Thread(target=ack_evens))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    left = spool.pending(1000)
    expected = {f"t{t}-{i:03d}" for t in range(4) for i in range(100)}
    expected -= {f"t0-{i:03d}" for i in range(0, 100, 2)}
    assert {r for r, _ in left} == expected
    assert spool.depth() == (len(left), sum(len(d) for _, d in left))


# -- eviction ------------------------------------------------------------------------
def test_eviction_by_count_is_oldest_first_and_counted(spool_path: Path) -> None:
    with Spool(spool_path, max_bytes=BIG, max_reports=3) as spool:
        assert [spool.put(f"r{i}", b"abc") for i in range(3)] == [0, 0, 0]
        assert spool.put("r3", b"abc") == 1
        assert spool.put("r4", b"abc") == 1
        assert [r for r, _ in spool.pending(10)] == ["r2", "r3", "r4"]
        assert spool.depth() == (3, 9)
        assert spool.evicted() == (2, 2)
        # An ack makes room: the next put evicts nothing.
        spool.ack("r3")
        assert spool.put("r5", b"abc") == 0
        assert [r for r, _ in spool.pending(10)] == ["r2", "r4", "r5"]
        assert spool.evicted() == (2, 2)


def test_eviction_by_bytes_evicts_as_many_as_needed(spool_path: Path) -> None:
    with Spool(spool_path, max_bytes=100, max_reports=1000) as spool:
        spool.put("a", b"a" * 30)
        spool.put("b", b"b" * 30)
        spool.put("c", b"c" * 30)
        assert spool.depth() == (3, 90)
        # 90 + 75 = 165 bytes: without a 135, without b 105, without c 75 <= 100.
        assert spool.put("d", b"d" * 75) == 3
        assert spool.pending(10) == [("d", b"d" * 75)]
        assert spool.depth() == (1, 75)
        assert spool.evicted() == (3, 3)
        spool.put("e", b"e" * 10)
        spool.put("f", b"f" * 10)
        assert spool.depth() == (3, 95)
        assert spool.put("g", b"g" * 10) == 1  # 105 -> evict d (75) -> 30
        assert spool.pending(10) == [("e", b"e" * 10), ("f", b"f" * 10), ("g", b"g" * 10)]
        assert spool.evicted() == (4, 4)


def test_a_report_that_exactly_fills_the_spool_is_kept(spool_path: Path) -> None:
    with Spool(spool_path, max_bytes=50, max_reports=10) as spool:
        spool.put("old", b"o" * 20)
        assert spool.put("full", b"f" * 50) == 1
        assert spool.pending(5) == [("full", b"f" * 50)]
        assert spool.depth() == (1, 50)


def test_too_large_report_is_refused_and_nothing_changes(spool_path: Path) -> None:
    with Spool(spool_path, max_bytes=100, max_reports=10) as spool:
        spool.put("a", b"a" * 60)
        spool.put("b", b"b" * 30)
        before = raw_rows(spool_path)
        with pytest.raises(ReportTooLarge, match=r"report big is 101 bytes.*100 bytes"):
            spool.put("big", b"x" * 101)
        assert isinstance(ReportTooLarge("x"), ValueError)
        assert raw_rows(spool_path) == before
        assert spool.depth() == (2, 90)
        assert spool.evicted() == (0, 0)


def test_bad_arguments_get_clear_errors(spool: Spool, spool_path: Path) -> None:
    with pytest.raises(ValueError, match="report id is a non-empty string"):
        spool.put("", b"x")
    with pytest.raises(TypeError, match="bytes, not str"):
        spool.put("a", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="report id"):
        spool.ack("")
    with pytest.raises(ValueError, match="limit of 0 or more"):
        spool.pending(-1)
    with pytest.raises(ValueError, match="report id"):
        spool.put_telling_evictions("", lambda n: b"x")
    with pytest.raises(ValueError, match="max_bytes must be at least 1"):
        Spool(spool_path, max_bytes=0, max_reports=1)
    with pytest.raises(ValueError, match="max_reports must be at least 1"):
        Spool(spool_path, max_bytes=1, max_reports=0)
    assert spool.depth() == (0, 0)


# -- telling the server about evictions ----------------------------------------------
def test_the_next_report_tells_the_evictions_in_the_same_commit(spool_path: Path) -> None:
    with Spool(spool_path, max_bytes=BIG, max_reports=2) as spool:
        for i in range(5):
            spool.put(f"r{i}", b"x")
        assert spool.evicted() == (3, 3)
        told, evicted = spool.put_telling_evictions("r5", lambda n: f"evicted {n}".encode())
        # r5 tells the 3; putting it evicts r3, which the next report will tell.
        assert (told, evicted) == (3, 1)
        assert spool.evicted() == (4, 1)
        assert spool.pending(10) == [("r4", b"x"), ("r5", b"evicted 3")]
        assert spool.put_telling_evictions("r6", lambda n: f"evicted {n}".encode()) == (1, 1)
        assert spool.put_telling_evictions("r7", lambda n: f"evicted {n}".encode()) == (1, 1)
        # The same id again: nothing put, nothing told.
        assert spool.put_telling_evictions("r7", lambda n: b"other") == (0, 0)
        # r7's put evicted r5, which told 3: those 3 never arrive, so they wait again.
        assert spool.evicted() == (6, 1 + 3)
        assert [r for r, _ in spool.pending(10)] == ["r6", "r7"]
        # evicted_total = told by reports still here (r6: 1, r7: 1) + untold (4).
        told_here = sum(int(data.split()[1]) for _, data in spool.pending(10))
        assert told_here + spool.evicted()[1] == spool.evicted()[0]


def test_a_rejected_report_gives_back_what_it_told(spool_path: Path) -> None:
    with Spool(spool_path, max_bytes=BIG, max_reports=1) as spool:
        spool.put("r0", b"x")
        spool.put("r1", b"x")
        assert spool.put_telling_evictions("r2", lambda n: b"tells") == (1, 1)
        assert spool.evicted() == (2, 1)
        spool.reject("r2", "invalid_report", "x")
        assert spool.evicted() == (2, 2)


def test_a_report_that_cannot_be_spooled_tells_nothing(spool_path: Path) -> None:
    with Spool(spool_path, max_bytes=10, max_reports=1) as spool:
        spool.put("r0", b"x")
        spool.put("r1", b"x")
        assert spool.evicted() == (1, 1)
        with pytest.raises(ReportTooLarge):
            spool.put_telling_evictions("big", lambda n: b"y" * 11)

        def broken(n: int) -> bytes:
            raise RuntimeError("serializer failed")

        with pytest.raises(RuntimeError, match="serializer failed"):
            spool.put_telling_evictions("r2", broken)
        # Both rolled back: the count is still waiting for a report to carry it.
        assert spool.evicted() == (1, 1)
        assert [r for r, _ in spool.pending(10)] == ["r1"]


# -- the file ------------------------------------------------------------------------
def test_reopen_after_close_keeps_everything(spool_path: Path) -> None:
    with Spool(spool_path, max_bytes=BIG, max_reports=3) as spool:
        for i in range(5):
            spool.put(f"r{i}", bytes([i]) * 10)
        spool.ack("r3")
        spool.put_telling_evictions("r5", lambda n: b"5" * 10)  # r3's ack made room
        before = (spool.pending(10), spool.depth(), spool.evicted())
    with Spool(spool_path, max_bytes=BIG, max_reports=3) as again:
        assert (again.pending(10), again.depth(), again.evicted()) == before
        assert before == (
            [("r2", b"\x02" * 10), ("r4", b"\x04" * 10), ("r5", b"5" * 10)],
            (3, 30),
            (2, 0),
        )
        # Order survives the reopen: a new report goes after the old ones.
        assert again.put("r6", b"6") == 1  # evicts r2, the oldest
        assert again.put("r4", b"4") == 0  # already there: a no-op
        assert [r for r, _ in again.pending(10)] == ["r4", "r5", "r6"]
        assert again.evicted() == (3, 1)


def test_reject_moves_a_report_aside_with_the_reason(spool: Spool) -> None:
    for i in range(3):
        spool.put(f"r{i}", bytes([i]) * 10)
    assert spool.reject("r1", "signature_invalid", "the signature does not verify") is True
    assert spool.reject("r1", "signature_invalid", "again") is False  # already moved
    assert spool.reject("nope", "malformed_report", "x") is False
    assert [r for r, _ in spool.pending(10)] == ["r0", "r2"]
    assert spool.depth() == (2, 20)
    total, kept = spool.rejected()
    assert total == 1
    assert [(r.report_id, r.reason, r.message) for r in kept] == [
        ("r1", "signature_invalid", "the signature does not verify")
    ]
    # The evidence is kept: the bytes the server refused.
    conn = sqlite3.connect(spool.path)
    try:
        assert conn.execute("SELECT serialized FROM rejected").fetchone() == (b"\x01" * 10,)
    finally:
        conn.close()


def test_only_the_last_rejected_are_kept_but_all_are_counted(spool: Spool) -> None:
    from probelink.agent.spool import REJECTED_KEPT

    for i in range(REJECTED_KEPT + 5):
        spool.put(f"r{i}", b"x")
        spool.reject(f"r{i}", "invalid_report", f"number {i}")
    total, kept = spool.rejected()
    assert total == REJECTED_KEPT + 5
    assert len(kept) == REJECTED_KEPT
    assert spool.depth() == (0, 0)


def test_changes_sees_another_process_commit(spool: Spool, spool_path: Path) -> None:
    before = spool.changes()
    assert spool.changes() == before  # nothing happened
    spool.put("mine", b"x")  # our own commits do not count: we know about them
    assert spool.changes() == before
    with Spool(spool_path, max_bytes=BIG, max_reports=1000) as other:
        other.put("theirs", b"y")
    assert spool.changes() != before


def test_a_version_1_spool_is_migrated_keeping_its_reports(tmp_path: Path) -> None:
    from probelink.agent.spool import _SCHEMA_V1

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1)
    conn.execute("INSERT INTO reports VALUES (1, 'old', x'01', 1, 0, 2)")
    conn.execute("UPDATE counters SET depth_reports = 1, depth_bytes = 1, evicted_total = 4")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Spool(path, max_bytes=BIG, max_reports=10) as spool:
        assert spool.pending(10) == [("old", b"\x01")]
        assert spool.evicted() == (4, 0)
        assert spool.rejected() == (0, [])
        spool.reject("old", "invalid_report", "x")
        assert spool.rejected()[0] == 1


def test_file_is_private_wal_and_versioned(spool: Spool, spool_path: Path) -> None:
    spool.put("a", b"x")
    assert spool_path.stat().st_mode & 0o777 == 0o600
    assert spool_path.parent.stat().st_mode & 0o777 == 0o700
    conn = sqlite3.connect(spool_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        conn.close()


def test_closed_spool_says_so(spool: Spool) -> None:
    spool.close()
    spool.close()
    with pytest.raises(SpoolError, match="is closed"):
        spool.put("a", b"x")
    with pytest.raises(SpoolError, match="is closed"):
        spool.depth()


def test_refuses_a_file_that_is_not_a_spool(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(SpoolError, match="not a spool or is damaged"):
        Spool(garbage, max_bytes=BIG, max_reports=10)

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(SpoolError, match="SQLite file but not a spool"):
        Spool(other, max_bytes=BIG, max_reports=10)

    newer = tmp_path / "newer.db"
    Spool(newer, max_bytes=BIG, max_reports=10).close()
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SpoolError, match="newer agent"):
        Spool(newer, max_bytes=BIG, max_reports=10)


def test_a_directory_in_the_way_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "spool.db").mkdir()
    with pytest.raises(SpoolError, match="cannot create the spool"):
        Spool(tmp_path / "spool.db", max_bytes=BIG, max_reports=10)


# -- kill -9 ---------------------------------------------------------------------------
def check_file(path: Path) -> dict[str, bytes]:
    """Integrity, no duplicate ids, counters equal to the rows; the reports by id."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        ids = [r for (r,) in conn.execute("SELECT report_id FROM reports ORDER BY seq")]
        assert len(ids) == len(set(ids))
        count, total = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM reports"
        ).fetchone()
        assert conn.execute(
            "SELECT depth_reports, depth_bytes FROM counters WHERE id = 1"
        ).fetchone() == (count, total)
        rows = dict(conn.execute("SELECT report_id, serialized FROM reports"))
    finally:
        conn.close()
    for report_id, data in rows.items():
        assert data == payload(report_id), f"{report_id}'s bytes are not the ones put"
    return rows


def run_and_kill(rng: random.Random, *args: str) -> list[str]:
    """Start the child, kill -9 it at a random moment after "ready", return its whole lines."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        # Unbuffered: readline() below must not read past "ready" into a buffer that
        # communicate() (which reads the pipe's fd directly) would never see.
        bufsize=0,
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first == b"ready\n", child.stderr.read() if child.stderr else first
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(child.pid, signal.SIGKILL)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode in (-signal.SIGKILL, 0), err.decode()
    # print(..., flush=True) writes a line at once; only whole lines count as promises.
    return out.decode().splitlines(keepends=True)


def promised(lines: list[str], word: str) -> list[str]:
    return [line.split()[1] for line in lines if line.endswith("\n") and line.startswith(word)]


@pytest.mark.slow
def test_kill_9_during_puts_loses_no_returned_put(spool_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    expected: set[str] = set()
    for cycle in range(25):
        prefix = f"c{cycle:02d}"
        lines = run_and_kill(rng, "put", str(spool_path), prefix)
        returned = promised(lines, "put-returned")
        rows = check_file(spool_path)
        mine = sorted(r for r in rows if r.startswith(prefix + "-"))
        # Every put that returned is there; at most the one in progress more (committed
        # just before the kill, not yet printed) — and only that one.
        assert set(returned) <= set(mine), f"seed {seed} cycle {cycle}: lost a put"
        extra = set(mine) - set(returned)
        assert extra <= {f"{prefix}-{len(returned):06d}"}, f"seed {seed} cycle {cycle}"
        # Nothing of an earlier cycle lost either.
        assert expected <= set(rows), f"seed {seed} cycle {cycle}: lost an earlier put"
        expected |= set(mine)
    assert len(expected) > 25, "the children were killed before they put anything"


@pytest.mark.slow
def test_kill_9_during_acks_drops_only_acked_reports(spool_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    next_id = 0
    for cycle in range(20):
        with Spool(spool_path, max_bytes=BIG, max_reports=1_000_000) as spool:
            # Top up so the child never runs dry before the kill.
            while spool.depth()[0] < 1500:
                report_id = f"r-{next_id:06d}"
                spool.put(report_id, payload(report_id))
                next_id += 1
            order = [r for r, _ in spool.pending(1_000_000)]
        before = check_file(spool_path)
        assert set(order) == set(before)
        lines = run_and_kill(rng, "ack", str(spool_path))
        acked = promised(lines, "acked")
        after = check_file(spool_path)
        where = f"seed {seed} cycle {cycle}"
        assert "done\n" not in lines, f"{where}: the child acked everything before the kill"
        assert not set(acked) & set(after), f"{where}: an acked report is back"
        # The child acks oldest first: what is gone is exactly the acked prefix, plus at
        # most the one ack in progress at the kill (committed, not yet printed).
        assert acked == order[: len(acked)], where
        gone = set(before) - set(after)
        assert gone - set(acked) <= set(order[len(acked) : len(acked) + 1]), where
        assert set(after) == set(before) - gone, where
