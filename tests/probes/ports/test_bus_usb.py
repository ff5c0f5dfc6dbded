"""The bus/usb reader against the captured machines and tiny trees of every quirk."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from probelink.probes.readers.bus_usb import UsbDevice, port_dir, read_usb_devices
from probelink.probes.readers.problems import ReadProblem
from probelink.probes.sysread import SysfsRoot
from tests.conftest import MACHINES
from tests.treebuilder import Dir, Link, write_tree

XHCI = "Linux 6.8.0-45-generic xhci-hcd"


def _root_hub(bus: int, version: float, speed: float, product_id: str, ports: int) -> UsbDevice:
    return UsbDevice(
        bus_id=f"usb{bus}",
        vendor_id="1d6b",
        product_id=product_id,
        manufacturer=XHCI,
        product="xHCI Host Controller",
        serial="0000:00:14.0",
        usb_version=version,
        speed_mbps=speed,
        device_class="09",
        removable="unknown",
        busnum=bus,
        devnum=1,
        max_child=ports,
    )


def test_laptop_devices_are_read_whole_and_interfaces_skipped() -> None:
    devices = read_usb_devices(SysfsRoot(MACHINES / "laptop-worn-battery" / "sys"))
    assert devices == [
        _root_hub(1, 2.0, 480.0, "0002", 12),
        _root_hub(2, 3.1, 10000.0, "0003", 4),
        UsbDevice(
            bus_id="1-1",
            vendor_id="0781",
            product_id="5591",
            manufacturer="SanDisk",
            product="Ultra Luxe",  # padded with spaces in sysfs
            serial="0401a1b2c3d4e5f60718",
            usb_version=3.2,
            speed_mbps=480.0,
            device_class="00",
            removable="removable",
            busnum=1,
            devnum=3,
            max_child=0,
            port_has_usb3_peer=True,  # usb1-port1 has a SuperSpeed twin
        ),
        UsbDevice(
            bus_id="1-2",
            vendor_id="046d",
            product_id="c31c",
            manufacturer="Logitech",
            product="USB Keyboard",
            serial=None,
            usb_version=1.1,
            speed_mbps=1.5,
            device_class="00",
            removable="removable",
            busnum=1,
            devnum=4,
            max_child=0,
            port_has_usb3_peer=True,
        ),
        UsbDevice(
            bus_id="1-3",
            vendor_id="04f2",
            product_id="b6dd",
            manufacturer="Chicony Electronics Co.,Ltd.",
            product="Integrated Camera",
            serial="0001",
            usb_version=2.01,
            speed_mbps=480.0,
            device_class="ef",
            removable="fixed",
            busnum=1,
            devnum=2,
            max_child=0,
            port_has_usb3_peer=False,  # the built-in camera's port is USB 2 only
        ),
    ]


def test_desktop_invalid_utf8_and_padded_strings() -> None:
    devices = {
        d.bus_id: d for d in read_usb_devices(SysfsRoot(MACHINES / "desktop-no-battery" / "sys"))
    }
    assert list(devices) == ["usb1", "usb2", "1-4", "1-4.1", "1-5", "1-6", "2-1"]
    assert devices["1-5"] == UsbDevice(
        bus_id="1-5",
        vendor_id="093a",
        product_id="2510",
        manufacturer="PixArt\ufffd Imaging",  # byte 0xb0 is not UTF-8: replaced, not fatal
        product="USB Optical Mouse",  # "  USB Optical Mouse   " in sysfs
        serial=None,
        usb_version=2.0,
        speed_mbps=1.5,
        device_class="00",
        removable="removable",
        busnum=1,
        devnum=4,
        max_child=0,
        port_has_usb3_peer=True,
    )
    assert devices["1-4.1"].port_has_usb3_peer is False  # behind a USB 2 hub
    assert devices["1-4.1"].parent_bus_id == "1-4"
    assert devices["1-4"].parent_bus_id == "usb1"
    assert devices["usb1"].parent_bus_id is None


def _device(
    speed: str | bytes | None, version: str = " 3.20\n"
) -> dict[str, str | bytes | Link | Dir]:
    tree: dict[str, str | bytes | Link | Dir] = {
        "idVendor": "0781\n",
        "idProduct": "5591\n",
        "version": version,
        "busnum": "1\n",
        "devnum": "3\n",
    }
    if speed is not None:
        tree["speed"] = speed
    return tree


def _tree(tmp_path: Path, devices: dict[str, dict[str, str | bytes | Link | Dir]]) -> SysfsRoot:
    tree: dict[str, str | bytes | Link | Dir] = {}
    for name, attrs in devices.items():
        real = f"devices/pci0000:00/0000:00:14.0/usb1/{name}"
        tree[f"bus/usb/devices/{name}"] = Link(f"../../../{real}")
        for attr, value in attrs.items():
            tree[f"{real}/{attr}"] = value
    return SysfsRoot(write_tree(tmp_path / "sys", tree))


def test_speed_and_version_quirks(tmp_path: Path) -> None:
    sysfs = _tree(
        tmp_path,
        {
            "1-1": _device("1.5", version=" 1.10"),  # no trailing newline, fractional
            "1-2": _device(None),  # no speed file
            "1-3": _device(""),  # empty speed file
            "1-4": _device("unknown\n"),  # what the kernel prints for an unknown rate
            "1-5": _device("20000\n"),
        },
    )
    got = {d.bus_id: (d.usb_version, d.speed_mbps, d.errors) for d in read_usb_devices(sysfs)}
    assert got == {
        "1-1": (1.1, 1.5, []),
        "1-2": (3.2, None, []),
        "1-3": (3.2, None, []),
        "1-4": (3.2, None, []),
        "1-5": (3.2, 20000.0, []),
    }


def test_non_numeric_speed_is_an_error_of_that_device_only(tmp_path: Path) -> None:
    sysfs = _tree(tmp_path, {"1-1": _device("fast\n"), "1-2": _device("480\n")})
    bad, good = read_usb_devices(sysfs)
    assert bad == UsbDevice(
        bus_id="1-1",
        vendor_id="0781",
        product_id="5591",
        usb_version=3.2,
        speed_mbps=None,
        busnum=1,
        devnum=3,
        errors=[
            ReadProblem(
                "bus/usb/devices/1-1/speed",
                "parse",
                "bus/usb/devices/1-1/speed: expected a rate in Mb/s, read 'fast'",
            )
        ],
    )
    assert good.speed_mbps == 480.0 and good.errors == []


def test_read_errors_are_kept_per_device(tmp_path: Path) -> None:
    _tree(tmp_path, {"1-1": _device("480\n"), "1-2": _device("480\n")})

    def failing(path: Path) -> bytes:
        if path.parts[-2:] == ("1-1", "version"):
            raise OSError(errno.EIO, "Input/output error")
        return path.read_bytes()

    bad, good = read_usb_devices(SysfsRoot(tmp_path / "sys", read=failing))
    assert bad.usb_version is None
    assert bad.errors == [
        ReadProblem(
            "bus/usb/devices/1-1/version",
            "file_read",
            "reading bus/usb/devices/1-1/version failed: EIO (Input/output error)",
        )
    ]
    assert good.errors == [] and good.usb_version == 3.2


def test_no_usb_bus_reads_as_no_devices(tmp_path: Path) -> None:
    assert read_usb_devices(SysfsRoot(write_tree(tmp_path / "sys", {"class": Dir()}))) == []
    assert read_usb_devices(SysfsRoot(tmp_path / "does-not-exist")) == []


@pytest.mark.parametrize(
    ("bus_id", "folder"),
    [
        ("usb1", None),
        ("1-2", "usb1/1-0:1.0/usb1-port2"),
        ("1-4.1", "1-4/1-4:1.0/1-4-port1"),
        ("3-1.2.10", "3-1.2/3-1.2:1.0/3-1.2-port10"),
    ],
)
def test_port_folder_of_a_device(bus_id: str, folder: str | None) -> None:
    assert port_dir(bus_id) == folder
