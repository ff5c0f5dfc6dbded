"""USB devices as the kernel lists them under `bus/usb/devices` (sysfs-bus-usb ABI).

    >>> sysfs = SysfsRoot(Path("tests/fixtures/machines/laptop-worn-battery/sys"))
    >>> devices = read_usb_devices(sysfs)
    >>> [(d.bus_id, d.usb_version, d.speed_mbps) for d in devices]
    [('usb1', 2.0, 480.0), ('usb2', 3.1, 10000.0), ('1-1', 3.2, 480.0), ...]

What the kernel prints, and why the parsing below is careful:

- `version` is the bcdUSB of the device descriptor printed "%2x.%02x", so USB 2 reads
  " 2.00" with a leading space, USB 3.2 " 3.20".
- `speed` is the negotiated signalling rate in Mb/s: "1.5" (low speed, fractional),
  "12", "480", "5000", "10000", "20000"; kernels print "unknown" when the rate is not
  known, which is absent, not broken.
- String descriptors (`manufacturer`, `product`, `serial`) are what the device sent:
  they may be missing, space-padded, or not UTF-8 at all (decoded with replacements).
- Entries like "1-2:1.0" are interfaces of device "1-2", not devices.

A read that fails (EIO from a device being unplugged, a garbled number) is kept in that
device's `errors` (see `problems.ReadProblem`); the other devices are read as usual.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from probelink.probes.errors import ParseError
from probelink.probes.readers.problems import Problems, ReadProblem
from probelink.probes.sysread import SysfsRoot

DEVICES_DIR = "bus/usb/devices"


@dataclass(frozen=True)
class UsbDevice:
    """One USB device (a function, a hub, or a host controller's root hub)."""

    bus_id: str  # directory name: "usb1" (root hub), "1-2", "1-4.1"
    vendor_id: str | None = None  # idVendor, four hex digits
    product_id: str | None = None  # idProduct
    manufacturer: str | None = None  # string descriptor, may carry U+FFFD for invalid UTF-8
    product: str | None = None
    serial: str | None = None
    usb_version: float | None = None  # version: bcdUSB the device declares, " 3.20" -> 3.2
    speed_mbps: float | None = None  # speed: negotiated rate, Mb/s (1.5 ... 20000)
    device_class: str | None = None  # bDeviceClass, two hex digits ("09" = hub)
    removable: str | None = None  # removable: "removable", "fixed" or "unknown"
    busnum: int | None = None
    devnum: int | None = None
    max_child: int | None = None  # maxchild: ports of a hub, 0 for a function
    # Whether the hub port this device is plugged into has a SuperSpeed twin
    # (<hub>/<hub-interface>/<hub>-portN/peer): True, the connector can do USB 3; False,
    # it is USB 2 only; None, not known (no port folder, a root hub).
    port_has_usb3_peer: bool | None = None
    errors: list[ReadProblem] = field(default_factory=list)

    @property
    def is_root_hub(self) -> bool:
        return self.bus_id.startswith("usb")

    @property
    def parent_bus_id(self) -> str | None:
        """The hub this device hangs off: "1-4.1" -> "1-4", "1-4" -> "usb1", root hub -> None."""
        if self.is_root_hub:
            return None
        bus, _, ports = self.bus_id.partition("-")
        if "." in ports:
            return f"{bus}-{ports.rsplit('.', 1)[0]}"
        return f"usb{bus}"


def _speed(sysfs: SysfsRoot, rel: str) -> float | None:
    text = sysfs.read_text(rel)
    if text is None or text.lower() == "unknown":
        return None
    try:
        return float(text)
    except ValueError:
        raise ParseError(f"{rel}: expected a rate in Mb/s, read {text[:40]!r}", rel) from None


def port_dir(bus_id: str) -> str | None:
    """The hub port folder a device hangs off: "1-4.1" -> "1-4/1-4:1.0/1-4-port1",
    "1-2" -> "usb1/1-0:1.0/usb1-port2" (the ABI's .../<hub>-portN)."""
    if bus_id.startswith("usb") or "-" not in bus_id:
        return None
    bus, _, ports = bus_id.partition("-")
    parent_ports, _, number = ports.rpartition(".")
    if parent_ports:
        hub = f"{bus}-{parent_ports}"
        return f"{hub}/{hub}:1.0/{hub}-port{number}"
    return f"usb{bus}/{bus}-0:1.0/usb{bus}-port{number}"


def _peer(sysfs: SysfsRoot, bus_id: str) -> bool | None:
    rel = port_dir(bus_id)
    if rel is None or not sysfs.is_dir(f"{DEVICES_DIR}/{rel}"):
        return None
    # The link itself is the fact; its target need not be in a capture.
    return sysfs.link_name(f"{DEVICES_DIR}/{rel}/peer") is not None


def read_usb_device(sysfs: SysfsRoot, bus_id: str) -> UsbDevice:
    """Read one device directory; failures end up in `errors`, never raised."""
    base = f"{DEVICES_DIR}/{bus_id}"
    c = Problems()
    text = sysfs.read_text
    return UsbDevice(
        bus_id=bus_id,
        vendor_id=c.read(text, f"{base}/idVendor"),
        product_id=c.read(text, f"{base}/idProduct"),
        manufacturer=c.read(text, f"{base}/manufacturer"),
        product=c.read(text, f"{base}/product"),
        serial=c.read(text, f"{base}/serial"),
        usb_version=c.read(sysfs.read_float, f"{base}/version"),
        speed_mbps=c.read(lambda rel: _speed(sysfs, rel), f"{base}/speed"),
        device_class=c.read(text, f"{base}/bDeviceClass"),
        removable=c.read(text, f"{base}/removable"),
        busnum=c.read(sysfs.read_int, f"{base}/busnum"),
        devnum=c.read(sysfs.read_int, f"{base}/devnum"),
        max_child=c.read(sysfs.read_int, f"{base}/maxchild"),
        port_has_usb3_peer=_peer(sysfs, bus_id),
        errors=c.items,
    )


def _natural(name: str) -> list[tuple[int, int | str]]:
    # "usb1" < "usb2" < "1-2" < "1-10" < "1-10.1": root hubs first, then by numbers.
    parts = re.split(r"(\d+)", name)
    key: list[tuple[int, int | str]] = [(0 if name.startswith("usb") else 1, "")]
    key += [(1, int(p)) if p.isdigit() else (0, p) for p in parts if p]
    return key


def read_usb_devices(sysfs: SysfsRoot) -> list[UsbDevice]:
    """Every USB device (interfaces skipped), root hubs first; [] when there is no USB bus."""
    names = [n for n in sysfs.listdir(DEVICES_DIR) if ":" not in n]
    return [read_usb_device(sysfs, n) for n in sorted(names, key=_natural)]
