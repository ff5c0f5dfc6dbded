"""Reader of `class/thermal`: thermal zones with their trip points, and cooling devices.

    >>> sysfs = SysfsRoot(Path("tests/fixtures/machines/laptop-worn-battery/sys"))
    >>> read_thermal_zones(sysfs)[0]
    ThermalZone(zone='thermal_zone0', type='acpitz', temp_celsius=-273.2, mode='enabled',
                trip_points=[TripPoint(index=0, type='critical', temp_celsius=103.0)], errors=[])
    >>> read_cooling_devices(sysfs)[0].type
    'Processor'

Units follow Documentation/ABI/testing/sysfs-class-thermal: `temp` and
`trip_point_N_temp` are millidegrees Celsius; the records hold degrees. The reader
reports what the zone says, even an impossible value such as -273.2 °C from an ACPI
zone whose firmware never initialised it: telling a sensor fault from a cold or hot
reading is judgement, done in `probes/sensors/`.

Read failures are kept per zone / per cooling device in `errors` (see
`problems.ReadProblem`), so one zone whose driver returns EIO hides no other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from probelink.probes.readers.problems import Problems, ReadProblem
from probelink.probes.sysread import SysfsRoot

CLASS_THERMAL = "class/thermal"


@dataclass(frozen=True)
class TripPoint:
    """trip_point_N_*: the temperature at which the kernel acts."""

    index: int
    # critical, hot, passive or active (None when the type file is missing).
    type: str | None
    temp_celsius: float | None


@dataclass(frozen=True)
class ThermalZone:
    """One `class/thermal/thermal_zoneN`."""

    zone: str
    # "type", e.g. "acpitz", "x86_pkg_temp", "battery".
    type: str | None
    temp_celsius: float | None
    # "mode": enabled or disabled; None when the zone does not report one.
    mode: str | None
    trip_points: list[TripPoint] = field(default_factory=list)
    errors: list[ReadProblem] = field(default_factory=list)


@dataclass(frozen=True)
class CoolingDevice:
    """One `class/thermal/cooling_deviceN`: something that can shed heat (a fan, CPU throttling)."""

    name: str
    # "type", e.g. "Processor", "intel_powerclamp", "Fan".
    type: str | None
    cur_state: int | None
    max_state: int | None
    errors: list[ReadProblem] = field(default_factory=list)


def _entries(sysfs: SysfsRoot, prefix: str) -> list[str]:
    names = [n for n in sysfs.listdir(CLASS_THERMAL) if re.fullmatch(prefix + r"\d+", n)]
    names = [n for n in names if sysfs.is_dir(f"{CLASS_THERMAL}/{n}")]
    return sorted(names, key=lambda n: int(n[len(prefix) :]))


def _millidegrees(sysfs: SysfsRoot, rel: str, problems: Problems) -> float | None:
    value = problems.read(sysfs.read_int, rel)
    return None if value is None else value / 1000


def read_thermal_zones(sysfs: SysfsRoot) -> list[ThermalZone]:
    """Every thermal zone under the root, in number order; [] when there is none."""
    zones = []
    for zone in _entries(sysfs, "thermal_zone"):
        base = f"{CLASS_THERMAL}/{zone}"
        problems = Problems()
        indices = sorted(
            {
                int(m.group(1))
                for n in sysfs.listdir(base)
                if (m := re.fullmatch(r"trip_point_(\d+)_(?:type|temp)", n))
            }
        )
        trips = [
            TripPoint(
                index=i,
                type=problems.read(sysfs.read_text, f"{base}/trip_point_{i}_type"),
                temp_celsius=_millidegrees(sysfs, f"{base}/trip_point_{i}_temp", problems),
            )
            for i in indices
        ]
        zones.append(
            ThermalZone(
                zone=zone,
                type=problems.read(sysfs.read_text, f"{base}/type"),
                temp_celsius=_millidegrees(sysfs, f"{base}/temp", problems),
                mode=problems.read(sysfs.read_text, f"{base}/mode"),
                trip_points=trips,
                errors=problems.items,
            )
        )
    return zones


def read_cooling_devices(sysfs: SysfsRoot) -> list[CoolingDevice]:
    """Every cooling device under the root, in number order; [] when there is none."""
    devices = []
    for name in _entries(sysfs, "cooling_device"):
        base = f"{CLASS_THERMAL}/{name}"
        problems = Problems()
        devices.append(
            CoolingDevice(
                name=name,
                type=problems.read(sysfs.read_text, f"{base}/type"),
                cur_state=problems.read(sysfs.read_int, f"{base}/cur_state"),
                max_state=problems.read(sysfs.read_int, f"{base}/max_state"),
                errors=problems.items,
            )
        )
    return devices
