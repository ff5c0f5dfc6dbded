"""The self-check: choose probes, run telemetry then routines, build the Report.

    >>> outcome = run_selfcheck(ProbeContext.for_machine(), SelfCheckPlan())
    >>> outcome.report.overall

The command line (`probelink-agent check`) is a thin layer over this; the daemon and
the fixture runner reuse it. Routines run one after another in child processes under
their watchdog; Ctrl-C cancels the running routine, keeps its partial detail and
stops, so the report of what did run is never lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from probelink.agent.report_builder import build_report
from probelink.probes.context import ProbeContext
from probelink.probes.registry import ROUTINE, TELEMETRY, ProbeSpec, all_probes, get
from probelink.probes.runner import run_telemetry
from probelink.v1 import probe_pb2, report_pb2, routine_pb2


@dataclass(frozen=True)
class SelfCheckPlan:
    """Which probes to run: all telemetry by default; named probes; routines opt-in."""

    probes: tuple[str, ...] = ()
    routines: bool = False

    def select(self) -> tuple[list[ProbeSpec], list[ProbeSpec]]:
        """(telemetry, routines) to run. Raises KeyError naming an unknown probe."""
        if self.probes:
            chosen = [get(name) for name in self.probes]
        else:
            chosen = all_probes(TELEMETRY) + (all_probes(ROUTINE) if self.routines else [])
        return (
            [s for s in chosen if s.kind == TELEMETRY],
            [s for s in chosen if s.kind == ROUTINE],
        )


@dataclass
class SelfCheckOutcome:
    report: report_pb2.Report
    interrupted: bool = False
    probe_seconds: float = 0.0


@dataclass
class Hooks:
    """What a front end watches: telemetry finishing, routine progress and questions."""

    telemetry_done: Callable[[ProbeSpec, list[probe_pb2.ProbeResult]], None] = lambda s, r: None
    routine_started: Callable[[ProbeSpec], None] = lambda s: None
    routine_update: Callable[[routine_pb2.RoutineUpdate], None] = lambda u: None
    routine_done: Callable[[ProbeSpec, probe_pb2.ProbeResult], None] = lambda s, r: None


def run_selfcheck(
    ctx: ProbeContext,
    plan: SelfCheckPlan,
    hooks: Hooks | None = None,
    kind: report_pb2.ReportKind.ValueType = report_pb2.REPORT_KIND_SELF_CHECK,
) -> SelfCheckOutcome:
    hooks = hooks or Hooks()
    telemetry, routines = plan.select()
    started = datetime.now(UTC)
    results = run_telemetry(telemetry, ctx, hooks.telemetry_done)
    interrupted = False
    if routines:
        from probelink.probes.routine_process import run_routine

        for spec in routines:
            hooks.routine_started(spec)
            r = run_routine(spec, ctx, ask=ctx.ask, on_update=hooks.routine_update)
            results.append(r)
            hooks.routine_done(spec, r)
            if r.routine.outcome == routine_pb2.ROUTINE_OUTCOME_CANCELLED:
                interrupted = True
                break
    report = build_report(results, ctx, kind=kind, started=started)
    # The results of one probe run share its duration (one per subject): count each run once.
    seen = {r.probe: r.duration.ToNanoseconds() / 1e9 for r in results if r.kind == TELEMETRY}
    return SelfCheckOutcome(report, interrupted, sum(seen.values()))
