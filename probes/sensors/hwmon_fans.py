"""sensors.fans: every hwmon fan, and whether it turns when it should.

    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/desktop-no-battery/sys"))
    >>> [(r.subject, r.status) for r in fans(ctx)]
    [('nct6775/fan1', PASS), ('nct6775/fan2', FAIL), ('nct6775/fan3', PASS), ...]

One result per fan:

- 0 RPM against a non-zero `fanN_min`: FAIL `sensors.fan_stalled` — the board expects it
  to turn and it does not (seized, unplugged, a broken tach wire);
- 0 RPM with no minimum (or a minimum of 0): PASS — many fans stop at idle on purpose;
- turning but below the minimum: WARN `sensors.fan_slow` (worn bearing, clogged intake);
- `fanN_alarm` set: WARN `sensors.fan_alarm`; `fanN_fault` set: WARN `sensors.sensor_fault`.

When sysfs has no hwmon at all on the live machine, psutil's fan list is reported
instead (it has no minimum, so nothing can be judged stalled).
"""

from __future__ import annotations

from typing import Any

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.class_hwmon import CLASS_HWMON, HwmonChip, hwmon_dirs, read_hwmon
from probelink.probes.registry import SENSORS, telemetry
from probelink.probes.results import FAIL, PASS, SKIP, WARN, check, errored, fact, result, worst
from probelink.probes.sensors._common import (
    SENSOR_FAULT,
    absent_reason,
    chip_facts,
    input_problem,
    unique_names,
)
from probelink.v1 import probe_pb2, sensors_pb2


def _support(ctx: ProbeContext) -> str | None:
    if hwmon_dirs(ctx.sysfs) or (ctx.live and ctx.psutil is not None):
        return None
    return absent_reason(ctx, "hwmon sensor chips", CLASS_HWMON)


def judge(fan: sensors_pb2.Fan) -> list[probe_pb2.Check]:
    """The checks of one fan reading (hwmon or psutil alike)."""
    what = fan.label
    if fan.sensor_fault:
        return [
            check(SENSOR_FAULT, WARN, f"the {fan.chip} chip reports {what}'s tachometer as faulty")
        ]
    rpm = fan.rpm
    checks = []
    if fan.HasField("min_rpm") and fan.min_rpm > 0:
        low = fan.min_rpm
        if rpm == 0:
            checks.append(
                check(
                    "sensors.fan_stalled",
                    FAIL,
                    f"{what} reads 0 RPM against a minimum of {low:g} RPM: the fan is not turning "
                    "(seized, unplugged or a broken tachometer wire)",
                )
            )
        elif rpm < low:
            checks.append(
                check(
                    "sensors.fan_slow",
                    WARN,
                    f"{what} turns at {rpm:g} RPM, below its minimum of {low:g} RPM",
                )
            )
        else:
            checks.append(
                check(
                    "sensors.fan_stalled",
                    PASS,
                    f"{what} turns at {rpm:g} RPM, at or above its minimum of {low:g} RPM",
                )
            )
    if fan.alarm:
        checks.append(check("sensors.fan_alarm", WARN, f"the chip raised its alarm for {what}"))
    return checks


def _evidence(subject: str, fan: sensors_pb2.Fan, checks: list[probe_pb2.Check]) -> str:
    findings = [c.message for c in checks if c.status != PASS]
    if findings:
        return f"{subject}: " + "; ".join(findings)
    if fan.rpm == 0:
        return (
            f"{subject}: 0 RPM, stopped; the chip expects no minimum speed, "
            "so a fan resting at idle is normal"
        )
    low = f" (minimum {fan.min_rpm:g} RPM)" if fan.HasField("min_rpm") and fan.min_rpm > 0 else ""
    return f"{subject}: {fan.rpm:g} RPM{low}"


def judged(
    subject: str, fan: sensors_pb2.Fan, facts: list[probe_pb2.Fact]
) -> probe_pb2.ProbeResult:
    if not fan.HasField("rpm"):
        return result(
            SKIP, f"{subject}: the fan gives no reading now", subject=subject, facts=facts, fan=fan
        )
    checks = judge(fan)
    return result(
        worst(checks),
        _evidence(subject, fan, checks),
        subject=subject,
        checks=checks,
        facts=facts,
        fan=fan,
    )


def from_hwmon(chips: list[HwmonChip]) -> list[probe_pb2.ProbeResult]:
    names = unique_names([(c.hwmon, c.name) for c in chips])
    out = []
    for chip in chips:
        name = names[chip.hwmon]
        facts_of_chip = chip_facts(chip)
        for f in chip.fans:
            subject = f"{name}/{f.label}"
            proto = sensors_pb2.Fan(
                chip=name,
                label=f.label,
                rpm=f.input_rpm,
                min_rpm=f.min_rpm,
                alarm=f.alarm,
                sensor_fault=f.fault,
            )
            problem = input_problem(f.errors, f"fan{f.index}_input")
            if f.input_rpm is None and problem is not None:
                out.append(errored(problem.to_error(), subject, fan=proto))
                continue
            facts = facts_of_chip + [fact("read_problem", p.message) for p in f.errors]
            out.append(judged(subject, proto, facts))
    return out


def from_psutil(fans: dict[str, list[Any]]) -> list[probe_pb2.ProbeResult]:
    """Results from psutil.sensors_fans(): {chip: [sfan(label, current)]}."""
    out = []
    for chip, entries in sorted(fans.items()):
        for i, e in enumerate(entries, 1):
            label = e.label or f"fan{i}"
            proto = sensors_pb2.Fan(chip=chip, label=label, rpm=e.current)
            out.append(judged(f"{chip}/{label}", proto, [fact("source", "psutil")]))
    return out


@telemetry(
    "sensors.fans",
    SENSORS,
    "Fans of hwmon sensor chips: turning when they should",
    support=_support,
)
def fans(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    chips = read_hwmon(ctx.sysfs)
    if chips:
        out = from_hwmon(chips)
        if not out:
            names = ", ".join(c.name for c in chips)
            raise Unsupported(f"the hwmon chips here ({names}) report no fans")
        return out
    reason = absent_reason(ctx, "hwmon sensor chips", CLASS_HWMON)
    if ctx.live and ctx.psutil is not None:
        try:
            found = ctx.psutil.sensors_fans()
        except AttributeError:
            found = {}
        if found:
            return from_psutil(found)
        reason += ", and psutil reports no fans"
    raise Unsupported(reason)
