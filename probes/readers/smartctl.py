"""Reader of `smartctl --json` output (smartmontools 7.x, json_format_version 1.0).

    >>> report = parse_report(Path("tests/fixtures/smartctl/ata-reallocated.json").read_bytes())
    >>> report.power_on_hours, report.ata.reallocated_sectors, report.smart_passed
    (18723, 8, True)

One output describes one device. The fields come from smartctl's JSON schema:

- `smartctl.exit_status` is a bit mask (smartctl(8) "EXIT STATUS"): bit 0 the command line
  did not parse (or smartctl broke), bit 1 the device could not be opened, bit 2 a SMART
  command failed, bit 3 the drive says it is failing, bit 4 prefail attributes at or below
  threshold, bit 5 attributes at or below threshold in the past, bit 6 the error log has
  errors, bit 7 the self-test log has errors. Bits 0-2 mean "could not (fully) read", bits
  3-7 are evidence about the drive.
- `smart_status.passed` is the drive's own overall verdict; absent when not read.
- NVMe: `nvme_smart_health_information_log` (critical_warning bits, percentage_used, ...).
- ATA: `ata_smart_attributes.table[]`, found BY NAME: the ID of an attribute differs
  between vendors, the name smartctl gives it (from its drive database) does not.
- SCSI: `scsi_grown_defect_list`, `scsi_error_counter_log.{read,write,verify}`.
- With `-n standby` smartctl does not wake a sleeping drive: it exits with status 2 (bit 1,
  as if the device could not be opened) and says "Device is in STANDBY mode, exit(2)" in
  `smartctl.messages[]` (also "SLEEP", "IDLE" or "STANDBY (OS)"); see `low_power_mode`.

The reader decodes and keeps values; it knows nothing of limits or verdicts (the probe
`storage.smart` judges). A field of the wrong type is kept in `errors` and read as None,
so one odd field hides none of the others. Output that is not JSON at all, is cut short,
or is not a JSON object raises ParseError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from probelink.probes.errors import ParseError

# smartctl(8) EXIT STATUS bits.
EXIT_COMMAND_LINE = 1 << 0
EXIT_OPEN_FAILED = 1 << 1
EXIT_SMART_COMMAND_FAILED = 1 << 2
EXIT_DISK_FAILING = 1 << 3
EXIT_PREFAIL_AT_THRESHOLD = 1 << 4
EXIT_AT_THRESHOLD_IN_PAST = 1 << 5
EXIT_ERROR_LOG = 1 << 6
EXIT_SELF_TEST_LOG = 1 << 7

# smartctl's answer to `-n POWERMODE` for a drive it left asleep (ataprint.cpp, scsiprint.cpp,
# smartctl.cpp): "Device is in STANDBY mode, exit(2)", "... in STANDBY (OS) mode, ...".
_LOW_POWER = re.compile(r"Device is in (?P<mode>.+?) mode, exit\(\d+\)")

# NVMe SMART/Health log byte 0, "Critical Warning" (NVMe base specification, Figure
# "SMART / Health Information Log Page"); the names smartctl gives them in smart_status.nvme.
NVME_CRITICAL_WARNING_BITS: tuple[tuple[int, str], ...] = (
    (1 << 0, "available spare is below its threshold"),
    (1 << 1, "temperature is above or below its threshold"),
    (1 << 2, "NVM subsystem reliability is degraded"),
    (1 << 3, "media is in read-only mode"),
    (1 << 4, "volatile memory backup device has failed"),
    (1 << 5, "persistent memory region is read-only"),
)

# ATA attribute names (smartctl's drive database) for each counter we read.
# Several names cover the same counter on different vendors' drives.
ATA_NAMES: dict[str, tuple[str, ...]] = {
    "reallocated_sectors": ("Reallocated_Sector_Ct", "Reallocate_NAND_Blk_Cnt"),
    "reallocation_events": ("Reallocated_Event_Count",),
    "pending_sectors": ("Current_Pending_Sector", "Current_Pending_ECC_Cnt"),
    "offline_uncorrectable": ("Offline_Uncorrectable",),
    "reported_uncorrectable": ("Reported_Uncorrect", "Uncorrectable_Error_Cnt"),
    "udma_crc_errors": ("UDMA_CRC_Error_Count", "CRC_Error_Count"),
    "power_cycle_count": ("Power_Cycle_Count",),
}
ATA_POWER_ON_NAMES = ("Power_On_Hours", "Power_On_Hours_and_Msec")

_FIRST_INT = re.compile(r"\d+")
UINT64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class SmartctlMessage:
    """One entry of `smartctl.messages[]`: what smartctl itself said."""

    string: str
    severity: str  # "information", "warning" or "error"


@dataclass(frozen=True)
class FieldError:
    """One field that had a value of the wrong type, e.g. a counter that is not a number."""

    field: str  # JSON path, e.g. "nvme_smart_health_information_log.media_errors"
    message: str


@dataclass(frozen=True)
class NvmeHealth:
    """`nvme_smart_health_information_log`: the NVMe SMART/Health log page (0x02)."""

    critical_warning: int | None = None  # bit mask, see NVME_CRITICAL_WARNING_BITS
    temp_celsius: int | None = None  # "temperature", already °C in smartctl's JSON
    available_spare_pct: int | None = None  # "available_spare"
    available_spare_threshold_pct: int | None = None  # "available_spare_threshold"
    percentage_used_pct: int | None = None  # "percentage_used"; may exceed 100
    media_errors: int | None = None  # "media_errors": unrecovered data integrity errors
    error_log_entries: int | None = None  # "num_err_log_entries"
    unsafe_shutdowns: int | None = None  # "unsafe_shutdowns"
    power_on_hours: int | None = None  # "power_on_hours"
    power_cycles: int | None = None  # "power_cycles"

    @property
    def critical_warnings(self) -> tuple[str, ...]:
        """The critical warning bits that are set, in plain words."""
        w = self.critical_warning or 0
        words = [text for bit, text in NVME_CRITICAL_WARNING_BITS if w & bit]
        unknown = w & ~0x3F
        if unknown:
            words.append(f"unknown warning bits 0x{unknown:02x}")
        return tuple(words)


@dataclass(frozen=True)
class AtaAttribute:
    """One row of `ata_smart_attributes.table`."""

    id: int
    name: str
    value: int | None  # normalised value (vendor scale, higher is better)
    worst: int | None
    thresh: int | None  # 0 means "never fails on this attribute"
    when_failed: str  # "" | "now" | "past"
    raw_value: int | None  # "raw.value": the 48-bit raw field, possibly several numbers packed
    raw_string: str  # "raw.string": smartctl's decoding of the raw field
    prefailure: bool  # flags.prefailure: failing it predicts a failure

    @property
    def counter(self) -> int | None:
        """The raw count: the first number of smartctl's decoded raw string.

        Some drives pack extra numbers in the raw field's high bytes (Seagate's error
        rates, "12345h+30m+05.123s" power-on times); smartctl's drive database knows the
        format and decodes the raw string, so its first number is the count itself.
        """
        match = _FIRST_INT.search(self.raw_string)
        if match:
            return int(match.group())
        return self.raw_value

    @property
    def failing_now(self) -> bool:
        if self.when_failed == "now":
            return True
        return bool(self.thresh) and self.value is not None and self.value <= (self.thresh or 0)


@dataclass(frozen=True)
class AtaCounters:
    """The ATA counters that judge a drive, found by attribute name (raw counts)."""

    reallocated_sectors: int | None = None
    reallocation_events: int | None = None
    pending_sectors: int | None = None
    offline_uncorrectable: int | None = None
    reported_uncorrectable: int | None = None
    udma_crc_errors: int | None = None
    failing_now: tuple[str, ...] = ()  # attribute names at or below threshold now
    failed_in_past: tuple[str, ...] = ()  # attribute names whose when_failed is "past"


@dataclass(frozen=True)
class ScsiHealth:
    """SCSI grown defect list and error counter log."""

    grown_defects: int | None = None  # "scsi_grown_defect_list": elements
    uncorrected_read_errors: int | None = None
    uncorrected_write_errors: int | None = None
    uncorrected_verify_errors: int | None = None


@dataclass(frozen=True)
class SmartctlReport:
    """What one `smartctl --json -x DEVICE` run said about one device."""

    device_name: str  # device.name, e.g. "/dev/nvme0"
    device_info_name: str  # device.info_name, e.g. "/dev/sda [SAT]"
    device_type: str  # device.type, e.g. "nvme", "sat", "scsi"
    protocol: str  # device.protocol: "NVMe", "ATA", "SCSI" ("" when not opened)
    exit_status: int  # smartctl.exit_status bit mask
    argv: tuple[str, ...] = ()  # smartctl.argv: the command that produced this output
    smartctl_version: str = ""  # smartctl.version joined, e.g. "7.3"
    json_format_version: str = ""  # e.g. "1.0"
    messages: tuple[SmartctlMessage, ...] = ()
    model: str | None = None  # model_name (scsi_model_name on SCSI with smartctl 7.4)
    serial_number: str | None = None
    firmware_version: str | None = None  # firmware_version, or the SCSI revision
    capacity_bytes: int | None = None  # user_capacity.bytes
    smart_passed: bool | None = None  # smart_status.passed
    temp_celsius: int | None = None  # temperature.current
    power_on_hours: int | None = None  # power_on_time.hours, or the decoded ATA attribute
    power_cycle_count: int | None = None  # power_cycle_count
    nvme: NvmeHealth | None = None
    ata_attributes: tuple[AtaAttribute, ...] = ()
    ata: AtaCounters | None = None
    scsi: ScsiHealth | None = None
    errors: tuple[FieldError, ...] = ()

    @property
    def target(self) -> str:
        """The device asked about: device.name, else the last argument of smartctl.argv.

        A device that could not be opened has no "device" object; its name is only in argv.
        """
        if self.device_name:
            return self.device_name
        if len(self.argv) > 1 and not self.argv[-1].startswith("-"):
            return self.argv[-1]
        return ""

    @property
    def open_failed(self) -> bool:
        return bool(self.exit_status & EXIT_OPEN_FAILED)

    @property
    def command_failed(self) -> bool:
        """smartctl did not run as asked (bad command line, unknown device type)."""
        return bool(self.exit_status & EXIT_COMMAND_LINE)

    @property
    def smart_command_failed(self) -> bool:
        return bool(self.exit_status & EXIT_SMART_COMMAND_FAILED)

    @property
    def has_health_data(self) -> bool:
        """Whether anything about the drive's health was read at all."""
        return (
            self.smart_passed is not None
            or self.nvme is not None
            or self.ata is not None
            or self.scsi is not None
        )

    @property
    def error_messages(self) -> tuple[str, ...]:
        return tuple(m.string for m in self.messages if m.severity == "error")

    @property
    def low_power_mode(self) -> str | None:
        """The power mode ("STANDBY", "SLEEP", ...) that made smartctl leave the drive
        alone under `-n`, or None when it was queried."""
        for m in self.messages:
            found = _LOW_POWER.search(m.string)
            if found:
                return found["mode"]
        return None


