"""sensors.cooling_devices: what can shed heat (fans, CPU throttling) and how hard it works now.

    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/laptop-worn-battery/sys"))
    >>> [r.evidence for r in cooling_devices(ctx)]
    ['cooling_device0 (Processor): state 0 of 10', ...]

Informational: one PASS per device with its current and maximum state. A device at its
maximum state tells a technician the kernel is already cooling as hard as it can; that
is context for the thermal zones' verdicts, not a fault of its own.

`intel_powerclamp` reads -1 as its current state while it injects no idle time; that
is "inactive", not a state number, and is reported as such.
"""

from __future__ import annotations

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.class_thermal import (
    CLASS_THERMAL,
    CoolingDevice,
    read_cooling_devices,
)
from probelink.probes.registry import SENSORS, telemetry
from probelink.probes.results import PASS, errored, fact, result
from probelink.probes.sensors._common import absent_reason
from probelink.v1 import probe_pb2, sensors_pb2


def _support(ctx: ProbeContext) -> str | None:
    if any(n.startswith("cooling_device") for n in ctx.sysfs.listdir(CLASS_THERMAL)):
        return None
    return absent_reason(ctx, "cooling devices", CLASS_THERMAL)


def _state(value: int | None) -> str:
    return "?" if value is None else str(value)


def reported(d: CoolingDevice) -> probe_pb2.ProbeResult:
    # A negative state is the driver's "inactive" (intel_powerclamp: -1), not a level.
    inactive = d.cur_state is not None and d.cur_state < 0
    cur = None if inactive else d.cur_state
    proto = sensors_pb2.CoolingDevice(
        name=d.name,
        type=d.type or "",
        cur_state=cur,
        max_state=None if d.max_state is None or d.max_state < 0 else d.max_state,
    )
    if d.cur_state is None and d.max_state is None and d.errors:
        return errored(d.errors[0].to_error(), d.name, cooling_device=proto)
    label = f"{d.name} ({d.type})" if d.type else d.name
    if inactive:
        evidence = f"{label}: inactive (up to state {_state(d.max_state)})"
    else:
        evidence = f"{label}: state {_state(cur)} of {_state(d.max_state)}"
    if cur is not None and d.max_state and cur >= d.max_state:
        evidence += ", cooling at its maximum"
    return result(
        PASS,
        evidence,
        subject=d.name,
        facts=[fact("read_problem", p.message) for p in d.errors],
        cooling_device=proto,
    )


@telemetry(
    "sensors.cooling_devices",
    SENSORS,
    "Cooling devices (fans, CPU throttling) and their current state",
    support=_support,
)
def cooling_devices(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    devices = read_cooling_devices(ctx.sysfs)
    if not devices:
        raise Unsupported(absent_reason(ctx, "cooling devices", CLASS_THERMAL))
    return [reported(d) for d in devices]
