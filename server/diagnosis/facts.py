"""A report's typed family data as plain values a CEL rule can read.

The rules never see protobuf: `facts_of` turns a report into maps, lists, numbers, strings
and bools, named as the rules name them::

    facts = facts_of(report)
    facts["battery"]["health_pct"]          # 62.0
    facts["storage"][0]["reallocated"]      # 8 (only when the drive reported it)
    facts["families"]                       # ["battery", "ports", "sensors", ...]

What is missing stays missing, never a zero that looks healthy: a field the probe did not
report is absent from its map (a rule says `has(drive.pending)`), and a family with no typed
data is absent from the facts. Why it is absent is kept apart:

- ``absent_families``: the probes ran and found no such hardware (a desktop has no battery);
  rules of that family do not apply.
- ``unreadable_families``: the probes could not read it (an error, or a skip with an error);
  rules of that family "could not judge".
- neither: the report has no results for the family at all; also "could not judge".
- ``unreadable_parts``: a family that was judged, but one of its drives or batteries could
  not be read (family → [(name, why)]): that part "could not judge".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from google.protobuf.message import Message

from probelink.v1 import (
    battery_pb2,
    ports_pb2,
    probe_pb2,
    report_pb2,
    sensors_pb2,
    status_pb2,
    storage_pb2,
    system_pb2,
)

Facts = dict[str, Any]

# Family name (the facts key and a rule's `family`) → the probes' category.
FAMILIES: dict[str, int] = {
    "battery": status_pb2.CATEGORY_BATTERY,
    "storage": status_pb2.CATEGORY_STORAGE,
    "sensors": status_pb2.CATEGORY_SENSORS,
    "ports": status_pb2.CATEGORY_PORTS,
    "system": status_pb2.CATEGORY_SYSTEM,
}

# The families' names in Chinese, for texts that name a family.
FAMILY_ZH: dict[str, str] = {
    "battery": "电池",
    "storage": "存储",
    "sensors": "传感器",
    "ports": "端口",
    "system": "系统",
}

_JUDGED = {status_pb2.STATUS_PASS, status_pb2.STATUS_WARN, status_pb2.STATUS_FAIL}

# hwmon chips whose readings are the CPU's own (coretemp: Intel; k10temp/zenpower: AMD;
# cpu_thermal: most ARM boards). Other chips' "CPUTIN" is a board sensor near the socket.
_CPU_CHIPS = frozenset({"coretemp", "k10temp", "zenpower", "cpu_thermal"})


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    """`BATTERY_STATUS_DISCHARGING` → "discharging": short, stable, easy to compare in CEL."""
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _present(message: Message, names: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The optional fields `message` carries, under their fact names; absent ones stay out."""
    return {fact: getattr(message, field) for field, fact in names if message.HasField(field)}


def _battery(info: battery_pb2.BatteryInfo) -> dict[str, Any]:
    fact: dict[str, Any] = {
        "name": info.name,
        "status": _enum_name(battery_pb2.BatteryStatus, info.status, "BATTERY_STATUS_"),
        "health": _enum_name(battery_pb2.BatteryHealth, info.health, "BATTERY_HEALTH_"),
        "technology": info.technology,
    }
    fact |= _present(
        info,
        [
            ("capacity_pct", "capacity_pct"),
            ("health_pct", "health_pct"),
            ("cycle_count", "cycle_count"),
            ("temp_celsius", "temp_celsius"),
            ("energy_full_wh", "energy_full_wh"),
            ("energy_full_design_wh", "energy_full_design_wh"),
            ("present", "present"),
            ("power_plugged", "power_plugged"),
        ],
    )
    return fact


