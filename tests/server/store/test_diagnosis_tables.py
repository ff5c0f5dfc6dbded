"""Diagnoses, warranty facts, advisories and device history in the store, on both backends.

Each test runs on SQLite and on PostgreSQL (the `store` fixture); records are compared whole.
"""

from __future__ import annotations

import dataclasses

from probelink.server.store import IncomingReport, Store
from probelink.server.store.base import AdvisoryRecord, DiagnosisRecord, WarrantyRecord
from tests.server.store.factories import SUMMARY, incoming

DOC = '{"schema":"probelink.diagnosis/v1","verdict":{"code":"healthy"},"note":"电池"}'


def _diagnosis(report_id: str, version: str = "v1", made_at_us: int = 1_000) -> DiagnosisRecord:
    return DiagnosisRecord(report_id, "d1", version, made_at_us, DOC.replace("电池", report_id))


def _advisory(
    advisory_id: str, device_id: str = "d1", code: str = "battery.health_pct:BAT0", at: int = 1
) -> AdvisoryRecord:
    return AdvisoryRecord(
        advisory_id=advisory_id,
        device_id=device_id,
        kind="trend",
        code=code,
        severity="advisory",
        text={"en": "Service reminder: battery", "zh-CN": "服务提醒：电池"},
        action="battery_replacement",
        report_id="r1",
        raised_at_us=at,
    )


# --- diagnoses ----------------------------------------------------------------------------


def test_a_diagnosis_is_stored_and_read_back_whole(store: Store) -> None:
    assert store.get_diagnosis("r1") is None
    store.put_diagnosis(_diagnosis("r1"))
    assert store.get_diagnosis("r1") == DiagnosisRecord(
        "r1", "d1", "v1", 1_000, DOC.replace("电池", "r1")
    )
    assert store.get_diagnosis("r2") is None


def test_putting_again_replaces_the_diagnosis(store: Store) -> None:
    store.put_diagnosis(_diagnosis("r1", "v1", 1_000))
    again = DiagnosisRecord("r1", "d1", "v2", 2_000, '{"schema":"probelink.diagnosis/v1"}')
    store.put_diagnosis(again)
    assert store.get_diagnosis("r1") == again
    assert store.count_diagnoses() == 1


def test_stale_diagnoses_are_those_of_other_rule_sets_by_report_id(store: Store) -> None:
    for report_id, version in [("r3", "old"), ("r1", "old"), ("r2", "new"), ("r4", "older")]:
        store.put_diagnosis(_diagnosis(report_id, version))
    assert store.stale_diagnoses("new", 10) == ["r1", "r3", "r4"]
    assert store.stale_diagnoses("new", 2) == ["r1", "r3"]
    assert store.stale_diagnoses("old", 10) == ["r2", "r4"]
    assert store.stale_diagnoses("none-of-them", 10) == ["r1", "r2", "r3", "r4"]
    assert store.count_diagnoses() == 4
    assert store.count_diagnoses("old") == 2
    assert store.count_diagnoses("new") == 1
    assert store.count_diagnoses("unknown") == 0
    # Recomputing one makes it current.
    store.put_diagnosis(_diagnosis("r1", "new", 5_000))
    assert store.stale_diagnoses("new", 10) == ["r3", "r4"]


# --- warranty facts ---------------------------------------------------------------------


def test_warranty_facts_round_trip_with_their_plans(store: Store) -> None:
    assert store.get_warranty("d1") is None
    record = WarrantyRecord(
        "d1", "2025-03-01", "CN", ("battery_renewal", "extended_warranty"), (), 1_700
    )
    store.set_warranty(record)
    assert store.get_warranty("d1") == record
    assert store.get_warranty("d2") is None


def test_setting_warranty_again_replaces_it(store: Store) -> None:
    store.set_warranty(WarrantyRecord("d1", "2025-03-01", "CN", ("battery_renewal",), (), 1))
    store.set_warranty(WarrantyRecord("d2", "2024-01-01", "US", (), (), 2))
    replaced = WarrantyRecord("d1", "2025-04-02", "EU", (), ("liquid_damage",), 3)
    store.set_warranty(replaced)
    assert store.get_warranty("d1") == replaced
    assert store.get_warranty("d2") == WarrantyRecord("d2", "2024-01-01", "US", (), (), 2)


# --- advisories ---------------------------------------------------------------------------


