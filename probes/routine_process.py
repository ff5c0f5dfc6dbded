"""Runs a routine in a child process under its time and memory budget, with a watchdog.

    >>> r = run_routine(get("battery.discharge_rate"), ctx, ask=front.ask, on_update=show)
    >>> r.status, r.routine.outcome, r.routine.peak_rss_bytes

Why a child process: a routine runs for minutes, allocates buffers, may hang in a
driver; a thread can only be abandoned, a process can be killed. The parent is the
watchdog, polling the pipe every ~20 ms:

- progress goes to `on_update`; a question (an update WAITING with an inquiry) goes to
  `ask`, and its answer back to the child. The clock stops while a person is asked;
- it samples the child's resident memory and kills it (SIGKILL) once it has grown past
  its memory budget since the routine started (the interpreter's own size is not the
  routine's doing),
  or once its running time is past its time budget: KILLED, with a reason naming the
  routine and why, the last percent and state, and the partial detail it kept;
- Ctrl-C, or the caller's `cancel` event, asks the child to stop; one that does not stop
  within a grace period is killed. Either way the result is CANCELLED with the partial
  detail, and it is *returned*, not raised: the caller (the CLI) then runs no further
  routine and keeps the partial report of what did run;
- a child that dies on its own without a result is RUNTIME_ERROR with its exit status.

`run_routine` never raises for anything the routine or its process does; its result is a
ProbeResult (PASS/FAIL from a finished routine, SKIP, or ERROR with a typed kind) carrying
the RoutineResult. The pipe carries pickled tuples holding serialized protobuf:

    child -> parent   ("started",)                      the routine is about to run
                      ("update", RoutineUpdate)         progress; WAITING + inquiry = a question
                      ("keep", RoutineResult)           partial detail (only the detail is set)
                      ("result", RoutineResult, ProbeError | None, peak RSS bytes)
    parent -> child   ("answer", bool)                  the answer to the pending question
                      ("cancel",)                       stop now (Ctrl-C or the cancel event)

Children are started with "spawn", so the caller's main module must be importable
without side effects (the usual `if __name__ == "__main__":` guard).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NamedTuple

from probelink.probes import registry
from probelink.probes.context import InquiryHandler, ProbeContext
from probelink.probes.registry import ProbeSpec
from probelink.probes.results import ERROR, FAIL, PASS, SKIP, result
from probelink.probes.routine import (
    RoutineCancelled,
    RoutineDetail,
    Tracker,
    execute,
    set_detail,
)
from probelink.probes.runner import stamp
from probelink.v1 import probe_pb2, routine_pb2

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

# How often the watchdog looks at the pipe, the clock and the child's memory.
POLL_S = 0.02
# How long a cancelled routine has to stop by itself (and keep its own partial detail).
CANCEL_GRACE_S = 2.0
# Starting a Python process and importing the routine is not the routine's time, but
# it must not hang forever either.
STARTUP_BUDGET_S = 30.0
# After its result, how long a child may take to exit before it is killed.
EXIT_WAIT_S = 5.0
# Messages handled per poll, so a child flooding progress cannot starve the watchdog.
MAX_MESSAGES_PER_POLL = 64

MIB = 1024 * 1024
# prctl(2) option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1

RUNNING = routine_pb2.ROUTINE_STATE_RUNNING
WAITING = routine_pb2.ROUTINE_STATE_WAITING

PASSED = routine_pb2.ROUTINE_OUTCOME_PASSED
FAILED = routine_pb2.ROUTINE_OUTCOME_FAILED
UNSUPPORTED = routine_pb2.ROUTINE_OUTCOME_UNSUPPORTED
RUNTIME_ERROR = routine_pb2.ROUTINE_OUTCOME_RUNTIME_ERROR
CANCELLED = routine_pb2.ROUTINE_OUTCOME_CANCELLED
KILLED = routine_pb2.ROUTINE_OUTCOME_KILLED

UpdateHandler = Callable[[routine_pb2.RoutineUpdate], None]

_STATUS = {PASSED: PASS, FAILED: FAIL, UNSUPPORTED: SKIP}

_STATE_WORDS = {
    routine_pb2.ROUTINE_STATE_INITIALIZED: "before it started",
    RUNNING: "while running",
    WAITING: "while waiting for a person",
    routine_pb2.ROUTINE_STATE_FINISHED: "after it finished",
}

# The field of each detail message that names what the routine was about.
_SUBJECT_FIELD = {
    "battery_discharge": "battery",
    "charge_detection": "battery",
    "storage_read_speed": "path",
    "serial_loopback": "device",
}


class Ending(NamedTuple):
    """How a routine ended, as the watchdog saw it."""

    routine: routine_pb2.RoutineResult
    # Set for every outcome that is not a verdict (RUNTIME_ERROR, KILLED, CANCELLED).
    error: probe_pb2.ProbeError | None = None
    # The ProbeResult's evidence, when it is not the routine's reason itself.
    evidence: str = ""


def _ignore_update(update: routine_pb2.RoutineUpdate) -> None:
    return None


def run_routine(
    spec: ProbeSpec,
    ctx: ProbeContext,
    *,
    ask: InquiryHandler | None = None,
    on_update: UpdateHandler = _ignore_update,
    cancel: threading.Event | None = None,
    cancel_grace_s: float = CANCEL_GRACE_S,
) -> probe_pb2.ProbeResult:
    """Run one routine in a child process under its budgets; never raises for the routine.

    `ask` (default `ctx.ask`) is called in this thread while the routine waits for a
    person; it should return False at once when nobody can answer, and return promptly
    once `cancel` is set; one that raises counts as nobody answering. Exceptions from
    `on_update` are the caller's own and propagate (after the child is killed).
    """
    started = time.perf_counter()
    watchdog = _Watchdog(
        spec, ctx, ask or ctx.ask, on_update, cancel or threading.Event(), cancel_grace_s
    )
    ending = watchdog.run()
    return stamp(spec, [probe_result(ending)], time.perf_counter() - started)[0]


def probe_result(ending: Ending) -> probe_pb2.ProbeResult:
    """The ProbeResult of a routine (not yet stamped with name, category and duration).

    PASSED -> PASS and FAILED -> FAIL are the only verdicts on the hardware; UNSUPPORTED
    -> SKIP; RUNTIME_ERROR, KILLED and CANCELLED -> ERROR with the error's kind.
    """
    ended = ending.routine
    status = _STATUS.get(ended.outcome, ERROR)
    error = ending.error
    if status == ERROR and error is None:
        error = probe_pb2.ProbeError(
            kind=probe_pb2.PROBE_ERROR_KIND_INTERNAL, message=ended.reason, source=ended.routine
        )
    return result(
        status,
        ending.evidence or ended.reason,
        subject=_subject(ended),
        error=error if status == ERROR else None,
        routine=ended,
    )


def _subject(ended: routine_pb2.RoutineResult) -> str:
    which = ended.WhichOneof("detail")
    if which is None or which not in _SUBJECT_FIELD:
        return ""
    return str(getattr(getattr(ended, which), _SUBJECT_FIELD[which]))


# --- the parent: the watchdog -------------------------------------------------------------


class _Watchdog:
    """Starts the child, relays its messages, and enforces its budgets until it ends."""

    def __init__(
        self,
        spec: ProbeSpec,
        ctx: ProbeContext,
        ask: InquiryHandler,
        on_update: UpdateHandler,
        cancel: threading.Event,
        cancel_grace_s: float,
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.ask = ask
        self.on_update = on_update
        self.cancel = cancel
        self.cancel_grace_s = cancel_grace_s
        # The parent's copy of state, percent and partial detail: what is reported when
        # the child has to be killed and cannot report them itself.
        self.tracker = Tracker(spec.name)
        self.clock = _RunningClock()
        self.ctrl_c = _CtrlC()
        self.peak_rss_bytes = 0
        # The child's resident size when the routine starts: the interpreter and the
        # probe modules are not the routine's doing, so its budget counts growth past it.
        self.baseline_rss_bytes: int | None = None
        self.spawned_at = 0.0
        self.pid = 0
        self.cancel_sent_at: float | None = None
        self.closed = False

    def run(self) -> Ending:
        with self.ctrl_c:  # from before the start, so an early Ctrl-C is noted, not raised
            return self._run()

    def _run(self) -> Ending:
        # "spawn", never "fork": the agent holds gRPC threads, and a forked copy of a
        # process with gRPC's threads and locks can deadlock or crash. A spawned child
        # starts a fresh interpreter and receives only what it is sent.
        mp = multiprocessing.get_context("spawn")
        conn, child_conn = mp.Pipe(duplex=True)
        proc = mp.Process(
            target=_child_main,
            args=(
                child_conn,
                self.spec.fn.__module__,
                self.spec.name,
                self.ctx,
                self.spec.memory_budget_mib,
                os.getpid(),
            ),
            name=f"routine:{self.spec.name}",
            daemon=True,  # dies with the agent rather than outliving it
        )
        try:
            proc.start()
        except Exception as exc:  # e.g. a context holding something that cannot be pickled
            conn.close()
            return self._end(
                RUNTIME_ERROR,
                f"{self.spec.name} could not be started in a child process: "
                f"{type(exc).__name__}: {exc}",
                probe_pb2.PROBE_ERROR_KIND_UNAVAILABLE,
            )
        finally:
            # Only the child holds its end now, so its death shows as end-of-file here.
            child_conn.close()
        assert proc.pid is not None  # set by start()
        self.proc, self.conn, self.pid = proc, conn, proc.pid
        self.spawned_at = time.monotonic()
        ended: Ending | None = None
        try:
            ended = self._watch()
            return ended
        finally:
            if ended is not None:
                proc.join(EXIT_WAIT_S)  # after its result a child is on its way out
            if proc.is_alive():
                proc.kill()  # only when on_update raised: nothing is left to watch it
            proc.join()
            proc.close()
            conn.close()

    def _watch(self) -> Ending:
        while True:
            try:
                ended = self._step()
            except KeyboardInterrupt:
                # Only where _CtrlC could not take over SIGINT (the application has its
                # own handler that raises): the next step sends the cancel.
                self.ctrl_c.pressed.set()
                continue
            if ended is not None:
                return ended

    def _step(self) -> Ending | None:
        ended = self._take_messages(POLL_S, MAX_MESSAGES_PER_POLL)
        if ended is not None:
            return ended
        if self.closed or not self.proc.is_alive():
            # A dead child's last messages (its result, even) may still be in the pipe.
            return self._take_messages(0, None) or self._died()
        return self._enforce()

    # Messages from the child.

    def _take_messages(self, timeout: float, limit: int | None) -> Ending | None:
        taken = 0
        while not self.closed and (limit is None or taken < limit):
            try:
                if not self.conn.poll(timeout if taken == 0 else 0):
                    return None
                message = self.conn.recv()
            except (EOFError, OSError):
                self.closed = True  # the child is gone (or its pipe is unusable)
                return None
            except Exception:
                # A message torn apart (only by a KeyboardInterrupt inside recv): the
                # pipe can no longer be trusted, so the child is treated as gone.
                self.closed = True
                return None
            taken += 1
            ended = self._handle(message)
            if ended is not None:
                return ended
        return None

    def _handle(self, message: tuple[Any, ...]) -> Ending | None:
        kind = message[0]
        if kind == "started":
            self.clock.start()
            self.baseline_rss_bytes = self._sample_memory()
        elif kind == "update":
            update = routine_pb2.RoutineUpdate.FromString(message[1])
            self.tracker.state = update.state
            self.tracker.percent = update.percent
            self.on_update(update)
            if update.state == WAITING and update.HasField("inquiry"):
                self._answer(update.inquiry)
        elif kind == "keep":
            self.tracker.partial = _detail_of(routine_pb2.RoutineResult.FromString(message[1]))
        elif kind == "result":
            return self._child_result(message[1], message[2], message[3])
        return None

    def _answer(self, inquiry: routine_pb2.RoutineInquiry) -> None:
        if self._cancel_requested():
            return  # the child gets "cancel" instead; nobody is asked for a routine being stopped
        # Time spent waiting for a person does not count against the time budget: finding
        # a charger or a loopback plug takes what it takes, and the child, blocked on the
        # pipe for the answer, uses the machine not at all meanwhile.
        self.clock.pause()
        try:
            with self.ctrl_c.raising():
                answer = bool(self.ask(inquiry.code, inquiry.question))
        except KeyboardInterrupt:
            self.ctrl_c.pressed.set()  # Ctrl-C at the prompt: the next step cancels
            return
        except Exception:
            # An asker that cannot ask (no terminal: EOFError) means nobody can answer.
            answer = False
        finally:
            self.clock.resume()
        self._send(("answer", answer))

    def _child_result(self, ended_bytes: bytes, error_bytes: bytes | None, peak: int) -> Ending:
        ended = routine_pb2.RoutineResult.FromString(ended_bytes)
        self.peak_rss_bytes = max(self.peak_rss_bytes, peak)
        self._set_peak(ended)
        name = self.spec.name
        if ended.outcome == CANCELLED:
            ended.reason = self._stopped(ended.percent)
            return Ending(ended, self._error(probe_pb2.PROBE_ERROR_KIND_CANCELLED, ended.reason))
        if ended.outcome == KILLED:
            # Only a MemoryError ends this way in the child: its address-space limit
            # refused an allocation faster than the watchdog's sampling could see.
            ended.reason = (
                f"{name} ran out of its memory budget of {self.spec.memory_budget_mib:g} MiB "
                f"at {ended.percent} % (an allocation past it was refused)"
            )
            error = self._error(probe_pb2.PROBE_ERROR_KIND_RESOURCE_LIMIT, ended.reason)
            return Ending(ended, error)
        if ended.outcome == RUNTIME_ERROR and error_bytes:
            # A source it could not use (or its module that would not load): typed.
            error = probe_pb2.ProbeError.FromString(error_bytes)
            return Ending(ended, error, f"could not run: {ended.reason}")
        if ended.outcome == RUNTIME_ERROR:
            error = self._error(probe_pb2.PROBE_ERROR_KIND_INTERNAL, ended.reason)
            return Ending(ended, error, f"the routine failed unexpectedly: {ended.reason}")
        return Ending(ended)

    # Budgets and cancellation.

    def _enforce(self) -> Ending | None:
        now = time.monotonic()
        if self._cancel_requested():
            if self.cancel_sent_at is None:
                self.cancel_sent_at = now
                self._send(("cancel",))
            elif now - self.cancel_sent_at > self.cancel_grace_s:
                return self._kill(
                    CANCELLED,
                    f"{self._stopped(self.tracker.percent)}; "
                    f"it did not stop within {self.cancel_grace_s:g} s and was killed",
                    probe_pb2.PROBE_ERROR_KIND_CANCELLED,
                )
            return None  # stopping: its budgets no longer matter
        rss = self._sample_memory()
        budget_mib = self.spec.memory_budget_mib
        grown = rss - self.baseline_rss_bytes if self.baseline_rss_bytes is not None else 0
        if budget_mib > 0 and grown > budget_mib * MIB:
            return self._kill(
                KILLED,
                f"{self.spec.name} grew by {grown / MIB:.0f} MiB, over its memory budget of "
                f"{budget_mib:g} MiB, and was killed {self._where()}",
                probe_pb2.PROBE_ERROR_KIND_RESOURCE_LIMIT,
            )
        if not self.clock.started and now - self.spawned_at > STARTUP_BUDGET_S:
            return self._kill(
                KILLED,
                f"{self.spec.name} did not start within {STARTUP_BUDGET_S:g} s and was killed",
                probe_pb2.PROBE_ERROR_KIND_TIMEOUT,
            )
        budget_s = self.spec.time_budget_s
        if budget_s > 0 and self.clock.elapsed() > budget_s:
            return self._kill(
                KILLED,
                f"{self.spec.name} exceeded its time budget of {budget_s:g} s "
                f"and was killed {self._where()}",
                probe_pb2.PROBE_ERROR_KIND_TIMEOUT,
            )
        return None

    def _cancel_requested(self) -> bool:
        return self.cancel.is_set() or self.ctrl_c.pressed.is_set()

    def _stopped(self, percent: int) -> str:
        who = "Ctrl-C" if self.ctrl_c.pressed.is_set() else "its caller"
        return f"{self.spec.name} was stopped by {who} at {percent} %"

    def _where(self) -> str:
        """Where the routine had got to, from the parent's copy of its state."""
        return f"at {self.tracker.percent} % {_STATE_WORDS[self.tracker.state]}"

    def _sample_memory(self) -> int:
        """The child's resident memory now, bytes; keeps its peak (VmHWM) as well."""
        status = _status_kib(self.pid)
        rss = status.get("VmRSS", 0) * 1024
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss, status.get("VmHWM", 0) * 1024)
        return rss

    def _kill(
        self,
        outcome: routine_pb2.RoutineOutcome.ValueType,
        reason: str,
        kind: probe_pb2.ProbeErrorKind.ValueType,
    ) -> Ending:
        self.proc.kill()
        self.proc.join()
        return self._end(outcome, reason, kind)

    def _died(self) -> Ending:
        """The child ended without a result."""
        self.proc.join(1.0)
        if self.proc.is_alive():  # it closed its pipe yet lives on: no result will come
            self.proc.kill()
            self.proc.join()
        if self._cancel_requested():
            return self._end(
                CANCELLED, self._stopped(self.tracker.percent), probe_pb2.PROBE_ERROR_KIND_CANCELLED
            )
        return self._end(
            RUNTIME_ERROR,
            f"{self.spec.name} stopped without a result: its process "
            f"{_exit_words(self.proc.exitcode)} {self._where()}",
            probe_pb2.PROBE_ERROR_KIND_INTERNAL,
        )

    def _end(
        self,
        outcome: routine_pb2.RoutineOutcome.ValueType,
        reason: str,
        kind: probe_pb2.ProbeErrorKind.ValueType,
    ) -> Ending:
        ended = self.tracker.ended(outcome, reason)
        self._set_peak(ended)
        return Ending(ended, self._error(kind, reason))

    def _error(self, kind: probe_pb2.ProbeErrorKind.ValueType, reason: str) -> probe_pb2.ProbeError:
        return probe_pb2.ProbeError(kind=kind, message=reason, source=self.spec.name)

    def _set_peak(self, ended: routine_pb2.RoutineResult) -> None:
        if self.peak_rss_bytes > 0:
            ended.peak_rss_bytes = self.peak_rss_bytes

    def _send(self, message: tuple[Any, ...]) -> None:
        # A child gone meanwhile cannot be told; what it sent before is still to be
        # read, and the next step reports how it ended.
        with contextlib.suppress(OSError):
            self.conn.send(message)


