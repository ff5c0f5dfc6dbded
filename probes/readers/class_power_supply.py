"""Reader of `class/power_supply/*`: batteries, mains adapters and USB supplies.

    >>> sysfs = SysfsRoot(Path("tests/fixtures/machines/laptop-worn-battery/sys"))
    >>> supplies = read_power_supplies(sysfs)
    >>> [(s.name, s.type, s.energy_full_wh) for s in supplies]
    [('AC', 'Mains', None), ('BAT0', 'Battery', 35.34)]

Attributes and units follow the kernel's Documentation/ABI/testing/sysfs-class-power:
energy in µWh, charge in µAh, voltage in µV, current in µA, power in µW, temperature in
tenths of a degree Celsius. Fields here carry SI units in their names (`energy_full_wh`).

Values are what the driver printed, converted but not interpreted: a `cycle_count` of 0
stays 0 here (the probe knows that drivers print 0 when they do not count), a full
capacity above design stays above design. Missing attributes are None; any other read or
parse failure is kept in the supply's own `errors` (see `problems.ReadProblem`), so one
broken supply hides no other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from probelink.probes.readers.problems import Problems, ReadProblem
from probelink.probes.sysread import SysfsRoot

CLASS_DIR = "class/power_supply"

# Divisors from the sysfs units to the units our fields name.
MICRO = 1_000_000
TENTHS = 10


@dataclass(frozen=True)
class PowerSupply:
    """One directory of `class/power_supply`; None means "the driver has no such attribute"."""

    name: str  # directory name, e.g. "BAT0", "AC", "hid-…-battery"
    type: str | None = None  # "type": Battery, Mains, USB, UPS, Wireless
    scope: str | None = None  # "scope": System, Device, Unknown; absent means System
    status: str | None = None  # "status": Charging, Discharging, Not charging, Full, Unknown
    health: str | None = None  # "health": Good, Dead, Overheat, ... (text as printed)
    present: bool | None = None  # "present"
    online: int | None = None  # "online" of adapters: 0 offline, 1 online, 2 online programmable
    capacity_pct: int | None = None  # "capacity": state of charge, percent
    capacity_level: str | None = None  # "capacity_level": Critical, Low, Normal, High, Full
    energy_full_wh: float | None = None  # "energy_full", µWh
    energy_full_design_wh: float | None = None  # "energy_full_design", µWh
    energy_now_wh: float | None = None  # "energy_now", µWh
    charge_full_ah: float | None = None  # "charge_full", µAh
    charge_full_design_ah: float | None = None  # "charge_full_design", µAh
    charge_now_ah: float | None = None  # "charge_now", µAh
    cycle_count: int | None = None  # "cycle_count", as printed (0 from drivers that do not count)
    voltage_now_v: float | None = None  # "voltage_now", µV
    voltage_min_design_v: float | None = None  # "voltage_min_design", µV
    current_now_a: float | None = None  # "current_now", µA; sign as the driver reports it
    power_now_w: float | None = None  # "power_now", µW
    temp_celsius: float | None = None  # "temp", tenths of °C
    technology: str | None = None  # "technology": Li-ion, Li-poly, ...
    manufacturer: str | None = None  # "manufacturer", stripped; invalid UTF-8 replaced
    model_name: str | None = None  # "model_name", stripped of the padding drivers add
    serial_number: str | None = None  # "serial_number"
    errors: list[ReadProblem] = field(default_factory=list)

    @property
    def is_battery(self) -> bool:
        return self.type == "Battery"

    @property
    def is_system_battery(self) -> bool:
        """A battery that powers this machine; a "Device" scope one powers a peripheral."""
        return self.is_battery and self.scope != "Device"

    @property
    def is_adapter(self) -> bool:
        """A supply that feeds the machine from outside (mains, USB, wireless charger)."""
        # Older kernels name USB chargers by kind in "type" (USB_DCP, USB_PD, ...).
        return self.type is not None and (
            self.type in ("Mains", "Wireless", "BrickID") or self.type.startswith("USB")
        )


class _Attributes:
    """Reads one supply's attributes, keeping each failure instead of raising it."""

    def __init__(self, sysfs: SysfsRoot, base: str) -> None:
        self.sysfs = sysfs
        self.base = base
        self.problems = Problems()

    def text(self, name: str) -> str | None:
        return self.problems.read(self.sysfs.read_text, f"{self.base}/{name}")

    def integer(self, name: str) -> int | None:
        return self.problems.read(self.sysfs.read_int, f"{self.base}/{name}")

    def scaled(self, name: str, divisor: int) -> float | None:
        # One division of the exact integer, so 35340000 µWh reads as exactly 35.34.
        value = self.integer(name)
        return None if value is None else value / divisor

    def flag(self, name: str) -> bool | None:
        value = self.integer(name)
        return None if value is None else value != 0


