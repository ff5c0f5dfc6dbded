"""The probe runner turns every way a probe can end into an honest result."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from probelink.probes.context import ProbeContext
from probelink.probes.errors import AttributeReadError, MissingUtility, Unsupported
from probelink.probes.registry import SENSORS, TELEMETRY, ProbeSpec
from probelink.probes.results import ERROR, PASS, SKIP, result
from probelink.probes.runner import run_one, run_telemetry
from probelink.v1 import probe_pb2

Results = Iterable[probe_pb2.ProbeResult]


def spec(name: str, fn: object) -> ProbeSpec:
    return ProbeSpec(name, SENSORS, TELEMETRY, "test probe", fn)  # type: ignore[arg-type]


def ctx(tmp_path: Path, timeout_s: float = 5.0) -> ProbeContext:
    return ProbeContext.for_machine(tmp_path / "sys", timeout_s=timeout_s)


def test_results_are_stamped_with_name_category_kind_and_duration(tmp_path: Path) -> None:
    def ok(c: ProbeContext) -> Results:
        return [result(PASS, "fine", subject="a"), result(PASS, "fine", subject="b")]

    out = run_one(spec("sensors.ok", ok), ctx(tmp_path))
    assert [(r.probe, r.subject, r.status, r.category, r.kind) for r in out] == [
        ("sensors.ok", "a", PASS, SENSORS, TELEMETRY),
        ("sensors.ok", "b", PASS, SENSORS, TELEMETRY),
    ]
    assert out[0].HasField("duration")


def test_unsupported_is_skip_with_the_reason(tmp_path: Path) -> None:
    def none(c: ProbeContext) -> Results:
        raise Unsupported("no fans here")

    [r] = run_one(spec("sensors.none", none), ctx(tmp_path))
    assert (r.status, r.evidence, r.HasField("error")) == (SKIP, "no fans here", False)


def test_source_errors_keep_their_kind(tmp_path: Path) -> None:
    def broken(c: ProbeContext) -> Results:
        raise AttributeReadError("reading x failed: EIO (Input/output error)", "class/hwmon/x")

    def missing(c: ProbeContext) -> Results:
        raise MissingUtility("smartctl is not installed", "smartctl")

    [r] = run_one(spec("sensors.broken", broken), ctx(tmp_path))
    assert r.status == ERROR
    assert r.error == probe_pb2.ProbeError(
        kind=probe_pb2.PROBE_ERROR_KIND_FILE_READ,
        message="reading x failed: EIO (Input/output error)",
        source="class/hwmon/x",
    )
    [r] = run_one(spec("sensors.missing", missing), ctx(tmp_path))
    assert r.error.kind == probe_pb2.PROBE_ERROR_KIND_MISSING_UTILITY


def test_a_probe_that_raises_is_an_error_not_a_crash(tmp_path: Path) -> None:
    def buggy(c: ProbeContext) -> Results:
        return [result(PASS, str(1 / 0))]

    [r] = run_one(spec("sensors.buggy", buggy), ctx(tmp_path))
    assert r.status == ERROR
    assert r.error.kind == probe_pb2.PROBE_ERROR_KIND_INTERNAL
    assert "ZeroDivisionError" in r.evidence


def test_a_probe_that_returns_nothing_is_skipped(tmp_path: Path) -> None:
    [r] = run_one(spec("sensors.empty", lambda c: []), ctx(tmp_path))
    assert r.status == SKIP


def test_a_hanging_probe_is_abandoned_and_the_others_report(tmp_path: Path) -> None:
    release = threading.Event()

    def hangs(c: ProbeContext) -> Results:
        release.wait(60)
        return [result(PASS, "too late")]

    quick_runs: list[str] = []

    def quick(c: ProbeContext) -> Results:
        quick_runs.append("ran")
        return [result(PASS, "quick")]

    try:
        out = run_telemetry(
            [spec("sensors.hangs", hangs), spec("sensors.quick", quick)],
            ctx(tmp_path, timeout_s=0.3),
        )
    finally:
        release.set()
    assert [(r.probe, r.status) for r in out] == [("sensors.hangs", ERROR), ("sensors.quick", PASS)]
    assert out[0].error.kind == probe_pb2.PROBE_ERROR_KIND_TIMEOUT
    assert "0.3 s" in out[0].evidence
    # Once its hung read returns, the abandoned worker stops: no probe runs twice.
    for thread in threading.enumerate():
        if thread.name == "probes-from:sensors.hangs":
            thread.join(10)
    assert quick_runs == ["ran"]


def test_a_probe_module_that_cannot_load_is_an_error_and_the_others_still_run(
    tmp_path: Path,
) -> None:
    # A real module that fails at import, put on the system family's path, in a fresh
    # interpreter so this process's registry stays as it was.
    (tmp_path / "zz_broken.py").write_text("raise ImportError('libfoo is missing')\n")
    script = f"""
import json
import probelink.probes.system as family
family.__path__.append({str(tmp_path)!r})
from probelink.probes import TELEMETRY, ProbeContext, all_probes, get, run_one
names = [s.name for s in all_probes(TELEMETRY)]
[r] = run_one(get("system.zz_broken"), ProbeContext.for_machine())
print(json.dumps({{"names": names, "status": r.status, "kind": r.error.kind,
                  "message": r.error.message}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    out = json.loads(proc.stdout)
    assert {"system.zz_broken", "system.cpu", "battery.power_supply"} <= set(out["names"])
    assert out["status"] == ERROR
    assert out["kind"] == probe_pb2.PROBE_ERROR_KIND_INTERNAL
    assert "probelink.probes.system.zz_broken could not be loaded" in out["message"]
    assert "ImportError: libfoo is missing" in out["message"]
