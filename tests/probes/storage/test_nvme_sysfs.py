"""class/nvme reader and storage.nvme_sysfs against the fixture machines and tiny trees."""

from __future__ import annotations

import errno
from pathlib import Path

from probelink.probes import registry
from probelink.probes.context import ProbeContext
from probelink.probes.readers.class_nvme import (
    NvmeController,
    NvmeNamespace,
    read_nvme_controllers,
)
from probelink.probes.readers.problems import ReadProblem
from probelink.probes.runner import run_one
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import probe_pb2, storage_pb2
from probelink.v1.status_pb2 import STATUS_ERROR, STATUS_PASS, STATUS_SKIP, STATUS_WARN
from tests.conftest import MACHINES
from tests.treebuilder import Link, write_tree

SPEC = registry.get("storage.nvme_sysfs")


def machine(name: str) -> ProbeContext:
    return ProbeContext.for_machine(MACHINES / name / "sys")


def test_reader_laptop() -> None:
    assert read_nvme_controllers(SysfsRoot(MACHINES / "laptop-worn-battery" / "sys")) == [
        NvmeController(
            name="nvme0",
            model="SAMSUNG MZVLB512HBJQ-000L7",
            serial="S4ENNX0N812345",
            firmware_rev="5M2QEXF7",
            state="live",
            transport="pcie",
            address="0000:3d:00.0",
            cntlid=4,
            namespaces=(NvmeNamespace("nvme0n1", 1000215216 * 512),),
        )
    ]


def test_reader_desktop_strips_padding_and_keeps_dead_controller() -> None:
    assert read_nvme_controllers(SysfsRoot(MACHINES / "desktop-no-battery" / "sys")) == [
        NvmeController(
            name="nvme0",
            model="Samsung SSD 970 EVO Plus 1TB",
            serial="S4EWNX0R123456N",
            firmware_rev="2B2QEXM7",
            state="live",
            transport="pcie",
            address="0000:01:00.0",
            cntlid=4,
            namespaces=(NvmeNamespace("nvme0n1", 1953525168 * 512),),
        ),
        NvmeController(
            name="nvme1",
            model="KINGSTON SA2000M8500G",
            serial="50026B7683A1B2C3",
            firmware_rev="S5Z42105",
            state="dead",
            transport="pcie",
            address="0000:02:00.0",
            cntlid=1,
        ),
    ]


def test_probe_laptop_whole_result() -> None:
    [r] = run_one(SPEC, machine("laptop-worn-battery"))
    assert (r.status, r.subject, list(r.checks)) == (STATUS_PASS, "nvme0", [])
    assert r.evidence == "nvme0 (SAMSUNG MZVLB512HBJQ-000L7): state live, pcie, firmware 5M2QEXF7"
    assert r.storage_device == storage_pb2.StorageDevice(
        name="nvme0",
        source=storage_pb2.STORAGE_SOURCE_NVME_SYSFS,
        protocol=storage_pb2.STORAGE_PROTOCOL_NVME,
        model="SAMSUNG MZVLB512HBJQ-000L7",
        serial_number="S4ENNX0N812345",
        firmware_version="5M2QEXF7",
        capacity_bytes=512110190592,
    )
    assert [(f.name, f.value) for f in r.facts] == [
        ("state", "live"),
        ("transport", "pcie"),
        ("address", "0000:3d:00.0"),
        ("namespace", "nvme0n1"),
    ]


def test_probe_desktop_dead_controller_warns() -> None:
    live, dead = run_one(SPEC, machine("desktop-no-battery"))
    assert (live.subject, live.status) == ("nvme0", STATUS_PASS)
    assert (dead.subject, dead.status) == ("nvme1", STATUS_WARN)
    assert [(c.code, c.status) for c in dead.checks] == [("storage.nvme_not_live", STATUS_WARN)]
    assert dead.checks[0].message.startswith("controller state is 'dead', not 'live'")
    assert not dead.storage_device.HasField("capacity_bytes")  # no namespace left


def test_no_controllers_is_skip() -> None:
    for name in ("phone-charge-units", "board-iio-typec"):
        [r] = run_one(SPEC, machine(name))
        assert (r.status, r.evidence) == (
            STATUS_SKIP,
            "no NVMe controllers (sysfs class/nvme is empty or absent)",
        )


def test_missing_sysfs_root_is_skip(tmp_path: Path) -> None:
    [r] = run_one(SPEC, ProbeContext(sysfs=SysfsRoot(tmp_path / "nope")))
    assert r.status == STATUS_SKIP


DEV = "devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme"


def tiny(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "sys",
        {
            "class/nvme/nvme0": Link(f"../../{DEV}/nvme0"),
            f"{DEV}/nvme0/model": "Ctl A\n",
            f"{DEV}/nvme0/state": "resetting\n",
            f"{DEV}/nvme0/cntlid": "x1\n",  # nonsense: a parse error kept per controller
            # native multipath: the path namespace is nvme0c0n1 under the controller
            f"{DEV}/nvme0/nvme0c0n1/size": "2048\n",
            "class/nvme/nvme1": Link(f"../../{DEV}/nvme1"),
            f"{DEV}/nvme1/model": "Ctl B\n",
            f"{DEV}/nvme1/state": "live\n",
            "class/nvme/nvme-subsys0": Link("../../devices/virtual/nvme-subsystem/nvme-subsys0"),
        },
    )


def test_errors_kept_per_controller(tmp_path: Path) -> None:
    root = tiny(tmp_path)
    a, b = read_nvme_controllers(SysfsRoot(root))
    assert a == NvmeController(
        name="nvme0",
        model="Ctl A",
        state="resetting",
        namespaces=(NvmeNamespace("nvme0c0n1", 2048 * 512),),
        errors=[
            ReadProblem(
                "class/nvme/nvme0/cntlid",
                "parse",
                "class/nvme/nvme0/cntlid: expected an integer, read 'x1'",
            ),
        ],
    )
    assert b == NvmeController(name="nvme1", model="Ctl B", state="live")


def test_unreadable_state_is_error_for_that_controller_only(tmp_path: Path) -> None:
    root = tiny(tmp_path)

    def read(path: Path) -> bytes:
        if path.name == "state" and path.parent.name == "nvme0":
            raise OSError(errno.EIO, "Input/output error")
        return path.read_bytes()

    a, b = run_one(SPEC, ProbeContext(sysfs=SysfsRoot(root, read=read)))
    assert (a.subject, a.status, a.error.kind) == (
        "nvme0",
        STATUS_ERROR,
        probe_pb2.PROBE_ERROR_KIND_FILE_READ,
    )
    assert "EIO" in a.error.message
    assert (b.subject, b.status) == ("nvme1", STATUS_PASS)
