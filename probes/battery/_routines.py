"""What both battery routines need before they can run (not a probe: no registration).

    @routine("battery.charge_detection", BATTERY, "...", time_budget_s=300,
             support=battery_routine_reason)

A routine watches the battery change while a person acts (unplugs or plugs in the
charger). A captured tree is a still picture: nothing in it will change, so judging
it would blame the hardware for what the capture cannot show. Only a live machine or a
simulated device (a tree that a bench or a test changes while the routine runs) will do.
"""

from __future__ import annotations

from probelink.probes.context import ProbeContext
from probelink.probes.readers.class_power_supply import system_battery

NO_BATTERY = "no system battery in class/power_supply (desktop or VM)"


def battery_routine_reason(ctx: ProbeContext) -> str | None:
    """None when a battery routine can run here, else the reason it cannot."""
    if not ctx.live and not ctx.simulated:
        return (
            f"{ctx.sysfs.root} is a captured machine, which does not change while a routine "
            "watches it (--simulated-device says it is a simulated device that does)"
        )
    return None if system_battery(ctx.sysfs) else NO_BATTERY
