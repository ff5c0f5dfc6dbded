"""Warranty coverage: the issue's examples on the captured machines, every statutory window at
its edges, plans, exclusions, and every bad input with the message a person reads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from probelink.server.diagnosis.data import CatalogError, shipped_text
from probelink.server.diagnosis.models import DeviceModel, load_models
from probelink.server.diagnosis.prices import Money, load_actions
from probelink.server.diagnosis.warranty import (
    Coverage,
    WarrantyBook,
    WarrantyError,
    add_months,
    coverage,
    load_warranty,
    parse_warranty,
)
from probelink.server.errors import InvalidArgument
from tests.server.ingest.reports import captured_report

CNY0 = Money(Decimal("0.00"), "CNY")
EUR0 = Money(Decimal("0.00"), "EUR")
BATTERY_CNY = Money(Decimal("399.00"), "CNY")
SCREEN_CNY = Money(Decimal("1199.00"), "CNY")


@pytest.fixture(scope="module")
def book() -> WarrantyBook:
    return load_warranty()


def device(machine: str) -> tuple[DeviceModel, float | None]:
    """The catalog model and measured battery health of a captured machine's real report."""
    report = captured_report(machine)
    health = [r.battery.health_pct for r in report.results if r.HasField("battery")]
    model = load_models().lookup(report.device.manufacturer, report.device.model)
    return model, (health[0] if health else None)


@pytest.fixture(scope="module")
def laptop() -> tuple[DeviceModel, float | None]:
    return device("laptop-worn-battery")


@pytest.fixture(scope="module")
def phone() -> DeviceModel:
    return device("phone-charge-units")[0]


# Bought 2024-05-01: the maker's laptop warranty runs to 2025-05-01, the plan to 2026-05-01.
BOUGHT = date(2024, 5, 1)


def test_worn_battery_in_warranty_with_renewal_plan_is_free(
    book: WarrantyBook, laptop: tuple[DeviceModel, float | None]
) -> None:
    model, health = laptop
    assert health == 62.0  # the captured laptop's battery is worn
    got = book.coverage(
        "battery_replacement",
        model=model,
        purchase_date=BOUGHT,
        today=date(2025, 11, 1),
        region="CN",
        plans={"battery_renewal"},
        exclusions=(),
        battery_health_pct=health,
    )
    assert got == Coverage(
        covered=True,
        remedy="repair",
        term="Battery renewal plan: battery until 2026-05-01",
        term_id="battery_renewal",
        customer_pays=CNY0,
        list_price=BATTERY_CNY,
        until=date(2026, 5, 1),  # the plan's end, the date the text shows
    )


def test_worn_battery_in_makers_warranty_is_free_under_the_maker(
    book: WarrantyBook, laptop: tuple[DeviceModel, float | None]
) -> None:
    model, health = laptop
    got = book.coverage(
        "battery_replacement",
        model=model,
        purchase_date=BOUGHT,
        today=date(2025, 5, 1),  # the anniversary is still in warranty
        region="CN",
        plans={"battery_renewal"},
        battery_health_pct=health,
    )
    assert got == Coverage(
        True,
        "repair",
        "Maker's limited warranty (laptop): battery repair until 2025-05-01",
        "maker_laptop",
        CNY0,
        BATTERY_CNY,
        date(2025, 5, 1),
    )


def test_out_of_warranty_pays_the_published_price(
    book: WarrantyBook, laptop: tuple[DeviceModel, float | None]
) -> None:
    model, health = laptop
    ask = partial(
        book.coverage, model=model, purchase_date=BOUGHT, region="CN", battery_health_pct=health
    )
    assert ask(
        "battery_replacement", today=date(2026, 5, 2), plans={"battery_renewal"}
    ) == Coverage(
        False,
        "none",
        "not covered: Maker's limited warranty (laptop) ended 2025-05-01; "
        "Battery renewal plan ended 2026-05-01",
        "not_covered",
        BATTERY_CNY,
        BATTERY_CNY,
    )
    # Without the plan the same day a year after purchase and one: the published price.
    assert ask("battery_replacement", today=date(2025, 5, 2)) == Coverage(
        False,
        "none",
        "not covered: Maker's limited warranty (laptop) ended 2025-05-01",
        "not_covered",
        BATTERY_CNY,
        BATTERY_CNY,
    )


