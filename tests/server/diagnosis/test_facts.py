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
    assert sorted(facts) == ["absent_families", "families", "system", "unreadable_families"]
    assert facts["families"] == ["system"]
    assert facts["absent_families"] == {} and facts["unreadable_families"] == {}


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
