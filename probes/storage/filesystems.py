"""storage.filesystems: free space of each mounted filesystem (psutil), one result per mount.

    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/laptop-worn-battery/sys"))
    >>> [(r.subject, r.status) for r in filesystems(ctx)]
    [('/', 2), ('/boot/efi', 1)]                  # root 92 % used: WARN

A nearly full filesystem is something the person can fix themselves (free space), so
the messages say so. A root filesystem mounted read-only is a WARN: on a desktop or
laptop that usually means the kernel remounted it after disk errors (errors=remount-ro).
"""

from __future__ import annotations

from typing import Any

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unavailable, Unsupported
from probelink.probes.registry import STORAGE, telemetry
from probelink.probes.results import FAIL, PASS, WARN, check, errored, fact, result, worst
from probelink.v1 import probe_pb2, storage_pb2

# Filesystems that are not storage a person fills: memory-backed (tmpfs), kernel views
# (proc, sysfs, cgroup...), read-only images that are always 100 % full by design
# (squashfs snaps, erofs, ISO images), and container overlays whose space is the
# backing filesystem's, already reported under its own mount.
PSEUDO_FSTYPES = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "erofs",
        "fuse.gvfsd-fuse",
        "fuse.lxcfs",
        "fuse.portal",
        "fuse.snapfuse",
        "fusectl",
        "hugetlbfs",
        "iso9660",
        "mqueue",
        "nsfs",
        "overlay",
        "proc",
        "pstore",
        "ramfs",
        "securityfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
        "udf",
    }
)
# Mount points of images and container internals rather than of a person's storage.
PSEUDO_PREFIXES = (
    "/snap/",
    "/var/snap/",
    "/var/lib/docker/",
    "/var/lib/containers/",
    "/run/",
    "/proc/",
    "/sys/",
    "/dev/",
)


def _pseudo(part: Any) -> bool:
    if part.fstype in PSEUDO_FSTYPES:
        return True
    # Loop devices are image files (snaps, ISOs): their fullness is not the disk's.
    if str(part.device).startswith("/dev/loop"):
        return True
    return any(part.mountpoint.startswith(p) for p in PSEUDO_PREFIXES)


@telemetry("storage.filesystems", STORAGE, "Mounted filesystems: used space and read-only mounts")
def filesystems(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    if ctx.psutil is None:
        raise Unsupported(ctx.psutil_missing_reason)
    try:
        parts = ctx.psutil.disk_partitions(all=False)
    except AttributeError:
        raise Unsupported("psutil cannot list mounted filesystems here") from None
    results = []
    seen: dict[str, probe_pb2.ProbeResult] = {}
    for part in parts:
        if _pseudo(part):
            continue
        # Bind mounts and btrfs subvolumes show one filesystem several times; its space
        # is judged once, at its first mount point, and the others are noted.
        if part.device in seen:
            seen[part.device].facts.append(
                fact("also_mounted_at", shown_mountpoint(part.mountpoint))
            )
            continue
        r = _judge(ctx, part)
        seen[part.device] = r
        results.append(r)
    if not results:
        raise Unsupported("no mounted storage filesystems (only virtual ones)")
    return results


# Mount points that carry a person's login name: a USB stick mounted by the desktop
# (/media/alice/STICK, /run/media/alice/STICK) or a home on its own filesystem
# (/home/alice). The agent collects hardware facts, never user names: the name is
# replaced where the mount point is recorded, so it reaches no field, text or fact.
_USER_PARENTS = ("/media/", "/run/media/", "/home/", "/Users/")
USER_PLACEHOLDER = "<user>"


def shown_mountpoint(mountpoint: str) -> str:
    """`mountpoint` with a login name in it replaced by <user>."""
    for parent in _USER_PARENTS:
        if mountpoint.startswith(parent):
            rest = mountpoint[len(parent) :]
            name, sep, tail = rest.partition("/")
            if name:
                return f"{parent}{USER_PLACEHOLDER}{sep}{tail}"
    return mountpoint


def _judge(ctx: ProbeContext, part: Any) -> probe_pb2.ProbeResult:
    # Usage is read at the real path; only what is recorded is the shown one.
    real = part.mountpoint
    mount = shown_mountpoint(real)
    read_only = "ro" in str(part.opts).split(",")
    fs = storage_pb2.Filesystem(
        mountpoint=mount, device=part.device, fstype=part.fstype, read_only=read_only
    )
    try:
        usage = ctx.psutil.disk_usage(real) if ctx.psutil is not None else None
    except OSError as exc:
        problem = Unavailable(f"usage of {mount} could not be read: {exc.strerror or exc}", mount)
        return errored(problem, subject=mount, filesystem=fs)
    if usage is None:
        return errored(
            Unavailable(f"usage of {mount} is unknown", mount), subject=mount, filesystem=fs
        )
    fs.total_bytes, fs.used_bytes, fs.free_bytes = usage.total, usage.used, usage.free
    # psutil's percent is used / (used + free): blocks reserved for root count as not
    # available, which is what a person sees as "full" (and what df shows).
    fs.used_pct = float(usage.percent)

    warn_pct = ctx.limit("storage.fs_warn_used_pct", 90)
    fail_pct = ctx.limit("storage.fs_fail_used_pct", 98)
    free = _size(usage.free)
    checks = []
    if fs.used_pct >= fail_pct:
        checks.append(
            check(
                "storage.fs_full",
                FAIL,
                f"{mount} is {fs.used_pct:.1f} % full, only {free} free "
                f"(limit {fail_pct:g} %): free space now — empty the trash, remove "
                f"large files you no longer need, or move them elsewhere",
            )
        )
    elif fs.used_pct >= warn_pct:
        checks.append(
            check(
                "storage.fs_nearly_full",
                WARN,
                f"{mount} is {fs.used_pct:.1f} % full, {free} free "
                f"(warning at {warn_pct:g} %): free some space soon",
            )
        )
    if read_only and mount == "/":
        checks.append(
            check(
                "storage.root_read_only",
                WARN,
                "the root filesystem is mounted read-only; unless that was "
                "intended, the system may have remounted it after disk errors",
            )
        )
    status = worst(checks, PASS)
    evidence = f"{mount}: {fs.used_pct:.1f} % used, {free} free of {_size(usage.total)}"
    if read_only:
        evidence += ", mounted read-only"
    return result(status, evidence, subject=mount, checks=checks, filesystem=fs)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
