"""What keeps the idle daemon's resident memory small, beyond importing little.

    cap_malloc_arenas()     # once, before gRPC starts its threads
    trim_heap()             # after each telemetry cycle: give freed pages back

Both talk to glibc through ctypes and do nothing elsewhere (musl, macOS). Measured with
`make bench-agent` on this VM: capping the arenas and trimming after the first cycle
took the connected, idle daemon from ~45.5 to ~44.8 MiB.
"""

from __future__ import annotations

import contextlib
import ctypes

# mallopt's M_ARENA_MAX (malloc.h).
_M_ARENA_MAX = -8


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def cap_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas, as MALLOC_ARENA_MAX would.

    glibc gives each thread that allocates its own arena (up to 8 per core); for a
    daemon that mostly waits, the spare arenas are resident memory for nothing. Set from
    here so it holds however the agent is started.
    """
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.mallopt(_M_ARENA_MAX, arenas)


def trim_heap() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim).

    A telemetry cycle parses a report and its child's output, then frees it all; without
    a trim glibc keeps those pages for the next allocation, an hour away.
    """
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.malloc_trim(0)
