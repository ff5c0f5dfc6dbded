"""The daemon as a whole: state, spool, link, producer and self-monitor on one loop.

    exit_code = asyncio.run(Daemon(config, log).run())

Start-up order matters for a device that was killed mid-work: the spool opens first
(what was not acked is still there and goes first), then the link connects while the
producer makes the first report. SIGTERM or SIGINT stops the producer (a collection in
progress is killed), lets the link collect the acks in flight for a moment, and closes
the spool: whatever is not acked stays for the next start. SIGUSR1 asks for a report
now. (The advisory store is opened only to keep an advisory: see link.py.)

Exit codes: 0 stopped on request, 2 the settings or the state dir cannot work, 70
(EX_SOFTWARE) a part of the daemon failed (a bug: the log has the traceback), 75
(EX_TEMPFAIL) the self-monitor found the daemon over its memory budget and asks its
supervisor (systemd's Restart=on-failure) for a fresh process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from probelink.agent.daemon.collect import Budget, Collected, CollectPlan, collect
from probelink.agent.daemon.config import DaemonConfig
from probelink.agent.daemon.link import Link
from probelink.agent.daemon.produce import Producer
from probelink.agent.daemon.status import SPOOL_FILE, STATUS_FILE, StatusBoard
from probelink.agent.daemon.watchdog import (
    DENYLIST_FILE,
    RESTART_EXIT_CODE,
    Denylist,
    SelfBudget,
    SelfMonitor,
    describe,
)
from probelink.agent.spool import Spool, SpoolError
from probelink.agent.state import AgentState, StateError
from probelink.v1 import report_pb2

EXIT_STOPPED, EXIT_SETUP, EXIT_FAULT, EXIT_RESTART = 0, 2, 70, RESTART_EXIT_CODE


class SetupError(Exception):
    """The daemon cannot start; the message says why and what to do."""


LOCK_FILE = "daemon.lock"


def _hold_lock(path: Path) -> int:
    """Lock the state dir for this process's lifetime: one daemon per spool.

    Two daemons on one state dir would both send the spool and both rewrite
    status.json. The lock goes with the process, however it ends (kill -9 included).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SetupError(
            f"another probelink-agent is already running with the state dir {path.parent} "
            "(`probelink-agent status` shows it); stop it, or give this one another "
            "--state-dir"
        ) from None
    return fd


