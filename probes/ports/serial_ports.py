"""ports.serial: the serial ports of the machine, as pyserial lists them.

    >>> [(r.subject, r.serial_port.hwid) for r in serial_ports(ctx)]   # board-iio-typec
    [('ttyAMA0', 'fe201000.serial'), ('ttyUSB0', 'USB VID:PID=0403:6001 LOCATION=1-1')]

On the live machine this is `serial.tools.list_ports.comports()`. pyserial reads the
live `/dev` and `/sys` and cannot be pointed at another root, so on a captured machine
(`--sysfs-root`) the same information is read from the capture's `class/tty` by
`readers.class_tty`, which follows pyserial's steps (tty -> device -> USB interface ->
USB device for idVendor, idProduct, serial, manufacturer). Where pyserial is not
installed, the live `/sys` is read the same way.

Listing ports judges nothing: each port is a PASS for the inventory (the loopback
routine `ports.serial_loopback` tests one). No port at all is a SKIP.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.class_tty import SerialPortInfo, read_serial_ports
from probelink.probes.readers.problems import first_error
from probelink.probes.registry import PORTS, telemetry
from probelink.probes.results import PASS, errored, fact, result
from probelink.v1 import ports_pb2, probe_pb2


def _natural(text: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text) if p]


def _known(text: str | None) -> str:
    """pyserial's "n/a" (nothing known) as the contract's absent empty string."""
    return "" if not text or text == "n/a" else text


def _without_serial(hwid: str) -> str:
    """pyserial's hwid without its `SER=…` part: the serial number travels in
    `serial_number`, which the contract marks personal; a copy inside free text would
    slip past the agent's privacy filter."""
    return re.sub(r" ?SER=\S*", "", hwid)


def from_sysfs(info: SerialPortInfo) -> ports_pb2.SerialPort:
    """The contract's SerialPort from a port read out of sysfs (a captured machine)."""
    return ports_pb2.SerialPort(
        device=f"/dev/{info.name}",
        description=_known(info.description),
        hwid=_without_serial(_known(info.hwid)),
        vendor_id=(info.vendor_id or "").lower(),
        product_id=(info.product_id or "").lower(),
        manufacturer=info.manufacturer or "",
        serial_number=info.serial_number or "",
        location=info.location or "",
    )


def from_pyserial(info: Any) -> ports_pb2.SerialPort:
    """The contract's SerialPort from a pyserial ListPortInfo."""
    return ports_pb2.SerialPort(
        device=info.device,
        description=_known(info.description),
        hwid=_without_serial(_known(info.hwid)),
        vendor_id=f"{info.vid:04x}" if info.vid is not None else "",
        product_id=f"{info.pid:04x}" if info.pid is not None else "",
        manufacturer=info.manufacturer or "",
        serial_number=info.serial_number or "",
        location=info.location or "",
    )


def _judged(port: ports_pb2.SerialPort) -> probe_pb2.ProbeResult:
    subject = port.device.rsplit("/", 1)[-1]
    facts = [fact("description", port.description), fact("hwid", port.hwid)]
    what = port.description or "no description reported"
    return result(
        PASS,
        f"{port.device}: {what}" + (f" ({port.hwid})" if port.hwid else ""),
        subject=subject,
        facts=facts,
        serial_port=port,
    )


def _live_pyserial() -> list[Any] | None:
    try:
        from serial.tools import list_ports
    except ImportError:
        return None
    return list(list_ports.comports())


@telemetry("ports.serial", PORTS, "Serial ports (pyserial)")
def serial_ports(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    results: list[probe_pb2.ProbeResult] = []
    live_ports = _live_pyserial() if ctx.live else None
    if live_ports is not None:
        for info in sorted(live_ports, key=lambda i: _natural(i.device)):
            results.append(_judged(from_pyserial(info)))
    else:
        for port in sorted(read_serial_ports(ctx.sysfs), key=lambda p: _natural(p.name)):
            data = from_sysfs(port)
            if port.errors:
                results.append(errored(first_error(port.errors), port.name, serial_port=data))
            else:
                results.append(_judged(data))
    if not results:
        raise Unsupported("no serial ports")
    return results
