"""system.memory: RAM and swap: how much there is and how much is still available.

    >>> [r] = memory(ProbeContext.for_machine(MACHINES / "phone-charge-units" / "sys"))
    >>> r.status == WARN, r.checks[0].code
    (True, 'system.memory_low')

"Available" is the kernel's MemAvailable (psutil's `available`): memory that can be
given to programs without swapping, page cache included. "Free" would call a healthy
machine full, since Linux keeps unused RAM busy as cache. When less than
`system.min_available_pct` (default 5 %) of RAM is available the machine is thrashing
or about to kill programs: a WARN, because it explains slowness and crashes a customer
may blame on the hardware. Swap is reported, not judged (many phones and boards have none).
"""

from __future__ import annotations

from collections.abc import Iterable

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.registry import SYSTEM, telemetry
from probelink.probes.results import PASS, WARN, check, fact, result, worst
from probelink.probes.system._sources import optional, psutil_of
from probelink.v1 import probe_pb2, system_pb2

DEFAULT_MIN_AVAILABLE_PCT = 5.0

_MIB = 1024**2
_GIB = 1024**3


def _gib(n: int) -> str:
    # Below 1 GiB a tenth of a GiB is too coarse (a phone with 300 MiB left reads "0.3").
    return f"{n / _GIB:.1f} GiB" if n >= _GIB else f"{n / _MIB:.0f} MiB"


@telemetry("system.memory", SYSTEM, "Memory: RAM available, swap")
def memory(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    source = psutil_of(ctx)
    vm = optional(source.virtual_memory)
    if vm is None:
        raise Unsupported("psutil has no memory statistics here")
    swap = optional(source.swap_memory)

    total, available = int(vm.total), int(vm.available)
    info = system_pb2.MemoryInfo(
        total_bytes=total,
        available_bytes=available,
        used_pct=float(vm.percent),
    )
    facts: list[probe_pb2.Fact] = []
    if swap is not None:
        info.swap_total_bytes = int(swap.total)
        info.swap_used_bytes = int(swap.used)
    else:
        facts.append(fact("swap", "psutil has no swap statistics here"))

    checks: list[probe_pb2.Check] = []
    available_pct = available / total * 100.0 if total else 0.0
    limit = ctx.limit("system.min_available_pct", DEFAULT_MIN_AVAILABLE_PCT)
    if total and available_pct < limit:
        checks.append(
            check(
                "system.memory_low",
                WARN,
                f"only {_gib(available)} of {_gib(total)} RAM is available "
                f"({available_pct:.1f} %, below {limit:g} %): programs may be killed or "
                "swap heavily; close some before judging speed",
            )
        )

    evidence = f"{_gib(total)} RAM, {_gib(available)} available ({available_pct:.1f} %)"
    if swap is not None:
        evidence += (
            f", swap {_gib(info.swap_used_bytes)} of {_gib(info.swap_total_bytes)} used"
            if info.swap_total_bytes
            else ", no swap"
        )
    yield result(worst(checks, PASS), evidence, checks=checks, facts=facts, memory=info)
