"""sensors.thermal_zones: each thermal zone's temperature against its own trip points.

    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/laptop-worn-battery/sys"))
    >>> [(r.subject, r.status) for r in thermal_zones(ctx)]
    [('thermal_zone0', WARN), ('thermal_zone1', PASS), ('thermal_zone2', PASS)]

One result per zone:

- an impossible reading (below -60 °C or above 200 °C, see `_common`), such as the
  -273.2 °C of an ACPI zone the firmware never initialised: WARN `sensors.sensor_fault`,
  and no temperature verdict — the zone is neither cold nor overheating, it does not know;
- at or above a `critical` trip: FAIL `sensors.zone_critical` (the kernel shuts down there);
- at or above a `hot` or `passive` trip: WARN `sensors.zone_hot` (the kernel throttles);
- otherwise PASS. `active` trips only step fans up, so they are not findings.

Trip points that are impossible values, or at or below 0 °C, are listed but not used:
drivers leave unprogrammed trips at 0 (x86_pkg_temp shows two `passive` trips at 0 until
thermald sets them), and judging against those would call every running CPU hot.
"""

from __future__ import annotations

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.class_thermal import CLASS_THERMAL, ThermalZone, read_thermal_zones
from probelink.probes.registry import SENSORS, telemetry
from probelink.probes.results import FAIL, PASS, SKIP, WARN, check, errored, fact, result, worst
from probelink.probes.sensors._common import (
    SENSOR_FAULT,
    absent_reason,
    celsius,
    fault_message,
    implausible,
)
from probelink.v1 import probe_pb2, sensors_pb2


def _support(ctx: ProbeContext) -> str | None:
    if any(n.startswith("thermal_zone") for n in ctx.sysfs.listdir(CLASS_THERMAL)):
        return None
    return absent_reason(ctx, "thermal zones", CLASS_THERMAL)


def to_proto(z: ThermalZone, ctx: ProbeContext) -> sensors_pb2.ThermalZone:
    return sensors_pb2.ThermalZone(
        zone=z.zone,
        type=z.type or "",
        temp_celsius=z.temp_celsius,
        trip_points=[
            sensors_pb2.TripPoint(type=t.type or "", temp_celsius=t.temp_celsius)
            for t in z.trip_points
            if t.temp_celsius is not None
        ],
        sensor_fault=implausible(z.temp_celsius, ctx),
        mode=z.mode or "",
    )


def judge(zone: sensors_pb2.ThermalZone, ctx: ProbeContext) -> list[probe_pb2.Check]:
    what = f"{zone.zone} ({zone.type})" if zone.type else zone.zone
    temp = zone.temp_celsius
    if zone.sensor_fault:
        return [check(SENSOR_FAULT, WARN, fault_message(what, temp, ctx))]
    # Unprogrammed trips read 0 (see the module docstring): not a limit to judge against.
    trips = [
        t for t in zone.trip_points if t.temp_celsius > 0 and not implausible(t.temp_celsius, ctx)
    ]
    checks = []
    crit = [t.temp_celsius for t in trips if t.type == "critical"]
    if crit:
        limit = min(crit)
        over = temp >= limit
        words = "at or above" if over else "below"
        checks.append(
            check(
                "sensors.zone_critical",
                FAIL if over else PASS,
                f"{what} at {celsius(temp)} is {words} its critical trip {celsius(limit)}",
            )
        )
    hot = [t.temp_celsius for t in trips if t.type in ("hot", "passive")]
    if hot:
        limit = min(hot)
        over = temp >= limit
        words = "at or above" if over else "below"
        checks.append(
            check(
                "sensors.zone_hot",
                WARN if over else PASS,
                f"{what} at {celsius(temp)} is {words} its throttling trip {celsius(limit)}",
            )
        )
    return checks


def judged(z: ThermalZone, ctx: ProbeContext) -> probe_pb2.ProbeResult:
    proto = to_proto(z, ctx)
    subject = z.zone
    temp_problems = [p for p in z.errors if p.source.endswith(f"{z.zone}/temp")]
    if z.temp_celsius is None and temp_problems:
        return errored(temp_problems[0].to_error(), subject, thermal_zone=proto)
    facts = [fact("read_problem", p.message) for p in z.errors]
    if z.mode == "disabled":
        facts.append(fact("mode", "disabled: the kernel does not act on this zone's trip points"))
    label = f"{z.zone} ({z.type})" if z.type else z.zone
    if z.temp_celsius is None:
        return result(
            SKIP,
            f"{label}: the zone gives no reading now",
            subject=subject,
            facts=facts,
            thermal_zone=proto,
        )
    checks = judge(proto, ctx)
    findings = [c.message for c in checks if c.status != PASS]
    evidence = "; ".join(findings) if findings else f"{label}: {celsius(z.temp_celsius)}"
    return result(
        worst(checks), evidence, subject=subject, checks=checks, facts=facts, thermal_zone=proto
    )


@telemetry(
    "sensors.thermal_zones",
    SENSORS,
    "Thermal zones against their trip points; impossible readings are sensor faults",
    support=_support,
)
def thermal_zones(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    zones = read_thermal_zones(ctx.sysfs)
    if not zones:
        raise Unsupported(absent_reason(ctx, "thermal zones", CLASS_THERMAL))
    return [judged(z, ctx) for z in zones]