@pytest.mark.parametrize(
    ("health", "term"),
    [
        (85.0, "not covered: Maker's limited warranty (laptop) ended 2025-05-01; "
         "Battery renewal plan needs health below 80 % (measured 85 %)"),
        (80.0, "not covered: Maker's limited warranty (laptop) ended 2025-05-01; "
         "Battery renewal plan needs health below 80 % (measured 80 %)"),
        (None, "not covered: Maker's limited warranty (laptop) ended 2025-05-01; "
         "Battery renewal plan needs the measured battery health"),
    ],
)  # fmt: skip
def test_renewal_plan_needs_health_below_its_threshold(
    book: WarrantyBook,
    laptop: tuple[DeviceModel, float | None],
    health: float | None,
    term: str,
) -> None:
    got = book.coverage(
        "battery_replacement",
        model=laptop[0],
        purchase_date=BOUGHT,
        today=date(2025, 11, 1),
        region="CN",
        plans={"battery_renewal"},
        battery_health_pct=health,
    )
    assert got == Coverage(False, "none", term, "not_covered", BATTERY_CNY, BATTERY_CNY)


PHONE_BOUGHT = date(2025, 11, 1)


def test_a_healthy_phone_battery_is_not_renewed(book: WarrantyBook) -> None:
    # The captured phone's cell measures above its design capacity: no renewal.
    model, health = device("phone-charge-units")
    assert health == 102.44
    got = book.coverage(
        "battery_replacement",
        model=model,
        purchase_date=date(2024, 1, 1),
        today=date(2025, 6, 1),
        region="CN",
        plans={"battery_renewal"},
        battery_health_pct=health,
    )
    assert got == Coverage(
        False,
        "none",
        "not covered: China three guarantees ended 2024-07-01; "
        "Maker's limited warranty (phone) ended 2025-01-01; "
        "Battery renewal plan needs health below 80 % (measured 102.44 %)",
        "not_covered",
        BATTERY_CNY,
        BATTERY_CNY,
    )


@pytest.mark.parametrize(
    ("today", "remedy", "term", "until"),
    [
        (date(2025, 11, 1), "return", "China three guarantees: return within 7 days (day 0)",
         date(2025, 11, 8)),
        (date(2025, 11, 8), "return", "China three guarantees: return within 7 days (day 7)",
         date(2025, 11, 8)),
        (date(2025, 11, 9), "exchange", "China three guarantees: exchange within 15 days (day 8)",
         date(2025, 11, 16)),
        (date(2025, 11, 16), "exchange",
         "China three guarantees: exchange within 15 days (day 15)", date(2025, 11, 16)),
        (date(2025, 11, 17), "repair",
         "China three guarantees: main unit repair until 2026-11-01", date(2026, 11, 1)),
    ],
)  # fmt: skip
def test_china_three_guarantees_windows_for_a_phone(
    book: WarrantyBook, phone: DeviceModel, today: date, remedy: str, term: str, until: date
) -> None:
    got = book.coverage(
        "screen_replacement", model=phone, purchase_date=PHONE_BOUGHT, today=today, region="CN"
    )
    assert got == Coverage(True, remedy, term, "cn_three_guarantees", CNY0, SCREEN_CNY, until)  # type: ignore[arg-type]


# Coverage.until at every window's edges: the phone bought 2025-11-01, its screen (a main
# part) under the three guarantees, then the maker's year, then a 36-month extended warranty.
SCREEN_EDGES = [
    # (today, plans, remedy, term_id, English text, until)
    (date(2025, 11, 8), (), "return", "cn_three_guarantees",
     "China three guarantees: return within 7 days (day 7)", date(2025, 11, 8)),
    (date(2025, 11, 9), (), "exchange", "cn_three_guarantees",
     "China three guarantees: exchange within 15 days (day 8)", date(2025, 11, 16)),
    (date(2025, 11, 16), (), "exchange", "cn_three_guarantees",
     "China three guarantees: exchange within 15 days (day 15)", date(2025, 11, 16)),
    (date(2025, 11, 17), (), "repair", "cn_three_guarantees",
     "China three guarantees: main unit repair until 2026-11-01", date(2026, 11, 1)),
    (date(2026, 11, 1), (), "repair", "cn_three_guarantees",
     "China three guarantees: main unit repair until 2026-11-01", date(2026, 11, 1)),
    (date(2026, 11, 2), ("extended_warranty",), "repair", "extended_warranty",
     "Extended warranty: main unit until 2028-11-01", date(2028, 11, 1)),
    (date(2028, 11, 1), ("extended_warranty",), "repair", "extended_warranty",
     "Extended warranty: main unit until 2028-11-01", date(2028, 11, 1)),
]  # fmt: skip


