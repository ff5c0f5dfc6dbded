"""The sensor readers on tiny trees: what broken drivers and broken captures do."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

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
from probelink.probes.readers.problems import ReadProblem
from probelink.probes.sysread import SysfsRoot
from tests.treebuilder import Dir, Link, write_tree

HW = "devices/platform/chip.0/hwmon/hwmon0"


def approx(value: float) -> float:
    """pytest.approx, typed as the float it stands for inside a dataclass."""
    return pytest.approx(value)  # type: ignore[return-value]


def chip_tree(
    attrs: dict[str, str | bytes | Link | Dir], name: str | None = "chip"
) -> dict[str, str | bytes | Link | Dir]:
    tree: dict[str, str | bytes | Link | Dir] = {"class/hwmon/hwmon0": Link(f"../../{HW}")}
    if name is not None:
        tree[f"{HW}/name"] = name + "\n"
    tree |= {f"{HW}/{k}": v for k, v in attrs.items()}
    return tree


def failing(errno_: int, paths: set[str], times: int | None = None) -> Callable[[Path], bytes]:
    """A read seam: reading a file named in `paths` fails with `errno_`.

    It fails the first `times` reads of that file, or every read when `times` is None.
    """
    calls: dict[str, int] = {}

    def read(path: Path) -> bytes:
        rel = path.name
        if rel in paths and path.exists():
            calls[rel] = calls.get(rel, 0) + 1
            if times is None or calls[rel] <= times:
                raise OSError(errno_, os.strerror(errno_))
        return path.read_bytes()

    return read


def test_missing_empty_and_non_numeric_attributes(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "sys",
        chip_tree(
            {
                "temp1_input": "45000\n",  # no max, no crit: absent, not an error
                "temp2_input": b"",  # empty: no reading
                "temp2_max": "80000\n",
                "temp3_input": "N/A\n",  # non-numeric: a parse problem for this channel only
                "temp3_crit": "90000",
                "fan1_input": "800",
                "fan1_min": "zero\n",
                "in0_input": "1200\n",
            }
        ),
    )
    source = "class/hwmon/hwmon0/temp3_input"
    assert read_hwmon(SysfsRoot(root)) == [
        HwmonChip(
            "hwmon0",
            "chip",
            "name",
            temperatures=[
                HwmonTemp(1, "temp1", 45.0, None, None),
                HwmonTemp(2, "temp2", None, 80.0, None),
                HwmonTemp(
                    3,
                    "temp3",
                    None,
                    None,
                    90.0,
                    errors=[
                        ReadProblem(source, "parse", f"{source}: expected an integer, read 'N/A'")
                    ],
                ),
            ],
            fans=[
                HwmonFan(
                    1,
                    "fan1",
                    800.0,
                    None,
                    errors=[
                        ReadProblem(
                            "class/hwmon/hwmon0/fan1_min",
                            "parse",
                            "class/hwmon/hwmon0/fan1_min: expected an integer, read 'zero'",
                        )
                    ],
                )
            ],
            voltages=[HwmonVoltage(0, "in0", 1.2, None, None)],
        )
    ]


def test_eagain_is_retried_and_recovers(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "sys", chip_tree({"temp1_input": "51000\n"}))
    sysfs = SysfsRoot(root, read=failing(errno.EAGAIN, {"temp1_input"}, times=2))
    assert read_hwmon(sysfs) == [
        HwmonChip("hwmon0", "chip", "name", [HwmonTemp(1, "temp1", 51.0, None, None)])
    ]


@pytest.mark.parametrize(
    ("code", "name"), [(errno.EINVAL, "EINVAL"), (errno.EIO, "EIO"), (errno.EAGAIN, "EAGAIN")]
)
def test_persistent_errors_are_kept_for_that_channel_only(
    tmp_path: Path, code: int, name: str
) -> None:
    root = write_tree(
        tmp_path / "sys",
        chip_tree({"temp1_input": "51000\n", "temp1_label": "CPU\n", "temp2_input": "40000\n"})
        | {
            "class/hwmon/hwmon1": Link("../../devices/platform/other.0/hwmon/hwmon1"),
            "devices/platform/other.0/hwmon/hwmon1/name": "other\n",
            "devices/platform/other.0/hwmon/hwmon1/temp1_input": "30000\n",
        },
    )
    sysfs = SysfsRoot(root, read=failing(code, {"temp1_input"}, times=None))
    chips = read_hwmon(sysfs)
    rel = "class/hwmon/hwmon0/temp1_input"
    problem = ReadProblem(rel, "file_read", f"reading {rel} failed: {name} ({os.strerror(code)})")
    assert chips[0] == HwmonChip(
        "hwmon0",
        "chip",
        "name",
        [
            HwmonTemp(1, "CPU", None, None, None, errors=[problem]),
            HwmonTemp(2, "temp2", 40.0, None, None),
        ],
    )
    # The other chip's temp1_input fails the same way: its own problem, in its own record.
    assert chips[1].temperatures[0].errors[0].source == "class/hwmon/hwmon1/temp1_input"


def test_enodata_is_absent_not_an_error(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "sys", chip_tree({"temp1_input": "51000\n", "temp1_max": "80000\n"})
    )
    sysfs = SysfsRoot(root, read=failing(errno.ENODATA, {"temp1_input"}))
    assert read_hwmon(sysfs) == [
        HwmonChip("hwmon0", "chip", "name", [HwmonTemp(1, "temp1", None, 80.0, None)])
    ]


def test_chip_without_name_is_named_by_driver_then_directory(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "sys",
        {
            # No name, a device whose driver link names the chip (dangling here: never followed).
            "class/hwmon/hwmon0": Link("../../devices/pci0000:00/0000:00:18.3/hwmon/hwmon0"),
            "devices/pci0000:00/0000:00:18.3/hwmon/hwmon0/device": Link("../../../0000:00:18.3"),
            "devices/pci0000:00/0000:00:18.3/driver": Link("../../../bus/pci/drivers/k10temp"),
            "devices/pci0000:00/0000:00:18.3/hwmon/hwmon0/temp1_input": "40000\n",
            # No name and no device at all: the directory is all there is.
            "class/hwmon/hwmon1": Link("../../devices/virtual/hwmon/hwmon1"),
            "devices/virtual/hwmon/hwmon1/temp1_input": "30000\n",
            # An empty name file counts as no name.
            "class/hwmon/hwmon2": Link("../../devices/virtual/hwmon/hwmon2"),
            "devices/virtual/hwmon/hwmon2/name": b"",
            "devices/virtual/hwmon/hwmon2/temp1_input": "20000\n",
        },
    )
    assert read_hwmon(SysfsRoot(root)) == [
        HwmonChip("hwmon0", "k10temp", "driver", [HwmonTemp(1, "temp1", 40.0, None, None)]),
        HwmonChip("hwmon1", "hwmon1", "directory", [HwmonTemp(1, "temp1", 30.0, None, None)]),
        HwmonChip("hwmon2", "hwmon2", "directory", [HwmonTemp(1, "temp1", 20.0, None, None)]),
    ]


def test_attributes_under_device_are_read_and_hwmon_dir_wins(tmp_path: Path) -> None:
    dev = "devices/platform/it87.656"
    root = write_tree(
        tmp_path / "sys",
        {
            "class/hwmon/hwmon0": Link(f"../../{dev}/hwmon/hwmon0"),
            f"{dev}/hwmon/hwmon0/device": Link("../../../it87.656"),
            f"{dev}/name": "it8728\n",
            f"{dev}/temp1_input": "35000\n",
            f"{dev}/temp1_max": "70000\n",
            f"{dev}/fan1_input": "1500\n",
            f"{dev}/fan1_min": "500\n",
            # Where both places have an attribute, the hwmon directory's is the current one.
            f"{dev}/temp2_input": "11000\n",
            f"{dev}/hwmon/hwmon0/temp2_input": "22000\n",
        },
    )
    assert read_hwmon(SysfsRoot(root)) == [
        HwmonChip(
            "hwmon0",
            "it8728",
            "device/name",
            temperatures=[
                HwmonTemp(1, "temp1", 35.0, 70.0, None),
                HwmonTemp(2, "temp2", 22.0, None, None),
            ],
            fans=[HwmonFan(1, "fan1", 1500.0, 500.0)],
        )
    ]


def test_alarm_and_fault_flags(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "sys",
        chip_tree(
            {
                "temp1_input": "95000\n",
                "temp1_crit_alarm": "1\n",
                "temp2_input": "0\n",
                "temp2_fault": "1\n",
                "fan1_input": "0\n",
                "fan1_fault": "1\n",
                "in1_input": "900\n",
                "in1_min_alarm": "1\n",
            }
        ),
    )
    chip = read_hwmon(SysfsRoot(root))[0]
    assert chip.temperatures == [
        HwmonTemp(1, "temp1", 95.0, None, None, alarm=True),
        HwmonTemp(2, "temp2", 0.0, None, None, fault=True),
    ]
    assert chip.fans == [HwmonFan(1, "fan1", 0.0, None, fault=True)]
    assert chip.voltages == [HwmonVoltage(1, "in1", 0.9, None, None, alarm=True)]


def test_dangling_and_outside_links_are_never_followed(tmp_path: Path) -> None:
    outside = write_tree(
        tmp_path / "outside", {"hwmon9/name": "host\n", "hwmon9/temp1_input": "99000\n"}
    )
    root = write_tree(
        tmp_path / "sys",
        chip_tree(
            {
                "temp1_input": "45000\n",
                # An attribute linking out of the root: an error, the host file is not read.
                "temp2_input": Link(str(outside / "hwmon9" / "temp1_input")),
                # A dangling attribute link: absent.
                "temp3_input": Link("../../nowhere/temp3_input"),
            }
        )
        | {
            "class/hwmon/hwmon1": Link("../../devices/gone/hwmon1"),  # dangling chip link
            "class/hwmon/hwmon2": Link(str(outside / "hwmon9")),  # a chip outside the root
        },
    )
    rel = "class/hwmon/hwmon0/temp2_input"
    real = outside / "hwmon9" / "temp1_input"
    assert read_hwmon(SysfsRoot(root)) == [
        HwmonChip(
            "hwmon0",
            "chip",
            "name",
            [
                HwmonTemp(1, "temp1", 45.0, None, None),
                HwmonTemp(
                    2,
                    "temp2",
                    None,
                    None,
                    None,
                    errors=[
                        ReadProblem(
                            rel,
                            "file_read",
                            f"{rel} links outside the sysfs root ({real}); not followed",
                        )
                    ],
                ),
                HwmonTemp(3, "temp3", None, None, None),
            ],
        )
    ]


def test_missing_root_reads_nothing(tmp_path: Path) -> None:
    sysfs = SysfsRoot(tmp_path / "no-such-root")
    assert read_hwmon(sysfs) == []
    assert read_thermal_zones(sysfs) == []
    assert read_cooling_devices(sysfs) == []
    assert read_iio_devices(sysfs) == []


TZ = "devices/virtual/thermal"


def test_thermal_zone_quirks(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "sys",
        {
            "class/thermal/thermal_zone0": Link(f"../../{TZ}/thermal_zone0"),
            f"{TZ}/thermal_zone0/type": "acpitz\n",
            f"{TZ}/thermal_zone0/temp": "-273200",  # uninitialised ACPI zone, no newline
            f"{TZ}/thermal_zone0/trip_point_0_type": "critical\n",
            f"{TZ}/thermal_zone0/trip_point_0_temp": "hot\n",  # nonsense: kept as a problem
            "class/thermal/thermal_zone1": Link(f"../../{TZ}/thermal_zone1"),
            f"{TZ}/thermal_zone1/type": "iwlwifi_1\n",
            f"{TZ}/thermal_zone1/temp": "40000\n",  # fails with EIO through the seam below
            # The zone's number sorts numerically, not as text.
            "class/thermal/thermal_zone10": Link(f"../../{TZ}/thermal_zone10"),
            f"{TZ}/thermal_zone10/type": "pch_cannonlake\n",
            f"{TZ}/thermal_zone10/temp": "41000\n",
            f"{TZ}/thermal_zone10/mode": b"",
            "class/thermal/thermal_zone2": Link(f"../../{TZ}/gone"),  # dangling: skipped
            "class/thermal/cooling_device0": Link(f"../../{TZ}/cooling_device0"),
            f"{TZ}/cooling_device0/type": "Fan\n",
            f"{TZ}/cooling_device0/cur_state": "1\n",
            f"{TZ}/cooling_device0/max_state": "many\n",
        },
    )

    def read(path: Path) -> bytes:
        if path.parent.name == "thermal_zone1" and path.name == "temp":
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return path.read_bytes()

    sysfs = SysfsRoot(root, read=read)
    trip = "class/thermal/thermal_zone0/trip_point_0_temp"
    temp1 = "class/thermal/thermal_zone1/temp"
    assert read_thermal_zones(sysfs) == [
        ThermalZone(
            "thermal_zone0",
            "acpitz",
            -273.2,
            None,
            [TripPoint(0, "critical", None)],
            [ReadProblem(trip, "parse", f"{trip}: expected an integer, read 'hot'")],
        ),
        ThermalZone(
            "thermal_zone1",
            "iwlwifi_1",
            None,
            None,
            [],
            [ReadProblem(temp1, "file_read", f"reading {temp1} failed: EIO (Input/output error)")],
        ),
        ThermalZone("thermal_zone10", "pch_cannonlake", 41.0, None, []),
    ]
    max_state = "class/thermal/cooling_device0/max_state"
    assert read_cooling_devices(sysfs) == [
        CoolingDevice(
            "cooling_device0",
            "Fan",
            1,
            None,
            [ReadProblem(max_state, "parse", f"{max_state}: expected an integer, read 'many'")],
        )
    ]


IIO = "devices/platform/soc/iio:device0"


def iio_tree(attrs: dict[str, str | bytes | Link | Dir]) -> dict[str, str | bytes | Link | Dir]:
    return {"bus/iio/devices/iio:device0": Link(f"../../../{IIO}")} | {
        f"{IIO}/{k}": v for k, v in attrs.items()
    }


def test_iio_scale_and_offset_rules(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "sys",
        iio_tree(
            {
                "name": "bmi160\n",
                # Per-channel scale beats the shared one; the shared offset applies to all.
                "in_accel_x_raw": "100\n",
                "in_accel_y_raw": "200\n",
                "in_accel_scale": "0.01\n",
                "in_accel_x_scale": "0.5\n",
                "in_accel_offset": "-10\n",
                # Temperature: millidegrees after scale and offset -> degrees.
                "in_temp_raw": "400\n",
                "in_temp_offset": "100\n",
                "in_temp_scale": "62.5\n",
                # Processed: neither scale nor offset applies; milli-percent -> percent.
                "in_humidityrelative_input": "45500\n",
                "in_humidityrelative_scale": "1000\n",
                # No scale: the raw value stands.
                "in_proximity_raw": "7\n",
                # A processed and a raw value of the same channel: the processed one wins.
                "in_pressure_input": "101.325\n",
                "in_pressure_raw": "4242\n",
                # Not channels: availability lists and sampling frequency.
                "in_accel_scale_available": "0.01 0.02\n",
                "sampling_frequency": "100\n",
            }
        )
        | {
            "bus/iio/devices/trigger0": Link("../../../devices/platform/soc/trigger0"),
            "devices/platform/soc/trigger0/name": "bmi160-dev0\n",
        },
    )
    assert read_iio_devices(SysfsRoot(root)) == [
        IioDevice(
            "iio:device0",
            "bmi160",
            [
                IioChannel("in_accel_x", "accel", (100 - 10) * 0.5, "m/s^2", 100.0, 0.5, -10.0),
                IioChannel(
                    "in_accel_y",
                    "accel",
                    approx((200 - 10) * 0.01),
                    "m/s^2",
                    200.0,
                    0.01,
                    -10.0,
                ),
                IioChannel(
                    "in_humidityrelative",
                    "humidityrelative",
                    45.5,
                    "percent",
                    45500.0,
                    None,
                    None,
                    True,
                ),
                IioChannel("in_pressure", "pressure", 101.325, "kPa", 101.325, None, None, True),
                IioChannel("in_proximity", "proximity", 7.0, "", 7.0, None, None),
                IioChannel("in_temp", "temp", 31.25, "celsius", 400.0, 62.5, 100.0),
            ],
        )
    ]


def test_iio_bad_values_and_links(tmp_path: Path) -> None:
    outside = write_tree(tmp_path / "outside", {"iio:device9/name": "host\n"})
    root = write_tree(
        tmp_path / "sys",
        iio_tree(
            {
                "name": "als\n",
                "in_illuminance_raw": "dark\n",
                "in_illuminance_scale": "0.1\n",
                "in_intensity_ir_raw": "12",
            }
        )
        | {
            "bus/iio/devices/iio:device1": Link("../../../devices/gone/iio:device1"),
            "bus/iio/devices/iio:device2": Link(str(outside / "iio:device9")),
        },
    )
    rel = "bus/iio/devices/iio:device0/in_illuminance_raw"
    assert read_iio_devices(SysfsRoot(root)) == [
        IioDevice(
            "iio:device0",
            "als",
            [
                IioChannel("in_illuminance", "illuminance", None, "lux", None, 0.1, None),
                IioChannel("in_intensity_ir", "intensity", 12.0, "", 12.0, None, None),
            ],
            [ReadProblem(rel, "parse", f"{rel}: expected a number, read 'dark'")],
        )
    ]


def test_unreadable_name_is_a_chip_problem_and_the_chip_is_still_read(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "sys", chip_tree({"temp1_input": "45000\n", "temp1_label": "x\n"}))
    sysfs = SysfsRoot(root, read=failing(errno.EIO, {"name", "temp1_label"}))
    name = "class/hwmon/hwmon0/name"
    label = "class/hwmon/hwmon0/temp1_label"
    chip_problem = ReadProblem(
        name, "file_read", f"reading {name} failed: EIO (Input/output error)"
    )
    label_problem = ReadProblem(
        label, "file_read", f"reading {label} failed: EIO (Input/output error)"
    )
    [chip] = read_hwmon(sysfs)
    assert chip == HwmonChip(
        "hwmon0",
        "hwmon0",
        "directory",
        [HwmonTemp(1, "temp1", 45.0, None, None, errors=[label_problem])],
        errors=[chip_problem],
    )
    assert chip.problems == [chip_problem, label_problem]
