"""Reader of `class/nvme/*`: NVMe controllers as the kernel's nvme driver shows them.

    >>> laptop = SysfsRoot(Path("tests/fixtures/machines/laptop-worn-battery/sys"))
    >>> ctrls = read_nvme_controllers(laptop)
    >>> [(c.name, c.model, c.state, c.transport) for c in ctrls]
    [('nvme0', 'SAMSUNG MZVLB512HBJQ-000L7', 'live', 'pcie')]

Attributes (drivers/nvme/host/sysfs.c, Documentation/ABI): `model`, `serial`,
`firmware_rev` (from Identify Controller, space-padded on older kernels: stripped here),
`state` (new, live, resetting, connecting, deleting, "deleting (no IO)", dead),
`transport` (pcie, tcp, rdma, fc, loop), `address`, `cntlid`. Namespaces are the
`nvmeXnY` block devices below the controller (`nvmeXcZnY` with native multipath), with
`size` in 512-byte sectors whatever the drive's block size.

sysfs has identity and state only: health counters need the SMART log (smartctl).
Missing attributes are None; other read or parse failures are kept in the controller's
own `errors` (see `problems.ReadProblem`), so one broken controller hides no other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from probelink.probes.readers.problems import Problems, ReadProblem
from probelink.probes.sysread import SysfsRoot

CLASS_DIR = "class/nvme"
SECTOR_BYTES = 512  # the block layer's `size` unit, fixed by the kernel ABI

_CONTROLLER = re.compile(r"nvme\d+")
_NAMESPACE = re.compile(r"nvme\d+(?:c\d+)?n\d+")


@dataclass(frozen=True)
class NvmeNamespace:
    name: str  # "nvme0n1"
    size_bytes: int | None  # "size" (512-byte sectors) * 512


@dataclass(frozen=True)
class NvmeController:
    name: str  # "nvme0"
    model: str | None = None  # "model"
    serial: str | None = None  # "serial"
    firmware_rev: str | None = None  # "firmware_rev"
    state: str | None = None  # "state": "live" when usable
    transport: str | None = None  # "transport": "pcie", "tcp", ...
    address: str | None = None  # "address": PCI address for pcie, "traddr=..." for fabrics
    cntlid: int | None = None  # "cntlid": controller ID
    namespaces: tuple[NvmeNamespace, ...] = ()
    errors: list[ReadProblem] = field(default_factory=list)

    @property
    def capacity_bytes(self) -> int | None:
        """The namespaces' sizes summed; None when none reported a size."""
        sizes = [ns.size_bytes for ns in self.namespaces if ns.size_bytes is not None]
        return sum(sizes) if sizes else None


def read_nvme_controllers(sysfs: SysfsRoot) -> list[NvmeController]:
    """Every `class/nvme/nvmeN` controller, sorted by name; [] when there is none."""
    names = [n for n in sysfs.listdir(CLASS_DIR) if _CONTROLLER.fullmatch(n)]
    return [read_nvme_controller(sysfs, n) for n in sorted(names, key=_number)]


def _number(name: str) -> int:
    return int(name[len("nvme") :])


def read_nvme_controller(sysfs: SysfsRoot, name: str) -> NvmeController:
    base = f"{CLASS_DIR}/{name}"
    problems = Problems()

    def text(attr: str) -> str | None:
        return problems.read(sysfs.read_text, f"{base}/{attr}")

    namespaces = []
    for entry in sysfs.listdir(base):
        if _NAMESPACE.fullmatch(entry) and sysfs.is_dir(f"{base}/{entry}"):
            sectors = problems.read(sysfs.read_int, f"{base}/{entry}/size")
            size = sectors * SECTOR_BYTES if sectors is not None else None
            namespaces.append(NvmeNamespace(entry, size))

    return NvmeController(
        name=name,
        model=text("model"),
        serial=text("serial"),
        firmware_rev=text("firmware_rev"),
        state=text("state"),
        transport=text("transport"),
        address=text("address"),
        cntlid=problems.read(sysfs.read_int, f"{base}/cntlid"),
        namespaces=tuple(namespaces),
        errors=problems.items,
    )
