"""storage.smart: verdicts on captured outputs, and the live path through real programs.

The live path runs the real SubprocessRunner against small shell scripts named
`smartctl` in a temporary PATH (absent, hanging, printing garbage, or replaying a
captured output), and against the real smartctl when this machine has it.
"""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path

import pytest

from probelink.probes import registry
from probelink.probes.commands import SubprocessRunner
from probelink.probes.context import LIVE_SYSFS, ProbeContext
from probelink.probes.runner import run_one
from probelink.probes.storage.smart import CAPTURED, NOT_INSTALLED
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import probe_pb2, storage_pb2
from probelink.v1.status_pb2 import (
    STATUS_ERROR,
    STATUS_FAIL,
    STATUS_PASS,
    STATUS_SKIP,
    STATUS_WARN,
)
from tests.conftest import MACHINES, SMARTCTL

SPEC = registry.get("storage.smart")
PARSE = probe_pb2.PROBE_ERROR_KIND_PARSE
UNAVAILABLE = probe_pb2.PROBE_ERROR_KIND_UNAVAILABLE
TIMEOUT = probe_pb2.PROBE_ERROR_KIND_TIMEOUT


def judge_files(tmp_path: Path, *paths: Path, **limits: float) -> list[probe_pb2.ProbeResult]:
    ctx = ProbeContext(
        sysfs=SysfsRoot(tmp_path),
        smartctl_json=list(paths),
        limits={f"storage.{k}": v for k, v in limits.items()},
    )
    return run_one(SPEC, ctx)


def judge_one(tmp_path: Path, name: str, **limits: float) -> probe_pb2.ProbeResult:
    [r] = judge_files(tmp_path, SMARTCTL / name, **limits)
    return r


def codes(r: probe_pb2.ProbeResult) -> list[tuple[str, int]]:
    return [(c.code, c.status) for c in r.checks]


@pytest.mark.parametrize(
    ("fixture", "status", "expected"),
    [
        ("nvme-healthy.json", STATUS_PASS, []),
        ("ata-healthy.json", STATUS_PASS, []),
        (
            "nvme-critical-warning.json",
            STATUS_FAIL,
            [
                ("storage.nvme_critical_warning", STATUS_FAIL),
                ("storage.nvme_media_errors", STATUS_FAIL),
            ],
        ),
        ("nvme-worn.json", STATUS_WARN, [("storage.nvme_wear", STATUS_WARN)]),
        # SMART overall PASSED, but the counters show a drive losing sectors.
        (
            "ata-reallocated.json",
            STATUS_FAIL,
            [
                ("storage.ata_reallocated", STATUS_WARN),
                ("storage.ata_pending", STATUS_FAIL),
                ("storage.error_log", STATUS_WARN),
            ],
        ),
        (
            "ata-crc-errors.json",
            STATUS_WARN,
            [
                ("storage.ata_crc_errors", STATUS_WARN),
                ("storage.error_log", STATUS_WARN),
            ],
        ),
        ("scsi-grown-defects.json", STATUS_WARN, [("storage.scsi_grown_defects", STATUS_WARN)]),
        ("open-failed.json", STATUS_ERROR, []),
    ],
)
def test_verdict_per_fixture(
    tmp_path: Path, fixture: str, status: int, expected: list[tuple[str, int]]
) -> None:
    r = judge_one(tmp_path, fixture)
    assert (r.status, codes(r)) == (status, expected)
    assert r.probe == "storage.smart"
    assert r.WhichOneof("data") == "storage_device"


def test_healthy_drives_are_not_flagged(tmp_path: Path) -> None:
    nvme = judge_one(tmp_path, "nvme-healthy.json")
    assert nvme.evidence == (
        "/dev/nvme0 (Samsung SSD 980 PRO 1TB): SMART overall PASSED, 3 % of endurance used, "
        "spare 100 %, 2210 power-on hours, 38 °C"
    )
    assert list(nvme.checks) == []
    assert not nvme.HasField("error")