class Daemon:
    def __init__(self, config: DaemonConfig, log: logging.Logger) -> None:
        self.config = config
        self.log = log
        self.exit_code = EXIT_STOPPED
        self.state = AgentState(config.state_dir)
        try:
            self.state.ensure()
            self._lock = _hold_lock(config.state_dir / LOCK_FILE)
            self.key = self.state.device_key()
            self.spool = Spool(
                config.state_dir / SPOOL_FILE,
                max_bytes=config.spool_max_bytes,
                max_reports=config.spool_max_reports,
            )
        except (StateError, SpoolError, OSError) as err:
            raise SetupError(str(err)) from None
        self.board = StatusBoard(config.state_dir / STATUS_FILE, config.server)
        self.plan = CollectPlan(
            salt_file=config.salt_file,
            probes=config.probes,
            sysfs_root=config.sysfs_root,
            smartctl_json=(config.smartctl_json,) if config.smartctl_json else (),
            probe_modules=config.probe_modules,
        )
        self.budget = Budget(
            cpu_seconds=config.probe_cpu_s,
            rss_bytes=config.probe_rss_bytes,
            wall_seconds=config.probe_wall_s,
        )
        self.denylist = Denylist.load(config.state_dir / DENYLIST_FILE)
        self._identity: report_pb2.DeviceIdentity | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # One worker thread for the spool's file work (it is serialized by the spool's
        # lock anyway); asyncio's default pool would grow to six threads, each with
        # its stack and malloc arena: a megabyte or two of an idle daemon's RSS.
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool"))
        stopping = asyncio.Event()
        wake = asyncio.Event()
        link = Link(
            self.config,
            self.state,
            self.key,
            self.spool,
            self.board,
            self.log,
            wake,
            identity=self.identity,
            advisories_dir=self.config.state_dir,
        )
        producer = Producer(self.config, self.spool, self.board, self.log, wake, self._collect)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        loop.add_signal_handler(signal.SIGUSR1, producer.collect_now)
        depth = self.spool.depth()[0]
        self.log.info(
            "probelink-agent started: server %s, state %s, %d reports waiting in the spool, "
            "a report every %gs (±%d %%), signing key %s",
            self.config.server,
            self.config.state_dir,
            depth,
            self.config.interval_s,
            round(self.config.jitter * 100),
            self.key.key_id,
        )
        tasks: list[asyncio.Task[object]] = [
            asyncio.create_task(link.run(stopping), name="link"),
            asyncio.create_task(producer.run(stopping), name="producer"),
            asyncio.create_task(self._watch_self(producer, stopping), name="self-monitor"),
        ]
        done: set[asyncio.Task[object]] = set()
        stop: asyncio.Task[object] = asyncio.create_task(stopping.wait())
        try:
            done, _ = await asyncio.wait({stop, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stop}:
                error = task.exception() if not task.cancelled() else None
                if error is None and stopping.is_set():
                    continue  # it asked for the stop itself (the self-monitor's restart)
                # A part that should run for ever ended: say why, and let the supervisor
                # start a fresh daemon rather than limp on without it.
                self.log.error(
                    "the %s stopped unexpectedly: %r",
                    task.get_name(),
                    error,
                    exc_info=(type(error), error, error.__traceback__) if error else None,
                )
                self.exit_code = EXIT_FAULT
        finally:
            stopping.set()
            stop.cancel()
            # A collection in progress is not waited for: cancelling kills its child.
            tasks[1].cancel()
            for task in tasks:
                await asyncio.wait({task})
                if not task.cancelled() and task.exception() is not None and task not in done:
                    error = task.exception()
                    self.log.error("the %s failed while stopping: %r", task.get_name(), error)
                    self.exit_code = EXIT_FAULT
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
                loop.remove_signal_handler(signum)
            try:
                depth = self.spool.depth()[0]
                self.log.info("stopped; %d reports wait in the spool for the next start", depth)
            except SpoolError as err:
                self.log.error("stopped; the spool cannot be read: %s", err)
            self.spool.close()
        return self.exit_code

    def identity(self) -> report_pb2.DeviceIdentity | None:
        """Who this device is, for enrolling: from its oldest spooled report, else the
        last one seen (a device revoked with an empty spool enrolls again at once)."""
        for _, serialized in self.spool.pending(1):
            report = report_pb2.Report()
            report.ParseFromString(serialized)
            self._identity = report.device
        return self._identity

    async def _collect(self) -> Collected:
        return await collect(self.plan, self.budget, self.denylist, skip_for_s=self.config.skip_s)

    async def _watch_self(self, producer: Producer, stopping: asyncio.Event) -> None:
        monitor = SelfMonitor(
            SelfBudget(
                rss_bytes=self.config.agent_rss_bytes, cpu_percent=self.config.agent_cpu_percent
            )
        )
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.config.agent_check_s)
            if stopping.is_set():
                return
            advice = monitor.check()
            for event in advice.events:
                self.log.warning("watchdog: %s", describe(event))
            producer.add_events(list(advice.events))
            if advice.restart:
                self.log.error(
                    "watchdog: the agent stays over its memory budget (%d MiB); exiting "
                    "with %d so that its supervisor starts a fresh one (nothing is lost: "
                    "the spool keeps every report)",
                    self.config.agent_rss_bytes >> 20,
                    EXIT_RESTART,
                )
                self.exit_code = EXIT_RESTART
                stopping.set()
