"""The model and action catalogs: the shipped files load, match the captured machines, and
every malformed entry is refused with a message naming the file, the entry and the fix."""

from __future__ import annotations

import doctest
import importlib
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from probelink.server.diagnosis.data import CatalogError, shipped_text
from probelink.server.diagnosis.models import DeviceModel, load_models, parse_models
from probelink.server.diagnosis.prices import (
    Action,
    Money,
    PriceLine,
    load_actions,
    parse_actions,
)
from probelink.server.diagnosis.thresholds import DEFAULT_THRESHOLDS
from tests.server.ingest.reports import MACHINE_NAMES, captured_report

DATA = "probelink.server.diagnosis.data"
CURRENCY = ("CNY", "EUR", "USD")  # the shipped regions' currencies


def write(tmp_path: Path, text: str, name: str = "catalog.toml") -> tuple[str, str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path.read_text(encoding="utf-8"), str(path)


# --- shipping -------------------------------------------------------------------------------


def test_data_files_ship_as_package_resources() -> None:
    # data/ is a package (it has __init__.py), so pyproject's "*.toml" package-data ships it.
    names = {p.name for p in resources.files(DATA).iterdir() if p.name.endswith(".toml")}
    assert names == {"actions.toml", "models.toml", "warranty.toml"}
    text, source = shipped_text("models.toml")
    assert source == f"{DATA}/models.toml"
    assert "[[models]]" in text


# --- models ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("machine", "kind", "name"),
    [
        ("board-iio-typec", "board", "Acme IoT Board B1"),
        ("desktop-no-battery", "desktop", "ASUS PRIME B450M-A desktop"),
        ("laptop-worn-battery", "laptop", "ThinkPad X1 Carbon Gen 9"),
        ("phone-charge-units", "phone", "Acme Phone X2"),
    ],
)
def test_every_captured_machine_is_in_the_catalog(machine: str, kind: str, name: str) -> None:
    device = captured_report(machine).device
    model = load_models().lookup(device.manufacturer, device.model)
    assert (model.kind, model.name, model.generic) == (kind, name, False)


def test_captured_machine_list_is_the_one_tested() -> None:
    # A new fixture machine must get a catalog entry (and a row in the test above).
    assert MACHINE_NAMES == (
        "board-iio-typec",
        "desktop-no-battery",
        "laptop-worn-battery",
        "phone-charge-units",
    )


def test_laptop_entry_whole_record() -> None:
    model = load_models().lookup("Lenovo ", "20xw00gmus")  # case and space do not matter
    assert model == DeviceModel(
        manufacturer="LENOVO",
        model="20XW00GMUS",
        name="ThinkPad X1 Carbon Gen 9",
        kind="laptop",
        thresholds={**DEFAULT_THRESHOLDS, "battery.max_cycle_count": 1000.0},
        main_parts=frozenset(
            {"board", "screen", "storage", "charging_port", "fan", "keyboard", "speaker", "camera"}
        ),
        generic=False,
    )
    assert model.group("screen") == "main_unit"
    assert model.group("battery") == "battery"


def test_phone_and_laptop_are_judged_by_their_own_limits() -> None:
    catalog = load_models()
    phone, laptop = catalog.generic("phone"), catalog.generic("laptop")
    assert phone.thresholds == {
        **DEFAULT_THRESHOLDS,
        "battery.max_cycle_count": 500.0,
        "battery.max_temp_celsius": 45.0,
        "thermal.max_cpu_celsius": 85.0,
    }
    assert laptop.thresholds == DEFAULT_THRESHOLDS
    # A model overrides its kind: the Acme phone is rated for 800 cycles, not a phone's 500.
    acme = catalog.lookup("acme", "Acme Phone X2")
    assert acme.thresholds["battery.max_cycle_count"] == 800.0
    assert acme.thresholds["battery.max_temp_celsius"] == 45.0
    assert all(isinstance(v, float) for v in acme.thresholds.values())


def test_unknown_model_falls_back_to_generic_kind_or_defaults() -> None:
    catalog = load_models()
    assert catalog.lookup("Nokia", "3310", kind="phone") == DeviceModel(
        "Nokia",
        "3310",
        "a phone",
        "phone",
        catalog.generic("phone").thresholds,
        frozenset({"board", "screen", "storage", "charging_port", "camera", "speaker"}),
        generic=True,
    )
    assert catalog.lookup("Nokia", "3310") == DeviceModel(
        "Nokia", "3310", "3310", None, DEFAULT_THRESHOLDS, frozenset(), generic=True
    )
    with pytest.raises(CatalogError) as err:
        catalog.lookup("Nokia", "3310", kind="watch")
    assert str(err.value) == "unknown device kind 'watch'; use one of phone, laptop, desktop, board"


