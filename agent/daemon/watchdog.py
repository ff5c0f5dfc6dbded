"""The agent's watchdog, as osquery's: what a probe or the daemon itself may use, and the price.

    usage = read_usage(pid)            # ProcUsage(cpu_seconds=0.42, rss_bytes=41_943_040)

    denylist = Denylist.load(state_dir / DENYLIST_FILE)
    denylist.add(event)                # a WatchdogEvent: "storage.smart" used too much CPU
    denylist.active()                  # {"storage.smart": event} until event.skipped_until
    denylist.save()

    monitor = SelfMonitor(SelfBudget(rss_bytes=60 * MIB, cpu_percent=20))
    advice = monitor.check()           # every few seconds, from the daemon's loop
    advice.events                      # WatchdogEvent(probe="agent", ...) to log and report
    advice.restart                     # True: exit with RESTART_EXIT_CODE, systemd restarts it

Two watchdogs share this module. The collector (`collect.py`) watches the child process
that runs the probes and stops a probe that passes its budget; the probe is then skipped
for a while, and the denylist that says so is kept in the state dir so that a restart of
the agent does not run the culprit again at once. `SelfMonitor` watches the daemon: it
cannot drop its own work, so when its memory stays over budget it asks to be restarted,
as osquery's watcher restarts a worker.

Everything is read from /proc (utime + stime of /proc/PID/stat, resident pages of
/proc/PID/statm): the daemon imports no psutil, which alone would cost it megabytes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, TypeGuard

from google.protobuf.timestamp_pb2 import Timestamp

from probelink.agent.state import write_private
from probelink.v1 import report_pb2

log = logging.getLogger(__name__)

MIB = 1 << 20
# EX_TEMPFAIL from sysexits.h: "try again later". The unit's Restart=on-failure restarts
# the daemon, and the journal shows why it went.
RESTART_EXIT_CODE = 75
DENYLIST_FILE = "watchdog.json"
# The name the daemon's own events carry where a probe's name would be.
AGENT = "agent"

CPU_SECONDS = "cpu_seconds"
RSS_BYTES = "rss_bytes"
WALL_SECONDS = "wall_seconds"
RESOURCES = (CPU_SECONDS, RSS_BYTES, WALL_SECONDS)

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_DENYLIST_VERSION = 1


class ProcUsage(NamedTuple):
    """What one process has used so far: CPU time of all its threads, and its memory now."""

    cpu_seconds: float
    rss_bytes: int


def read_usage(pid: int | str = "self") -> ProcUsage:
    """CPU time and resident size of process `pid`; ProcessLookupError once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/statm", "rb") as f:
            statm = f.read()
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessLookupError(f"no process {pid}") from None
    # The command name (field 2) is in parentheses and may hold spaces or ")": the
    # fields are counted from the last ")". utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(b")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return ProcUsage(cpu, int(statm.split()[1]) * _PAGE_BYTES)


def event(
    probe: str, resource: str, observed: float, budget: float, until: datetime | None = None
) -> report_pb2.WatchdogEvent:
    """A WatchdogEvent; `until` is when a stopped probe may run again (none for the agent)."""
    made = report_pb2.WatchdogEvent(
        probe=probe, resource=resource, observed=observed, budget=budget
    )
    if until is not None:
        made.skipped_until.FromDatetime(until)
    return made


def until_of(e: report_pb2.WatchdogEvent) -> datetime:
    return e.skipped_until.ToDatetime(tzinfo=UTC)


def describe(e: report_pb2.WatchdogEvent) -> str:
    """Plain words: 'storage.smart used 12.3 s of CPU, over its budget of 10 s'."""
    if e.resource == RSS_BYTES:
        used = f"{e.observed / MIB:.0f} MiB of memory, over its budget of {e.budget / MIB:.0f} MiB"
    elif e.resource == CPU_SECONDS:
        used = f"{e.observed:.1f} s of CPU, over its budget of {e.budget:g} s"
    else:
        used = f"{e.observed:.1f} s, over its budget of {e.budget:g} s"
    return f"{e.probe} used {used}" if e.resource != WALL_SECONDS else f"{e.probe} ran {used}"


def stopped_reason(e: report_pb2.WatchdogEvent) -> str:
    """What a report says of a probe the watchdog stopped, and until when it is skipped."""
    until = until_of(e).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"stopped by the agent's watchdog: {describe(e)}; skipped until {until}"


