"""The networked store: PostgreSQL through a psycopg 3 connection pool, shared by replicas.

    store = PostgresStore("postgresql://probelink:secret@db:5432/probelink")
    store.migrate()            # safe when several replicas start at once
    store.describe()           # 'postgresql probelink@db:5432/probelink' (no password)

Several server replicas may write the same database, so what SQLite gets from its one
write lock is done here with the database's own tools: migrations take an advisory lock,
`bootstrap` claims a `meta` row with ON CONFLICT DO NOTHING, and `store_reports` inserts
with ON CONFLICT DO NOTHING and re-reads any id another replica committed in between.

A server that is refused, gone or too slow to hand out a connection within `timeout_s`
raises StoreUnavailable. A connection the server dropped (restart, `pg_terminate_backend`)
is found when used; if that happens before COMMIT was sent nothing was written, so the
call is retried once on a fresh connection. A connection lost *during* COMMIT leaves the
outcome unknown to any client; that raises StoreUnavailable, and since store_reports is
idempotent a resend of the batch is answered DUPLICATE for what did get in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from probelink.server.errors import InvalidArgument, StoreError, StoreUnavailable
from probelink.server.store.base import IncomingReport, StoreResult
from probelink.server.store.sql import (
    EXISTING_COLUMNS,
    REPORT_COLUMNS,
    Row,
    SqlStore,
    Tx,
    classify,
    existing_of,
    report_values,
)

T = TypeVar("T")

# The array type each report column travels in: one INSERT … SELECT FROM unnest(…) stores
# a whole batch in one round trip.
_ARRAY_TYPES = {
    "report_id": "text",
    "device_id": "text",
    "received_at_us": "bigint",
    "dictionary_id": "bigint",
    "report_bytes": "bigint",
    "stored_bytes": "bigint",
    "content_sha256": "bytea",
    "frame": "bytea",
    "manufacturer": "text",
    "model": "text",
    "kind": "integer",
    "overall": "integer",
    "agent_version": "text",
    "started_at_us": "bigint",
    "finished_at_us": "bigint",
    "result_count": "integer",
    "fail_count": "integer",
    "warn_count": "integer",
    "error_count": "integer",
    "spool_evicted": "bigint",
    "signature": "bytea",
    "signing_key": "text",
    "signature_verdict": "integer",
}
assert set(_ARRAY_TYPES) == set(REPORT_COLUMNS), "a report column has no array type"

_INSERT_BATCH = (
    f"INSERT INTO reports ({', '.join(REPORT_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'%s::{_ARRAY_TYPES[c]}[]' for c in REPORT_COLUMNS)}) "
    "ON CONFLICT (report_id) DO NOTHING RETURNING report_id"
)


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (our SQL has no literal ? or %)."""
    return sql.replace("?", "%s")


class _PgTx:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._cur = conn.cursor()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        self._cur.execute(_pg(sql), params)
        return self._cur.fetchall()

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        self._cur.execute(_pg(sql), params)
        return self._cur.rowcount

    def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            self._cur.executemany(_pg(sql), rows)

    def query_raw(self, sql: str, params: Sequence[object], binary: bool = False) -> list[Row]:
        """A query already in psycopg's `%s` style."""
        self._cur.execute(sql, params, binary=binary)
        return self._cur.fetchall()


