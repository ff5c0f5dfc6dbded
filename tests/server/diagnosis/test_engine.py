"""The whole diagnosis on real reports: verdict, findings, actions with price and cover, trends.

Every report here is the real self-check run on a captured machine (tests/fixtures/machines)
with the real smartctl outputs; where a situation needs other readings (a battery wearing
over months, a family missing) the real report is copied and its typed fields edited, and
the test says so. Documents are compared as whole records wherever a record is small enough
to read; amounts are the exact decimal strings the schema promises.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from probelink.diagnosis_text import SCHEMA
from probelink.server.diagnosis.data import CatalogError
from probelink.server.diagnosis.engine import (
    NO_PURCHASE,
    Diagnoser,
    Document,
    PurchaseFacts,
    check_purchase,
    region_today,
)
from probelink.server.diagnosis.rules import RuleError
from probelink.server.diagnosis.service import Candidate, advisories_in
from probelink.server.diagnosis.trends import (
    Direction,
    Projection,
    battery_health_by_month,
    project,
)
from probelink.server.diagnosis.warranty import WarrantyError, add_months
from probelink.v1 import report_pb2, status_pb2
from tests.server.diagnosis.test_facts import machine_report

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
DIAGNOSER = Diagnoser.load()

STORAGE_RULES = (
    "storage.crc_errors",
    "storage.grown_defects",
    "storage.hot",
    "storage.media_errors",
    "storage.nvme_critical_warning",
    "storage.nvme_wear",
    "storage.pending",
    "storage.reallocated",
    "storage.uncorrectable",
)
BATTERY_RULES = ("battery.cycles_high", "battery.hot", "battery.not_present", "battery.worn")


def _timed(report: report_pb2.Report, at: datetime) -> report_pb2.Report:
    """`report` started at `at` and finished 41 ms later (the self-check stamps wall time)."""
    report.started_at.FromDatetime(at)
    report.finished_at.FromDatetime(at + timedelta(milliseconds=41))
    return report


def _diagnose(
    report: report_pb2.Report,
    *,
    purchase: PurchaseFacts = NO_PURCHASE,
    history: list[report_pb2.Report] | None = None,
    diagnoser: Diagnoser = DIAGNOSER,
    now: datetime = NOW,
    at: datetime | None = None,
) -> Document:
    """The diagnosis made at `now`; without history the report is stamped `at` (an hour
    before `now` by default), since the self-check stamped it with the wall clock."""
    if history is None:
        _timed(report, at or now - timedelta(hours=1))
    return diagnoser.diagnose(
        report,
        report_id="r-test",
        device_id="d-test",
        now=now,
        history=history or [],
        purchase=purchase,
    )


def _money(amount: str, currency: str) -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def _bought(days_ago: int, region: str, *plans: str) -> PurchaseFacts:
    """Purchase facts as a desk records them, `days_ago` days before NOW."""
    return PurchaseFacts(TODAY - timedelta(days=days_ago), region, plans, (), "device")


def _laptop() -> report_pb2.Report:
    # 62 % health, 734 cycles: a LENOVO 20XW00GMUS (ThinkPad X1 Carbon Gen 9) in the catalog.
    return machine_report("laptop-worn-battery")


WORN_FINDING = {
    "rule_id": "battery.worn",
    "family": "battery",
    "severity": "major",
    "text": {
        "en": "The battery holds 62 % of its design capacity, below the 80 % this model needs; "
        "it is worn and should be replaced.",
        "zh-CN": "电池容量仅为设计容量的 62%，低于本机型要求的 80%，电池已老化，建议更换。",
    },
    "evidence": {"health": 62.0, "minimum": 80.0},
    "action": "battery_replacement",
}

BATTERY_TITLE = {"en": "Replace the battery", "zh-CN": "更换电池"}
NO_STEPS: dict[str, list[str]] = {"en": [], "zh-CN": []}


def _totals_add_up(doc: Document) -> None:
    """totals are the exact Decimal sums of the actions' amounts, in the document's currency."""
    currency = doc["warranty"]["currency"]
    for key in ("list_price", "customer_pays"):
        amounts = [Decimal(a[key]["amount"]) for a in doc["actions"]]
        assert {a[key]["currency"] for a in doc["actions"]} <= {currency}
        assert doc["totals"][key] == _money(f"{sum(amounts, Decimal(0)):.2f}", currency)


# --- the "Done when" cases: worn battery in and out of warranty ---------------------------


def test_worn_battery_with_a_renewal_plan_is_covered_and_free() -> None:
    # 18 months: the maker's 12 months on the battery are over; the 24-month plan is not,
    # and the measured 62 % is below the plan's 80 %.
    purchase = _bought(540, "CN", "battery_renewal")
    doc = _diagnose(_laptop(), purchase=purchase)
    plan_end = (TODAY - timedelta(days=540)).replace(year=TODAY.year)  # purchase + 24 months
    assert doc["device"] == {
        "manufacturer": "LENOVO",
        "model": "20XW00GMUS",
        "kind": "laptop",
        "model_known": True,
    }
    assert doc["verdict"] == {
        "code": "repair_recommended",
        "text": {"en": "A repair is recommended.", "zh-CN": "建议维修。"},
    }
    assert doc["findings"] == [WORN_FINDING]
    assert doc["not_judged"] == []
    assert doc["actions"] == [
        {
            "id": "battery_replacement",
            "kind": "service",
            "title": BATTERY_TITLE,
            "steps": NO_STEPS,
            "for_findings": ["battery.worn"],
            "list_price": _money("399.00", "CNY"),
            "coverage": {
                "covered": True,
                "remedy": "repair",
                "term_id": "battery_renewal",
                "term": {
                    "en": f"Battery renewal plan: battery until {plan_end.isoformat()}",
                    "zh-CN": f"电池焕新计划：保修至 {plan_end.isoformat()}",
                },
                "customer_pays": _money("0.00", "CNY"),
            },
            "customer_pays": _money("0.00", "CNY"),
            "problem": None,
        }
    ]
    assert doc["totals"] == {
        "list_price": _money("399.00", "CNY"),
        "customer_pays": _money("0.00", "CNY"),
    }
    assert doc["warranty"] == {
        "purchase_date": (TODAY - timedelta(days=540)).isoformat(),
        "region": "CN",
        "plans": ["battery_renewal"],
        "exclusions": [],
        "currency": "CNY",
        "source": "device",
        "problem": None,
    }


def test_worn_battery_out_of_warranty_pays_the_published_price() -> None:
    purchase = PurchaseFacts(date(2021, 1, 15), "CN", (), (), "device")
    doc = _diagnose(_laptop(), purchase=purchase)
    assert doc["verdict"]["code"] == "repair_recommended"
    assert doc["actions"] == [
        {
            "id": "battery_replacement",
            "kind": "service",
            "title": BATTERY_TITLE,
            "steps": NO_STEPS,
            "for_findings": ["battery.worn"],
            "list_price": _money("399.00", "CNY"),
            "coverage": {
                "covered": False,
                "remedy": "none",
                "term_id": "not_covered",
                "term": {
                    "en": "not covered: Maker's limited warranty (laptop) ended 2022-01-15",
                    "zh-CN": "不在保修范围内",
                },
                "customer_pays": _money("399.00", "CNY"),
            },
            "customer_pays": _money("399.00", "CNY"),
            "problem": None,
        }
    ]
    assert doc["totals"] == {
        "list_price": _money("399.00", "CNY"),
        "customer_pays": _money("399.00", "CNY"),
    }
    _totals_add_up(doc)


def test_an_expired_renewal_plan_does_not_cover() -> None:
    # Bought 3 years ago: the 24-month plan is over too, and the text says both ended.
    bought = date(2023, 2, 1)
    doc = _diagnose(
        _laptop(), purchase=PurchaseFacts(bought, "CN", ("battery_renewal",), (), "device")
    )
    (action,) = doc["actions"]
    assert action["coverage"]["term"]["en"] == (
        "not covered: Maker's limited warranty (laptop) ended 2024-02-01; "
        "Battery renewal plan ended 2025-02-01"
    )
    assert action["customer_pays"] == _money("399.00", "CNY")


def test_without_purchase_facts_prices_are_list_prices_in_the_default_currency() -> None:
    doc = _diagnose(_laptop())
    (action,) = doc["actions"]
    assert (action["list_price"], action["coverage"], action["customer_pays"]) == (
        _money("109.00", "USD"),
        None,
        _money("109.00", "USD"),
    )
    assert doc["warranty"] == {
        "purchase_date": None,
        "region": None,
        "plans": [],
        "exclusions": [],
        "currency": "USD",
        "source": "none",
        "problem": {
            "en": "No purchase date and region on record: prices are list prices; "
            "record them with `probelink-server device warranty` to judge cover.",
            "zh-CN": "没有购买日期和地区记录：显示的是公开价格；"
            "用 `probelink-server device warranty` 记录后即可判断保修。",
        },
    }
    eur = _diagnose(_laptop(), diagnoser=Diagnoser.load(default_currency="EUR"))
    assert eur["totals"]["customer_pays"] == _money("99.00", "EUR")


def test_a_currency_without_published_prices_gives_no_total_and_says_why() -> None:
    # JPY is a real ISO code, but the shipped catalog publishes no JPY prices.
    doc = _diagnose(_laptop(), diagnoser=Diagnoser.load(default_currency="JPY"))
    (action,) = doc["actions"]
    assert (action["list_price"], action["customer_pays"]) == (None, None)
    assert action["problem"] == {
        "en": "No published price in JPY for this service.",
        "zh-CN": "此项服务没有以 JPY 公布的价格。",
    }
    assert doc["totals"] == {"list_price": None, "customer_pays": None}


def test_totals_add_up_over_several_actions_with_mixed_cover() -> None:
    # The desktop: pending + reallocated sectors on /dev/sda, a stopped fan, CRC errors on
    # /dev/sdb. Bought a year ago in China: the maker's 24 months cover the drive and fan
    # (main parts of a desktop); a backup is not a repair; reseating a cable is self-help.
    doc = _diagnose(machine_report("desktop-no-battery"), purchase=_bought(365, "CN"))
    assert [(a["id"], a["kind"], a["for_findings"]) for a in doc["actions"]] == [
        ("data_backup", "service", ["storage.pending"]),
        ("storage_replacement", "service", ["storage.reallocated"]),
        ("fan_cleaning", "service", ["thermal.fan_alarm"]),
        ("reseat_drive_cable", "self_help", ["storage.crc_errors"]),
    ]
    summary = [
        (
            a["id"],
            a["list_price"]["amount"],
            a["coverage"]["term_id"],
            a["coverage"]["remedy"],
            a["customer_pays"]["amount"],
        )
        for a in doc["actions"]
    ]
    assert summary == [
        ("data_backup", "99.00", "not_a_repair", "none", "99.00"),
        ("storage_replacement", "579.00", "maker_desktop", "repair", "0.00"),
        ("fan_cleaning", "119.00", "maker_desktop", "repair", "0.00"),
        ("reseat_drive_cable", "0.00", "self_help", "none", "0.00"),
    ]
    assert doc["totals"] == {
        "list_price": _money("797.00", "CNY"),
        "customer_pays": _money("99.00", "CNY"),
    }
    _totals_add_up(doc)
    (reseat,) = [a for a in doc["actions"] if a["id"] == "reseat_drive_cable"]
    assert reseat["steps"]["en"][0] == "Back up your data first."
    assert len(reseat["steps"]["en"]) == len(reseat["steps"]["zh-CN"]) == 4


# --- phones: China's three guarantees, and the EU's legal guarantee --------------------------


def _phone_with_failing_storage() -> report_pb2.Report:
    """The phone's real self-check, fed the real ata-reallocated smartctl output.

    No shipped rule judges a phone's screen or charging port, and the phone's own eMMC has
    no SMART counters; storage is a main part of a phone (models.toml), so a drive with
    reallocated sectors is the honest way to a main-unit repair on the real phone report.
    """
    return machine_report("phone-charge-units", "ata-reallocated")


def _storage_action(doc: Document) -> dict[str, Any]:
    actions: list[dict[str, Any]] = doc["actions"]
    (action,) = [a for a in actions if a["id"] == "storage_replacement"]
    return action


def test_phone_within_the_exchange_window_is_exchanged() -> None:
    doc = _diagnose(_phone_with_failing_storage(), purchase=_bought(10, "CN"))
    last_day = TODAY + timedelta(days=5)  # bought 10 days ago, exchange within 15
    assert doc["device"]["kind"] == "phone"
    assert [(f["rule_id"], f["severity"]) for f in doc["findings"]] == [
        ("storage.pending", "major"),
        ("storage.reallocated", "major"),
    ]
    assert _storage_action(doc) == {
        "id": "storage_replacement",
        "kind": "service",
        "title": {"en": "Replace the storage drive", "zh-CN": "更换存储设备"},
        "steps": NO_STEPS,
        "for_findings": ["storage.reallocated"],
        "list_price": _money("579.00", "CNY"),
        "coverage": {
            "covered": True,
            "remedy": "exchange",
            "term_id": "cn_three_guarantees",
            "term": {
                "en": "China three guarantees: exchange within 15 days (day 10)",
                "zh-CN": f"三包：{last_day.isoformat()} 前可换货",
            },
            "customer_pays": _money("0.00", "CNY"),
        },
        "customer_pays": _money("0.00", "CNY"),
        "problem": None,
    }
    _totals_add_up(doc)


@pytest.mark.parametrize(
    ("days", "remedy", "term_en", "term_zh"),
    [
        # The zh-CN text gives the last day: purchase + 7 (return) or + 15 (exchange).
        (0, "return", "China three guarantees: return within 7 days (day 0)",
         "三包：{:%Y-%m-%d} 前可退货", ),
        (7, "return", "China three guarantees: return within 7 days (day 7)",
         "三包：{:%Y-%m-%d} 前可退货"),
        (8, "exchange", "China three guarantees: exchange within 15 days (day 8)",
         "三包：{:%Y-%m-%d} 前可换货"),
        (15, "exchange", "China three guarantees: exchange within 15 days (day 15)",
         "三包：{:%Y-%m-%d} 前可换货"),
    ],
)  # fmt: skip
def test_phone_statutory_windows_include_their_last_day(
    days: int, remedy: str, term_en: str, term_zh: str
) -> None:
    action = _storage_action(_diagnose(_phone_with_failing_storage(), purchase=_bought(days, "CN")))
    window = 7 if remedy == "return" else 15
    last_day = TODAY - timedelta(days=days) + timedelta(days=window)
    assert action["coverage"] == {
        "covered": True,
        "remedy": remedy,
        "term_id": "cn_three_guarantees",
        "term": {"en": term_en, "zh-CN": term_zh.format(last_day)},
        "customer_pays": _money("0.00", "CNY"),
    }
    assert action["customer_pays"] == _money("0.00", "CNY")


def test_phone_after_the_exchange_window_is_repaired_under_three_guarantees() -> None:
    bought = TODAY - timedelta(days=16)
    doc = _diagnose(
        _phone_with_failing_storage(), purchase=PurchaseFacts(bought, "CN", (), (), "device")
    )
    coverage = _storage_action(doc)["coverage"]
    assert coverage == {
        "covered": True,
        "remedy": "repair",
        "term_id": "cn_three_guarantees",
        "term": {
            "en": "China three guarantees: main unit repair until "
            f"{bought.replace(year=bought.year + 1).isoformat()}",
            "zh-CN": f"三包：保修至 {bought.replace(year=bought.year + 1).isoformat()}",
        },
        "customer_pays": _money("0.00", "CNY"),
    }


def test_an_exclusion_voids_the_exchange() -> None:
    facts = PurchaseFacts(TODAY - timedelta(days=10), "CN", (), ("liquid_damage",), "device")
    action = _storage_action(_diagnose(_phone_with_failing_storage(), purchase=facts))
    assert action["coverage"] == {
        "covered": False,
        "remedy": "none",
        "term_id": "excluded",
        "term": {"en": "excluded: liquid damage", "zh-CN": "不在保修范围内（除外条款）"},
        "customer_pays": _money("579.00", "CNY"),
    }


def test_eu_legal_guarantee_covers_in_euros_for_two_years() -> None:
    bought = date(2024, 9, 1)  # 18 months before NOW: past the maker's 12, inside the EU's 24
    doc = _diagnose(_laptop(), purchase=PurchaseFacts(bought, "EU", (), (), "device"))
    (action,) = doc["actions"]
    assert (action["list_price"], action["customer_pays"]) == (
        _money("99.00", "EUR"),
        _money("0.00", "EUR"),
    )
    assert action["coverage"] == {
        "covered": True,
        "remedy": "repair",
        "term_id": "eu_legal_guarantee",
        "term": {
            "en": "EU two-year legal guarantee: battery repair until 2026-09-01",
            "zh-CN": "欧盟两年法定保修：保修至 2026-09-01",
        },
        "customer_pays": _money("0.00", "EUR"),
    }
    assert doc["warranty"]["currency"] == "EUR"
    late = _diagnose(_laptop(), purchase=PurchaseFacts(date(2023, 9, 1), "EU", (), (), "device"))
    (action,) = late["actions"]
    assert action["coverage"]["term"]["en"] == (
        "not covered: EU two-year legal guarantee ended 2025-09-01; "
        "Maker's limited warranty (laptop) ended 2024-09-01"
    )
    assert late["totals"]["customer_pays"] == _money("99.00", "EUR")


def test_eu_phone_has_no_chinese_exchange_window() -> None:
    action = _storage_action(_diagnose(_phone_with_failing_storage(), purchase=_bought(10, "EU")))
    assert (action["coverage"]["remedy"], action["coverage"]["term_id"]) == (
        "repair",
        "eu_legal_guarantee",
    )
    assert action["list_price"] == _money("119.00", "EUR")


# --- storage rules from the smartctl fixtures ---------------------------------------------


def _storage_findings(doc: Document) -> list[tuple[str, str, Any, str]]:
    return [
        (f["rule_id"], f["severity"], f["evidence"], f["action"])
        for f in doc["findings"]
        if f["family"] == "storage"
    ]


@pytest.mark.parametrize(
    ("smartctl", "expected"),
    [
        (
            "ata-reallocated",
            [
                ("storage.pending", "major", {"drives": ["ST2000DM008-2FR102 /dev/sda: 2"]},
                 "data_backup"),
                ("storage.reallocated", "major", {"drives": ["ST2000DM008-2FR102 /dev/sda: 8"]},
                 "storage_replacement"),
            ],
        ),
        (
            "nvme-worn",
            [
                ("storage.nvme_wear", "advisory",
                 {"drives": ["INTEL SSDPEKNW010T8 /dev/nvme1: 92 %"], "limit": 90.0},
                 "storage_replacement"),
            ],
        ),
        (
            "ata-crc-errors",
            [
                ("storage.crc_errors", "minor",
                 {"drives": ["Samsung SSD 860 EVO 500GB /dev/sdb: 147"]}, "reseat_drive_cable"),
            ],
        ),
        (
            "scsi-grown-defects",
            [
                ("storage.grown_defects", "major",
                 {"drives": ["SEAGATE ST4000NM0023 /dev/sdc: 37"]}, "storage_replacement"),
            ],
        ),
        (
            "nvme-critical-warning",
            [
                ("storage.nvme_critical_warning", "critical",
                 {"drives": ["WDC PC SN530 SDBPNPZ-512G-1006 /dev/nvme0: warning bits 4"]},
                 "data_backup"),
                ("storage.media_errors", "major",
                 {"drives": ["WDC PC SN530 SDBPNPZ-512G-1006 /dev/nvme0: 23"]},
                 "storage_replacement"),
            ],
        ),
        ("ata-healthy", []),
        ("nvme-healthy", []),
    ],
)  # fmt: skip
def test_each_smartctl_fixture_gets_its_storage_rule(
    smartctl: str, expected: list[tuple[str, str, Any, str]]
) -> None:
    doc = _diagnose(machine_report("laptop-worn-battery", smartctl))
    assert _storage_findings(doc) == expected
    assert doc["not_judged"] == []


def test_findings_are_most_severe_first_and_a_critical_one_is_urgent() -> None:
    doc = _diagnose(machine_report("laptop-worn-battery", "nvme-critical-warning"))
    assert [(f["severity"], f["rule_id"]) for f in doc["findings"]] == [
        ("critical", "storage.nvme_critical_warning"),
        ("major", "battery.worn"),
        ("major", "storage.media_errors"),
    ]
    assert doc["verdict"] == {
        "code": "urgent",
        "text": {
            "en": "Needs service now: a part is failing.",
            "zh-CN": "需要立即维修：有部件正在失效。",
        },
    }
    # One action per distinct action, in the order of the findings that call for it.
    assert [(a["id"], a["for_findings"]) for a in doc["actions"]] == [
        ("data_backup", ["storage.nvme_critical_warning"]),
        ("battery_replacement", ["battery.worn"]),
        ("storage_replacement", ["storage.media_errors"]),
    ]


def test_crc_errors_are_free_self_help_with_steps() -> None:
    doc = _diagnose(
        machine_report("laptop-worn-battery", "ata-crc-errors"), purchase=_bought(30, "CN")
    )
    (reseat,) = [a for a in doc["actions"] if a["id"] == "reseat_drive_cable"]
    assert reseat["kind"] == "self_help"
    assert reseat["list_price"] == reseat["customer_pays"] == _money("0.00", "CNY")
    assert reseat["coverage"] == {
        "covered": False,
        "remedy": "none",
        "term_id": "self_help",
        "term": {"en": "self-help: no charge", "zh-CN": "自助操作：免费"},
        "customer_pays": _money("0.00", "CNY"),
    }
    assert reseat["steps"]["en"][-1].startswith("Run the check again")
    assert len(reseat["steps"]["zh-CN"]) == len(reseat["steps"]["en"])


def _healthy_battery(report: report_pb2.Report, health: float) -> report_pb2.Report:
    for result in report.results:
        if result.WhichOneof("data") == "battery":
            result.battery.health_pct = health
    return report


def test_a_hot_battery_is_sent_for_a_free_inspection_under_the_makers_warranty() -> None:
    # The laptop with a new battery (edited to 95 %) read at 58 °C (edited): battery.hot.
    report = _healthy_battery(machine_report("laptop-worn-battery", "nvme-healthy"), 95)
    (battery,) = [r for r in report.results if r.HasField("battery")]
    battery.battery.temp_celsius = 58.0
    doc = _diagnose(report, purchase=_bought(30, "CN"))
    until = add_months(TODAY - timedelta(days=30), 12).isoformat()
    assert [(f["rule_id"], f["severity"], f["action"]) for f in doc["findings"]] == [
        ("battery.hot", "major", "battery_inspection")
    ]
    assert doc["actions"] == [
        {
            "id": "battery_inspection",
            "kind": "service",
            "title": {
                "en": "Inspect the battery at the service desk",
                "zh-CN": "到服务网点检测电池",
            },
            "steps": NO_STEPS,
            "for_findings": ["battery.hot"],
            "list_price": _money("0.00", "CNY"),
            "coverage": {
                "covered": True,
                "remedy": "repair",
                "term_id": "maker_laptop",
                "term": {
                    "en": f"Maker's limited warranty (laptop): battery repair until {until}",
                    "zh-CN": f"厂商有限保修（笔记本电脑）：保修至 {until}",
                },
                "customer_pays": _money("0.00", "CNY"),
            },
            "customer_pays": _money("0.00", "CNY"),
            "problem": None,
        }
    ]
    _totals_add_up(doc)


def test_an_advisory_alone_is_attention_and_a_clean_report_is_healthy() -> None:
    # The laptop with a new battery (edited to 95 %): only the SSD wear advisory is left.
    worn_ssd = _diagnose(_healthy_battery(machine_report("laptop-worn-battery", "nvme-worn"), 95))
    assert [f["rule_id"] for f in worn_ssd["findings"]] == ["storage.nvme_wear"]
    assert worn_ssd["verdict"]["code"] == "attention"
    clean = _diagnose(_healthy_battery(machine_report("laptop-worn-battery", "nvme-healthy"), 95))
    assert (clean["findings"], clean["not_judged"], clean["actions"]) == ([], [], [])
    assert clean["verdict"] == {
        "code": "healthy",
        "text": {"en": "No problems found.", "zh-CN": "未发现问题。"},
    }
    assert clean["totals"] == {
        "list_price": _money("0.00", "USD"),
        "customer_pays": _money("0.00", "USD"),
    }


# --- what could not be judged -----------------------------------------------------------------


def _without(report: report_pb2.Report, *categories: int) -> report_pb2.Report:
    kept = [r for r in report.results if r.category not in categories]
    del report.results[:]
    report.results.extend(kept)
    return report


def test_a_report_missing_whole_families_could_not_be_judged() -> None:
    # The laptop's real report with every battery and storage result removed.
    report = _without(_laptop(), status_pb2.CATEGORY_BATTERY, status_pb2.CATEGORY_STORAGE)
    doc = _diagnose(report)
    assert doc["findings"] == []
    assert doc["verdict"] == {
        "code": "could_not_judge",
        "text": {
            "en": "Could not judge: battery, storage could not be checked.",
            "zh-CN": "无法判断：电池、存储未能检查。",
        },
    }
    family_zh = {"battery": "电池", "storage": "存储"}
    expected = [
        {
            "rule_id": rule_id,
            "family": rule_id.split(".")[0],
            "device": None,
            "reason": "missing",
            "text": {
                "en": f"Could not judge: the report has no {rule_id.split('.')[0]} data",
                "zh-CN": f"无法判断：报告中没有{family_zh[rule_id.split('.')[0]]}数据",
            },
        }
        for rule_id in sorted(BATTERY_RULES + STORAGE_RULES)
    ]
    assert doc["not_judged"] == expected
    assert (doc["actions"], doc["trends"]) == ([], [])
    assert doc["totals"] == {
        "list_price": _money("0.00", "USD"),
        "customer_pays": _money("0.00", "USD"),
    }


def test_a_finding_outranks_what_could_not_be_judged() -> None:
    # Storage missing but the battery is worn: the verdict is the finding's, with the
    # storage rules still listed as not judged.
    doc = _diagnose(_without(_laptop(), status_pb2.CATEGORY_STORAGE))
    assert doc["verdict"]["code"] == "repair_recommended"
    assert [n["rule_id"] for n in doc["not_judged"]] == list(STORAGE_RULES)
    assert {n["reason"] for n in doc["not_judged"]} == {"missing"}


def test_a_family_whose_only_drive_could_not_be_read_is_unreadable() -> None:
    # The laptop fed open-failed.json, keeping only that smartctl result in its storage
    # family: a machine whose one drive could not be opened.
    report = machine_report("laptop-worn-battery", "open-failed")
    kept = [
        r
        for r in report.results
        if r.category != status_pb2.CATEGORY_STORAGE or r.probe == "storage.smart"
    ]
    del report.results[:]
    report.results.extend(kept)
    doc = _diagnose(report)
    why = (
        "smartctl could not open /dev/sdz: Smartctl open device: /dev/sdz failed: "
        "No such device; drive health could not be judged"
    )
    assert doc["not_judged"] == [
        {
            "rule_id": rule_id,
            "family": "storage",
            "device": None,
            "reason": "unreadable",
            "text": {
                "en": f"Could not judge: storage could not be read: {why}",
                "zh-CN": f"无法判断：无法读取存储：{why}",
            },
        }
        for rule_id in STORAGE_RULES
    ]
    assert doc["verdict"]["code"] == "repair_recommended"  # the worn battery still counts


def test_desktop_without_a_battery_has_no_battery_rules_at_all() -> None:
    doc = _diagnose(machine_report("desktop-no-battery"))
    assert not [n for n in doc["not_judged"] if n["family"] == "battery"]
    assert not [f for f in doc["findings"] if f["family"] == "battery"]
    assert doc["device"]["kind"] == "desktop"
    assert all(t["metric"] != "battery.health_pct" for t in doc["trends"])


# --- trends and the advisories they raise -----------------------------------------------

# Six months of roughly monthly reports from a battery wearing ~1.4 points a month, with a
# little scatter as real gauges have; cycles rise 15 a report.
WEAR = [96.0, 94.7, 93.1, 91.9, 90.4, 89.1, 87.5, 86.2]
SCATTER = [0.1, -0.1, 0.15, -0.05, 0.0, 0.1, -0.1, 0.05]
HISTORY_START = datetime(2025, 8, 20, 9, 0, tzinfo=UTC)
STEP = timedelta(days=26)


def _wearing_history(count: int = len(WEAR)) -> list[report_pb2.Report]:
    """`count` copies of the laptop's real report, edited: times, battery health, cycles."""
    reports = []
    for i in range(count):
        report = _timed(_laptop(), HISTORY_START + i * STEP)
        for result in report.results:
            if result.WhichOneof("data") == "battery":
                result.battery.health_pct = WEAR[i] + SCATTER[i]
                result.battery.cycle_count = 600 + 15 * i
        reports.append(report)
    return reports


