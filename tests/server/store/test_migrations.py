"""Migrations on both backends: fresh, re-run, recorded, and refused when too new."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from probelink.server.errors import StoreError
from probelink.server.store import Store, open_store
from probelink.server.store.base import UNSIGNED
from probelink.server.store.migrations import LATEST, MIGRATIONS
from probelink.server.store.sql import REPORT_COLUMNS, SIGNATURE_COLUMNS, report_values
from tests.server.conftest import raw_sql
from tests.server.store.factories import incoming


def test_a_fresh_database_is_at_version_0_and_migrates_to_the_latest(store_url: str) -> None:
    fresh = open_store(store_url)
    try:
        assert fresh.schema_version() == 0
        assert fresh.migrate() == LATEST
        assert fresh.schema_version() == LATEST
        assert fresh.count_reports() == 0
    finally:
        fresh.close()


def test_every_applied_migration_is_recorded_with_its_name_and_time(store_url: str) -> None:
    fresh = open_store(store_url)
    try:
        fresh.migrate()
    finally:
        fresh.close()
    rows = raw_sql(store_url, "SELECT version, name, applied_at_us FROM schema_migrations")
    assert [(v, n) for v, n, _ in rows] == [(m.version, m.name) for m in MIGRATIONS]
    assert all(at > 1_600_000_000_000_000 for _, _, at in rows)


def test_migrating_again_changes_nothing(store: Store, store_url: str) -> None:
    store.store_reports([incoming("r1")], received_at_us=10)
    before = raw_sql(store_url, "SELECT version, name, applied_at_us FROM schema_migrations")
    assert store.migrate() == LATEST
    again = open_store(store_url)
    try:
        assert again.migrate() == LATEST
    finally:
        again.close()
    assert (
        raw_sql(store_url, "SELECT version, name, applied_at_us FROM schema_migrations") == before
    )
    assert store.count_reports() == 1


def test_a_database_from_a_newer_probelink_is_refused_untouched(
    store: Store, store_url: str
) -> None:
    raw_sql(
        store_url,
        "INSERT INTO schema_migrations (version, name, applied_at_us) VALUES (?, ?, ?)",
        (LATEST + 1, "from the future", 1),
    )
    before = raw_sql(store_url, "SELECT version, name, applied_at_us FROM schema_migrations")
    newer = open_store(store_url)
    try:
        with pytest.raises(StoreError, match=r"newer probelink") as caught:
            newer.migrate()
    finally:
        newer.close()
    assert f"schema version {LATEST + 1}" in str(caught.value)
    assert store.describe() in str(caught.value)
    assert (
        raw_sql(store_url, "SELECT version, name, applied_at_us FROM schema_migrations") == before
    )


def test_using_an_unmigrated_database_says_to_migrate(store_url: str) -> None:
    fresh = open_store(store_url)
    try:
        with pytest.raises(StoreError, match="run migrate first"):
            fresh.store_reports([incoming("r1")], received_at_us=1)
        with pytest.raises(StoreError, match="run migrate first"):
            fresh.count_reports()
    finally:
        fresh.close()


def test_migration_2_keeps_what_version_1_stored_and_marks_it_unsigned(store_url: str) -> None:
    old = open_store(store_url)
    try:
        # A database as the first release left it: version 1, a device and a report.
        old._run(functools.partial(old._apply, migration=MIGRATIONS[0]), write=True)  # type: ignore[attr-defined]
        assert old.schema_version() == 1
        raw_sql(
            store_url,
            "INSERT INTO devices (device_id, credential_hash, enroll_secret_id, manufacturer, "
            "model, agent_version, enrolled_at_us) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ("d1", b"hash", "s1", "Acme", "Tab 10", "0.1.0", 1),
        )
        item = incoming("r1")
        columns = [c for c in REPORT_COLUMNS if c not in (*SIGNATURE_COLUMNS, "spool_evicted")]
        values = dict(zip(REPORT_COLUMNS, report_values(item, 7), strict=True))
        raw_sql(
            store_url,
            f"INSERT INTO reports ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [values[c] for c in columns],
        )
        assert old.migrate() == LATEST
        device = old.get_device("d1")
        assert device is not None and device.public_key is None
        stored = old.get_report("r1")
        assert stored is not None
        assert stored.frame == item.frame
        assert stored.device_public_key is None
        assert stored.row.signature == UNSIGNED
        assert stored.row.summary == dataclasses.replace(item.summary, spool_evicted=0)
    finally:
        old.close()
