"""The embedded store: one SQLite file in WAL mode, durable at every commit.

    store = SqliteStore(Path("probelink-data/probelink.db"))
    store.migrate()
    store.store_reports(batch, received_at_us=now)   # one fsync'd transaction

Each thread gets its own connection (SQLite connections must not be shared mid-
transaction). Writes take the write lock up front (`BEGIN IMMEDIATE`), so a writer waits
at most `busy_timeout_s` for another process and then fails cleanly instead of dead-
locking half-way. `synchronous=FULL` because an ack promises the report survives a power
cut. Locked, unopenable or failing files raise StoreUnavailable naming the file; nothing
of that call was written.

One more failure mode is SQLite's own: if the file is deleted or replaced while the
server runs, open connections keep writing to the old, now invisible, inode. Every write
transaction checks the path still names the file it opened, so that cannot silently eat
reports.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from probelink.server.errors import StoreError, StoreUnavailable
from probelink.server.store.base import IncomingReport, StoreResult
from probelink.server.store.sql import (
    EXISTING_COLUMNS,
    INSERT_REPORT,
    Row,
    SqlStore,
    Tx,
    classify,
    existing_of,
    report_values,
)

T = TypeVar("T")

# Below SQLite's smallest compiled-in limit on `?` parameters (999).
_IN_CHUNK = 500

# Primary result codes (https://sqlite.org/rescode.html) that mean "not now", not "never".
_BUSY, _LOCKED, _READONLY, _IOERR, _FULL, _CANTOPEN, _PERM = 5, 6, 8, 10, 13, 14, 3
_CORRUPT, _NOTADB = 11, 26


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            self._conn.executemany(sql, rows)


class SqliteStore(SqlStore):
    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path).absolute()
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory {self.path.parent} for the SQLite database: "
                f"{exc.strerror or exc}"
            ) from exc
        # Open now so a bad path fails at start-up, and remember which file it was.
        self._conn()
        self._identity = self._file_identity()

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    # -- the seam SqlStore runs on -----------------------------------------------------
    def _run(self, fn: Callable[[Tx], T], *, write: bool) -> T:
        try:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                if write:
                    self._check_same_file()
                result = fn(_SqliteTx(conn))
                conn.execute("COMMIT")
            except BaseException:
                # The rollback of a failed COMMIT can fail too; the transaction is gone
                # either way, and the first error is the one to report.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            return result
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def _has_migrations_table(self, tx: Tx) -> bool:
        return bool(
            tx.query(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            )
        )

    def _store_batch(
        self, tx: Tx, batch: Sequence[IncomingReport], received_at_us: int
    ) -> list[StoreResult]:
        ids = list(dict.fromkeys(item.report_id for item in batch))
        rows: list[Row] = []
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows += tx.query(
                f"SELECT {EXISTING_COLUMNS} FROM reports WHERE report_id IN ({marks})", chunk
            )
        results, new = classify(batch, existing_of(rows), received_at_us)
        tx.run_many(INSERT_REPORT, [report_values(item, received_at_us) for item in new])
        return results

    # -- connections ------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if self._closed:
            raise StoreUnavailable(f"the store {self.describe()} is closed (shutting down)")
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_s,
                # None: no implicit transactions; we say BEGIN and COMMIT ourselves.
                isolation_level=None,
                # Closed from whichever thread calls close(); used by one thread only.
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"the SQLite database {self.path} cannot use WAL mode (it stays in "
                    f"{mode!r} mode; is it on a network file system?)"
                )
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._translate(exc) from exc
            raise
        with self._lock:
            self._all.append(conn)
        return conn

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _check_same_file(self) -> None:
        if self._file_identity() != self._identity:
            raise StoreUnavailable(
                f"the SQLite database {self.path} was deleted or replaced while the server "
                "was running; nothing was stored. Restart the server to open the file that "
                "is there now."
            )

    # -- errors -----------------------------------------------------------------------
    def _translate(self, exc: sqlite3.Error) -> StoreError:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        where = f"the SQLite database {self.path}"
        if code in (_BUSY, _LOCKED):
            return StoreUnavailable(
                f"{where} is locked by another connection (waited {self.busy_timeout_s:g} s); "
                "nothing was written, try again"
            )
        if code == _CANTOPEN:
            return StoreUnavailable(f"cannot open {where}{self._open_hint()}; nothing was written")
        if code == _IOERR:
            return StoreUnavailable(f"disk I/O error on {where} ({exc}); nothing was written")
        if code == _FULL:
            return StoreUnavailable(f"the disk holding {where} is full; nothing was written")
        if code in (_READONLY, _PERM):
            return StoreUnavailable(f"{where} is read-only ({exc}); nothing was written")
        if code in (_CORRUPT, _NOTADB):
            return StoreError(f"{where} is not a SQLite database or is corrupt ({exc})")
        if "no such table" in str(exc):
            return StoreError(f"{where} has no probelink schema ({exc}); run migrate first")
        return StoreError(f"{where}: {exc}")

    def _open_hint(self) -> str:
        if self.path.is_dir():
            return " (that path is a directory, not a database file)"
        if not self.path.parent.is_dir():
            return f" (the directory {self.path.parent} is gone)"
        return " (check that the file and its directory exist and are writable)"
