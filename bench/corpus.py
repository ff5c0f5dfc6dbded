"""A corpus of realistic reports, as a fleet sends them, for the server benchmarks.

    from corpus import build_corpus
    reports = build_corpus(2000, seed=0)      # list of serialized probelink.v1.Report

The agent's real self-check runs once on each captured machine in
tests/fixtures/machines (and again with other captured drives from tests/fixtures/smartctl,
so the fleet holds healthy, worn and failing NVMe, ATA and SCSI disks). Each of those
reports is a template for many *devices*; each device sends a few reports over days:

- per device: its own serial numbers, MAC address and host name (same length and
  alphabet as the captured ones, replaced wherever the text mentions them too), its own
  wear (battery health and cycles, power-on hours, error counters);
- per report: a fresh UUID, its own times and probe durations, drifting gauges
  (temperatures, charge, fan speeds, load, disk and memory use) and, now and then, a
  result whose status changed.

Numbers quoted in a result's evidence and check messages follow its fields, so the text
differs from device to device as it does in a real fleet (thresholds stay as they are).
Devices come one after another in the list: the first half and the second half share
at most one device, which is what the dictionary measurement relies on.

Deterministic for a seed; cached under build/bench-corpus/.
"""

from __future__ import annotations

import hashlib
import random
import re
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from probelink.v1 import battery_pb2, probe_pb2, report_pb2, status_pb2

REPO = Path(__file__).resolve().parent.parent
MACHINES = REPO / "tests" / "fixtures" / "machines"
SMARTCTL = REPO / "tests" / "fixtures" / "smartctl"
CACHE = REPO / "build" / "bench-corpus"
REPORTS_PER_DEVICE = 4

# Other drives to put in a machine besides the ones it was captured with.
_DRIVE_SWAPS: dict[str, list[list[str]]] = {
    "laptop-worn-battery": [["nvme-healthy"], ["nvme-worn"], ["nvme-critical-warning"]],
    "desktop-no-battery": [["ata-healthy", "ata-healthy"], ["ata-standby", "scsi-grown-defects"]],
}
# String fields that name one physical device: each device gets its own value.
_IDENTIFIERS = {"serial_number", "imei", "serial", "product_serial", "mac_address", "hostname"}
# Fields fixed by the model, the chip or the configuration: never drift.
_FIXED = re.compile(
    r"design|threshold|crit|max_|min_|_max|_min|total|capacity_bytes|cores|busnum|devnum|"
    r"usb_version|speed|max_child|mtu|exit_status|critical_warning|max_state|max_offered|"
    r"voltage_v|current_a|power_w|high"
)
# Counters grow over a device's life: scaled by its wear, then a little each report.
_COUNTERS = re.compile(
    r"cycle_count|power_on_hours|_errors|_entries|_shutdowns|_sectors|_events|read_count|"
    r"write_count|read_bytes|write_bytes|_time_ms|drops_|errors_|uptime_s"
)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w]|\.\d)")
_JUDGED = (status_pb2.STATUS_PASS, status_pb2.STATUS_WARN, status_pb2.STATUS_FAIL)


@dataclass
class _Device:
    template: report_pb2.Report
    rng: random.Random
    identifiers: dict[str, str]
    wear: float
    start_s: int


def build_corpus(n: int, seed: int = 0) -> list[bytes]:
    """`n` serialized Reports of a simulated fleet, the same for the same (n, seed)."""
    if n < 1:
        raise ValueError(f"a corpus needs at least one report, not {n}")
    path = CACHE / f"corpus-{_cache_key(n, seed)}.bin"
    if path.exists():
        return list(_read_records(path.read_bytes()))
    corpus = _generate(n, seed)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(struct.pack("<I", len(r)) + r for r in corpus))
    tmp.replace(path)
    return corpus


def templates() -> list[report_pb2.Report]:
    """One real self-check report per captured machine and per swapped set of drives."""
    from probelink.agent.selfcheck import SelfCheckPlan, run_selfcheck
    from probelink.probes.context import ProbeContext

    out = []
    for machine in sorted(p for p in MACHINES.iterdir() if (p / "sys").is_dir()):
        # An empty list: the drives the machine was captured with.
        drive_sets: list[list[Path]] = [[]]
        for names in _DRIVE_SWAPS.get(machine.name, []):
            drive_sets.append([SMARTCTL / f"{name}.json" for name in names])
        for drives in drive_sets:
            ctx = ProbeContext.for_machine(machine / "sys", timeout_s=30, smartctl_json=drives)
            report = run_selfcheck(ctx, SelfCheckPlan()).report
            _scrub_paths(report, machine)
            out.append(report)
    return out


def _generate(n: int, seed: int) -> list[bytes]:
    bases = templates()
    out: list[bytes] = []
    device_no = 0
    while len(out) < n:
        device = _new_device(bases[device_no % len(bases)], random.Random(f"{seed}:{device_no}"))
        for nth in range(min(REPORTS_PER_DEVICE, n - len(out))):
            out.append(_report_of(device, nth).SerializeToString(deterministic=True))
        device_no += 1
    return out


