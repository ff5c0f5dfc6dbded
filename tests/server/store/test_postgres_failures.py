"""PostgreSQL refused, gone or dropping connections: StoreUnavailable or recovery, never loss."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from probelink.server.errors import StoreUnavailable
from probelink.server.store import StoreOutcome, StoreResult
from probelink.server.store.postgres import PostgresStore
from tests.server.conftest import raw_sql, with_params
from tests.server.store.factories import incoming
from tests.tcpproxy import TcpProxy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nothing_listening_is_unavailable_and_the_password_is_not_shown() -> None:
    port = _free_port()
    store = PostgresStore(f"postgresql://probelink:s3cret-pw@127.0.0.1:{port}/db", timeout_s=0.5)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.migrate()
    finally:
        store.close()
    message = str(caught.value)
    assert message.startswith(
        f"no connection to postgresql probelink@127.0.0.1:{port}/db within 0.5 s"
    )
    assert "refused" in message.lower()
    assert message.endswith("nothing was written")
    assert "s3cret-pw" not in message


def test_describe_names_the_server_and_never_the_password() -> None:
    port = _free_port()
    store = PostgresStore(f"postgresql://alice:pw-xyz@127.0.0.1:{port}/probes", timeout_s=0.1)
    try:
        assert store.describe() == f"postgresql alice@127.0.0.1:{port}/probes"
    finally:
        store.close()


def _terminate(pg_url: str, application_name: str) -> int:
    with psycopg.connect(pg_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


def test_connections_killed_under_the_pool_are_replaced(pg_url: str, pg_isolated_url: str) -> None:
    name = f"probelink-test-{uuid.uuid4().hex[:8]}"
    store = PostgresStore(with_params(pg_isolated_url, application_name=name), min_size=2)
    try:
        store.migrate()
        store.store_reports([incoming("before")], received_at_us=1)
        assert _terminate(pg_url, name) >= 1
        batch = [incoming(f"r{i}") for i in range(10)]
        assert (
            store.store_reports(batch, received_at_us=2)
            == [StoreResult(StoreOutcome.STORED, 2)] * 10
        )
        assert store.count_reports() == 11
        stored = store.get_report("r9")
        assert stored is not None and stored.frame == batch[9].frame
    finally:
        store.close()


def test_a_server_gone_is_unavailable_writes_nothing_and_is_recovered_from(
    pg_isolated_url: str,
) -> None:
    info = psycopg.conninfo.conninfo_to_dict(pg_isolated_url)
    proxy = TcpProxy(str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
    parts = urlsplit(pg_isolated_url)
    via_proxy = urlunsplit(
        parts._replace(netloc=f"{parts.netloc.rsplit('@', 1)[0]}@127.0.0.1:{proxy.port}")
    )
    store = PostgresStore(via_proxy, timeout_s=1.0)
    try:
        store.migrate()
        store.store_reports([incoming("before")], received_at_us=1)
        proxy.cut()
        batch = [incoming(f"r{i}") for i in range(10)]
        with pytest.raises(StoreUnavailable) as caught:
            store.store_reports(batch, received_at_us=2)
        assert f"127.0.0.1:{proxy.port}" in str(caught.value)
        assert "nothing was written" in str(caught.value)
        # Seen directly, not through the cut: nothing of the batch got in.
        assert raw_sql(pg_isolated_url, "SELECT report_id FROM reports") == [("before",)]

        proxy.restore()
        # The pool reconnects in the background with a back-off: give it a few tries.
        deadline = time.monotonic() + 30
        while True:
            try:
                results = store.store_reports(batch, received_at_us=3)
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the store never recovered"
        assert results == [StoreResult(StoreOutcome.STORED, 3)] * 10
        assert store.count_reports() == 11
    finally:
        store.close()
        proxy.cut()


def test_an_id_committed_by_another_replica_meanwhile_is_judged_against_it(
    pg_isolated_url: str,
) -> None:
    store = PostgresStore(pg_isolated_url)
    store.migrate()
    theirs = incoming("r1", content=b"theirs")
    results: list[list[StoreResult]] = []
    try:
        with psycopg.connect(pg_isolated_url) as other:
            # The other replica inserts r1 and has not committed yet ...
            other.execute(
                "INSERT INTO reports SELECT * FROM (SELECT %s, %s, 7::bigint, 0::bigint, 1::bigint,"
                " 1::bigint, %s::bytea, %s::bytea, 'A', 'M', 1, 1, 'v', 0::bigint, 0::bigint,"
                " 0, 0, 0, 0) AS t",
                (theirs.report_id, theirs.device_id, theirs.content_sha256, b"x"),
            )
            batch = [incoming("r1", content=b"mine"), incoming("r2")]
            writer = threading.Thread(
                target=lambda: results.append(store.store_reports(batch, received_at_us=9))
            )
            writer.start()
            # ... until our INSERT waits on its row lock.
            deadline = time.monotonic() + 10
            while not other.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[
                0
            ]:  # type: ignore[index]
                assert time.monotonic() < deadline, "store_reports never reached its INSERT"
                time.sleep(0.01)
            other.commit()
        writer.join()
        assert results == [
            [StoreResult(StoreOutcome.CONFLICT, 0), StoreResult(StoreOutcome.STORED, 9)]
        ]
        stored = store.get_report("r1")
        assert stored is not None and stored.row.content_sha256 == theirs.content_sha256
    finally:
        store.close()