def test_nvme_critical_warning_whole_message(tmp_path: Path) -> None:
    r = judge_one(tmp_path, "nvme-critical-warning.json")
    assert r.storage_device == storage_pb2.StorageDevice(
        name="/dev/nvme0",
        source=storage_pb2.STORAGE_SOURCE_SMARTCTL,
        protocol=storage_pb2.STORAGE_PROTOCOL_NVME,
        model="WDC PC SN530 SDBPNPZ-512G-1006",
        serial_number="20294T801234",
        firmware_version="21160001",
        capacity_bytes=512110190592,
        smart_overall=storage_pb2.SMART_OVERALL_FAILED,
        smartctl_exit_status=8,
        temp_celsius=47,
        power_on_hours=9954,
        power_cycle_count=2877,
        nvme_critical_warning=4,
        nvme_percentage_used_pct=41,
        nvme_available_spare_pct=100,
        nvme_available_spare_threshold_pct=10,
        nvme_media_errors=23,
        nvme_error_log_entries=57,
        nvme_unsafe_shutdowns=212,
    )
    assert r.checks[0].message == (
        "the drive raised an NVMe critical warning (0x04): NVM subsystem reliability is degraded"
    )


def test_ata_reallocated_whole_message_and_hours_decoded(tmp_path: Path) -> None:
    r = judge_one(tmp_path, "ata-reallocated.json")
    assert r.storage_device == storage_pb2.StorageDevice(
        name="/dev/sda",
        source=storage_pb2.STORAGE_SOURCE_SMARTCTL,
        protocol=storage_pb2.STORAGE_PROTOCOL_ATA,
        model="ST2000DM008-2FR102",
        serial_number="ZFL1ABCD",
        firmware_version="0001",
        capacity_bytes=2000398934016,
        smart_overall=storage_pb2.SMART_OVERALL_PASSED,
        smartctl_exit_status=64,
        temp_celsius=34,
        power_on_hours=18723,
        power_cycle_count=2361,
        ata_reallocated_sectors=8,
        ata_pending_sectors=2,
        ata_offline_uncorrectable=0,
        ata_reported_uncorrectable=0,
        ata_udma_crc_errors=0,
    )
    # The drive's own PASSED stays visible, beside the counters that overrule it (FAIL).
    assert r.evidence == (
        "/dev/sda (ST2000DM008-2FR102): SMART overall PASSED, 8 reallocated sectors, "
        "2 pending sectors, 18723 power-on hours, 34 °C"
    )
    assert r.status == STATUS_FAIL


def test_crc_errors_blame_the_cable_not_the_media(tmp_path: Path) -> None:
    r = judge_one(tmp_path, "ata-crc-errors.json")
    assert r.checks[0].message == (
        "147 transfers between drive and computer were corrupted (UDMA CRC errors): check or "
        "replace the SATA cable and connector; this is not a fault of the disk's media"
    )


def test_open_failed_is_could_not_judge_never_failing(tmp_path: Path) -> None:
    r = judge_one(tmp_path, "open-failed.json")
    assert (r.status, r.subject, r.error.kind) == (STATUS_ERROR, "/dev/sdz", UNAVAILABLE)
    assert r.error.message == (
        "smartctl could not open /dev/sdz: Smartctl open device: /dev/sdz failed: "
        "No such device; drive health could not be judged"
    )


def test_limits_come_from_context(tmp_path: Path) -> None:
    assert judge_one(tmp_path, "nvme-worn.json", nvme_wear_warn_pct=95).status == STATUS_PASS
    r = judge_one(tmp_path, "ata-reallocated.json", reallocated_fail=5)
    assert ("storage.ata_reallocated", STATUS_FAIL) in codes(r)
    r = judge_one(tmp_path, "scsi-grown-defects.json", grown_defects_fail=30)
    assert codes(r) == [("storage.scsi_grown_defects", STATUS_FAIL)]


