"""storage.read_speed routine body, run inline against real temporary files."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from probelink.probes import registry
from probelink.probes.context import ProbeContext
from probelink.probes.routine import InlineRun, Tracker, execute, run_inline
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import routine_pb2

SPEC = registry.get("storage.read_speed")
MIB = 1024 * 1024


def ctx_for(tmp_path: Path, target: Path | None, **limits: float) -> ProbeContext:
    return ProbeContext(
        sysfs=SysfsRoot(tmp_path),
        read_target=target,
        limits={f"storage.{k}": v for k, v in limits.items()},
    )


def data_file(tmp_path: Path, mib: int) -> Path:
    path = tmp_path / "data.bin"
    with path.open("wb") as f:
        for i in range(mib):
            f.write(bytes([i % 251]) * MIB)
    return path


def test_passes_above_minimum(tmp_path: Path) -> None:
    target = data_file(tmp_path, 8)
    updates: list[routine_pb2.RoutineUpdate] = []
    r = run_inline(SPEC, ctx_for(tmp_path, target, min_read_mib_s=0.001), on_update=updates.append)
    assert r.outcome == routine_pb2.ROUTINE_OUTCOME_PASSED
    d = r.storage_read_speed
    assert (d.path, d.bytes_read, d.min_allowed_mib_per_s) == (str(target), 8 * MIB, 0.001)
    assert d.seconds > 0
    assert d.mib_per_s == pytest.approx(8 / d.seconds)
    assert r.reason.startswith("read 8 MiB at ")
    percents = [u.percent for u in updates]
    assert percents == sorted(percents)
    assert (r.percent, r.last_state) == (100, routine_pb2.ROUTINE_STATE_FINISHED)


def test_fails_below_minimum(tmp_path: Path) -> None:
    target = data_file(tmp_path, 2)
    r = run_inline(SPEC, ctx_for(tmp_path, target, min_read_mib_s=1e12))
    assert r.outcome == routine_pb2.ROUTINE_OUTCOME_FAILED
    assert "below the minimum of 1e+12 MiB/s" in r.reason
    assert r.storage_read_speed.bytes_read == 2 * MIB


def test_read_is_bounded_by_bytes(tmp_path: Path) -> None:
    target = data_file(tmp_path, 8)
    r = run_inline(SPEC, ctx_for(tmp_path, target, read_bytes=3 * MIB + 5, min_read_mib_s=0))
    assert r.storage_read_speed.bytes_read == 3 * MIB + 5


def test_read_is_bounded_by_time_window(tmp_path: Path) -> None:
    target = data_file(tmp_path, 8)
    r = run_inline(SPEC, ctx_for(tmp_path, target, read_window_s=1e-9, min_read_mib_s=0))
    # The window ends at once, but one chunk is always read to measure something.
    assert (r.outcome, r.storage_read_speed.bytes_read) == (routine_pb2.ROUTINE_OUTCOME_PASSED, MIB)


def test_cancel_keeps_partial_detail(tmp_path: Path) -> None:
    target = data_file(tmp_path, 40)
    cancel = threading.Event()

    def on_update(u: routine_pb2.RoutineUpdate) -> None:
        if u.message.endswith("MiB read"):
            cancel.set()  # Ctrl-C after the first progress report

    tracker = Tracker(SPEC.name)
    run = InlineRun(tracker, lambda c, q: False, on_update, cancel)
    r = execute(SPEC, ctx_for(tmp_path, target, min_read_mib_s=0), run, tracker)
    assert r.outcome == routine_pb2.ROUTINE_OUTCOME_CANCELLED
    # Cancelled at the next progress report (32 MiB), whose detail was kept just before.
    assert (r.storage_read_speed.path, r.storage_read_speed.bytes_read) == (str(target), 32 * MIB)


def empty_file(tmp_path: Path) -> Path:
    (tmp_path / "empty.bin").touch()
    return tmp_path / "empty.bin"


def small_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.bin"
    path.write_bytes(b"x" * (MIB - 1))
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "no target chosen: pass --read-target"),
        (lambda p: p / "missing.bin", "does not exist"),
        (lambda p: p, "is neither a regular file nor a block device"),
        (lambda p: Path("/dev/null"), "is neither a regular file nor a block device"),
        (empty_file, "is empty: nothing to read"),
        (small_file, "small.bin is only 1048575 bytes; a speed needs at least 1 MiB"),
    ],
)
def test_cannot_run_is_unsupported_never_failed(
    tmp_path: Path, make: Callable[[Path], Path | None], reason: str
) -> None:
    r = run_inline(SPEC, ctx_for(tmp_path, make(tmp_path)))
    assert r.outcome == routine_pb2.ROUTINE_OUTCOME_UNSUPPORTED
    assert reason in r.reason


def test_exactly_one_mib_is_measured(tmp_path: Path) -> None:
    target = tmp_path / "one.bin"
    target.write_bytes(b"y" * MIB)
    r = run_inline(SPEC, ctx_for(tmp_path, target, min_read_mib_s=0))
    assert (r.outcome, r.storage_read_speed.bytes_read) == (routine_pb2.ROUTINE_OUTCOME_PASSED, MIB)


def test_read_limit_below_one_mib_is_not_taken_for_a_small_target(tmp_path: Path) -> None:
    # The person asked for less than a MiB of a larger file: the limit, not the file, ended it.
    target = data_file(tmp_path, 2)
    r = run_inline(SPEC, ctx_for(tmp_path, target, read_bytes=4096, min_read_mib_s=0))
    assert r.outcome == routine_pb2.ROUTINE_OUTCOME_PASSED
    assert r.storage_read_speed.bytes_read == 4096


def test_eio_reading_a_file_is_could_not_run_never_failed(tmp_path: Path) -> None:
    # A real EIO from a regular file that is no block device: /proc/self/mem at offset 0
    # (address 0 is never mapped). On a file, as on NFS or FUSE, EIO is not the drive's.
    # A block device's EIO (a FAIL) needs a failing disk and is not reproduced here.
    mem = Path("/proc/self/mem")
    r = run_inline(SPEC, ctx_for(tmp_path, mem, min_read_mib_s=0))
    assert (r.outcome, r.reason) == (
        routine_pb2.ROUTINE_OUTCOME_RUNTIME_ERROR,
        "reading /proc/self/mem failed: Input/output error (a file, not a block device: "
        "the error may come from its filesystem)",
    )
