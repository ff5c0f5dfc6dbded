"""battery.power_supply: each battery's charge, wear (health %), cycles, health and temperature.

    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/laptop-worn-battery/sys"))
    >>> [(r.subject, r.evidence) for r in get("battery.power_supply").fn(ctx)]
    [('BAT0', 'BAT0 (SMP 5B10W13975): 62 % of design capacity, 734 cycles, discharging at 81 %')]

One result per battery in `class/power_supply`. Health % is full capacity over design
capacity (the energy pair, else the charge pair) and is judged against
`battery.min_health_pct` (WARN) and `battery.fail_health_pct` (FAIL); `cycle_count`
against `battery.max_cycle_count`; the driver's own `health` word; and the temperature
against `battery.max_temp_celsius`. What real drivers do is taken as it is:

- `cycle_count` 0 means the driver does not count: the field stays absent, a fact says so.
- Full above design (a new cell) is reported as it is and passes.
- A design capacity of 0 or none: no health %, and the evidence says why.
- A "Device" scope battery belongs to a peripheral (a wireless mouse): it is reported,
  never judged against a laptop's limits, and it does not give a desktop a battery.
- An attribute that cannot be read makes that battery ERROR; other batteries are judged.
- `present` 0 is an empty bay (a laptop's second bay, an ACPI stub): reported as SKIP
  ("BAT1: bay empty") with what the driver says, never a WARN on a healthy machine. When
  every system battery's bay is empty, the machine has no battery to judge.

Without any battery in sysfs, psutil's `sensors_battery()` is the fallback (charge and plug
state only, so no health can be judged); without that either, the probe SKIPs. psutil is
not asked when sysfs has a battery of any scope: on Linux it reads this same directory and
takes any supply named "*battery*" for the system battery, a wireless mouse's included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from probelink.probes.context import ProbeContext
from probelink.probes.errors import AttributeReadError, Unsupported
from probelink.probes.readers.class_power_supply import PowerSupply, read_power_supplies
from probelink.probes.readers.problems import first_error
from probelink.probes.registry import BATTERY, telemetry
from probelink.probes.results import (
    FAIL,
    PASS,
    SKIP,
    WARN,
    StatusValue,
    check,
    errored,
    fact,
    measurement,
    result,
    worst,
)
from probelink.v1 import battery_pb2, probe_pb2

STATUS = {
    "Unknown": battery_pb2.BATTERY_STATUS_UNKNOWN,
    "Charging": battery_pb2.BATTERY_STATUS_CHARGING,
    "Discharging": battery_pb2.BATTERY_STATUS_DISCHARGING,
    "Not charging": battery_pb2.BATTERY_STATUS_NOT_CHARGING,
    "Full": battery_pb2.BATTERY_STATUS_FULL,
}

# The driver's "health" word (sysfs-class-power), its enum, and what it says about the cell.
# None: nothing to flag. WARN: the cell works but needs attention (a temperature band, a
# charge timer that stopped charging, a gauge to recalibrate). FAIL: the cell is faulty.
HEALTH: dict[str, tuple[battery_pb2.BatteryHealth.ValueType, StatusValue | None]] = {
    "Unknown": (battery_pb2.BATTERY_HEALTH_UNKNOWN, None),
    "Good": (battery_pb2.BATTERY_HEALTH_GOOD, None),
    # JEITA bands: the charger slows down there by design; not a fault.
    "Warm": (battery_pb2.BATTERY_HEALTH_WARM, None),
    "Cool": (battery_pb2.BATTERY_HEALTH_COOL, None),
    "Hot": (battery_pb2.BATTERY_HEALTH_HOT, WARN),
    "Cold": (battery_pb2.BATTERY_HEALTH_COLD, WARN),
    "Watchdog timer expire": (battery_pb2.BATTERY_HEALTH_WATCHDOG_TIMER_EXPIRE, WARN),
    "Safety timer expire": (battery_pb2.BATTERY_HEALTH_SAFETY_TIMER_EXPIRE, WARN),
    "Calibration required": (battery_pb2.BATTERY_HEALTH_CALIBRATION_REQUIRED, WARN),
    "No battery": (battery_pb2.BATTERY_HEALTH_NO_BATTERY, WARN),
    "Overheat": (battery_pb2.BATTERY_HEALTH_OVERHEAT, FAIL),
    "Dead": (battery_pb2.BATTERY_HEALTH_DEAD, FAIL),
    "Over voltage": (battery_pb2.BATTERY_HEALTH_OVER_VOLTAGE, FAIL),
    "Under voltage": (battery_pb2.BATTERY_HEALTH_UNDER_VOLTAGE, FAIL),
    "Over current": (battery_pb2.BATTERY_HEALTH_OVER_CURRENT, FAIL),
    "Unspecified failure": (battery_pb2.BATTERY_HEALTH_UNSPECIFIED_FAILURE, FAIL),
    "Blown fuse": (battery_pb2.BATTERY_HEALTH_BLOWN_FUSE, FAIL),
    "Cell imbalance": (battery_pb2.BATTERY_HEALTH_CELL_IMBALANCE, FAIL),
}

SCOPE = {
    "System": battery_pb2.BATTERY_SCOPE_SYSTEM,
    "Device": battery_pb2.BATTERY_SCOPE_DEVICE,
    "Unknown": battery_pb2.BATTERY_SCOPE_UNKNOWN,
}

NO_BATTERY = "no battery: class/power_supply has no Battery-type supply (desktop or VM)"
NO_BATTERY_IN_BAY = "no battery: the driver reports every battery bay empty ({bays})"
NO_PERIPHERAL_ONLY = (
    "no system battery: the only batteries in class/power_supply power peripherals (desktop or VM)"
)


def _enum(table: Mapping[str, int], word: str | None, unknown: int) -> Any:
    if word is None:
        return 0
    return table.get(word, unknown)


def _pct(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def battery_info(s: PowerSupply) -> battery_pb2.BatteryInfo:
    """The contract's BatteryInfo for a supply, with health % where the pair allows it."""
    info = battery_pb2.BatteryInfo(
        name=s.name,
        source=battery_pb2.BATTERY_SOURCE_SYSFS,
        # Absent attribute -> UNSPECIFIED; a word we do not know -> UNKNOWN.
        status=_enum(STATUS, s.status, battery_pb2.BATTERY_STATUS_UNKNOWN),
        health=_enum(
            {k: v[0] for k, v in HEALTH.items()}, s.health, battery_pb2.BATTERY_HEALTH_UNKNOWN
        ),
        # No "scope" attribute means System (the kernel's rule); we report what was there.
        scope=_enum(SCOPE, s.scope, battery_pb2.BATTERY_SCOPE_UNKNOWN),
        technology=s.technology or "",
        manufacturer=s.manufacturer or "",
        model_name=s.model_name or "",
        serial_number=s.serial_number or "",
    )
    optional = {
        "capacity_pct": s.capacity_pct,
        "energy_full_wh": s.energy_full_wh,
        "energy_full_design_wh": s.energy_full_design_wh,
        "energy_now_wh": s.energy_now_wh,
        "charge_full_ah": s.charge_full_ah,
        "charge_full_design_ah": s.charge_full_design_ah,
        "charge_now_ah": s.charge_now_ah,
        "voltage_now_v": s.voltage_now_v,
        "voltage_min_design_v": s.voltage_min_design_v,
        "current_now_a": s.current_now_a,
        "power_now_w": s.power_now_w,
        "temp_celsius": s.temp_celsius,
        "present": s.present,
    }
    for field, value in optional.items():
        if value is not None:
            setattr(info, field, value)
    # Drivers print 0 when they do not count cycles: absent, never "a new battery".
    if s.cycle_count is not None and s.cycle_count > 0:
        info.cycle_count = s.cycle_count
    health = health_pct(s)
    if isinstance(health, float):
        info.health_pct = health
    return info