def edited(
    tmp_path: Path,
    fixture: str,
    change: dict[str, object],
    section: str = "nvme_smart_health_information_log",
) -> Path:
    data = json.loads((SMARTCTL / fixture).read_text())
    data[section].update(change)
    out = tmp_path / f"edited-{fixture}"
    out.write_text(json.dumps(data))
    return out


def test_worn_out_and_spare_below_threshold(tmp_path: Path) -> None:
    path = edited(tmp_path, "nvme-worn.json", {"percentage_used": 112, "available_spare": 8})
    [r] = judge_files(tmp_path, path)
    assert codes(r) == [
        ("storage.nvme_worn_out", STATUS_FAIL),
        ("storage.nvme_spare_low", STATUS_FAIL),
    ]


def test_few_media_errors_warn(tmp_path: Path) -> None:
    [r] = judge_files(tmp_path, edited(tmp_path, "nvme-healthy.json", {"media_errors": 2}))
    assert codes(r) == [("storage.nvme_media_errors", STATUS_WARN)]


def test_hot_drive_warns(tmp_path: Path) -> None:
    path = edited(tmp_path, "nvme-healthy.json", {"current": 78}, section="temperature")
    [r] = judge_files(tmp_path, path)
    assert codes(r) == [("storage.temperature_high", STATUS_WARN)]


def test_smart_failed_on_ata(tmp_path: Path) -> None:
    data = json.loads((SMARTCTL / "ata-healthy.json").read_text())
    data["smart_status"]["passed"] = False
    data["smartctl"]["exit_status"] = 8
    path = tmp_path / "failed.json"
    path.write_text(json.dumps(data))
    [r] = judge_files(tmp_path, path)
    assert codes(r) == [("storage.smart_failed", STATUS_FAIL)]


