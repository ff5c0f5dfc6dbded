"""readers/proc_cpuinfo.py and readers/proc_sys_kernel.py against the machines and quirks."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from probelink.probes.context import LIVE_PROCFS, ProbeContext
from probelink.probes.readers.proc_cpuinfo import (
    CpuinfoRecord,
    parse_cpuinfo,
    read_cpuinfo,
)
from probelink.probes.readers.proc_sys_kernel import KernelRecord, read_kernel
from probelink.probes.sysread import SysfsRoot
from tests.conftest import MACHINES
from tests.treebuilder import write_tree


def proc_of(machine: str) -> SysfsRoot:
    return ProbeContext.for_machine(MACHINES / machine / "sys").procfs


def test_procfs_root_live_and_captured() -> None:
    assert ProbeContext.for_machine().procfs.root == LIVE_PROCFS
    assert proc_of("laptop-worn-battery").root == MACHINES / "laptop-worn-battery" / "proc"


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        (
            "laptop-worn-battery",
            CpuinfoRecord("11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz", "model name"),
        ),
        ("desktop-no-battery", CpuinfoRecord("AMD Ryzen 5 3600 6-Core Processor", "model name")),
        # Mainline arm64 prints only part numbers: decoded, big cores named first.
        (
            "phone-charge-units",
            CpuinfoRecord(
                "1x ARM Cortex-X3 + 2x ARM Cortex-A710 + 2x ARM Cortex-A715 + 3x ARM Cortex-A510",
                "CPU part",
            ),
        ),
        ("board-iio-typec", CpuinfoRecord("ARM Cortex-A55", "CPU part")),
    ],
)
def test_cpuinfo_of_each_machine(machine: str, expected: CpuinfoRecord) -> None:
    assert read_cpuinfo(proc_of(machine)) == expected


def test_arm32_hardware_line_wins_over_part_numbers() -> None:
    text = (
        "processor\t: 0\nBogoMIPS\t: 38.40\nFeatures\t: half thumb fastmult vfp edsp neon\n"
        "CPU implementer\t: 0x41\nCPU architecture: 7\nCPU variant\t: 0x0\n"
        "CPU part\t: 0xc07\nCPU revision\t: 5\n\n"
        "Hardware\t: BCM2835\nRevision\t: a01041\nSerial\t\t: 00000000c0ffee00\n"
    )
    assert parse_cpuinfo(text) == CpuinfoRecord("BCM2835", "Hardware")


def test_model_name_wins_over_hardware() -> None:
    text = "processor\t: 0\nmodel name\t: ARMv7 Processor rev 5 (v7l)\n\nHardware\t: BCM2835\n"
    assert parse_cpuinfo(text) == CpuinfoRecord("ARMv7 Processor rev 5 (v7l)", "model name")


def test_unknown_implementer_gives_no_name() -> None:
    # Qualcomm's own Kryo numbers (implementer 0x51) are not in the Arm table: absent, not guessed.
    text = "processor\t: 0\nCPU implementer\t: 0x51\nCPU part\t: 0x802\n\n"
    assert parse_cpuinfo(text) == CpuinfoRecord()


def test_garbage_and_empty_values() -> None:
    text = "no colon here\nmodel name\t:\nCPU implementer\t: zz\nCPU part\t: 0xd05\n"
    assert parse_cpuinfo(text) == CpuinfoRecord()


def test_missing_cpuinfo(tmp_path: Path) -> None:
    assert read_cpuinfo(SysfsRoot(tmp_path)) == CpuinfoRecord(errors=["cpuinfo is absent"])


def test_unreadable_cpuinfo(tmp_path: Path) -> None:
    write_tree(tmp_path, {"cpuinfo": "model name\t: x\n"})

    def read(path: Path) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    assert read_cpuinfo(SysfsRoot(tmp_path, read=read)) == CpuinfoRecord(
        errors=["reading cpuinfo failed: EIO (Input/output error)"]
    )


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("laptop-worn-battery", KernelRecord("Linux", "6.8.0-49-generic", "x86_64", "thinkpad-x1")),
        ("desktop-no-battery", KernelRecord("Linux", "6.1.0-28-amd64", "x86_64", "desk-b450")),
        (
            "phone-charge-units",
            KernelRecord(
                "Linux", "5.15.123-android13-8-g8bb5e44e3c3d-ab11061521", "aarch64", "localhost"
            ),
        ),
        ("board-iio-typec", KernelRecord("Linux", "5.10.160", "aarch64", "rk3568-evb1")),
    ],
)
def test_kernel_of_each_machine(machine: str, expected: KernelRecord) -> None:
    assert read_kernel(proc_of(machine)) == expected


def test_kernel_without_arch_and_with_an_unreadable_hostname(tmp_path: Path) -> None:
    # kernel/arch is missing on older kernels; one unreadable file hides no other.
    write_tree(
        tmp_path,
        {
            "sys/kernel/ostype": "Linux\n",
            "sys/kernel/osrelease": "4.19.0-27-amd64\n",
            "sys/kernel/hostname": "h\n",
        },
    )

    def read(path: Path) -> bytes:
        if path.name == "hostname":
            raise PermissionError(errno.EACCES, "Permission denied")
        return path.read_bytes()

    assert read_kernel(SysfsRoot(tmp_path, read=read)) == KernelRecord(
        ostype="Linux",
        osrelease="4.19.0-27-amd64",
        errors=["reading sys/kernel/hostname failed: EACCES (Permission denied)"],
    )
