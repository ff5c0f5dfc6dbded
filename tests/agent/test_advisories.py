"""The advisory store on real SQLite files: what the daemon keeps and the CLI reads.

The concurrency test runs `tests/agent/advisory_child.py` as a real process holding the
store open and writing, as the daemon does, while the real CLI reads and acknowledges.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from probelink.agent.advisories import (
    ADVISORIES_FILE,
    MAX_ADVISORY_BYTES,
    MAX_KEPT,
    AdvisoryError,
    AdvisoryStore,
    KeepResult,
    KeptAdvisory,
    Refused,
    UnknownAdvisory,
    rfc3339,
)
from probelink.v1 import advisory_pb2

CHILD = Path(__file__).with_name("advisory_child.py")
AGENT = [sys.executable, "-m", "probelink.agent.cli"]
RECEIVED = datetime(2026, 11, 25, 15, 30, 0, 250_000, tzinfo=UTC)
RAISED = datetime(2026, 11, 25, 15, 24, 9, tzinfo=UTC)


def advisory(
    advisory_id: str = "adv-1",
    raised: datetime | None = RAISED,
    text: dict[str, str] | None = None,
    **fields: str,
) -> advisory_pb2.Advisory:
    a = advisory_pb2.Advisory(
        advisory_id=advisory_id,
        device_id=fields.get("device_id", "dev-7"),
        kind=fields.get("kind", "trend"),
        code=fields.get("code", "battery.health_pct:BAT0"),
        severity=fields.get("severity", "advisory"),
        text=(
            text
            if text is not None
            else {
                "en": "The battery will reach 80 % in about 5 months.",
                "zh-CN": "电池大约 5 个月后降到 80 %。",
            }
        ),
        action=fields.get("action", "battery_replacement"),
        report_id=fields.get("report_id", "rep-42"),
    )
    if raised is not None:
        a.raised_at.FromDatetime(raised)
    return a


def kept(
    a: advisory_pb2.Advisory,
    received: datetime = RECEIVED,
    acknowledged: datetime | None = None,
) -> KeptAdvisory:
    """What the store should give back for `a`, written out field by field."""
    return KeptAdvisory(
        advisory_id=a.advisory_id,
        device_id=a.device_id,
        kind=a.kind,
        code=a.code,
        severity=a.severity,
        text=dict(a.text),
        action=a.action,
        report_id=a.report_id,
        raised_at=a.raised_at.ToDatetime(UTC) if a.HasField("raised_at") else None,
        received_at=received,
        acknowledged_at=acknowledged,
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path) -> Iterator[AdvisoryStore]:
    s = AdvisoryStore.open(state_dir)
    yield s
    s.close()


# -- the round trip ------------------------------------------------------------------
def test_keep_list_get_round_trip_survives_reopening(store: AdvisoryStore, state_dir: Path) -> None:
    a = advisory()
    result = store.keep([a], now=RECEIVED)
    assert result == KeepResult(stored=["adv-1"], new=[kept(a)], refused=[], evicted=[])
    assert store.list() == [kept(a)]
    assert store.get("adv-1") == kept(a)
    store.close()
    with AdvisoryStore.open(state_dir) as again:
        assert again.list(include_acknowledged=True) == [kept(a)]


def test_as_json_has_every_field_with_rfc3339_utc_times(store: AdvisoryStore) -> None:
    store.keep([advisory()], now=RECEIVED)
    acked = store.acknowledge("adv-1", datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    assert acked.as_json() == {
        "advisory_id": "adv-1",
        "device_id": "dev-7",
        "kind": "trend",
        "code": "battery.health_pct:BAT0",
        "severity": "advisory",
        "text": {
            "en": "The battery will reach 80 % in about 5 months.",
            "zh-CN": "电池大约 5 个月后降到 80 %。",
        },
        "action": "battery_replacement",
        "report_id": "rep-42",
        "raised_at": "2026-11-25T15:24:09Z",
        "received_at": "2026-11-25T15:30:00.250000Z",
        "acknowledged_at": "2026-11-26T09:00:00Z",
        "acknowledged": True,
    }
    # A time in another zone is told in UTC.
    beijing = datetime(2026, 11, 26, 17, 0, tzinfo=UTC) + timedelta(hours=8)
    assert rfc3339(beijing.astimezone(UTC)) == "2026-11-27T01:00:00Z"


def test_an_advisory_without_a_raised_time_keeps_none_and_sorts_by_arrival(
    store: AdvisoryStore,
) -> None:
    early = advisory("adv-early", raised=RECEIVED - timedelta(days=3))
    untimed = advisory("adv-untimed", raised=None)
    late = advisory("adv-late", raised=RECEIVED + timedelta(days=3))
    store.keep([early, untimed, late], now=RECEIVED)
    assert store.list() == [kept(late), kept(untimed), kept(early)]
    assert store.get("adv-untimed").raised_at is None


def test_list_is_newest_raised_first_not_arrival_order(store: AdvisoryStore) -> None:
    older = advisory("adv-old", raised=RAISED - timedelta(days=30))
    newer = advisory("adv-new", raised=RAISED)
    store.keep([newer], now=RECEIVED)
    store.keep([older], now=RECEIVED + timedelta(minutes=1))
    assert [a.advisory_id for a in store.list()] == ["adv-new", "adv-old"]


def test_text_in_falls_back_to_english() -> None:
    english_only = kept(advisory(text={"en": "Only English."}))
    assert english_only.text_in("zh-CN") == "Only English."
    assert kept(advisory()).text_in("zh-CN") == "电池大约 5 个月后降到 80 %。"


# -- idempotence and acknowledgement ---------------------------------------------------
def test_a_resend_neither_duplicates_nor_replaces(store: AdvisoryStore) -> None:
    first = advisory()
    store.keep([first], now=RECEIVED)
    changed = advisory(text={"en": "Something else."}, severity="major")
    again = store.keep([changed, changed], now=RECEIVED + timedelta(hours=1))
    # Confirmed again (the server did not hear the first time), once, and not new.
    assert again == KeepResult(stored=["adv-1"], new=[], refused=[], evicted=[])
    assert store.list(include_acknowledged=True) == [kept(first)]


def test_an_acknowledgement_survives_a_resend(store: AdvisoryStore) -> None:
    a = advisory()
    store.keep([a], now=RECEIVED)
    read_at = RECEIVED + timedelta(days=1)
    assert store.acknowledge("adv-1", read_at) == kept(a, acknowledged=read_at)
    assert store.keep([a], now=RECEIVED + timedelta(days=2)).stored == ["adv-1"]
    assert store.list() == []
    assert store.list(include_acknowledged=True) == [kept(a, acknowledged=read_at)]


def test_acknowledging_twice_keeps_the_first_time(store: AdvisoryStore) -> None:
    a = advisory()
    store.keep([a], now=RECEIVED)
    first = RECEIVED + timedelta(days=1)
    store.acknowledge("adv-1", first)
    assert store.acknowledge("adv-1", first + timedelta(days=5)) == kept(a, acknowledged=first)


def test_acknowledging_an_unknown_id_names_it_and_changes_nothing(store: AdvisoryStore) -> None:
    store.keep([advisory()], now=RECEIVED)
    with pytest.raises(UnknownAdvisory) as raised:
        store.acknowledge("adv-nope", RECEIVED)
    assert raised.value.advisory_id == "adv-nope"
    assert "'adv-nope'" in str(raised.value)
    assert "probelink-agent advisories --all" in str(raised.value)
    with pytest.raises(UnknownAdvisory):
        store.get("adv-nope")
    assert [a.acknowledged for a in store.list(include_acknowledged=True)] == [False]


def test_a_time_without_a_zone_is_refused(store: AdvisoryStore) -> None:
    store.keep([advisory()], now=RECEIVED)
    with pytest.raises(ValueError, match="zone"):
        store.acknowledge("adv-1", datetime(2026, 11, 26, 9, 0))
    with pytest.raises(ValueError, match="zone"):
        store.keep([advisory("adv-2")], now=datetime(2026, 11, 26, 9, 0))
    assert store.list() == [kept(advisory())]


# -- bounds ----------------------------------------------------------------------------
def test_eviction_takes_the_oldest_acknowledged_first_then_the_oldest(state_dir: Path) -> None:
    ads = {n: advisory(n, raised=RAISED + timedelta(days=i)) for i, n in enumerate("abcdefg")}
    with AdvisoryStore.open(state_dir, max_kept=4) as store:
        assert store.keep([ads[n] for n in "abcd"], now=RECEIVED).evicted == []
        # Acknowledged in the other order: arrival decides which is older, not the ack.
        store.acknowledge("c", RECEIVED + timedelta(hours=1))
        store.acknowledge("a", RECEIVED + timedelta(hours=2))
        assert store.keep([ads["e"]], now=RECEIVED).evicted == ["a"]
        assert store.keep([ads["f"]], now=RECEIVED).evicted == ["c"]
        # None acknowledged is left: the oldest goes.
        assert store.keep([ads["g"]], now=RECEIVED).evicted == ["b"]
        assert store.list(include_acknowledged=True) == [kept(ads[n]) for n in "gfed"]
        # A resend of a kept one evicts nothing.
        assert store.keep([ads["d"]], now=RECEIVED).evicted == []


def test_a_batch_larger_than_the_bound_keeps_the_newest_and_confirms_all(
    state_dir: Path,
) -> None:
    ads = [advisory(f"adv-{i}", raised=RAISED + timedelta(minutes=i)) for i in range(6)]
    with AdvisoryStore.open(state_dir, max_kept=4) as store:
        result = store.keep(ads, now=RECEIVED)
        # All confirmed: one the store chose to drop must not come back for ever.
        assert result.stored == [a.advisory_id for a in ads]
        assert result.evicted == ["adv-0", "adv-1"]
        assert [a.advisory_id for a in store.list()] == ["adv-5", "adv-4", "adv-3", "adv-2"]


def test_the_default_bound_is_500(store: AdvisoryStore) -> None:
    assert MAX_KEPT == 500
    ads = [advisory(f"adv-{i:03d}", raised=RAISED + timedelta(seconds=i)) for i in range(501)]
    result = store.keep(ads, now=RECEIVED)
    assert result.evicted == ["adv-000"]
    assert len(store.list()) == 500


def test_max_kept_below_one_is_refused(state_dir: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdvisoryStore.open(state_dir, max_kept=0)


# -- bad advisories --------------------------------------------------------------------
def test_bad_advisories_are_refused_with_reasons_and_the_good_ones_kept(
    store: AdvisoryStore,
) -> None:
    far_future = advisory("adv-future")
    far_future.raised_at.seconds = 253_402_300_800  # 10000-01-01
    bad_nanos = advisory("adv-nanos")
    bad_nanos.raised_at.nanos = -1
    good = advisory("adv-good")
    batch = [
        advisory(""),
        advisory("   "),
        advisory("adv-no-text", text={}),
        advisory("adv-no-english", text={"zh-CN": "只有中文。"}),
        advisory("adv-blank-english", text={"en": "  ", "zh-CN": "空白。"}),
        advisory("x" * 201),
        advisory("adv-huge", text={"en": "x" * MAX_ADVISORY_BYTES}),
        far_future,
        bad_nanos,
        good,
    ]
    result = store.keep(batch, now=RECEIVED)
    assert result == KeepResult(
        stored=["adv-good"],
        new=[kept(good)],
        refused=[
            Refused("", "it has no advisory_id"),
            Refused("   ", "it has no advisory_id"),
            Refused("adv-no-text", "it has no English text (text['en'])"),
            Refused("adv-no-english", "it has no English text (text['en'])"),
            Refused("adv-blank-english", "it has no English text (text['en'])"),
            Refused("x" * 201, "its advisory_id is 201 characters (at most 200)"),
            Refused(
                "adv-huge",
                f"it is {batch[6].ByteSize()} bytes (at most {MAX_ADVISORY_BYTES})",
            ),
            Refused("adv-future", "its raised_at is not a time between the years 1 and 9999"),
            Refused("adv-nanos", "its raised_at is not a time between the years 1 and 9999"),
        ],
        evicted=[],
    )
    assert store.list(include_acknowledged=True) == [kept(good)]


def test_only_bad_advisories_write_nothing(store: AdvisoryStore, state_dir: Path) -> None:
    result = store.keep([advisory("")], now=RECEIVED)
    assert result.stored == [] and result.new == [] and len(result.refused) == 1
    assert store.list(include_acknowledged=True) == []


# -- the file --------------------------------------------------------------------------
def test_the_files_are_0600_in_a_0700_dir_whatever_the_umask(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    old = os.umask(0)
    try:
        with AdvisoryStore.open(state_dir) as store:
            store.keep([advisory()], now=RECEIVED)
            paths = [state_dir / ADVISORIES_FILE]
            paths += [state_dir / f"{ADVISORIES_FILE}-{s}" for s in ("wal", "shm")]
            assert {p.name: p.stat().st_mode & 0o777 for p in paths} == {
                p.name: 0o600 for p in paths
            }
    finally:
        os.umask(old)
    assert state_dir.stat().st_mode & 0o777 == 0o700


def test_the_file_is_wal_and_versioned(store: AdvisoryStore, state_dir: Path) -> None:
    conn = sqlite3.connect(state_dir / ADVISORIES_FILE)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        conn.close()


def test_open_existing_makes_nothing_when_there_is_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "never-ran"
    assert AdvisoryStore.open_existing(missing) is None
    assert not missing.exists()
    missing.mkdir()
    assert AdvisoryStore.open_existing(missing) is None
    assert list(missing.iterdir()) == []


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.write_bytes(b"not a database at all, just some bytes" * 50), "damaged"),
        (
            lambda p: sqlite3.connect(p).execute("CREATE TABLE other (x)").connection.commit(),
            "not the agent's advisories",
        ),
        (
            lambda p: sqlite3.connect(p).execute("PRAGMA user_version = 9").connection.commit(),
            "schema version 9, written by a newer agent",
        ),
    ],
    ids=["garbage", "another-sqlite-file", "newer-schema"],
)
def test_a_file_that_is_not_ours_is_refused_by_name(
    state_dir: Path, setup: object, message: str
) -> None:
    state_dir.mkdir(mode=0o700)
    path = state_dir / ADVISORIES_FILE
    assert callable(setup)
    setup(path)
    with pytest.raises(AdvisoryError) as raised:
        AdvisoryStore.open(state_dir)
    assert message in str(raised.value)
    assert str(path) in str(raised.value)


def test_a_closed_store_says_so(store: AdvisoryStore) -> None:
    store.close()
    store.close()  # twice is fine
    with pytest.raises(AdvisoryError, match="is closed"):
        store.list()


# -- the CLI reads while the daemon holds the file open --------------------------------
def test_the_cli_reads_and_acks_while_a_writer_holds_the_store_open(state_dir: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(state_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline() == "kept adv-000000\n"
        cli = [*AGENT, "advisories", "--state-dir", str(state_dir)]
        acked = subprocess.run(
            [*cli, "ack", "adv-000000", "--json"], capture_output=True, text=True, timeout=60
        )
        assert acked.returncode == 0, acked.stderr
        assert json.loads(acked.stdout)["acknowledged"] is True
        seen = []
        for _ in range(3):
            listed = subprocess.run(
                [*cli, "--all", "--json"], capture_output=True, text=True, timeout=60
            )
            assert listed.returncode == 0, listed.stderr
            seen.append(json.loads(listed.stdout))
        # The writer kept going meanwhile, and its resends never undid the ack.
        child.stdin.write("stop\n")
        child.stdin.flush()
        lines = child.stdout.read().splitlines()
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    assert child.returncode == 0
    total = int(lines[-1].removeprefix("stopped "))
    assert total > 1
    counts = [len(listing) for listing in seen]
    assert counts == sorted(counts)
    for listing in seen:
        first = [a for a in listing if a["advisory_id"] == "adv-000000"]
        assert first[0]["acknowledged_at"] == json.loads(acked.stdout)["acknowledged_at"]
    with AdvisoryStore.open(state_dir, max_kept=1_000_000) as store:
        everything = store.list(include_acknowledged=True)
        assert sorted(a.advisory_id for a in everything) == [f"adv-{n:06d}" for n in range(total)]
        assert [a.advisory_id for a in everything if a.acknowledged] == ["adv-000000"]