def _battery_trend(doc: Document, x_unit: str) -> dict[str, Any]:
    trends: list[dict[str, Any]] = doc["trends"]
    (trend,) = [t for t in trends if t["metric"] == "battery.health_pct" and t["x_unit"] == x_unit]
    return trend


def test_a_wearing_battery_gets_a_dated_projection_with_an_interval() -> None:
    reports = _wearing_history()
    now = HISTORY_START + 7 * STEP + timedelta(days=1)
    doc = _diagnose(reports[-1], history=reports[:-1], now=now)
    trend = _battery_trend(doc, "days")
    assert (trend["subject"], trend["unit"], trend["direction"], trend["threshold"]) == (
        "BAT0",
        "%",
        "falling",
        80.0,
    )
    assert trend["reason"] is None
    assert [p["at"] for p in trend["points"]] == [
        (HISTORY_START + i * STEP).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(8)
    ]
    assert [p["x"] for p in trend["points"]] == [26.0 * i for i in range(8)]
    assert [p["y"] for p in trend["points"]] == pytest.approx(
        [w + s for w, s in zip(WEAR, SCATTER, strict=True)]
    )
    # The engine's projection is trends.project's on the same series, date for date.
    expected = project(battery_health_by_month(reports), 80.0, Direction.FALLING, now)
    assert isinstance(expected, Projection)
    assert expected.at is not None and expected.low_at is not None
    assert expected.high_at is not None
    projection = trend["projection"]
    assert projection == {
        "at": expected.at.date().isoformat(),
        "low_at": expected.low_at.date().isoformat(),
        "high_at": expected.high_at.date().isoformat(),
        "at_x": expected.at_x,
        "low_x": expected.low_x,
        "high_x": expected.high_x,
        "remaining": expected.remaining,
        "remaining_low": expected.remaining_low,
        "remaining_high": expected.remaining_high,
        "confidence": 0.9,
        "fit": {
            "slope": expected.fit.slope,
            "intercept": expected.fit.intercept,
            "r_squared": expected.fit.r_squared,
        },
    }
    # What the numbers mean: falling ~0.054 %/day, about 4 months left, an honest interval.
    assert projection["fit"]["slope"] == pytest.approx(-1.4 / 26, rel=0.05)
    assert projection["fit"]["r_squared"] > 0.99
    assert 90 < projection["remaining"] < 150
    assert projection["remaining_low"] < projection["remaining"] < projection["remaining_high"]
    assert projection["low_at"] < projection["at"] < projection["high_at"]
    months = round(projection["remaining"] / (365.2425 / 12))
    assert trend["text"]["en"].startswith(f"battery will reach 80 % in about {months} months")
    assert trend["text"]["zh-CN"].startswith(f"电池预计约 {months} 个月后降至 80 %")
    # On the cycle axis there is a projection too, but no calendar dates.
    by_cycle = _battery_trend(doc, "cycles")
    assert by_cycle["projection"] is not None
    assert [by_cycle["projection"][k] for k in ("at", "low_at", "high_at")] == [None] * 3
    assert [p["x"] for p in by_cycle["points"]] == [600.0 + 15 * i for i in range(8)]


