"""sensors.temperatures: every hwmon temperature against the chip's own high and critical limits.

    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/laptop-worn-battery/sys"))
    >>> [r.subject for r in temperatures(ctx)]
    ['acpitz/temp1', 'coretemp/Package id 0', 'coretemp/Core 0', ...]

One result per sensor:

- the chip flags a fault (`tempN_fault`) or the reading is impossible (below -60 °C or
  above 200 °C, see `_common`): WARN `sensors.sensor_fault`. A broken sensor is itself a
  finding a technician should see, but it is neither "cold" nor "overheating", so no
  temperature verdict is given;
- the reading is at or above `tempN_crit`: FAIL (and so is the chip's alarm then);
- the chip raised its alarm (`tempN_alarm`) below the critical limit: WARN, since
  super-I/O alarm bits are often latched from a past excursion or spurious;
- at or above `tempN_max`: WARN; otherwise PASS.

The limits are the chip's own (the firmware or driver knows the part); a chip without
them is reported, not judged. When sysfs has no hwmon at all on the live machine, psutil
is asked instead (on other platforms it has sources of its own); on a captured machine
the tree is the authority: psutil's snapshot was read from that same tree, so it could
only repeat the thermal zones under another name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.class_hwmon import (
    CLASS_HWMON,
    HwmonChip,
    HwmonTemp,
    hwmon_dirs,
    read_hwmon,
)
from probelink.probes.registry import SENSORS, telemetry
from probelink.probes.results import FAIL, PASS, SKIP, WARN, check, errored, fact, result, worst
from probelink.probes.sensors._common import (
    SENSOR_FAULT,
    absent_reason,
    celsius,
    chip_facts,
    fault_message,
    implausible,
    input_problem,
    unique_names,
)
from probelink.v1 import probe_pb2, sensors_pb2

HWMON = sensors_pb2.SENSOR_SOURCE_HWMON
PSUTIL = sensors_pb2.SENSOR_SOURCE_PSUTIL


def _support(ctx: ProbeContext) -> str | None:
    if hwmon_dirs(ctx.sysfs) or (ctx.live and ctx.psutil is not None):
        return None
    return absent_reason(ctx, "hwmon sensor chips", CLASS_HWMON)


def judge(sensor: sensors_pb2.ThermalSensor, ctx: ProbeContext) -> list[probe_pb2.Check]:
    """The checks of one temperature reading (hwmon or psutil alike)."""
    what = sensor.label
    if sensor.sensor_fault:
        if sensor.HasField("temp_celsius") and implausible(sensor.temp_celsius, ctx):
            return [check(SENSOR_FAULT, WARN, fault_message(what, sensor.temp_celsius, ctx))]
        return [
            check(
                SENSOR_FAULT,
                WARN,
                f"the {sensor.chip} chip reports {what} as faulty (open or shorted sensor); "
                "its reading is not a temperature",
            )
        ]
    temp = sensor.temp_celsius
    checks = []
    if sensor.alarm:
        # A super-I/O alarm bit is latched (it stays set after a past excursion) or
        # spurious: alone it is worth a look (WARN, as fan and voltage alarms), and only
        # a reading at or above the critical limit makes it a failure.
        at_crit = sensor.HasField("crit_celsius") and temp >= sensor.crit_celsius
        checks.append(
            check(
                "sensors.temp_alarm",
                FAIL if at_crit else WARN,
                f"the chip raised its alarm for {what} at {celsius(temp)}",
            )
        )
    if sensor.HasField("crit_celsius"):
        crit = sensor.crit_celsius
        if temp >= crit:
            checks.append(
                check(
                    "sensors.temp_critical",
                    FAIL,
                    f"{what} is at {celsius(temp)}, at or above its critical limit {celsius(crit)}",
                )
            )
        else:
            checks.append(
                check(
                    "sensors.temp_critical",
                    PASS,
                    f"{what} at {celsius(temp)} is below its critical limit {celsius(crit)}",
                )
            )
    if sensor.HasField("max_celsius"):
        high = sensor.max_celsius
        status = WARN if temp >= high else PASS
        words = "at or above" if status == WARN else "below"
        checks.append(
            check(
                "sensors.temp_high",
                status,
                f"{what} at {celsius(temp)} is {words} its high limit {celsius(high)}",
            )
        )
    return checks


def to_proto(chip: str, t: HwmonTemp, ctx: ProbeContext) -> sensors_pb2.ThermalSensor:
    return sensors_pb2.ThermalSensor(
        chip=chip,
        label=t.label,
        source=HWMON,
        temp_celsius=t.input_celsius,
        max_celsius=t.max_celsius,
        crit_celsius=t.crit_celsius,
        alarm=t.alarm,
        sensor_fault=t.fault or implausible(t.input_celsius, ctx),
    )


def _evidence(
    subject: str, sensor: sensors_pb2.ThermalSensor, checks: list[probe_pb2.Check]
) -> str:
    findings = [c.message for c in checks if c.status != PASS]
    if findings:
        return f"{subject}: " + "; ".join(findings)
    limits = []
    if sensor.HasField("max_celsius"):
        limits.append(f"high {celsius(sensor.max_celsius)}")
    if sensor.HasField("crit_celsius"):
        limits.append(f"critical {celsius(sensor.crit_celsius)}")
    suffix = f" ({', '.join(limits)})" if limits else " (the chip sets no limits)"
    return f"{subject}: {celsius(sensor.temp_celsius)}{suffix}"


def judged(
    subject: str,
    sensor: sensors_pb2.ThermalSensor,
    ctx: ProbeContext,
    facts: Iterable[probe_pb2.Fact] = (),
) -> probe_pb2.ProbeResult:
    if not sensor.HasField("temp_celsius"):
        return result(
            SKIP,
            f"{subject}: the sensor gives no reading now (empty or no data)",
            subject=subject,
            facts=facts,
            thermal_sensor=sensor,
        )
    checks = judge(sensor, ctx)
    return result(
        worst(checks),
        _evidence(subject, sensor, checks),
        subject=subject,
        checks=checks,
        facts=facts,
        thermal_sensor=sensor,
    )


def from_hwmon(chips: list[HwmonChip], ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    names = unique_names([(c.hwmon, c.name) for c in chips])
    out = []
    for chip in chips:
        if chip.thermal_zone is not None:
            # The same sensor as a thermal zone, judged by sensors.thermal_zones against
            # its trip points; reporting it twice would count one fault as two.
            continue
        name = names[chip.hwmon]
        facts_of_chip = chip_facts(chip)
        for t in chip.temperatures:
            subject = f"{name}/{t.label}"
            sensor = to_proto(name, t, ctx)
            problem = input_problem(t.errors, f"temp{t.index}_input")
            if t.input_celsius is None and problem is not None:
                out.append(errored(problem.to_error(), subject, thermal_sensor=sensor))
                continue
            facts = facts_of_chip + [fact("read_problem", p.message) for p in t.errors]
            out.append(judged(subject, sensor, ctx, facts))
    return out


def from_psutil(temps: dict[str, list[Any]], ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    """Results from psutil.sensors_temperatures().

    Its shape: {chip: [shwtemp(label, current, high, critical)]}, degrees Celsius.
    """
    out = []
    for chip, entries in sorted(temps.items()):
        for i, e in enumerate(entries, 1):
            label = e.label or f"temp{i}"
            sensor = sensors_pb2.ThermalSensor(
                chip=chip,
                label=label,
                source=PSUTIL,
                temp_celsius=e.current,
                max_celsius=e.high,
                crit_celsius=e.critical,
                sensor_fault=implausible(e.current, ctx),
            )
            out.append(judged(f"{chip}/{label}", sensor, ctx, [fact("source", "psutil")]))
    return out


@telemetry(
    "sensors.temperatures",
    SENSORS,
    "Temperatures of hwmon sensor chips against their own limits",
    support=_support,
)
def temperatures(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    chips = read_hwmon(ctx.sysfs)
    if chips:
        out = from_hwmon(chips, ctx)
        if not out:
            names = ", ".join(c.name for c in chips)
            raise Unsupported(f"the hwmon chips here ({names}) report no temperatures")
        return out
    reason = absent_reason(ctx, "hwmon sensor chips", CLASS_HWMON)
    if ctx.live and ctx.psutil is not None:
        try:
            temps = ctx.psutil.sensors_temperatures()
        except AttributeError:
            temps = {}
        if temps:
            return from_psutil(temps, ctx)
        reason += ", and psutil reports no temperatures"
    raise Unsupported(reason)
