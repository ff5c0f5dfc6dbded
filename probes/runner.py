"""Runs telemetry probes: each under a timeout, exceptions turned into ERROR results.

    >>> results = run_telemetry(all_probes(TELEMETRY), ProbeContext.for_machine())

This is the boundary where the probes' exceptions become results (see `errors.py`):
Unsupported -> SKIP, SourceError -> ERROR with its kind, any other exception -> ERROR
(INTERNAL) with the reason, a probe past its budget -> ERROR (TIMEOUT).

Probes run one after another in a daemon thread: they parse small files under the GIL,
so running them in parallel threads was measured slower (bench/selfcheck.py), and a
thread that hangs in a driver's read cannot be killed, only abandoned, so it must not
block the exit.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

from google.protobuf.duration_pb2 import Duration

from probelink.probes.context import ProbeContext
from probelink.probes.errors import SourceError, Unsupported
from probelink.probes.registry import ProbeSpec
from probelink.probes.results import ERROR, result, skipped
from probelink.v1 import probe_pb2


def _duration(seconds: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def run_one(spec: ProbeSpec, ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    """Run one probe in the calling thread; never raises."""
    start = time.perf_counter()
    try:
        reason = spec.unsupported_reason(ctx)
        if reason:
            raise Unsupported(reason)
        results = list(spec.fn(ctx))
        if not results:
            results = [skipped("nothing to report")]
    except Unsupported as exc:
        results = [skipped(exc.reason)]
    except SourceError as exc:
        results = [result(ERROR, f"could not read: {exc.message}", error=exc.to_proto())]
    except Exception as exc:  # a probe must never take the agent down
        results = [
            result(
                ERROR,
                f"the probe failed unexpectedly: {type(exc).__name__}: {exc}",
                error=probe_pb2.ProbeError(
                    kind=probe_pb2.PROBE_ERROR_KIND_INTERNAL,
                    message=f"{type(exc).__name__}: {exc}",
                    source=spec.name,
                ),
            )
        ]
    return stamp(spec, results, time.perf_counter() - start)


def stamp(
    spec: ProbeSpec, results: list[probe_pb2.ProbeResult], seconds: float
) -> list[probe_pb2.ProbeResult]:
    """Fill in what a probe's results do not say themselves: name, category, kind, duration."""
    for r in results:
        r.probe = spec.name
        r.category = spec.category
        r.kind = spec.kind
        r.duration.CopyFrom(_duration(seconds))
    return results


def timed_out(spec: ProbeSpec, timeout_s: float) -> list[probe_pb2.ProbeResult]:
    return stamp(
        spec,
        [
            result(
                ERROR,
                f"did not finish within {timeout_s:g} s and was abandoned",
                error=probe_pb2.ProbeError(
                    kind=probe_pb2.PROBE_ERROR_KIND_TIMEOUT,
                    message=f"no result within {timeout_s:g} s",
                    source=spec.name,
                ),
            )
        ],
        timeout_s,
    )


def run_telemetry(
    specs: Sequence[ProbeSpec],
    ctx: ProbeContext,
    on_done: Callable[[ProbeSpec, list[probe_pb2.ProbeResult]], None] = lambda s, r: None,
) -> list[probe_pb2.ProbeResult]:
    """Run probes one after another, each within `ctx.timeout_s`; results in `specs` order.

    One worker thread runs them in turn while this thread keeps each one's deadline. A
    probe past its deadline is reported as TIMEOUT and its worker abandoned (told to stop
    once the hung read returns); a fresh worker carries on with the next probe.
    """
    slots: list[list[probe_pb2.ProbeResult] | None] = [None] * len(specs)
    i = 0
    while i < len(specs):
        finished: queue.Queue[tuple[int, list[probe_pb2.ProbeResult]]] = queue.Queue()
        abandoned = threading.Event()
        threading.Thread(
            target=_work_from,
            args=(i, specs, ctx, finished, abandoned),
            name=f"probes-from:{specs[i].name}",
            daemon=True,
        ).start()
        while i < len(specs):
            try:
                j, out = finished.get(timeout=ctx.timeout_s)
            except queue.Empty:
                abandoned.set()
                slots[i] = timed_out(specs[i], ctx.timeout_s)
                on_done(specs[i], slots[i] or [])
                i += 1
                break
            slots[j] = out
            on_done(specs[j], out)
            i = j + 1
    return [r for s in slots for r in (s or [])]


def _work_from(
    first: int,
    specs: Sequence[ProbeSpec],
    ctx: ProbeContext,
    finished: queue.Queue[tuple[int, list[probe_pb2.ProbeResult]]],
    abandoned: threading.Event,
) -> None:
    for j in range(first, len(specs)):
        out = run_one(specs[j], ctx)
        if abandoned.is_set():
            return  # the caller gave up on this worker; a fresh one has taken over
        finished.put((j, out))
