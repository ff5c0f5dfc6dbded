"""facts_of on real reports: the self-check run on the captured machines and smartctl outputs.

Missing must stay missing: a counter a drive did not report is absent from its map, and a
family without data is absent from the facts (with the reason kept apart), never a zero.
"""

from __future__ import annotations

import functools
from typing import Any

from probelink.agent.selfcheck import SelfCheckPlan, run_selfcheck
from probelink.probes.context import ProbeContext
from probelink.server.diagnosis.facts import facts_of
from probelink.v1 import probe_pb2, report_pb2, status_pb2
from tests.conftest import MACHINES, SMARTCTL


@functools.cache
def _report_bytes(machine: str, smartctl: tuple[str, ...]) -> bytes:
    paths = [SMARTCTL / f"{name}.json" for name in smartctl]
    ctx = ProbeContext.for_machine(MACHINES / machine / "sys", smartctl_json=paths or None)
    return run_selfcheck(ctx, SelfCheckPlan()).report.SerializeToString()


def machine_report(machine: str, *smartctl: str) -> report_pb2.Report:
    """The machine's real self-check report; `smartctl` names tests/fixtures/smartctl files."""
    return report_pb2.Report.FromString(_report_bytes(machine, smartctl))


def smartctl_drive(name: str) -> dict[str, Any]:
    """The smartctl-sourced drive fact from a laptop report fed only that one fixture."""
    drives = facts_of(machine_report("laptop-worn-battery", name))["storage"]
    (drive,) = [d for d in drives if d["source"] == "smartctl"]
    return dict(drive)


def test_worn_laptop_battery_is_its_typed_fields_only() -> None:
    facts = facts_of(machine_report("laptop-worn-battery"))
    assert facts["battery"] == {
        "name": "BAT0",
        "status": "discharging",
        "health": "unspecified",
        "technology": "Li-poly",
        "capacity_pct": 81.0,
        "health_pct": 62.0,
        "cycle_count": 734,
        "energy_full_wh": 35.34,
        "energy_full_design_wh": 57.0,
        "present": True,
    }  # no temp_celsius: the driver has none, so none is invented
    assert facts["families"] == ["battery", "storage", "sensors", "ports", "system"]
    assert facts["absent_families"] == {}
    assert facts["unreadable_families"] == {}
    assert facts["unreadable_parts"] == {}


def test_ata_drive_with_reallocated_and_pending_sectors() -> None:
    assert smartctl_drive("ata-reallocated") == {
        "name": "/dev/sda",
        "model": "ST2000DM008-2FR102",
        "kind": "ata",
        "source": "smartctl",
        "smart_overall": "passed",
        "status": "fail",
        "failing_attributes": [],
        "capacity_bytes": 2000398934016,
        "temperature": 34.0,
        "power_on_hours": 18723,
        "reallocated": 8,
        "pending": 2,
        "uncorrectable": 0,
        "reported_uncorrectable": 0,
        "crc_errors": 0,
    }


def test_crc_drive_lacks_the_counters_it_did_not_report() -> None:
    drive = smartctl_drive("ata-crc-errors")
    assert drive["crc_errors"] == 147
    # The fixture has no attribute 197/198: absent, not 0.
    assert "pending" not in drive and "uncorrectable" not in drive


def test_nvme_and_scsi_counters_under_their_fact_names() -> None:
    nvme = smartctl_drive("nvme-critical-warning")
    assert {
        k: nvme[k] for k in ("kind", "critical_warning", "percentage_used", "media_errors")
    } == {
        "kind": "nvme",
        "critical_warning": 4,
        "percentage_used": 41,
        "media_errors": 23,
    }
    scsi = smartctl_drive("scsi-grown-defects")
    assert {k: scsi[k] for k in ("kind", "grown_defects", "uncorrected_read_errors")} == {
        "kind": "scsi",
        "grown_defects": 37,
        "uncorrected_read_errors": 0,
    }


def test_unreadable_drive_is_listed_with_its_status_and_no_counters() -> None:
    assert smartctl_drive("open-failed") == {
        "name": "/dev/sdz",
        "model": "",
        "kind": "unspecified",
        "source": "smartctl",
        "smart_overall": "unknown",
        "status": "error",
        "failing_attributes": [],
    }


def test_desktop_has_no_battery_fact_and_says_why() -> None:
    facts = facts_of(machine_report("desktop-no-battery"))
    assert "battery" not in facts  # the mouse's battery is not the system battery
    assert facts["absent_families"] == {
        "battery": "no system battery: the only batteries in class/power_supply power "
        "peripherals (desktop or VM)"
    }
    assert "battery" not in facts["families"]


