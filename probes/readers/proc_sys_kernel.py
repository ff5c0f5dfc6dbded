"""The running kernel's identity from `/proc/sys/kernel/` (what `uname` prints).

    >>> machine = Path("tests/fixtures/machines/desktop-no-battery")
    >>> proc = ctx.procfs
    >>> read_kernel(proc).osrelease, read_kernel(proc).arch
    ('6.1.0-28-amd64', 'x86_64')

These sysctl files hold the same `utsname` fields as `uname(2)`: `ostype` (sysname),
`osrelease`, `arch` (machine) and `hostname` (nodename). Reading the files rather than
calling `platform.uname()` means a captured machine (its `proc/` beside `sys/`, see
`ProbeContext.procfs`) reports its own kernel, not the one the agent runs on.
`kernel/arch` appeared in Linux 5.x; where it is missing it is absent here, and the
caller may fall back to `platform.machine()` on a live machine.

The hostname is personal data (the contract drops it before a report leaves the device).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probelink.probes.errors import SourceError
from probelink.probes.sysread import SysfsRoot


@dataclass(frozen=True)
class KernelRecord:
    ostype: str | None = None  # sys/kernel/ostype, e.g. "Linux"
    osrelease: str | None = None  # sys/kernel/osrelease, e.g. "6.8.0-49-generic"
    arch: str | None = None  # sys/kernel/arch, e.g. "x86_64", "aarch64"
    hostname: str | None = None  # sys/kernel/hostname
    errors: list[str] = field(default_factory=list)


def read_kernel(proc: SysfsRoot) -> KernelRecord:
    """The kernel identity under the procfs root `proc`; unreadable fields are absent."""
    values: dict[str, str | None] = {}
    errors: list[str] = []
    for name in ("ostype", "osrelease", "arch", "hostname"):
        try:
            values[name] = proc.read_text(f"sys/kernel/{name}")
        except SourceError as exc:
            values[name] = None
            errors.append(exc.message)
    return KernelRecord(
        ostype=values["ostype"],
        osrelease=values["osrelease"],
        arch=values["arch"],
        hostname=values["hostname"],
        errors=errors,
    )
