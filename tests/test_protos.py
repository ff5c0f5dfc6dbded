"""The contract: committed generated code is fresh, buf lint passes, and the rules hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor as _descriptor

from probelink.v1 import (
    admin_pb2,
    battery_pb2,
    gateway_pb2,
    options_pb2,
    ports_pb2,
    probe_pb2,
    report_pb2,
    reports_pb2,
    routine_pb2,
    sensors_pb2,
    status_pb2,
    storage_pb2,
    system_pb2,
    wire_pb2,
)

REPO = Path(__file__).resolve().parent.parent
V1 = REPO / "protos" / "probelink" / "v1"
MODULES = [
    admin_pb2,
    battery_pb2,
    gateway_pb2,
    options_pb2,
    ports_pb2,
    probe_pb2,
    report_pb2,
    reports_pb2,
    routine_pb2,
    sensors_pb2,
    status_pb2,
    storage_pb2,
    system_pb2,
    wire_pb2,
]


def test_committed_code_equals_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "protos" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "probelink" / "v1").iterdir()}
    committed = {
        p.name: p.read_bytes()
        for p in V1.iterdir()
        if p.name.endswith(("_pb2.py", "_pb2_grpc.py", "_pb2.pyi", "_pb2_grpc.pyi"))
    }
    assert sorted(fresh) == sorted(committed), "generated files differ: run `make protos`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"committed code is stale, run `make protos`: {stale}"


def test_buf_lint_passes() -> None:
    buf = REPO / ".tools" / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        buf_path = shutil.which("buf")
        if buf_path is None:
            pytest.skip("buf is not installed here; `make buf-lint` installs it (CI runs it)")
        buf = Path(buf_path)
    proc = subprocess.run([str(buf), "lint"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _all_messages() -> list[_descriptor.Descriptor]:
    out: list[_descriptor.Descriptor] = []

    def walk(d: _descriptor.Descriptor) -> None:
        out.append(d)
        for nested in d.nested_types:
            walk(nested)

    for m in MODULES:
        for d in m.DESCRIPTOR.message_types_by_name.values():
            walk(d)
    return out


def test_every_enum_starts_with_unspecified_zero() -> None:
    for m in MODULES:
        for enum in m.DESCRIPTOR.enum_types_by_name.values():
            zero = enum.values_by_number[0]
            assert zero.name.endswith("_UNSPECIFIED"), enum.full_name


# Names that carry personal data wherever they appear; the privacy filter acts on the
# field option, and this test keeps the option on every such field.
PERSONAL_NAMES = ("serial", "imei", "mac_address", "hostname")


def test_personal_fields_are_marked_by_the_contract() -> None:
    marked, unmarked = [], []
    for d in _all_messages():
        for f in d.fields:
            kind = f.GetOptions().Extensions[options_pb2.personal]
            if kind != options_pb2.PERSONAL_DATA_UNSPECIFIED:
                marked.append(f.full_name)
            elif f.type == f.TYPE_STRING and any(n in f.name for n in PERSONAL_NAMES):
                unmarked.append(f.full_name)
    assert not unmarked, f"fields that look personal but are not marked: {unmarked}"
    assert "probelink.v1.DeviceIdentity.imei" in marked
    assert "probelink.v1.NetworkLink.mac_address" in marked
    assert "probelink.v1.OsInfo.hostname" in marked


def test_probe_result_carries_every_family_message() -> None:
    oneof = probe_pb2.ProbeResult.DESCRIPTOR.oneofs_by_name["data"]
    carried = {f.message_type.full_name for f in oneof.fields if f.message_type is not None}
    families = {
        d.full_name
        for m in (battery_pb2, storage_pb2, sensors_pb2, ports_pb2, system_pb2)
        for d in m.DESCRIPTOR.message_types_by_name.values()
    }
    # Parts of a family message (a PD capability, a trip point) travel inside it.
    parts = {
        "probelink.v1.PdSourceCapability",
        "probelink.v1.TypecPartner",
        "probelink.v1.TypecCable",
        "probelink.v1.TripPoint",
        "probelink.v1.IioChannel",
    }
    assert families - parts <= carried
    assert "probelink.v1.RoutineResult" in carried


def test_a_report_round_trips_with_typed_data() -> None:
    report = report_pb2.Report(
        report_id="6f0c6c1e-7d39-4b7e-9f0e-2f5a3c8b9d10",
        kind=report_pb2.REPORT_KIND_SELF_CHECK,
        results=[
            probe_pb2.ProbeResult(
                probe="battery.power_supply",
                category=status_pb2.CATEGORY_BATTERY,
                status=status_pb2.STATUS_WARN,
                subject="BAT0",
                battery=battery_pb2.BatteryInfo(name="BAT0", health_pct=62.0),
            )
        ],
    )
    back = report_pb2.Report.FromString(report.SerializeToString())
    assert back == report
    assert back.results[0].WhichOneof("data") == "battery"
    # Absent is not zero: an unreported cycle count stays absent.
    assert not back.results[0].battery.HasField("cycle_count")
