"""ports.serial_loopback over a real pty pair: a thread on the master side is the loopback plug."""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from probelink.probes.context import ProbeContext
from probelink.probes.registry import get
from probelink.probes.routine import InlineRun, Tracker, execute, run_inline
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import routine_pb2

# Each function maps (stream position, byte) to what the plug sends back (None: dropped).
Plug = Callable[[int, int], int | None]


def echo(pos: int, byte: int) -> int | None:
    return byte


def corrupt_every_16th(pos: int, byte: int) -> int | None:
    return byte ^ 0xFF if pos % 16 == 15 else byte


def drop_every_10th(pos: int, byte: int) -> int | None:
    return None if pos % 10 == 9 else byte


class LoopbackPlug:
    """Echoes what is written to the pty's slave back to it, through `plug`."""

    def __init__(self, plug: Plug) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.plug = plug
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        pos = 0
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            out = bytearray()
            for byte in data:
                back = self.plug(pos, byte)
                pos += 1
                if back is not None:
                    out.append(back)
            if out:
                os.write(self.master, bytes(out))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def make_plug() -> Iterator[Callable[[Plug], LoopbackPlug]]:
    plugs: list[LoopbackPlug] = []

    def make(plug: Plug) -> LoopbackPlug:
        plugs.append(LoopbackPlug(plug))
        return plugs[-1]

    yield make
    for p in plugs:
        p.close()


# The read timeout only runs out when bytes are missing: generous where none are, so a
# busy test machine cannot turn a slow echo into a failure.
LIMITS = {"ports.loopback_rounds": 4, "ports.loopback_bytes": 64, "ports.loopback_timeout_s": 2.0}


def _run(
    tmp_path: Path,
    port: str | None,
    ask: Callable[[str, str], bool] = lambda c, q: True,
    updates: list[routine_pb2.RoutineUpdate] | None = None,
    timeout_s: float = 2.0,
) -> routine_pb2.RoutineResult:
    limits = {**LIMITS, "ports.loopback_timeout_s": timeout_s}
    ctx = ProbeContext(sysfs=SysfsRoot(tmp_path), serial_port=port, limits=limits)
    seen = updates if updates is not None else []
    return run_inline(get("ports.serial_loopback"), ctx, ask=ask, on_update=seen.append)


def test_every_byte_comes_back(tmp_path: Path, make_plug: Callable[[Plug], LoopbackPlug]) -> None:
    plug = make_plug(echo)
    updates: list[routine_pb2.RoutineUpdate] = []
    result = _run(tmp_path, plug.path, updates=updates)
    assert result.outcome == routine_pb2.ROUTINE_OUTCOME_PASSED, result.reason
    assert result.serial_loopback == routine_pb2.SerialLoopbackDetail(
        device=plug.path, baud_rate=115200, bytes_sent=256, bytes_matched=256, rounds=4
    )
    assert result.reason == "all 256 bytes came back intact over 4 rounds at 115200 baud"
    inquiry = next(u.inquiry for u in updates if u.state == routine_pb2.ROUTINE_STATE_WAITING)
    assert inquiry == routine_pb2.RoutineInquiry(
        code="fit_loopback_plug",
        question=f"Fit the loopback plug to {plug.path}, then press Enter.",
    )
    assert [u.percent for u in updates if u.message.startswith("round")] == [25, 50, 75, 100]


def test_corrupted_bytes_fail_with_counts(
    tmp_path: Path, make_plug: Callable[[Plug], LoopbackPlug]
) -> None:
    plug = make_plug(corrupt_every_16th)
    result = _run(tmp_path, plug.path)
    assert result.outcome == routine_pb2.ROUTINE_OUTCOME_FAILED
    assert result.serial_loopback == routine_pb2.SerialLoopbackDetail(
        device=plug.path, baud_rate=115200, bytes_sent=256, bytes_matched=240, rounds=4
    )
    assert result.reason == (
        "240 of 256 bytes came back intact (16 came back wrong): "
        "check the loopback plug, the cable and the port"
    )


def test_dropped_bytes_fail_and_say_they_never_came_back(
    tmp_path: Path, make_plug: Callable[[Plug], LoopbackPlug]
) -> None:
    plug = make_plug(drop_every_10th)
    result = _run(tmp_path, plug.path, timeout_s=0.7)  # every round waits for its lost bytes
    assert result.outcome == routine_pb2.ROUTINE_OUTCOME_FAILED
    assert result.serial_loopback.bytes_sent == 256
    assert result.serial_loopback.bytes_matched < 256
    assert "25 never came back" in result.reason  # positions 9, 19, ... 249


def test_a_port_that_does_not_exist_is_a_runtime_error_not_a_failure(tmp_path: Path) -> None:
    result = _run(tmp_path, str(tmp_path / "ttyNOPE0"))
    assert result.outcome == routine_pb2.ROUTINE_OUTCOME_RUNTIME_ERROR
    assert result.reason == f"could not open {tmp_path / 'ttyNOPE0'}: No such file or directory"


def test_no_port_chosen_is_unsupported(tmp_path: Path) -> None:
    result = _run(tmp_path, None)
    assert (result.outcome, result.reason) == (
        routine_pb2.ROUTINE_OUTCOME_UNSUPPORTED,
        "no port chosen: pass --serial-port",
    )


def test_plug_not_fitted_is_unsupported(
    tmp_path: Path, make_plug: Callable[[Plug], LoopbackPlug]
) -> None:
    plug = make_plug(echo)
    result = _run(tmp_path, plug.path, ask=lambda c, q: False)
    assert result.outcome == routine_pb2.ROUTINE_OUTCOME_UNSUPPORTED
    assert result.reason == f"nobody confirmed the loopback plug was fitted to {plug.path}"


def test_cancelled_run_keeps_what_it_measured(
    tmp_path: Path, make_plug: Callable[[Plug], LoopbackPlug]
) -> None:
    plug = make_plug(echo)
    spec = get("ports.serial_loopback")
    ctx = ProbeContext(sysfs=SysfsRoot(tmp_path), serial_port=plug.path, limits=dict(LIMITS))
    cancel = threading.Event()

    def on_update(update: routine_pb2.RoutineUpdate) -> None:
        if update.message == "round 2 of 4":
            cancel.set()  # Ctrl-C after the second round

    tracker = Tracker(spec.name)
    result = execute(spec, ctx, InlineRun(tracker, lambda c, q: True, on_update, cancel), tracker)
    assert result.outcome == routine_pb2.ROUTINE_OUTCOME_CANCELLED
    # The third round was already on the wire when the cancel was noticed.
    assert result.serial_loopback == routine_pb2.SerialLoopbackDetail(
        device=plug.path, baud_rate=115200, bytes_sent=192, bytes_matched=192, rounds=3
    )
