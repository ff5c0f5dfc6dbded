"""A private SQLite file in the agent's state dir, used by one process's threads
through one locked connection.

The spool and the advisories store are both this; they subclass `StateDB` and say only
what differs (their error class, their schema, the words of their messages):

    class Notes(StateDB):
        _error = NotesError                   # every failure is raised as this
        _named = "the notes {path}"           # how messages name the file
        _what = "the agent's notes"           # "{path} is not <_what> ..."
        _schemas = ("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",)

        def add(self, text: str) -> None:
            self._write(lambda conn: conn.execute("INSERT INTO notes (text) VALUES (?)", (text,)))

The file is made 0600 (its folder 0700) before SQLite touches it, since SQLite gives its
-wal and -shm files the mode of the database file. It runs in WAL mode, so another
process (the CLI) reads while the daemon holds it open, with `synchronous=FULL`, so a
change that returned survives a power cut, and a busy timeout, so a writer waits for the
other process's commit rather than failing. Every change is one `BEGIN IMMEDIATE …
COMMIT`; an SQLite error becomes the subclass's error with a message that names the file
and says what to do.

`_schemas[i]` takes the file from version i to i + 1 (`PRAGMA user_version`); an older
file is migrated in place, in one transaction with its new version number.

Imports only modules the daemon has loaded anyway: it must stay light.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Self, TypeVar

T = TypeVar("T")


class StateDB:
    """One SQLite file behind one connection and a lock. Safe to call from several threads."""

    # The exception every failure is raised as; its message names the file.
    _error: ClassVar[type[Exception]]
    # How messages name the file: "the spool {path}" or "{path}".
    _named: ClassVar[str] = "{path}"
    # What the file should be, for "{path} is not <this> or is damaged".
    _what: ClassVar[str]
    # The schema scripts, one per version; the newest version is how many there are.
    _schemas: ClassVar[tuple[str, ...]]
    # After "upgrade the agent" when the file is newer than this agent knows.
    _newer_hint: ClassVar[str] = ""
    # After "{path} is an SQLite file but not <_what>": why, and what to do.
    _foreign_hint: ClassVar[str] = ""
    # After "{path} is not <_what> or is damaged (…); move it away".
    _damaged_hint: ClassVar[str] = ""
    # Say "cannot write … is it another user's state dir?" for READONLY/CANTOPEN/PERM.
    _explain_unwritable: ClassVar[bool] = False
    # PRAGMA cache_size for a small file (negative: KiB); None keeps SQLite's default.
    _cache_size: ClassVar[int | None] = None

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self.path = Path(path).absolute()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = self._open(busy_timeout_s)

    def close(self) -> None:
        """Close the file; later calls raise the store's error. Closing twice is fine."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _name(self) -> str:
        return self._named.format(path=self.path)

    def _open(self, busy_timeout_s: float) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Create the file 0600 first: what it holds describes the customer's device,
            # and SQLite gives its -wal and -shm files the mode of the database file.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as err:
            raise self._error(f"cannot create {self._name}: {err.strerror or err}") from err
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout_s,
                # None: no implicit transactions; every change says BEGIN IMMEDIATE itself.
                isolation_level=None,
                # Used by whichever thread holds self._lock.
                check_same_thread=False,
            )
        except sqlite3.Error as err:
            raise self._error(f"cannot open {self._name}: {err}") from err
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise self._error(
                    f"{self._name} cannot use WAL mode (it stays in {mode!r} mode; "
                    "is the state dir on a network file system?)"
                )
            # FULL: a change that returned must survive a power cut, not only a crash.
            conn.execute("PRAGMA synchronous = FULL")
            if self._cache_size is not None:
                conn.execute(f"PRAGMA cache_size = {int(self._cache_size)}")
            self._migrate(conn)
        except BaseException as err:
            conn.close()
            if isinstance(err, sqlite3.Error):
                raise self._error(self._describe(err)) from err
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        latest = len(self._schemas)
        # Up to date (every open but the first): no write lock, so a CLI that opens the
        # file each time it is asked never makes the daemon wait.
        if conn.execute("PRAGMA user_version").fetchone()[0] == latest:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > latest:
                raise self._error(
                    f"{self._name} has schema version {version}, written by a newer agent "
                    f"(this one knows up to {latest}); upgrade the agent{self._newer_hint}"
                )
            if version == 0 and conn.execute("SELECT 1 FROM sqlite_master").fetchone():
                raise self._error(
                    f"{self.path} is an SQLite file but not {self._what}{self._foreign_hint}"
                )
            # executescript() would COMMIT first; run the statements one by one so the
            # schema and its version land in this one transaction (a kill mid-way
            # leaves the file as it was, and the next start migrates again).
            for script in self._schemas[version:]:
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if version < latest:
                conn.execute(f"PRAGMA user_version = {latest}")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` in one BEGIN IMMEDIATE … COMMIT; rolled back if it raises."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    # The transaction is gone either way; the first error is the one to tell.
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise self._error(self._describe(err) + "; nothing was changed") from err
            return result

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` under the lock, outside any transaction (WAL: one consistent read)."""
        with self._lock:
            conn = self._connection()
            try:
                return fn(conn)
            except sqlite3.Error as err:
                raise self._error(self._describe(err)) from err

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise self._error(f"{self._name} is closed")
        return self._conn

    def _describe(self, err: sqlite3.Error) -> str:
        """An SQLite error in words a person can act on."""
        name = getattr(err, "sqlite_errorname", "")
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return f"{self._name} is locked by another process ({err})"
        if name.startswith("SQLITE_FULL"):
            return f"the disk holding {self._name} is full"
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return (
                f"{self.path} is not {self._what} or is damaged ({err}); "
                f"move it away{self._damaged_hint}"
            )
        if self._explain_unwritable and name.startswith(
            ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")
        ):
            return f"cannot write {self._name} ({err}); is it another user's state dir?"
        return f"{self._name}: {err}"
