"""ports.usb: each USB device, the speed it negotiated against the speed it was built for.

    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/laptop-worn-battery/sys"))
    >>> [r.subject for r in usb_devices(ctx)]
    ['usb1', 'usb2', '1-1', '1-2', '1-3']

A device declaring USB 3.x (`version` >= 3.0) that negotiated 480 Mb/s or less runs at
USB 2 speed: a worn cable, a USB 2 cable or port, or a dirty connector. That is a WARN
the customer can often fix, with a message that says where the limit comes from:

- its hub port has a SuperSpeed twin (`<hub>-portN/peer`): the connector could do USB 3,
  so the cable or contact is to blame: "try another port or cable";
- behind an external USB 2 hub: the hub is the limit, say so;
- on a computer port without a SuperSpeed twin: the port is USB 2 only, say so;
- no root hub on the machine speaks USB 3: the computer is the limit, nothing to fix (PASS);
- nothing known about the port: "try another port or cable".

The declared version does not tell SuperSpeed Gen 1 from Gen 2 (many "USB 3.1" and
"USB 3.2" devices are Gen 1), so the rate a USB 3.x device should at least reach, its
`capable_speed_mbps`, is 5000 Mb/s whatever the x.

A USB 1.1 keyboard at 1.5 Mb/s or a USB 2 webcam at 480 Mb/s runs at its own full rate
and is not a finding. Root hubs (`usbN`) are reported for the inventory but not judged:
they are the host controller's virtual hubs, and their `speed` is the bus's rate.
"""

from __future__ import annotations

from collections.abc import Iterable

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.bus_usb import DEVICES_DIR, UsbDevice, read_usb_devices
from probelink.probes.readers.problems import first_error
from probelink.probes.registry import PORTS, telemetry
from probelink.probes.results import PASS, WARN, check, errored, fact, measurement, result, worst
from probelink.v1 import ports_pb2, probe_pb2

USB2_MAX_MBPS = 480.0


def capable_speed_mbps(version: float | None) -> float | None:
    """The rate every device of the declared USB version can at least reach, Mb/s.

    >>> capable_speed_mbps(3.2), capable_speed_mbps(2.0)
    (5000.0, 480.0)
    """
    if version is None:
        return None
    if version >= 3.0:
        # bcdUSB 3.1 or 3.2 does not say which SuperSpeed generation the device has:
        # many "USB 3.2" sticks are Gen 1 (5 Gb/s). Only 5000 Mb/s is certain.
        return 5000.0
    if version >= 2.0:
        return 480.0
    return 12.0  # USB 1.x: full speed (low-speed devices also declare 1.x)


def _capable(d: UsbDevice) -> float | None:
    """The version's floor, or the rate it runs at now where that is higher.

    A Gen 2 device at 10000 Mb/s has shown what it can do.
    """
    capable = capable_speed_mbps(d.usb_version)
    if capable is not None and d.speed_mbps is not None:
        return max(capable, d.speed_mbps)
    return capable


def is_degraded(device: UsbDevice) -> bool:
    """A USB 3 device that negotiated a USB 2 (or slower) rate."""
    return (
        not device.is_root_hub
        and device.usb_version is not None
        and device.usb_version >= 3.0
        and device.speed_mbps is not None
        and device.speed_mbps <= USB2_MAX_MBPS
    )


def _mbps(value: float | None) -> str:
    return "unknown rate" if value is None else f"{value:g} Mb/s"


def _version(value: float | None) -> str:
    """3.2 -> "3.2", 2.0 -> "2.0", 2.01 -> "2.01": as people write USB versions."""
    if value is None:
        return "?"
    text = f"{value:.2f}"
    return text[:-1] if text.endswith("0") else text


def _rate(d: UsbDevice) -> str:
    """The USB generation a slow rate belongs to, for a degraded device."""
    return "USB 2 speed" if d.speed_mbps == USB2_MAX_MBPS else "USB 1 speed"


def to_proto(d: UsbDevice) -> ports_pb2.UsbDevice:
    return ports_pb2.UsbDevice(
        bus_id=d.bus_id,
        busnum=d.busnum or 0,
        devnum=d.devnum or 0,
        vendor_id=d.vendor_id or "",
        product_id=d.product_id or "",
        manufacturer=d.manufacturer or "",
        product=d.product or "",
        serial=d.serial or "",
        usb_version=d.usb_version,
        speed_mbps=d.speed_mbps,
        capable_speed_mbps=_capable(d),
        device_class=d.device_class or "",
        removable=d.removable or "",
        degraded=is_degraded(d),
        max_child=d.max_child or 0,
    )