def test_cpu_temperature_skips_board_sensors_and_faulty_ones() -> None:
    laptop = facts_of(machine_report("laptop-worn-battery"))["sensors"]
    assert laptop["cpu_celsius"] == 52.0  # coretemp package; acpitz at -273.2 is faulty
    desktop = facts_of(machine_report("desktop-no-battery"))["sensors"]
    assert desktop["cpu_celsius"] == 41.25  # k10temp Tctl, not the board's CPUTIN


def test_report_without_whole_families_has_none_of_them() -> None:
    report = machine_report("laptop-worn-battery")
    kept = [r for r in report.results if r.category == status_pb2.CATEGORY_SYSTEM]
    del report.results[:]
    report.results.extend(kept)
    facts = facts_of(report)
    assert sorted(facts) == [
        "absent_families",
        "families",
        "system",
        "unreadable_families",
        "unreadable_parts",
    ]
    assert facts["families"] == ["system"]
    assert facts["absent_families"] == {}
    assert facts["unreadable_families"] == {}
    assert facts["unreadable_parts"] == {}


def test_battery_probe_error_is_unreadable_not_absent() -> None:
    report = machine_report("laptop-worn-battery")
    (battery,) = [r for r in report.results if r.category == status_pb2.CATEGORY_BATTERY]
    battery.ClearField("battery")
    battery.status = status_pb2.STATUS_ERROR
    battery.error.kind = probe_pb2.PROBE_ERROR_KIND_FILE_READ
    battery.error.message = "EIO reading class/power_supply/BAT0/energy_full"
    facts = facts_of(report)
    assert "battery" not in facts
    assert facts["unreadable_families"] == {
        "battery": "EIO reading class/power_supply/BAT0/energy_full"
    }
    # The whole family could not be judged: no part of it is named on its own.
    assert facts["unreadable_parts"] == {}


# --- storage without a SMART drive: absent, not unreadable -----------------------------------


def test_phone_storage_with_only_file_systems_is_absent_not_unreadable() -> None:
    # The phone's eMMC has no SMART drive: its storage results are file systems and I/O
    # counters, none of them failed. Nothing of this kind to judge, and nothing went wrong.
    facts = facts_of(machine_report("phone-charge-units"))
    assert "storage" not in facts
    assert facts["families"] == ["battery", "sensors", "ports", "system"]
    # The reason kept is the family's first result's evidence (no code reads it today).
    assert facts["absent_families"] == {"storage": "/: 56.7 % used, 23.9 GiB free of 58.0 GiB"}
    assert facts["unreadable_families"] == {}
    assert facts["unreadable_parts"] == {}


def test_phone_storage_with_a_failed_file_system_is_unreadable() -> None:
    # The same phone, its "/" file system edited to the probe's ERROR: no drive to judge and
    # something went wrong, so the family could not be read (not absent).
    report = machine_report("phone-charge-units")
    (root,) = [r for r in report.results if r.probe == "storage.filesystems" and r.subject == "/"]
    root.status = status_pb2.STATUS_ERROR
    root.error.kind = probe_pb2.PROBE_ERROR_KIND_UNAVAILABLE
    root.error.message = "usage of / could not be read: Input/output error"
    facts = facts_of(report)
    assert "storage" not in facts and "storage" not in facts["absent_families"]
    assert facts["unreadable_families"] == {
        "storage": "usage of / could not be read: Input/output error"
    }
    assert facts["unreadable_parts"] == {}


# --- unreadable_parts: one drive or battery of several could not be read ---------------------

OPEN_FAILED_WHY = (
    "smartctl could not open /dev/sdz: Smartctl open device: /dev/sdz failed: "
    "No such device; drive health could not be judged"
)


def test_a_drive_that_could_not_be_read_beside_a_readable_one_is_an_unreadable_part() -> None:
    facts = facts_of(machine_report("laptop-worn-battery", "open-failed"))
    # The family is judged (the NVMe drive was read) and the failed drive is still listed...
    assert [(d["name"], d["status"]) for d in facts["storage"]] == [
        ("nvme0", "pass"),
        ("/dev/sdz", "error"),
    ]
    assert "storage" in facts["families"]
    assert facts["unreadable_families"] == {}
    # ...and named on its own, with the probe's reason.
    assert facts["unreadable_parts"] == {"storage": [("/dev/sdz", OPEN_FAILED_WHY)]}


def _open_failed(report: report_pb2.Report) -> probe_pb2.ProbeResult:
    (failed,) = [r for r in report.results if r.status == status_pb2.STATUS_ERROR]
    return failed


def test_an_unreadable_part_is_named_by_subject_then_data_name_then_probe() -> None:
    # The failed smartctl result edited to lose its subject, then its typed data too.
    report = machine_report("laptop-worn-battery", "open-failed")
    _open_failed(report).subject = ""
    assert facts_of(report)["unreadable_parts"] == {"storage": [("/dev/sdz", OPEN_FAILED_WHY)]}
    _open_failed(report).ClearField("storage_device")
    assert facts_of(report)["unreadable_parts"] == {"storage": [("storage.smart", OPEN_FAILED_WHY)]}
    # Without an error message, the result's evidence is the reason.
    _open_failed(report).ClearField("error")
    assert facts_of(report)["unreadable_parts"] == {
        "storage": [
            (
                "storage.smart",
                "/dev/sdz: could not read: smartctl could not open /dev/sdz: Smartctl open "
                "device: /dev/sdz failed: No such device; drive health could not be judged",
            )
        ]
    }