def _new_device(template: report_pb2.Report, rng: random.Random) -> _Device:
    identifiers: dict[str, str] = {}
    for _msg, field, value in _strings(template):
        if field.name in _IDENTIFIERS and value and value not in identifiers:
            identifiers[value] = _lookalike(value, rng)
    # Fleets are bought over years: wear differs a lot from device to device.
    # All in the past of the run that made the templates: a server refuses future times.
    start_s = template.started_at.seconds - (REPORTS_PER_DEVICE + 1) * 86400
    start_s -= rng.randrange(60 * 86400)
    return _Device(template, rng, identifiers, wear=rng.uniform(0.5, 1.6), start_s=start_s)


def _report_of(device: _Device, nth: int) -> report_pb2.Report:
    rng = device.rng
    report = report_pb2.Report()
    report.CopyFrom(device.template)
    report.report_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    _replace_identifiers(report, device.identifiers)
    for result in report.results:
        _drift_result(result, rng, device.wear, nth)
    if rng.random() < 0.05:
        _change_a_status(report, rng)
    started = device.start_s + nth * 86400 + rng.randrange(3600)
    report.started_at.FromNanoseconds(started * 10**9 + rng.randrange(10**9))
    total_ns = 0
    for result in report.results:
        ns = int(result.duration.ToNanoseconds() * rng.uniform(0.7, 1.4))
        result.duration.FromNanoseconds(ns)
        total_ns += ns
    report.finished_at.FromNanoseconds(report.started_at.ToNanoseconds() + total_ns + 2_000_000)
    return report


def _drift_result(result: probe_pb2.ProbeResult, rng: random.Random, wear: float, nth: int) -> None:
    """Move the result's numbers as a device's would, and the text quoting them."""
    changes: list[tuple[float, float]] = []
    family = result.WhichOneof("data")
    if family == "battery":
        _drift_battery(result.battery, rng, wear, changes)
    elif family in ("filesystem", "memory"):
        _drift_usage(getattr(result, family), rng, changes)
    for msg in _messages(result):
        if family in ("battery", "filesystem", "memory") and msg is getattr(result, family):
            continue
        for field, value in list(msg.ListFields()):
            if field.is_repeated or not _is_number(field):
                continue
            new = _drifted(field.name, value, rng, wear, nth)
            if new != value:
                setattr(msg, field.name, new)
                changes.append((value, new))
                if field.name.endswith("_bytes"):
                    changes.extend((value / 1024**k, new / 1024**k) for k in (2, 3, 4))
    if changes:
        result.evidence = _requote(result.evidence, changes)
        for check in result.checks:
            check.message = _requote(check.message, changes)


def _drift_battery(
    bat: battery_pb2.BatteryInfo,
    rng: random.Random,
    wear: float,
    changes: list[tuple[float, float]],
) -> None:
    old = {f.name: v for f, v in bat.ListFields()}
    if bat.health_pct:
        _set(bat, "health_pct", round(min(100.0, bat.health_pct * (0.75 + 0.25 / wear)), 1), old)
    if bat.cycle_count:
        _set(bat, "cycle_count", round(bat.cycle_count * wear), old)
    if bat.capacity_pct:
        _set(bat, "capacity_pct", float(rng.randint(8, 100)), old)
    for full, design, now in (
        ("energy_full_wh", "energy_full_design_wh", "energy_now_wh"),
        ("charge_full_ah", "charge_full_design_ah", "charge_now_ah"),
    ):
        if getattr(bat, design) and bat.health_pct:
            _set(bat, full, round(getattr(bat, design) * bat.health_pct / 100, 3), old)
        if getattr(bat, full) and bat.capacity_pct:
            _set(bat, now, round(getattr(bat, full) * bat.capacity_pct / 100, 3), old)
    for name in ("voltage_now_v", "power_now_w", "current_now_a", "temp_celsius"):
        if getattr(bat, name):
            _set(bat, name, round(getattr(bat, name) * rng.uniform(0.9, 1.1), 3), old)
    changes.extend(
        (old[f.name], v)
        for f, v in bat.ListFields()
        if _is_number(f) and f.name in old and old[f.name] != v
    )


def _drift_usage(msg: Message, rng: random.Random, changes: list[tuple[float, float]]) -> None:
    """Filesystem or memory: the used share moves, the byte counts follow it."""
    total = getattr(msg, "total_bytes", 0)
    pct = getattr(msg, "used_pct", 0.0)
    if not total or not pct:
        return
    new_pct = round(min(99.9, max(0.1, pct + rng.gauss(0, 4))), 1)
    used = int(total * new_pct / 100)
    pairs = [("used_pct", new_pct)]
    if hasattr(msg, "free_bytes"):
        pairs += [("used_bytes", used), ("free_bytes", total - used)]
    else:
        pairs += [("available_bytes", total - used)]
    for name, new in pairs:
        old = getattr(msg, name)
        setattr(msg, name, new)
        changes.append((old, new))
        if name in ("free_bytes", "available_bytes"):
            # The text quotes these (and the fixed total) in MiB, GiB or TiB.
            changes.extend((old / 1024**k, new / 1024**k) for k in (2, 3, 4))


