"""The device tree's identity of a machine without DMI: phones and ARM boards.

    >>> read_devicetree(ctx.sysfs)
    DeviceTreeRecord(model='Acme IoT Board B1', compatible=['acme,iot-b1', 'rockchip,rk3566'],
                     serial_number=None)

`firmware/devicetree/base/model` names the board in words; `compatible` lists
"vendor,device" strings, most specific first (the board, then the SoC); `serial-number`
is set by some boot loaders. Properties are NUL-terminated, and `compatible` holds
several strings separated by NULs, so this reads bytes rather than text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probelink.probes.readers.problems import Problems, ReadProblem
from probelink.probes.sysread import SysfsRoot

BASE = "firmware/devicetree/base"


@dataclass(frozen=True)
class DeviceTreeRecord:
    model: str | None
    compatible: list[str] = field(default_factory=list)
    serial_number: str | None = None
    errors: list[ReadProblem] = field(default_factory=list)

    @property
    def vendor(self) -> str | None:
        """The vendor prefix of the most specific `compatible` entry ("acme" of "acme,iot-b1")."""
        if not self.compatible or "," not in self.compatible[0]:
            return None
        return self.compatible[0].split(",", 1)[0]


def _strings(raw: bytes | None) -> list[str]:
    if raw is None:
        return []
    parts = raw.split(b"\x00")
    return [p.decode("utf-8", errors="replace").strip() for p in parts if p.strip()]


def read_devicetree(sysfs: SysfsRoot) -> DeviceTreeRecord | None:
    """The device tree's identity, or None where the machine has no device tree."""
    if not sysfs.is_dir(BASE):
        return None
    problems = Problems()
    model = problems.read(sysfs.read_bytes, f"{BASE}/model")
    compatible = problems.read(sysfs.read_bytes, f"{BASE}/compatible")
    serial = problems.read(sysfs.read_bytes, f"{BASE}/serial-number")
    return DeviceTreeRecord(
        model=next(iter(_strings(model)), None),
        compatible=_strings(compatible),
        serial_number=next(iter(_strings(serial)), None),
        errors=problems.items,
    )
