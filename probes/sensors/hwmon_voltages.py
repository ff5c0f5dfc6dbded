"""sensors.voltages: every hwmon voltage against the window the chip was programmed with.

    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/desktop-no-battery/sys"))
    >>> [(r.subject, r.status) for r in voltages(ctx)]
    [('nct6775/in0', PASS), ('nct6775/in1', PASS), ...]

One result per voltage, in volts (sysfs millivolts):

- outside [inN_min, inN_max]: WARN `sensors.voltage_out_of_range` — a weak supply rail
  or a failing regulator is worth a technician's look, though the machine still runs;
- `inN_alarm` set: WARN `sensors.voltage_alarm`.

The window is judged only when the chip has one (max above min): super-I/O chips whose
limits the BIOS never programmed read 0 for both, and every rail would look "out of range".
Many `inN` are unscaled divider outputs whose volts mean little without the board's
resistor values; they are reported as the chip gives them.
"""

from __future__ import annotations

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.class_hwmon import CLASS_HWMON, HwmonChip, hwmon_dirs, read_hwmon
from probelink.probes.registry import SENSORS, telemetry
from probelink.probes.results import PASS, SKIP, WARN, check, errored, fact, result, worst
from probelink.probes.sensors._common import absent_reason, chip_facts, input_problem, unique_names
from probelink.v1 import probe_pb2, sensors_pb2


def _support(ctx: ProbeContext) -> str | None:
    return None if hwmon_dirs(ctx.sysfs) else absent_reason(ctx, "hwmon sensor chips", CLASS_HWMON)


def _v(value: float) -> str:
    return f"{value:.3f} V"


def judge(v: sensors_pb2.VoltageSensor) -> list[probe_pb2.Check]:
    what = v.label
    checks = []
    if v.HasField("min_volts") and v.HasField("max_volts") and v.max_volts > v.min_volts:
        window = f"[{_v(v.min_volts)}, {_v(v.max_volts)}]"
        inside = v.min_volts <= v.volts <= v.max_volts
        words = "inside" if inside else "outside"
        checks.append(
            check(
                "sensors.voltage_out_of_range",
                PASS if inside else WARN,
                f"{what} at {_v(v.volts)} is {words} its window {window}",
            )
        )
    if v.alarm:
        checks.append(
            check(
                "sensors.voltage_alarm",
                WARN,
                f"the chip raised its alarm for {what} at {_v(v.volts)}",
            )
        )
    return checks


def from_hwmon(chips: list[HwmonChip]) -> list[probe_pb2.ProbeResult]:
    names = unique_names([(c.hwmon, c.name) for c in chips])
    out = []
    for chip in chips:
        name = names[chip.hwmon]
        facts_of_chip = chip_facts(chip)
        for v in chip.voltages:
            subject = f"{name}/{v.label}"
            proto = sensors_pb2.VoltageSensor(
                chip=name,
                label=v.label,
                volts=v.input_volts,
                min_volts=v.min_volts,
                max_volts=v.max_volts,
                alarm=v.alarm,
            )
            problem = input_problem(v.errors, f"in{v.index}_input")
            if v.input_volts is None and problem is not None:
                out.append(errored(problem.to_error(), subject, voltage_sensor=proto))
                continue
            facts = facts_of_chip + [fact("read_problem", p.message) for p in v.errors]
            if v.input_volts is None:
                out.append(
                    result(
                        SKIP,
                        f"{subject}: the sensor gives no reading now",
                        subject=subject,
                        facts=facts,
                        voltage_sensor=proto,
                    )
                )
                continue
            checks = judge(proto)
            findings = [c.message for c in checks if c.status != PASS]
            evidence = "; ".join(findings) if findings else _v(v.input_volts)
            out.append(
                result(
                    worst(checks),
                    f"{subject}: {evidence}",
                    subject=subject,
                    checks=checks,
                    facts=facts,
                    voltage_sensor=proto,
                )
            )
    return out


@telemetry(
    "sensors.voltages",
    SENSORS,
    "Voltages of hwmon sensor chips against their window",
    support=_support,
)
def voltages(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    chips = read_hwmon(ctx.sysfs)
    if not chips:
        raise Unsupported(absent_reason(ctx, "hwmon sensor chips", CLASS_HWMON))
    out = from_hwmon(chips)
    if not out:
        names = ", ".join(c.name for c in chips)
        raise Unsupported(f"the hwmon chips here ({names}) report no voltages")
    return out
