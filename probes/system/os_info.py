"""system.os: the operating system: distribution, kernel, architecture, uptime.

    >>> [r] = os_info(ProbeContext.for_machine(MACHINES / "laptop-worn-battery" / "sys"))
    >>> r.os.distribution, r.os.kernel_release, r.os.uptime_s
    ('Ubuntu 24.04.1 LTS', '6.8.0-49-generic', 35280.0)

Informational, always PASS: it tells the engineer what the device runs (and rules can
match on `os_release.id` / `os_release.version_id` facts), not whether it is healthy.

Sources, chosen so a captured machine reports itself and not the host it is replayed on:
distribution from os-release (`ctx.etc_root`); kernel, architecture and hostname from
`proc/sys/kernel/` (see `readers/proc_sys_kernel.py`); uptime as psutil's observation
time minus its `boot_time` (see `_sources.observed_at`). Only on the live machine do
absent kernel files fall back to `platform`, and only there is the Python version (the
agent's own runtime) meaningful.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable

from probelink.probes.context import ProbeContext
from probelink.probes.errors import ParseError
from probelink.probes.readers.os_release import read_os_release
from probelink.probes.readers.proc_sys_kernel import read_kernel
from probelink.probes.registry import SYSTEM, telemetry
from probelink.probes.results import PASS, fact, result
from probelink.probes.system._sources import observed_at, optional, proc_root
from probelink.v1 import probe_pb2, system_pb2


def _duration(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _uptime(ctx: ProbeContext, facts: list[probe_pb2.Fact]) -> float | None:
    if ctx.psutil is None:
        facts.append(fact("uptime", f"not known: {ctx.psutil_missing_reason}"))
        return None
    boot = optional(ctx.psutil.boot_time)
    try:
        now = observed_at(ctx)
    except ParseError as exc:
        facts.append(fact("uptime", f"not known: {exc.message}"))
        return None
    if boot is None or now is None:
        facts.append(fact("uptime", "not known: the snapshot has no boot or capture time"))
        return None
    if now < boot:
        # A clock set back after boot (no RTC battery on a board): a negative uptime
        # would be nonsense, so say so rather than report it.
        facts.append(
            fact("uptime", f"not known: the clock ({now:.0f}) is before boot ({boot:.0f})")
        )
        return None
    return round(now - boot, 1)


@telemetry("system.os", SYSTEM, "Operating system: distribution, kernel, uptime")
def os_info(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    facts: list[probe_pb2.Fact] = []
    release = read_os_release(ctx.etc_root)
    kernel = read_kernel(proc_root(ctx))

    distribution = ""
    if release is None:
        facts.append(fact("os_release", "no os-release file"))
    else:
        distribution = release.pretty_name or ""
        for key in ("ID", "VERSION_ID"):
            value = release.get(key)
            if value:
                facts.append(fact(f"os_release.{key.lower()}", value))
        facts.extend(fact("os_release", e) for e in release.errors)
    facts.extend(fact("kernel", e) for e in kernel.errors)

    info = system_pb2.OsInfo(
        system=kernel.ostype or "",
        kernel_release=kernel.osrelease or "",
        distribution=distribution,
        machine=kernel.arch or "",
        hostname=kernel.hostname or "",
    )
    if ctx.live:
        uname = platform.uname()
        info.system = info.system or uname.system
        info.kernel_release = info.kernel_release or uname.release
        info.machine = info.machine or uname.machine
        info.hostname = info.hostname or uname.node
        info.python_version = platform.python_version()
    uptime = _uptime(ctx, facts)
    if uptime is not None:
        info.uptime_s = uptime

    parts = [info.distribution or info.system or "unknown system"]
    if info.kernel_release:
        parts.append(f"kernel {info.kernel_release}")
    if info.machine:
        parts.append(info.machine)
    if uptime is not None:
        parts.append(f"up {_duration(uptime)}")
    yield result(PASS, ", ".join(parts), facts=facts, os=info)