def _drive(result: probe_pb2.ProbeResult) -> dict[str, Any]:
    dev = result.storage_device
    fact: dict[str, Any] = {
        "name": dev.name,
        "model": dev.model,
        "kind": _enum_name(storage_pb2.StorageProtocol, dev.protocol, "STORAGE_PROTOCOL_"),
        "source": _enum_name(storage_pb2.StorageSource, dev.source, "STORAGE_SOURCE_"),
        "smart_overall": _enum_name(storage_pb2.SmartOverall, dev.smart_overall, "SMART_OVERALL_"),
        # The probe's own status ("pass", "error", ...): an unreadable drive is in the list
        # so a rule can tell "no counters" from "no drive".
        "status": _enum_name(status_pb2.Status, result.status, "STATUS_"),
        "failing_attributes": list(dev.ata_failing_attributes),
    }
    fact |= _present(
        dev,
        [
            ("capacity_bytes", "capacity_bytes"),
            ("temp_celsius", "temperature"),
            ("power_on_hours", "power_on_hours"),
            ("nvme_critical_warning", "critical_warning"),
            ("nvme_percentage_used_pct", "percentage_used"),
            ("nvme_available_spare_pct", "available_spare_pct"),
            ("nvme_available_spare_threshold_pct", "available_spare_threshold_pct"),
            ("nvme_media_errors", "media_errors"),
            ("ata_reallocated_sectors", "reallocated"),
            ("ata_pending_sectors", "pending"),
            ("ata_offline_uncorrectable", "uncorrectable"),
            ("ata_reported_uncorrectable", "reported_uncorrectable"),
            ("ata_udma_crc_errors", "crc_errors"),
            ("scsi_grown_defects", "grown_defects"),
            ("scsi_uncorrected_read_errors", "uncorrected_read_errors"),
            ("scsi_uncorrected_write_errors", "uncorrected_write_errors"),
        ],
    )
    return fact


def _thermal(sensor: sensors_pb2.ThermalSensor) -> dict[str, Any]:
    fact: dict[str, Any] = {
        "chip": sensor.chip,
        "label": sensor.label,
        "alarm": sensor.alarm,
        "sensor_fault": sensor.sensor_fault,
    }
    return fact | _present(
        sensor,
        [
            ("temp_celsius", "temp_celsius"),
            ("max_celsius", "max_celsius"),
            ("crit_celsius", "crit_celsius"),
        ],
    )


def _fan(fan: sensors_pb2.Fan) -> dict[str, Any]:
    fact: dict[str, Any] = {"chip": fan.chip, "label": fan.label, "alarm": fan.alarm}
    return fact | _present(fan, [("rpm", "rpm"), ("min_rpm", "min_rpm")])


def _zone(zone: sensors_pb2.ThermalZone) -> dict[str, Any]:
    fact: dict[str, Any] = {"zone": zone.zone, "type": zone.type, "sensor_fault": zone.sensor_fault}
    return fact | _present(zone, [("temp_celsius", "temp_celsius")])


def _usb(dev: ports_pb2.UsbDevice) -> dict[str, Any]:
    fact: dict[str, Any] = {"bus_id": dev.bus_id, "product": dev.product, "degraded": dev.degraded}
    return fact | _present(
        dev, [("speed_mbps", "speed_mbps"), ("capable_speed_mbps", "capable_speed_mbps")]
    )


def _link(link: ports_pb2.NetworkLink) -> dict[str, Any]:
    fact: dict[str, Any] = {
        "name": link.name,
        "is_up": link.is_up,
        "is_loopback": link.is_loopback,
        "errors_in": link.errors_in,
        "errors_out": link.errors_out,
    }
    return fact | _present(link, [("speed_mbps", "speed_mbps")])


def _system(results: list[probe_pb2.ProbeResult]) -> dict[str, Any]:
    fact: dict[str, Any] = {}
    for result in results:
        kind = result.WhichOneof("data")
        if kind == "cpu":
            cpu: system_pb2.CpuInfo = result.cpu
            fact["cpu"] = {"model_name": cpu.model_name, "logical_cores": cpu.logical_cores}
            fact["cpu"] |= _present(cpu, [("load_1m_pct", "load_1m_pct")])
        elif kind == "memory":
            mem: system_pb2.MemoryInfo = result.memory
            fact["memory"] = {"total_bytes": mem.total_bytes, "used_pct": mem.used_pct}
        elif kind == "os":
            fact["os"] = {"system": result.os.system, "kernel_release": result.os.kernel_release}
        elif kind == "dmi":
            dmi = result.dmi
            fact["dmi"] = {"sys_vendor": dmi.sys_vendor, "product_name": dmi.product_name}
            fact["dmi"] |= {"bios_version": dmi.bios_version, "bios_date": dmi.bios_date}
    return fact


