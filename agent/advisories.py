"""Advisories the server sent this device, kept in `advisories.db` until a person acks them.

    store = AdvisoryStore.open(state_dir)              # the daemon: made (0600) if missing
    kept = store.keep([advisory])                      # committed before it returns
    send(AdvisoriesReceived(advisory_ids=kept.stored)) # "I have these: do not send them again"
    for a in store.list():                             # not yet acknowledged, newest raised first
        print(a.severity, a.text_in("zh-CN"))
    store.acknowledge(a.advisory_id, datetime.now(UTC))   # it stops showing
    store.close()

    AdvisoryStore.open_existing(state_dir)             # the CLI: None when none was ever kept

An advisory is something the server tells a device before the customer asks (a battery
that will reach its limit in a few months). The server sends each one down the device's
Connect stream until the agent confirms it, then never again; so the agent confirms only
what it has committed here, and a confirmed advisory lives only here.

`keep` is idempotent by advisory id: the server resends an advisory whose confirmation
was lost with the stream, and the resend neither duplicates it nor clears a person's
acknowledgement; the first copy kept stays as it was. An advisory without an id, without
English text or larger than MAX_ADVISORY_BYTES is refused (`KeepResult.refused`): not kept,
and not confirmed, so a fixed server can send it again.

The file holds at most `max_kept` advisories (MAX_KEPT): past that, `keep` evicts the
oldest acknowledged ones first (a person has read them), then the oldest, by the order
they arrived, never by the server's clock.

Schema (version 1 in `PRAGMA user_version`):

    advisories  seq (arrival order), advisory_id (unique), device_id, kind, code,
                severity, text_json ({"en": …, "zh-CN": …}), action, report_id,
                raised_at_us (NULL: the server gave no time), received_at_us,
                acknowledged_at_us (NULL: not acknowledged)

The file is opened as the spool opens its own (both are `probelink.agent.state_db.StateDB`):
created 0600 before SQLite touches it (its -wal and -shm files take that mode), WAL so
that the CLI reads while the daemon holds it open, `synchronous=FULL` so a confirmed
advisory survives a power cut, a busy timeout so the CLI's acknowledgement waits for the
daemon's commit. One connection, guarded by a lock: the daemon calls `keep` from a worker
thread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probelink.agent.state_db import StateDB
from probelink.v1 import advisory_pb2

ADVISORIES_FILE = "advisories.db"
SCHEMA_VERSION = 1
MAX_KEPT = 500
# A few paragraphs in two languages is a few KiB; anything near this is not an advisory.
MAX_ADVISORY_BYTES = 64 << 10
MAX_ID_CHARS = 200
# Every advisory has English text; other languages fall back to it.
LANGUAGES = ("en", "zh-CN")
# google.protobuf.Timestamp's range (0001-01-01 to 9999-12-31), which datetime can hold.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799

_SCHEMA = """
CREATE TABLE advisories (
    seq                INTEGER NOT NULL UNIQUE,
    advisory_id        TEXT PRIMARY KEY,
    device_id          TEXT NOT NULL,
    kind               TEXT NOT NULL,
    code               TEXT NOT NULL,
    severity           TEXT NOT NULL,
    text_json          TEXT NOT NULL,
    action             TEXT NOT NULL,
    report_id          TEXT NOT NULL,
    raised_at_us       INTEGER,
    received_at_us     INTEGER NOT NULL,
    acknowledged_at_us INTEGER
)
"""
_COLUMNS = (
    "advisory_id, device_id, kind, code, severity, text_json, action, report_id, "
    "raised_at_us, received_at_us, acknowledged_at_us"
)


class AdvisoryError(Exception):
    """The advisories file cannot be opened, read or written; the message names it."""


class UnknownAdvisory(LookupError):
    """No advisory with this id is kept; the message says how to list the kept ones."""

    def __init__(self, advisory_id: str, path: Path) -> None:
        super().__init__(
            f"no advisory {advisory_id!r} is kept in {path}; "
            "`probelink-agent advisories --all` lists the ones this device has"
        )
        self.advisory_id = advisory_id


@dataclass(frozen=True)
class KeptAdvisory:
    """One advisory as kept: the proto's fields, and when it arrived and was acknowledged."""

    advisory_id: str
    device_id: str
    # "trend" or "finding"
    kind: str
    # the trend's metric and subject ("battery.health_pct:BAT0") or the rule id
    code: str
    # info, advisory, minor, major or critical
    severity: str
    # by language: always "en", usually "zh-CN"
    text: dict[str, str]
    # an action id of the server's catalog ("battery_replacement"), or ""
    action: str
    report_id: str
    # None when the server gave no time
    raised_at: datetime | None
    received_at: datetime
    acknowledged_at: datetime | None = None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def text_in(self, lang: str) -> str:
        """The text in `lang`, else the English one (always there)."""
        return self.text.get(lang) or self.text["en"]

    def as_json(self) -> dict[str, Any]:
        """Every field, times as RFC 3339 UTC ("2026-11-25T15:24:09Z") or null."""
        return {
            "advisory_id": self.advisory_id,
            "device_id": self.device_id,
            "kind": self.kind,
            "code": self.code,
            "severity": self.severity,
            "text": dict(self.text),
            "action": self.action,
            "report_id": self.report_id,
            "raised_at": rfc3339(self.raised_at),
            "received_at": rfc3339(self.received_at),
            "acknowledged_at": rfc3339(self.acknowledged_at),
            "acknowledged": self.acknowledged,
        }


