"""Reader of `class/hwmon/hwmonN`: temperatures, fans and voltages of every sensor chip.

    >>> chips = read_hwmon(SysfsRoot(Path("tests/fixtures/machines/desktop-no-battery/sys")))
    >>> [(c.hwmon, c.name, c.name_source) for c in chips]
    [('hwmon1', 'nct6775', 'name'), ('hwmon2', 'k10temp', 'driver'),
     ('hwmon4', 'it8792', 'device/name')]
    >>> chips[0].fans[1]
    HwmonFan(index=2, label='fan2', input_rpm=0.0, min_rpm=600.0, alarm=True, fault=False,
             errors=[])

Units follow Documentation/hwmon/sysfs-interface.rst: temperatures are millidegrees
Celsius, fans RPM, voltages millivolts; the records hold degrees, RPM and volts.

What real chips do, and how this reader copes:

- `name` is the only mandatory attribute, yet some drivers have none: the chip is then
  named from `device/name`, the driver the `device/driver` link points to, or the hwmon
  directory itself, and `name_source` says which.
- Old drivers (before the hwmon core owned the attributes) keep them under
  `hwmonN/device/`; both places are read, the hwmon directory winning when both have one.
- A channel exists when its `_input` file exists; its limits, label, alarm and fault
  are optional and `None`/False when absent.
- A read that fails (EIO, EINVAL, a non-numeric value; EAGAIN after the retries in
  `SysfsRoot`) is kept in that channel's `errors` (see `problems.ReadProblem`) and the
  value is None: one broken channel hides no other channel and no other chip. Problems
  of the chip itself (its name) are in `HwmonChip.errors`.

Parse, then judge: this module knows no limits and no protobuf; `probes/sensors/` judges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from probelink.probes.readers.problems import Problems, ReadProblem
from probelink.probes.sysread import SysfsRoot

CLASS_HWMON = "class/hwmon"

# temp1_input, fan2_min, in0_max_alarm: type, channel number, item.
_ATTRIBUTE = re.compile(r"^(temp|fan|in)(\d+)_([a-z_]+)$")


@dataclass(frozen=True)
class HwmonTemp:
    """tempN_* of one chip, in degrees Celsius (sysfs: millidegrees)."""

    index: int
    # tempN_label, or "tempN" when the chip gives no label.
    label: str
    input_celsius: float | None
    max_celsius: float | None
    crit_celsius: float | None
    # tempN_alarm, tempN_max_alarm or tempN_crit_alarm set by the chip.
    alarm: bool = False
    # tempN_fault: the chip says the sensor (e.g. a diode) is open or shorted.
    fault: bool = False
    errors: list[ReadProblem] = field(default_factory=list)


@dataclass(frozen=True)
class HwmonFan:
    """fanN_* of one chip, in revolutions per minute."""

    index: int
    label: str
    input_rpm: float | None
    min_rpm: float | None
    alarm: bool = False
    fault: bool = False
    errors: list[ReadProblem] = field(default_factory=list)


@dataclass(frozen=True)
class HwmonVoltage:
    """inN_* of one chip, in volts (sysfs: millivolts)."""

    index: int
    label: str
    input_volts: float | None
    min_volts: float | None
    max_volts: float | None
    # inN_alarm, inN_min_alarm or inN_max_alarm.
    alarm: bool = False
    errors: list[ReadProblem] = field(default_factory=list)


NameSource = Literal["name", "device/name", "driver", "directory"]


@dataclass(frozen=True)
class HwmonChip:
    """One `class/hwmon/hwmonN` directory."""

    hwmon: str
    # The chip name (see `name_source` for where it came from).
    name: str
    name_source: NameSource
    temperatures: list[HwmonTemp] = field(default_factory=list)
    fans: list[HwmonFan] = field(default_factory=list)
    voltages: list[HwmonVoltage] = field(default_factory=list)
    # Problems of the chip itself; channel problems are in each channel's `errors`.
    errors: list[ReadProblem] = field(default_factory=list)
    # The thermal zone this chip mirrors (its `device` link names a thermal_zoneN): the
    # kernel's thermal_hwmon bridge shows each zone again as a hwmon chip.
    thermal_zone: str | None = None

    @property
    def problems(self) -> list[ReadProblem]:
        """Every problem of this chip: its own, then its channels'."""
        channels: list[HwmonTemp | HwmonFan | HwmonVoltage] = [
            *self.temperatures,
            *self.fans,
            *self.voltages,
        ]
        return [*self.errors, *(p for c in channels for p in c.errors)]


def hwmon_dirs(sysfs: SysfsRoot) -> list[str]:
    """Names of the hwmonN entries that lead to a directory inside the root, in number order."""
    names = [n for n in sysfs.listdir(CLASS_HWMON) if re.fullmatch(r"hwmon\d+", n)]
    names = [n for n in names if sysfs.is_dir(f"{CLASS_HWMON}/{n}")]
    return sorted(names, key=lambda n: int(n[5:]))