@dataclass(frozen=True)
class ScannedDevice:
    """One entry of `smartctl --json --scan`'s `devices[]`."""

    name: str  # "/dev/sda"
    type: str  # "-d" argument: "sat", "nvme", "scsi", "megaraid,0", ...
    protocol: str
    info_name: str


def load_json(data: bytes | str, source: str) -> dict[str, Any]:
    """The top-level JSON object of a smartctl output; ParseError with the reason if none."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    if not text.strip():
        raise ParseError(f"{source}: smartctl printed nothing", source)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            reason = f"the JSON ends early, the output looks truncated ({exc.msg})"
        else:
            reason = f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise ParseError(f"{source}: {reason}", source) from None
    if not isinstance(doc, dict):
        raise ParseError(
            f"{source}: expected a JSON object, found a JSON {type(doc).__name__}", source
        )
    return doc


class _Fields:
    """Typed access to nested JSON fields that collects type errors instead of raising."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def object(self, parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.errors.append(FieldError(path, f"expected an object, found {value!r:.40}"))
            return None
        return value

    def whole(self, parent: Mapping[str, Any] | None, key: str, path: str) -> int | None:
        if parent is None:
            return None
        value = parent.get(key)
        if value is None:
            return None
        # bool is an int in Python, but never a count in smartctl's schema.
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.errors.append(FieldError(path, f"expected a whole number, found {value!r:.40}"))
            return None
        if value > UINT64_MAX:
            self.errors.append(FieldError(path, f"{value} does not fit in 64 bits"))
            return None
        return value

    def text(self, parent: Mapping[str, Any] | None, key: str, path: str) -> str | None:
        if parent is None:
            return None
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.errors.append(FieldError(path, f"expected text, found {value!r:.40}"))
            return None
        return value.strip()

    def flag(self, parent: Mapping[str, Any] | None, key: str, path: str) -> bool | None:
        if parent is None:
            return None
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.errors.append(FieldError(path, f"expected true or false, found {value!r:.40}"))
            return None
        return value


