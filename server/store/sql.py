"""What the SQLite and PostgreSQL stores share: the queries, the row mapping, migrating.

`SqlStore` implements every `Store` method on top of one seam each backend provides,
`_run(fn, write=...)`: open a transaction, call `fn(tx)`, commit, and translate the
driver's errors into `probelink.server.errors` (StoreUnavailable when the database is
locked or unreachable). The SQL here is written once with `?` placeholders; the
PostgreSQL `Tx` rewrites them to `%s`.

    class MyStore(SqlStore):
        dialect = "sqlite"
        def _run(self, fn, *, write):     # BEGIN, fn(tx), COMMIT, translate errors
            ...
        def _store_batch(self, tx, batch, received_at_us):   # the hot path, tuned per backend
            ...

`classify` is the one definition of "stored, duplicate or conflict", used by both.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from probelink.server.clock import now_us
from probelink.server.errors import DictionaryIdTaken, StoreError
from probelink.server.store.base import (
    DeviceRecord,
    DictionaryRecord,
    EnrollSecretRecord,
    IncomingReport,
    ReportRow,
    ReportSummaryFields,
    SignatureFields,
    Store,
    StoredReport,
    StoreOutcome,
    StoreResult,
    TokenRecord,
)
from probelink.server.store.migrations import (
    DIALECTS,
    MIGRATIONS,
    SCHEMA_MIGRATIONS_TABLE,
    Migration,
    refuse_newer,
)
from probelink.server.store.sql_diagnoses import DiagnosisTables

T = TypeVar("T")
Row = tuple[Any, ...]

SUMMARY_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ReportSummaryFields))
SIGNATURE_COLUMNS = ("signature", "signing_key", "signature_verdict")
# The order of `report_values` and of `row_of`.
REPORT_COLUMNS: tuple[str, ...] = (
    "report_id",
    "device_id",
    "received_at_us",
    "dictionary_id",
    "report_bytes",
    "stored_bytes",
    "content_sha256",
    "frame",
    *SUMMARY_COLUMNS,
    *SIGNATURE_COLUMNS,
)
_ROW_COLUMNS = ", ".join(c for c in REPORT_COLUMNS if c != "frame")
_SUMMARY_END = 7 + len(SUMMARY_COLUMNS)
INSERT_REPORT = (
    f"INSERT INTO reports ({', '.join(REPORT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in REPORT_COLUMNS)})"
)
# What `classify` needs to know about a stored report.
EXISTING_COLUMNS = "report_id, device_id, content_sha256, received_at_us"

_TOKEN_COLUMNS = "token_id, token_hash, role, label, device_id, created_at_us, revoked_at_us"
_SECRET_COLUMNS = "secret_id, secret_hash, label, created_at_us, revoked_at_us"
# In DeviceRecord's field order (inserted with dataclasses.astuple).
_DEVICE_COLUMNS = (
    "device_id, credential_hash, enroll_secret_id, manufacturer, model, agent_version, "
    "enrolled_at_us, revoked_at_us, public_key"
)
_DICTIONARY_COLUMNS = "dictionary_id, content, trained_on_reports, created_at_us"
BOOTSTRAP_KEY = "bootstrapped_at_us"


class Tx(Protocol):
    """One open transaction; SQL uses `?` placeholders."""

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        """Execute; the number of rows changed."""
        ...

    def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...


# (device_id, content_sha256, received_at_us) of a stored report, by report id.
Existing = dict[str, tuple[str, bytes, int]]


def classify(
    batch: Sequence[IncomingReport], existing: Existing, received_at_us: int
) -> tuple[list[StoreResult], list[IncomingReport]]:
    """Each item's outcome, and the items to insert.

    Items are taken in order as if sent one after the other, so a second copy of an id
    within the batch is judged against the first.
    """
    seen = dict(existing)
    results: list[StoreResult] = []
    new: list[IncomingReport] = []
    for item in batch:
        prior = seen.get(item.report_id)
        if prior is None:
            seen[item.report_id] = (item.device_id, item.content_sha256, received_at_us)
            new.append(item)
            results.append(StoreResult(StoreOutcome.STORED, received_at_us))
        elif prior[0] == item.device_id and prior[1] == item.content_sha256:
            results.append(StoreResult(StoreOutcome.DUPLICATE, prior[2]))
        else:
            results.append(StoreResult(StoreOutcome.CONFLICT, 0))
    return results, new


def existing_of(rows: Iterable[Row]) -> Existing:
    return {r[0]: (r[1], bytes(r[2]), r[3]) for r in rows}


def report_values(item: IncomingReport, received_at_us: int) -> tuple[object, ...]:
    s = item.summary
    return (
        item.report_id,
        item.device_id,
        received_at_us,
        item.dictionary_id,
        item.report_bytes,
        len(item.frame),
        item.content_sha256,
        item.frame,
        *(getattr(s, name) for name in SUMMARY_COLUMNS),
        item.signature.signature,
        item.signature.signing_key,
        item.signature.verdict,
    )


def row_of(r: Row) -> ReportRow:
    """A ReportRow from the columns of `_ROW_COLUMNS`, in order."""
    signature, signing_key, verdict = r[_SUMMARY_END:]
    return ReportRow(
        report_id=r[0],
        device_id=r[1],
        received_at_us=r[2],
        dictionary_id=r[3],
        report_bytes=r[4],
        stored_bytes=r[5],
        content_sha256=bytes(r[6]),
        summary=ReportSummaryFields(*r[7:_SUMMARY_END]),
        # NULL in the rows stored before signatures were checked (migration 2).
        signature=SignatureFields(
            bytes(signature) if signature is not None else b"", signing_key or "", verdict
        ),
    )


def _token(r: Row) -> TokenRecord:
    return TokenRecord(r[0], bytes(r[1]), r[2], r[3], r[4], r[5], r[6])


def _secret(r: Row) -> EnrollSecretRecord:
    return EnrollSecretRecord(r[0], bytes(r[1]), r[2], r[3], r[4])


def _device(r: Row) -> DeviceRecord:
    public_key = bytes(r[8]) if r[8] is not None else None
    return DeviceRecord(r[0], bytes(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], public_key)


def _dictionary(r: Row) -> DictionaryRecord:
    return DictionaryRecord(r[0], bytes(r[1]), r[2], r[3])


def _one(rows: list[Row]) -> Row | None:
    return rows[0] if rows else None


# A stored report with its device's key, as `get_report` and `device_history` read it.
HISTORY_SELECT = (
    f"SELECT {_ROW_COLUMNS}, frame, "
    "(SELECT public_key FROM devices WHERE devices.device_id = reports.device_id) "
    "FROM reports"
)


def stored_of(row: Row) -> StoredReport:
    public_key = bytes(row[-1]) if row[-1] is not None else None
    return StoredReport(row_of(row[:-2]), bytes(row[-2]), public_key)


class SqlStore(DiagnosisTables, Store):
    """Every Store method but the transaction seam and the batch insert."""

    @abc.abstractmethod
    def _run(self, fn: Callable[[Tx], T], *, write: bool) -> T:
        """fn(tx) in one transaction (a write one if `write`), errors translated."""

    @abc.abstractmethod
    def _store_batch(
        self, tx: Tx, batch: Sequence[IncomingReport], received_at_us: int
    ) -> list[StoreResult]:
        """The body of store_reports, inside its write transaction."""

    @abc.abstractmethod
    def _has_migrations_table(self, tx: Tx) -> bool: ...

    def _lock_for_migration(self, tx: Tx) -> None:
        """Serialize migrations between processes (SQLite's write lock already does)."""

    # -- schema ---------------------------------------------------------------------
    def migrate(self) -> int:
        current = self.schema_version()
        refuse_newer(current, self.describe())
        for migration in MIGRATIONS:
            if migration.version > current:
                self._run(functools.partial(self._apply, migration=migration), write=True)
        return self.schema_version()

    def _apply(self, tx: Tx, migration: Migration) -> None:
        self._lock_for_migration(tx)
        tx.run(SCHEMA_MIGRATIONS_TABLE.format(**DIALECTS[self.dialect]))
        # Read again under the lock: another process may have migrated meanwhile.
        current = self._version(tx)
        refuse_newer(current, self.describe())
        if current >= migration.version:
            return
        for sql in migration.statements_for(self.dialect):
            tx.run(sql)
        tx.run(
            "INSERT INTO schema_migrations (version, name, applied_at_us) VALUES (?, ?, ?)",
            (migration.version, migration.name, now_us()),
        )

    def _version(self, tx: Tx) -> int:
        if not self._has_migrations_table(tx):
            return 0
        rows = tx.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    def schema_version(self) -> int:
        return self._run(self._version, write=False)

    # -- reports --------------------------------------------------------------------
    def store_reports(
        self, batch: Sequence[IncomingReport], received_at_us: int
    ) -> list[StoreResult]:
        if not batch:
            return []
        return self._run(lambda tx: self._store_batch(tx, batch, received_at_us), write=True)

    def get_report(self, report_id: str) -> StoredReport | None:
        sql = f"{HISTORY_SELECT} WHERE report_id = ?"
        row = _one(self._run(lambda tx: tx.query(sql, (report_id,)), write=False))
        return None if row is None else stored_of(row)

    def device_history(
        self, device_id: str, until_started_us: int, limit: int
    ) -> list[StoredReport]:
        sql = (
            f"{HISTORY_SELECT} WHERE device_id = ? AND started_at_us <= ? "
            "ORDER BY started_at_us DESC, report_id DESC LIMIT ?"
        )
        rows = self._run(
            lambda tx: tx.query(sql, (device_id, until_started_us, limit)), write=False
        )
        return [stored_of(r) for r in reversed(rows)]

    def newest_report_id(self, device_id: str) -> str | None:
        sql = (
            "SELECT report_id FROM reports WHERE device_id = ? "
            "ORDER BY started_at_us DESC, report_id DESC LIMIT 1"
        )
        row = _one(self._run(lambda tx: tx.query(sql, (device_id,)), write=False))
        return None if row is None else str(row[0])

    def list_reports(
        self, device_id: str | None, limit: int, after: tuple[int, str] | None = None
    ) -> list[ReportRow]:
        where: list[str] = []
        params: list[object] = []
        if device_id is not None:
            where.append("device_id = ?")
            params.append(device_id)
        if after is not None:
            where.append("(received_at_us, report_id) < (?, ?)")
            params.extend(after)
        sql = f"SELECT {_ROW_COLUMNS} FROM reports"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY received_at_us DESC, report_id DESC LIMIT ?"
        params.append(limit)
        return [row_of(r) for r in self._run(lambda tx: tx.query(sql, params), write=False)]

    def count_reports(self, device_id: str | None = None) -> int:
        if device_id is None:
            rows = self._run(lambda tx: tx.query("SELECT COUNT(*) FROM reports"), write=False)
        else:
            rows = self._run(
                lambda tx: tx.query(
                    "SELECT COUNT(*) FROM reports WHERE device_id = ?", (device_id,)
                ),
                write=False,
            )
        return int(rows[0][0])

    def sample_frames(self, limit: int) -> list[tuple[int, bytes]]:
        rows = self._run(
            lambda tx: tx.query(
                "SELECT dictionary_id, frame FROM reports "
                "ORDER BY received_at_us DESC, report_id DESC LIMIT ?",
                (limit,),
            ),
            write=False,
        )
        return [(r[0], bytes(r[1])) for r in rows]

    # -- people's tokens ------------------------------------------------------------
    def add_token(self, token: TokenRecord) -> None:
        self._run(lambda tx: _insert_token(tx, token), write=True)

    def token_by_hash(self, token_hash: bytes) -> TokenRecord | None:
        row = _one(
            self._run(
                lambda tx: tx.query(
                    f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?", (token_hash,)
                ),
                write=False,
            )
        )
        return None if row is None else _token(row)

    def revoke_token(self, token_id: str, at_us: int) -> TokenRecord | None:
        row = self._revoke("tokens", "token_id", _TOKEN_COLUMNS, token_id, at_us)
        return None if row is None else _token(row)

    def list_tokens(self) -> list[TokenRecord]:
        sql = f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created_at_us, token_id"
        return [_token(r) for r in self._run(lambda tx: tx.query(sql), write=False)]

    # -- enroll secrets -------------------------------------------------------------
    def add_enroll_secret(self, secret: EnrollSecretRecord) -> None:
        self._run(lambda tx: _insert_secret(tx, secret), write=True)

    def enroll_secret_by_hash(self, secret_hash: bytes) -> EnrollSecretRecord | None:
        row = _one(
            self._run(
                lambda tx: tx.query(
                    f"SELECT {_SECRET_COLUMNS} FROM enroll_secrets WHERE secret_hash = ?",
                    (secret_hash,),
                ),
                write=False,
            )
        )
        return None if row is None else _secret(row)

    def revoke_enroll_secret(self, secret_id: str, at_us: int) -> EnrollSecretRecord | None:
        row = self._revoke("enroll_secrets", "secret_id", _SECRET_COLUMNS, secret_id, at_us)
        return None if row is None else _secret(row)

    def list_enroll_secrets(self) -> list[EnrollSecretRecord]:
        sql = f"SELECT {_SECRET_COLUMNS} FROM enroll_secrets ORDER BY created_at_us, secret_id"
        return [_secret(r) for r in self._run(lambda tx: tx.query(sql), write=False)]

    # -- devices --------------------------------------------------------------------
    def add_device(self, device: DeviceRecord) -> None:
        def insert(tx: Tx) -> None:
            changed = tx.run(
                f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                dataclasses.astuple(device),
            )
            if not changed:
                raise StoreError(
                    f"device {device.device_id!r} (or one with the same credential) "
                    "is enrolled already; nothing was written"
                )

        self._run(insert, write=True)

    def device_by_credential(self, credential_hash: bytes) -> DeviceRecord | None:
        return self._device_where("credential_hash", credential_hash)

    def get_device(self, device_id: str) -> DeviceRecord | None:
        return self._device_where("device_id", device_id)

    def _device_where(self, column: str, value: object) -> DeviceRecord | None:
        sql = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE {column} = ?"
        row = _one(self._run(lambda tx: tx.query(sql, (value,)), write=False))
        return None if row is None else _device(row)

    def revoke_device(self, device_id: str, at_us: int) -> DeviceRecord | None:
        row = self._revoke("devices", "device_id", _DEVICE_COLUMNS, device_id, at_us)
        return None if row is None else _device(row)

    def list_devices(self) -> list[DeviceRecord]:
        sql = f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY enrolled_at_us, device_id"
        return [_device(r) for r in self._run(lambda tx: tx.query(sql), write=False)]

    def _revoke(self, table: str, key: str, columns: str, key_value: str, at_us: int) -> Row | None:
        def revoke(tx: Tx) -> Row | None:
            # COALESCE keeps the first revocation time: revoking twice changes nothing.
            tx.run(
                f"UPDATE {table} SET revoked_at_us = COALESCE(revoked_at_us, ?) WHERE {key} = ?",
                (at_us, key_value),
            )
            return _one(tx.query(f"SELECT {columns} FROM {table} WHERE {key} = ?", (key_value,)))

        return self._run(revoke, write=True)

    # -- first start ----------------------------------------------------------------
    def bootstrap(self, admin: TokenRecord, secret: EnrollSecretRecord) -> bool:
        def once(tx: Tx) -> bool:
            # The meta row is the claim: of two replicas starting at once, the second
            # waits on the first's key and then inserts nothing.
            claimed = tx.run(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (BOOTSTRAP_KEY, str(admin.created_at_us)),
            )
            if not claimed:
                return False
            _insert_token(tx, admin)
            _insert_secret(tx, secret)
            return True

        return self._run(once, write=True)

    # -- dictionaries ---------------------------------------------------------------
    def add_dictionary(self, dictionary: DictionaryRecord) -> None:
        def insert(tx: Tx) -> None:
            changed = tx.run(
                f"INSERT INTO dictionaries ({_DICTIONARY_COLUMNS}) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (dictionary_id) DO NOTHING",
                dataclasses.astuple(dictionary),
            )
            if not changed:
                raise DictionaryIdTaken(
                    f"dictionary {dictionary.dictionary_id} exists already "
                    "(dictionaries are never replaced); train again to get the next id"
                )

        self._run(insert, write=True)

    def get_dictionary(self, dictionary_id: int) -> DictionaryRecord | None:
        sql = f"SELECT {_DICTIONARY_COLUMNS} FROM dictionaries WHERE dictionary_id = ?"
        row = _one(self._run(lambda tx: tx.query(sql, (dictionary_id,)), write=False))
        return None if row is None else _dictionary(row)

    def latest_dictionary(self) -> DictionaryRecord | None:
        sql = f"SELECT {_DICTIONARY_COLUMNS} FROM dictionaries ORDER BY dictionary_id DESC LIMIT 1"
        row = _one(self._run(lambda tx: tx.query(sql), write=False))
        return None if row is None else _dictionary(row)

    def max_dictionary_id(self) -> int:
        rows = self._run(
            lambda tx: tx.query("SELECT COALESCE(MAX(dictionary_id), 0) FROM dictionaries"),
            write=False,
        )
        return int(rows[0][0])


def _insert_token(tx: Tx, token: TokenRecord) -> None:
    changed = tx.run(
        f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        dataclasses.astuple(token),
    )
    if not changed:
        raise StoreError(
            f"token {token.token_id!r} (or one with the same secret) exists already; "
            "nothing was written"
        )


def _insert_secret(tx: Tx, secret: EnrollSecretRecord) -> None:
    changed = tx.run(
        f"INSERT INTO enroll_secrets ({_SECRET_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        dataclasses.astuple(secret),
    )
    if not changed:
        raise StoreError(
            f"enroll secret {secret.secret_id!r} (or one with the same secret) exists "
            "already; nothing was written"
        )