def health_pct(s: PowerSupply) -> float | str:
    """Full over design x 100 (energy pair, else charge pair), or why it cannot be computed."""
    pairs = (
        ("energy", s.energy_full_wh, s.energy_full_design_wh),
        ("charge", s.charge_full_ah, s.charge_full_design_ah),
    )
    for _unit, full, design in pairs:
        if full is not None and design:
            # Two decimals: finer than any gauge, and stable in reports and trends.
            return round(full / design * 100, 2)
    for unit, full, design in pairs:
        if full is not None:
            why = "0" if design == 0 else "not reported"
            return f"{unit}_full_design is {why}, so wear cannot be computed"
    return "neither energy_full nor charge_full is reported, so wear cannot be computed"


def _adapter_facts(supplies: Iterable[PowerSupply]) -> list[probe_pb2.Fact]:
    facts = []
    for a in supplies:
        if not a.is_adapter:
            continue
        state = {0: "offline", 1: "online", 2: "online (programmable)"}.get(
            a.online if a.online is not None else -1, "online state not reported"
        )
        facts.append(fact(f"adapter.{a.name}", f"{a.type} {state}"))
    return facts


def _health_check(ctx: ProbeContext, health: float) -> probe_pb2.Check:
    warn_below = ctx.limit("battery.min_health_pct", 80)
    fail_below = ctx.limit("battery.fail_health_pct", 50)
    h = f"health {_pct(health)} %"
    if health < fail_below:
        return check(
            "battery.health_pct",
            FAIL,
            f"{h} of design capacity is below {_pct(fail_below)} %: the battery is worn out",
        )
    if health < warn_below:
        return check(
            "battery.health_pct",
            WARN,
            f"{h} of design capacity is below {_pct(warn_below)} %: the battery is worn",
        )
    if health > 100:
        return check(
            "battery.health_pct",
            PASS,
            f"{h}: full capacity is above design, as new cells often report; not a fault",
        )
    return check(
        "battery.health_pct", PASS, f"{h} of design capacity is at or above {_pct(warn_below)} %"
    )