def test_smartctl_that_could_not_query_is_an_error(tmp_path: Path) -> None:
    # What smartctl 7.3 prints for a virtio disk: exit bit 0, no device data.
    path = tmp_path / "vda.json"
    path.write_text(
        json.dumps(
            {
                "json_format_version": [1, 0],
                "smartctl": {
                    "version": [7, 3],
                    "argv": ["smartctl", "--json", "-x", "/dev/vda"],
                    "messages": [
                        {"string": "/dev/vda: Unable to detect device type", "severity": "error"}
                    ],
                    "exit_status": 1,
                },
            }
        )
    )
    [r] = judge_files(tmp_path, path)
    assert (r.status, r.error.kind, r.subject) == (STATUS_ERROR, UNAVAILABLE, "/dev/vda")
    assert "Unable to detect device type" in r.error.message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not json at all", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (None, "truncated"),  # the first half of a real output
    ],
)
def test_bad_file_is_parse_error_and_hides_no_other(
    tmp_path: Path, content: bytes | None, reason: str
) -> None:
    whole = (SMARTCTL / "ata-healthy.json").read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_bytes(content if content is not None else whole[: len(whole) // 2])
    broken, healthy = judge_files(tmp_path, bad, SMARTCTL / "ata-healthy.json")
    assert (broken.status, broken.error.kind, broken.subject) == (STATUS_ERROR, PARSE, "bad")
    assert reason in broken.error.message
    assert healthy.status == STATUS_PASS


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    [r] = judge_files(tmp_path, tmp_path / "nope.json")
    assert (r.status, r.error.kind) == (STATUS_ERROR, UNAVAILABLE)


# --- the live path: real subprocesses ---------------------------------------------------

SCAN: dict[str, object] = {
    "json_format_version": [1, 0],
    "smartctl": {"version": [7, 3], "argv": ["smartctl", "--json", "--scan"], "exit_status": 0},
    "devices": [
        {"name": "/dev/sda", "info_name": "/dev/sda [SAT]", "type": "sat", "protocol": "ATA"},
        {"name": "/dev/sdz", "info_name": "/dev/sdz", "type": "scsi", "protocol": "SCSI"},
    ],
}


def fake_smartctl(tmp_path: Path, body: str) -> ProbeContext:
    """A live context whose `smartctl` is a shell script alone on PATH running `body`."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "smartctl"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return ProbeContext(
        sysfs=SysfsRoot(LIVE_SYSFS), commands=SubprocessRunner(path=str(bindir)), timeout_s=2.0
    )


def replaying(
    tmp_path: Path, outputs: dict[str, tuple[str, int]], scan: Mapping[str, object] = SCAN
) -> ProbeContext:
    """A smartctl that prints `scan` for --scan and a captured output per device."""
    (tmp_path / "scan.json").write_text(json.dumps(scan))
    cases = "".join(
        f'  {dev}) echo "$*" >> "{tmp_path}/calls"; cat "{SMARTCTL / name}"; exit {rc} ;;\n'
        for dev, (name, rc) in outputs.items()
    )
    return fake_smartctl(
        tmp_path,
        (
            f'case "$*" in *--scan*) cat "{tmp_path}/scan.json"; exit 0 ;; esac\n'
            "for last; do :; done\n"
            f'case "$last" in\n{cases}  *) exit 2 ;;\nesac\n'
        ),
    )


def test_live_judges_each_scanned_drive(tmp_path: Path) -> None:
    ctx = replaying(
        tmp_path, {"/dev/sda": ("ata-healthy.json", 0), "/dev/sdz": ("open-failed.json", 2)}
    )
    sda, sdz = run_one(SPEC, ctx)
    assert (sda.subject, sda.status) == ("/dev/sda", STATUS_PASS)
    assert (sdz.subject, sdz.status, sdz.error.kind) == ("/dev/sdz", STATUS_ERROR, UNAVAILABLE)
    # The scan's device type is passed on, so drives behind bridges/RAID are reached;
    # -n standby keeps a spun-down disk asleep.
    assert (tmp_path / "calls").read_text().splitlines() == [
        "--json -x -n standby -d sat /dev/sda",
        "--json -x -n standby -d scsi /dev/sdz",
    ]


def test_live_drive_in_standby_is_skip_never_error(tmp_path: Path) -> None:
    # /dev/sda is asleep: smartctl -n standby leaves it so and exits 2; /dev/sdz is read.
    ctx = replaying(
        tmp_path, {"/dev/sda": ("ata-standby.json", 2), "/dev/sdz": ("nvme-healthy.json", 0)}
    )
    sda, sdz = run_one(SPEC, ctx)
    sda.ClearField("duration")
    assert sda == probe_pb2.ProbeResult(
        probe="storage.smart",
        category=sda.category,
        kind=sda.kind,
        status=STATUS_SKIP,
        subject="/dev/sda",
        evidence="/dev/sda: in standby: not checked, so as not to wake it",
        facts=[probe_pb2.Fact(name="power_mode", value="STANDBY")],
        storage_device=storage_pb2.StorageDevice(
            name="/dev/sda",
            source=storage_pb2.STORAGE_SOURCE_SMARTCTL,
            protocol=storage_pb2.STORAGE_PROTOCOL_ATA,
            smart_overall=storage_pb2.SMART_OVERALL_UNKNOWN,
            smartctl_exit_status=2,
        ),
    )
    assert sdz.status == STATUS_PASS
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0] == "--json -x -n standby -d sat /dev/sda"


def test_captured_standby_output_is_skip(tmp_path: Path) -> None:
    r = judge_one(tmp_path, "ata-standby.json")
    assert (r.status, r.evidence, list(r.checks)) == (
        STATUS_SKIP,
        "/dev/sda: in standby: not checked, so as not to wake it",
        [],
    )
    assert not r.HasField("error")


def test_live_smartctl_absent_is_skip(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    ctx = ProbeContext(sysfs=SysfsRoot(LIVE_SYSFS), commands=SubprocessRunner(path=str(empty)))
    [r] = run_one(SPEC, ctx)
    assert (r.status, r.evidence) == (STATUS_SKIP, NOT_INSTALLED)


def test_live_smartctl_hanging_is_timeout(tmp_path: Path) -> None:
    ctx = fake_smartctl(tmp_path, "exec sleep 30\n")
    ctx.timeout_s = 0.5
    [r] = run_one(SPEC, ctx)
    assert (r.status, r.error.kind) == (STATUS_ERROR, TIMEOUT)


def test_live_one_hanging_drive_hides_no_other(tmp_path: Path) -> None:
    ctx = replaying(tmp_path, {"/dev/sdz": ("nvme-healthy.json", 0)})
    script = tmp_path / "bin" / "smartctl"
    # /dev/sda hangs; /dev/sdz answers.
    hang = 'case "$last" in\n  /dev/sda) exec sleep 30 ;;\n'
    script.write_text(script.read_text().replace('case "$last" in\n', hang))
    ctx.timeout_s = 1.5
    sda, sdz = run_one(SPEC, ctx)
    assert (sda.subject, sda.status, sda.error.kind) == ("/dev/sda", STATUS_ERROR, TIMEOUT)
    assert (sdz.status, sdz.storage_device.model) == (STATUS_PASS, "Samsung SSD 980 PRO 1TB")


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("echo 'smartctl: unrecognized option --json'", "not valid JSON"),
        ('printf \'{"devices": [{"name": "/dev/sda"\'', "truncated"),
        ("true", "smartctl printed nothing"),
    ],
)
def test_live_scan_bad_output_is_parse_error(tmp_path: Path, output: str, reason: str) -> None:
    [r] = run_one(SPEC, fake_smartctl(tmp_path, output + "\n"))
    assert (r.status, r.error.kind) == (STATUS_ERROR, PARSE)
    assert reason in r.error.message


def test_live_drive_bad_output_is_parse_error(tmp_path: Path) -> None:
    ctx = replaying(tmp_path, {"/dev/sda": ("ata-healthy.json", 0)})
    script = tmp_path / "bin" / "smartctl"
    script.write_text(
        script.read_text().replace(
            'case "$last" in\n', 'case "$last" in\n  /dev/sdz) echo \'{"smartctl":\' ;;\n'
        )
    )
    sda, sdz = run_one(SPEC, ctx)
    assert sda.status == STATUS_PASS
    assert (sdz.subject, sdz.status, sdz.error.kind) == ("/dev/sdz", STATUS_ERROR, PARSE)


def test_live_scan_without_devices_is_skip(tmp_path: Path) -> None:
    scan: dict[str, object] = {"json_format_version": [1, 0], "smartctl": {"exit_status": 0}}
    [r] = run_one(SPEC, replaying(tmp_path, {}, scan=scan))
    assert (r.status, r.evidence) == (STATUS_SKIP, "smartctl found no devices")


def test_captured_machine_never_runs_this_hosts_smartctl(tmp_path: Path) -> None:
    ctx = replaying(tmp_path, {"/dev/sda": ("ata-healthy.json", 0)})
    ctx.sysfs = SysfsRoot(MACHINES / "desktop-no-battery" / "sys")
    [r] = run_one(SPEC, ctx)
    assert (r.status, r.evidence) == (STATUS_SKIP, CAPTURED)
    assert not (tmp_path / "calls").exists()


@pytest.mark.skipif(shutil.which("smartctl") is None, reason="smartctl is not installed here")
def test_real_smartctl_on_this_machine_never_invents_a_failure(tmp_path: Path) -> None:
    # A VM: smartctl finds no drive it knows (SKIP) or cannot open one (ERROR).
    ctx = ProbeContext(sysfs=SysfsRoot(LIVE_SYSFS), commands=SubprocessRunner(), timeout_s=10)
    results = run_one(SPEC, ctx)
    assert results
    assert all(r.status != STATUS_FAIL for r in results)
    for r in results:
        assert r.status in (STATUS_SKIP, STATUS_ERROR) or r.HasField("storage_device")