def test_a_second_battery_that_could_not_be_read_is_an_unreadable_part() -> None:
    # The laptop's real BAT0 result copied as a BAT1 the probe could not read (as its
    # errored() result: subject, the battery's name, STATUS_ERROR and the error).
    report = machine_report("laptop-worn-battery")
    (bat0,) = [r for r in report.results if r.HasField("battery")]
    bat1 = report.results.add()
    bat1.CopyFrom(bat0)
    bat1.subject = bat1.battery.name = "BAT1"
    bat1.status = status_pb2.STATUS_ERROR
    bat1.error.kind = probe_pb2.PROBE_ERROR_KIND_FILE_READ
    bat1.error.message = "EIO reading class/power_supply/BAT1/energy_full"
    facts = facts_of(report)
    assert facts["battery"]["name"] == "BAT0"  # the readable battery is judged
    assert facts["unreadable_families"] == {}
    assert facts["unreadable_parts"] == {
        "battery": [("BAT1", "EIO reading class/power_supply/BAT1/energy_full")]
    }


def test_only_drives_and_batteries_are_parts() -> None:
    # Sensors whose one chip failed beside others: the family is judged as a whole, no part
    # is named (a sensor is not a part a desk replaces on its own).
    report = machine_report("laptop-worn-battery")
    sensor = next(r for r in report.results if r.category == status_pb2.CATEGORY_SENSORS)
    sensor.status = status_pb2.STATUS_ERROR
    sensor.error.message = "EIO reading hwmon"
    facts = facts_of(report)
    assert "sensors" in facts["families"]
    assert facts["unreadable_parts"] == {}


# --- known bugs (reported to the lead; these fail until facts.py is fixed) -------------------


def test_a_file_system_that_could_not_be_read_is_not_an_unreadable_drive() -> None:
    # The laptop with its /boot/efi usage edited to what the file-system probe gives when
    # statvfs fails (probes/storage/filesystems.py: errored(..., subject=mount)). No storage
    # rule reads file systems, and a mount point is not a drive: the drives were all read.
    report = machine_report("laptop-worn-battery")
    (efi,) = [r for r in report.results if r.subject == "/boot/efi"]
    efi.status = status_pb2.STATUS_ERROR
    efi.error.kind = probe_pb2.PROBE_ERROR_KIND_UNAVAILABLE
    efi.error.message = "usage of /boot/efi could not be read: Permission denied"
    facts = facts_of(report)
    assert facts["unreadable_parts"] == {}, (
        "BUG facts.py facts_of/_ONE_PART_EACH: every failed result of the storage family "
        "becomes an 'unreadable part', so a file system whose usage could not be read is "
        "reported as an unreadable drive and makes a healthy report could_not_judge; only "
        "failed storage_device (and system battery) results are parts. Got "
        f"{facts['unreadable_parts']}"
    )


def _unreadable_mouse_battery(report: report_pb2.Report) -> report_pb2.Report:
    """`report` plus the desktop's real mouse battery result, edited to the probe's ERROR
    (probes/battery/power_supply.py _peripheral_battery: errored(..., battery=info))."""
    desktop = machine_report("desktop-no-battery")
    (mouse,) = [r for r in desktop.results if r.HasField("battery")]
    mouse.status = status_pb2.STATUS_ERROR
    mouse.error.kind = probe_pb2.PROBE_ERROR_KIND_FILE_READ
    mouse.error.message = "EIO reading class/power_supply/hid-<address>-battery/capacity"
    report.results.add().CopyFrom(mouse)
    return report


def test_a_peripheral_battery_that_could_not_be_read_is_not_the_system_battery() -> None:
    # A mouse's battery is never judged by the system battery's rules (is_system_battery);
    # failing to read it says nothing about the laptop's battery or the desktop's lack of one.
    laptop = facts_of(_unreadable_mouse_battery(machine_report("laptop-worn-battery")))
    desktop = facts_of(_unreadable_mouse_battery(machine_report("desktop-no-battery")))
    got = (
        laptop["unreadable_parts"],
        desktop["unreadable_families"],
        sorted(desktop["absent_families"]),
    )
    assert got == ({}, {}, ["battery"]), (
        "BUG facts.py facts_of: a failed peripheral (scope Device) battery counts as a failed "
        "system battery: beside a readable BAT0 it is an 'unreadable part', and on a desktop "
        "it makes the battery family unreadable instead of absent. Got "
        f"{got}"
    )
