"""Open the store a `--db` value names.

open_store("postgresql://user@host/db")          -> PostgresStore (psycopg 3 pool)
open_store("sqlite:///abs/path.db")              -> SqliteStore
open_store("sqlite:///abs/path.db?busy_timeout=2")  (seconds to wait for a lock)
open_store("data/probelink.db")                  -> SqliteStore (a plain path)
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from probelink.server.errors import InvalidArgument
from probelink.server.store.base import Store


def open_store(url: str) -> Store:
    """The store for `url`; raises InvalidArgument for a scheme we do not speak."""
    if url.startswith(("postgresql://", "postgres://")):
        # Imported here: a SQLite-only server never loads psycopg.
        from probelink.server.store.postgres import PostgresStore

        return PostgresStore(url)
    if url.startswith("sqlite://"):
        path, _, query = url.removeprefix("sqlite://").partition("?")
        if not path:
            raise InvalidArgument("sqlite:// needs a path, e.g. sqlite:///var/lib/probelink.db")
        return _sqlite(Path(path), _busy_timeout(query))
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise InvalidArgument(
            f"unknown database scheme {scheme!r}: use a file path, sqlite:///path or postgresql://…"
        )
    return _sqlite(Path(url))


def _sqlite(path: Path, busy_timeout_s: float = 5.0) -> Store:
    from probelink.server.store.sqlite import SqliteStore

    return SqliteStore(path, busy_timeout_s=busy_timeout_s)


def _busy_timeout(query: str) -> float:
    params = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(params) - {"busy_timeout"})
    if unknown:
        raise InvalidArgument(f"unknown sqlite:// parameter(s) {unknown}: only busy_timeout")
    try:
        seconds = float(params.get("busy_timeout", "5"))
    except ValueError:
        raise InvalidArgument("busy_timeout is a number of seconds, e.g. ?busy_timeout=2") from None
    if not 0 <= seconds <= 600:
        raise InvalidArgument("busy_timeout must be between 0 and 600 seconds")
    return seconds
