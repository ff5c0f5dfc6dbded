"""Routines: active, opt-in tests with progress, questions for a person, and a budget.

A routine is a function registered with `@routine`; it drives its state through the
`RoutineRun` it is handed, as ChromeOS's health daemon does:

    INITIALIZED -> RUNNING (percent 0-100) <-> WAITING (inquiry) -> FINISHED

    @routine("battery.charge_detection", BATTERY, "Charging starts when the charger is plugged in",
             time_budget_s=60)
    def charge_detection(ctx: ProbeContext, run: RoutineRun) -> Finished:
        run.progress(10, "reading battery status")
        if not run.ask("plug_in_charger", "Plug in the charger, then press Enter."):
            raise Unsupported("nobody confirmed the charger was plugged in")
        ...
        return Finished(passed=charging, reason="...", detail=ChargeDetectionDetail(...))

Returning `Finished` is the only way to say something about the hardware. Raising
`Unsupported` (not here), a `SourceError` or any exception (could not run), or being
cancelled or killed, all end as outcomes that are never a hardware failure.

`execute()` runs a routine body against any `RoutineRun`; `probelink.probes.routine_process`
runs it in a child process under the watchdog, which is how the agent runs routines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from probelink.probes.errors import SourceError, Unsupported
from probelink.probes.registry import ROUTINE, ProbeSpec, SupportFn, register
from probelink.v1 import probe_pb2, routine_pb2, status_pb2

if TYPE_CHECKING:
    from probelink.probes.context import ProbeContext

RoutineDetail = (
    routine_pb2.BatteryDischargeDetail
    | routine_pb2.ChargeDetectionDetail
    | routine_pb2.StorageReadSpeedDetail
    | routine_pb2.SerialLoopbackDetail
)

# RoutineResult's oneof field for each detail message.
DETAIL_FIELD = {
    routine_pb2.BatteryDischargeDetail: "battery_discharge",
    routine_pb2.ChargeDetectionDetail: "charge_detection",
    routine_pb2.StorageReadSpeedDetail: "storage_read_speed",
    routine_pb2.SerialLoopbackDetail: "serial_loopback",
}

F = TypeVar("F", bound=Callable[..., "Finished"])


@dataclass(frozen=True)
class Finished:
    """A routine ran to the end: `passed` is its verdict on the hardware."""

    passed: bool
    reason: str
    detail: RoutineDetail | None = None


class RoutineCancelled(Exception):
    """Raised inside a routine by `RoutineRun.sleep`/`ask` once it has been cancelled."""


class RoutineRun(Protocol):
    """What a routine body uses to report progress and reach the person."""

    def progress(self, percent: int, message: str = "") -> None:
        """RUNNING at `percent` (0-100)."""

    def ask(self, code: str, question: str) -> bool:
        """WAITING on a person; True when they confirm, False when they decline or nobody can."""

    def sleep(self, seconds: float) -> None:
        """Wait, but raise RoutineCancelled at once if the routine is cancelled."""

    def keep(self, detail: RoutineDetail) -> None:
        """Remember partial detail, reported if the routine is cancelled or killed."""


def routine(
    name: str,
    category: status_pb2.Category.ValueType,
    summary: str,
    *,
    time_budget_s: float,
    memory_budget_mib: float = 64.0,
    support: SupportFn | None = None,
) -> Callable[[F], F]:
    """Register a routine with the time and memory budget its watchdog enforces."""

    def wrap(fn: F) -> F:
        register(
            ProbeSpec(
                name,
                category,
                ROUTINE,
                summary,
                fn,
                support,
                time_budget_s=time_budget_s,
                memory_budget_mib=memory_budget_mib,
            )
        )
        return fn

    return wrap


def set_detail(result: routine_pb2.RoutineResult, detail: RoutineDetail | None) -> None:
    if detail is not None:
        getattr(result, DETAIL_FIELD[type(detail)]).CopyFrom(detail)


class Tracker:
    """Keeps the last state, percent and partial detail of a running routine."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state: routine_pb2.RoutineState.ValueType = routine_pb2.ROUTINE_STATE_INITIALIZED
        self.percent = 0
        self.partial: RoutineDetail | None = None
        # The typed error of a routine that could not use a source (RUNTIME_ERROR), so its
        # kind (FILE_READ, UNAVAILABLE, ...) survives the trip out of a child process.
        self.error: probe_pb2.ProbeError | None = None

    def update(
        self,
        state: routine_pb2.RoutineState.ValueType,
        percent: int | None = None,
        message: str = "",
        inquiry: routine_pb2.RoutineInquiry | None = None,
    ) -> routine_pb2.RoutineUpdate:
        self.state = state
        if percent is not None:
            self.percent = max(0, min(100, int(percent)))
        return routine_pb2.RoutineUpdate(
            routine=self.name, state=state, percent=self.percent, message=message, inquiry=inquiry
        )

    def ended(
        self,
        outcome: routine_pb2.RoutineOutcome.ValueType,
        reason: str,
        detail: RoutineDetail | None = None,
    ) -> routine_pb2.RoutineResult:
        result = routine_pb2.RoutineResult(
            routine=self.name,
            outcome=outcome,
            reason=reason,
            percent=self.percent,
            last_state=self.state,
        )
        set_detail(result, detail if detail is not None else self.partial)
        return result