def test_too_little_history_says_so_and_projects_nothing() -> None:
    reports = _wearing_history(3)
    now = HISTORY_START + 2 * STEP + timedelta(days=1)
    doc = _diagnose(reports[-1], history=reports[:-1], now=now)
    trend = _battery_trend(doc, "days")
    assert (trend["projection"], trend["reason"]) == (None, "too_little_history")
    assert trend["text"] == {
        "en": "too little history: 3 reports over 52 days; "
        "a projection needs at least 4 over 30 days",
        "zh-CN": "历史数据太少：52 天内 3 份报告；预测至少需要 30 天内 4 份",
    }
    assert advisories_in(doc, 10_000.0) == []


def test_a_trend_advisory_is_raised_only_within_the_horizon() -> None:
    reports = _wearing_history()
    now = HISTORY_START + 7 * STEP + timedelta(days=1)
    doc = _diagnose(reports[-1], history=reports[:-1], now=now)
    trend = _battery_trend(doc, "days")
    remaining = trend["projection"]["remaining"]
    assert advisories_in(doc, remaining - 1) == []
    assert advisories_in(doc, remaining) == [
        Candidate(
            kind="trend",
            code="battery.health_pct:BAT0",
            severity="advisory",
            text={
                "en": f"Service reminder: {trend['text']['en']}.",
                "zh-CN": f"服务提醒：{trend['text']['zh-CN']}。",
            },
            action="battery_replacement",
        )
    ]