# A Bluetooth peripheral's battery is named after the peripheral's address
# ("hid-e3:56:2a:1b:c4:07-battery"). The address identifies a person's mouse or headset
# and says nothing about its battery, so it is never recorded: not in the name, nor in
# any text built from it.
_ADDRESS = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:])")
ADDRESS_PLACEHOLDER = "<address>"


def shown_name(name: str) -> str:
    """A supply's directory name with any hardware address in it replaced."""
    return _ADDRESS.sub(ADDRESS_PLACEHOLDER, name)


def read_supply(sysfs: SysfsRoot, name: str) -> PowerSupply:
    """Read one supply, `class/power_supply/<name>`; never raises for a bad attribute.

    The supply is read at its real path; the name it is recorded under is `shown_name`.
    """
    base = f"{CLASS_DIR}/{name}"
    name = shown_name(name)
    if sysfs.resolve(base) is None:
        # A class entry is a symlink into devices/; one that dangles or leaves the root
        # is not followed (a captured tree must never read the host's files).
        error = ReadProblem(base, "file_read", f"{base} dangles or points outside the sysfs root")
        return PowerSupply(name=name, errors=[_shown(error)])
    a = _Attributes(sysfs, base)
    return PowerSupply(
        name=name,
        type=a.text("type"),
        scope=a.text("scope"),
        status=a.text("status"),
        health=a.text("health"),
        present=a.flag("present"),
        online=a.integer("online"),
        capacity_pct=a.integer("capacity"),
        capacity_level=a.text("capacity_level"),
        energy_full_wh=a.scaled("energy_full", MICRO),
        energy_full_design_wh=a.scaled("energy_full_design", MICRO),
        energy_now_wh=a.scaled("energy_now", MICRO),
        charge_full_ah=a.scaled("charge_full", MICRO),
        charge_full_design_ah=a.scaled("charge_full_design", MICRO),
        charge_now_ah=a.scaled("charge_now", MICRO),
        cycle_count=a.integer("cycle_count"),
        voltage_now_v=a.scaled("voltage_now", MICRO),
        voltage_min_design_v=a.scaled("voltage_min_design", MICRO),
        current_now_a=a.scaled("current_now", MICRO),
        power_now_w=a.scaled("power_now", MICRO),
        temp_celsius=a.scaled("temp", TENTHS),
        technology=a.text("technology"),
        manufacturer=a.text("manufacturer"),
        model_name=a.text("model_name"),
        serial_number=a.text("serial_number"),
        errors=[_shown(problem) for problem in a.problems.items],
    )


def _shown(problem: ReadProblem) -> ReadProblem:
    """A read problem as recorded: its path and words without a hardware address."""
    return ReadProblem(shown_name(problem.source), problem.kind, shown_name(problem.message))


def read_power_supplies(sysfs: SysfsRoot) -> list[PowerSupply]:
    """Every supply under `class/power_supply`, by name; [] when the class is absent."""
    return [read_supply(sysfs, name) for name in sysfs.listdir(CLASS_DIR)]


def system_battery(sysfs: SysfsRoot) -> PowerSupply | None:
    """The first battery that powers this machine (not a peripheral's), freshly read.

    A bay the driver reports empty (`present` 0) is passed over: an empty first bay must
    not stand in for the battery that is in the second.
    """
    batteries = [s for s in read_power_supplies(sysfs) if s.is_system_battery]
    return next((s for s in batteries if s.present is not False), None)