@pytest.mark.parametrize(("today", "plans", "remedy", "term_id", "term", "until"), SCREEN_EDGES)
def test_until_is_the_last_day_of_each_window(
    book: WarrantyBook,
    phone: DeviceModel,
    today: date,
    plans: tuple[str, ...],
    remedy: str,
    term_id: str,
    term: str,
    until: date,
) -> None:
    got = book.coverage(
        "screen_replacement",
        model=phone,
        purchase_date=PHONE_BOUGHT,
        today=today,
        region="CN",
        plans=plans,
    )
    assert got == Coverage(True, remedy, term, term_id, CNY0, SCREEN_CNY, until)  # type: ignore[arg-type]
    # The last day is still in: on `until` itself the same remedy is given.
    on_last_day = book.coverage(
        "screen_replacement",
        model=phone,
        purchase_date=PHONE_BOUGHT,
        today=until,
        region="CN",
        plans=plans,
    )
    assert (on_last_day.remedy, on_last_day.term_id, on_last_day.until) == (
        remedy,
        term_id,
        until,
    )


def test_until_is_none_when_nothing_covers(book: WarrantyBook, phone: DeviceModel) -> None:
    ask = partial(book.coverage, model=phone, purchase_date=PHONE_BOUGHT, region="CN")
    # The day after the extended warranty's last day: every term and plan has ended.
    assert ask(
        "screen_replacement", today=date(2028, 11, 2), plans={"extended_warranty"}
    ) == Coverage(
        False,
        "none",
        "not covered: China three guarantees ended 2026-11-01; "
        "Maker's limited warranty (phone) ended 2026-11-01; "
        "Extended warranty ended 2028-11-01",
        "not_covered",
        SCREEN_CNY,
        SCREEN_CNY,
        None,
    )
    day_one = partial(ask, today=PHONE_BOUGHT)
    assert day_one("free_space").until is None  # self-help
    assert day_one("data_backup").until is None  # not a repair
    excluded = day_one("screen_replacement", exclusions={"liquid_damage"})
    assert (excluded.term_id, excluded.until) == ("excluded", None)


def test_three_guarantees_battery_period_is_its_own(book: WarrantyBook, phone: DeviceModel) -> None:
    # A battery is not the main unit: no return or exchange, and its statutory period is 6
    # months; after that the maker's 12 months still cover it.
    ask = partial(book.coverage, model=phone, purchase_date=PHONE_BOUGHT, region="CN")
    assert ask("battery_replacement", today=date(2025, 11, 3)) == Coverage(
        True,
        "repair",
        "China three guarantees: battery repair until 2026-05-01",
        "cn_three_guarantees",
        CNY0,
        BATTERY_CNY,
        date(2026, 5, 1),
    )
    assert ask("battery_replacement", today=date(2026, 6, 1)) == Coverage(
        True,
        "repair",
        "Maker's limited warranty (phone): battery repair until 2026-11-01",
        "maker_phone",
        CNY0,
        BATTERY_CNY,
        date(2026, 11, 1),
    )


def test_three_guarantees_are_for_phones_only(
    book: WarrantyBook, laptop: tuple[DeviceModel, float | None]
) -> None:
    got = book.coverage(
        "screen_replacement", model=laptop[0], purchase_date=BOUGHT, today=BOUGHT, region="CN"
    )
    assert got == Coverage(
        True,
        "repair",
        "Maker's limited warranty (laptop): main unit repair until 2025-05-01",
        "maker_laptop",
        CNY0,
        SCREEN_CNY,
        date(2025, 5, 1),
    )