def test_an_advisory_finding_raises_an_advisory_whatever_the_horizon() -> None:
    doc = _diagnose(_healthy_battery(machine_report("laptop-worn-battery", "nvme-worn"), 95))
    (finding,) = doc["findings"]
    assert advisories_in(doc, 0.0) == [
        Candidate(
            kind="finding",
            code="storage.nvme_wear",
            severity="advisory",
            text=finding["text"],
            action="storage_replacement",
        )
    ]


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        (
            PurchaseFacts(TODAY + timedelta(days=1), "CN"),
            f"purchase date {(TODAY + timedelta(days=1)).isoformat()} is in the future "
            f"(today is {TODAY.isoformat()}); check the date on the receipt",
        ),
        (
            PurchaseFacts(date(2025, 1, 1), "XX"),
            "unknown region 'XX'; known regions: CN, EU, US",
        ),
        (
            PurchaseFacts(date(2025, 1, 1), "CN", ("gold_care",)),
            "unknown plan 'gold_care'; known plans: accidental_screen, battery_renewal, "
            "extended_warranty",
        ),
        (
            PurchaseFacts(date(2025, 1, 1), "CN", (), ("dropped",)),
            "unknown exclusion 'dropped'; known exclusions: accidental_damage, liquid_damage, "
            "unauthorised_repair",
        ),
        (
            PurchaseFacts(date(2025, 1, 1), None),
            "give both the purchase date and the region, or neither",
        ),
        (PurchaseFacts(None, "CN"), "give both the purchase date and the region, or neither"),
    ],
)
def test_bad_purchase_facts_are_refused_with_the_fix(facts: PurchaseFacts, message: str) -> None:
    with pytest.raises(WarrantyError) as caught:
        check_purchase(facts, DIAGNOSER.warranty, TODAY)
    assert str(caught.value) == message


