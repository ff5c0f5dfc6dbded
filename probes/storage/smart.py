"""storage.smart: drive health from `smartctl --json`, one result per drive.

    >>> worn = Path("tests/fixtures/smartctl/nvme-worn.json")
    >>> [r.status for r in smart(ProbeContext.for_machine(smartctl_json=[worn]))]
    [2]                                           # WARN: 92 % of rated endurance used

With captured outputs (`--smartctl-json FILE`) those are judged; otherwise smartctl
runs here: `smartctl --json --scan`, then `smartctl --json -x -n standby -d TYPE DEVICE`
per drive. `-n standby` keeps smartctl from spinning up a sleeping hard drive (a health
check should not wear the disk or wake a quiet NAS); such a drive is SKIP, "not checked".

The drive's own overall verdict (`smart_status.passed`) is only one check among many:
drives say PASSED while they log media errors, reallocated sectors or grown defects,
and such a drive is not healthy, so the counters decide as well. A drive smartctl could
not open or query is "could not judge" (ERROR), never "failing".
"""

from __future__ import annotations

import time
from pathlib import Path

from probelink.probes.context import ProbeContext
from probelink.probes.errors import (
    MissingUtility,
    ParseError,
    ProbeTimeout,
    SourceError,
    Unavailable,
    Unsupported,
)
from probelink.probes.readers import smartctl as reader
from probelink.probes.readers.smartctl import SmartctlReport
from probelink.probes.registry import STORAGE, telemetry
from probelink.probes.results import (
    FAIL,
    PASS,
    SKIP,
    WARN,
    check,
    errored,
    fact,
    result,
    worst,
)
from probelink.v1 import probe_pb2, storage_pb2

NOT_INSTALLED = "smartctl is not installed; SMART health not checked"
CAPTURED = "a captured machine: pass --smartctl-json with its smartctl output to judge its drives"

# Share of the probe's budget the scan may use; the drives share what is left.
SCAN_SHARE = 0.3

_PROTOCOLS = {
    "NVMe": storage_pb2.STORAGE_PROTOCOL_NVME,
    "ATA": storage_pb2.STORAGE_PROTOCOL_ATA,
    "SCSI": storage_pb2.STORAGE_PROTOCOL_SCSI,
}


