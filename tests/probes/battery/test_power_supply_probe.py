"""battery.power_supply against the captured machines, tiny trees and the psutil fallback."""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from probelink.probes.context import ProbeContext
from probelink.probes.psutil_source import PsutilSnapshot
from probelink.probes.registry import get
from probelink.probes.runner import run_one
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import battery_pb2, probe_pb2, status_pb2
from tests.conftest import MACHINES
from tests.treebuilder import Link, write_tree

PASS, WARN, FAIL = status_pb2.STATUS_PASS, status_pb2.STATUS_WARN, status_pb2.STATUS_FAIL
SKIP, ERROR = status_pb2.STATUS_SKIP, status_pb2.STATUS_ERROR
B = battery_pb2


def run(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    """The probe through the runner, without the one field that varies: duration."""
    results = run_one(get("battery.power_supply"), ctx)
    for r in results:
        r.ClearField("duration")
    return results


def stamped(**kwargs: Any) -> probe_pb2.ProbeResult:
    return probe_pb2.ProbeResult(
        probe="battery.power_supply",
        category=status_pb2.CATEGORY_BATTERY,
        kind=status_pb2.PROBE_KIND_TELEMETRY,
        **kwargs,
    )


def Check(code: str, status: int, message: str) -> probe_pb2.Check:
    return probe_pb2.Check(code=code, status=status, message=message)  # type: ignore[arg-type]


def Fact(name: str, value: str) -> probe_pb2.Fact:
    return probe_pb2.Fact(name=name, value=value)


def machine(name: str, **kwargs: Any) -> ProbeContext:
    return ProbeContext.for_machine(MACHINES / name / "sys", **kwargs)


# ---- the captured machines ------------------------------------------------------------


def test_laptop_worn_battery_warns_on_health() -> None:
    assert run(machine("laptop-worn-battery")) == [
        stamped(
            status=WARN,
            subject="BAT0",
            evidence="BAT0 (SMP 5B10W13975): 62 % of design capacity, 734 cycles, "
            "discharging at 81 %",
            checks=[
                Check(
                    "battery.health_pct",
                    WARN,
                    "health 62 % of design capacity is below 80 %: the battery is worn",
                ),
                Check("battery.cycle_count", PASS, "734 charge cycles is within 1000"),
            ],
            facts=[Fact("adapter.AC", "Mains offline")],
            battery=B.BatteryInfo(
                name="BAT0",
                source=B.BATTERY_SOURCE_SYSFS,
                status=B.BATTERY_STATUS_DISCHARGING,
                capacity_pct=81,
                health_pct=62.0,
                energy_full_wh=35.34,
                energy_full_design_wh=57.0,
                energy_now_wh=28.626,
                cycle_count=734,
                voltage_now_v=11.874,
                voltage_min_design_v=11.52,
                power_now_w=7.314,
                technology="Li-poly",
                manufacturer="SMP",
                model_name="5B10W13975",
                serial_number="1842",
                present=True,
            ),
        )
    ]


def test_laptop_limits_come_from_the_context() -> None:
    (r,) = run(
        machine(
            "laptop-worn-battery",
            limits={"battery.fail_health_pct": 65, "battery.max_cycle_count": 500},
        )
    )
    assert r.status == FAIL
    assert [(c.code, c.status, c.message) for c in r.checks] == [
        (
            "battery.health_pct",
            FAIL,
            "health 62 % of design capacity is below 65 %: the battery is worn out",
        ),
        ("battery.cycle_count", WARN, "734 charge cycles is above 500"),
    ]


def test_phone_above_design_passes_and_cycle_count_zero_is_not_reported() -> None:
    assert run(machine("phone-charge-units")) == [
        stamped(
            status=PASS,
            subject="battery",
            evidence="battery: 102.4 % of design capacity, charging at 67 %",
            checks=[
                Check(
                    "battery.health_pct",
                    PASS,
                    "health 102.4 %: full capacity is above design, as new cells often "
                    "report; not a fault",
                ),
                Check("battery.driver_health", PASS, "the battery's driver reports health 'Good'"),
                Check("battery.temperature", PASS, "battery temperature 31.2 °C is within 60 °C"),
            ],
            facts=[
                Fact("cycle_count", "0: the driver does not count cycles (not reported)"),
                Fact("adapter.usb", "USB online"),
            ],
            battery=B.BatteryInfo(
                name="battery",
                source=B.BATTERY_SOURCE_SYSFS,
                status=B.BATTERY_STATUS_CHARGING,
                health=B.BATTERY_HEALTH_GOOD,
                capacity_pct=67,
                health_pct=102.44,
                charge_full_ah=4.61,
                charge_full_design_ah=4.5,
                charge_now_ah=3.0887,
                voltage_now_v=4.123,
                current_now_a=1.523,
                temp_celsius=31.2,
                technology="Li-poly",
                present=True,
            ),
        )
    ]
    (r,) = run(machine("phone-charge-units"))
    assert not r.battery.HasField("cycle_count")


def test_desktop_mouse_battery_is_reported_not_judged() -> None:
    # Its psutil snapshot holds what psutil really says there: the mouse's 40 %, taken
    # for a system battery. The probe must not repeat that mistake.
    ctx = machine("desktop-no-battery")
    assert ctx.psutil is not None and ctx.psutil.sensors_battery().percent == 40
    mouse = "hid-<address>-battery"
    assert run(ctx) == [
        stamped(
            status=SKIP,
            evidence="no system battery: the only batteries in class/power_supply power "
            "peripherals (desktop or VM)",
        ),
        stamped(
            status=SKIP,
            subject=mouse,
            evidence=f"{mouse} (Wireless Mouse): a peripheral's battery (scope Device) at 40 %; "
            "not the system battery, so not judged",
            facts=[Fact("scope", "Device")],
            battery=B.BatteryInfo(
                name=mouse,
                source=B.BATTERY_SOURCE_SYSFS,
                status=B.BATTERY_STATUS_DISCHARGING,
                scope=B.BATTERY_SCOPE_DEVICE,
                capacity_pct=40,
                model_name="Wireless Mouse",
                present=True,
            ),
        ),
    ]


def test_board_with_only_a_usb_c_supply_skips() -> None:
    assert run(machine("board-iio-typec")) == [
        stamped(
            status=SKIP,
            evidence="no battery: class/power_supply has no Battery-type supply (desktop or VM); "
            "adapters: ucsi-source-psy-USBC000:001 (USB online)",
        )
    ]


def test_live_vm_without_battery_skips_or_reads() -> None:
    # This machine is a VM: most likely no battery at all. Whatever it has, nothing crashes.
    for r in run(ProbeContext.for_machine()):
        assert r.status in (SKIP, PASS, WARN, FAIL), r


# ---- tiny trees ------------------------------------------------------------------------


def battery_tree(tmp_path: Path, batteries: Mapping[str, Mapping[str, str | bytes]]) -> Path:
    files: dict[str, str | bytes | Link] = {}
    for name, attrs in batteries.items():
        dev = f"devices/platform/test-battery.{name}/power_supply/{name}"
        files[f"class/power_supply/{name}"] = Link(f"../../{dev}")
        files[f"{dev}/type"] = "Battery\n"
        files.update({f"{dev}/{k}": v for k, v in attrs.items()})
    return write_tree(tmp_path / "sys", files)


def ctx_for(root: Path, **kwargs: Any) -> ProbeContext:
    return ProbeContext(sysfs=SysfsRoot(root, read=kwargs.pop("read", None) or _plain), **kwargs)


def _plain(path: Path) -> bytes:
    return path.read_bytes()


GOOD = {"energy_full_design": "50000000\n", "energy_full": "48000000\n", "status": "Full\n"}


def test_non_numeric_energy_full_errors_that_battery_only(tmp_path: Path) -> None:
    root = battery_tree(tmp_path, {"BAT0": {**GOOD, "energy_full": "unknown\n"}, "BAT1": GOOD})
    bat0, bat1 = run(ctx_for(root))
    assert (bat0.subject, bat0.status) == ("BAT0", ERROR)
    assert bat0.error == probe_pb2.ProbeError(
        kind=probe_pb2.PROBE_ERROR_KIND_PARSE,
        message="class/power_supply/BAT0/energy_full: expected an integer, read 'unknown'",
        source="class/power_supply/BAT0/energy_full",
    )
    assert not bat0.checks
    # What could be read is still there for the engineer; no health was made up.
    assert bat0.battery == B.BatteryInfo(
        name="BAT0",
        source=B.BATTERY_SOURCE_SYSFS,
        status=B.BATTERY_STATUS_FULL,
        energy_full_design_wh=50.0,
    )
    assert (bat1.subject, bat1.status, bat1.battery.health_pct) == ("BAT1", PASS, 96.0)


@pytest.mark.parametrize("err", [errno.EIO, errno.EAGAIN, errno.EACCES])
def test_unreadable_attribute_is_error_never_fail(tmp_path: Path, err: int) -> None:
    root = battery_tree(tmp_path, {"BAT0": {**GOOD, "health": "Dead\n"}})

    def read(path: Path) -> bytes:
        if path.name == "energy_full":
            raise OSError(err, os.strerror(err))
        return path.read_bytes()

    (r,) = run(ctx_for(root, read=read))
    assert r.status == ERROR
    assert r.error.kind == probe_pb2.PROBE_ERROR_KIND_FILE_READ
    assert r.error.source == "class/power_supply/BAT0/energy_full"
    assert errno.errorcode[err] in r.error.message


def test_sysfs_root_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    (r,) = run(ctx_for(tmp_path / "nowhere"))
    assert r.status == ERROR
    assert r.error.kind == probe_pb2.PROBE_ERROR_KIND_FILE_READ
    assert "does not exist" in r.evidence


@pytest.mark.parametrize(
    ("health", "status", "enum"),
    [
        ("Good", PASS, B.BATTERY_HEALTH_GOOD),
        ("Warm", PASS, B.BATTERY_HEALTH_WARM),
        ("Cold", WARN, B.BATTERY_HEALTH_COLD),
        ("Calibration required", WARN, B.BATTERY_HEALTH_CALIBRATION_REQUIRED),
        ("Safety timer expire", WARN, B.BATTERY_HEALTH_SAFETY_TIMER_EXPIRE),
        ("Dead", FAIL, B.BATTERY_HEALTH_DEAD),
        ("Overheat", FAIL, B.BATTERY_HEALTH_OVERHEAT),
        ("Over voltage", FAIL, B.BATTERY_HEALTH_OVER_VOLTAGE),
        ("Unspecified failure", FAIL, B.BATTERY_HEALTH_UNSPECIFIED_FAILURE),
        ("Cell imbalance", FAIL, B.BATTERY_HEALTH_CELL_IMBALANCE),
    ],
)
def test_driver_health_word(tmp_path: Path, health: str, status: int, enum: int) -> None:
    root = battery_tree(tmp_path, {"BAT0": {**GOOD, "health": f"{health}\n"}})
    (r,) = run(ctx_for(root))
    assert r.status == status
    assert r.battery.health == enum
    assert (
        Check("battery.driver_health", status, f"the battery's driver reports health {health!r}")
        in r.checks
    )


def test_unknown_health_word_is_a_fact_not_a_verdict(tmp_path: Path) -> None:
    root = battery_tree(tmp_path, {"BAT0": {**GOOD, "health": "Flux capacitor\n"}})
    (r,) = run(ctx_for(root))
    assert r.status == PASS
    assert r.battery.health == B.BATTERY_HEALTH_UNKNOWN
    assert Fact("health", "driver reports 'Flux capacitor', a value we do not know") in r.facts


@pytest.mark.parametrize(
    ("full", "status", "message"),
    [
        ("40000000", PASS, "health 80 % of design capacity is at or above 80 %"),
        ("39500000", WARN, "health 79 % of design capacity is below 80 %: the battery is worn"),
        ("24000000", FAIL, "health 48 % of design capacity is below 50 %: the battery is worn out"),
    ],
)
def test_health_limits(tmp_path: Path, full: str, status: int, message: str) -> None:
    root = battery_tree(tmp_path, {"BAT0": {**GOOD, "energy_full": full}})
    (r,) = run(ctx_for(root))
    assert (r.status, list(r.checks)) == (status, [Check("battery.health_pct", status, message)])


def test_charge_pair_when_energy_pair_is_absent(tmp_path: Path) -> None:
    root = battery_tree(
        tmp_path, {"BAT0": {"charge_full_design": "3000000\n", "charge_full": "2250000"}}
    )
    (r,) = run(ctx_for(root))
    assert (r.status, r.battery.health_pct) == (WARN, 75.0)


@pytest.mark.parametrize(
    ("attrs", "why"),
    [
        (
            {"energy_full": "48000000\n", "energy_full_design": "0\n"},
            "energy_full_design is 0, so wear cannot be computed",
        ),
        (
            {"charge_full": "3000000\n"},
            "charge_full_design is not reported, so wear cannot be computed",
        ),
        ({}, "neither energy_full nor charge_full is reported, so wear cannot be computed"),
    ],
)
def test_no_design_capacity_means_no_health(
    tmp_path: Path, attrs: dict[str, str], why: str
) -> None:
    root = battery_tree(tmp_path, {"BAT0": attrs})
    (r,) = run(ctx_for(root))
    assert r.status == PASS
    assert not r.battery.HasField("health_pct")
    assert not r.checks
    assert list(r.facts) == [Fact("health_pct", why)]


def test_cycles_and_temperature_limits(tmp_path: Path) -> None:
    root = battery_tree(tmp_path, {"BAT0": {**GOOD, "cycle_count": "1200\n", "temp": "655\n"}})
    (r,) = run(ctx_for(root))
    assert r.status == WARN
    assert list(r.checks) == [
        Check("battery.health_pct", PASS, "health 96 % of design capacity is at or above 80 %"),
        Check("battery.cycle_count", WARN, "1200 charge cycles is above 1000"),
        Check("battery.temperature", WARN, "battery temperature 65.5 °C is above 60 °C"),
    ]


def test_only_battery_bay_empty_means_no_battery_to_judge(tmp_path: Path) -> None:
    # An ACPI stub with present=0 (psutil would find nothing there either): no WARN.
    root = battery_tree(tmp_path, {"BAT0": {"present": "0\n", "status": "Unknown\n"}})
    snap = PsutilSnapshot(
        {"sensors_battery": {"percent": 50, "secsleft": -1, "power_plugged": True}}
    )
    assert run(ctx_for(root, psutil=snap)) == [
        stamped(
            status=SKIP,
            evidence="no battery: the driver reports every battery bay empty (BAT0)",
        ),
        stamped(
            status=SKIP,
            subject="BAT0",
            evidence="BAT0: bay empty",
            battery=B.BatteryInfo(
                name="BAT0",
                source=B.BATTERY_SOURCE_SYSFS,
                status=B.BATTERY_STATUS_UNKNOWN,
                present=False,
            ),
        ),
    ]


def test_empty_second_bay_is_skip_beside_the_judged_battery(tmp_path: Path) -> None:
    root = battery_tree(tmp_path, {"BAT0": {**GOOD, "present": "1\n"}, "BAT1": {"present": "0\n"}})
    bat0, bat1 = run(ctx_for(root))
    assert (bat0.subject, bat0.status, bat0.battery.health_pct) == ("BAT0", PASS, 96.0)
    assert bat1 == stamped(
        status=SKIP,
        subject="BAT1",
        evidence="BAT1: bay empty",
        battery=B.BatteryInfo(name="BAT1", source=B.BATTERY_SOURCE_SYSFS, present=False),
    )


def test_empty_bay_with_unreadable_attributes_is_still_skip(tmp_path: Path) -> None:
    # A driver that answers ENODEV for the energy of a battery that is not there.
    root = battery_tree(tmp_path, {"BAT1": {"present": "0\n", "energy_full": "0\n"}})

    def read(path: Path) -> bytes:
        if path.name == "energy_full":
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        return path.read_bytes()

    summary, bat1 = run(ctx_for(root, read=read))
    assert (summary.status, bat1.status, bat1.evidence) == (SKIP, SKIP, "BAT1: bay empty")
    assert not bat1.HasField("error")
    [unreadable] = bat1.facts
    assert unreadable.name == "unreadable"
    assert "class/power_supply/BAT1/energy_full" in unreadable.value
    assert "ENODEV" in unreadable.value


# ---- psutil fallback -------------------------------------------------------------------


def test_psutil_fallback_when_sysfs_has_no_battery(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "sys", {"class/power_supply": Link("../nowhere")})
    snap = PsutilSnapshot(
        {"sensors_battery": {"percent": 76.5, "secsleft": 5400, "power_plugged": False}}
    )
    why = "psutil gives charge and plug state only: wear, cycles and temperature cannot be judged"
    assert run(ctx_for(root, psutil=snap)) == [
        stamped(
            status=PASS,
            subject="battery",
            evidence=f"battery at 76.5 %, on battery (from psutil; {why})",
            checks=[Check("battery.health_pct", SKIP, why)],
            measurements=[probe_pb2.Measurement(name="seconds_left", value=5400, unit="second")],
            battery=B.BatteryInfo(
                name="battery",
                source=B.BATTERY_SOURCE_PSUTIL,
                capacity_pct=76.5,
                power_plugged=False,
            ),
        )
    ]


@pytest.mark.parametrize("snapshot", [{"sensors_battery": None}, {}])
def test_no_battery_anywhere_skips(tmp_path: Path, snapshot: dict[str, Any]) -> None:
    root = write_tree(tmp_path / "sys", {"class": Link("../nowhere")})
    (r,) = run(ctx_for(root, psutil=PsutilSnapshot(snapshot)))
    assert (r.status, r.evidence) == (
        SKIP,
        "no battery: class/power_supply has no Battery-type supply (desktop or VM)",
    )


def test_vendor_strings_with_invalid_utf8_and_padding_reach_the_report(tmp_path: Path) -> None:
    root = battery_tree(
        tmp_path,
        {"BAT0": {**GOOD, "manufacturer": b"\xc3(LG\n", "model_name": b"DELL 7FHHV  "}},
    )
    (r,) = run(ctx_for(root))
    assert (r.battery.manufacturer, r.battery.model_name) == ("\ufffd(LG", "DELL 7FHHV")
    assert r.evidence == "BAT0 (\ufffd(LG DELL 7FHHV): 96 % of design capacity, full"
    # The message survives the wire: protobuf strings must be valid UTF-8.
    assert probe_pb2.ProbeResult.FromString(r.SerializeToString()) == r
