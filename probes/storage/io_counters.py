"""storage.io_counters: cumulative I/O of each physical disk since boot (psutil).

    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/desktop-no-battery/sys"))
    >>> [r.subject for r in io_counters(ctx)]
    ['nvme0n1', 'sda']

Informational (PASS): the counters are the data for trends on the server, not a verdict.
"""

from __future__ import annotations

import re
from typing import Any

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.registry import STORAGE, telemetry
from probelink.probes.results import PASS, result
from probelink.v1 import probe_pb2, storage_pb2

# Virtual block devices (loop images, RAM disks, zram swap, device-mapper, md RAID, nbd)
# carry I/O that the physical disks below them already count.
VIRTUAL = re.compile(r"(loop|ram|zram|dm-|md|nbd)\d+")
# What follows a disk's name in the name of one of its partitions (sda1, nvme0n1p2,
# mmcblk0p1) or of an eMMC's hardware boot areas (mmcblk0boot0, mmcblk0rpmb).
PARTITION_SUFFIX = re.compile(r"p?\d+|boot\d+|rpmb")


@telemetry("storage.io_counters", STORAGE, "Disk I/O counters since boot")
def io_counters(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    if ctx.psutil is None:
        raise Unsupported(ctx.psutil_missing_reason)
    try:
        counters: dict[str, Any] = ctx.psutil.disk_io_counters(perdisk=True) or {}
    except AttributeError:
        raise Unsupported("psutil has no disk I/O counters here") from None
    disks = [n for n in sorted(counters) if not VIRTUAL.fullmatch(n)]
    # Partitions are counted in their disk's figures too; one result per disk.
    whole = [n for n in disks if not _partition_of_listed(n, disks)]
    if not whole:
        raise Unsupported("no physical disks in the I/O counters")
    return [_result(name, counters[name]) for name in whole]


def _partition_of_listed(name: str, disks: list[str]) -> bool:
    return any(
        name != d and name.startswith(d) and PARTITION_SUFFIX.fullmatch(name[len(d) :])
        for d in disks
    )


def _result(name: str, c: Any) -> probe_pb2.ProbeResult:
    io = storage_pb2.DiskIo(
        name=name,
        read_count=c.read_count,
        write_count=c.write_count,
        read_bytes=c.read_bytes,
        write_bytes=c.write_bytes,
        read_time_ms=c.read_time,
        write_time_ms=c.write_time,
    )
    gib = 1024**3
    evidence = (
        f"{name}: {c.read_bytes / gib:.1f} GiB read, {c.write_bytes / gib:.1f} GiB "
        f"written since boot"
    )
    return result(PASS, evidence, subject=name, disk_io=io)