def test_eu_two_year_legal_guarantee(
    book: WarrantyBook, laptop: tuple[DeviceModel, float | None]
) -> None:
    ask = partial(book.coverage, model=laptop[0], purchase_date=date(2024, 1, 10), region="EU")
    eur = Money(Decimal("119.00"), "EUR")
    # After the maker's year, inside the legal two years: free, under the legal guarantee.
    assert ask("storage_replacement", today=date(2026, 1, 10)) == Coverage(
        True,
        "repair",
        "EU two-year legal guarantee: main unit repair until 2026-01-10",
        "eu_legal_guarantee",
        EUR0,
        eur,
        date(2026, 1, 10),  # today is the last day
    )
    assert ask("storage_replacement", today=date(2026, 1, 11)) == Coverage(
        False,
        "none",
        "not covered: EU two-year legal guarantee ended 2026-01-10; "
        "Maker's limited warranty (laptop) ended 2025-01-10",
        "not_covered",
        eur,
        eur,
    )


def test_eu_guarantee_covers_a_device_of_unknown_kind(book: WarrantyBook) -> None:
    unknown = load_models().lookup("Nokia", "3310")
    got = book.coverage(
        "charging_port_repair",
        model=unknown,
        purchase_date=date(2025, 1, 1),
        today=date(2025, 6, 1),
        region="EU",
    )
    assert got == Coverage(
        True,
        "repair",
        "EU two-year legal guarantee: charging port repair until 2027-01-01",
        "eu_legal_guarantee",
        EUR0,
        Money(Decimal("59.00"), "EUR"),
        date(2027, 1, 1),
    )
    # No maker's term knows an unknown kind, and the US has no statutory term here.
    got = book.coverage(
        "charging_port_repair",
        model=unknown,
        purchase_date=date(2025, 1, 1),
        today=date(2025, 6, 1),
        region="US",
    )
    usd = Money(Decimal("59.00"), "USD")
    assert got == Coverage(
        False,
        "none",
        "not covered: no term or plan covers the charging port",
        "not_covered",
        usd,
        usd,
    )


def test_liquid_damage_voids_even_the_statutory_return(
    book: WarrantyBook, phone: DeviceModel
) -> None:
    got = book.coverage(
        "screen_replacement",
        model=phone,
        purchase_date=PHONE_BOUGHT,
        today=PHONE_BOUGHT,
        region="CN",
        plans={"accidental_screen"},
        exclusions={"liquid_damage"},
    )
    assert got == Coverage(
        False, "none", "excluded: liquid damage", "excluded", SCREEN_CNY, SCREEN_CNY
    )


def test_accidental_screen_plan_waives_accidental_damage(
    book: WarrantyBook, phone: DeviceModel
) -> None:
    ask = partial(
        book.coverage,
        model=phone,
        purchase_date=PHONE_BOUGHT,
        today=date(2026, 2, 1),
        region="CN",
        plans={"accidental_screen"},
        exclusions={"accidental_damage"},
    )
    assert ask("screen_replacement") == Coverage(
        True,
        "repair",
        "Accidental screen cover: screen until 2026-11-01",
        "accidental_screen",
        CNY0,
        SCREEN_CNY,
        date(2026, 11, 1),
    )
    # The plan covers the screen only: a dropped phone's charging port is excluded.
    port = Money(Decimal("209.00"), "CNY")
    assert ask("charging_port_repair") == Coverage(
        False, "none", "excluded: accidental damage (drop, crack)", "excluded", port, port
    )
    # Unauthorised repair is not waived by the screen plan.
    both = {"accidental_damage", "unauthorised_repair"}
    assert ask("screen_replacement", exclusions=both) == Coverage(
        False,
        "none",
        "excluded: accidental damage (drop, crack), unauthorised repair",
        "excluded",
        SCREEN_CNY,
        SCREEN_CNY,
    )


def test_extended_warranty_covers_the_main_unit_not_the_battery(
    book: WarrantyBook, laptop: tuple[DeviceModel, float | None]
) -> None:
    ask = partial(
        book.coverage,
        model=laptop[0],
        purchase_date=BOUGHT,
        today=date(2026, 6, 1),
        region="CN",
        plans={"extended_warranty"},
    )
    assert ask("fan_cleaning") == Coverage(
        True,
        "repair",
        "Extended warranty: main unit until 2027-05-01",
        "extended_warranty",
        CNY0,
        Money(Decimal("119.00"), "CNY"),
        date(2027, 5, 1),
    )
    assert ask("battery_replacement") == Coverage(
        False,
        "none",
        "not covered: Maker's limited warranty (laptop) ended 2025-05-01",
        "not_covered",
        BATTERY_CNY,
        BATTERY_CNY,
    )


