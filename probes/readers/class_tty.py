"""Serial ports as pyserial's `list_ports` sees them, read from `class/tty` of any sysfs root.

    >>> ports = read_serial_ports(SysfsRoot(Path("tests/fixtures/machines/board-iio-typec/sys")))
    >>> [(p.name, p.subsystem, p.vendor_id) for p in ports]
    [('ttyAMA0', 'amba', None), ('ttyUSB0', 'usb-serial', '0403')]

pyserial (`serial.tools.list_ports_linux`) reads the live `/sys` and cannot be pointed
at another root, so for a captured machine this module follows the same steps:

1. candidates are the tty names pyserial looks for (ttyS*, ttyUSB*, ttyXRUSB*, ttyACM*,
   ttyAMA*, rfcomm*, ttyAP*);
2. `class/tty/<name>/device` is the port's device; its `subsystem` link names the bus
   (or, in a capture that dropped that link, its `modalias`); ports on "platform" are
   legacy 8250 slots with no UART behind them, and are hidden;
3. for "usb-serial" the USB interface is the device's parent, for "usb" (cdc-acm) the
   device itself; the USB device is the interface's parent, where idVendor, idProduct,
   serial, manufacturer and product live; `interface` is read from the interface.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from probelink.probes.errors import SourceError
from probelink.probes.readers.problems import Problems, ReadProblem
from probelink.probes.sysread import SysfsRoot

CLASS_DIR = "class/tty"

# The device names pyserial's comports() globs for under /dev, in its order.
SERIAL_PREFIXES = ("ttyS", "ttyUSB", "ttyXRUSB", "ttyACM", "ttyAMA", "rfcomm", "ttyAP")


@dataclass(frozen=True)
class SerialPortInfo:
    name: str  # "ttyUSB0"
    subsystem: str | None = None  # bus of the port's device: usb-serial, usb, pnp, amba, ...
    location: str | None = None  # USB device (or interface, for multi-interface chips)
    vendor_id: str | None = None  # idVendor of the USB device, four hex digits
    product_id: str | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    interface: str | None = None  # the interface's string descriptor
    pnp_id: str | None = None  # pnp: the PNP id (e.g. "PNP0501")
    device_name: str | None = None  # basename of the device directory (amba)
    errors: list[ReadProblem] = field(default_factory=list)

    @property
    def description(self) -> str:
        """pyserial's `description`."""
        if self.subsystem in ("usb", "usb-serial"):
            if self.interface is not None:
                return f"{self.product} - {self.interface}"
            return self.product if self.product is not None else self.name
        if self.subsystem in ("pnp", "amba"):
            return self.name
        return "n/a"

    @property
    def hwid(self) -> str:
        """pyserial's `hwid`."""
        if self.subsystem in ("usb", "usb-serial"):
            vid = int(self.vendor_id, 16) if self.vendor_id else 0
            pid = int(self.product_id, 16) if self.product_id else 0
            ser = f" SER={self.serial_number}" if self.serial_number is not None else ""
            loc = f" LOCATION={self.location}" if self.location is not None else ""
            return f"USB VID:PID={vid:04X}:{pid:04X}{ser}{loc}"
        if self.subsystem == "pnp":
            return self.pnp_id or "n/a"
        if self.subsystem == "amba":
            return self.device_name or "n/a"
        return "n/a"


def _rel(sysfs: SysfsRoot, real: Path) -> str | None:
    root = sysfs.resolve(".")
    if root is None or not real.is_relative_to(root):
        return None
    return str(real.relative_to(root))


_USB_INTERFACE = re.compile(r"^\d+-[\d.]+:\d+\.\d+$")


def _guess_subsystem(sysfs: SysfsRoot, device: str) -> str | None:
    """The bus of a device whose `subsystem` link is missing (a capture that dropped it).

    `modalias` starts with the bus name ("platform:serial8250", "amba:d00041011",
    "usb:v0403p6001..."); PNP devices have an `id`; a usb-serial port has neither,
    but sits right under its USB interface ("1-1:1.0").
    """
    try:
        modalias = sysfs.read_text(f"{device}/modalias")
        if modalias and ":" in modalias:
            return modalias.split(":", 1)[0]
        if sysfs.read_text(f"{device}/id") is not None:
            return "pnp"
    except SourceError:
        return None
    if _USB_INTERFACE.match(os.path.basename(os.path.dirname(device))):
        return "usb-serial"
    return None


def read_serial_port(sysfs: SysfsRoot, name: str) -> SerialPortInfo:
    c = Problems()
    device_link = f"{CLASS_DIR}/{name}/device"
    device_real = sysfs.resolve(device_link)
    device = _rel(sysfs, device_real) if device_real is not None else None
    if device is None:
        return SerialPortInfo(name=name)
    subsystem = sysfs.link_name(f"{device}/subsystem") or _guess_subsystem(sysfs, device)
    if subsystem == "usb-serial":
        interface_dir: str | None = os.path.dirname(device)
    elif subsystem == "usb":
        interface_dir = device
    else:
        interface_dir = None
    if interface_dir is None:
        pnp_id = c.read(sysfs.read_text, f"{device}/id") if subsystem == "pnp" else None
        return SerialPortInfo(
            name=name,
            subsystem=subsystem,
            pnp_id=pnp_id,
            device_name=os.path.basename(device),
            errors=c.items,
        )
    usb_dir = os.path.dirname(interface_dir)
    interfaces = c.read(sysfs.read_int, f"{usb_dir}/bNumInterfaces")
    multi = interfaces is not None and interfaces > 1
    return SerialPortInfo(
        name=name,
        subsystem=subsystem,
        location=os.path.basename(interface_dir if multi else usb_dir),
        vendor_id=c.read(sysfs.read_text, f"{usb_dir}/idVendor"),
        product_id=c.read(sysfs.read_text, f"{usb_dir}/idProduct"),
        serial_number=c.read(sysfs.read_text, f"{usb_dir}/serial"),
        manufacturer=c.read(sysfs.read_text, f"{usb_dir}/manufacturer"),
        product=c.read(sysfs.read_text, f"{usb_dir}/product"),
        interface=c.read(sysfs.read_text, f"{interface_dir}/interface"),
        device_name=os.path.basename(device),
        errors=c.items,
    )


def read_serial_ports(sysfs: SysfsRoot) -> list[SerialPortInfo]:
    """Serial ports pyserial would list, hiding "platform" ports as it does."""
    names = [n for n in sysfs.listdir(CLASS_DIR) if n.startswith(SERIAL_PREFIXES)]
    ports = [read_serial_port(sysfs, n) for n in names]
    return [p for p in ports if p.subsystem != "platform"]
