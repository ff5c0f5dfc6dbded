"""SQLite that is locked, gone or not a database: a clear error, and nothing half-written."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from probelink.server.errors import StoreError, StoreUnavailable
from probelink.server.store import StoreOutcome, StoreResult
from probelink.server.store.sqlite import SqliteStore
from tests.server.store.factories import incoming


def test_a_locked_database_stores_nothing_then_the_same_batch_stores(tmp_path: Path) -> None:
    path = tmp_path / "probelink.db"
    store = SqliteStore(path, busy_timeout_s=0.1)
    store.migrate()
    batch = [incoming(f"r{i}") for i in range(20)]
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable) as caught:
            store.store_reports(batch, received_at_us=1)
        # WAL: readers are not blocked by the writer that holds the lock.
        assert store.count_reports() == 0
        other.execute("ROLLBACK")
    assert str(caught.value) == (
        f"the SQLite database {path} is locked by another connection (waited 0.1 s); "
        "nothing was written, try again"
    )
    assert (
        store.store_reports(batch, received_at_us=2) == [StoreResult(StoreOutcome.STORED, 2)] * 20
    )
    assert store.count_reports() == 20
    store.close()


def test_a_database_file_deleted_while_running_is_not_written_to(tmp_path: Path) -> None:
    path = tmp_path / "probelink.db"
    store = SqliteStore(path)
    store.migrate()
    store.store_reports([incoming("r1")], received_at_us=1)
    for leftover in tmp_path.glob("probelink.db*"):
        leftover.unlink()
    with pytest.raises(StoreUnavailable, match="was deleted or replaced while the server was"):
        store.store_reports([incoming("r2")], received_at_us=2)
    store.close()


def test_a_database_file_replaced_by_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "probelink.db"
    store = SqliteStore(path)
    store.migrate()
    for leftover in tmp_path.glob("probelink.db*"):
        leftover.unlink()
    path.mkdir()
    with pytest.raises(StoreUnavailable, match="deleted or replaced"):
        store.store_reports([incoming("r1")], received_at_us=1)
    store.close()
    # And a server started on it says what is wrong.
    with pytest.raises(StoreUnavailable) as caught:
        SqliteStore(path)
    assert str(caught.value) == (
        f"cannot open the SQLite database {path} (that path is a directory, not a database "
        "file); nothing was written"
    )


def test_a_directory_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the data directory should be\n")
    with pytest.raises(StoreError, match=r"cannot create the directory .*/data for the SQLite"):
        SqliteStore(tmp_path / "data" / "probelink.db")


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "probelink.db"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(StoreError, match="is not a SQLite database or is corrupt") as caught:
        SqliteStore(path)
    assert not isinstance(caught.value, StoreUnavailable)


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "probelink.db")
    store.migrate()
    store.close()
    with pytest.raises(StoreUnavailable, match="is closed"):
        store.count_reports()


def test_each_thread_has_its_own_connection(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "probelink.db")
    store.migrate()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            store.store_reports([incoming(f"t{n}-{i}") for i in range(50)], received_at_us=n)
        except BaseException as exc:  # collected: an assert in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_reports() == 200
    store.close()
