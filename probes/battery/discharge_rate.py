"""battery.discharge_rate: how fast the system battery drains over a bounded window.

    >>> result = run_inline(get("battery.discharge_rate"), ctx, ask=lambda code, q: True)
    >>> result.battery_discharge.discharge_pct_per_hour
    20.7

Meant for an idle device: the charger unplugged, nothing heavy running. The routine needs
the battery Discharging (it asks the person to unplug the charger), samples the battery
`battery.discharge_window_s` (default 60 s) long, and FAILs when it drains faster than
`battery.max_discharge_pct_per_hour` (default 30 %/h of its full capacity).

How the rate is taken, best first:

1. the gauge's own draw, averaged over the samples: `power_now` against `energy_full`,
   or `current_now` against `charge_full`. Gauges refresh `energy_now` only every few
   seconds to a minute, so over a short window the level may not move at all while the
   draw readings do;
2. else the fall of the level, `energy_now` over `energy_full` (the charge pair, else
   `capacity`) between the first and the last sample.

Sysfs is re-read at every step, so a charger plugged back in mid-way ends the routine as
"could not run", never as a verdict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from probelink.probes.battery._routines import NO_BATTERY, battery_routine_reason
from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.class_power_supply import PowerSupply, read_supply, system_battery
from probelink.probes.registry import BATTERY
from probelink.probes.routine import Finished, RoutineRun, routine
from probelink.v1 import routine_pb2

STEPS = 10
# How long a laptop may take to report Discharging once the charger is pulled.
UNPLUG_SETTLE_S = 5.0
UNPLUG_POLL_S = 0.5


@dataclass(frozen=True)
class Sample:
    """The battery at one moment of the window."""

    at_s: float  # time.monotonic()
    capacity_pct: float | None  # "capacity"
    level_pct: float | None  # energy_now/energy_full (or the charge pair) x 100, else capacity
    energy_wh: float | None  # "energy_now"
    draw_w: float | None  # "power_now", else voltage_now x current_now; sign dropped
    draw_pct_per_hour: float | None  # the draw against the full capacity


def _sample(s: PowerSupply) -> Sample:
    level: float | None = None
    if s.energy_now_wh is not None and s.energy_full_wh:
        level = s.energy_now_wh / s.energy_full_wh * 100
    elif s.charge_now_ah is not None and s.charge_full_ah:
        level = s.charge_now_ah / s.charge_full_ah * 100
    elif s.capacity_pct is not None:
        level = float(s.capacity_pct)
    # Drivers disagree on the sign of current_now (and some of power_now) while discharging.
    draw_w: float | None = None
    if s.power_now_w is not None:
        draw_w = abs(s.power_now_w)
    elif s.voltage_now_v is not None and s.current_now_a is not None:
        draw_w = abs(s.voltage_now_v * s.current_now_a)
    rate: float | None = None
    if s.power_now_w is not None and s.energy_full_wh:
        rate = abs(s.power_now_w) / s.energy_full_wh * 100
    elif s.current_now_a is not None and s.charge_full_ah:
        rate = abs(s.current_now_a) / s.charge_full_ah * 100
    elif draw_w is not None and s.energy_full_wh:
        rate = draw_w / s.energy_full_wh * 100
    cap = None if s.capacity_pct is None else float(s.capacity_pct)
    return Sample(time.monotonic(), cap, level, s.energy_now_wh, draw_w, rate)


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _reread(ctx: ProbeContext, name: str) -> PowerSupply:
    s = read_supply(ctx.sysfs, name)
    if s.type is None and not s.errors:
        raise Unsupported(f"{name} disappeared from class/power_supply during the routine")
    if s.errors:
        # Could not run, not a verdict: the execute() boundary makes this RUNTIME_ERROR.
        e = s.errors[0]
        raise replace(e, message=f"{name} could not be read: {e.message}").to_error()
    return s


def _ensure_discharging(ctx: ProbeContext, run: RoutineRun, s: PowerSupply) -> PowerSupply:
    if s.status == "Discharging":
        return s
    if not run.ask("unplug_charger", "Unplug the charger, then press Enter."):
        raise Unsupported(
            f"{s.name} is {s.status or 'in an unknown state'} and the charger "
            "was not unplugged: the drain can only be measured on battery"
        )
    waited = 0.0
    while True:
        s = _reread(ctx, s.name)
        if s.status == "Discharging":
            return s
        if waited >= UNPLUG_SETTLE_S:
            raise Unsupported(
                f"{s.name} still reports {s.status!r} after the charger was "
                "unplugged: the drain cannot be measured"
            )
        run.sleep(UNPLUG_POLL_S)
        waited += UNPLUG_POLL_S


def _detail(
    name: str, window_s: float, max_rate: float, samples: list[Sample]
) -> tuple[routine_pb2.BatteryDischargeDetail, str]:
    """The detail so far, and how its rate was taken (for the reason)."""
    d = routine_pb2.BatteryDischargeDetail(
        battery=name, window_s=window_s, max_allowed_pct_per_hour=max_rate
    )
    first, last = samples[0], samples[-1]
    if first.capacity_pct is not None:
        d.start_capacity_pct = first.capacity_pct
    if len(samples) < 2:
        return d, ""
    if last.capacity_pct is not None:
        d.end_capacity_pct = last.capacity_pct
    hours = max(last.at_s - first.at_s, 1e-6) / 3600
    # The first sample is taken before the window: the draw readings within it count.
    draw_rate = _mean([x.draw_pct_per_hour for x in samples[1:]])
    draw_w = _mean([x.draw_w for x in samples[1:]])
    how = ""
    if draw_rate is not None:
        d.discharge_pct_per_hour = round(draw_rate, 2)
        how = "from the gauge's draw readings"
    elif first.level_pct is not None and last.level_pct is not None:
        d.discharge_pct_per_hour = round((first.level_pct - last.level_pct) / hours, 2)
        how = f"from the level's fall of {first.level_pct - last.level_pct:.2f} %"
    if draw_w is not None:
        d.mean_power_w = round(draw_w, 3)
    elif first.energy_wh is not None and last.energy_wh is not None:
        d.mean_power_w = round((first.energy_wh - last.energy_wh) / hours, 3)
    return d, how


@routine(
    "battery.discharge_rate",
    BATTERY,
    "Battery drain over a bounded window, on an idle device",
    time_budget_s=600,
    support=battery_routine_reason,
)
def discharge_rate(ctx: ProbeContext, run: RoutineRun) -> Finished:
    window_s = ctx.limit("battery.discharge_window_s", 60)
    max_rate = ctx.limit("battery.max_discharge_pct_per_hour", 30)
    run.progress(2, "reading the battery")
    s = system_battery(ctx.sysfs)
    if s is None:
        raise Unsupported(NO_BATTERY)
    s = _ensure_discharging(ctx, run, _reread(ctx, s.name))
    samples = [_sample(s)]
    if samples[0].level_pct is None and samples[0].draw_pct_per_hour is None:
        raise Unsupported(
            f"{s.name} reports none of energy_now, charge_now, capacity, power_now or current_now"
        )
    run.keep(_detail(s.name, window_s, max_rate, samples)[0])

    for step in range(1, STEPS + 1):
        run.sleep(window_s / STEPS)
        now = _reread(ctx, s.name)
        if now.status != "Discharging":
            raise Unsupported(
                f"{s.name} went from Discharging to {now.status!r} during the "
                "window (charger plugged in?): no verdict"
            )
        samples.append(_sample(now))
        run.keep(_detail(s.name, window_s, max_rate, samples)[0])
        run.progress(
            5 + 90 * step // STEPS,
            f"measuring drain: {step * window_s / STEPS:g} of {window_s:g} s",
        )

    detail, how = _detail(s.name, window_s, max_rate, samples)
    if not how:
        raise Unsupported(f"{s.name} stopped reporting its level during the window: no verdict")
    rate = detail.discharge_pct_per_hour
    words = f"{s.name} drains {rate:g} %/h on an idle device ({how})"
    if rate > max_rate:
        return Finished(False, f"{words}: above {max_rate:g} %/h", detail)
    return Finished(True, f"{words}: within {max_rate:g} %/h", detail)