def test_good_purchase_facts_pass_the_check() -> None:
    check_purchase(NO_PURCHASE, DIAGNOSER.warranty, TODAY)
    check_purchase(_bought(0, "CN", "battery_renewal"), DIAGNOSER.warranty, TODAY)


RULE = """
[[rule]]
id = "{rule_id}"
family = "battery"
severity = "minor"
condition = '{condition}'
action = "{action}"
[rule.evidence]
health = "battery.health_pct"
[rule.text]
en = "Battery {{health}} %."
"zh-CN" = "电池 {{health}}%。"
"""


def _rules_dir(tmp_path: Path, rule_id: str, condition: str, action: str) -> Path:
    folder = tmp_path / "operator-rules"
    folder.mkdir(exist_ok=True)
    text = RULE.format(rule_id=rule_id, condition=condition, action=action)
    (folder / "local.toml").write_text(text, encoding="utf-8")
    return folder


def test_a_rule_recommending_an_unknown_action_is_refused_naming_rule_and_file(
    tmp_path: Path,
) -> None:
    folder = _rules_dir(tmp_path, "battery.teleport", "battery.health_pct < 90.0", "teleport")
    with pytest.raises(RuleError) as caught:
        Diagnoser.load(folder)
    message = str(caught.value)
    assert message.startswith(f"{folder / 'local.toml'}:3: rule battery.teleport recommends ")
    assert "unknown action 'teleport'" in message
    assert "battery_replacement" in message  # the catalog's actions are listed as the fix