@dataclass(frozen=True)
class Refused:
    """An advisory `keep` would not store, and why (for the caller's log)."""

    advisory_id: str
    why: str


@dataclass(frozen=True)
class KeepResult:
    # Ids kept by this call, new or already here: what to confirm to the server.
    stored: list[str] = field(default_factory=list)
    # Kept for the first time (the daemon logs these).
    new: list[KeptAdvisory] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    # Ids dropped to stay within max_kept.
    evicted: list[str] = field(default_factory=list)


def problem(advisory: advisory_pb2.Advisory) -> str | None:
    """Why this advisory cannot be kept, or None when it can."""
    if not advisory.advisory_id.strip():
        return "it has no advisory_id"
    if len(advisory.advisory_id) > MAX_ID_CHARS:
        return f"its advisory_id is {len(advisory.advisory_id)} characters (at most {MAX_ID_CHARS})"
    if not advisory.text.get("en", "").strip():
        return "it has no English text (text['en'])"
    if advisory.HasField("raised_at") and not (
        _MIN_SECONDS <= advisory.raised_at.seconds <= _MAX_SECONDS
        and 0 <= advisory.raised_at.nanos < 1_000_000_000
    ):
        return "its raised_at is not a time between the years 1 and 9999"
    size = advisory.ByteSize()
    if size > MAX_ADVISORY_BYTES:
        return f"it is {size} bytes (at most {MAX_ADVISORY_BYTES})"
    return None