KINDS_OK = """
[kinds.phone]
name = { en = "a phone", zh-CN = "手机" }
main_parts = ["board"]
[kinds.laptop]
name = { en = "a laptop", zh-CN = "笔记本电脑" }
main_parts = ["board"]
[kinds.desktop]
name = { en = "a desktop", zh-CN = "台式电脑" }
main_parts = ["board"]
[kinds.board]
name = { en = "a board", zh-CN = "单板" }
main_parts = ["board"]
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            '[[models]]\nmanufacturer = "X"\nmodel = "Y"\nname = "Z"\nkind = "phone"\n'
            'thresholds = { "battery.min_health" = 70 }\n',
            "{src}: models[0] (X Y).thresholds: unknown threshold 'battery.min_health'; "
            "did you mean 'battery.min_health_pct'?",
        ),
        (
            '[[models]]\nmanufacturer = "X"\nmodel = "Y"\nname = "Z"\nkind = "phone"\n'
            'thresholds = { "battery.min_health_pct" = "70" }\n',
            "{src}: models[0] (X Y).thresholds.battery.min_health_pct: '70' is not a number",
        ),
        (
            '[[models]]\nmanufacturer = "X"\nmodel = "Y"\nname = "Z"\nkind = "watch"\n',
            "{src}: models[0] (X Y).kind: 'watch' is not one of phone, laptop, desktop, board",
        ),
        (
            '[[models]]\nmanufacturer = "X"\nmodel = "Y"\nname = "Z"\nkind = "phone"\n'
            '[[models]]\nmanufacturer = "x"\nmodel = "y "\nname = "Z"\nkind = "phone"\n',
            "{src}: models[1]: x y is listed twice",
        ),
        (
            '[[models]]\nmanufacturer = "X"\nmodel = "Y"\nname = "Z"\nkind = "phone"\ncolour = 1\n',
            "{src}: models[0]: unknown key 'colour'; expected one of kind, manufacturer, model, "
            "name, thresholds",
        ),
        (
            '[[models]]\nmanufacturer = "X"\nname = "Z"\nkind = "phone"\n',
            "{src}: models[0].model: required text is missing",
        ),
    ],
)
def test_bad_model_entries_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    text, source = write(tmp_path, KINDS_OK + extra)
    with pytest.raises(CatalogError) as err:
        parse_models(text, source)
    assert str(err.value) == message.format(src=source)


def test_bad_kind_entries_are_refused(tmp_path: Path) -> None:
    bad = KINDS_OK.replace(
        'main_parts = ["board"]\n[kinds.board]', 'main_parts = ["cpu"]\n[kinds.board]'
    )
    text, source = write(tmp_path, bad)
    with pytest.raises(CatalogError) as err:
        parse_models(text, source)
    assert str(err.value) == (
        f"{source}:8: kinds.desktop.main_parts: 'cpu' is not a component; use one of "
        "battery, board, camera, charger, charging_port, fan, keyboard, screen, speaker, storage"
    )
    text, source = write(tmp_path, KINDS_OK.split("[kinds.board]")[0])
    with pytest.raises(CatalogError) as err:
        parse_models(text, source)
    assert str(err.value) == f"{source}: [kinds.board] is missing; every kind needs one"


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    text, source = write(tmp_path, KINDS_OK + "[[models]\n")
    with pytest.raises(CatalogError) as err:
        parse_models(text, source)
    assert str(err.value).startswith(f"{source}: not valid TOML: ")
    assert "(at line 14, column 9)" in str(err.value)


# --- actions and prices ---------------------------------------------------------------------


def test_battery_replacement_whole_record() -> None:
    action = load_actions()["battery_replacement"]
    assert action == Action(
        id="battery_replacement",
        kind="service",
        title={"en": "Replace the battery", "zh-CN": "更换电池"},
        steps={},
        component="battery",
        parts=("BAT-GENUINE",),
        prices={
            "CNY": PriceLine(Money(Decimal("349.00"), "CNY"), Money(Decimal("50.00"), "CNY")),
            "EUR": PriceLine(Money(Decimal("79.00"), "EUR"), Money(Decimal("20.00"), "EUR")),
            "USD": PriceLine(Money(Decimal("89.00"), "USD"), Money(Decimal("20.00"), "USD")),
        },
    )
    assert action.price("CNY") == Money(Decimal("399.00"), "CNY")
    assert str(action.price("EUR")) == "EUR 99.00"


def test_battery_inspection_is_a_free_service_on_the_battery() -> None:
    # What battery.hot and battery.not_present recommend: a desk check, published at 0.00
    # in every region's currency, on the battery (so warranty is judged on the battery).
    zero = {c: PriceLine(Money(Decimal("0.00"), c), Money(Decimal("0.00"), c)) for c in CURRENCY}
    action = load_actions()["battery_inspection"]
    assert action == Action(
        id="battery_inspection",
        kind="service",
        title={"en": "Inspect the battery at the service desk", "zh-CN": "到服务网点检测电池"},
        steps={},
        component="battery",
        parts=(),
        prices=zero,
    )
    assert [action.price(c) for c in CURRENCY] == [Money(Decimal("0.00"), c) for c in CURRENCY]


def test_reseat_drive_cable_is_self_help_with_steps_in_both_languages() -> None:
    # What storage.crc_errors recommends: CRC errors are the cable, not the disk.
    action = load_actions()["reseat_drive_cable"]
    assert action == Action(
        id="reseat_drive_cable",
        kind="self_help",
        title={
            "en": "Reseat or replace the drive's data cable",
            "zh-CN": "重新插好或更换硬盘数据线",
        },
        steps={
            "en": (
                "Back up your data first.",
                "Switch the computer off and unplug it.",
                "Unplug the drive's data cable at both ends and plug it in firmly, "
                "or use a new cable.",
                "Run the check again: the count of cable errors should stop growing.",
            ),
            "zh-CN": (
                "先备份数据。",
                "关闭电脑并拔下电源。",
                "将硬盘数据线两端拔下后重新插紧，或换一条新数据线。",
                "再次运行检测：线缆错误计数应不再增长。",
            ),
        },
        component=None,
        parts=(),
        prices={},
    )
    assert action.price("CNY") == Money(Decimal("0.00"), "CNY")


def test_shipped_catalog_has_both_kinds_and_every_issue_action() -> None:
    catalog = load_actions()
    assert {a for a, x in catalog.items() if x.kind == "self_help"} == {
        "free_space",
        "update_firmware",
        "clean_port",
        "calibrate_battery",
        "reseat_drive_cable",
    }
    assert {a for a, x in catalog.items() if x.kind == "service"} == {
        "battery_replacement",
        "battery_inspection",
        "screen_replacement",
        "storage_replacement",
        "charging_port_repair",
        "fan_cleaning",
        "firmware_update_desk",
        "data_backup",
    }
    for action in catalog.values():
        for line in action.prices.values():
            # Never float: exact decimals with the currency's two places.
            assert isinstance(line.total.amount, Decimal)
            assert line.total.amount.as_tuple().exponent == -2


def test_self_help_is_free_with_steps_in_both_languages() -> None:
    action = load_actions()["clean_port"]
    assert action.price("CNY") == Money(Decimal("0.00"), "CNY")
    assert action.price("JPY") == Money(Decimal("0"), "JPY")
    assert len(action.steps["en"]) == len(action.steps["zh-CN"]) == 3
    assert action.steps["zh-CN"][0] == "关机并拔下数据线。"


def test_service_without_a_price_in_the_currency_says_where_to_add_it() -> None:
    with pytest.raises(CatalogError) as err:
        load_actions()["screen_replacement"].price("GBP")
    assert str(err.value) == (
        "action 'screen_replacement' has no published price in GBP; "
        "add [actions.screen_replacement.prices.GBP] to actions.toml"
    )


SERVICE = """\
# a test catalog
[actions.screen]
kind = "service"
title = {{ en = "Replace the screen", zh-CN = "更换屏幕" }}
component = "screen"
{prices}
"""


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        (
            "prices.CNY = { parts = -1.00, labour = 50.00 }",
            "{src}:2: actions.screen.prices.CNY.parts: -1.00 is negative; "
            "a published price is 0 or more",
        ),
        (
            "prices.RMB = { parts = 1.00, labour = 50.00 }",
            "{src}:2: actions.screen.prices.RMB: 'RMB' is not a known ISO 4217 currency code "
            "(e.g. CNY, EUR, USD); add it to prices.CURRENCIES if it is real",
        ),
        (
            "prices.CNY = { parts = 1.005, labour = 50.00 }",
            "{src}:2: actions.screen.prices.CNY.parts: 1.005 has more than 2 decimal places "
            "for CNY",
        ),
        (
            "prices.JPY = { parts = 1000, labour = 0.5 }",
            "{src}:2: actions.screen.prices.JPY.labour: 0.5 has more than 0 decimal places for JPY",
        ),
        (
            'prices.CNY = { parts = "399.00", labour = 50.00 }',
            "{src}:2: actions.screen.prices.CNY.parts: '399.00' is not a number; write e.g. 399.00",
        ),
        (
            "prices.CNY = { parts = inf, labour = 50.00 }",
            "{src}:2: actions.screen.prices.CNY.parts: Infinity is not a finite number; "
            "write e.g. 399.00",
        ),
        (
            "prices.CNY = { parts = 1.00 }",
            "{src}:2: actions.screen.prices.CNY: must have exactly 'parts' and 'labour' amounts",
        ),
        (
            "",
            "{src}:2: actions.screen.prices: a service action needs a published price: "
            "add [actions.screen.prices.CNY] with parts and labour",
        ),
    ],
)
def test_bad_prices_are_refused(tmp_path: Path, prices: str, message: str) -> None:
    text, source = write(tmp_path, SERVICE.format(prices=prices), "actions.toml")
    with pytest.raises(CatalogError) as err:
        parse_actions(text, source)
    assert str(err.value) == message.format(src=source)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'kind = "repair"\ntitle = { en = "A", zh-CN = "甲" }',
            "{src}:1: actions.a.kind: 'repair' is not 'self_help' or 'service'",
        ),
        (
            'kind = "self_help"\ntitle = { en = "A" }\nsteps = { en = ["x"], zh-CN = ["甲"] }',
            "{src}:1: actions.a: title needs non-empty text for each of ('en', 'zh-CN')",
        ),
        (
            'kind = "self_help"\ntitle = { en = "A", zh-CN = "甲" }\n'
            'steps = { en = ["x", "y"], zh-CN = ["甲"] }',
            "{src}:1: actions.a.steps: en and zh-CN must have the same number of steps",
        ),
        (
            'kind = "self_help"\ntitle = { en = "A", zh-CN = "甲" }\n'
            'steps = { en = ["x"], zh-CN = ["甲"], fr = ["x"] }',
            "{src}:1: actions.a: steps.fr: unknown language; use ('en', 'zh-CN')",
        ),
        (
            'kind = "self_help"\ntitle = { en = "A", zh-CN = "甲" }\n'
            'steps = { en = ["x"], zh-CN = ["甲"] }\nprices.CNY = { parts = 1, labour = 1 }',
            "{src}:1: actions.a: unknown key 'prices'; expected one of kind, steps, title",
        ),
        (
            'kind = "service"\ntitle = { en = "A", zh-CN = "甲" }\ncomponent = "flux"\n'
            "prices.CNY = { parts = 1, labour = 1 }",
            "{src}:1: actions.a.component: 'flux' is not a known component; use one of battery, "
            "board, camera, charger, charging_port, fan, keyboard, screen, speaker, storage "
            "or leave it out",
        ),
    ],
)
def test_bad_actions_are_refused(tmp_path: Path, body: str, message: str) -> None:
    text, source = write(tmp_path, f"[actions.a]\n{body}\n", "actions.toml")
    with pytest.raises(CatalogError) as err:
        parse_actions(text, source)
    assert str(err.value) == message.format(src=source)


def test_empty_action_catalog_is_refused(tmp_path: Path) -> None:
    text, source = write(tmp_path, "# nothing yet\n", "actions.toml")
    with pytest.raises(CatalogError) as err:
        parse_actions(text, source)
    assert str(err.value) == f"{source}: no [actions.<id>] tables; add at least one action"


def test_money_refuses_mixing_currencies() -> None:
    with pytest.raises(ValueError, match="cannot add EUR to CNY"):
        _ = Money(Decimal("1.00"), "CNY") + Money(Decimal("1.00"), "EUR")


@pytest.mark.parametrize("module", ["data", "models", "prices", "warranty"])
def test_docstring_examples_run(module: str) -> None:
    # The examples in the module docstrings are the first thing a reader tries.
    mod = importlib.import_module(f"probelink.server.diagnosis.{module}")
    result = doctest.testmod(mod)
    assert (result.failed, result.attempted > 0) == (0, True)