def _version(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return ".".join(str(v) for v in value)
    return ""


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return ()


def _nvme(f: _Fields, doc: Mapping[str, Any]) -> NvmeHealth | None:
    key = "nvme_smart_health_information_log"
    log = f.object(doc, key, key)
    if log is None:
        return None
    return NvmeHealth(
        critical_warning=f.whole(log, "critical_warning", f"{key}.critical_warning"),
        temp_celsius=f.whole(log, "temperature", f"{key}.temperature"),
        available_spare_pct=f.whole(log, "available_spare", f"{key}.available_spare"),
        available_spare_threshold_pct=f.whole(
            log, "available_spare_threshold", f"{key}.available_spare_threshold"
        ),
        percentage_used_pct=f.whole(log, "percentage_used", f"{key}.percentage_used"),
        media_errors=f.whole(log, "media_errors", f"{key}.media_errors"),
        error_log_entries=f.whole(log, "num_err_log_entries", f"{key}.num_err_log_entries"),
        unsafe_shutdowns=f.whole(log, "unsafe_shutdowns", f"{key}.unsafe_shutdowns"),
        power_on_hours=f.whole(log, "power_on_hours", f"{key}.power_on_hours"),
        power_cycles=f.whole(log, "power_cycles", f"{key}.power_cycles"),
    )


def _ata_attributes(f: _Fields, doc: Mapping[str, Any]) -> tuple[AtaAttribute, ...] | None:
    section = f.object(doc, "ata_smart_attributes", "ata_smart_attributes")
    if section is None:
        return None
    table = section.get("table")
    if not isinstance(table, list):
        f.errors.append(FieldError("ata_smart_attributes.table", "expected a list"))
        return None
    rows: list[AtaAttribute] = []
    for i, row in enumerate(table):
        path = f"ata_smart_attributes.table[{i}]"
        if not isinstance(row, dict):
            f.errors.append(FieldError(path, f"expected an object, found {row!r:.40}"))
            continue
        attr_id = f.whole(row, "id", f"{path}.id")
        name = f.text(row, "name", f"{path}.name")
        if attr_id is None or not name:
            f.errors.append(FieldError(path, "attribute without id or name"))
            continue
        raw = f.object(row, "raw", f"{path}.raw")
        flags = f.object(row, "flags", f"{path}.flags")
        rows.append(
            AtaAttribute(
                id=attr_id,
                name=name,
                value=f.whole(row, "value", f"{path}.value"),
                worst=f.whole(row, "worst", f"{path}.worst"),
                thresh=f.whole(row, "thresh", f"{path}.thresh"),
                when_failed=f.text(row, "when_failed", f"{path}.when_failed") or "",
                raw_value=f.whole(raw, "value", f"{path}.raw.value"),
                raw_string=f.text(raw, "string", f"{path}.raw.string") or "",
                prefailure=bool(f.flag(flags, "prefailure", f"{path}.flags.prefailure")),
            )
        )
    return tuple(rows)


def _ata_counters(attributes: tuple[AtaAttribute, ...]) -> AtaCounters:
    by_name = {a.name: a for a in attributes}

    def count(key: str) -> int | None:
        for name in ATA_NAMES[key]:
            if name in by_name:
                return by_name[name].counter
        return None

    return AtaCounters(
        reallocated_sectors=count("reallocated_sectors"),
        reallocation_events=count("reallocation_events"),
        pending_sectors=count("pending_sectors"),
        offline_uncorrectable=count("offline_uncorrectable"),
        reported_uncorrectable=count("reported_uncorrectable"),
        udma_crc_errors=count("udma_crc_errors"),
        failing_now=tuple(a.name for a in attributes if a.failing_now),
        failed_in_past=tuple(
            a.name for a in attributes if a.when_failed == "past" and not a.failing_now
        ),
    )


def _ata_power_on_hours(attributes: tuple[AtaAttribute, ...]) -> int | None:
    """Power-on hours from the attribute, decoded: never the packed 48-bit raw number.

    Drives pack minutes or milliseconds into the raw field's high bytes (raw.value of
    "18723h+00m+43.210s" is 185589466873379): the first number of smartctl's raw string
    is the hours. Without a raw string, only a raw value that fits the 32-bit hours
    field is taken as hours.
    """
    for attr in attributes:
        if attr.name in ATA_POWER_ON_NAMES:
            match = _FIRST_INT.search(attr.raw_string)
            if match:
                return int(match.group())
            if attr.raw_value is not None and attr.raw_value < (1 << 32):
                return attr.raw_value
    return None


def _scsi(f: _Fields, doc: Mapping[str, Any]) -> ScsiHealth | None:
    grown = f.whole(doc, "scsi_grown_defect_list", "scsi_grown_defect_list")
    log = f.object(doc, "scsi_error_counter_log", "scsi_error_counter_log")
    if grown is None and log is None:
        return None

    def uncorrected(direction: str) -> int | None:
        if log is None:
            return None
        section = f.object(log, direction, f"scsi_error_counter_log.{direction}")
        path = f"scsi_error_counter_log.{direction}.total_uncorrected_errors"
        return f.whole(section, "total_uncorrected_errors", path)

    return ScsiHealth(
        grown_defects=grown,
        uncorrected_read_errors=uncorrected("read"),
        uncorrected_write_errors=uncorrected("write"),
        uncorrected_verify_errors=uncorrected("verify"),
    )


def parse_report(data: bytes | str, source: str = "smartctl") -> SmartctlReport:
    """Parse one `smartctl --json` output; ParseError when it is not a JSON object."""
    doc = load_json(data, source)
    f = _Fields()
    smartctl = f.object(doc, "smartctl", "smartctl") or {}
    device = f.object(doc, "device", "device") or {}
    exit_status = f.whole(smartctl, "exit_status", "smartctl.exit_status")
    if exit_status is None:
        # Every smartctl 7 output has it; without it this is not smartctl's JSON.
        raise ParseError(f"{source}: no smartctl.exit_status, not smartctl JSON output", source)

    messages: list[SmartctlMessage] = []
    raw_messages = smartctl.get("messages", [])
    if isinstance(raw_messages, list):
        for m in raw_messages:
            if isinstance(m, dict) and isinstance(m.get("string"), str):
                messages.append(SmartctlMessage(m["string"], str(m.get("severity", ""))))
    else:
        f.errors.append(FieldError("smartctl.messages", "expected a list"))

    capacity = f.object(doc, "user_capacity", "user_capacity")
    status = f.object(doc, "smart_status", "smart_status")
    temperature = f.object(doc, "temperature", "temperature")
    power_on = f.object(doc, "power_on_time", "power_on_time")

    nvme = _nvme(f, doc)
    attributes = _ata_attributes(f, doc)
    power_on_hours = f.whole(power_on, "hours", "power_on_time.hours")
    if power_on_hours is None and attributes:
        power_on_hours = _ata_power_on_hours(attributes)
    if power_on_hours is None and nvme is not None:
        power_on_hours = nvme.power_on_hours
    power_cycles = f.whole(doc, "power_cycle_count", "power_cycle_count")
    if power_cycles is None and nvme is not None:
        power_cycles = nvme.power_cycles
    temp = f.whole(temperature, "current", "temperature.current")
    if temp is None and nvme is not None:
        temp = nvme.temp_celsius

    return SmartctlReport(
        device_name=f.text(device, "name", "device.name") or "",
        device_info_name=f.text(device, "info_name", "device.info_name") or "",
        device_type=f.text(device, "type", "device.type") or "",
        protocol=f.text(device, "protocol", "device.protocol") or "",
        exit_status=exit_status,
        argv=_strings(smartctl.get("argv")),
        smartctl_version=_version(smartctl.get("version")),
        json_format_version=_version(doc.get("json_format_version")),
        messages=tuple(messages),
        model=f.text(doc, "model_name", "model_name")
        or f.text(doc, "scsi_model_name", "scsi_model_name"),
        serial_number=f.text(doc, "serial_number", "serial_number"),
        firmware_version=f.text(doc, "firmware_version", "firmware_version")
        or f.text(doc, "scsi_revision", "scsi_revision")
        or f.text(doc, "revision", "revision"),
        capacity_bytes=f.whole(capacity, "bytes", "user_capacity.bytes"),
        smart_passed=f.flag(status, "passed", "smart_status.passed"),
        temp_celsius=temp,
        power_on_hours=power_on_hours,
        power_cycle_count=power_cycles,
        nvme=nvme,
        ata_attributes=attributes or (),
        ata=_ata_counters(attributes) if attributes else None,
        scsi=_scsi(f, doc),
        errors=tuple(f.errors),
    )


def parse_scan(data: bytes | str, source: str = "smartctl --scan") -> list[ScannedDevice]:
    """The devices of `smartctl --json --scan`; [] when it found none."""
    doc = load_json(data, source)
    devices = doc.get("devices", [])
    if not isinstance(devices, list):
        raise ParseError(f"{source}: 'devices' is not a list", source)
    found: list[ScannedDevice] = []
    for entry in devices:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ParseError(f"{source}: a device entry has no name: {entry!r:.60}", source)
        found.append(
            ScannedDevice(
                name=entry["name"],
                type=str(entry.get("type", "")),
                protocol=str(entry.get("protocol", "")),
                info_name=str(entry.get("info_name", entry["name"])),
            )
        )
    return found
