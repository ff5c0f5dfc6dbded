"""ports.typec: each USB-C port, what is plugged in, and what a charger there offers.

    >>> [(r.subject, r.status) for r in typec_ports(ctx)]   # board-iio-typec
    [('port0', PASS), ('port1', PASS)]

One result per port with its roles, PD revision, partner and cable. When the port is
a sink (the machine takes power) or the partner says it is a power brick, the partner
is a charger: what it offers is the best of its PD source capabilities, or, without
PD, the Type-C current it advertises at 5 V (1.5 A = 7.5 W, 3.0 A = 15 W). A charger
offering less than `ports.min_charger_w` (15 W) charges slowly: a WARN with a
self-help fix (use a stronger charger), never a fault of the device.
"""

from __future__ import annotations

from collections.abc import Iterable

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.class_typec import (
    CLASS_DIR,
    TypecCable,
    TypecPartner,
    TypecPort,
    read_typec_ports,
)
from probelink.probes.readers.class_usb_power_delivery import PowerDataObject
from probelink.probes.readers.problems import ReadProblem, first_error
from probelink.probes.registry import PORTS, telemetry
from probelink.probes.results import PASS, WARN, check, errored, fact, measurement, result, worst
from probelink.v1 import ports_pb2, probe_pb2

# The partner's `type` (PD product type) in plain words.
PRODUCT_TYPES = {
    "power_brick": "a charger",
    "host": "a computer",
    "peripheral": "a device",
    "hub": "a hub",
    "psd": "a power-sinking device",
    "ama": "an alternate-mode adapter",
    "amc": "an alternate-mode controller",
}

# Type-C current advertisement without PD, at 5 V (USB Type-C spec, Rp levels).
TYPEC_CURRENT_W = {"1.5A": 7.5, "3.0A": 15.0}


def _pdo_proto(p: PowerDataObject) -> ports_pb2.PdSourceCapability:
    def volts(mv: int | None) -> float | None:
        return None if mv is None else mv / 1000

    return ports_pb2.PdSourceCapability(
        type=p.supply_type,
        voltage_v=volts(p.voltage_mv),
        min_voltage_v=volts(p.min_voltage_mv),
        max_voltage_v=volts(p.max_voltage_mv),
        max_current_a=None if p.max_current_ma is None else p.max_current_ma / 1000,
        max_power_w=p.offered_w,
    )


def _partner_proto(p: TypecPartner) -> ports_pb2.TypecPartner:
    pd = p.power_delivery
    caps = sorted(pd.source_capabilities, key=lambda c: -(c.offered_w or 0)) if pd else []
    return ports_pb2.TypecPartner(
        pd_revision=p.pd_revision or "",
        accessory_mode=p.accessory_mode or "",
        supports_pd=p.supports_pd,
        source_capabilities=[_pdo_proto(c) for c in caps],
        max_offered_w=pd.max_offered_w if pd else None,
        identity_product_type=p.product_type or "",
    )


def _cable_proto(c: TypecCable) -> ports_pb2.TypecCable:
    return ports_pb2.TypecCable(
        type=c.type or "", plug_type=c.plug_type or "", pd_revision=c.pd_revision or ""
    )


def to_proto(port: TypecPort) -> ports_pb2.TypecPort:
    return ports_pb2.TypecPort(
        port=port.name,
        data_role=port.data_role or "",
        power_role=port.power_role or "",
        port_type=port.port_type or "",
        power_operation_mode=port.power_operation_mode or "",
        pd_revision=port.pd_revision or "",
        partner=_partner_proto(port.partner) if port.partner else None,
        cable=_cable_proto(port.cable) if port.cable else None,
    )


def charger_offer_w(port: TypecPort) -> float | None:
    """What the partner offers this port as a charger, W; None when it is no charger
    or does not say."""
    partner = port.partner
    if partner is None:
        return None
    if port.power_role != "sink" and partner.product_type != "power_brick":
        return None
    pd = partner.power_delivery
    if pd is not None and pd.max_offered_w is not None:
        return pd.max_offered_w
    return TYPEC_CURRENT_W.get(port.power_operation_mode or "")


def _problems(port: TypecPort) -> list[ReadProblem]:
    found = list(port.errors)
    if port.partner:
        found += port.partner.errors
        if port.partner.power_delivery:
            found += port.partner.power_delivery.errors
    if port.cable:
        found += port.cable.errors
    return found


def judge(port: TypecPort, min_charger_w: float) -> probe_pb2.ProbeResult:
    data = to_proto(port)
    problems = _problems(port)
    if problems:
        return errored(first_error(problems), port.name, typec_port=data)
    facts = [
        fact(name, value)
        for name, value in (
            ("data_role", port.data_role),
            ("power_role", port.power_role),
            ("port_type", port.port_type),
            ("power_operation_mode", port.power_operation_mode),
            ("pd_revision", port.pd_revision),
        )
        if value
    ]
    measurements = []
    checks = []
    offered = charger_offer_w(port)
    if offered is not None:
        measurements.append(measurement("charger_offered_power", offered, "watt"))
        if offered < min_charger_w:
            # A laptop powering the device through its port is a source, but no charger.
            kind = port.partner.product_type if port.partner else None
            noun = {"host": "computer", "hub": "hub"}.get(kind or "", "charger")
            checks.append(
                check(
                    "typec.slow_charger",
                    WARN,
                    f"the {noun} on {port.name} offers at most {offered:g} W, below "
                    f"{min_charger_w:g} W: charging will be slow; use a charger of "
                    f"{min_charger_w:g} W or more",
                )
            )
    roles = f"{port.data_role or '?'}/{port.power_role or '?'}"
    if port.partner is None:
        evidence = f"{port.name} ({roles}): nothing plugged in"
    else:
        kind = port.partner.product_type
        default = "a charger" if offered is not None else "a partner"
        what = PRODUCT_TYPES.get(kind or "", kind or default)
        revision = port.partner.pd_revision
        pd = (f", PD {revision}" if revision else ", USB PD") if port.partner.supports_pd else ""
        power = f", offers up to {offered:g} W" if offered is not None else ""
        evidence = f"{port.name} ({roles}): {what} attached{pd}{power}"
    return result(
        worst(checks, PASS),
        evidence,
        subject=port.name,
        checks=checks,
        measurements=measurements,
        facts=facts,
        typec_port=data,
    )


def _support(ctx: ProbeContext) -> str | None:
    if not ctx.sysfs.is_dir(CLASS_DIR):
        return "no USB-C port class on this machine (no class/typec in sysfs)"
    return None


@telemetry(
    "ports.typec", PORTS, "USB-C ports, partners, cables and charger power", support=_support
)
def typec_ports(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    ports = read_typec_ports(ctx.sysfs)
    if not ports:
        raise Unsupported("no USB-C ports registered (class/typec is empty)")
    min_w = ctx.limit("ports.min_charger_w", 15)
    return [judge(p, min_w) for p in ports]