def execute(
    spec: ProbeSpec, ctx: ProbeContext, run: RoutineRun, tracker: Tracker
) -> routine_pb2.RoutineResult:
    """Run a routine body and map how it ended to an outcome."""
    try:
        reason = spec.unsupported_reason(ctx)
        if reason:
            raise Unsupported(reason)
        run.progress(0, "starting")
        finished = spec.fn(ctx, run)
    except RoutineCancelled:
        return tracker.ended(routine_pb2.ROUTINE_OUTCOME_CANCELLED, "cancelled before it finished")
    except Unsupported as exc:
        return tracker.ended(routine_pb2.ROUTINE_OUTCOME_UNSUPPORTED, exc.reason)
    except SourceError as exc:
        tracker.error = exc.to_proto()
        return tracker.ended(routine_pb2.ROUTINE_OUTCOME_RUNTIME_ERROR, exc.message)
    except MemoryError:
        return tracker.ended(routine_pb2.ROUTINE_OUTCOME_KILLED, "ran out of its memory budget")
    except Exception as exc:  # a routine must never take its host down
        return tracker.ended(
            routine_pb2.ROUTINE_OUTCOME_RUNTIME_ERROR, f"{type(exc).__name__}: {exc}"
        )
    tracker.state = routine_pb2.ROUTINE_STATE_FINISHED
    tracker.percent = 100
    outcome = (
        routine_pb2.ROUTINE_OUTCOME_PASSED
        if finished.passed
        else routine_pb2.ROUTINE_OUTCOME_FAILED
    )
    return tracker.ended(outcome, finished.reason, finished.detail)


class InlineRun:
    """A RoutineRun in the calling process: for tests of a routine body, and the child's core."""

    def __init__(
        self,
        tracker: Tracker,
        ask: Callable[[str, str], bool],
        on_update: Callable[[routine_pb2.RoutineUpdate], None] = lambda u: None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.tracker = tracker
        self._ask = ask
        self._on_update = on_update
        self.cancel = cancel or threading.Event()

    def progress(self, percent: int, message: str = "") -> None:
        self._check_cancel()
        self._on_update(self.tracker.update(routine_pb2.ROUTINE_STATE_RUNNING, percent, message))

    def ask(self, code: str, question: str) -> bool:
        self._check_cancel()
        inquiry = routine_pb2.RoutineInquiry(code=code, question=question)
        self._on_update(
            self.tracker.update(routine_pb2.ROUTINE_STATE_WAITING, None, question, inquiry)
        )
        answer = self._ask(code, question)
        self._check_cancel()
        self._on_update(self.tracker.update(routine_pb2.ROUTINE_STATE_RUNNING, None, "continuing"))
        return answer

    def sleep(self, seconds: float) -> None:
        if self.cancel.wait(max(0.0, seconds)):
            raise RoutineCancelled()

    def keep(self, detail: RoutineDetail) -> None:
        self.tracker.partial = detail

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise RoutineCancelled()


def run_inline(
    spec: ProbeSpec,
    ctx: ProbeContext,
    ask: Callable[[str, str], bool] | None = None,
    on_update: Callable[[routine_pb2.RoutineUpdate], None] = lambda u: None,
) -> routine_pb2.RoutineResult:
    """Run a routine in this process (no watchdog): for tests of routine bodies."""
    tracker = Tracker(spec.name)
    run = InlineRun(tracker, ask or ctx.ask, on_update)
    return execute(spec, ctx, run, tracker)
