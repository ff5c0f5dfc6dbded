"""USB Type-C ports, their partners and cables (sysfs-class-typec ABI).

    >>> ports = read_typec_ports(SysfsRoot(Path("tests/fixtures/machines/board-iio-typec/sys")))
    >>> p = ports[0]
    >>> (p.name, p.power_role, p.partner.power_delivery.max_offered_w)
    ('port0', 'sink', 65.0)

`class/typec` holds `portN` for each connector and, while something is plugged in,
`portN-partner` (the device or charger at the other end) and `portN-cable`. Role
attributes list the choices with the active one in brackets: `data_role`
"[host] device", `power_role` "source [sink]", `port_type` "[dual] source sink".
A partner that speaks USB Power Delivery links `usb_power_delivery` to its `pdN`
object, whose source capabilities say what a charger offers
(see `class_usb_power_delivery`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from probelink.probes.readers.class_usb_power_delivery import PowerDelivery, read_power_delivery
from probelink.probes.readers.problems import Problems, ReadProblem
from probelink.probes.sysread import SysfsRoot

CLASS_DIR = "class/typec"

_PORT = re.compile(r"^port(\d+)$")


@dataclass(frozen=True)
class TypecPartner:
    name: str  # "port0-partner"
    pd_revision: str | None = None  # usb_power_delivery_revision, "3.0"; "0.0" without PD
    accessory_mode: str | None = None  # accessory_mode: none, analog_audio, debug
    supports_pd: bool | None = None  # supports_usb_power_delivery: yes / no
    product_type: str | None = None  # type: power_brick, host, peripheral, ... (when known)
    power_delivery: PowerDelivery | None = None  # via the usb_power_delivery link
    errors: list[ReadProblem] = field(default_factory=list)


@dataclass(frozen=True)
class TypecCable:
    name: str  # "port0-cable"
    type: str | None = None  # type: active, passive
    plug_type: str | None = None  # plug_type: type-a, type-b, type-c, captive
    pd_revision: str | None = None  # usb_power_delivery_revision
    errors: list[ReadProblem] = field(default_factory=list)


@dataclass(frozen=True)
class TypecPort:
    name: str  # "port0"
    data_role: str | None = None  # active value of data_role: host, device
    power_role: str | None = None  # active value of power_role: source, sink
    port_type: str | None = None  # active value of port_type: dual, source, sink
    power_operation_mode: str | None = None  # default, 1.5A, 3.0A, usb_power_delivery
    pd_revision: str | None = None  # usb_power_delivery_revision of the port
    partner: TypecPartner | None = None  # None: nothing plugged in
    cable: TypecCable | None = None
    errors: list[ReadProblem] = field(default_factory=list)


def _yes_no(text: str | None) -> bool | None:
    if text is None:
        return None
    return {"yes": True, "no": False}.get(text.lower())


def read_partner(sysfs: SysfsRoot, name: str) -> TypecPartner:
    base = f"{CLASS_DIR}/{name}"
    c = Problems()
    pd_link = f"{base}/usb_power_delivery"
    pd = read_power_delivery(sysfs, pd_link) if sysfs.is_dir(pd_link) else None
    return TypecPartner(
        name=name,
        pd_revision=c.read(sysfs.read_text, f"{base}/usb_power_delivery_revision"),
        accessory_mode=c.read(sysfs.read_text, f"{base}/accessory_mode"),
        supports_pd=_yes_no(c.read(sysfs.read_text, f"{base}/supports_usb_power_delivery")),
        product_type=c.read(sysfs.read_selected, f"{base}/type"),
        power_delivery=pd,
        errors=c.items,
    )


def read_cable(sysfs: SysfsRoot, name: str) -> TypecCable:
    base = f"{CLASS_DIR}/{name}"
    c = Problems()
    return TypecCable(
        name=name,
        type=c.read(sysfs.read_text, f"{base}/type"),
        plug_type=c.read(sysfs.read_text, f"{base}/plug_type"),
        pd_revision=c.read(sysfs.read_text, f"{base}/usb_power_delivery_revision"),
        errors=c.items,
    )


def read_typec_port(sysfs: SysfsRoot, name: str) -> TypecPort:
    base = f"{CLASS_DIR}/{name}"
    c = Problems()
    # Partner and cable appear both in the class directory and under the port itself;
    # the class directory is the ABI's documented place.
    partner_name, cable_name = f"{name}-partner", f"{name}-cable"
    return TypecPort(
        name=name,
        data_role=c.read(sysfs.read_selected, f"{base}/data_role"),
        power_role=c.read(sysfs.read_selected, f"{base}/power_role"),
        port_type=c.read(sysfs.read_selected, f"{base}/port_type"),
        power_operation_mode=c.read(sysfs.read_text, f"{base}/power_operation_mode"),
        pd_revision=c.read(sysfs.read_text, f"{base}/usb_power_delivery_revision"),
        partner=(
            read_partner(sysfs, partner_name)
            if sysfs.is_dir(f"{CLASS_DIR}/{partner_name}")
            else None
        ),
        cable=read_cable(sysfs, cable_name) if sysfs.is_dir(f"{CLASS_DIR}/{cable_name}") else None,
        errors=c.items,
    )


def read_typec_ports(sysfs: SysfsRoot) -> list[TypecPort]:
    """Every Type-C port, by number; [] when the machine has no Type-C class."""
    names = [n for n in sysfs.listdir(CLASS_DIR) if _PORT.match(n)]
    return [read_typec_port(sysfs, n) for n in sorted(names, key=lambda n: int(n[4:]))]
