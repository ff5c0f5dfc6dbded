"""ports.serial: serial ports from a captured class/tty, read the way pyserial reads them."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from serial.tools import list_ports, list_ports_common

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.ports.serial_ports import serial_ports
from probelink.probes.readers.class_tty import SerialPortInfo, read_serial_ports
from probelink.probes.registry import get
from probelink.probes.results import ERROR, PASS
from probelink.probes.runner import run_one
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import ports_pb2
from tests.conftest import MACHINES

BOARD = MACHINES / "board-iio-typec" / "sys"
DESKTOP = MACHINES / "desktop-no-battery" / "sys"

FTDI = SerialPortInfo(
    name="ttyUSB0",
    subsystem="usb-serial",
    location="1-1",
    vendor_id="0403",
    product_id="6001",
    serial_number="A10K3XQ2",
    manufacturer="FTDI",
    product="FT232R USB UART",
    interface="FT232R USB UART",
    device_name="ttyUSB0",
)
SOC_UART = SerialPortInfo(name="ttyAMA0", subsystem="amba", device_name="fe201000.serial")


def test_board_usb_serial_adapter_and_soc_uart() -> None:
    assert read_serial_ports(SysfsRoot(BOARD)) == [SOC_UART, FTDI]


def test_desktop_cdc_acm_and_pnp_ports_and_the_hidden_platform_slot() -> None:
    # ttyS1 sits on "platform" (a legacy 8250 slot without a UART): hidden, as pyserial does;
    # tty0 and console are not serial ports at all.
    assert read_serial_ports(SysfsRoot(DESKTOP)) == [
        SerialPortInfo(
            name="ttyACM0",
            subsystem="usb",
            location="1-6:1.0",  # two interfaces
            vendor_id="2341",
            product_id="0043",
            serial_number="75833353035351E0B1C1",
            manufacturer="Arduino (www.arduino.cc)",
            device_name="1-6:1.0",
        ),
        SerialPortInfo(name="ttyS0", subsystem="pnp", pnp_id="PNP0501", device_name="00:05"),
    ]


def _pyserial(info: SerialPortInfo) -> list_ports_common.ListPortInfo:
    """pyserial's own ListPortInfo filled with the same USB facts, to compare the texts."""
    p = list_ports_common.ListPortInfo(f"/dev/{info.name}", skip_link_detection=True)
    p.vid = int(info.vendor_id, 16) if info.vendor_id else None
    p.pid = int(info.product_id, 16) if info.product_id else None
    p.serial_number, p.location = info.serial_number, info.location
    p.manufacturer, p.product, p.interface = info.manufacturer, info.product, info.interface
    p.apply_usb_info()
    return p


@pytest.mark.parametrize("port", [FTDI, read_serial_ports(SysfsRoot(DESKTOP))[0]])
def test_description_and_hwid_are_pyserials(port: SerialPortInfo) -> None:
    theirs = _pyserial(port)
    assert (port.description, port.hwid) == (theirs.description, theirs.hwid)


def test_board_results() -> None:
    amba, ftdi = serial_ports(ProbeContext.for_machine(BOARD))
    assert (ftdi.subject, ftdi.status) == ("ttyUSB0", PASS)
    assert ftdi.serial_port == ports_pb2.SerialPort(
        device="/dev/ttyUSB0",
        description="FT232R USB UART - FT232R USB UART",
        # pyserial's hwid names the serial too; it travels only in the marked field.
        hwid="USB VID:PID=0403:6001 LOCATION=1-1",
        vendor_id="0403",
        product_id="6001",
        manufacturer="FTDI",
        serial_number="A10K3XQ2",
        location="1-1",
    )
    assert "A10K3XQ2" not in ftdi.evidence
    assert all("A10K3XQ2" not in f.value for f in ftdi.facts)
    assert amba.serial_port == ports_pb2.SerialPort(
        device="/dev/ttyAMA0", description="ttyAMA0", hwid="fe201000.serial"
    )


def test_a_capture_without_subsystem_links_reads_the_same(tmp_path: Path) -> None:
    # The capture tool drops `subsystem` links; the bus then comes from `modalias`.
    for machine in (BOARD, DESKTOP):
        copy = tmp_path / machine.parent.name
        shutil.copytree(machine, copy, symlinks=True)
        for link in copy.rglob("subsystem"):
            link.unlink()
        assert read_serial_ports(SysfsRoot(copy)) == read_serial_ports(SysfsRoot(machine))


def test_an_unreadable_adapter_is_an_error_and_the_other_port_is_listed(tmp_path: Path) -> None:
    def failing(path: Path) -> bytes:
        if path.parts[-2:] == ("1-1", "idVendor"):
            raise OSError(errno.EIO, "Input/output error")
        return path.read_bytes()

    amba, ftdi = serial_ports(ProbeContext(sysfs=SysfsRoot(BOARD, read=failing)))
    assert amba.status == PASS
    assert ftdi.status == ERROR
    assert ftdi.serial_port.device == "/dev/ttyUSB0" and ftdi.serial_port.product_id == "6001"
    assert "idVendor failed: EIO" in ftdi.error.message


def test_no_serial_ports_is_a_skip() -> None:
    [r] = run_one(
        get("ports.serial"), ProbeContext.for_machine(MACHINES / "laptop-worn-battery" / "sys")
    )
    assert r.evidence == "no serial ports"  # its only ttyS0 is a platform slot without a UART


def test_live_machine_goes_through_pyserial() -> None:
    ctx = ProbeContext(sysfs=SysfsRoot("/sys"))
    assert ctx.live
    theirs = sorted(p.device for p in list_ports.comports())
    if not theirs:
        with pytest.raises(Unsupported):
            list(serial_ports(ctx))
        return
    assert sorted(r.serial_port.device for r in serial_ports(ctx)) == theirs


def test_sysfs_reader_agrees_with_pyserial_on_this_machine() -> None:
    theirs = {os.path.basename(p.device): (p.description, p.hwid) for p in list_ports.comports()}
    ours = {
        p.name: (p.description, p.hwid)
        for p in read_serial_ports(SysfsRoot("/sys"))
        if os.path.exists(f"/dev/{p.name}")  # pyserial starts from /dev, we from class/tty
    }
    assert ours == theirs
