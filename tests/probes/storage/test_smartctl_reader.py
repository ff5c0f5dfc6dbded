"""The smartctl JSON reader against every captured output, and against bad output.

The outputs in tests/fixtures/smartctl/ are written to smartctl 7.3's JSON schema
(json_format_version 1.0: smartctl/nvmeprint.cpp, ataprint.cpp, scsiprint.cpp), one per
case the probe must tell apart. A real one is captured with
`smartctl --json -x /dev/DEVICE > name.json` (as root) and can be added beside them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from probelink.probes.errors import ParseError
from probelink.probes.readers.smartctl import (
    AtaAttribute,
    AtaCounters,
    FieldError,
    NvmeHealth,
    ScannedDevice,
    ScsiHealth,
    SmartctlMessage,
    SmartctlReport,
    parse_report,
    parse_scan,
)
from tests.conftest import SMARTCTL


def load(name: str) -> SmartctlReport:
    path = SMARTCTL / name
    return parse_report(path.read_bytes(), str(path))


def doc(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SMARTCTL / name).read_text())
    return data


def argv(dev: str) -> tuple[str, ...]:
    return ("smartctl", "--json", "-x", dev)


V73 = "7.3"  # smartctl.version of every fixture; json_format_version is "1.0"


def test_nvme_healthy() -> None:
    assert load("nvme-healthy.json") == SmartctlReport(
        device_name="/dev/nvme0",
        device_info_name="/dev/nvme0",
        device_type="nvme",
        protocol="NVMe",
        exit_status=0,
        argv=argv("/dev/nvme0"),
        smartctl_version=V73,
        json_format_version="1.0",
        model="Samsung SSD 980 PRO 1TB",
        serial_number="S5GXNX0T412345A",
        firmware_version="5B2QGXA7",
        capacity_bytes=1000204886016,
        smart_passed=True,
        temp_celsius=38,
        power_on_hours=2210,
        power_cycle_count=431,
        nvme=NvmeHealth(
            critical_warning=0,
            temp_celsius=38,
            available_spare_pct=100,
            available_spare_threshold_pct=10,
            percentage_used_pct=3,
            media_errors=0,
            error_log_entries=0,
            unsafe_shutdowns=14,
            power_on_hours=2210,
            power_cycles=431,
        ),
    )


def test_nvme_critical_warning() -> None:
    report = load("nvme-critical-warning.json")
    assert report == SmartctlReport(
        device_name="/dev/nvme0",
        device_info_name="/dev/nvme0",
        device_type="nvme",
        protocol="NVMe",
        exit_status=8,
        argv=argv("/dev/nvme0"),
        smartctl_version=V73,
        json_format_version="1.0",
        model="WDC PC SN530 SDBPNPZ-512G-1006",
        serial_number="20294T801234",
        firmware_version="21160001",
        capacity_bytes=512110190592,
        smart_passed=False,
        temp_celsius=47,
        power_on_hours=9954,
        power_cycle_count=2877,
        nvme=NvmeHealth(
            critical_warning=4,
            temp_celsius=47,
            available_spare_pct=100,
            available_spare_threshold_pct=10,
            percentage_used_pct=41,
            media_errors=23,
            error_log_entries=57,
            unsafe_shutdowns=212,
            power_on_hours=9954,
            power_cycles=2877,
        ),
    )
    assert report.nvme is not None
    assert report.nvme.critical_warnings == ("NVM subsystem reliability is degraded",)


def test_nvme_critical_warning_bits_decoded() -> None:
    every = NvmeHealth(critical_warning=0xFF)
    assert every.critical_warnings == (
        "available spare is below its threshold",
        "temperature is above or below its threshold",
        "NVM subsystem reliability is degraded",
        "media is in read-only mode",
        "volatile memory backup device has failed",
        "persistent memory region is read-only",
        "unknown warning bits 0xc0",
    )
    assert NvmeHealth(critical_warning=0).critical_warnings == ()


def test_nvme_worn() -> None:
    assert load("nvme-worn.json") == SmartctlReport(
        device_name="/dev/nvme1",
        device_info_name="/dev/nvme1",
        device_type="nvme",
        protocol="NVMe",
        exit_status=0,
        argv=argv("/dev/nvme1"),
        smartctl_version=V73,
        json_format_version="1.0",
        model="INTEL SSDPEKNW010T8",
        serial_number="BTNH92340ABC1P0B",
        firmware_version="002C",
        capacity_bytes=1024209543168,
        smart_passed=True,
        temp_celsius=41,
        power_on_hours=21873,
        power_cycle_count=1620,
        nvme=NvmeHealth(
            critical_warning=0,
            temp_celsius=41,
            available_spare_pct=34,
            available_spare_threshold_pct=10,
            percentage_used_pct=92,
            media_errors=0,
            error_log_entries=4,
            unsafe_shutdowns=96,
            power_on_hours=21873,
            power_cycles=1620,
        ),
    )


# The attribute table is compared row by row where it matters (below); the rest whole.
def test_ata_reallocated() -> None:
    report = load("ata-reallocated.json")
    assert dataclasses.replace(report, ata_attributes=()) == SmartctlReport(
        device_name="/dev/sda",
        device_info_name="/dev/sda [SAT]",
        device_type="sat",
        protocol="ATA",
        exit_status=64,
        argv=argv("/dev/sda"),
        smartctl_version=V73,
        json_format_version="1.0",
        model="ST2000DM008-2FR102",
        serial_number="ZFL1ABCD",
        firmware_version="0001",
        capacity_bytes=2000398934016,
        smart_passed=True,
        temp_celsius=34,
        power_on_hours=18723,
        power_cycle_count=2361,
        ata=AtaCounters(
            reallocated_sectors=8,
            reallocation_events=None,
            pending_sectors=2,
            offline_uncorrectable=0,
            reported_uncorrectable=0,
            udma_crc_errors=0,
        ),
    )
    assert len(report.ata_attributes) == 20
    rows = {a.name: a for a in report.ata_attributes}
    assert rows["Reallocated_Sector_Ct"] == AtaAttribute(
        id=5,
        name="Reallocated_Sector_Ct",
        value=100,
        worst=100,
        thresh=10,
        when_failed="",
        raw_value=8,
        raw_string="8",
        prefailure=True,
    )
    # The packed raw field: hours in the low 32 bits, milliseconds above them.
    assert rows["Power_On_Hours"] == AtaAttribute(
        id=9,
        name="Power_On_Hours",
        value=79,
        worst=79,
        thresh=0,
        when_failed="",
        raw_value=(43210 << 32) | 18723,
        raw_string="18723h+00m+43.210s",
        prefailure=False,
    )
    assert rows["Power_On_Hours"].counter == 18723
    assert rows["Temperature_Celsius"].counter == 34  # "34 (0 22 0 0 0)", raw 94489280546


def test_ata_crc_errors_found_by_name_not_id() -> None:
    # Samsung names attribute 199 "CRC_Error_Count" and 187 "Uncorrectable_Error_Cnt".
    report = load("ata-crc-errors.json")
    assert dataclasses.replace(report, ata_attributes=()) == SmartctlReport(
        device_name="/dev/sdb",
        device_info_name="/dev/sdb [SAT]",
        device_type="sat",
        protocol="ATA",
        exit_status=64,
        argv=argv("/dev/sdb"),
        smartctl_version=V73,
        json_format_version="1.0",
        model="Samsung SSD 860 EVO 500GB",
        serial_number="S3Z2NB0K123456X",
        firmware_version="RVT04B6Q",
        capacity_bytes=500107862016,
        smart_passed=True,
        temp_celsius=31,
        power_on_hours=24381,
        power_cycle_count=1437,
        ata=AtaCounters(reallocated_sectors=0, reported_uncorrectable=0, udma_crc_errors=147),
    )
    assert len(report.ata_attributes) == 14


def test_ata_healthy() -> None:
    report = load("ata-healthy.json")
    assert dataclasses.replace(report, ata_attributes=()) == SmartctlReport(
        device_name="/dev/sda",
        device_info_name="/dev/sda [SAT]",
        device_type="sat",
        protocol="ATA",
        exit_status=0,
        argv=argv("/dev/sda"),
        smartctl_version=V73,
        json_format_version="1.0",
        model="WDC WD40EFRX-68N32N0",
        serial_number="WD-WCC7K1234567",
        firmware_version="82.00A82",
        capacity_bytes=4000787030016,
        smart_passed=True,
        temp_celsius=32,
        power_on_hours=21532,
        power_cycle_count=507,
        ata=AtaCounters(
            reallocated_sectors=0,
            reallocation_events=0,
            pending_sectors=0,
            offline_uncorrectable=0,
            udma_crc_errors=0,
        ),
    )
    assert len(report.ata_attributes) == 17


def test_scsi_grown_defects() -> None:
    assert load("scsi-grown-defects.json") == SmartctlReport(
        device_name="/dev/sdc",
        device_info_name="/dev/sdc",
        device_type="scsi",
        protocol="SCSI",
        exit_status=0,
        argv=argv("/dev/sdc"),
        smartctl_version=V73,
        json_format_version="1.0",
        model="SEAGATE ST4000NM0023",
        serial_number="Z1Z2ABCD0000R123ABCD",
        firmware_version="GS0F",
        capacity_bytes=4000787030016,
        smart_passed=True,
        temp_celsius=36,
        power_on_hours=51274,
        scsi=ScsiHealth(
            grown_defects=37,
            uncorrected_read_errors=0,
            uncorrected_write_errors=0,
            uncorrected_verify_errors=0,
        ),
    )


def test_open_failed() -> None:
    report = load("open-failed.json")
    assert report == SmartctlReport(
        device_name="",
        device_info_name="",
        device_type="",
        protocol="",
        exit_status=2,
        argv=argv("/dev/sdz"),
        smartctl_version=V73,
        json_format_version="1.0",
        messages=(
            SmartctlMessage("Smartctl open device: /dev/sdz failed: No such device", "error"),
        ),
    )
    assert report.open_failed and not report.has_health_data
    assert report.target == "/dev/sdz"  # only argv names the device that failed to open


def test_standby_drive_left_asleep() -> None:
    # `smartctl -n standby` on a spun-down disk: exit 2, no health data, an information message.
    report = load("ata-standby.json")
    assert report == SmartctlReport(
        device_name="/dev/sda",
        device_info_name="/dev/sda [SAT]",
        device_type="sat",
        protocol="ATA",
        exit_status=2,
        argv=("smartctl", "--json", "-x", "-n", "standby", "-d", "sat", "/dev/sda"),
        smartctl_version=V73,
        json_format_version="1.0",
        messages=(SmartctlMessage("Device is in STANDBY mode, exit(2)", "information"),),
    )
    assert (report.low_power_mode, report.has_health_data) == ("STANDBY", False)


@pytest.mark.parametrize(
    ("message", "mode"),
    [
        ("Device is in SLEEP mode, exit(2)", "SLEEP"),
        ("Device is in STANDBY (OS) mode, exit(2)", "STANDBY (OS)"),
        ("/dev/sda: Device is in IDLE mode, exit(3)", "IDLE"),
        ("Smartctl open device: /dev/sdz failed: No such device", None),
    ],
)
def test_low_power_mode_from_message(message: str, mode: str | None) -> None:
    data = doc("ata-standby.json")
    data["smartctl"]["messages"][0]["string"] = message
    assert parse_report(json.dumps(data)).low_power_mode == mode


def test_queried_drive_has_no_low_power_mode() -> None:
    assert load("ata-healthy.json").low_power_mode is None


def test_power_on_hours_decoded_from_raw_string_without_power_on_time() -> None:
    data = doc("ata-reallocated.json")
    del data["power_on_time"]
    report = parse_report(json.dumps(data))
    assert report.power_on_hours == 18723  # not 185586139925795


def test_packed_power_on_raw_value_without_string_is_not_taken_as_hours() -> None:
    data = doc("ata-reallocated.json")
    del data["power_on_time"]
    for row in data["ata_smart_attributes"]["table"]:
        if row["name"] == "Power_On_Hours":
            del row["raw"]["string"]
    assert parse_report(json.dumps(data)).power_on_hours is None


def test_failing_attributes_now_and_in_past() -> None:
    data = doc("ata-healthy.json")
    table = data["ata_smart_attributes"]["table"]
    table[3].update(value=130, when_failed="now")  # Reallocated_Sector_Ct, thresh 140
    table[2].update(when_failed="past")  # Start_Stop_Count
    table[1].update(value=21)  # Spin_Up_Time at its threshold 21, when_failed not set
    ata = parse_report(json.dumps(data)).ata
    assert ata is not None
    assert ata.failing_now == ("Spin_Up_Time", "Reallocated_Sector_Ct")
    assert ata.failed_in_past == ("Start_Stop_Count",)


def test_field_of_wrong_type_is_kept_as_error_and_others_still_read() -> None:
    data = doc("nvme-healthy.json")
    data["nvme_smart_health_information_log"]["media_errors"] = "lots"
    data["nvme_smart_health_information_log"]["percentage_used"] = -1
    data["smart_status"]["passed"] = "yes"
    report = parse_report(json.dumps(data))
    assert set(report.errors) == {
        FieldError("smart_status.passed", "expected true or false, found 'yes'"),
        FieldError(
            "nvme_smart_health_information_log.percentage_used", "expected a whole number, found -1"
        ),
        FieldError(
            "nvme_smart_health_information_log.media_errors",
            "expected a whole number, found 'lots'",
        ),
    }
    assert report.nvme is not None
    assert (report.nvme.media_errors, report.nvme.percentage_used_pct) == (None, None)
    assert report.smart_passed is None
    assert report.nvme.available_spare_pct == 100


def test_smartctl_74_scsi_names() -> None:
    data = doc("scsi-grown-defects.json")
    for old in ("model_name", "revision"):
        del data[old]
    data |= {"scsi_model_name": "SEAGATE ST4000NM0023", "scsi_revision": "GS0F"}
    report = parse_report(json.dumps(data))
    assert (report.model, report.firmware_version) == ("SEAGATE ST4000NM0023", "GS0F")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "smartctl printed nothing"),
        ("   \n", "smartctl printed nothing"),
        ("smartctl 7.3 2022-02-28 r5338 [x86_64-linux]", "not valid JSON"),
        ('{"smartctl": {"exit_status": 0},}', "not valid JSON"),
        ("[1, 2]", "expected a JSON object, found a JSON list"),
        ('"text"', "expected a JSON object, found a JSON str"),
        ("42", "expected a JSON object, found a JSON int"),
        ('{"device": {"name": "/dev/sda"}}', "no smartctl.exit_status"),
    ],
)
def test_bad_output_raises_parse_error(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as info:
        parse_report(text, "out.json")
    assert info.value.source == "out.json"


def test_truncated_output_says_truncated() -> None:
    whole = (SMARTCTL / "nvme-healthy.json").read_bytes()
    with pytest.raises(ParseError, match="truncated"):
        parse_report(whole[: len(whole) // 2], "half.json")


def test_invalid_utf8_does_not_crash() -> None:
    data = (SMARTCTL / "nvme-healthy.json").read_bytes().replace(b"Samsung", b"Sams\xffung")
    assert parse_report(data).model == "Sams\ufffdung SSD 980 PRO 1TB"


def test_scan() -> None:
    out = json.dumps(
        {
            "json_format_version": [1, 0],
            "smartctl": {
                "version": [7, 3],
                "argv": ["smartctl", "--json", "--scan"],
                "exit_status": 0,
            },
            "devices": [
                {
                    "name": "/dev/sda",
                    "info_name": "/dev/sda [SAT]",
                    "type": "sat",
                    "protocol": "ATA",
                },
                {
                    "name": "/dev/nvme0",
                    "info_name": "/dev/nvme0",
                    "type": "nvme",
                    "protocol": "NVMe",
                },
            ],
        }
    )
    assert parse_scan(out) == [
        ScannedDevice("/dev/sda", "sat", "ATA", "/dev/sda [SAT]"),
        ScannedDevice("/dev/nvme0", "nvme", "NVMe", "/dev/nvme0"),
    ]


def test_scan_without_devices_is_empty() -> None:
    # What smartctl 7.3 prints on a machine with no drive it knows (this VM).
    out = '{"json_format_version": [1, 0], "smartctl": {"exit_status": 0}}'
    assert parse_scan(out) == []


def test_scan_bad_output() -> None:
    with pytest.raises(ParseError, match="not a list"):
        parse_scan('{"devices": {"name": "/dev/sda"}}')
    with pytest.raises(ParseError, match="has no name"):
        parse_scan('{"devices": [{"type": "sat"}]}')
    with pytest.raises(ParseError, match="truncated"):
        parse_scan('{"devices": [{"name": "/dev/sda"')


def test_every_fixture_parses_without_field_errors() -> None:
    for path in sorted(Path(SMARTCTL).glob("*.json")):
        assert parse_report(path.read_bytes(), str(path)).errors == (), path.name