class _RunningClock:
    """The routine's running time: from the child's "started", paused while a person is asked."""

    def __init__(self) -> None:
        self.started = False
        self._since: float | None = None
        self._spent = 0.0

    def start(self) -> None:
        self.started = True
        self._since = time.monotonic()

    def pause(self) -> None:
        if self._since is not None:
            self._spent += time.monotonic() - self._since
            self._since = None

    def resume(self) -> None:
        if self.started and self._since is None:
            self._since = time.monotonic()

    def elapsed(self) -> float:
        running = time.monotonic() - self._since if self._since is not None else 0.0
        return self._spent + running


class _CtrlC:
    """Notes Ctrl-C while a routine runs, rather than raising KeyboardInterrupt anywhere.

    A KeyboardInterrupt raised inside `Connection.recv` could tear a message in half; a
    handler that only notes the key lets the watchdog act on it at a safe point, within
    POLL_S. While a person is asked the usual KeyboardInterrupt is back, so Ctrl-C leaves
    a prompt. Installed only in the main thread (the only one Python delivers signals
    to) and only over Python's default handler, never over an application's own.
    """

    def __init__(self) -> None:
        self.pressed = threading.Event()
        self._installed = False

    def __enter__(self) -> _CtrlC:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            signal.signal(signal.SIGINT, self._note)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._installed = False

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.pressed.set()

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """Ctrl-C raises KeyboardInterrupt again inside this block."""
        if not self._installed:
            yield
            return
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, self._note)