def _name(d: UsbDevice) -> str:
    label = " ".join(p for p in (d.manufacturer, d.product) if p)
    ids = f"{d.vendor_id or '????'}:{d.product_id or '????'}"
    return f"{d.bus_id} {label} ({ids})" if label else f"{d.bus_id} ({ids})"


def _speed_check(d: UsbDevice, by_id: dict[str, UsbDevice], host_has_usb3: bool) -> probe_pb2.Check:
    """Why a USB 3 device runs slow, as far as the machine can tell, and what to do."""
    slow = f"USB {_version(d.usb_version)} device running at {_mbps(d.speed_mbps)} ({_rate(d)})"
    parent = by_id.get(d.parent_bus_id or "")
    if d.port_has_usb3_peer:
        # The connector has a SuperSpeed twin: the cable or a dirty contact is to blame.
        return check("usb.speed_degraded", WARN, f"{slow}: try another port or cable")
    if (
        parent is not None
        and not parent.is_root_hub
        and parent.usb_version is not None
        and parent.usb_version < 3.0
    ):
        return check(
            "usb.speed_limited_by_hub",
            WARN,
            f"{slow} because it is connected through a USB {_version(parent.usb_version)} "
            f"hub ({parent.bus_id}): connect it directly or through a USB 3 hub",
        )
    if d.port_has_usb3_peer is False and parent is not None and parent.is_root_hub:
        return check(
            "usb.speed_limited_by_port",
            WARN,
            f"{slow} because the port it is plugged into is USB 2 only: plug it into a USB 3 port",
        )
    if not host_has_usb3:
        return check(
            "usb.speed_limited_by_host",
            PASS,
            f"{slow}: this computer has no USB 3 ports, so that is the most it can get here",
        )
    return check("usb.speed_degraded", WARN, f"{slow}: try another port or cable")


def judge(d: UsbDevice, by_id: dict[str, UsbDevice], host_has_usb3: bool) -> probe_pb2.ProbeResult:
    """One device's result; pure, so tests can judge a hand-built record."""
    data = to_proto(d)
    if d.errors:
        return errored(first_error(d.errors), d.bus_id, usb_device=data)
    facts = [fact("role", "root hub" if d.is_root_hub else ("hub" if d.max_child else "device"))]
    if d.port_has_usb3_peer is not None:
        facts.append(fact("port", "USB 3 capable" if d.port_has_usb3_peer else "USB 2 only"))
    measurements = []
    if d.speed_mbps is not None:
        measurements.append(measurement("negotiated_speed", d.speed_mbps, "mbps"))
    capable = _capable(d)
    if capable is not None:
        measurements.append(measurement("capable_speed", capable, "mbps"))
    checks = []
    if is_degraded(d):
        checks.append(_speed_check(d, by_id, host_has_usb3))
    if d.is_root_hub:
        version, speed = _version(d.usb_version), _mbps(d.speed_mbps)
        evidence = f"root hub of bus {d.busnum or d.bus_id[3:]}: USB {version}, {speed}"
    elif checks:
        # The evidence states the facts; the check carries the advice.
        evidence = (
            f"{_name(d)}: USB {_version(d.usb_version)} device at {_mbps(d.speed_mbps)} "
            f"({_rate(d)}); it should reach at least {_mbps(capable)}"
        )
    else:
        evidence = f"{_name(d)}: USB {_version(d.usb_version)} at {_mbps(d.speed_mbps)}"
    return result(
        worst(checks),
        evidence,
        subject=d.bus_id,
        checks=checks,
        measurements=measurements,
        facts=facts,
        usb_device=data,
    )


def _support(ctx: ProbeContext) -> str | None:
    if not ctx.sysfs.is_dir(DEVICES_DIR):
        return "no USB bus on this machine (no bus/usb/devices in sysfs)"
    return None


@telemetry("ports.usb", PORTS, "USB devices: negotiated vs. supported speed", support=_support)
def usb_devices(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    devices = read_usb_devices(ctx.sysfs)
    if not devices:
        raise Unsupported("no USB devices found (bus/usb/devices is empty)")
    by_id = {d.bus_id: d for d in devices}
    # A USB 3 root hub means the machine has USB 3 ports: a USB 3 device stuck at
    # 480 Mb/s on it could do better on another port or cable.
    # A root hub whose version could not be read might be USB 3: keep the usual advice.
    host_has_usb3 = any(
        d.is_root_hub and (d.usb_version is None or d.usb_version >= 3.0) for d in devices
    )
    return [judge(d, by_id, host_has_usb3) for d in devices]