@telemetry("storage.smart", STORAGE, "Drive health from SMART / NVMe logs (smartctl --json)")
def smart(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    if ctx.smartctl_json:
        return [_judge_file(ctx, path) for path in ctx.smartctl_json]
    if not ctx.live:
        # A captured machine: running smartctl here would describe this host's drives
        # in that machine's report. Only its captured outputs can speak for it.
        raise Unsupported(CAPTURED)
    return _run_live(ctx)


def _judge_file(ctx: ProbeContext, path: Path) -> probe_pb2.ProbeResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return errored(Unavailable(f"{path}: {exc.strerror}", str(path)), subject=path.stem)
    try:
        report = reader.parse_report(data, str(path))
    except ParseError as exc:
        return errored(exc, subject=path.stem)
    return judge(ctx, report, source=str(path))


def _run_live(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    program = ctx.smartctl_program
    deadline = time.monotonic() + ctx.timeout_s * 0.9
    try:
        scan = ctx.commands.run([program, "--json", "--scan"], ctx.timeout_s * SCAN_SHARE)
    except MissingUtility:
        # Not an ERROR: smartmontools is an optional tool, and a customer machine without
        # it has nothing broken. We say plainly that drive health was not checked (SKIP),
        # so nobody reads the missing verdict as "healthy" either.
        raise Unsupported(NOT_INSTALLED) from None
    devices = reader.parse_scan(scan.stdout, f"{program} --json --scan")
    if not devices:
        raise Unsupported("smartctl found no devices")
    results = []
    for i, dev in enumerate(devices):
        left = deadline - time.monotonic()
        if left <= 0:
            exc = ProbeTimeout("no time left in the probe's budget for this drive", dev.name)
            results.append(errored(exc, subject=dev.name))
            continue
        # -n standby: a drive in STANDBY or SLEEP is left asleep; smartctl exits 2 then.
        argv = [program, "--json", "-x", "-n", "standby"]
        if dev.type:
            argv += ["-d", dev.type]
        argv.append(dev.name)
        try:
            out = ctx.commands.run(argv, left / (len(devices) - i))
            report = reader.parse_report(out.stdout, " ".join(argv))
        except SourceError as exc:
            results.append(errored(exc, subject=dev.name))
            continue
        results.append(judge(ctx, report, source=" ".join(argv)))
    return results


def to_proto(report: SmartctlReport) -> storage_pb2.StorageDevice:
    """The contract's StorageDevice for one smartctl report."""
    overall = {
        True: storage_pb2.SMART_OVERALL_PASSED,
        False: storage_pb2.SMART_OVERALL_FAILED,
        None: storage_pb2.SMART_OVERALL_UNKNOWN,
    }[report.smart_passed]
    msg = storage_pb2.StorageDevice(
        name=report.target,
        source=storage_pb2.STORAGE_SOURCE_SMARTCTL,
        protocol=_PROTOCOLS.get(report.protocol, storage_pb2.STORAGE_PROTOCOL_UNSPECIFIED),
        model=report.model or "",
        serial_number=report.serial_number or "",
        firmware_version=report.firmware_version or "",
        smart_overall=overall,
        smartctl_exit_status=report.exit_status,
    )
    optional = {
        "capacity_bytes": report.capacity_bytes,
        "temp_celsius": report.temp_celsius,
        "power_on_hours": report.power_on_hours,
        "power_cycle_count": report.power_cycle_count,
    }
    if report.nvme is not None:
        n = report.nvme
        optional |= {
            "nvme_critical_warning": n.critical_warning,
            "nvme_percentage_used_pct": n.percentage_used_pct,
            "nvme_available_spare_pct": n.available_spare_pct,
            "nvme_available_spare_threshold_pct": n.available_spare_threshold_pct,
            "nvme_media_errors": n.media_errors,
            "nvme_error_log_entries": n.error_log_entries,
            "nvme_unsafe_shutdowns": n.unsafe_shutdowns,
        }
    if report.ata is not None:
        a = report.ata
        optional |= {
            "ata_reallocated_sectors": a.reallocated_sectors,
            "ata_reallocation_events": a.reallocation_events,
            "ata_pending_sectors": a.pending_sectors,
            "ata_offline_uncorrectable": a.offline_uncorrectable,
            "ata_reported_uncorrectable": a.reported_uncorrectable,
            "ata_udma_crc_errors": a.udma_crc_errors,
        }
        msg.ata_failing_attributes.extend(a.failing_now)
    if report.scsi is not None:
        s = report.scsi
        optional |= {
            "scsi_grown_defects": s.grown_defects,
            "scsi_uncorrected_read_errors": s.uncorrected_read_errors,
            "scsi_uncorrected_write_errors": s.uncorrected_write_errors,
        }
    for name, value in optional.items():
        if value is not None:
            setattr(msg, name, value)
    return msg


def checks_for(ctx: ProbeContext, report: SmartctlReport) -> list[probe_pb2.Check]:
    """Every finding about one drive that smartctl could read: the limits applied."""
    found: list[probe_pb2.Check] = []

    n = report.nvme
    # On NVMe, smartctl's FAILED is the critical warning byte, judged (and decoded) below.
    nvme_warned = n is not None and bool(n.critical_warning)
    failed = report.smart_passed is False or report.exit_status & reader.EXIT_DISK_FAILING
    if failed and not nvme_warned:
        found.append(
            check(
                "storage.smart_failed",
                FAIL,
                "the drive's own SMART self-assessment says FAILED: back up now "
                "and replace the drive",
            )
        )

    if n is not None:
        if n.critical_warning:
            found.append(
                check(
                    "storage.nvme_critical_warning",
                    FAIL,
                    f"the drive raised an NVMe critical warning "
                    f"(0x{n.critical_warning:02x}): {'; '.join(n.critical_warnings)}",
                )
            )
        used = n.percentage_used_pct
        wear_warn = ctx.limit("storage.nvme_wear_warn_pct", 80)
        wear_fail = ctx.limit("storage.nvme_wear_fail_pct", 100)
        if used is not None and used >= wear_fail:
            found.append(
                check(
                    "storage.nvme_worn_out",
                    FAIL,
                    f"{used} % of the drive's rated write endurance is used "
                    f"(limit {wear_fail:g} %): replace the drive",
                )
            )
        elif used is not None and used >= wear_warn:
            found.append(
                check(
                    "storage.nvme_wear",
                    WARN,
                    f"{used} % of the drive's rated write endurance is used "
                    f"(warning at {wear_warn:g} %): plan a replacement",
                )
            )
        spare, spare_min = n.available_spare_pct, n.available_spare_threshold_pct
        if spare is not None and spare_min is not None and spare <= spare_min:
            found.append(
                check(
                    "storage.nvme_spare_low",
                    FAIL,
                    f"spare blocks are down to {spare} %, at or below the drive's "
                    f"own threshold of {spare_min} %",
                )
            )
        media_fail = ctx.limit("storage.media_errors_fail", 10)
        if n.media_errors:
            status = FAIL if n.media_errors >= media_fail else WARN
            found.append(
                check(
                    "storage.nvme_media_errors",
                    status,
                    f"the drive logged {n.media_errors} unrecovered media and data "
                    f"integrity errors; data may have been lost",
                )
            )
        # num_err_log_entries is not judged: it counts every command error the
        # controller logged, most of them harmless (an unsupported log page asked for).

    a = report.ata
    if a is not None:
        realloc_fail = ctx.limit("storage.reallocated_fail", 100)
        if a.reallocated_sectors:
            status = FAIL if a.reallocated_sectors >= realloc_fail else WARN
            found.append(
                check(
                    "storage.ata_reallocated",
                    status,
                    f"{a.reallocated_sectors} sectors were bad and have been "
                    f"replaced by spares (Reallocated_Sector_Ct)",
                )
            )
        if a.pending_sectors:
            # Sectors the drive could not read and waits to remap: data on them is at risk now.
            found.append(
                check(
                    "storage.ata_pending",
                    FAIL,
                    f"{a.pending_sectors} sectors cannot be read and wait to be "
                    f"remapped (Current_Pending_Sector): back up now",
                )
            )
        uncorrectable = max(a.offline_uncorrectable or 0, a.reported_uncorrectable or 0)
        if uncorrectable:
            found.append(
                check(
                    "storage.ata_uncorrectable",
                    FAIL,
                    f"the drive reported {uncorrectable} errors it could not "
                    f"correct (Offline_Uncorrectable / Reported_Uncorrect)",
                )
            )
        if a.udma_crc_errors:
            found.append(
                check(
                    "storage.ata_crc_errors",
                    WARN,
                    f"{a.udma_crc_errors} transfers between drive and computer "
                    f"were corrupted (UDMA CRC errors): check or replace the SATA "
                    f"cable and connector; this is not a fault of the disk's media",
                )
            )
        if a.failing_now:
            found.append(
                check(
                    "storage.ata_attribute_failing",
                    FAIL,
                    f"attributes at or below the drive's failure threshold: "
                    f"{', '.join(a.failing_now)}",
                )
            )
        if a.failed_in_past:
            found.append(
                check(
                    "storage.ata_attribute_failed_past",
                    WARN,
                    f"attributes that were at their failure threshold in the "
                    f"past: {', '.join(a.failed_in_past)}",
                )
            )
    elif report.exit_status & reader.EXIT_PREFAIL_AT_THRESHOLD:
        found.append(
            check(
                "storage.ata_attribute_failing",
                FAIL,
                "smartctl reports prefailure attributes at or below threshold",
            )
        )

    s = report.scsi
    if s is not None:
        defects_fail = ctx.limit("storage.grown_defects_fail", 100)
        if s.grown_defects:
            status = FAIL if s.grown_defects >= defects_fail else WARN
            found.append(
                check(
                    "storage.scsi_grown_defects",
                    status,
                    f"{s.grown_defects} blocks have been added to the grown defect "
                    f"list since manufacture",
                )
            )
        lost = {
            "read": s.uncorrected_read_errors,
            "write": s.uncorrected_write_errors,
            "verify": s.uncorrected_verify_errors,
        }
        lost_text = ", ".join(f"{v} {k}" for k, v in lost.items() if v)
        if lost_text:
            found.append(
                check(
                    "storage.scsi_uncorrected",
                    FAIL,
                    f"uncorrected errors in the drive's error counter log: {lost_text}",
                )
            )

    if report.exit_status & reader.EXIT_ERROR_LOG:
        found.append(
            check(
                "storage.error_log",
                WARN,
                "the drive's error log holds errors (smartctl exit bit 6)",
            )
        )
    if report.exit_status & reader.EXIT_SELF_TEST_LOG:
        found.append(
            check(
                "storage.self_test_errors",
                WARN,
                "a self-test recorded errors (smartctl exit bit 7)",
            )
        )

    max_temp = ctx.limit("storage.max_temp_celsius", 70)
    if report.temp_celsius is not None and report.temp_celsius > max_temp:
        found.append(
            check(
                "storage.temperature_high",
                WARN,
                f"the drive is at {report.temp_celsius} °C, above {max_temp:g} °C: "
                f"check airflow and cooling",
            )
        )
    return found


def _could_not_judge(report: SmartctlReport, source: str) -> SourceError | None:
    """Why this output says nothing about the drive's health, or None if it does."""
    said = "; ".join(report.error_messages)
    if report.open_failed:
        return Unavailable(
            f"smartctl could not open {report.target or 'the device'}"
            f"{': ' + said if said else ''}; drive health could not be judged",
            source,
        )
    if report.has_health_data:
        return None
    if report.command_failed or report.smart_command_failed:
        return Unavailable(
            f"smartctl could not query {report.target or 'the device'}"
            f"{': ' + said if said else ''} (exit status {report.exit_status})",
            source,
        )
    if report.errors:
        return ParseError("; ".join(f"{e.field}: {e.message}" for e in report.errors), source)
    return Unavailable("smartctl reported no SMART health data for this device", source)


def _evidence_parts(report: SmartctlReport) -> list[str]:
    """The numbers behind the verdict, in plain words; the checks say what they mean.

    The drive's own overall verdict comes first and stays visible when the counters
    after it overrule it (PASSED with pending sectors is a FAIL here).
    """
    overall = {True: "PASSED", False: "FAILED", None: "not reported"}[report.smart_passed]
    parts = [f"SMART overall {overall}"]
    n, a, s = report.nvme, report.ata, report.scsi
    if n is not None:
        if n.critical_warning:
            parts.append(f"critical warning 0x{n.critical_warning:02x}")
        if n.percentage_used_pct is not None:
            parts.append(f"{n.percentage_used_pct} % of endurance used")
        if n.available_spare_pct is not None:
            parts.append(f"spare {n.available_spare_pct} %")
        if n.media_errors:
            parts.append(f"{n.media_errors} media errors")
    if a is not None:
        counters = (
            (a.reallocated_sectors, "reallocated sectors", True),
            (a.pending_sectors, "pending sectors", True),
            (
                max(a.offline_uncorrectable or 0, a.reported_uncorrectable or 0),
                "uncorrectable errors",
                False,
            ),
            (a.udma_crc_errors, "CRC errors", False),
        )
        parts += [f"{v} {what}" for v, what, always in counters if v or (always and v is not None)]
    if s is not None:
        if s.grown_defects is not None:
            parts.append(f"{s.grown_defects} grown defects")
        lost = sum(
            v or 0
            for v in (
                s.uncorrected_read_errors,
                s.uncorrected_write_errors,
                s.uncorrected_verify_errors,
            )
        )
        if lost:
            parts.append(f"{lost} uncorrected errors")
    if report.power_on_hours is not None:
        parts.append(f"{report.power_on_hours} power-on hours")
    if report.temp_celsius is not None:
        parts.append(f"{report.temp_celsius} °C")
    return parts


def judge(ctx: ProbeContext, report: SmartctlReport, source: str = "") -> probe_pb2.ProbeResult:
    """One drive's result: its StorageDevice and the checks its counters earn."""
    subject = report.target or Path(source).stem
    device = to_proto(report)
    mode = report.low_power_mode
    if mode is not None and not report.has_health_data:
        # Not a failure to open: smartctl was asked (-n standby) not to wake the drive.
        return result(
            SKIP,
            f"{subject}: in standby: not checked, so as not to wake it",
            subject=subject,
            facts=[fact("power_mode", mode)],
            storage_device=device,
        )
    problem = _could_not_judge(report, source)
    if problem is not None:
        return errored(problem, subject=subject, storage_device=device)

    checks = checks_for(ctx, report)
    status = worst(checks, PASS)
    facts = [fact("smartctl_version", report.smartctl_version)] if report.smartctl_version else []
    facts += [fact("smartctl_message", m) for m in report.error_messages]
    if report.smart_command_failed:
        # Judged on what was read; the person should know part of it could not be.
        facts.append(fact("incomplete", "some SMART commands failed; data may be incomplete"))
    facts += [fact("unreadable_field", f"{e.field}: {e.message}") for e in report.errors]
    name = f"{subject} ({report.model})" if report.model else subject
    evidence = f"{name}: " + ", ".join(_evidence_parts(report))
    return result(
        status, evidence, subject=subject, checks=checks, facts=facts, storage_device=device
    )
