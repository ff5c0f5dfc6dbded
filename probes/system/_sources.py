"""Sources the system probes share: procfs, psutil's optional calls, and the capture time.

Not a probe (no registration); the family's probe files import it.

    >>> proc_root(ctx).read_text("sys/kernel/osrelease")
    >>> optional(source.cpu_freq)          # None where psutil has no such source here
    >>> observed_at(ctx)                   # when psutil's answers were true

Uptime is "when psutil answered" minus `boot_time`. Live, that is now; for a captured
machine it is `PsutilSnapshot.captured_at()` (`psutil/captured_at.json`). Without it
the uptime of a capture is unknown, never made up from today's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.psutil_source import PsutilSnapshot, PsutilSource
from probelink.probes.sysread import SysfsRoot

T = TypeVar("T")


def proc_root(ctx: ProbeContext) -> SysfsRoot:
    """The procfs of the machine `ctx` describes, behind the hardened reader."""
    return ctx.procfs


def psutil_of(ctx: ProbeContext) -> PsutilSource:
    """psutil (live or captured); SKIP with the context's reason when there is none."""
    if ctx.psutil is None:
        raise Unsupported(ctx.psutil_missing_reason or "psutil is not available")
    return ctx.psutil


def optional(call: Callable[[], T]) -> T | None:
    """`call()`, or None where psutil has no such source here.

    A snapshot lacking a call raises AttributeError; psutil itself raises
    NotImplementedError on platforms without the source.
    """
    try:
        return call()
    except (AttributeError, NotImplementedError):
        return None


def observed_at(ctx: ProbeContext) -> float | None:
    """Seconds since the epoch at which psutil's answers held; None when not known."""
    source = ctx.psutil
    if source is None:
        return None
    if not isinstance(source, PsutilSnapshot):
        return time.time()
    return source.captured_at()
