"""USB Power Delivery capabilities (sysfs-class-usb_power_delivery ABI).

    >>> pd = read_power_delivery(sysfs, "class/typec/port0-partner/usb_power_delivery")
    >>> [(p.supply_type, p.offered_w) for p in pd.source_capabilities]
    [('fixed_supply', 15.0), ('fixed_supply', 27.0), ..., ('programmable_supply', 63.0)]

A PD object `pdN` holds `revision` and, for a charger, `source-capabilities/`: one
directory per Power Data Object named "<position>:<type>", e.g. "1:fixed_supply",
"5:programmable_supply". Values carry their unit in the text, as the kernel prints them:
`voltage` "9000mV", `maximum_current` "3000mA", `maximum_power` "45000mW".

    fixed_supply         voltage, maximum_current
    variable_supply      minimum_voltage, maximum_voltage, maximum_current
    battery              minimum_voltage, maximum_voltage, maximum_power
    programmable_supply  minimum_voltage, maximum_voltage, maximum_current (PPS)

What a capability offers, in watts, is voltage x current (the highest voltage for a
range), or `maximum_power` for a battery supply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from probelink.probes.errors import ParseError
from probelink.probes.readers.problems import Problems, ReadProblem
from probelink.probes.sysread import SysfsRoot

CLASS_DIR = "class/usb_power_delivery"

_VALUE = re.compile(r"^(\d+)\s*(mV|mA|mW)?$")


def read_milli(sysfs: SysfsRoot, rel: str, unit: str) -> int | None:
    """A value like "5000mV" (unit optional, as older drivers print plain numbers)."""
    text = sysfs.read_text(rel)
    if text is None:
        return None
    match = _VALUE.match(text)
    if not match or (match.group(2) and match.group(2) != unit):
        raise ParseError(f"{rel}: expected a value in {unit}, read {text[:40]!r}", rel)
    return int(match.group(1))


@dataclass(frozen=True)
class PowerDataObject:
    """One source (or sink) capability, values in the units the kernel uses."""

    position: int  # object position, 1-based, from the "<position>:<type>" name
    supply_type: str  # fixed_supply, variable_supply, battery, programmable_supply
    voltage_mv: int | None = None  # fixed_supply: voltage
    min_voltage_mv: int | None = None  # minimum_voltage
    max_voltage_mv: int | None = None  # maximum_voltage
    max_current_ma: int | None = None  # maximum_current
    max_power_mw: int | None = None  # battery: maximum_power

    @property
    def offered_w(self) -> float | None:
        """The most this capability offers, W; None when its values are missing."""
        if self.max_power_mw is not None:
            return self.max_power_mw / 1000
        volts = self.voltage_mv if self.voltage_mv is not None else self.max_voltage_mv
        if volts is None or self.max_current_ma is None:
            return None
        return round(volts * self.max_current_ma / 1e6, 3)


@dataclass(frozen=True)
class PowerDelivery:
    """One `usb_power_delivery/pdN` object."""

    name: str  # "pd1"
    revision: str | None = None  # "3.0"
    source_capabilities: list[PowerDataObject] = field(default_factory=list)
    errors: list[ReadProblem] = field(default_factory=list)

    @property
    def max_offered_w(self) -> float | None:
        watts = [w for w in (p.offered_w for p in self.source_capabilities) if w is not None]
        return max(watts) if watts else None


def _position(name: str) -> int:
    head = name.split(":", 1)[0]
    return int(head) if head.isdigit() else 0


def _read_pdo(sysfs: SysfsRoot, base: str, entry: str, c: Problems) -> PowerDataObject:
    def value(attr: str, unit: str) -> int | None:
        return c.read(lambda rel: read_milli(sysfs, rel, unit), f"{base}/{attr}")

    return PowerDataObject(
        position=_position(entry),
        supply_type=entry.split(":", 1)[1],
        voltage_mv=value("voltage", "mV"),
        min_voltage_mv=value("minimum_voltage", "mV"),
        max_voltage_mv=value("maximum_voltage", "mV"),
        max_current_ma=value("maximum_current", "mA"),
        max_power_mw=value("maximum_power", "mW"),
    )


def read_power_delivery(sysfs: SysfsRoot, rel: str, name: str | None = None) -> PowerDelivery:
    """Read the PD object at `rel` (a `pdN` directory or a `usb_power_delivery` link)."""
    c = Problems()
    revision = c.read(sysfs.read_text, f"{rel}/revision")
    caps: list[PowerDataObject] = []
    caps_dir = f"{rel}/source-capabilities"
    for entry in sorted(sysfs.listdir(caps_dir), key=_position):
        if ":" not in entry:
            continue  # "uevent", "power": not capabilities
        caps.append(_read_pdo(sysfs, f"{caps_dir}/{entry}", entry, c))
    pd_name = name or sysfs.link_name(rel) or rel.rsplit("/", 1)[-1]
    return PowerDelivery(name=pd_name, revision=revision, source_capabilities=caps, errors=c.items)


def read_all_power_delivery(sysfs: SysfsRoot) -> list[PowerDelivery]:
    """Every PD object of the machine (ports' own and partners')."""
    return [read_power_delivery(sysfs, f"{CLASS_DIR}/{n}", n) for n in sysfs.listdir(CLASS_DIR)]
