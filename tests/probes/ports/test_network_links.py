"""ports.network: links from psutil snapshots of the captured machines, and bad links."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.ports.network_links import network_links
from probelink.probes.psutil_source import PsutilSnapshot
from probelink.probes.registry import get
from probelink.probes.results import PASS, WARN, check
from probelink.probes.runner import run_one
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import ports_pb2, probe_pb2
from tests.conftest import MACHINES
from tests.treebuilder import Dir, Link, write_tree


def _results(machine: str) -> dict[str, probe_pb2.ProbeResult]:
    ctx = ProbeContext.for_machine(MACHINES / machine / "sys")
    return {r.subject: r for r in network_links(ctx)}


def test_desktop_gigabit_link_is_whole_and_healthy() -> None:
    results = _results("desktop-no-battery")
    assert {s: r.status for s, r in results.items()} == {"eno1": PASS, "lo": PASS}
    assert results["eno1"].network_link == ports_pb2.NetworkLink(
        name="eno1",
        is_up=True,
        speed_mbps=1000,
        duplex="full",
        mtu=1500,
        mac_address="3c:7c:3f:0b:91:a2",
        is_loopback=False,
        errors_in=2,
        errors_out=0,
        drops_in=118,
        drops_out=0,
    )
    assert (
        results["eno1"].evidence == "eno1: up, 1000 Mb/s, full duplex, 2 errors in 11777777 packets"
    )
    assert results["lo"].network_link.is_loopback


def test_wifi_without_a_rate_has_no_speed_rather_than_zero() -> None:
    results = _results("laptop-worn-battery")
    wlan = results["wlan0"]
    assert wlan.status == PASS
    assert not wlan.network_link.HasField("speed_mbps")
    assert wlan.network_link.duplex == "unknown"
    assert wlan.evidence == "wlan0: up, wireless, no rate reported"
    # An unplugged wired port is down, not broken.
    assert results["enp0s31f6"].status == PASS and not results["enp0s31f6"].network_link.is_up


def test_board_half_duplex_wired_link_is_a_finding() -> None:
    eth0 = _results("board-iio-typec")["eth0"]
    assert eth0.status == WARN
    assert list(eth0.checks) == [
        check(
            "network.half_duplex",
            WARN,
            "eth0 negotiated half duplex at 100 Mb/s: check the cable and the switch port, "
            "or set both ends to auto-negotiate",
        )
    ]


def _snapshot(**links: dict[str, Any]) -> PsutilSnapshot:
    stats, addrs, io = {}, {}, {}
    for name, link in links.items():
        stats[name] = {
            "isup": link.get("isup", True),
            "duplex": link.get("duplex", 2),
            "speed": link.get("speed", 1000),
            "mtu": 1500,
            "flags": "up,running",
        }
        addrs[name] = [
            {
                "family": 17,
                "address": "02:00:00:00:00:01",
                "netmask": None,
                "broadcast": None,
                "ptp": None,
            }
        ]
        io[name] = {
            "bytes_sent": 0,
            "bytes_recv": 0,
            "packets_sent": link.get("sent", 0),
            "packets_recv": link.get("recv", 0),
            "errin": link.get("errin", 0),
            "errout": 0,
            "dropin": 0,
            "dropout": 0,
        }
    return PsutilSnapshot({"net_if_stats": stats, "net_if_addrs": addrs, "net_io_counters": io})


def _ctx(tmp_path: Path, snapshot: PsutilSnapshot, **kw: Any) -> ProbeContext:
    return ProbeContext(
        sysfs=SysfsRoot(write_tree(tmp_path / "sys", {"class": Dir()})), psutil=snapshot, **kw
    )


def test_error_ratio_above_the_limit_is_a_finding(tmp_path: Path) -> None:
    snap = _snapshot(
        eth0={"sent": 5000, "recv": 5000, "errin": 300},  # 3 %
        eth1={"sent": 5000, "recv": 5000, "errin": 50},  # 0.5 %
        eth2={"sent": 10, "recv": 10, "errin": 5},  # too few packets to judge
        eth3={"sent": 5000, "recv": 5000, "errin": 300, "isup": False},  # down: not judged
    )
    results = {r.subject: r for r in network_links(_ctx(tmp_path, snap))}
    assert list(results["eth0"].checks) == [
        check(
            "network.errors_high",
            WARN,
            "eth0 has 300 errors in 10000 packets (3.0 %, above 1 %): "
            "check the cable and connectors",
        )
    ]
    assert {s: r.status for s, r in results.items()} == {
        "eth0": WARN,
        "eth1": PASS,
        "eth2": PASS,
        "eth3": PASS,
    }
    tolerant = _ctx(tmp_path / "t", snap, limits={"ports.net_max_error_ratio": 0.05})
    assert all(r.status == PASS for r in network_links(tolerant))


def test_half_duplex_wifi_is_not_judged(tmp_path: Path) -> None:
    snap = _snapshot(wlp2s0={"duplex": 1, "speed": 0})
    [r] = network_links(_ctx(tmp_path, snap))
    assert r.status == PASS


def test_without_psutil_it_skips_with_the_reason(tmp_path: Path) -> None:
    ctx = ProbeContext(
        sysfs=SysfsRoot(tmp_path), psutil=None, psutil_missing_reason="psutil is not installed"
    )
    [r] = run_one(get("ports.network"), ctx)
    assert r.evidence == "psutil is not installed"


def test_a_snapshot_without_network_data_skips(tmp_path: Path) -> None:
    with pytest.raises(Unsupported, match="no network interface statistics"):
        list(network_links(_ctx(tmp_path, PsutilSnapshot({}))))


def test_stats_without_addresses_or_counters_still_report(tmp_path: Path) -> None:
    snap = PsutilSnapshot(
        {
            "net_if_stats": {
                "eno1": {"isup": True, "duplex": 0, "speed": 100, "mtu": 1500, "flags": ""}
            }
        }
    )
    [r] = network_links(_ctx(tmp_path, snap))
    assert r.status == PASS
    assert r.network_link == ports_pb2.NetworkLink(
        name="eno1", is_up=True, speed_mbps=100, duplex="unknown", mtu=1500
    )


def test_virtual_interfaces_are_reported_and_never_judged(tmp_path: Path) -> None:
    # As on a real kernel: class/net/<if> links into devices/; a NIC's folder has a
    # `device` link to its PCI function, software interfaces live under devices/virtual.
    nic = "devices/pci0000:00/0000:00:1f.6"
    tree: dict[str, str | Link | Dir] = {
        "class/net/eno1": Link(f"../../{nic}/net/eno1"),
        f"{nic}/net/eno1/device": Link("../../../0000:00:1f.6"),
        f"{nic}/vendor": "0x8086\n",
    }
    for name in ("docker0", "veth3f2a1b0", "ifb0"):
        tree[f"class/net/{name}"] = Link(f"../../devices/virtual/net/{name}")
        tree[f"devices/virtual/net/{name}/mtu"] = "1500\n"
    lossy = {"duplex": 1, "sent": 5000, "recv": 5000, "errin": 300}  # a finding on a port
    snap = _snapshot(eno1=lossy, docker0=lossy, veth3f2a1b0=lossy, ifb0=lossy, eth9=lossy)
    ctx = ProbeContext(sysfs=SysfsRoot(write_tree(tmp_path / "sys", tree)), psutil=snap)
    results = {r.subject: r for r in network_links(ctx)}
    assert {s: (r.status, [c.code for c in r.checks]) for s, r in results.items()} == {
        "docker0": (PASS, []),
        "eno1": (WARN, ["network.half_duplex", "network.errors_high"]),  # hardware: judged
        # not in class/net: nothing says it is virtual, so it is judged as before
        "eth9": (WARN, ["network.half_duplex", "network.errors_high"]),
        "ifb0": (PASS, []),
        "veth3f2a1b0": (PASS, []),
    }
    docker0 = results["docker0"]
    assert docker0.evidence == "docker0: virtual interface, up"
    assert list(docker0.facts) == [probe_pb2.Fact(name="kind", value="virtual interface")]
    assert docker0.network_link.errors_in == 300  # the counters stay on record
    assert list(results["eno1"].facts) == [probe_pb2.Fact(name="kind", value="wired")]
