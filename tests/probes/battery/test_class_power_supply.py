"""The power_supply reader against the captured machines and tiny trees of every quirk."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from probelink.probes.readers.class_power_supply import (
    PowerSupply,
    read_power_supplies,
    read_supply,
    system_battery,
)
from probelink.probes.readers.problems import ReadProblem
from probelink.probes.sysread import SysfsRoot
from tests.conftest import MACHINES
from tests.treebuilder import Dir, Link, write_tree

LAPTOP_BAT0 = PowerSupply(
    name="BAT0",
    type="Battery",
    status="Discharging",
    present=True,
    capacity_pct=81,
    capacity_level="Normal",
    energy_full_wh=35.34,
    energy_full_design_wh=57.0,
    energy_now_wh=28.626,
    cycle_count=734,
    voltage_now_v=11.874,
    voltage_min_design_v=11.52,
    power_now_w=7.314,
    technology="Li-poly",
    manufacturer="SMP",
    model_name="5B10W13975",  # the driver pads it with spaces
    serial_number="1842",
)

PHONE_BATTERY = PowerSupply(
    name="battery",
    type="Battery",
    status="Charging",
    health="Good",
    present=True,
    capacity_pct=67,
    charge_full_ah=4.61,
    charge_full_design_ah=4.5,
    charge_now_ah=3.0887,
    cycle_count=0,  # kept as printed: the probe, not the reader, knows 0 means "not counted"
    voltage_now_v=4.123,
    current_now_a=1.523,
    temp_celsius=31.2,
    technology="Li-poly",
)

MOUSE = PowerSupply(
    name="hid-<address>-battery",
    type="Battery",
    scope="Device",
    status="Discharging",
    present=True,
    capacity_pct=40,
    model_name="Wireless Mouse",
)


def machine(name: str) -> SysfsRoot:
    return SysfsRoot(MACHINES / name / "sys")


def test_laptop_with_worn_battery() -> None:
    assert read_power_supplies(machine("laptop-worn-battery")) == [
        PowerSupply(name="AC", type="Mains", online=0),
        LAPTOP_BAT0,
    ]


def test_phone_in_charge_units() -> None:
    assert read_power_supplies(machine("phone-charge-units")) == [
        PHONE_BATTERY,
        PowerSupply(name="usb", type="USB", online=1, voltage_now_v=5.012),
    ]


def test_desktop_has_only_a_peripheral_battery() -> None:
    sysfs = machine("desktop-no-battery")
    assert read_power_supplies(sysfs) == [MOUSE]
    assert not MOUSE.is_system_battery
    assert system_battery(sysfs) is None


def test_board_has_a_usb_c_source_only() -> None:
    sysfs = machine("board-iio-typec")
    assert read_power_supplies(sysfs) == [
        PowerSupply(
            name="ucsi-source-psy-USBC000:001",
            type="USB",
            scope="System",
            online=1,
            voltage_now_v=20.0,
            current_now_a=1.21,
        )
    ]
    assert system_battery(sysfs) is None


def test_system_battery_is_the_laptops_own() -> None:
    assert system_battery(machine("laptop-worn-battery")) == LAPTOP_BAT0


# ---- tiny trees: quirks and bad input -------------------------------------------------

DEV = "devices/platform/test-battery/power_supply/BAT0"


def tree(tmp_path: Path, attrs: dict[str, str | bytes | Link | Dir]) -> Path:
    files: dict[str, str | bytes | Link | Dir] = {
        "class/power_supply/BAT0": Link(f"../../{DEV}"),
        f"{DEV}/type": "Battery\n",
    }
    files.update({f"{DEV}/{k}": v for k, v in attrs.items()})
    return write_tree(tmp_path / "sys", files)


def test_system_battery_passes_over_an_empty_bay(tmp_path: Path) -> None:
    # A ThinkPad-style second bay: BAT0 reports no battery, BAT1 holds the one in use.
    bat1 = "devices/platform/test-battery/power_supply/BAT1"
    root = write_tree(
        tmp_path / "sys",
        {
            "class/power_supply/BAT0": Link(f"../../{DEV}"),
            f"{DEV}/type": "Battery\n",
            f"{DEV}/present": "0\n",
            "class/power_supply/BAT1": Link(f"../../{bat1}"),
            f"{bat1}/type": "Battery\n",
            f"{bat1}/present": "1\n",
            f"{bat1}/status": "Discharging\n",
        },
    )
    found = system_battery(SysfsRoot(root))
    assert found is not None and found.name == "BAT1"
    only_empty = tree(tmp_path / "empty", {"present": "0\n"})
    assert system_battery(SysfsRoot(only_empty)) is None


def test_values_without_trailing_newline_read_the_same(tmp_path: Path) -> None:
    root = tree(tmp_path, {"energy_full": "41000000", "status": "Full", "cycle_count": "12"})
    assert read_supply(SysfsRoot(root), "BAT0") == PowerSupply(
        name="BAT0", type="Battery", status="Full", energy_full_wh=41.0, cycle_count=12
    )


def test_empty_file_is_absent_not_zero(tmp_path: Path) -> None:
    root = tree(tmp_path, {"energy_full": "", "manufacturer": "\n", "capacity": "55\n"})
    assert read_supply(SysfsRoot(root), "BAT0") == PowerSupply(
        name="BAT0", type="Battery", capacity_pct=55
    )


def test_missing_attributes_are_none(tmp_path: Path) -> None:
    root = tree(tmp_path, {})
    assert read_supply(SysfsRoot(root), "BAT0") == PowerSupply(name="BAT0", type="Battery")


def test_padded_model_and_invalid_utf8_vendor(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "model_name": "5B10W13975  \n",
            "manufacturer": b"\xffSMP\xfe\n",
            "serial_number": "  42\n",
        },
    )
    assert read_supply(SysfsRoot(root), "BAT0") == PowerSupply(
        name="BAT0",
        type="Battery",
        model_name="5B10W13975",
        manufacturer="\ufffdSMP\ufffd",
        serial_number="42",
    )


def test_non_numeric_value_is_kept_as_an_error_of_that_supply(tmp_path: Path) -> None:
    root = tree(tmp_path, {"energy_full": "n/a\n", "energy_full_design": "57000000\n"})
    assert read_supply(SysfsRoot(root), "BAT0") == PowerSupply(
        name="BAT0",
        type="Battery",
        energy_full_design_wh=57.0,
        errors=[
            ReadProblem(
                "class/power_supply/BAT0/energy_full",
                "parse",
                "class/power_supply/BAT0/energy_full: expected an integer, read 'n/a'",
            ),
        ],
    )


def failing(name: str, err: int, times: int = 1_000) -> Callable[[Path], bytes]:
    """A read seam that fails `times` times with `err` for files called `name`."""
    left = {"n": times}

    def read(path: Path) -> bytes:
        if path.name == name and left["n"] > 0:
            left["n"] -= 1
            raise OSError(err, os.strerror(err))
        return path.read_bytes()

    return read


@pytest.mark.parametrize("err", [errno.EIO, errno.EINVAL, errno.EACCES, errno.EAGAIN])
def test_unreadable_attribute_is_kept_with_its_errno(tmp_path: Path, err: int) -> None:
    root = tree(tmp_path, {"energy_full": "41000000\n", "capacity": "50\n"})
    got = read_supply(SysfsRoot(root, read=failing("energy_full", err)), "BAT0")
    assert got.capacity_pct == 50
    assert got.energy_full_wh is None
    assert len(got.errors) == 1
    assert got.errors[0].kind == "file_read"
    assert got.errors[0].source == "class/power_supply/BAT0/energy_full"
    assert errno.errorcode[err] in got.errors[0].message


def test_eagain_once_is_retried_and_read(tmp_path: Path) -> None:
    root = tree(tmp_path, {"energy_full": "41000000\n"})
    got = read_supply(SysfsRoot(root, read=failing("energy_full", errno.EAGAIN, times=1)), "BAT0")
    assert got == PowerSupply(name="BAT0", type="Battery", energy_full_wh=41.0)


def test_one_broken_supply_hides_no_other(tmp_path: Path) -> None:
    other = "devices/platform/test-battery/power_supply/BAT1"
    root = tree(tmp_path, {"energy_full": "bogus\n"})
    write_tree(
        root,
        {
            "class/power_supply/BAT1": Link(f"../../{other}"),
            f"{other}/type": "Battery\n",
            f"{other}/energy_full": "40000000\n",
        },
    )
    bat0, bat1 = read_power_supplies(SysfsRoot(root))
    assert [e.kind for e in bat0.errors] == ["parse"]
    assert bat1 == PowerSupply(name="BAT1", type="Battery", energy_full_wh=40.0)


def test_dangling_and_escaping_links_are_not_followed(tmp_path: Path) -> None:
    outside = write_tree(tmp_path / "host", {"BAT9/type": "Battery\n"})
    root = write_tree(
        tmp_path / "sys",
        {
            "class/power_supply/BAT7": Link("../../devices/gone/power_supply/BAT7"),
            "class/power_supply/BAT9": Link(str(outside / "BAT9")),
        },
    )
    got = read_power_supplies(SysfsRoot(root))
    assert [(s.name, s.type, [e.kind for e in s.errors]) for s in got] == [
        ("BAT7", None, ["file_read"]),
        ("BAT9", None, ["file_read"]),
    ]


def test_root_that_does_not_exist_has_no_supplies(tmp_path: Path) -> None:
    assert read_power_supplies(SysfsRoot(tmp_path / "nowhere")) == []


def test_tree_without_the_class_has_no_supplies(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "sys", {"class/thermal": Dir()})
    assert read_power_supplies(SysfsRoot(root)) == []


def test_a_peripheral_address_is_never_recorded() -> None:
    from probelink.probes.readers.class_power_supply import shown_name

    assert shown_name("hid-e3:56:2a:1b:c4:07-battery") == "hid-<address>-battery"
    assert shown_name("hid-E3:56:2A:1B:C4:07-battery") == "hid-<address>-battery"
    for plain in ("BAT0", "AC", "ucsi-source-psy-USBC000:001", "hid-0000:0001-battery"):
        assert shown_name(plain) == plain
    # The captured desktop's mouse: nothing read from it carries the address.
    supplies = read_power_supplies(machine("desktop-no-battery"))
    assert [s.name for s in supplies] == ["hid-<address>-battery"]
    assert "e3:56" not in repr(supplies)