class Denylist:
    """Probes the watchdog stopped, each skipped until its event's `skipped_until`.

    Kept in one JSON file in the state dir, written whole (write_private). It is advice,
    not a record: a file that cannot be read or makes no sense is logged and started
    afresh; the worst that costs is one more run of a probe that misbehaves.
    """

    def __init__(self, path: Path, entries: dict[str, report_pb2.WatchdogEvent] | None = None):
        self.path = path
        self._entries: dict[str, report_pb2.WatchdogEvent] = dict(entries or {})

    @classmethod
    def load(cls, path: Path, now: datetime | None = None) -> Denylist:
        """The denylist kept at `path`, expired entries dropped; empty if missing or damaged."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path)
        except OSError as err:
            log.warning("cannot read the watchdog's denylist %s (%s): starting empty", path, err)
            return cls(path)
        try:
            entries = _parse(raw)
        except ValueError as err:
            log.warning("the watchdog's denylist %s is damaged (%s): starting empty", path, err)
            return cls(path)
        denylist = cls(path, {e.probe: e for e in entries})
        denylist._entries = denylist.active(now)
        return denylist

    def active(self, now: datetime | None = None) -> dict[str, report_pb2.WatchdogEvent]:
        """Probe name -> the event that stopped it, for probes still to be skipped at `now`."""
        now = now or datetime.now(UTC)
        return {name: e for name, e in self._entries.items() if until_of(e) > now}

    def add(self, stopped: report_pb2.WatchdogEvent) -> None:
        self._entries[stopped.probe] = stopped

    def save(self, now: datetime | None = None) -> bool:
        """Write the entries still active; False (and a log line) if it cannot be written."""
        entries = sorted(self.active(now).values(), key=lambda e: e.probe)
        data = {"version": _DENYLIST_VERSION, "skipped": [_to_json(e) for e in entries]}
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(self.path, json.dumps(data, indent=2).encode() + b"\n")
        except OSError as err:
            # The probes stay skipped for as long as this process lives; only a restart
            # forgets them.
            log.warning("cannot write the watchdog's denylist %s: %s", self.path, err)
            return False
        return True


def _to_json(e: report_pb2.WatchdogEvent) -> dict[str, object]:
    return {
        "probe": e.probe,
        "resource": e.resource,
        "observed": e.observed,
        "budget": e.budget,
        "skipped_until": e.skipped_until.ToJsonString(),
    }


def _parse(raw: bytes) -> list[report_pb2.WatchdogEvent]:
    """The file's entries; ValueError saying what is wrong with it."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"not JSON: {err}") from None
    if not isinstance(data, dict) or data.get("version") != _DENYLIST_VERSION:
        raise ValueError(f"not a version {_DENYLIST_VERSION} denylist")
    items = data.get("skipped")
    if not isinstance(items, list):
        raise ValueError('"skipped" is not a list')
    return [_entry(item) for item in items]


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _entry(item: object) -> report_pb2.WatchdogEvent:
    if not isinstance(item, dict):
        raise ValueError(f"an entry is not an object: {item!r}")
    probe, resource = item.get("probe"), item.get("resource")
    observed, budget = item.get("observed"), item.get("budget")
    if not isinstance(probe, str) or not probe:
        raise ValueError(f"an entry has no probe name: {item!r}")
    if resource not in RESOURCES:
        raise ValueError(f"{probe}: unknown resource {resource!r}")
    if not (_is_number(observed) and _is_number(budget)):
        raise ValueError(f"{probe}: observed and budget must be numbers")
    until = Timestamp()
    try:
        until.FromJsonString(str(item.get("skipped_until")))
    except ValueError:
        raise ValueError(f"{probe}: skipped_until is not a time") from None
    e = report_pb2.WatchdogEvent(
        probe=probe, resource=str(resource), observed=float(observed), budget=float(budget)
    )
    e.skipped_until.CopyFrom(until)
    return e


@dataclass(frozen=True)
class SelfBudget:
    """What the daemon itself may use (the [watchdog] agent_* settings)."""

    rss_bytes: int = 60 * MIB
    # As the daemon's [watchdog] agent_cpu_percent: draining a backlog takes a share.
    cpu_percent: float = 20.0
    # CPU is judged over this much time: a burst (an upload, a cycle) is not a fault.
    window_s: float = 60.0
    # Checks in a row with memory over budget before the daemon should restart.
    strikes: int = 3


@dataclass(frozen=True)
class Advice:
    """One check of the daemon: its usage, what newly went over, and whether to restart."""

    usage: ProcUsage
    # Over the last window; None until half a window has been seen.
    cpu_percent: float | None
    # Resources that went over budget at this check (not those already over at the last).
    events: tuple[report_pb2.WatchdogEvent, ...]
    restart: bool


class SelfMonitor:
    """Samples a process (the daemon: "self") against a SelfBudget at each `check()`."""

    def __init__(
        self,
        budget: SelfBudget,
        pid: int | str = "self",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.pid = pid
        self._clock = clock
        # (when, cpu_seconds): the first is taken now, so start-up is not counted.
        self._samples: deque[tuple[float, float]] = deque([(clock(), read_usage(pid)[0])])
        self._rss_strikes = 0
        self._cpu_over = False

    def check(self) -> Advice:
        """Sample now; ProcessLookupError if the process watched is gone."""
        usage = read_usage(self.pid)
        now = self._clock()
        self._samples.append((now, usage.cpu_seconds))
        # Keep one sample at or before the window's start, so the window is a whole one.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.budget.window_s:
            self._samples.popleft()
        events: list[report_pb2.WatchdogEvent] = []
        if usage.rss_bytes > self.budget.rss_bytes:
            self._rss_strikes += 1
            if self._rss_strikes == 1:
                events.append(event(AGENT, RSS_BYTES, usage.rss_bytes, self.budget.rss_bytes))
        else:
            self._rss_strikes = 0
        since, cpu_then = self._samples[0]
        span = now - since
        percent: float | None = None
        if span >= self.budget.window_s / 2:
            used = usage.cpu_seconds - cpu_then
            percent = 100.0 * used / span
            over = percent > self.budget.cpu_percent
            if over and not self._cpu_over:
                allowed = self.budget.cpu_percent / 100.0 * span
                events.append(event(AGENT, CPU_SECONDS, used, allowed))
            self._cpu_over = over
        return Advice(usage, percent, tuple(events), self._rss_strikes >= self.budget.strikes)