def _judge(ctx: ProbeContext, s: PowerSupply) -> tuple[list[probe_pb2.Check], list[probe_pb2.Fact]]:
    """The checks of a system battery's limits, and facts for what could not be judged."""
    checks: list[probe_pb2.Check] = []
    facts: list[probe_pb2.Fact] = []

    health = health_pct(s)
    if isinstance(health, float):
        checks.append(_health_check(ctx, health))
    else:
        facts.append(fact("health_pct", health))

    if s.cycle_count is not None and s.cycle_count <= 0:
        facts.append(
            fact("cycle_count", f"{s.cycle_count}: the driver does not count cycles (not reported)")
        )
    elif s.cycle_count is not None:
        most = ctx.limit("battery.max_cycle_count", 1000)
        over = s.cycle_count > most
        checks.append(
            check(
                "battery.cycle_count",
                WARN if over else PASS,
                f"{s.cycle_count} charge cycles is {'above' if over else 'within'} {most:g}",
            )
        )

    if s.health in HEALTH:
        verdict = HEALTH[s.health][1] or PASS
        checks.append(
            check(
                "battery.driver_health",
                verdict,
                f"the battery's driver reports health {s.health!r}",
            )
        )
    elif s.health is not None:
        facts.append(fact("health", f"driver reports {s.health!r}, a value we do not know"))

    if s.temp_celsius is not None:
        hottest = ctx.limit("battery.max_temp_celsius", 60)
        hot = s.temp_celsius > hottest
        checks.append(
            check(
                "battery.temperature",
                WARN if hot else PASS,
                f"battery temperature {s.temp_celsius:g} °C is "
                f"{'above' if hot else 'within'} {hottest:g} °C",
            )
        )
    return checks, facts


def _label(s: PowerSupply) -> str:
    who = " ".join(x for x in (s.manufacturer, s.model_name) if x)
    return f"{s.name} ({who})" if who else s.name


def _evidence(s: PowerSupply, info: battery_pb2.BatteryInfo) -> str:
    parts = []
    if info.HasField("health_pct"):
        parts.append(f"{_pct(info.health_pct)} % of design capacity")
    if info.HasField("cycle_count"):
        parts.append(f"{info.cycle_count} cycles")
    state = (s.status or "status unknown").lower()
    if s.capacity_pct is not None:
        state += f" at {s.capacity_pct} %"
    parts.append(state)
    return f"{_label(s)}: " + ", ".join(parts)


def _system_battery(
    ctx: ProbeContext, s: PowerSupply, adapters: list[probe_pb2.Fact]
) -> probe_pb2.ProbeResult:
    info = battery_info(s)
    if s.errors:
        # A number we could not read could hide a fault or invent one: do not judge.
        return errored(first_error(s.errors), subject=s.name, battery=info)
    checks, facts = _judge(ctx, s)
    return result(
        worst(checks),
        _evidence(s, info),
        subject=s.name,
        checks=checks,
        facts=[*facts, *adapters],
        battery=info,
    )


