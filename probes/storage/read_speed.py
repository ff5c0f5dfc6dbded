"""storage.read_speed: a bounded sequential read of a file or block device, in MiB/s.

    $ probelink-agent check --routines --probe storage.read_speed --read-target /dev/nvme0n1

The person chooses the target (`ctx.read_target`); nothing is read without one. The read
stops at `storage.read_bytes` (256 MiB) or after `storage.read_window_s` (10 s), whichever
comes first, in 1 MiB chunks, and fails below `storage.min_read_mib_s` (20 MiB/s).
Nothing is written, so any drive or file is safe to test. A target smaller than one
chunk cannot give a speed and is not measured. A read error (EIO) is a finding only on
a block device; on a file it may come from the network or a FUSE daemon, so there it
means "could not run".
"""

from __future__ import annotations

import errno
import os
import stat
import time

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unavailable, Unsupported
from probelink.probes.registry import STORAGE
from probelink.probes.routine import Finished, RoutineRun, routine
from probelink.v1 import routine_pb2

CHUNK_BYTES = 1024 * 1024
MIB = 1024 * 1024
# Progress and partial detail are reported this often, not per chunk.
REPORT_EVERY_CHUNKS = 16


@routine(
    "storage.read_speed",
    STORAGE,
    "Sequential read speed of a drive or file",
    time_budget_s=60,
    memory_budget_mib=64,
)
def read_speed(ctx: ProbeContext, run: RoutineRun) -> Finished:
    target = ctx.read_target
    if target is None:
        raise Unsupported("no target chosen: pass --read-target")
    max_bytes = int(ctx.limit("storage.read_bytes", 256 * MIB))
    window_s = ctx.limit("storage.read_window_s", 10.0)
    min_mib_s = ctx.limit("storage.min_read_mib_s", 20.0)
    path = str(target)

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Unsupported(f"the read target {path} does not exist") from None
    except OSError as exc:
        raise Unavailable(f"{path} could not be opened: {exc.strerror}", path) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
            raise Unsupported(f"{path} is neither a regular file nor a block device")
        # Pages of the target already in memory would be "read" at memory speed. Asking
        # the kernel to drop them (clean pages only; nothing is lost) makes the read come
        # from the device, which is what we measure. O_DIRECT would too, but needs aligned
        # buffers and is refused by some filesystems; fadvise works on files and devices.
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError:
            pass  # advice is optional: a filesystem that refuses it is still read and measured
        return _measure(run, fd, path, stat.S_ISBLK(mode), max_bytes, window_s, min_mib_s)
    finally:
        os.close(fd)


def _measure(
    run: RoutineRun,
    fd: int,
    path: str,
    is_block_device: bool,
    max_bytes: int,
    window_s: float,
    min_mib_s: float,
) -> Finished:
    def detail(done: int, seconds: float) -> routine_pb2.StorageReadSpeedDetail:
        mib_s = done / MIB / seconds if seconds > 0 else 0.0
        return routine_pb2.StorageReadSpeedDetail(
            path=path,
            bytes_read=done,
            seconds=seconds,
            mib_per_s=mib_s,
            min_allowed_mib_per_s=min_mib_s,
        )

    buf = bytearray(CHUNK_BYTES)
    view = memoryview(buf)
    done = chunks = 0
    at_end = False
    start = time.perf_counter()
    elapsed = 0.0
    run.progress(1, f"reading {path}")
    # At least one chunk, however short the window: a measurement needs a read.
    while done < max_bytes and (elapsed < window_s or done == 0):
        want = min(CHUNK_BYTES, max_bytes - done)
        try:
            got = os.readv(fd, [view[:want]])
        except OSError as exc:
            elapsed = time.perf_counter() - start
            if exc.errno == errno.EIO and is_block_device:
                # The device itself could not return data it holds: that is the finding
                # this routine exists for, not a failure to run. On a file, EIO may come
                # from an NFS server, a FUSE daemon or a filesystem, not this drive's
                # media: "could not run" below.
                return Finished(
                    False,
                    f"read error (EIO) after {done} bytes of {path}: the "
                    f"device could not read its own data",
                    detail(done, elapsed),
                )
            why = ""
            if exc.errno == errno.EIO:
                why = " (a file, not a block device: the error may come from its filesystem)"
            raise Unavailable(f"reading {path} failed: {exc.strerror}{why}", path) from exc
        elapsed = time.perf_counter() - start
        if got == 0:
            at_end = True  # end of the file or device
            break
        done += got
        chunks += 1
        if chunks % REPORT_EVERY_CHUNKS == 0:
            run.keep(detail(done, elapsed))
            percent = max(done / max_bytes, elapsed / window_s) * 100
            run.progress(min(99, int(percent)), f"{done // MIB} MiB read")
    if done == 0:
        raise Unsupported(f"{path} is empty: nothing to read")
    if at_end and done < MIB:
        # The whole target was read in less than a chunk: too little to time (it would
        # be one system call, mostly its overhead), so no speed is claimed.
        raise Unsupported(f"{path} is only {done} bytes; a speed needs at least 1 MiB")
    final = detail(done, elapsed)
    run.keep(final)
    mib_s = final.mib_per_s
    if mib_s < min_mib_s:
        return Finished(
            False,
            f"read {done // MIB} MiB at {mib_s:.1f} MiB/s, below the "
            f"minimum of {min_mib_s:g} MiB/s",
            final,
        )
    return Finished(
        True, f"read {done / MIB:.0f} MiB at {mib_s:.1f} MiB/s (minimum {min_mib_s:g} MiB/s)", final
    )
