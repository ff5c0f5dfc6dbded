"""ports.usb verdicts: a USB 3 device at USB 2 speed is a finding; one at its own rate is not."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.ports.usb_devices import capable_speed_mbps, usb_devices
from probelink.probes.registry import get
from probelink.probes.results import ERROR, PASS, WARN, check
from probelink.probes.runner import run_one
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import ports_pb2, probe_pb2
from tests.conftest import MACHINES
from tests.treebuilder import Dir, Link, write_tree


def _ctx(machine: str) -> ProbeContext:
    return ProbeContext.for_machine(MACHINES / machine / "sys")


def _by_subject(results: list[probe_pb2.ProbeResult]) -> dict[str, probe_pb2.ProbeResult]:
    return {r.subject: r for r in results}


def test_laptop_usb3_stick_at_480_is_flagged_and_nothing_else() -> None:
    results = _by_subject(list(usb_devices(_ctx("laptop-worn-battery"))))
    assert {s: r.status for s, r in results.items()} == {
        "usb1": PASS,
        "usb2": PASS,  # root hubs: listed, not judged
        "1-1": WARN,  # USB 3.2 at 480 Mb/s
        "1-2": PASS,  # USB 1.1 keyboard at 1.5 Mb/s: its own low speed
        "1-3": PASS,  # USB 2 webcam at 480 Mb/s: its own high speed
    }
    stick = results["1-1"]
    assert list(stick.checks) == [
        check(
            "usb.speed_degraded",
            WARN,
            "USB 3.2 device running at 480 Mb/s (USB 2 speed): try another port or cable",
        )
    ]
    assert stick.usb_device == ports_pb2.UsbDevice(
        bus_id="1-1",
        busnum=1,
        devnum=3,
        vendor_id="0781",
        product_id="5591",
        manufacturer="SanDisk",
        product="Ultra Luxe",
        serial="0401a1b2c3d4e5f60718",
        usb_version=3.2,
        speed_mbps=480,
        capable_speed_mbps=5000,  # "3.2" may well be Gen 1: only 5 Gb/s is certain
        device_class="00",
        removable="removable",
        degraded=True,
        max_child=0,
    )
    # The evidence states the facts; the check carries the advice.
    assert (
        stick.evidence
        == "1-1 SanDisk Ultra Luxe (0781:5591): USB 3.2 device at 480 Mb/s (USB 2 speed); "
        "it should reach at least 5000 Mb/s"
    )
    keyboard = results["1-2"]
    assert list(keyboard.checks) == []
    assert keyboard.usb_device.degraded is False
    assert keyboard.usb_device.capable_speed_mbps == 12
    assert results["1-3"].usb_device.capable_speed_mbps == 480
    assert results["usb2"].evidence == "root hub of bus 2: USB 3.1, 10000 Mb/s"


def test_usb3_behind_a_usb2_hub_says_the_hub_is_the_limit() -> None:
    results = _by_subject(list(usb_devices(_ctx("desktop-no-battery"))))
    assert list(results["1-4.1"].checks) == [
        check(
            "usb.speed_limited_by_hub",
            WARN,
            "USB 3.0 device running at 480 Mb/s (USB 2 speed) because it is connected through "
            "a USB 2.0 hub (1-4): connect it directly or through a USB 3 hub",
        )
    ]
    # The hub itself, the low-speed mouse, the Arduino and the 5 Gb/s drive are fine.
    assert [s for s, r in results.items() if r.status != PASS] == ["1-4.1"]


def _machine(tmp_path: Path, devices: dict[str, tuple[str, str]]) -> ProbeContext:
    tree: dict[str, str | bytes | Link] = {}
    for name, (version, speed) in devices.items():
        parent = "" if name.startswith("usb") else "usb1/"
        real = f"devices/pci0000:00/0000:00:1d.0/{parent}{name}"
        tree[f"bus/usb/devices/{name}"] = Link(f"../../../{real}")
        tree[f"{real}/version"] = version
        tree[f"{real}/speed"] = speed
    return ProbeContext(sysfs=SysfsRoot(write_tree(tmp_path / "sys", tree)))


def _with_ports(tmp_path: Path, peer: bool) -> ProbeContext:
    hc = "devices/pci0000:00/0000:00:14.0"
    tree: dict[str, str | bytes | Link | Dir] = {}
    for name, real, version, speed in (
        ("usb1", f"{hc}/usb1", " 2.00\n", "480\n"),
        ("usb2", f"{hc}/usb2", " 3.10\n", "10000\n"),
        ("1-2", f"{hc}/usb1/1-2", " 3.20\n", "480\n"),
    ):
        tree[f"bus/usb/devices/{name}"] = Link(f"../../../{real}")
        tree[f"{real}/version"] = version
        tree[f"{real}/speed"] = speed
    tree[f"{hc}/usb1/1-0:1.0/usb1-port2/connect_type"] = "hotplug\n"
    if peer:
        tree[f"{hc}/usb1/1-0:1.0/usb1-port2/peer"] = Link("../../../usb2/2-0:1.0/usb2-port2")
    return ProbeContext(sysfs=SysfsRoot(write_tree(tmp_path / "sys", tree)))


def test_a_usb2_only_port_is_named_as_the_limit(tmp_path: Path) -> None:
    stick = _by_subject(list(usb_devices(_with_ports(tmp_path, peer=False))))["1-2"]
    assert list(stick.checks) == [
        check(
            "usb.speed_limited_by_port",
            WARN,
            "USB 3.2 device running at 480 Mb/s (USB 2 speed) because the port it is plugged "
            "into is USB 2 only: plug it into a USB 3 port",
        )
    ]


def test_a_usb3_capable_port_points_at_the_cable(tmp_path: Path) -> None:
    stick = _by_subject(list(usb_devices(_with_ports(tmp_path, peer=True))))["1-2"]
    assert [c.code for c in stick.checks] == ["usb.speed_degraded"]


def test_a_usb3_device_at_full_speed_says_usb1_speed(tmp_path: Path) -> None:
    ctx = _machine(tmp_path, {"usb1": (" 3.10\n", "10000\n"), "1-1": (" 3.00\n", "12\n")})
    device = _by_subject(list(usb_devices(ctx)))["1-1"]
    assert device.checks[0].message == (
        "USB 3.0 device running at 12 Mb/s (USB 1 speed): try another port or cable"
    )
    assert device.evidence == (
        "1-1 (????:????): USB 3.0 device at 12 Mb/s (USB 1 speed); it should reach at least "
        "5000 Mb/s"
    )


def test_a_computer_without_usb3_ports_is_the_limit_not_a_fault(tmp_path: Path) -> None:
    ctx = _machine(tmp_path, {"usb1": (" 2.00\n", "480\n"), "1-1": (" 3.20\n", "480\n")})
    stick = _by_subject(list(usb_devices(ctx)))["1-1"]
    assert stick.status == PASS
    assert stick.usb_device.degraded is True  # still a fact for the record
    assert [c.code for c in stick.checks] == ["usb.speed_limited_by_host"]


def test_usb3_at_superspeed_and_usb2_at_full_speed_are_not_findings(tmp_path: Path) -> None:
    ctx = _machine(
        tmp_path,
        {
            "usb1": (" 3.10\n", "10000\n"),
            "1-1": (" 3.00\n", "5000\n"),
            "1-2": (" 2.00\n", "12\n"),
            "1-3": (" 1.10\n", "12\n"),
        },
    )
    assert {r.subject: (r.status, list(r.checks)) for r in usb_devices(ctx)} == {
        "usb1": (PASS, []),
        "1-1": (PASS, []),
        "1-2": (PASS, []),
        "1-3": (PASS, []),
    }


def test_unreadable_device_is_an_error_and_the_others_are_judged(tmp_path: Path) -> None:
    _machine(
        tmp_path,
        {
            "usb1": (" 3.10\n", "10000\n"),
            "1-1": (" 3.20\n", "480\n"),
            "1-2": (" 3.20\n", "480\n"),
        },
    )

    def failing(path: Path) -> bytes:
        if path.parts[-2:] == ("1-1", "speed"):
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        return path.read_bytes()

    ctx = ProbeContext(sysfs=SysfsRoot(tmp_path / "sys", read=failing))
    results = _by_subject(list(usb_devices(ctx)))
    broken = results["1-1"]
    assert broken.status == ERROR
    assert broken.error == probe_pb2.ProbeError(
        kind=probe_pb2.PROBE_ERROR_KIND_FILE_READ,
        message="reading bus/usb/devices/1-1/speed failed: "
        "EAGAIN (Resource temporarily unavailable)",
        source="bus/usb/devices/1-1/speed",
    )
    assert broken.usb_device.bus_id == "1-1" and not broken.usb_device.HasField("speed_mbps")
    assert results["1-2"].status == WARN  # the neighbour is still judged
    assert results["usb1"].status == PASS


def test_non_numeric_speed_is_a_parse_error_not_a_finding(tmp_path: Path) -> None:
    ctx = _machine(tmp_path, {"usb1": (" 2.00\n", "480\n"), "1-1": (" 3.20\n", "super\n")})
    broken = _by_subject(list(usb_devices(ctx)))["1-1"]
    assert broken.status == ERROR
    assert broken.error.kind == probe_pb2.PROBE_ERROR_KIND_PARSE


def test_missing_speed_is_not_judged(tmp_path: Path) -> None:
    ctx = _machine(tmp_path, {"usb1": (" 3.10\n", "10000\n"), "1-1": (" 3.20\n", "")})
    device = _by_subject(list(usb_devices(ctx)))["1-1"]
    assert (device.status, list(device.checks), device.usb_device.degraded) == (PASS, [], False)
    assert device.evidence == "1-1 (????:????): USB 3.2 at unknown rate"


def test_no_usb_bus_is_a_skip_with_a_reason(tmp_path: Path) -> None:
    ctx = ProbeContext(sysfs=SysfsRoot(write_tree(tmp_path / "sys", {"class/x": "1\n"})))
    [skipped] = run_one(get("ports.usb"), ctx)
    assert skipped.evidence == "no USB bus on this machine (no bus/usb/devices in sysfs)"
    empty = ProbeContext(sysfs=SysfsRoot(write_tree(tmp_path / "e", {"bus/usb/devices": Dir()})))
    with pytest.raises(Unsupported):
        list(usb_devices(empty))


@pytest.mark.parametrize(
    ("version", "capable"),
    [
        (None, None),
        (1.0, 12),
        (1.1, 12),
        (2.0, 480),
        (2.01, 480),
        (2.1, 480),
        (3.0, 5000),
        # bcdUSB 3.1/3.2 does not tell Gen 1 from Gen 2: only 5 Gb/s is certain.
        (3.1, 5000),
        (3.2, 5000),
    ],
)
def test_capable_speed_follows_the_declared_version(
    version: float | None, capable: float | None
) -> None:
    assert capable_speed_mbps(version) == capable
