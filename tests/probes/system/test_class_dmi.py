"""readers/class_dmi.py against the captured machines and tiny trees with real-world quirks."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from probelink.probes.readers.class_dmi import (
    DmiRecord,
    chassis_type_name,
    is_placeholder,
    read_dmi,
)
from probelink.probes.readers.problems import ReadProblem
from probelink.probes.sysread import SysfsRoot
from tests.conftest import MACHINES
from tests.treebuilder import Link, write_tree

DMI = "devices/virtual/dmi/id"


def dmi_tree(tmp_path: Path, attrs: dict[str, str | bytes]) -> SysfsRoot:
    """A sysfs root with class/dmi/id linked to devices/virtual/dmi/id, as the kernel has it."""
    tree: dict[str, str | bytes | Link] = {"class/dmi/id": Link(f"../../{DMI}")}
    tree.update({f"{DMI}/{name}": value for name, value in attrs.items()})
    return SysfsRoot(write_tree(tmp_path / "sys", tree))


def test_laptop_reads_every_field() -> None:
    rec = read_dmi(SysfsRoot(MACHINES / "laptop-worn-battery" / "sys"))
    assert rec == DmiRecord(
        sys_vendor="LENOVO",
        product_name="20XW00GMUS",
        product_version="ThinkPad X1 Carbon Gen 9",
        product_serial="PF3ABCDE",
        board_vendor="LENOVO",
        board_name="20XW00GMUS",
        bios_vendor="LENOVO",
        # Lenovo pads the release inside the parentheses; only the ends are stripped.
        bios_version="N32ET86W (1.62 )",
        bios_date="10/13/2023",
        chassis_vendor="LENOVO",
        chassis_type_code=10,
        chassis_type="Notebook",
    )


def test_desktop_placeholders_are_absent_but_kept() -> None:
    rec = read_dmi(SysfsRoot(MACHINES / "desktop-no-battery" / "sys"))
    assert rec == DmiRecord(
        board_vendor="ASUSTeK COMPUTER INC.",
        board_name="PRIME B450M-A",
        bios_vendor="American Megatrends Inc.",
        bios_version="3211",
        bios_date="10/19/2022",
        chassis_type_code=3,
        chassis_type="Desktop",
        placeholders={
            "sys_vendor": "System manufacturer",
            "product_name": "System Product Name",
            "product_version": "System Version",
            "product_serial": "System Serial Number",
            "chassis_vendor": "Default string",
        },
    )


@pytest.mark.parametrize("machine", ["phone-charge-units", "board-iio-typec"])
def test_machines_without_dmi(machine: str) -> None:
    assert read_dmi(SysfsRoot(MACHINES / machine / "sys")) is None


def test_missing_sysfs_root_has_no_dmi(tmp_path: Path) -> None:
    assert read_dmi(SysfsRoot(tmp_path / "does-not-exist")) is None


@pytest.mark.parametrize(
    "text",
    [
        "To Be Filled By O.E.M.",
        "To be filled by O.E.M.",
        "Default string",
        "default STRING",
        "System Product Name",
        "System manufacturer",
        "0123456789",
        "  Not Specified  ",
        "00000000",
        "xxxxxxxx",
    ],
)
def test_placeholders(text: str) -> None:
    assert is_placeholder(text)


@pytest.mark.parametrize(
    "text", ["LENOVO", "20XW00GMUS", "1", "0", "N32ET86W (1.62 )", "PRIME B450M-A", "Default"]
)
def test_real_values_are_not_placeholders(text: str) -> None:
    assert not is_placeholder(text)


def test_chassis_type_names() -> None:
    assert [chassis_type_name(n) for n in (3, 9, 10, 14, 30, 31, 32, 35, 99)] == [
        "Desktop",
        "Laptop",
        "Notebook",
        "Sub Notebook",
        "Tablet",
        "Convertible",
        "Detachable",
        "Mini PC",
        "type 99",
    ]


def test_padded_invalid_utf8_missing_and_empty(tmp_path: Path) -> None:
    sysfs = dmi_tree(
        tmp_path,
        {
            "sys_vendor": b"Dell Inc.                \n",
            "product_name": b"Latitude \xff5420\n",  # a broken byte in the firmware string
            "bios_version": "1.30.0",  # no trailing newline
            "board_name": "",  # empty file
            "chassis_type": "9\n",
        },
    )
    assert read_dmi(sysfs) == DmiRecord(
        sys_vendor="Dell Inc.",
        product_name="Latitude \ufffd5420",
        bios_version="1.30.0",
        chassis_type_code=9,
        chassis_type="Laptop",
    )


def test_root_only_serial_is_absent_with_its_reason(tmp_path: Path) -> None:
    root = dmi_tree(
        tmp_path,
        {"sys_vendor": "LENOVO\n", "product_name": "20XW00GMUS\n", "product_serial": "PF3ABCDE\n"},
    ).root

    def read(path: Path) -> bytes:
        # As for a normal user: the kernel makes product_serial mode 0400.
        if path.name == "product_serial":
            raise PermissionError(errno.EACCES, "Permission denied")
        return path.read_bytes()

    rec = read_dmi(SysfsRoot(root, read=read))
    assert rec == DmiRecord(
        sys_vendor="LENOVO",
        product_name="20XW00GMUS",
        errors=[
            ReadProblem(
                "class/dmi/id/product_serial",
                "file_read",
                "reading class/dmi/id/product_serial failed: EACCES (Permission denied)",
            )
        ],
    )


def test_bad_chassis_type_is_kept_as_a_parse_problem(tmp_path: Path) -> None:
    sysfs = dmi_tree(tmp_path, {"sys_vendor": "QEMU\n", "chassis_type": "laptop\n"})
    assert read_dmi(sysfs) == DmiRecord(
        sys_vendor="QEMU",
        errors=[
            ReadProblem(
                "class/dmi/id/chassis_type",
                "parse",
                "class/dmi/id/chassis_type: expected an integer, read 'laptop'",
            )
        ],
    )


def test_link_out_of_the_root_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "host-file"
    outside.write_text("Host Vendor\n")
    sysfs = dmi_tree(tmp_path, {"bios_version": "1.0\n"})
    (sysfs.root / DMI / "sys_vendor").symlink_to(outside)
    rec = read_dmi(sysfs)
    assert rec is not None
    assert rec.sys_vendor is None
    assert rec.bios_version == "1.0"
    assert [p.source for p in rec.errors] == ["class/dmi/id/sys_vendor"]
    assert "outside the sysfs root" in rec.errors[0].message
