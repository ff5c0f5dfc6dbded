"""The watchdog's parts: /proc readings, the denylist file, and the daemon's SelfMonitor.

The SelfMonitor watches a real child process (`grower_child.py`) that grows, frees and
burns on command; /proc readings are checked against psutil's reading of the same idle
process.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from probelink.agent.daemon.watchdog import (
    AGENT,
    CPU_SECONDS,
    DENYLIST_FILE,
    MIB,
    RSS_BYTES,
    WALL_SECONDS,
    Denylist,
    ProcUsage,
    SelfBudget,
    SelfMonitor,
    describe,
    event,
    read_usage,
    stopped_reason,
)
from probelink.v1 import report_pb2

GROWER = Path(__file__).parent / "grower_child.py"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Grower:
    """`grower_child.py` running: `do("grow 64")` returns once the child has done it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(GROWER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.pid = self.proc.pid
        self._expect("ready")

    def _expect(self, word: str) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line == word, f"grower child said {line!r} (exit {self.proc.poll()})"

    def do(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        self._expect("ok")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def grower() -> Iterator[Grower]:
    child = Grower()
    try:
        yield child
    finally:
        child.stop()


class Lines(logging.Handler):
    """The watchdog's log lines, caught at its own logger: the daemon's logger setup
    (propagate off at "probelink.agent") must not hide them from the test."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


@pytest.fixture
def logged() -> Iterator[list[str]]:
    handler = Lines()
    logger = logging.getLogger("probelink.agent.daemon.watchdog")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


# --- /proc readings


def test_read_usage_agrees_with_psutil_on_an_idle_process(grower: Grower) -> None:
    grower.do("grow 32")
    grower.do("burn 0.3")
    # Idle now (blocked on its stdin): both readings see the same numbers.
    seen = psutil.Process(grower.pid)
    times = seen.cpu_times()
    want = ProcUsage(times.user + times.system, seen.memory_info().rss)
    got = read_usage(grower.pid)
    assert got.rss_bytes == want.rss_bytes
    assert got.cpu_seconds == pytest.approx(want.cpu_seconds, abs=0.011)
    assert got.rss_bytes > 32 * MIB and got.cpu_seconds > 0


def test_read_usage_of_a_process_that_is_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with pytest.raises(ProcessLookupError, match=f"no process {proc.pid}"):
        read_usage(proc.pid)


def test_read_usage_of_this_process() -> None:
    usage = read_usage()
    assert usage.rss_bytes == psutil.Process().memory_info().rss


# --- the words


def test_events_are_described_in_plain_words() -> None:
    until = datetime(2026, 11, 26, 13, 0, 5, tzinfo=UTC)
    cpu = event("storage.smart", CPU_SECONDS, 12.34, 10.0, until)
    assert describe(cpu) == "storage.smart used 12.3 s of CPU, over its budget of 10 s"
    rss = event("battery.power_supply", RSS_BYTES, 310 * MIB, 200 * MIB, until)
    assert describe(rss) == (
        "battery.power_supply used 310 MiB of memory, over its budget of 200 MiB"
    )
    wall = event("ports.serial", WALL_SECONDS, 121.5, 120.0, until)
    assert stopped_reason(wall) == (
        "stopped by the agent's watchdog: ports.serial ran 121.5 s, over its budget of 120 s; "
        "skipped until 2026-11-26 13:00:05 UTC"
    )
    # The daemon's own events carry no time: the agent is not skipped.
    assert not event(AGENT, RSS_BYTES, 1.0, 0.5).HasField("skipped_until")


# --- the denylist


def test_the_denylist_is_kept_whole_and_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / DENYLIST_FILE
    smart = event("storage.smart", CPU_SECONDS, 12.5, 10.0, NOW + timedelta(hours=24))
    serial = event("ports.serial", WALL_SECONDS, 121.0, 120.0, NOW + timedelta(hours=1))
    denylist = Denylist.load(path, NOW)
    assert denylist.active(NOW) == {}
    denylist.add(smart)
    denylist.add(serial)
    assert denylist.save(NOW)
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == {
        "version": 1,
        "skipped": [
            {
                "probe": "ports.serial",
                "resource": "wall_seconds",
                "observed": 121.0,
                "budget": 120.0,
                "skipped_until": "2026-11-25T13:00:00Z",
            },
            {
                "probe": "storage.smart",
                "resource": "cpu_seconds",
                "observed": 12.5,
                "budget": 10.0,
                "skipped_until": "2026-11-26T12:00:00Z",
            },
        ],
    }
    assert Denylist.load(path, NOW).active(NOW) == {"storage.smart": smart, "ports.serial": serial}


def test_expired_entries_are_dropped_on_load_and_save(tmp_path: Path) -> None:
    path = tmp_path / DENYLIST_FILE
    soon = event("ports.serial", WALL_SECONDS, 121.0, 120.0, NOW + timedelta(hours=1))
    later = event("storage.smart", CPU_SECONDS, 12.5, 10.0, NOW + timedelta(hours=24))
    denylist = Denylist(path)
    denylist.add(soon)
    denylist.add(later)
    denylist.save(NOW)
    two_hours_on = NOW + timedelta(hours=2)
    assert denylist.active(two_hours_on) == {"storage.smart": later}
    loaded = Denylist.load(path, two_hours_on)
    assert loaded.active(NOW) == {"storage.smart": later}  # `soon` is gone, not only hidden
    loaded.save(NOW)
    assert [e["probe"] for e in json.loads(path.read_text())["skipped"]] == ["storage.smart"]
    # An expiry exactly now is over: "until" is exclusive.
    assert Denylist.load(path, NOW + timedelta(hours=24)).active(NOW) == {}


def test_a_newer_stop_of_the_same_probe_replaces_the_older(tmp_path: Path) -> None:
    denylist = Denylist(tmp_path / DENYLIST_FILE)
    denylist.add(event("storage.smart", CPU_SECONDS, 12.5, 10.0, NOW + timedelta(hours=1)))
    newer = event("storage.smart", RSS_BYTES, 300.0 * MIB, 200.0 * MIB, NOW + timedelta(hours=24))
    denylist.add(newer)
    assert denylist.active(NOW) == {"storage.smart": newer}


SMART = "storage.smart"
GOOD_ENTRY = {
    "probe": "storage.smart",
    "resource": "cpu_seconds",
    "observed": 12.5,
    "budget": 10,
    "skipped_until": "2026-11-26T12:00:00Z",
}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        pytest.param(b"{not json", "not JSON: Expecting property name", id="not-json"),
        pytest.param(b"\x80abc", "not JSON: 'utf-8' codec can't decode", id="not-utf8"),
        pytest.param(b"[]", "not a version 1 denylist", id="a-list"),
        pytest.param(b'{"version": 2, "skipped": []}', "not a version 1 denylist", id="v2"),
        pytest.param(b'{"version": 1}', '"skipped" is not a list', id="no-entries"),
        pytest.param(b'{"version": 1, "skipped": [7]}', "an entry is not an object: 7", id="7"),
        pytest.param({"probe": ""}, "an entry has no probe name", id="no-probe"),
        pytest.param(
            {"resource": "cpu_percent"}, "storage.smart: unknown resource 'cpu_percent'", id="res"
        ),
        pytest.param(
            {"observed": True}, f"{SMART}: observed and budget must be numbers", id="bool"
        ),
        pytest.param({"budget": "10"}, f"{SMART}: observed and budget must be numbers", id="text"),
        pytest.param(
            {"skipped_until": "tomorrow"}, f"{SMART}: skipped_until is not a time", id="t"
        ),
    ],
)
def test_a_damaged_denylist_is_logged_and_started_afresh(
    content: bytes | dict[str, object], why: str, tmp_path: Path, logged: list[str]
) -> None:
    path = tmp_path / DENYLIST_FILE
    if isinstance(content, dict):
        content = json.dumps({"version": 1, "skipped": [GOOD_ENTRY | content]}).encode()
    path.write_bytes(content)
    denylist = Denylist.load(path, NOW)
    assert denylist.active(NOW) == {}
    assert len(logged) == 1
    assert logged[0].startswith(f"WARNING the watchdog's denylist {path} is damaged ({why}")
    assert logged[0].endswith("): starting empty")
    # The next save puts a good file in its place.
    stop = event("storage.smart", CPU_SECONDS, 12.5, 10.0, NOW + timedelta(hours=1))
    denylist.add(stop)
    assert denylist.save(NOW)
    assert Denylist.load(path, NOW).active(NOW) == {"storage.smart": stop}


def test_a_good_entry_is_read(tmp_path: Path) -> None:
    path = tmp_path / DENYLIST_FILE
    path.write_text(json.dumps({"version": 1, "skipped": [GOOD_ENTRY]}))
    until = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert Denylist.load(path, NOW).active(NOW) == {
        "storage.smart": event("storage.smart", CPU_SECONDS, 12.5, 10.0, until)
    }


def test_an_unreadable_denylist_is_logged_not_fatal(tmp_path: Path, logged: list[str]) -> None:
    path = tmp_path / DENYLIST_FILE
    path.mkdir()  # reading a directory fails as an unreadable file would
    assert Denylist.load(path, NOW).active(NOW) == {}
    assert logged == [
        f"WARNING cannot read the watchdog's denylist {path} ([Errno 21] Is a directory: "
        f"'{path}'): starting empty"
    ]


def test_a_denylist_that_cannot_be_written_is_logged_not_fatal(
    tmp_path: Path, logged: list[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    path = tmp_path / "a-file" / DENYLIST_FILE
    denylist = Denylist(path)
    stop = event("storage.smart", CPU_SECONDS, 12.5, 10.0, NOW + timedelta(hours=1))
    denylist.add(stop)
    assert denylist.save(NOW) is False
    assert len(logged) == 1
    assert logged[0].startswith(f"WARNING cannot write the watchdog's denylist {path}: ")
    # Still skipped for as long as this process lives.
    assert denylist.active(NOW) == {"storage.smart": stop}


# --- SelfMonitor


def test_memory_over_budget_is_reported_once_then_a_restart_is_advised(grower: Grower) -> None:
    base = read_usage(grower.pid).rss_bytes
    budget = SelfBudget(rss_bytes=base + 32 * MIB, cpu_percent=100.0, window_s=600.0, strikes=3)
    monitor = SelfMonitor(budget, pid=grower.pid)

    def check() -> tuple[tuple[report_pb2.WatchdogEvent, ...], bool]:
        advice = monitor.check()
        assert advice.cpu_percent is None  # half a window (300 s) has not passed
        return advice.events, advice.restart

    assert check() == ((), False)
    grower.do("grow 64")
    over = read_usage(grower.pid).rss_bytes
    assert check() == ((event(AGENT, RSS_BYTES, over, budget.rss_bytes),), False)
    assert check() == ((), False)
    assert check() == ((), True)  # the third check in a row over budget
    assert check() == ((), True)
    grower.do("free")
    assert check() == ((), False)
    grower.do("grow 64")
    again = read_usage(grower.pid).rss_bytes
    assert check() == ((event(AGENT, RSS_BYTES, again, budget.rss_bytes),), False)


def test_cpu_over_budget_across_the_window_is_reported_once(grower: Grower) -> None:
    budget = SelfBudget(rss_bytes=1 << 40, cpu_percent=20.0, window_s=0.6)
    monitor = SelfMonitor(budget, pid=grower.pid)
    grower.do("burn 0.8")
    advice = monitor.check()
    assert advice.cpu_percent is not None and advice.cpu_percent > budget.cpu_percent
    (over,) = advice.events
    assert (over.probe, over.resource, over.HasField("skipped_until")) == (
        AGENT,
        CPU_SECONDS,
        False,
    )
    # CPU seconds used over the window, against what its share of the window allows.
    assert over.observed / over.budget == pytest.approx(advice.cpu_percent / 20.0)
    grower.do("burn 0.6")
    still = monitor.check()
    assert still.cpu_percent is not None and still.cpu_percent > budget.cpu_percent
    assert still.events == ()  # still over: said once
    # Idle until the window holds only idle time, then over again: said again.
    deadline = time.monotonic() + 30
    while (idle := monitor.check()).cpu_percent is None or idle.cpu_percent > 1.0:
        assert idle.events == ()
        assert time.monotonic() < deadline, "the window never went idle"
        time.sleep(0.1)
    grower.do("burn 0.8")
    assert [e.resource for e in monitor.check().events] == [CPU_SECONDS]


def test_an_idle_process_within_budget_gives_no_advice(grower: Grower) -> None:
    # CPU time comes in clock ticks (10 ms): over a 0.2-0.4 s window one stray tick of
    # an idle process reads as 2.5-5 %. The budget leaves room for that, not for work.
    monitor = SelfMonitor(
        SelfBudget(rss_bytes=1 << 40, cpu_percent=25.0, window_s=0.4), pid=grower.pid
    )
    deadline = time.monotonic() + 30
    while (advice := monitor.check()).cpu_percent is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert advice.cpu_percent is not None and advice.cpu_percent < 25.0
    assert (advice.events, advice.restart) == ((), False)
    assert advice.usage.rss_bytes == pytest.approx(read_usage(grower.pid).rss_bytes, rel=0.05)


def test_the_daemon_watches_itself_by_default() -> None:
    advice = SelfMonitor(SelfBudget()).check()
    assert advice.usage.rss_bytes > 0 and not advice.restart


def test_a_process_that_is_gone_raises_process_lookup_error(grower: Grower) -> None:
    monitor = SelfMonitor(SelfBudget(), pid=grower.pid)
    grower.stop()
    with pytest.raises(ProcessLookupError):
        monitor.check()
