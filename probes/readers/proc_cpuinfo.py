"""The processor's model name from `/proc/cpuinfo`, and where procfs is for a machine.

    >>> read_cpuinfo(ctx.procfs).model_name
    '11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz'

psutil counts cores and reads frequencies but has no model name, so this small reader
fills that one gap. Where the name comes from differs by architecture:

- x86 (and most others) print `model name` per processor;
- 32-bit ARM and vendor (Android) kernels print a `Hardware` line naming the SoC;
- mainline arm64 prints neither, only `CPU implementer` / `CPU part` numbers, which
  are decoded here for Arm's own cores (what `lscpu` does with a bigger table);
  big.LITTLE machines come out as "4x ARM Cortex-A76 + 4x ARM Cortex-A55".

procfs is `ctx.procfs`: the live `/proc`, or `proc/` beside a captured `sys/`. Files
are read through `SysfsRoot`, the same hardened reader (root-contained
links, EAGAIN retries, typed errors), which works for any kernel pseudo-filesystem.
It reads at most 64 KiB: on machines with many CPUs the tail of `cpuinfo` is cut, which
loses nothing, since every processor block repeats the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probelink.probes.errors import SourceError
from probelink.probes.sysread import SysfsRoot

# Arm Ltd. (implementer 0x41) part numbers, from Arm's technical reference manuals.
ARM_PARTS: dict[int, str] = {
    0xD03: "Cortex-A53",
    0xD04: "Cortex-A35",
    0xD05: "Cortex-A55",
    0xD07: "Cortex-A57",
    0xD08: "Cortex-A72",
    0xD09: "Cortex-A73",
    0xD0A: "Cortex-A75",
    0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1",
    0xD0D: "Cortex-A77",
    0xD40: "Neoverse-V1",
    0xD41: "Cortex-A78",
    0xD44: "Cortex-X1",
    0xD46: "Cortex-A510",
    0xD47: "Cortex-A710",
    0xD48: "Cortex-X2",
    0xD49: "Neoverse-N2",
    0xD4D: "Cortex-A715",
    0xD4E: "Cortex-X3",
    0xD4F: "Neoverse-V2",
    0xD80: "Cortex-A520",
    0xD81: "Cortex-A720",
    0xD82: "Cortex-X4",
}
ARM_IMPLEMENTER = 0x41


@dataclass(frozen=True)
class CpuinfoRecord:
    """What `/proc/cpuinfo` says about the processor's name."""

    model_name: str | None = None
    # Which line the name came from: "model name", "Hardware" or "CPU part".
    model_name_source: str | None = None
    errors: list[str] = field(default_factory=list)


def _arm_core(implementer: str, part: str) -> str | None:
    try:
        impl, number = int(implementer, 16), int(part, 16)
    except ValueError:
        return None
    if impl == ARM_IMPLEMENTER and number in ARM_PARTS:
        return f"ARM {ARM_PARTS[number]}"
    return None


def parse_cpuinfo(text: str) -> CpuinfoRecord:
    """Parse the content of `/proc/cpuinfo` (blocks of `key : value` lines)."""
    model: str | None = None
    hardware: str | None = None
    cores: dict[str, int] = {}  # core name -> how many, in order of first appearance
    implementer = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "model name" and model is None and value:
            model = value
        elif key == "Hardware" and value:
            hardware = value
        elif key == "CPU implementer":
            implementer = value
        elif key == "CPU part":
            core = _arm_core(implementer, value)
            if core:
                cores[core] = cores.get(core, 0) + 1
    if model:
        return CpuinfoRecord(model, "model name")
    if hardware:
        return CpuinfoRecord(hardware, "Hardware")
    if len(cores) == 1:
        return CpuinfoRecord(next(iter(cores)), "CPU part")
    if cores:
        # The little cores usually have the lower CPU numbers; vendors name the big first.
        mix = [f"{count}x {name}" for name, count in reversed(cores.items())]
        return CpuinfoRecord(" + ".join(mix), "CPU part")
    return CpuinfoRecord()


def read_cpuinfo(proc: SysfsRoot) -> CpuinfoRecord:
    """The processor name from `cpuinfo` under the procfs root `proc`."""
    try:
        text = proc.read_text("cpuinfo")
    except SourceError as exc:
        return CpuinfoRecord(errors=[exc.message])
    if text is None:
        return CpuinfoRecord(errors=["cpuinfo is absent"])
    return parse_cpuinfo(text)