def read_hwmon(sysfs: SysfsRoot) -> list[HwmonChip]:
    """Every hwmon chip under the root; [] when there is none (or no root)."""
    return [read_chip(sysfs, name) for name in hwmon_dirs(sysfs)]


class _Chip:
    """Attribute lookup of one chip across `hwmonN/` and `hwmonN/device/`."""

    def __init__(self, sysfs: SysfsRoot, base: str) -> None:
        self.sysfs = sysfs
        self.base = base
        # Attribute name -> path; the hwmon directory overrides the legacy device/ copy.
        self.paths: dict[str, str] = {}
        for folder in (f"{base}/device", base):
            for name in sysfs.listdir(folder):
                if _ATTRIBUTE.match(name):
                    self.paths[name] = f"{folder}/{name}"

    def indices(self, kind: str) -> list[int]:
        found = set()
        for name in self.paths:
            m = _ATTRIBUTE.match(name)
            if m and m.group(1) == kind and m.group(3) == "input":
                found.add(int(m.group(2)))
        return sorted(found)

    def number(self, attr: str, problems: Problems, scale: float = 1.0) -> float | None:
        path = self.paths.get(attr)
        if path is None:
            return None
        value = problems.read(self.sysfs.read_int, path)
        return None if value is None else value / scale

    def text(self, attr: str, problems: Problems) -> str | None:
        path = self.paths.get(attr)
        return None if path is None else problems.read(self.sysfs.read_text, path)

    def flag(self, attrs: tuple[str, ...], problems: Problems) -> bool:
        """Whether any of the boolean attributes reads non-zero."""
        return any(bool(self.number(a, problems)) for a in attrs)


def _chip_name(
    sysfs: SysfsRoot, base: str, hwmon: str, problems: Problems
) -> tuple[str, NameSource]:
    name = problems.read(sysfs.read_text, f"{base}/name")
    if name:
        return name, "name"
    # Old drivers put `name` beside their other attributes under device/.
    name = problems.read(sysfs.read_text, f"{base}/device/name")
    if name:
        return name, "device/name"
    # The driver's name (the last part of the device/driver link) says what chip it is;
    # the link is only read, never followed, so it may point anywhere.
    driver = sysfs.link_name(f"{base}/device/driver")
    if driver:
        return driver, "driver"
    return hwmon, "directory"


def read_chip(sysfs: SysfsRoot, hwmon: str) -> HwmonChip:
    """One chip, `hwmon` being the directory name under class/hwmon (e.g. "hwmon2")."""
    base = f"{CLASS_HWMON}/{hwmon}"
    chip_problems = Problems()
    name, source = _chip_name(sysfs, base, hwmon, chip_problems)
    chip = _Chip(sysfs, base)

    temps = []
    for i in chip.indices("temp"):
        errs = Problems()
        p = f"temp{i}_"
        temps.append(
            HwmonTemp(
                index=i,
                label=chip.text(p + "label", errs) or f"temp{i}",
                input_celsius=chip.number(p + "input", errs, 1000),
                max_celsius=chip.number(p + "max", errs, 1000),
                crit_celsius=chip.number(p + "crit", errs, 1000),
                alarm=chip.flag((p + "alarm", p + "max_alarm", p + "crit_alarm"), errs),
                fault=chip.flag((p + "fault",), errs),
                errors=errs.items,
            )
        )
    fans = []
    for i in chip.indices("fan"):
        errs = Problems()
        p = f"fan{i}_"
        fans.append(
            HwmonFan(
                index=i,
                label=chip.text(p + "label", errs) or f"fan{i}",
                input_rpm=chip.number(p + "input", errs),
                min_rpm=chip.number(p + "min", errs),
                alarm=chip.flag((p + "alarm", p + "min_alarm"), errs),
                fault=chip.flag((p + "fault",), errs),
                errors=errs.items,
            )
        )
    volts = []
    for i in chip.indices("in"):
        errs = Problems()
        p = f"in{i}_"
        volts.append(
            HwmonVoltage(
                index=i,
                label=chip.text(p + "label", errs) or f"in{i}",
                input_volts=chip.number(p + "input", errs, 1000),
                min_volts=chip.number(p + "min", errs, 1000),
                max_volts=chip.number(p + "max", errs, 1000),
                alarm=chip.flag((p + "alarm", p + "min_alarm", p + "max_alarm"), errs),
                errors=errs.items,
            )
        )
    parent = sysfs.link_name(f"{base}/device")
    zone = parent if parent is not None and parent.startswith("thermal_zone") else None
    return HwmonChip(hwmon, name, source, temps, fans, volts, chip_problems.items, zone)
