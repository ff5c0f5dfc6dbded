"""Runs telemetry probes: each under a timeout, exceptions turned into ERROR results.

    >>> results = run_telemetry(all_probes(TELEMETRY), ProbeContext.for_machine())

This is the boundary where the probes' exceptions become results (see `errors.py`):
Unsupported -> SKIP, SourceError -> ERROR with its kind, any other exception -> ERROR
(INTERNAL) with the reason, a probe past its budget -> ERROR (TIMEOUT). Probes run in
parallel daemon threads: they mostly wait on files and helpers, and a thread that hangs
in a driver's read cannot be killed, only abandoned, so it must not block the exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from google.protobuf.duration_pb2 import Duration

from probelink.probes.context import ProbeContext
from probelink.probes.errors import SourceError, Unsupported
from probelink.probes.registry import ProbeSpec
from probelink.probes.results import ERROR, SKIP, result, skipped
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
    """Run probes in parallel, each within `ctx.timeout_s`; results in the order of `specs`."""
    slots: list[list[probe_pb2.ProbeResult] | None] = [None] * len(specs)
    done = threading.Condition()

    def work(i: int, spec: ProbeSpec) -> None:
        out = run_one(spec, ctx)
        with done:
            if slots[i] is None:
                slots[i] = out
                on_done(spec, out)
            done.notify_all()

    deadline = time.monotonic() + ctx.timeout_s
    for i, spec in enumerate(specs):
        threading.Thread(
            target=work, args=(i, spec), name=f"probe:{spec.name}", daemon=True
        ).start()
    with done:
        while any(s is None for s in slots):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            done.wait(left)
        for i, spec in enumerate(specs):
            if slots[i] is None:
                slots[i] = timed_out(spec, ctx.timeout_s)
                on_done(spec, slots[i] or [])
    return [r for s in slots for r in (s or [])]


def is_judgement(r: probe_pb2.ProbeResult) -> bool:
    """Whether a result says something about the hardware (not SKIP, not ERROR)."""
    return r.status not in (SKIP, ERROR)