def test_an_unknown_default_currency_is_refused() -> None:
    with pytest.raises(CatalogError) as caught:
        Diagnoser.load(default_currency="XYZ")
    assert str(caught.value) == "unknown currency 'XYZ'; use an ISO 4217 code such as USD"


def test_division_by_zero_is_an_error_for_that_rule_only(tmp_path: Path) -> None:
    folder = _rules_dir(
        tmp_path, "battery.wear_rate", "div(battery.health_pct, 0) > 1.0", "battery_replacement"
    )
    doc = _diagnose(_laptop(), diagnoser=Diagnoser.load(folder))
    (broken,) = doc["not_judged"]
    assert (broken["rule_id"], broken["family"], broken["reason"]) == (
        "battery.wear_rate",
        "battery",
        "error",
    )
    assert "ZeroDivisionError" in broken["text"]["en"]
    assert "division by zero" in broken["text"]["en"]
    assert broken["text"]["zh-CN"].startswith("无法判断：")
    # Every other rule still judged the report.
    assert doc["findings"] == [WORN_FINDING]
    assert doc["verdict"]["code"] == "repair_recommended"


def test_prices_warranty_and_the_default_currency_change_the_version_too() -> None:
    # A stored diagnosis quotes prices and cover: new catalogs make it stale like new rules.
    shipped = DIAGNOSER
    assert Diagnoser.load(default_currency="EUR").version != shipped.version
    same_rules = Diagnoser(
        shipped.rules, shipped.models, shipped.actions, shipped.warranty, catalogs_version="x"
    )
    other_prices = Diagnoser(
        shipped.rules, shipped.models, shipped.actions, shipped.warranty, catalogs_version="y"
    )
    assert same_rules.version != other_prices.version
    assert shipped.rules.version not in (same_rules.version, shipped.version)


def test_an_operator_rule_changes_the_ruleset_version(tmp_path: Path) -> None:
    folder = _rules_dir(tmp_path, "battery.worn", "battery.health_pct < 70.0", "battery_inspection")
    operator = Diagnoser.load(folder)
    assert operator.version != DIAGNOSER.version
    assert Diagnoser.load().version == DIAGNOSER.version  # the version is stable
    doc = _diagnose(_laptop(), diagnoser=operator)
    assert doc["ruleset_version"] == operator.version
    assert [(f["rule_id"], f["severity"], f["action"]) for f in doc["findings"]] == [
        ("battery.worn", "minor", "battery_inspection")
    ]


# --- the document itself ------------------------------------------------------------------

TEXTS = "Texts"
MONEY = {"amount": str, "currency": str}
FIT = {"slope": float, "intercept": float, "r_squared": float}
PROJECTION = {
    # Dates on a days axis only; null on a cycles axis.
    "at": ("null", str),
    "low_at": ("null", str),
    "high_at": ("null", str),
    "at_x": float,
    "low_x": float,
    "high_x": float,
    "remaining": float,
    "remaining_low": float,
    "remaining_high": float,
    "confidence": float,
    "fit": FIT,
}
COVERAGE = {
    "covered": bool,
    "remedy": str,
    "term_id": str,
    "term": TEXTS,
    "customer_pays": MONEY,
}
# Every key docs/diagnosis.md lists, with what its value is; ("null", X) may be None.
SCHEMA_DOC: dict[str, Any] = {
    "schema": str,
    "report_id": str,
    "device_id": str,
    "device": {"manufacturer": str, "model": str, "kind": ("null", str), "model_known": bool},
    "report_time": str,
    "made_at": str,
    "ruleset_version": str,
    "verdict": {"code": str, "text": TEXTS},
    "findings": [
        {
            "rule_id": str,
            "family": str,
            "severity": str,
            "text": TEXTS,
            "evidence": dict,
            "action": str,
        }
    ],
    "not_judged": [
        {"rule_id": str, "family": str, "device": ("null", str), "reason": str, "text": TEXTS}
    ],
    "actions": [
        {
            "id": str,
            "kind": str,
            "title": TEXTS,
            "steps": "Steps",
            "for_findings": [str],
            "list_price": ("null", MONEY),
            "coverage": ("null", COVERAGE),
            "customer_pays": ("null", MONEY),
            "problem": ("null", TEXTS),
        }
    ],
    "totals": {"list_price": ("null", MONEY), "customer_pays": ("null", MONEY)},
    "warranty": {
        "purchase_date": ("null", str),
        "region": ("null", str),
        "plans": [str],
        "exclusions": [str],
        "currency": str,
        "source": str,
        "problem": ("null", TEXTS),
    },
    "trends": [
        {
            "metric": str,
            "subject": str,
            "unit": str,
            "x_unit": str,
            "direction": str,
            "threshold": float,
            "points": [{"at": str, "x": float, "y": float}],
            "projection": ("null", PROJECTION),
            "reason": ("null", str),
            "text": TEXTS,
        }
    ],
}


def _walk(value: Any, shape: Any, where: str, seen: set[str]) -> None:
    """Check `value` against `shape`; record every path walked with a non-null value."""
    if isinstance(shape, tuple):
        if value is None:
            return
        shape = shape[1]
    seen.add(where)
    if shape == TEXTS:
        assert isinstance(value, dict) and sorted(value) == ["en", "zh-CN"], where
        assert all(isinstance(v, str) and v.strip() for v in value.values()), where
    elif shape == "Steps":
        assert isinstance(value, dict) and sorted(value) == ["en", "zh-CN"], where
        assert len(value["en"]) == len(value["zh-CN"]), where
        assert all(isinstance(s, str) and s for lang in value.values() for s in lang), where
    elif isinstance(shape, dict):
        assert isinstance(value, dict), where
        assert sorted(value) == sorted(shape), f"{where}: keys {sorted(value)}"
        for key, sub in shape.items():
            _walk(value[key], sub, f"{where}.{key}", seen)
    elif isinstance(shape, list):
        assert isinstance(value, list), where
        for item in value:
            _walk(item, shape[0], f"{where}[]", seen)
    elif shape is float:
        assert isinstance(value, int | float) and not isinstance(value, bool), where
    else:
        assert isinstance(value, shape), f"{where}: {value!r} is not {shape.__name__}"


