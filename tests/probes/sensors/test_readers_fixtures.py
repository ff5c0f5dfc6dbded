"""The sensor readers on each captured machine, compared as whole records."""

from __future__ import annotations

import pytest

from probelink.probes.readers.bus_iio import IioChannel, IioDevice, read_iio_devices
from probelink.probes.readers.class_hwmon import (
    HwmonChip,
    HwmonFan,
    HwmonTemp,
    HwmonVoltage,
    read_hwmon,
)
from probelink.probes.readers.class_thermal import (
    CoolingDevice,
    ThermalZone,
    TripPoint,
    read_cooling_devices,
    read_thermal_zones,
)
from probelink.probes.sysread import SysfsRoot
from tests.conftest import MACHINES


def approx(value: float) -> float:
    """pytest.approx, typed as the float it stands for inside a dataclass."""
    return pytest.approx(value)  # type: ignore[return-value]


def sysfs(machine: str) -> SysfsRoot:
    return SysfsRoot(MACHINES / machine / "sys")


def coretemp(i: int, label: str, celsius: float) -> HwmonTemp:
    return HwmonTemp(i, label, celsius, 84.0, 100.0)


def test_laptop_hwmon_has_uninitialised_acpitz_and_coretemp() -> None:
    assert read_hwmon(sysfs("laptop-worn-battery")) == [
        # The thermal core mirrors the ACPI zone as hwmon, with the same impossible value.
        HwmonChip(
            "hwmon0",
            "acpitz",
            "name",
            [HwmonTemp(1, "temp1", -273.2, None, 103.0)],
            thermal_zone="thermal_zone0",
        ),
        HwmonChip(
            "hwmon3",
            "coretemp",
            "name",
            [
                coretemp(1, "Package id 0", 52.0),
                coretemp(2, "Core 0", 48.0),
                coretemp(3, "Core 1", 50.0),
                coretemp(4, "Core 2", 47.0),
                coretemp(5, "Core 3", 51.0),  # temp5_input has no trailing newline
            ],
        ),
    ]


def test_laptop_thermal_zones_and_cooling_devices() -> None:
    root = sysfs("laptop-worn-battery")
    assert read_thermal_zones(root) == [
        ThermalZone(
            "thermal_zone0", "acpitz", -273.2, "enabled", [TripPoint(0, "critical", 103.0)]
        ),
        ThermalZone(
            "thermal_zone1",
            "x86_pkg_temp",
            52.0,
            "enabled",
            [TripPoint(0, "passive", 0.0), TripPoint(1, "passive", 0.0)],
        ),
        ThermalZone(
            "thermal_zone2",
            "TCPU",
            53.0,
            "enabled",
            [
                TripPoint(0, "critical", 105.0),
                TripPoint(1, "hot", 100.0),
                TripPoint(2, "passive", 95.0),
            ],
        ),
    ]
    assert read_cooling_devices(root) == [
        CoolingDevice("cooling_device0", "Processor", 0, 10),
        CoolingDevice("cooling_device1", "Processor", 0, 10),
        CoolingDevice("cooling_device2", "intel_powerclamp", -1, 50),
        CoolingDevice("cooling_device3", "TCC Offset", 5, 63),
    ]
    assert read_iio_devices(root) == []


def test_desktop_hwmon_quirks() -> None:
    assert read_hwmon(sysfs("desktop-no-battery")) == [
        HwmonChip(
            "hwmon1",
            "nct6775",
            "name",
            temperatures=[
                HwmonTemp(1, "SYSTIN", 32.0, 80.0, None),
                HwmonTemp(2, "CPUTIN", 38.5, 80.0, None),
            ],
            fans=[
                HwmonFan(1, "fan1", 1180.0, 300.0),  # fan1_input has no trailing newline
                HwmonFan(2, "fan2", 0.0, 600.0, alarm=True),
                HwmonFan(3, "fan3", 0.0, 0.0),
            ],
            voltages=[
                HwmonVoltage(0, "in0", 1.04, 0.6, 1.496),
                HwmonVoltage(1, "in1", 1.016, 0.0, 0.0),
                HwmonVoltage(2, "in2", 3.36, 2.976, 3.632),
            ],
        ),
        # No name file anywhere: named after the driver its device/driver link points to
        # (a dangling link in this capture, read but never followed).
        HwmonChip("hwmon2", "k10temp", "driver", [HwmonTemp(1, "Tctl", 41.25, 70.0, 100.0)]),
        # An old driver: name and attributes under hwmon4/device/; temp3_input is empty.
        HwmonChip(
            "hwmon4",
            "it8792",
            "device/name",
            temperatures=[
                HwmonTemp(1, "temp1", 35.0, 127.0, None),
                HwmonTemp(2, "temp2", 30.0, 127.0, None),
                HwmonTemp(3, "temp3", None, None, None),
            ],
            fans=[HwmonFan(1, "fan1", 0.0, None)],
            voltages=[HwmonVoltage(0, "in0", 1.104, 0.0, 3.06)],
        ),
    ]
    root = sysfs("desktop-no-battery")
    assert read_thermal_zones(root) == []
    assert read_cooling_devices(root) == []


def test_board_iio_devices_scaled() -> None:
    devices = read_iio_devices(sysfs("board-iio-typec"))
    g = 0.00980665  # HID accel_3d reports milli-g; in_accel_scale turns it into m/s^2
    rad = 0.000174533  # HID gyro_3d: 0.01 degree/s per count
    assert devices == [
        IioDevice(
            "iio:device0",
            "accel_3d",
            [
                IioChannel("in_accel_x", "accel", approx(-12 * g), "m/s^2", -12.0, g, 0.0),
                IioChannel("in_accel_y", "accel", approx(25 * g), "m/s^2", 25.0, g, 0.0),
                IioChannel("in_accel_z", "accel", approx(-1002 * g), "m/s^2", -1002.0, g, 0.0),
            ],
        ),
        IioDevice(
            "iio:device1",
            "gyro_3d",
            [
                IioChannel("in_anglvel_x", "anglvel", approx(3 * rad), "rad/s", 3.0, rad, 0.0),
                IioChannel("in_anglvel_y", "anglvel", approx(-2 * rad), "rad/s", -2.0, rad, 0.0),
                IioChannel("in_anglvel_z", "anglvel", approx(1 * rad), "rad/s", 1.0, rad, 0.0),
            ],
        ),
        IioDevice(
            "iio:device2",
            "als",
            [
                IioChannel("in_illuminance", "illuminance", approx(134.2), "lux", 1342.0, 0.1, 0.0),
                IioChannel("in_intensity_both", "intensity", approx(134.2), "", 1342.0, 0.1, 0.0),
            ],
        ),
    ]
    root = sysfs("board-iio-typec")
    assert (read_hwmon(root), read_thermal_zones(root), read_cooling_devices(root)) == ([], [], [])


def test_phone_thermal_zones() -> None:
    root = sysfs("phone-charge-units")
    assert read_thermal_zones(root) == [
        ThermalZone("thermal_zone0", "battery", 31.2, "enabled", []),
        ThermalZone(
            "thermal_zone1",
            "skin-therm",
            33.8,
            "enabled",
            [TripPoint(0, "passive", 55.0), TripPoint(1, "critical", 70.0)],
        ),
    ]
    assert read_cooling_devices(root) == [
        CoolingDevice("cooling_device0", "thermal-cpufreq-0", 0, 15)
    ]
    assert read_hwmon(root) == []
    assert read_iio_devices(root) == []
