"""ports.network: each network interface's link (psutil net_if_stats / addrs / io).

    >>> [(r.subject, r.status) for r in network_links(ctx)]    # desktop-no-battery
    [('eno1', PASS), ('lo', PASS)]

psutil reports `speed` 0 when the driver gives no rate (Wi-Fi, a cable unplugged):
that is "absent", not 0 Mb/s. `duplex` is psutil's NIC_DUPLEX_* (2 full, 1 half,
0 unknown); the MAC address is the AF_PACKET (17) address.

Findings, for an interface that is up, not loopback:

- a wired link that negotiated half duplex (a broken auto-negotiation, an old hub or a
  bad cable: collisions and slow transfers) -> WARN "network.half_duplex";
- errors above `ports.net_max_error_ratio` (1 %) of packets, once at least
  `ports.net_min_packets` (1000) have passed -> WARN "network.errors_high".

Wi-Fi reports no duplex worth judging, so only wired links are judged for it; an
interface is wireless when sysfs says so (`class/net/<if>/wireless`) or its name says so.

Virtual interfaces (a bridge, docker0, veth, ifb, tun) are no ports: no cable to check,
and their counters count software drops. When sysfs lists the interface
(`class/net/<if>`) but it has no `device` link to hardware, it is reported with the
fact kind "virtual interface" and never judged. Without `class/net/<if>` nothing is
known, and the interface is judged like a wired one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.registry import PORTS, telemetry
from probelink.probes.results import WARN, check, fact, measurement, result, worst
from probelink.v1 import ports_pb2, probe_pb2

AF_PACKET = 17
DUPLEX = {2: "full", 1: "half", 0: "unknown"}
WIRELESS_PREFIXES = ("wl", "ww", "wifi")


def is_wireless(ctx: ProbeContext, name: str) -> bool:
    return ctx.sysfs.is_dir(f"class/net/{name}/wireless") or name.startswith(WIRELESS_PREFIXES)


def is_virtual(ctx: ProbeContext, name: str) -> bool:
    """Listed in sysfs but backed by no device: software only (bridge, veth, ifb...)."""
    return (
        ctx.sysfs.is_dir(f"class/net/{name}")
        and ctx.sysfs.resolve(f"class/net/{name}/device") is None
    )


def _mac(addrs: list[Any]) -> str:
    for a in addrs:
        if int(a.family) == AF_PACKET and a.address:
            return str(a.address)
    return ""


def to_proto(name: str, stats: Any, addrs: list[Any], io: Any | None) -> ports_pb2.NetworkLink:
    speed = int(getattr(stats, "speed", 0) or 0)
    return ports_pb2.NetworkLink(
        name=name,
        is_up=bool(stats.isup),
        speed_mbps=float(speed) if speed > 0 else None,
        duplex=DUPLEX.get(int(stats.duplex), "unknown"),
        mtu=int(stats.mtu or 0),
        mac_address=_mac(addrs),
        is_loopback=name == "lo" or "loopback" in str(getattr(stats, "flags", "")),
        errors_in=int(io.errin) if io else 0,
        errors_out=int(io.errout) if io else 0,
        drops_in=int(io.dropin) if io else 0,
        drops_out=int(io.dropout) if io else 0,
    )


def judge(
    link: ports_pb2.NetworkLink,
    io: Any | None,
    wireless: bool,
    limits: dict[str, float],
    virtual: bool = False,
) -> probe_pb2.ProbeResult:
    checks: list[probe_pb2.Check] = []
    measurements = []
    if link.HasField("speed_mbps"):
        measurements.append(measurement("link_speed", link.speed_mbps, "mbps"))
    packets = int(io.packets_recv + io.packets_sent) if io else 0
    errors = link.errors_in + link.errors_out
    if link.is_up and not link.is_loopback and not virtual:
        if link.duplex == "half" and not wireless:
            speed = f" at {link.speed_mbps:g} Mb/s" if link.HasField("speed_mbps") else ""
            checks.append(
                check(
                    "network.half_duplex",
                    WARN,
                    f"{link.name} negotiated half duplex{speed}: check the cable and the switch "
                    "port, or set both ends to auto-negotiate",
                )
            )
        max_ratio = limits["max_error_ratio"]
        if packets >= limits["min_packets"] and errors / packets > max_ratio:
            checks.append(
                check(
                    "network.errors_high",
                    WARN,
                    f"{link.name} has {errors} errors in {packets} packets "
                    f"({100 * errors / packets:.1f} %, above {100 * max_ratio:g} %): "
                    "check the cable and connectors",
                )
            )
    if packets:
        measurements.append(measurement("error_ratio", errors / packets, "ratio"))
    state = "up" if link.is_up else "down"
    rate = f"{link.speed_mbps:g} Mb/s" if link.HasField("speed_mbps") else "no rate reported"
    if link.is_loopback:
        evidence = f"{link.name}: loopback, {state}"
    elif virtual:
        evidence = f"{link.name}: virtual interface, {state}"
    elif wireless:
        evidence = f"{link.name}: {state}, wireless, {rate}"
    else:
        evidence = f"{link.name}: {state}, {rate}, {link.duplex} duplex"
    if errors and not link.is_loopback and not virtual:
        evidence += f", {errors} errors in {packets} packets"
    if link.is_loopback:
        kind = "loopback"
    elif virtual:
        kind = "virtual interface"
    else:
        kind = "wireless" if wireless else "wired"
    facts = [fact("kind", kind)]
    return result(
        worst(checks),
        evidence,
        subject=link.name,
        checks=checks,
        measurements=measurements,
        facts=facts,
        network_link=link,
    )


@telemetry("ports.network", PORTS, "Network links: state, speed, duplex, errors (psutil)")
def network_links(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    ps = ctx.psutil
    if ps is None:
        raise Unsupported(ctx.psutil_missing_reason or "psutil is not available")
    try:
        stats = ps.net_if_stats()
    except AttributeError as exc:
        raise Unsupported(f"psutil has no network interface statistics here ({exc})") from None
    try:
        addrs = ps.net_if_addrs()
    except AttributeError:
        addrs = {}
    try:
        counters = ps.net_io_counters(pernic=True)
    except AttributeError:
        counters = {}
    if not stats:
        raise Unsupported("no network interfaces")
    limits = {
        "max_error_ratio": ctx.limit("ports.net_max_error_ratio", 0.01),
        "min_packets": ctx.limit("ports.net_min_packets", 1000),
    }
    results = []
    for name in sorted(stats):
        io = counters.get(name)
        link = to_proto(name, stats[name], addrs.get(name, []), io)
        wireless, virtual = is_wireless(ctx, name), is_virtual(ctx, name)
        results.append(judge(link, io, wireless, limits, virtual))
    return results