def _empty_bay(s: PowerSupply) -> probe_pb2.ProbeResult:
    # Nothing to judge in an empty bay. Drivers often fail to read the other attributes
    # of a battery that is not there: kept as facts for the engineer, not an ERROR.
    unreadable = [fact("unreadable", e.message) for e in s.errors]
    return result(
        SKIP, f"{s.name}: bay empty", subject=s.name, facts=unreadable, battery=battery_info(s)
    )


def _peripheral_battery(s: PowerSupply) -> probe_pb2.ProbeResult:
    info = battery_info(s)
    if s.errors:
        return errored(first_error(s.errors), subject=s.name, battery=info)
    charge = f" at {s.capacity_pct} %" if s.capacity_pct is not None else ""
    model = f" ({s.model_name})" if s.model_name else ""
    return result(
        SKIP,
        f"{s.name}{model}: a peripheral's battery (scope Device){charge}; "
        "not the system battery, so not judged",
        subject=s.name,
        facts=[fact("scope", "Device")],
        battery=info,
    )


def _from_psutil(ctx: ProbeContext) -> probe_pb2.ProbeResult | None:
    if ctx.psutil is None:
        return None
    try:
        sbat = ctx.psutil.sensors_battery()
    except (AttributeError, OSError):
        # Not in this psutil or not in the captured snapshot (AttributeError), or psutil
        # found no power_supply directory to list (OSError on some versions): no source.
        return None
    if sbat is None:
        return None
    info = battery_pb2.BatteryInfo(
        name="battery", source=battery_pb2.BATTERY_SOURCE_PSUTIL, capacity_pct=float(sbat.percent)
    )
    if sbat.power_plugged is not None:
        info.power_plugged = bool(sbat.power_plugged)
    measurements = []
    # psutil's negative secsleft are sentinels: -1 unknown, -2 unlimited (plugged in).
    if sbat.secsleft is not None and sbat.secsleft >= 0:
        measurements.append(measurement("seconds_left", sbat.secsleft, "second"))
    plugged = {True: ", charger plugged in", False: ", on battery", None: ""}[sbat.power_plugged]
    why = "psutil gives charge and plug state only: wear, cycles and temperature cannot be judged"
    return result(
        PASS,
        f"battery at {_pct(float(sbat.percent))} %{plugged} (from psutil; {why})",
        subject="battery",
        checks=[check("battery.health_pct", SKIP, why)],
        measurements=measurements,
        battery=info,
    )


@telemetry("battery.power_supply", BATTERY, "Batteries: charge, wear, cycles, health, temperature")
def power_supply(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    if not ctx.sysfs.exists():
        raise AttributeReadError(
            f"the sysfs root {ctx.sysfs.root} does not exist", str(ctx.sysfs.root)
        )
    supplies = read_power_supplies(ctx.sysfs)
    adapters = _adapter_facts(supplies)
    system = [s for s in supplies if s.is_system_battery]
    results = [_system_battery(ctx, s, adapters) for s in system if s.present is not False]
    # A supply whose type could not be read may be a battery: say so rather than drop it.
    results += [
        errored(first_error(s.errors), subject=s.name)
        for s in supplies
        if s.type is None and s.errors
    ]
    peripherals = [
        _peripheral_battery(s) for s in supplies if s.is_battery and not s.is_system_battery
    ]
    empty = [_empty_bay(s) for s in system if s.present is False]
    if results:
        return results + empty + peripherals
    if empty:
        # Only empty bays: no battery to judge. psutil is not asked, as it reads this
        # same directory; the bays' results keep what the driver said about them.
        bays = ", ".join(r.subject for r in empty)
        return [
            result(SKIP, NO_BATTERY_IN_BAY.format(bays=bays), facts=adapters),
            *empty,
            *peripherals,
        ]
    if peripherals:
        # psutil takes any "*battery*" supply for the system battery: here it would be
        # the mouse's, so it is not asked.
        return [result(SKIP, NO_PERIPHERAL_ONLY, facts=adapters), *peripherals]
    fallback = _from_psutil(ctx)
    if fallback is not None:
        return [fallback]
    seen = ", ".join(f.name.removeprefix("adapter.") + f" ({f.value})" for f in adapters)
    raise Unsupported(NO_BATTERY + (f"; adapters: {seen}" if seen else ""))
