"""What the sensor probes share: the plausible range of a temperature and honest SKIP reasons.

    >>> implausible(-273.2, ctx)      # an ACPI zone the firmware never initialised
    True
    >>> celsius(45.0)
    '45 °C'

Not a probe: `registry.load_all()` imports it with the family, and it registers nothing.
"""

from __future__ import annotations

from probelink.probes.context import ProbeContext
from probelink.probes.readers.class_hwmon import HwmonChip
from probelink.probes.readers.problems import ReadProblem
from probelink.probes.results import fact
from probelink.v1 import probe_pb2

# A reading outside this range is a broken or uninitialised sensor, not a temperature:
# - below -60 °C: no laptop, phone, desktop or board that runs our agent operates there
#   (industrial parts are rated down to -40 °C, automotive too); drivers that lost their
#   sensor report -128 °C (0x80), and uninitialised ACPI zones -273.2 °C (0 K);
# - above 200 °C: silicon is rated to a junction temperature of 125-150 °C and solder melts
#   at about 217 °C, so a machine still running cannot be there; drivers report 255 °C or
#   more for a missing diode.
# Both bounds are limits a fixture plan may override.
MIN_PLAUSIBLE_CELSIUS = -60.0
MAX_PLAUSIBLE_CELSIUS = 200.0

SENSOR_FAULT = "sensors.sensor_fault"


def plausible_range(ctx: ProbeContext) -> tuple[float, float]:
    return (
        ctx.limit("sensors.min_plausible_celsius", MIN_PLAUSIBLE_CELSIUS),
        ctx.limit("sensors.max_plausible_celsius", MAX_PLAUSIBLE_CELSIUS),
    )


def implausible(temp_celsius: float | None, ctx: ProbeContext) -> bool:
    """Whether a reading is outside what a working sensor can report (see the bounds above)."""
    if temp_celsius is None:
        return False
    low, high = plausible_range(ctx)
    return not low <= temp_celsius <= high


def fault_message(what: str, temp_celsius: float, ctx: ProbeContext) -> str:
    low, high = plausible_range(ctx)
    return (
        f"{what} reads {celsius(temp_celsius)}, outside what a working sensor reports "
        f"({celsius(low)} to {celsius(high)}): the sensor is faulty or was never initialised; "
        "this says nothing about the machine being cold or hot"
    )


def celsius(value: float) -> str:
    return f"{value:g} °C"


def absent_reason(ctx: ProbeContext, what: str, rel: str) -> str:
    """Why there is nothing to read: no sysfs root at all, or no such devices in it."""
    if not ctx.sysfs.exists():
        return f"the sysfs root {ctx.sysfs.root} does not exist"
    return f"this machine has no {what} ({rel} is empty or missing)"


def unique_names(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Map each key (e.g. "hwmon2") to its name, made unique by the key where names repeat.

    Two `nvme` chips would otherwise give the same subject to different sensors.
    """
    counts: dict[str, int] = {}
    for _, name in pairs:
        counts[name] = counts.get(name, 0) + 1
    return {key: name if counts[name] == 1 else f"{name}@{key}" for key, name in pairs}


def chip_facts(chip: HwmonChip) -> list[probe_pb2.Fact]:
    """The facts every channel of a chip carries: which hwmon, how it was named, what failed."""
    facts = [fact("hwmon", chip.hwmon), fact("chip_name_source", chip.name_source)]
    return facts + [fact("chip_read_problem", p.message) for p in chip.errors]


def input_problem(errors: list[ReadProblem], attribute: str) -> ReadProblem | None:
    """The problem reading a channel's input (e.g. "fan2_input"): without it, no verdict."""
    return next((p for p in errors if p.source.endswith(attribute)), None)