def _set(msg: Message, name: str, value: float, old: dict[str, float]) -> None:
    old.setdefault(name, getattr(msg, name))
    setattr(msg, name, value)


def _drifted(name: str, value: float, rng: random.Random, wear: float, nth: int) -> float:
    if _FIXED.search(name) or not value:
        return value
    if _COUNTERS.search(name):
        grown = value * wear * (1 + 0.02 * nth)
    elif name.endswith("_pct"):
        grown = min(100.0, max(0.0, value + rng.gauss(0, 3)))
    else:
        grown = value * rng.gauss(1, 0.06)
    if isinstance(value, int):
        return max(0, round(grown))
    return round(grown, _decimals(value))


def _requote(text: str, changes: list[tuple[float, float]]) -> str:
    """Replace numbers in `text` that quote an old value (at their precision) with the new."""

    def swap(m: re.Match[str]) -> str:
        token = m.group(0)
        places = len(token.partition(".")[2])
        quoted = float(token)
        for old, new in changes:
            if old and abs(round(old, places) - quoted) < 1e-9:
                return f"{new:.{places}f}"
        return token

    return _NUMBER.sub(swap, text)


def _change_a_status(report: report_pb2.Report, rng: random.Random) -> None:
    """Now and then a check tips over its limit between two reports."""
    candidates = [r for r in report.results if r.status == status_pb2.STATUS_PASS and r.checks]
    if not candidates:
        return
    result = rng.choice(candidates)
    result.status = status_pb2.STATUS_WARN
    result.checks[0].status = status_pb2.STATUS_WARN
    judged = [r.status for r in report.results if r.status in _JUDGED]
    report.overall = max(judged) if judged else status_pb2.STATUS_UNSPECIFIED


def _replace_identifiers(report: report_pb2.Report, identifiers: dict[str, str]) -> None:
    # Short ones (a battery's "1842") would also hit unrelated numbers in the text.
    long = {old: new for old, new in identifiers.items() if len(old) >= 6}
    for msg, field, value in _strings(report):
        if field.name in _IDENTIFIERS and value in identifiers:
            setattr(msg, field.name, identifiers[value])
            continue
        new_value = value
        for old, new in long.items():
            if old in new_value:
                new_value = new_value.replace(old, new)
        if new_value != value:
            setattr(msg, field.name, new_value)


def _scrub_paths(report: report_pb2.Report, machine: Path) -> None:
    """A captured smartctl output is named by its path here; on a device it is the drive."""
    pattern = re.compile(r"/\S*/smartctl/([\w.-]+)\.json")
    for msg, field, value in _strings(report):
        if "/smartctl/" in value:
            setattr(msg, field.name, pattern.sub(r"/dev/\1", value))


def _lookalike(value: str, rng: random.Random) -> str:
    """Another value of the same shape: digits stay digits, letters stay letters."""
    out = []
    for ch in value:
        if ch.isdigit():
            out.append(rng.choice("0123456789"))
        elif "a" <= ch <= "f" or "A" <= ch <= "F":
            hexdigits = "0123456789abcdef"
            out.append(rng.choice(hexdigits if ch.islower() else hexdigits.upper()))
        elif ch.isascii() and ch.isalpha():
            out.append(
                rng.choice(
                    "abcdefghijklmnopqrstuvwxyz" if ch.islower() else "ABCDEFGHJKLMNPRSTVWXYZ"
                )
            )
        else:
            out.append(ch)
    return "".join(out)


def _messages(msg: Message) -> Iterator[Message]:
    """`msg` and every message inside it."""
    yield msg
    for field, value in msg.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.is_repeated:
            for item in value:
                yield from _messages(item)
        else:
            yield from _messages(value)


def _strings(msg: Message) -> Iterator[tuple[Message, FieldDescriptor, str]]:
    for m in _messages(msg):
        for field, value in m.ListFields():
            if field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated:
                yield m, field, value


def _is_number(field: FieldDescriptor) -> bool:
    return field.type not in (
        FieldDescriptor.TYPE_MESSAGE,
        FieldDescriptor.TYPE_STRING,
        FieldDescriptor.TYPE_BYTES,
        FieldDescriptor.TYPE_BOOL,
        FieldDescriptor.TYPE_ENUM,
        FieldDescriptor.TYPE_GROUP,
    )


def _decimals(value: float) -> int:
    text = repr(value)
    return min(3, len(text.partition(".")[2])) if "e" not in text else 3


def _cache_key(n: int, seed: int) -> str:
    """Changes when the fixtures' reports or this generator change."""
    h = hashlib.sha256(f"{n}:{seed}".encode())
    h.update(Path(__file__).read_bytes())
    for golden in sorted((REPO / "tests" / "golden").glob("*.json")):
        h.update(golden.read_bytes())
    return h.hexdigest()[:16]


def _read_records(data: bytes) -> Iterator[bytes]:
    pos = 0
    while pos < len(data):
        (size,) = struct.unpack_from("<I", data, pos)
        yield data[pos + 4 : pos + 4 + size]
        pos += 4 + size
