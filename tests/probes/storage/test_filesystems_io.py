"""storage.filesystems and storage.io_counters against the fixture machines' psutil snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from probelink.probes import registry
from probelink.probes.context import ProbeContext
from probelink.probes.psutil_source import PsutilSnapshot
from probelink.probes.runner import run_one
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import probe_pb2, storage_pb2
from probelink.v1.status_pb2 import STATUS_ERROR, STATUS_FAIL, STATUS_PASS, STATUS_SKIP, STATUS_WARN
from tests.conftest import MACHINES

FILESYSTEMS = registry.get("storage.filesystems")
IO = registry.get("storage.io_counters")


def machine(name: str, **kw: object) -> ProbeContext:
    return ProbeContext.for_machine(MACHINES / name / "sys", **kw)  # type: ignore[arg-type]


def summary(results: list[probe_pb2.ProbeResult]) -> list[tuple[str, int, list[str]]]:
    return [(r.subject, r.status, [c.code for c in r.checks]) for r in results]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # snaps (squashfs on loop devices, always 100 %) are not judged
        (
            "laptop-worn-battery",
            [("/", STATUS_WARN, ["storage.fs_nearly_full"]), ("/boot/efi", STATUS_PASS, [])],
        ),
        # the docker overlay is not judged; /data is 98.6 % full
        (
            "desktop-no-battery",
            [
                ("/", STATUS_PASS, []),
                ("/boot/efi", STATUS_PASS, []),
                ("/data", STATUS_FAIL, ["storage.fs_full"]),
            ],
        ),
        ("phone-charge-units", [("/", STATUS_PASS, []), ("/boot", STATUS_PASS, [])]),
        (
            "board-iio-typec",
            [("/", STATUS_WARN, ["storage.root_read_only"]), ("/boot", STATUS_PASS, [])],
        ),
    ],
)
def test_filesystems_per_machine(name: str, expected: list[tuple[str, int, list[str]]]) -> None:
    assert summary(run_one(FILESYSTEMS, machine(name))) == expected


def test_full_filesystem_whole_result() -> None:
    data = run_one(FILESYSTEMS, machine("desktop-no-battery"))[2]
    assert data.filesystem == storage_pb2.Filesystem(
        mountpoint="/data",
        device="/dev/sda1",
        fstype="xfs",
        total_bytes=4000383328256,
        used_bytes=3944377962496,
        free_bytes=56005365760,
        used_pct=98.6,
        read_only=False,
    )
    # Something the person can fix themselves: the message says how.
    assert data.checks[0].message == (
        "/data is 98.6 % full, only 52.2 GiB free (limit 98 %): free space now — empty the "
        "trash, remove large files you no longer need, or move them elsewhere"
    )


def test_fs_limits_from_context() -> None:
    ctx = machine("laptop-worn-battery", limits={"storage.fs_warn_used_pct": 95.0})
    assert summary(run_one(FILESYSTEMS, ctx))[0] == ("/", STATUS_PASS, [])


def snapshot_ctx(tmp_path: Path, data: dict[str, object]) -> ProbeContext:
    return ProbeContext(sysfs=SysfsRoot(tmp_path), psutil=PsutilSnapshot(data))


def test_bind_mounts_judged_once(tmp_path: Path) -> None:
    usage = {"total": 100, "used": 50, "free": 50, "percent": 50.0}
    ctx = snapshot_ctx(
        tmp_path,
        {
            "disk_partitions": [
                {"device": "/dev/sda2", "mountpoint": "/", "fstype": "btrfs", "opts": "rw"},
                {"device": "/dev/sda2", "mountpoint": "/home", "fstype": "btrfs", "opts": "rw"},
            ],
            "disk_usage": {"/": usage, "/home": usage},
        },
    )
    [r] = run_one(FILESYSTEMS, ctx)
    assert r.subject == "/"
    assert [(f.name, f.value) for f in r.facts] == [("also_mounted_at", "/home")]


def test_login_names_in_mount_points_never_leave_the_probe(tmp_path: Path) -> None:
    usage = {"total": 100, "used": 99, "free": 1, "percent": 99.0}
    ctx = snapshot_ctx(
        tmp_path,
        {
            "disk_partitions": [
                {
                    "device": "/dev/sdb1",
                    "mountpoint": "/media/alice/PHOTOS",
                    "fstype": "vfat",
                    "opts": "rw",
                },
                {
                    "device": "/dev/sdb1",
                    "mountpoint": "/media/alice/PHOTOS1",
                    "fstype": "vfat",
                    "opts": "rw",
                },
                {
                    "device": "/dev/sdc1",
                    "mountpoint": "/home/alice",
                    "fstype": "ext4",
                    "opts": "rw",
                },
                {"device": "/dev/sdd1", "mountpoint": "/home", "fstype": "ext4", "opts": "rw"},
            ],
            # Usage is read at the real mount points.
            "disk_usage": {"/media/alice/PHOTOS": usage, "/home/alice": usage, "/home": usage},
        },
    )
    stick, home, homes = run_one(FILESYSTEMS, ctx)
    assert (stick.subject, stick.filesystem.mountpoint) == ("/media/<user>/PHOTOS",) * 2
    assert [(f.name, f.value) for f in stick.facts] == [
        ("also_mounted_at", "/media/<user>/PHOTOS1")
    ]
    assert stick.status == STATUS_FAIL and "/media/<user>/PHOTOS is 99.0 % full" in (
        stick.checks[0].message
    )
    assert (home.subject, homes.subject) == ("/home/<user>", "/home")
    for r in (stick, home, homes):
        assert b"alice" not in r.SerializeToString()


def test_usage_that_cannot_be_read_is_error_for_that_mount_only(tmp_path: Path) -> None:
    ctx = snapshot_ctx(
        tmp_path,
        {
            "disk_partitions": [
                {"device": "/dev/sda1", "mountpoint": "/", "fstype": "ext4", "opts": "rw"},
                {"device": "/dev/sdb1", "mountpoint": "/mnt/gone", "fstype": "ext4", "opts": "rw"},
            ],
            "disk_usage": {"/": {"total": 100, "used": 10, "free": 90, "percent": 10.0}},
        },
    )
    root, gone = run_one(FILESYSTEMS, ctx)
    assert root.status == STATUS_PASS
    assert (gone.subject, gone.status, gone.error.kind) == (
        "/mnt/gone",
        STATUS_ERROR,
        probe_pb2.PROBE_ERROR_KIND_UNAVAILABLE,
    )


def test_psutil_missing_is_skip(tmp_path: Path) -> None:
    ctx = ProbeContext(
        sysfs=SysfsRoot(tmp_path), psutil=None, psutil_missing_reason="psutil is not installed"
    )
    for spec in (FILESYSTEMS, IO):
        [r] = run_one(spec, ctx)
        assert (r.status, r.evidence) == (STATUS_SKIP, "psutil is not installed")


def test_machine_without_snapshot_is_skip(tmp_path: Path) -> None:
    (tmp_path / "m" / "sys").mkdir(parents=True)
    ctx = ProbeContext.for_machine(tmp_path / "m" / "sys")
    for spec in (FILESYSTEMS, IO):
        [r] = run_one(spec, ctx)
        assert r.status == STATUS_SKIP
        assert "has no psutil snapshot" in r.evidence


def test_snapshot_without_these_calls_is_skip(tmp_path: Path) -> None:
    ctx = snapshot_ctx(tmp_path, {"boot_time": 0})
    assert summary(run_one(FILESYSTEMS, ctx)) == [("", STATUS_SKIP, [])]
    assert summary(run_one(IO, ctx)) == [("", STATUS_SKIP, [])]


def test_only_virtual_filesystems_is_skip(tmp_path: Path) -> None:
    ctx = snapshot_ctx(
        tmp_path,
        {
            "disk_partitions": [
                {"device": "overlay", "mountpoint": "/", "fstype": "overlay", "opts": "rw"}
            ]
        },
    )
    [r] = run_one(FILESYSTEMS, ctx)
    assert (r.status, r.evidence) == (
        STATUS_SKIP,
        "no mounted storage filesystems (only virtual ones)",
    )


@pytest.mark.parametrize(
    ("name", "disks"),
    [
        ("laptop-worn-battery", ["nvme0n1"]),  # loops and partitions are not disks
        ("desktop-no-battery", ["nvme0n1", "sda"]),
        ("phone-charge-units", ["mmcblk0"]),  # boot areas, partitions and zram folded
        ("board-iio-typec", ["mmcblk1"]),
    ],
)
def test_io_counters_per_machine(name: str, disks: list[str]) -> None:
    results = run_one(IO, machine(name))
    assert [(r.subject, r.status) for r in results] == [(d, STATUS_PASS) for d in disks]


def test_io_counters_whole_result() -> None:
    nvme, _ = run_one(IO, machine("desktop-no-battery"))
    assert nvme.disk_io == storage_pb2.DiskIo(
        name="nvme0n1",
        read_count=2210987,
        write_count=1408811,
        read_bytes=87011239936,
        write_bytes=101338427392,
        read_time_ms=402110,
        write_time_ms=2874410,
    )
    assert nvme.evidence == "nvme0n1: 81.0 GiB read, 94.4 GiB written since boot"


def test_io_counters_on_this_machine_are_informational() -> None:
    for r in run_one(IO, ProbeContext.for_machine()):
        assert r.status in (STATUS_PASS, STATUS_SKIP)


def test_snapshot_files_have_the_fields_psutil_returns() -> None:
    # The fixture files are in the format `psutil_source.capture()` writes: the same
    # field names as the named tuples of the psutil installed here.
    import psutil

    part_fields = frozenset(psutil.disk_partitions(all=True)[0]._fields)
    usage_fields = set(psutil.disk_usage("/")._fields)
    total = psutil.disk_io_counters(perdisk=False)
    assert total is not None
    io_fields = set(total._fields)
    for m in ("laptop-worn-battery", "desktop-no-battery", "phone-charge-units", "board-iio-typec"):
        snap = PsutilSnapshot.load(MACHINES / m / "psutil")
        assert {frozenset(p._fields) for p in snap.disk_partitions()} == {part_fields}, m
        for p in snap.disk_partitions():
            assert set(snap.disk_usage(p.mountpoint)._fields) == usage_fields, m
        for c in snap.disk_io_counters(perdisk=True).values():
            assert set(c._fields) == io_fields, m