class AdvisoryStore(StateDB):
    """The kept advisories in one SQLite file. Safe to call from several threads."""

    _error = AdvisoryError
    _what = "the agent's advisories"
    _schemas = (_SCHEMA,)
    _foreign_hint = "; move it away (the server's advisories already confirmed would be lost)"
    _explain_unwritable = True
    # A few hundred small rows: a 64 KiB page cache, not SQLite's 2 MiB default, out of
    # the daemon's memory budget.
    _cache_size = -64

    def __init__(self, path: Path, max_kept: int = MAX_KEPT, busy_timeout_s: float = 5.0) -> None:
        if max_kept < 1:
            raise ValueError(f"max_kept must be at least 1, not {max_kept}")
        self.max_kept = max_kept
        super().__init__(path, busy_timeout_s)

    @classmethod
    def open(cls, state_dir: Path, max_kept: int = MAX_KEPT) -> AdvisoryStore:
        """Open (or make, 0600) `advisories.db` in `state_dir`."""
        return cls(state_dir / ADVISORIES_FILE, max_kept)

    @classmethod
    def open_existing(cls, state_dir: Path, max_kept: int = MAX_KEPT) -> AdvisoryStore | None:
        """Open `advisories.db` if it is there; None (and nothing made) when it is not."""
        if not (state_dir / ADVISORIES_FILE).exists():
            return None
        return cls(state_dir / ADVISORIES_FILE, max_kept)

    # -- writing ----------------------------------------------------------------------
    def keep(
        self, advisories: Iterable[advisory_pb2.Advisory], now: datetime | None = None
    ) -> KeepResult:
        """Keep these advisories durably (one commit); `now` is their received_at."""
        received_us = _us(now or datetime.now(UTC))
        good: list[advisory_pb2.Advisory] = []
        refused: list[Refused] = []
        for advisory in advisories:
            why = problem(advisory)
            if why is None:
                good.append(advisory)
            else:
                refused.append(Refused(advisory.advisory_id, why))
        if not good:
            return KeepResult(refused=refused)

        def keep(conn: sqlite3.Connection) -> KeepResult:
            stored: list[str] = []
            new: list[KeptAdvisory] = []
            for advisory in good:
                stored.append(advisory.advisory_id)
                (seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM advisories").fetchone()
                row = (
                    advisory.advisory_id,
                    advisory.device_id,
                    advisory.kind,
                    advisory.code,
                    advisory.severity,
                    json.dumps(dict(advisory.text), ensure_ascii=False, sort_keys=True),
                    advisory.action,
                    advisory.report_id,
                    _timestamp_us(advisory),
                    received_us,
                    None,
                )
                # OR IGNORE: a resend keeps the first copy and its acknowledgement.
                inserted = conn.execute(
                    f"INSERT OR IGNORE INTO advisories (seq, {_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, *row),
                ).rowcount
                if inserted:
                    new.append(_record(row))
            evicted = self._evict(conn)
            # The same id twice in one call is confirmed once.
            stored = list(dict.fromkeys(stored))
            return KeepResult(stored=stored, new=new, refused=refused, evicted=evicted)

        return self._write(keep)

    def _evict(self, conn: sqlite3.Connection) -> list[str]:
        (count,) = conn.execute("SELECT COUNT(*) FROM advisories").fetchone()
        if count <= self.max_kept:
            return []
        # `acknowledged_at_us IS NULL` is 0 for acknowledged rows: they go first.
        rows = conn.execute(
            "DELETE FROM advisories WHERE advisory_id IN (SELECT advisory_id FROM advisories "
            "ORDER BY acknowledged_at_us IS NULL, seq LIMIT ?) RETURNING advisory_id",
            (count - self.max_kept,),
        ).fetchall()
        return [advisory_id for (advisory_id,) in rows]

    def acknowledge(self, advisory_id: str, at: datetime) -> KeptAdvisory:
        """Mark an advisory read at `at` (tz-aware); a second time keeps the first time.

        Raises UnknownAdvisory when no advisory has this id.
        """
        at_us = _us(at)

        def ack(conn: sqlite3.Connection) -> KeptAdvisory:
            conn.execute(
                "UPDATE advisories SET acknowledged_at_us = ? "
                "WHERE advisory_id = ? AND acknowledged_at_us IS NULL",
                (at_us, advisory_id),
            )
            return self._fetch(conn, advisory_id)

        return self._write(ack)

    # -- reading ----------------------------------------------------------------------
    def list(self, include_acknowledged: bool = False) -> list[KeptAdvisory]:
        """The kept advisories, newest raised first (no time given: when received)."""
        where = "" if include_acknowledged else "WHERE acknowledged_at_us IS NULL"

        def read(conn: sqlite3.Connection) -> list[KeptAdvisory]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM advisories {where} "
                "ORDER BY COALESCE(raised_at_us, received_at_us) DESC, seq DESC"
            ).fetchall()
            return [_record(row) for row in rows]

        return self._read(read)

    def get(self, advisory_id: str) -> KeptAdvisory:
        """One kept advisory; UnknownAdvisory when there is none with this id."""
        return self._read(lambda conn: self._fetch(conn, advisory_id))

    def _fetch(self, conn: sqlite3.Connection, advisory_id: str) -> KeptAdvisory:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM advisories WHERE advisory_id = ?", (advisory_id,)
        ).fetchone()
        if row is None:
            raise UnknownAdvisory(advisory_id, self.path)
        return _record(row)


def rfc3339(when: datetime | None) -> str | None:
    """`2026-11-25T15:24:09Z` (microseconds only when there are some), or None."""
    if when is None:
        return None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _us(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError(f"a time for the advisories must say its zone, not {when!r}")
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int | None) -> datetime | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def _timestamp_us(advisory: advisory_pb2.Advisory) -> int | None:
    if not advisory.HasField("raised_at"):
        return None
    return advisory.raised_at.seconds * 1_000_000 + advisory.raised_at.nanos // 1000


def _record(row: tuple[Any, ...]) -> KeptAdvisory:
    (advisory_id, device_id, kind, code, severity, text_json, action, report_id) = row[:8]
    raised_us, received_us, acked_us = row[8:]
    received = _from_us(received_us)
    assert received is not None
    return KeptAdvisory(
        advisory_id=advisory_id,
        device_id=device_id,
        kind=kind,
        code=code,
        severity=severity,
        text=json.loads(text_json),
        action=action,
        report_id=report_id,
        raised_at=_from_us(raised_us),
        received_at=received,
        acknowledged_at=_from_us(acked_us),
    )