def _sensors(results: list[probe_pb2.ProbeResult]) -> dict[str, Any]:
    temps = [_thermal(r.thermal_sensor) for r in results if r.HasField("thermal_sensor")]
    fact: dict[str, Any] = {
        "temperatures": temps,
        "fans": [_fan(r.fan) for r in results if r.HasField("fan")],
        "thermal_zones": [_zone(r.thermal_zone) for r in results if r.HasField("thermal_zone")],
    }
    # The hottest CPU reading, so a rule needs no chip list; absent when no CPU chip read.
    cpu = [
        t["temp_celsius"]
        for t in temps
        if t["chip"] in _CPU_CHIPS and "temp_celsius" in t and not t["sensor_fault"]
    ]
    if cpu:
        fact["cpu_celsius"] = max(cpu)
    return fact


def _ports(results: list[probe_pb2.ProbeResult]) -> dict[str, Any]:
    return {
        "usb": [_usb(r.usb_device) for r in results if r.HasField("usb_device")],
        "network": [_link(r.network_link) for r in results if r.HasField("network_link")],
        "typec_ports": sum(1 for r in results if r.HasField("typec_port")),
    }


def is_system_battery(result: probe_pb2.ProbeResult) -> bool:
    # A peripheral's battery (a mouse) is never judged by a laptop battery's limits.
    return result.HasField("battery") and result.battery.scope != battery_pb2.BATTERY_SCOPE_DEVICE


def _family_data(family: str, results: list[probe_pb2.ProbeResult]) -> Any:
    """The family's fact, or None when the results carry no typed data for it."""
    if family == "battery":
        batteries = [r.battery for r in results if is_system_battery(r)]
        return _battery(batteries[0]) if batteries else None
    if family == "storage":
        drives = [_drive(r) for r in results if r.HasField("storage_device")]
        return drives or None
    judged = [r for r in results if r.status in _JUDGED]
    if not judged:
        return None
    if family == "sensors":
        return _sensors(judged)
    if family == "ports":
        return _ports(judged)
    return _system(judged)


def facts_of(report: report_pb2.Report, families: Collection[str] | None = None) -> Facts:
    """The report's family data as CEL-friendly values; see the module docstring.

    `families` limits the work to the families something will read (the rules'): the
    others are left out as if the report had no results for them.
    """
    by_family: dict[str, list[probe_pb2.ProbeResult]] = {name: [] for name in FAMILIES}
    category_to_family = {category: name for name, category in FAMILIES.items()}
    for result in report.results:
        family = category_to_family.get(result.category)
        if family is not None:
            by_family[family].append(result)

    facts: Facts = {
        "families": [],
        "absent_families": {},
        "unreadable_families": {},
        "unreadable_parts": {},
    }
    for family, results in by_family.items():
        if not results or (families is not None and family not in families):
            continue
        data = _family_data(family, results)
        failed = [
            r
            for r in results
            if (r.HasField("error") or r.status == status_pb2.STATUS_ERROR)
            # A mouse's battery that could not be read says nothing of the system's.
            and not (r.HasField("battery") and not is_system_battery(r))
        ]
        if data is not None and any(r.status in _JUDGED for r in results):
            facts[family] = data
            facts["families"].append(family)
            # A failed part's result carries the part's typed data, or none at all (the
            # tool could not run for it); a file system's or disk I/O's is not a part.
            parts = [
                r
                for r in failed
                if family in _PART_DATA and r.WhichOneof("data") in (None, _PART_DATA[family])
            ]
            if parts:
                # One drive of two unreadable: the other's health says nothing about it.
                facts["unreadable_parts"][family] = [_part_problem(r) for r in parts]
        elif not failed:
            # Skipped, or results with no typed data (a phone's file systems, no SMART
            # drive): nothing of this kind to judge here, and nothing went wrong.
            facts["absent_families"][family] = results[0].evidence
        else:
            facts["unreadable_families"][family] = failed[0].error.message or failed[0].evidence
    return facts


# Families whose rules judge physical parts one by one (drives, batteries), and the typed
# data such a part's result carries: a part that could not be read is named on its own, as
# its family's rules could not judge it. (A file system that could not be read is not a
# drive, and no storage rule reads file systems.)
_PART_DATA = {"storage": "storage_device", "battery": "battery"}


def _part_problem(result: probe_pb2.ProbeResult) -> tuple[str, str]:
    """(the part's name, why it could not be read) of a failed result."""
    data = result.WhichOneof("data")
    name = result.subject or (getattr(getattr(result, data), "name", "") if data else "")
    return name or result.probe, result.error.message or result.evidence
