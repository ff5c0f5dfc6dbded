"""Fixtures every server test shares: a real database of each kind, isolated per test.

    def test_something(store: Store) -> None:        # runs twice: sqlite, postgresql
        store.store_reports([...], received_at_us=1)

    def test_a_whole_server(store_url: str) -> None:  # "sqlite:///tmp/…/probelink.db" or a PG URL
        ...  # start `probelink-server serve --db <store_url>`

PostgreSQL comes from `PROBELINK_TEST_POSTGRES` (a URL whose role may CREATE SCHEMA). Unset,
the PostgreSQL half is skipped with a reason, unless `PROBELINK_REQUIRE_POSTGRES=1` (set by
`.ci/run`), where a missing server fails the run instead. Each test gets its own schema,
selected through the URL (`options=-csearch_path=…`), and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest

from probelink.server.store import Store, open_store

PG_ENV = "PROBELINK_TEST_POSTGRES"
REQUIRE_PG_ENV = "PROBELINK_REQUIRE_POSTGRES"
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL server's URL (shared database; prefer `pg_isolated_url`)."""
    url = os.environ.get(PG_ENV, "")
    if not url:
        reason = (
            f"PostgreSQL tests need {PG_ENV}=postgresql://user:password@host:port/db "
            "(.ci/run starts one)"
        )
        if os.environ.get(REQUIRE_PG_ENV) == "1":
            pytest.fail(f"{REQUIRE_PG_ENV}=1 but {reason}")
        pytest.skip(reason)
    return url


def with_params(url: str, **params: str) -> str:
    """`url` with query parameters added (psycopg passes them on to libpq)."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
def pg_isolated_url(pg_url: str) -> Iterator[str]:
    """A URL whose connections see only a fresh schema of their own."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_params(pg_url, options=f"-csearch_path={schema}")
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind, as the URL `--db` takes."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'probelink.db'}"
    return str(request.getfixturevalue("pg_isolated_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated, empty store of each kind; closed afterwards."""
    opened = open_store(store_url)
    try:
        opened.migrate()
        yield opened
    finally:
        opened.close()


def raw_sql(url: str, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Run one statement behind the store's back (with `?` placeholders); its rows."""
    if url.startswith("sqlite://"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"))) as conn:
            rows = conn.execute(sql, params).fetchall()
            conn.commit()
            return rows
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []
