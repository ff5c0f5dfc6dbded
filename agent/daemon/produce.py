"""Scheduled telemetry: collect a report every interval (with jitter) and spool it.

    producer = Producer(config, spool, board, log, wake, collect_once)
    await producer.run(stopping)      # the first report at start, then every ~interval
    producer.collect_now()            # SIGUSR1: one more, now

Every report leaves the producer only through `spool_report`, which writes it to the
spool with the agent's notes inside (the evictions not yet told, the watchdog's
events) in the same commit that marks them told. The link sends it from there.

The jitter keeps a fleet that booted together (a store's demo devices, a bench of
fixtures after a power cut) from reporting in lock-step; the first report waits a
random part of a minute for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from probelink.agent.daemon.backoff import jittered
from probelink.agent.daemon.collect import Collected
from probelink.agent.daemon.config import DaemonConfig
from probelink.agent.daemon.memory import trim_heap
from probelink.agent.daemon.status import StatusBoard
from probelink.agent.spool import ReportTooLarge, Spool, SpoolError
from probelink.v1 import report_pb2

# The first report of a start waits up to this long (and at most a jitter's share of
# the interval).
FIRST_REPORT_SPREAD_S = 30.0


def spool_report(
    spool: Spool, report: report_pb2.Report, events: list[report_pb2.WatchdogEvent]
) -> tuple[int, int]:
    """Spool `report` carrying the agent's notes; (evictions told, evicted by this put)."""

    def serialize(evicted_untold: int) -> bytes:
        report.agent.spool_evicted = evicted_untold
        del report.agent.watchdog[:]
        report.agent.watchdog.extend(events)
        if not evicted_untold and not events:
            report.ClearField("agent")
        return report.SerializeToString()

    return spool.put_telling_evictions(report.report_id, serialize)


class Producer:
    def __init__(
        self,
        config: DaemonConfig,
        spool: Spool,
        board: StatusBoard,
        log: logging.Logger,
        wake: asyncio.Event,
        collect_once: Callable[[], Awaitable[Collected]],
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.spool = spool
        self.board = board
        self.log = log
        self.wake = wake
        self.collect_once = collect_once
        self._rng = rng or random.Random()
        self._now = asyncio.Event()
        # Events not yet carried by a spooled report (its put failed): kept for the next.
        self._events: list[report_pb2.WatchdogEvent] = []

    def collect_now(self) -> None:
        self._now.set()

    def add_events(self, events: list[report_pb2.WatchdogEvent]) -> None:
        """Events from elsewhere (the daemon's self-monitor) for the next report."""
        self._events.extend(events)

    async def run(self, stopping: asyncio.Event) -> None:
        spread = min(FIRST_REPORT_SPREAD_S, self.config.interval_s * self.config.jitter)
        wait = self._rng.uniform(0, spread)
        while not stopping.is_set():
            self.board.update(next_report_at=time.time() + wait)
            await self._sleep(wait, stopping)
            if stopping.is_set():
                return
            started = time.monotonic()
            await self.produce_one()
            trim_heap()
            interval = jittered(self.config.interval_s, self.config.jitter, self._rng)
            wait = max(0.0, interval - (time.monotonic() - started))

    async def produce_one(self) -> str | None:
        """Collect and spool one report; its id, or None when there was none."""
        try:
            collection = await self.collect_once()
        except Exception as err:  # a collector fault must not end the daemon
            self.log.exception("collecting a report failed: %s", err)
            return None
        self._events.extend(collection.events)
        if collection.report is None:
            self.log.error("no report this time: %s", collection.error or "the collector failed")
            return None
        report = collection.report
        events = list(self._events)
        try:
            told, evicted = await asyncio.to_thread(spool_report, self.spool, report, events)
        except (SpoolError, ReportTooLarge) as err:
            self.log.error("report %s could not be spooled: %s", report.report_id, err)
            return None
        self._events = self._events[len(events) :]
        self.board.update(last_report_at=time.time(), produced=self.board.status.produced + 1)
        self.log.info(
            "spooled report %s%s%s",
            report.report_id,
            f" (it tells the server of {told} evicted)" if told else "",
            f"; the spool was full and evicted the {evicted} oldest" if evicted else "",
        )
        self.wake.set()
        return report.report_id

    async def _sleep(self, seconds: float, stopping: asyncio.Event) -> None:
        # Not cleared before waiting: a SIGUSR1 during the last collection still counts.
        tasks = {asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(self._now.wait())}
        with contextlib.suppress(TimeoutError):
            await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        self._now.clear()
