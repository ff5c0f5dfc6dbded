"""battery.charge_detection: plugging in the charger makes the system battery charge.

    >>> result = run_inline(get("battery.charge_detection"), ctx, ask=lambda code, q: True)
    >>> result.charge_detection.status_after
    'Charging'

Asks the person to plug in the charger ("plug_in_charger"), then re-reads the battery's
`status` every second for up to `battery.charge_detect_timeout_s` (default 30 s).
"Charging" or "Full" means the charger was accepted. So does "Not charging" while an
adapter reports `online`: laptops that stop at a charge threshold say exactly that. A
status that stays "Discharging" FAILs: the charger, its cable, the port or the charging
circuit is at fault. Nobody to plug it in is "could not run", never a verdict.
"""

from __future__ import annotations

from dataclasses import replace

from probelink.probes.battery._routines import NO_BATTERY, battery_routine_reason
from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.class_power_supply import (
    PowerSupply,
    read_power_supplies,
    system_battery,
)
from probelink.probes.registry import BATTERY
from probelink.probes.routine import Finished, RoutineRun, routine
from probelink.v1 import routine_pb2

POLL_S = 1.0
ACCEPTED = ("Charging", "Full")


def _accepted(battery: PowerSupply, supplies: list[PowerSupply]) -> bool:
    if battery.status in ACCEPTED:
        return True
    adapter_online = any(a.is_adapter and a.online for a in supplies)
    return battery.status == "Not charging" and adapter_online


@routine(
    "battery.charge_detection",
    BATTERY,
    "The battery charges when the charger is plugged in",
    time_budget_s=300,
    support=battery_routine_reason,
)
def charge_detection(ctx: ProbeContext, run: RoutineRun) -> Finished:
    timeout_s = ctx.limit("battery.charge_detect_timeout_s", 30)
    run.progress(2, "reading the battery")
    battery = system_battery(ctx.sysfs)
    if battery is None:
        raise Unsupported(NO_BATTERY)
    if battery.status is None:
        raise Unsupported(f"{battery.name} reports no status, so charging cannot be detected")
    before = battery.status
    detail = routine_pb2.ChargeDetectionDetail(battery=battery.name, status_before=before)
    run.keep(detail)
    if not run.ask("plug_in_charger", "Plug in the charger, then press Enter."):
        raise Unsupported("nobody confirmed the charger was plugged in")

    waited = 0.0
    while True:
        supplies = read_power_supplies(ctx.sysfs)
        now = next((s for s in supplies if s.name == battery.name), None)
        if now is None:
            raise Unsupported(f"{battery.name} disappeared from class/power_supply")
        if now.status is None and now.errors:
            # An unreadable status is "could not run", never "did not charge".
            e = now.errors[0]
            raise replace(e, message=f"{battery.name}: {e.message}").to_error()
        after = now.status or "unknown"
        detail = routine_pb2.ChargeDetectionDetail(
            battery=battery.name,
            status_before=before,
            status_after=after,
            charging_detected=_accepted(now, supplies),
        )
        run.keep(detail)
        if detail.charging_detected:
            return Finished(
                True,
                f"{battery.name} went from {before!r} to {after!r} once the charger was plugged in",
                detail,
            )
        if waited >= timeout_s:
            return Finished(
                False,
                f"{battery.name} still reports {after!r} {timeout_s:g} s "
                "after the charger was plugged in: charger, cable, port or "
                "charging circuit at fault",
                detail,
            )
        step = min(POLL_S, timeout_s - waited)
        run.sleep(step)
        waited += step
        run.progress(
            5 + int(90 * waited / max(timeout_s, 1e-9)),
            f"waiting for charging: {waited:g} of {timeout_s:g} s",
        )