def _exit_words(exitcode: int | None) -> str:
    if exitcode is None:
        return "closed its pipe"
    if exitcode < 0:
        try:
            return f"was killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _detail_of(holder: routine_pb2.RoutineResult) -> RoutineDetail | None:
    which = holder.WhichOneof("detail")
    detail: RoutineDetail | None = getattr(holder, which) if which else None
    return detail


def _status_kib(pid: int) -> dict[str, int]:
    """The Vm* lines of /proc/<pid>/status (VmSize, VmRSS, VmHWM...), KiB; {} once it is gone.

    Our own child's accounting, not a probe source, so it is read directly.
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return {}
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields = value.split()
        if key.startswith("Vm") and fields and fields[0].isdigit():
            found[key] = int(fields[0])
    return found


# --- the child ------------------------------------------------------------------------------


class PipeRun:
    """The RoutineRun of a child process: each call reaches the watchdog through the pipe."""

    def __init__(self, conn: Connection[Any, Any], tracker: Tracker) -> None:
        self._conn = conn
        self.tracker = tracker

    def progress(self, percent: int, message: str = "") -> None:
        self._take_cancel()
        self._send_update(self.tracker.update(RUNNING, percent, message))

    def ask(self, code: str, question: str) -> bool:
        self._take_cancel()
        inquiry = routine_pb2.RoutineInquiry(code=code, question=question)
        self._send_update(self.tracker.update(WAITING, None, question, inquiry))
        while True:  # until the answer; "cancel" raises
            message = self._receive()
            if message[0] == "answer":
                break
        self._send_update(self.tracker.update(RUNNING, None, "continuing"))
        return bool(message[1])

    def sleep(self, seconds: float) -> None:
        self._take_cancel()
        deadline = time.monotonic() + max(0.0, seconds)
        while (left := deadline - time.monotonic()) > 0:
            if self._conn.poll(left):
                self._receive()

    def keep(self, detail: RoutineDetail) -> None:
        self.tracker.partial = detail
        holder = routine_pb2.RoutineResult()
        set_detail(holder, detail)
        # Sent at once: the parent holds it even if this process is killed.
        self._conn.send(("keep", holder.SerializeToString()))

    def _send_update(self, update: routine_pb2.RoutineUpdate) -> None:
        self._conn.send(("update", update.SerializeToString()))

    def _take_cancel(self) -> None:
        while self._conn.poll(0):
            self._receive()

    def _receive(self) -> tuple[Any, ...]:
        """The parent's next message; raises RoutineCancelled on "cancel" or when it is gone."""
        try:
            message: tuple[Any, ...] = self._conn.recv()
        except (EOFError, OSError):
            raise RoutineCancelled() from None  # no watchdog left: nobody wants the rest
        if message[0] == "cancel":
            raise RoutineCancelled()
        return message