def test_self_help_and_data_backup(book: WarrantyBook, phone: DeviceModel) -> None:
    ask = partial(
        book.coverage, model=phone, purchase_date=PHONE_BOUGHT, today=PHONE_BOUGHT, region="EU"
    )
    assert ask("free_space") == Coverage(
        False, "none", "self-help: no charge", "self_help", EUR0, EUR0
    )
    backup = Money(Decimal("25.00"), "EUR")
    assert ask("data_backup") == Coverage(
        False, "none", "not a repair: no warranty covers it", "not_a_repair", backup, backup
    )


def test_module_level_coverage_uses_the_shipped_book(
    book: WarrantyBook, phone: DeviceModel
) -> None:
    ask = partial(
        book.coverage, model=phone, purchase_date=PHONE_BOUGHT, today=date(2025, 11, 9), region="CN"
    )
    assert coverage(
        "screen_replacement",
        model=phone,
        purchase_date=PHONE_BOUGHT,
        today=date(2025, 11, 9),
        region="CN",
    ) == ask("screen_replacement")


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"purchase_date": date(2026, 1, 2)},
            "purchase date 2026-01-02 is after today (2026-01-01); check the date on the receipt",
        ),
        ({"region": "MARS"}, "unknown region 'MARS'; known regions: CN, EU, US"),
        ({"region": "cn"}, "unknown region 'cn'; known regions: CN, EU, US"),
        (
            {"plans": {"battery_renewal", "gold"}},
            "unknown plan 'gold'; known plans: accidental_screen, battery_renewal, "
            "extended_warranty",
        ),
        (
            {"plans": "battery_renewal"},
            "plans and exclusions must be collections of ids, not one string",
        ),
        (
            {"exclusions": {"water"}},
            "unknown exclusion 'water'; known exclusions: accidental_damage, liquid_damage, "
            "unauthorised_repair",
        ),
        (
            {"battery_health_pct": -3.0},
            "battery health -3.0 % is not a percentage ≥ 0; pass the measured health or None",
        ),
        (
            {"battery_health_pct": float("nan")},
            "battery health nan % is not a percentage ≥ 0; pass the measured health or None",
        ),
        (
            {"today": datetime(2026, 1, 1, 12, 0)},
            "purchase_date and today must be dates, not date-times",
        ),
    ],
)
def test_bad_coverage_questions_are_refused(
    book: WarrantyBook, phone: DeviceModel, change: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {
        "model": phone,
        "purchase_date": date(2025, 6, 1),
        "today": date(2026, 1, 1),
        "region": "CN",
        **change,
    }
    with pytest.raises(WarrantyError) as err:
        book.coverage("battery_replacement", **args)  # type: ignore[arg-type]
    assert str(err.value) == message
    # A person must fix it: the gateway maps it to INVALID_ARGUMENT.
    assert isinstance(err.value, InvalidArgument)


def test_unknown_action_is_refused(book: WarrantyBook, phone: DeviceModel) -> None:
    with pytest.raises(WarrantyError) as err:
        book.coverage(
            "polish", model=phone, purchase_date=PHONE_BOUGHT, today=PHONE_BOUGHT, region="CN"
        )
    assert str(err.value).startswith(
        "unknown action 'polish'; known actions: battery_inspection, battery_replacement"
    )


def test_add_months_clamps_to_the_months_end() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2024, 11, 15), 14) == date(2026, 1, 15)


# --- bad warranty files ---------------------------------------------------------------------


def shipped_with(tmp_path: Path, old: str, new: str) -> tuple[str, str]:
    text, _ = shipped_text("warranty.toml")
    assert old in text
    path = tmp_path / "warranty.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path.read_text(encoding="utf-8"), str(path)


def line(text: str, header: str) -> int:
    return text.splitlines().index(header) + 1