def test_an_advisory_is_recorded_once_per_device_and_code(store: Store) -> None:
    first = _advisory("adv_1")
    assert store.add_advisory(first) is True
    # Another id, the same device and code: not recorded, the first kept.
    assert (
        store.add_advisory(dataclasses.replace(first, advisory_id="adv_2", raised_at_us=9)) is False
    )
    assert store.list_advisories("d1", 10) == [first]
    # The same code on another device, and another code on this one, are new.
    assert store.add_advisory(_advisory("adv_3", device_id="d2")) is True
    assert store.add_advisory(_advisory("adv_4", code="storage.nvme_wear")) is True
    assert [a.advisory_id for a in store.list_advisories(None, 10)] == [
        "adv_4",
        "adv_3",
        "adv_1",
    ]


def test_undelivered_advisories_oldest_first_and_delivery_counts_once(store: Store) -> None:
    store.add_advisory(_advisory("adv_b", code="c2", at=20))
    store.add_advisory(_advisory("adv_a", code="c1", at=10))
    store.add_advisory(_advisory("adv_c", code="c3", at=20))
    store.add_advisory(_advisory("adv_x", device_id="d2", code="c1", at=5))
    assert [a.advisory_id for a in store.undelivered_advisories("d1")] == [
        "adv_a",
        "adv_b",
        "adv_c",
    ]
    assert store.mark_delivered("d1", ["adv_a", "adv_b"], 100) == 2
    # The first delivery counts: marking again changes nothing.
    assert store.mark_delivered("d1", ["adv_a"], 200) == 0
    assert store.mark_delivered("d1", [], 300) == 0
    # A device cannot mark another device's advisory, nor one that does not exist.
    assert store.mark_delivered("d1", ["adv_x", "adv_nope"], 400) == 0
    assert store.undelivered_advisories("d2") == [
        _advisory("adv_x", device_id="d2", code="c1", at=5)
    ]
    assert store.undelivered_advisories("d1") == [_advisory("adv_c", code="c3", at=20)]
    listed = {a.advisory_id: a.delivered_at_us for a in store.list_advisories(None, 10)}
    assert listed == {"adv_a": 100, "adv_b": 100, "adv_c": None, "adv_x": None}


def test_list_advisories_newest_first_with_a_limit(store: Store) -> None:
    for i, at in enumerate([30, 10, 20, 30]):
        store.add_advisory(_advisory(f"adv_{i}", code=f"c{i}", at=at))
    store.add_advisory(_advisory("adv_other", device_id="d2", at=40))
    # Newest first; a tie in time goes by id, descending.
    assert [a.advisory_id for a in store.list_advisories("d1", 10)] == [
        "adv_3",
        "adv_0",
        "adv_2",
        "adv_1",
    ]
    assert [a.advisory_id for a in store.list_advisories("d1", 2)] == ["adv_3", "adv_0"]
    assert [a.advisory_id for a in store.list_advisories(None, 2)] == ["adv_other", "adv_3"]
    assert store.list_advisories("d3", 10) == []
    # Read back whole, text as a language map.
    (other,) = store.list_advisories("d2", 10)
    assert other == _advisory("adv_other", device_id="d2", at=40)


# --- device history -----------------------------------------------------------------------


def _started(report_id: str, started_us: int, device_id: str = "d1") -> IncomingReport:
    item = incoming(report_id, device_id=device_id)
    return dataclasses.replace(item, summary=dataclasses.replace(SUMMARY, started_at_us=started_us))


def test_device_history_is_oldest_first_by_start_time_up_to_the_report(store: Store) -> None:
    # Received in another order than they started: history follows the reports' own time.
    batch = [
        _started("r3", 3_000),
        _started("r1", 1_000),
        _started("r4", 4_000),
        _started("r2", 2_000),
        _started("o1", 2_500, device_id="d2"),
    ]
    store.store_reports(batch, received_at_us=10)
    history = store.device_history("d1", 3_000, 10)
    assert [h.row.report_id for h in history] == ["r1", "r2", "r3"]
    assert [h.row.summary.started_at_us for h in history] == [1_000, 2_000, 3_000]
    # The newest `limit` of them, still oldest first.
    assert [h.row.report_id for h in store.device_history("d1", 4_000, 2)] == ["r3", "r4"]
    assert store.device_history("d1", 999, 10) == []
    assert [h.row.report_id for h in store.device_history("d2", 10_000, 10)] == ["o1"]
    # Whole stored reports, frame included, as get_report gives them.
    assert history[0] == store.get_report("r1")


def test_newest_report_id_is_by_start_time_not_arrival(store: Store) -> None:
    assert store.newest_report_id("d1") is None
    store.store_reports([_started("r2", 2_000), _started("o1", 9_000, device_id="d2")], 10)
    store.store_reports([_started("r1", 1_000)], 20)  # arrives last, started first
    assert store.newest_report_id("d1") == "r2"
    assert store.newest_report_id("d2") == "o1"