def _rich_documents() -> list[Document]:
    """Documents that between them fill every field: cover, a missing price, projections."""
    history = _wearing_history()
    now = HISTORY_START + 7 * STEP + timedelta(days=1)
    return [
        _diagnose(history[-1], history=history[:-1], now=now, purchase=_bought(540, "CN")),
        _diagnose(machine_report("desktop-no-battery"), purchase=_bought(365, "EU")),
        _diagnose(_laptop(), diagnoser=Diagnoser.load(default_currency="JPY")),
        _diagnose(_without(_laptop(), status_pb2.CATEGORY_STORAGE)),
        _diagnose(_phone_with_failing_storage(), purchase=_bought(10, "CN")),
    ]


def test_every_documented_key_is_present_with_its_type_and_both_languages() -> None:
    seen: set[str] = set()
    for doc in _rich_documents():
        assert doc["schema"] == SCHEMA == "probelink.diagnosis/v1"
        _walk(doc, SCHEMA_DOC, "$", seen)
        # JSON-serialisable, and nothing changes on the way through (no tuples, no NaN).
        text = json.dumps(doc, ensure_ascii=False, allow_nan=False)
        assert json.loads(text) == doc
        for key in ("report_time", "made_at"):
            assert datetime.strptime(doc[key], "%Y-%m-%dT%H:%M:%SZ")
        for finding in doc["findings"]:
            assert finding["severity"] in ("critical", "major", "minor", "advisory", "info")
    # The documents together walked every documented path, nulls aside.
    must = {
        "$.actions[].coverage.term",
        "$.actions[].problem",
        "$.trends[].projection.fit.r_squared",
        "$.not_judged[].reason",
        "$.not_judged[].device",
        "$.actions[].steps",
        "$.warranty.problem",
    }
    assert must <= seen


def test_made_at_and_report_time_are_utc_rfc3339() -> None:
    doc = _diagnose(_laptop(), at=datetime(2026, 2, 28, 23, 59, 1, 250_000, tzinfo=UTC))
    assert (doc["report_time"], doc["made_at"]) == ("2026-02-28T23:59:01Z", "2026-03-01T12:00:00Z")
    assert (doc["report_id"], doc["device_id"], doc["ruleset_version"]) == (
        "r-test",
        "d-test",
        DIAGNOSER.version,
    )


# --- an unreadable drive among readable ones, and a model the catalog does not know ---------

REPORT_TIME = "2026-03-01T11:00:00Z"  # _diagnose stamps the report an hour before NOW
ONE_REPORT = {
    "en": "too little history: 1 report over 0 days; a projection needs at least 4 over 30 days",
    "zh-CN": "历史数据太少：0 天内 1 份报告；预测至少需要 30 天内 4 份",
}
OPEN_FAILED_WHY = (
    "smartctl could not open /dev/sdz: Smartctl open device: /dev/sdz failed: "
    "No such device; drive health could not be judged"
)
UNREADABLE_SDZ = {
    "rule_id": "",
    "family": "storage",
    "device": "/dev/sdz",
    "reason": "unreadable",
    "text": {
        "en": f"Could not judge /dev/sdz: it could not be read ({OPEN_FAILED_WHY}).",
        "zh-CN": f"无法判断存储设备 /dev/sdz：无法读取（{OPEN_FAILED_WHY}）。",
    },
}


def _one_point_trend(
    metric: str, subject: str, unit: str, x_unit: str, direction: str, threshold: float,
    x: float, y: float,
) -> dict[str, Any]:  # fmt: skip
    """The trend of a metric seen in one report only: one point, no projection."""
    return {
        "metric": metric,
        "subject": subject,
        "unit": unit,
        "x_unit": x_unit,
        "direction": direction,
        "threshold": threshold,
        "points": [{"at": REPORT_TIME, "x": x, "y": y}],
        "projection": None,
        "reason": "too_little_history",
        "text": ONE_REPORT,
    }


def _battery_trends(health: float) -> list[dict[str, Any]]:
    return [
        _one_point_trend("battery.health_pct", "BAT0", "%", "days", "falling", 80.0, 0.0, health),
        _one_point_trend(
            "battery.health_pct", "BAT0", "%", "cycles", "falling", 80.0, 734.0, health
        ),
    ]


def test_a_drive_that_could_not_be_read_keeps_the_report_from_being_healthy() -> None:
    # The laptop with a new battery (edited to 95 %) and a second drive smartctl could not
    # open: one drive healthy, one unknown. "Healthy" would claim more than was checked.
    report = _healthy_battery(machine_report("laptop-worn-battery", "open-failed"), 95)
    doc = _diagnose(report)
    assert doc == {
        "schema": SCHEMA,
        "report_id": "r-test",
        "device_id": "d-test",
        "device": {
            "manufacturer": "LENOVO",
            "model": "20XW00GMUS",
            "kind": "laptop",
            "model_known": True,
        },
        "report_time": REPORT_TIME,
        "made_at": "2026-03-01T12:00:00Z",
        "ruleset_version": DIAGNOSER.version,
        "verdict": {
            "code": "could_not_judge",
            "text": {
                "en": "Could not judge: storage could not be checked.",
                "zh-CN": "无法判断：存储未能检查。",
            },
        },
        "findings": [],
        # Every storage rule judged the NVMe drive; /dev/sdz alone is named as not judged.
        "not_judged": [UNREADABLE_SDZ],
        "actions": [],
        "totals": {"list_price": _money("0.00", "USD"), "customer_pays": _money("0.00", "USD")},
        "warranty": {
            "purchase_date": None,
            "region": None,
            "plans": [],
            "exclusions": [],
            "currency": "USD",
            "source": "none",
            "problem": {
                "en": "No purchase date and region on record: prices are list prices; "
                "record them with `probelink-server device warranty` to judge cover.",
                "zh-CN": "没有购买日期和地区记录：显示的是公开价格；"
                "用 `probelink-server device warranty` 记录后即可判断保修。",
            },
        },
        "trends": _battery_trends(95.0),
    }


def test_an_unreadable_drive_is_listed_beside_the_findings_of_the_others() -> None:
    # The desktop's own smartctl set includes /dev/sdz: its findings stand, and the one
    # drive that could not be read is the only not-judged entry.
    doc = _diagnose(machine_report("desktop-no-battery"))
    assert doc["not_judged"] == [UNREADABLE_SDZ]
    assert doc["verdict"]["code"] == "repair_recommended"


