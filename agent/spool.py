"""The spool: the agent's durable outbox, one SQLite file that loses no report.

    spool = Spool(state_dir / "spool.db", max_bytes=64 << 20, max_reports=10_000)
    evicted = spool.put(report_id, serialized)     # committed before it returns
    for report_id, data in spool.pending(64):      # oldest first: send a window
        ...
    spool.ack(report_id)                           # only after the server's ack
    spool.put_telling_evictions(report_id, lambda n: serialize_with(n))   # the next report
    spool.reject(report_id, "signature_invalid", "…")   # the server will never take it

A report is written here before it is sent and deleted only when the server acks its
id, so an agent killed at any moment resends, after restart, what was not acked; the
server's idempotency on the report id makes the resend harmless. Every call that
changes the file is one `BEGIN IMMEDIATE … COMMIT` with `synchronous=FULL` in WAL mode:
when `put` or `ack` returns, the change survives a crash or a power cut.

The spool is bounded by count and bytes. When a `put` takes it over a bound it evicts
the oldest reports (never the one just put) in the same transaction and counts them
twice: `evicted_total` for ever, and `evicted_unreported` until a report has told the
server. `put_telling_evictions` puts the next report and zeroes that count in ONE
transaction, the report serialized with the count inside it: either both happen or
neither, so a crash between them can neither lose the count nor tell it twice. The
report keeps the number it tells (`told`): if it is itself evicted or rejected, that
number goes back to `evicted_unreported` for the next report, since it will never
reach the server now. Hence, at any moment:

    evicted_total = told by reports the server acked
                  + told by reports still in the spool + evicted_unreported

A report the server refuses for good (it breaks the contract, its signature fails) is
moved by `reject` to the `rejected` table: resending it forever would only repeat the
refusal, and deleting it would lose the evidence. The last REJECTED_KEPT stay there with
the server's reason for a person to look at; all are counted.

Schema (version in `PRAGMA user_version`; version 1 files are migrated in place):

    reports   seq (insertion order), report_id (unique), serialized, bytes,
              created_at_us, attempts (version 1, unused since), told (version 2)
    counters  one row: depth_reports, depth_bytes, evicted_total, evicted_unreported,
              rejected_total (version 2)
    rejected  report_id, serialized, reason, message, rejected_at_us (version 2)

`seq` orders the reports rather than `created_at_us`, because the wall clock can step
back (NTP, a dead RTC battery) and the order must not. The depth is kept in the
counters row, updated in the same transaction as the rows, so a `put` never sums the
whole table and another process (`probelink-agent status`) reads the same numbers.

One connection, guarded by a lock: the daemon calls the spool from worker threads of
its asyncio loop, and SQLite connections must not be shared mid-transaction. Opening,
migrating and the transactions are `probelink.agent.state_db.StateDB`'s, shared with the
advisories store.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from probelink.agent.state_db import StateDB

# Refused reports kept for a person to inspect; older ones are only counted.
REJECTED_KEPT = 100

_SCHEMA_V1 = """
CREATE TABLE reports (
    seq           INTEGER NOT NULL UNIQUE,
    report_id     TEXT PRIMARY KEY,
    serialized    BLOB NOT NULL,
    bytes         INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE counters (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    depth_reports      INTEGER NOT NULL,
    depth_bytes        INTEGER NOT NULL,
    evicted_total      INTEGER NOT NULL,
    evicted_unreported INTEGER NOT NULL
);
INSERT INTO counters VALUES (1, 0, 0, 0, 0);
"""

_SCHEMA_V2 = """
ALTER TABLE reports ADD COLUMN told INTEGER NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN rejected_total INTEGER NOT NULL DEFAULT 0;
CREATE TABLE rejected (
    report_id      TEXT PRIMARY KEY,
    serialized     BLOB NOT NULL,
    reason         TEXT NOT NULL,
    message        TEXT NOT NULL,
    rejected_at_us INTEGER NOT NULL
);
"""
# _SCHEMAS[i] takes a file from version i to i + 1 (see StateDB._migrate).
_SCHEMAS = (_SCHEMA_V1, _SCHEMA_V2)
SCHEMA_VERSION = len(_SCHEMAS)

# Below SQLite's smallest compiled-in limit on `?` parameters (999).
_IN_CHUNK = 500


class SpoolError(Exception):
    """The spool file cannot be opened, read or written; the message names the file."""


class ReportTooLarge(ValueError):
    """One report is bigger than the whole spool may hold; nothing was written."""


@dataclass(frozen=True)
class RejectedReport:
    report_id: str
    # The server's RefusalReason, lower case without its prefix ("signature_invalid").
    reason: str
    message: str
    rejected_at_us: int


class Spool(StateDB):
    """The durable outbox in one SQLite file. Safe to call from several threads."""

    _error = SpoolError
    _named = "the spool {path}"
    _what = "a spool"
    _schemas = _SCHEMAS
    _newer_hint = ", or move the file away to start an empty spool"
    _foreign_hint = (
        " (it has tables and no spool schema version); point the agent at another state dir"
    )
    _damaged_hint = " to start an empty spool (the reports in it would be lost)"

    def __init__(
        self, path: Path, max_bytes: int, max_reports: int, busy_timeout_s: float = 5.0
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"the spool's max_bytes must be at least 1, not {max_bytes}")
        if max_reports < 1:
            raise ValueError(f"the spool's max_reports must be at least 1, not {max_reports}")
        self.max_bytes = max_bytes
        self.max_reports = max_reports
        super().__init__(path, busy_timeout_s)

    # -- writing ----------------------------------------------------------------------
    def put(self, report_id: str, serialized: bytes) -> int:
        """Keep a report durably; return how many older reports were evicted for it.

        The same id again is a no-op (returns 0): a report is spooled once. A report
        bigger than `max_bytes` raises ReportTooLarge and changes nothing.
        """
        _check_id(report_id)
        if not isinstance(serialized, bytes | bytearray | memoryview):
            raise TypeError(f"a spooled report is bytes, not {type(serialized).__name__}")
        data = bytes(serialized)
        return self._write(lambda conn: self._put(conn, report_id, data))

    def put_telling_evictions(
        self, report_id: str, serialize: Callable[[int], bytes]
    ) -> tuple[int, int]:
        """Put the report `serialize(n)` makes, n being the evictions not yet told.

        Returns (n told, evicted for this put). One transaction: the count is zeroed
        only with the report that carries it. `serialize` runs under the spool's lock,
        so it should only serialize.
        """
        _check_id(report_id)

        def put(conn: sqlite3.Connection) -> tuple[int, int]:
            (told,) = conn.execute(
                "SELECT evicted_unreported FROM counters WHERE id = 1"
            ).fetchone()
            data = serialize(int(told))
            if conn.execute("SELECT 1 FROM reports WHERE report_id = ?", (report_id,)).fetchone():
                return 0, 0  # already spooled, and it told what it told then
            conn.execute(
                "UPDATE counters SET evicted_unreported = evicted_unreported - ? WHERE id = 1",
                (told,),
            )
            return int(told), self._put(conn, report_id, data, int(told))

        return self._write(put)

    def _put(self, conn: sqlite3.Connection, report_id: str, data: bytes, told: int = 0) -> int:
        size = len(data)
        if size > self.max_bytes:
            raise ReportTooLarge(
                f"report {report_id} is {size} bytes, more than the whole spool may hold "
                f"({self.max_bytes} bytes); raise the spool's byte limit or send smaller "
                "reports. Nothing was spooled."
            )
        if conn.execute("SELECT 1 FROM reports WHERE report_id = ?", (report_id,)).fetchone():
            return 0
        (seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM reports").fetchone()
        conn.execute(
            "INSERT INTO reports (seq, report_id, serialized, bytes, created_at_us, told) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (seq, report_id, data, size, time.time_ns() // 1000, told),
        )
        count, total = conn.execute(
            "UPDATE counters SET depth_reports = depth_reports + 1, "
            "depth_bytes = depth_bytes + ? WHERE id = 1 "
            "RETURNING depth_reports, depth_bytes",
            (size,),
        ).fetchone()
        return self._evict(conn, count, total, below_seq=seq)

    def _evict(self, conn: sqlite3.Connection, count: int, total: int, below_seq: int) -> int:
        """Drop the oldest reports until both bounds hold again; count them."""
        if count <= self.max_reports and total <= self.max_bytes:
            return 0
        evicted = evicted_bytes = untold = 0
        cutoff = None
        rows = conn.execute(
            "SELECT seq, bytes, told FROM reports WHERE seq < ? ORDER BY seq", (below_seq,)
        )
        for seq, size, told in rows:
            if count - evicted <= self.max_reports and total - evicted_bytes <= self.max_bytes:
                break
            cutoff = seq
            evicted += 1
            evicted_bytes += size
            # What it told will never arrive now: the next report tells it again.
            untold += told
        rows.close()
        # put() refused anything over max_bytes, so evicting every older report always
        # makes room; the new report itself is never evicted.
        assert cutoff is not None
        conn.execute("DELETE FROM reports WHERE seq <= ?", (cutoff,))
        conn.execute(
            "UPDATE counters SET depth_reports = depth_reports - ?, "
            "depth_bytes = depth_bytes - ?, evicted_total = evicted_total + ?, "
            "evicted_unreported = evicted_unreported + ? WHERE id = 1",
            (evicted, evicted_bytes, evicted, evicted + untold),
        )
        return evicted

    def ack(self, report_id: str) -> bool:
        """Delete a report the server acked. False when it is not here (acked before)."""
        _check_id(report_id)
        return self.ack_many([report_id]) == 1

    def ack_many(self, report_ids: Iterable[str]) -> int:
        """Delete several acked reports in one commit; return how many were here.

        For a burst of acks from the stream: one fsync instead of one per report.
        """
        ids = list(dict.fromkeys(report_ids))
        for report_id in ids:
            _check_id(report_id)
        if not ids:
            return 0

        def ack(conn: sqlite3.Connection) -> int:
            gone = gone_bytes = 0
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                for (size,) in conn.execute(
                    f"DELETE FROM reports WHERE report_id IN ({marks}) RETURNING bytes", chunk
                ).fetchall():
                    gone += 1
                    gone_bytes += size
            if gone:
                conn.execute(
                    "UPDATE counters SET depth_reports = depth_reports - ?, "
                    "depth_bytes = depth_bytes - ? WHERE id = 1",
                    (gone, gone_bytes),
                )
            return gone

        return self._write(ack)

    def reject(self, report_id: str, reason: str, message: str) -> bool:
        """Move a report the server refused for good out of the queue; False if not here.

        It is kept (the last REJECTED_KEPT) with the server's reason, and counted.
        """
        _check_id(report_id)

        def reject(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "DELETE FROM reports WHERE report_id = ? RETURNING serialized, bytes, told",
                (report_id,),
            ).fetchone()
            if row is None:
                return False
            serialized, size, told = row
            conn.execute(
                "INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?, ?)",
                (report_id, serialized, reason, message, time.time_ns() // 1000),
            )
            conn.execute(
                "DELETE FROM rejected WHERE report_id NOT IN "
                "(SELECT report_id FROM rejected ORDER BY rejected_at_us DESC LIMIT ?)",
                (REJECTED_KEPT,),
            )
            conn.execute(
                "UPDATE counters SET depth_reports = depth_reports - 1, "
                "depth_bytes = depth_bytes - ?, rejected_total = rejected_total + 1, "
                "evicted_unreported = evicted_unreported + ? WHERE id = 1",
                (size, told),
            )
            return True

        return self._write(reject)

    def rejected(self) -> tuple[int, list[RejectedReport]]:
        """(ever rejected, the kept ones newest first)."""

        def read(conn: sqlite3.Connection) -> tuple[int, list[RejectedReport]]:
            (total,) = conn.execute("SELECT rejected_total FROM counters WHERE id = 1").fetchone()
            rows = conn.execute(
                "SELECT report_id, reason, message, rejected_at_us FROM rejected "
                "ORDER BY rejected_at_us DESC"
            ).fetchall()
            return int(total), [RejectedReport(*row) for row in rows]

        return self._read(read)

    def changes(self) -> int:
        """A number that changes whenever another connection commits to the file.

        The daemon polls it to notice reports another process spooled, at the cost of
        one tiny query (SQLite's `PRAGMA data_version`).
        """
        return int(self._read(lambda conn: conn.execute("PRAGMA data_version").fetchone()[0]))

    # -- reading ----------------------------------------------------------------------
    def pending(self, limit: int, skip: Collection[str] = ()) -> list[tuple[str, bytes]]:
        """Up to `limit` (report_id, serialized) pairs, oldest first.

        `skip` leaves out ids already in flight, so the daemon can top up its send
        window without sending a report twice at once.
        """
        if limit < 0:
            raise ValueError(f"pending() needs a limit of 0 or more, not {limit}")
        if limit == 0:
            return []

        def read(conn: sqlite3.Connection) -> list[tuple[str, bytes]]:
            out: list[tuple[str, bytes]] = []
            # Only ids first: skipped reports' bytes are never read.
            rows = conn.execute(
                "SELECT report_id FROM reports ORDER BY seq LIMIT ?", (limit + len(skip),)
            ).fetchall()
            for (report_id,) in rows:
                if report_id in skip:
                    continue
                (data,) = conn.execute(
                    "SELECT serialized FROM reports WHERE report_id = ?", (report_id,)
                ).fetchone()
                out.append((report_id, bytes(data)))
                if len(out) == limit:
                    break
            return out

        return self._read(read)

    def depth(self) -> tuple[int, int]:
        """(reports, bytes) waiting for an ack."""
        count, total = self._read(
            lambda conn: conn.execute(
                "SELECT depth_reports, depth_bytes FROM counters WHERE id = 1"
            ).fetchone()
        )
        return int(count), int(total)

    def evicted(self) -> tuple[int, int]:
        """(ever evicted, evicted and not yet handed to the daemon to report)."""
        total, unreported = self._read(
            lambda conn: conn.execute(
                "SELECT evicted_total, evicted_unreported FROM counters WHERE id = 1"
            ).fetchone()
        )
        return int(total), int(unreported)


def _check_id(report_id: str) -> None:
    if not isinstance(report_id, str) or not report_id:
        raise ValueError(f"a report id is a non-empty string, not {report_id!r}")