def _child_main(
    conn: Connection[Any, Any],
    module: str,
    name: str,
    ctx: ProbeContext,
    memory_budget_mib: float,
    parent_pid: int,
) -> None:
    """The child process: load the routine, cap its memory, run it, send the result."""
    _die_with_parent(parent_pid)
    # Ctrl-C at a terminal reaches the whole process group. The parent decides what it
    # means and tells the child through the pipe, so a routine stops at a clean point
    # (in run.sleep/ask/progress) and still reports its partial detail.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tracker = Tracker(name)
    try:
        importlib.import_module(module)
        spec = registry.get(name)
    except Exception as exc:
        reason = f"{name} could not be loaded: {type(exc).__name__}: {exc}"
        error = probe_pb2.ProbeError(
            kind=probe_pb2.PROBE_ERROR_KIND_INTERNAL, message=reason, source=module
        )
        _send_result(conn, tracker.ended(RUNTIME_ERROR, reason), error)
        return
    lift_limit = _limit_address_space(memory_budget_mib)
    conn.send(("started",))
    try:
        try:
            ended = execute(spec, ctx, PipeRun(conn, tracker), tracker)
        finally:
            lift_limit()
    except MemoryError:  # even reporting the refusal needed memory; now there is room
        ended = tracker.ended(KILLED, "ran out of its memory budget")
    _send_result(conn, ended, tracker.error)


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process if its parent dies (Linux's PR_SET_PDEATHSIG).

    `daemon=True` stops a child only when the agent exits cleanly; an agent that is itself
    killed would leave a routine running unwatched. Best effort: without prctl, a routine
    still stops at its next call to `run`, which finds the pipe closed.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # it died before the request was in place
        os._exit(1)


def _send_result(
    conn: Connection[Any, Any], ended: routine_pb2.RoutineResult, error: probe_pb2.ProbeError | None
) -> None:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a child
    # spawned by a large parent would report the parent's peak as its own.
    peak = _status_kib(os.getpid()).get("VmHWM", 0) * 1024
    error_bytes = error.SerializeToString() if error is not None else None
    with contextlib.suppress(OSError):  # the parent is gone: nobody to tell
        conn.send(("result", ended.SerializeToString(), error_bytes, peak))


def _limit_address_space(memory_budget_mib: float) -> Callable[[], None]:
    """Cap this process's address space at its size now plus the memory budget.

    The backstop for an allocation too fast for the watchdog's 20 ms sampling of RSS
    (one `bytearray(1 << 30)` is resident before the next sample): past the cap the
    kernel refuses the mapping and the routine gets a MemoryError, which ends it as
    KILLED. Address space counts mappings never touched too, so the cap sits above the
    budget the watchdog applies to RSS and refuses only what it could not catch.

    Only the soft limit is lowered, and the returned function restores it after the
    routine, so that sending the result cannot itself fail for want of memory.
    """
    size_kib = _status_kib(os.getpid()).get("VmSize")
    if memory_budget_mib <= 0 or size_kib is None:
        return lambda: None
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size_kib * 1024 + int(memory_budget_mib * MIB)
    for existing in (soft, hard):
        if existing != resource.RLIM_INFINITY:
            cap = min(cap, existing)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