def test_a_second_battery_that_could_not_be_read_is_not_judged_by_name() -> None:
    # The laptop's BAT0 (edited to 95 %) copied as a BAT1 the probe could not read.
    report = _healthy_battery(machine_report("laptop-worn-battery", "nvme-healthy"), 95)
    (bat0,) = [r for r in report.results if r.HasField("battery")]
    bat1 = report.results.add()
    bat1.CopyFrom(bat0)
    bat1.subject = bat1.battery.name = "BAT1"
    bat1.status = status_pb2.STATUS_ERROR
    bat1.error.message = "EIO reading class/power_supply/BAT1/energy_full"
    doc = _diagnose(report)
    why = "EIO reading class/power_supply/BAT1/energy_full"
    assert (doc["findings"], doc["actions"]) == ([], [])
    assert doc["not_judged"] == [
        {
            "rule_id": "",
            "family": "battery",
            "device": "BAT1",
            "reason": "unreadable",
            "text": {
                "en": f"Could not judge BAT1: it could not be read ({why}).",
                "zh-CN": f"无法判断电池设备 BAT1：无法读取（{why}）。",
            },
        }
    ]
    assert doc["verdict"] == {
        "code": "could_not_judge",
        "text": {
            "en": "Could not judge: battery could not be checked.",
            "zh-CN": "无法判断：电池未能检查。",
        },
    }


def test_a_phone_without_a_smart_drive_has_no_storage_rules_at_all() -> None:
    # The phone's storage is file systems only: absent, so no storage rule is "not judged".
    doc = _diagnose(machine_report("phone-charge-units"))
    assert [n for n in doc["not_judged"] if n["family"] == "storage"] == []
    assert [f for f in doc["findings"] if f["family"] == "storage"] == []


def _unknown_laptop() -> report_pb2.Report:
    report = _laptop()
    report.device.manufacturer = "Dell Inc."
    report.device.model = "Latitude 7420"
    return report


NOT_IN_CATALOG = {
    "en": "Dell Inc. Latitude 7420 is not in the model catalog: whether the maker's warranty "
    "covers it is not known; the list price is shown.",
    "zh-CN": "型号目录中没有 Dell Inc. Latitude 7420：无法确定厂商保修是否适用；显示的是公开价格。",
}


def test_an_unknown_model_is_not_declared_out_of_warranty() -> None:
    # Bought three months ago in China: every term there is by device kind, and the catalog
    # does not know this model's kind. "Not covered" would be a guess; the desk is told why.
    doc = _diagnose(_unknown_laptop(), purchase=_bought(90, "CN"))
    # The laptop's own smartctl output: its NVMe drive has used 3 % of its endurance.
    nvme = _one_point_trend(
        "storage.nvme_percentage_used_pct", "/dev/nvme0", "%", "days", "rising", 90.0, 0.0, 3.0
    )
    assert doc == {
        "schema": SCHEMA,
        "report_id": "r-test",
        "device_id": "d-test",
        "device": {
            "manufacturer": "Dell Inc.",
            "model": "Latitude 7420",
            "kind": None,
            "model_known": False,
        },
        "report_time": REPORT_TIME,
        "made_at": "2026-03-01T12:00:00Z",
        "ruleset_version": DIAGNOSER.version,
        "verdict": {
            "code": "repair_recommended",
            "text": {"en": "A repair is recommended.", "zh-CN": "建议维修。"},
        },
        "findings": [WORN_FINDING],  # the default thresholds: 80 %
        "not_judged": [],
        "actions": [
            {
                "id": "battery_replacement",
                "kind": "service",
                "title": BATTERY_TITLE,
                "steps": NO_STEPS,
                "for_findings": ["battery.worn"],
                "list_price": _money("399.00", "CNY"),
                "coverage": None,
                "customer_pays": _money("399.00", "CNY"),
                "problem": NOT_IN_CATALOG,
            }
        ],
        "totals": {"list_price": _money("399.00", "CNY"), "customer_pays": _money("399.00", "CNY")},
        "warranty": {
            "purchase_date": (TODAY - timedelta(days=90)).isoformat(),
            "region": "CN",
            "plans": [],
            "exclusions": [],
            "currency": "CNY",
            "source": "device",
            "problem": None,
        },
        "trends": [*_battery_trends(62.0), nvme],
    }


def test_an_unknown_model_without_purchase_facts_has_no_catalog_problem() -> None:
    # Without purchase facts no cover is judged for any model: the warranty problem says so,
    # and the action carries no problem of its own.
    (action,) = _diagnose(_unknown_laptop())["actions"]
    assert (action["coverage"], action["customer_pays"], action["problem"]) == (
        None,
        _money("109.00", "USD"),
        None,
    )


def test_an_unknown_model_keeps_a_statutory_cover_that_applies_to_every_kind() -> None:
    # Known bug (reported to the lead): the EU legal guarantee applies to every device kind
    # (warranty.toml has no `kinds`; test_warranty's unknown-kind test shows it covers), yet
    # the engine skips the warranty for a model outside the catalog and charges list price.
    doc = _diagnose(_unknown_laptop(), purchase=_bought(90, "EU"))
    (action,) = doc["actions"]
    bought = TODAY - timedelta(days=90)
    until = bought.replace(year=bought.year + 2).isoformat()
    assert (action["coverage"], action["customer_pays"], action["problem"]) == (
        {
            "covered": True,
            "remedy": "repair",
            "term_id": "eu_legal_guarantee",
            "term": {
                "en": f"EU two-year legal guarantee: battery repair until {until}",
                "zh-CN": f"欧盟两年法定保修：保修至 {until}",
            },
            "customer_pays": _money("0.00", "EUR"),
        },
        _money("0.00", "EUR"),
        None,
    ), (
        "BUG engine.py Diagnoser._actions (`if purchase.known and model.kind is None`): an "
        "unknown model gets no coverage even where a kind-independent statutory term "
        "covers it (EU two-year guarantee), so the customer is quoted the list price; only a "
        "'not_covered' answer should become the not-in-catalog problem. Got "
        f"{action['coverage']}, pays {action['customer_pays']}"
    )


def test_china_windows_count_days_on_chinas_calendar() -> None:
    # 20:00 UTC on 1 March is 04:00 on 2 March in Shanghai: a desk there records a purchase
    # made this morning, and the windows end at its midnight, not at UTC's.
    evening = NOW.replace(hour=20)
    shanghai_today = TODAY + timedelta(days=1)
    bought_this_morning = PurchaseFacts(shanghai_today, "CN", (), (), "device")
    check_purchase(
        bought_this_morning,
        DIAGNOSER.warranty,
        region_today(DIAGNOSER.warranty, "CN", evening),
    )
    with pytest.raises(WarrantyError, match="in the future"):
        # Counted on UTC's calendar, the same purchase would be tomorrow's.
        check_purchase(bought_this_morning, DIAGNOSER.warranty, evening.date())
    # Bought 16 Shanghai days ago (15 UTC days): the exchange window is over there.
    bought = PurchaseFacts(shanghai_today - timedelta(days=16), "CN", (), (), "device")
    action = _storage_action(_diagnose(_phone_with_failing_storage(), purchase=bought, now=evening))
    assert (action["coverage"]["remedy"], action["coverage"]["term_id"]) == (
        "repair",
        "cn_three_guarantees",
    )
    assert region_today(DIAGNOSER.warranty, None, evening) == TODAY
    assert region_today(DIAGNOSER.warranty, "XX", evening) == TODAY