class PostgresStore(SqlStore):
    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        min_size: int = 1,
        max_size: int = 8,
        timeout_s: float = 10.0,
        connect_timeout_s: int = 5,
    ) -> None:
        try:
            info = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise InvalidArgument(f"not a valid PostgreSQL URL: {exc}") from exc
        self._password = str(info.get("password") or "")
        user = info.get("user") or "(default user)"
        host = info.get("host") or "localhost"
        port = info.get("port") or "5432"
        dbname = info.get("dbname") or user
        self._where = f"postgresql {user}@{host}:{port}/{dbname}"
        self.timeout_s = timeout_s
        kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in info:
            # libpq waits forever for a host that drops packets; the pool must not.
            kwargs["connect_timeout"] = connect_timeout_s
        self._url = url
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            kwargs=kwargs,
            name="probelink-store",
            open=True,
        )

    def describe(self) -> str:
        return self._where

    def close(self) -> None:
        self._pool.close()

    # -- the seam SqlStore runs on -----------------------------------------------------
    def _run(self, fn: Callable[[Tx], T], *, write: bool) -> T:
        # Reads and writes alike run in a transaction; `write` matters only to SQLite.
        retried = False
        while True:
            conn: psycopg.Connection[Any] | None = None
            body_done = False
            try:
                with self._pool.connection() as conn, conn.transaction():
                    result = fn(_PgTx(conn))
                    body_done = True
                return result
            except PoolTimeout as exc:
                raise StoreUnavailable(self._unreachable()) from exc
            except pg_errors.UndefinedTable as exc:
                raise StoreError(
                    f"{self._where} has no probelink schema ({self._clean(exc)}); run migrate first"
                ) from exc
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                lost = conn is not None and conn.broken
                if lost and not body_done and not retried:
                    # Dropped before COMMIT: the server rolled it back, a retry is safe.
                    # The other pooled connections were likely dropped too: weed them out.
                    retried = True
                    self._pool.check()
                    continue
                if lost and body_done:
                    raise StoreUnavailable(
                        f"the connection to {self._where} was lost while committing "
                        f"({self._clean(exc)}); the outcome is unknown, resending is safe"
                    ) from exc
                raise StoreUnavailable(
                    f"{self._where} is unavailable ({self._clean(exc)}); nothing was written"
                ) from exc
            except psycopg.Error as exc:
                raise StoreError(f"{self._where}: {self._clean(exc)}") from exc

    def _has_migrations_table(self, tx: Tx) -> bool:
        return bool(tx.query("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0])

    def _lock_for_migration(self, tx: Tx) -> None:
        # Held to the end of the transaction; keyed by schema so that databases sharing
        # a server (or tests each in their own schema) do not wait on each other.
        tx.query("SELECT pg_advisory_xact_lock(hashtext('probelink.migrate:' || current_schema()))")

    def _store_batch(
        self, tx: Tx, batch: Sequence[IncomingReport], received_at_us: int
    ) -> list[StoreResult]:
        assert isinstance(tx, _PgTx)
        ids = list(dict.fromkeys(item.report_id for item in batch))
        select = f"SELECT {EXISTING_COLUMNS} FROM reports WHERE report_id = ANY(%s)"
        existing = existing_of(tx.query_raw(select, (ids,)))
        results, new = classify(batch, existing, received_at_us)
        if not new:
            return results
        columns = list(zip(*(report_values(item, received_at_us) for item in new), strict=True))
        # Binary: the frames travel as they are, not hex-escaped (about 2x less work).
        rows = tx.query_raw(_INSERT_BATCH, [list(c) for c in columns], binary=True)
        inserted = {r[0] for r in rows}
        raced = [item.report_id for item in new if item.report_id not in inserted]
        if raced:
            # Another replica committed these ids after our SELECT: judge against its rows.
            existing.update(existing_of(tx.query_raw(select, (raced,))))
            results, _ = classify(batch, existing, received_at_us)
        return results

    # -- errors -----------------------------------------------------------------------
    def _clean(self, exc: BaseException) -> str:
        text = str(exc).strip()
        # libpq does not echo passwords; this is only a second lock on that door (skipped
        # when the password is also the user or database name, which are shown anyway).
        if self._password and self._password not in self._where:
            text = text.replace(self._password, "***")
        return text

    def _unreachable(self) -> str:
        # The pool only says it timed out; one direct attempt says why (refused, auth…).
        reason = ""
        try:
            psycopg.connect(self._url, connect_timeout=2).close()
        except psycopg.Error as exc:
            reason = f": {self._clean(exc)}"
        return (
            f"no connection to {self._where} within {self.timeout_s:g} s{reason}; "
            "nothing was written"
        )