@pytest.mark.parametrize(
    ("old", "new", "header", "message"),
    [
        (
            'currency = "USD"',
            'currency = "JPY"',
            "[regions.US]",
            "regions.US.currency: action 'battery_replacement' has no JPY price; publish one in "
            "actions.toml or quote this region in another currency",
        ),
        (
            'kinds = ["phone"]\nreturn_days',
            'kinds = ["watch"]\nreturn_days',
            "[terms.cn_three_guarantees]",
            "terms.cn_three_guarantees.kinds: 'watch' is not known; "
            "use board, desktop, laptop, phone",
        ),
        (
            'regions = ["CN"]',
            'regions = ["XX"]',
            "[terms.cn_three_guarantees]",
            "terms.cn_three_guarantees.regions: 'XX' is not known; use *, CN, EU, US",
        ),
        (
            "months = { main_unit = 12, battery = 6, charger = 12 }",
            "months = { main_unit = 12, battery = -6 }",
            "[terms.cn_three_guarantees]",
            "terms.cn_three_guarantees.months.battery: -6 must be a whole number ≥ 0",
        ),
        (
            'months = { "*" = 24 }',
            "months = { whole = 24 }",
            "[terms.eu_legal_guarantee]",
            "terms.eu_legal_guarantee.months.whole: not a group; use main_unit, '*' or a component",
        ),
        (
            'basis = "statutory"\nregions = ["CN"]',
            'basis = "limited"\nregions = ["CN"]',
            "[terms.cn_three_guarantees]",
            "terms.cn_three_guarantees: return/exchange windows are statutory; set basis",
        ),
        (
            'waives = ["accidental_damage"]',
            'waives = ["drop"]',
            "[plans.accidental_screen]",
            "plans.accidental_screen.waives: 'drop' is not known; "
            "use accidental_damage, liquid_damage, unauthorised_repair",
        ),
        (
            "below_health_pct = 80",
            "below_health_pct = 180",
            "[plans.battery_renewal]",
            "plans.battery_renewal.below_health_pct: 180 is not a % in (0, 100]",
        ),
        (
            'name = { en = "liquid damage", zh-CN = "进液损坏" }',
            'name = { en = "liquid damage" }',
            "[exclusions.liquid_damage]",
            "exclusions.liquid_damage.name: needs en and zh-CN text, "
            'e.g. { en = "…", zh-CN = "…" }',
        ),
    ],
)
def test_bad_warranty_files_are_refused(
    tmp_path: Path, old: str, new: str, header: str, message: str
) -> None:
    text, source = shipped_with(tmp_path, old, new)
    with pytest.raises(CatalogError) as err:
        parse_warranty(text, source, load_actions())
    assert str(err.value) == f"{source}:{line(text, header)}: {message}"


def test_unknown_top_level_section_is_refused(tmp_path: Path) -> None:
    text, source = shipped_with(tmp_path, "[regions.CN]", "[discounts.CN]\nx = 1\n\n[regions.CN]")
    with pytest.raises(CatalogError) as err:
        parse_warranty(text, source, load_actions())
    assert str(err.value) == (
        f"{source}: unknown top-level key 'discounts'; use regions, terms, plans, exclusions"
    )


def test_a_region_counts_days_in_its_own_time_zone() -> None:
    book = load_warranty()
    # 20:00 UTC on the 25th is 04:00 on the 26th in Shanghai, 21:00 on the 25th in
    # Brussels, 15:00 on the 25th in New York.
    at = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
    assert [book.regions[r].today(at) for r in ("CN", "EU", "US")] == [
        date(2026, 11, 26),
        date(2026, 11, 25),
        date(2026, 11, 25),
    ]
    with pytest.raises(ValueError, match="time zone"):
        book.regions["CN"].today(datetime(2026, 11, 25, 20, 0))


@pytest.mark.parametrize("zone", ['"Mars/Olympus_Mons"', '"../etc/passwd"', "8"])
def test_a_time_zone_that_is_not_one_is_refused(tmp_path: Path, zone: str) -> None:
    text, source = shipped_with(tmp_path, 'time_zone = "Asia/Shanghai"', f"time_zone = {zone}")
    with pytest.raises(CatalogError) as err:
        parse_warranty(text, source, load_actions())
    assert str(err.value).startswith(
        f"{source}:{line(text, '[regions.CN]')}: regions.CN.time_zone: "
    )
    assert 'use an IANA name such as "Asia/Shanghai"' in str(err.value)


def test_a_region_without_a_time_zone_counts_utc_days(tmp_path: Path) -> None:
    text, source = shipped_with(tmp_path, 'time_zone = "Asia/Shanghai"\n', "")
    book = parse_warranty(text, source, load_actions())
    assert book.regions["CN"].today(datetime(2026, 11, 25, 20, 0, tzinfo=UTC)) == date(2026, 11, 25)
