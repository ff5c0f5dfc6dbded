"""One golden end-to-end test per captured machine: every telemetry probe, the whole report.

As node_exporter tests its collectors: run everything against a fixture tree and diff
the full output against a checked-in file. After an intended change, rewrite them with

    .venv/bin/pytest tests/test_golden.py --update-golden

and read the diff before committing it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format

from probelink.agent.selfcheck import SelfCheckPlan, run_selfcheck
from probelink.probes.context import ProbeContext
from tests.conftest import MACHINES

GOLDEN = Path(__file__).parent / "golden"
MACHINE_NAMES = sorted(p.name for p in MACHINES.iterdir() if (p / "sys").is_dir())


def normalized(machine: str, root: Path | None = None) -> str:
    root = root or MACHINES / machine
    ctx = ProbeContext.for_machine(root / "sys", timeout_s=30)
    report = run_selfcheck(ctx, SelfCheckPlan()).report
    # What changes from run to run is not part of what the probes found.
    report.report_id = "00000000-0000-0000-0000-000000000000"
    report.agent_version = "golden"
    report.ClearField("started_at")
    report.ClearField("finished_at")
    for r in report.results:
        r.ClearField("duration")
    data = json_format.MessageToDict(report, preserving_proto_field_name=True)
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    # Sources named by path (a captured smartctl output) depend on where the checkout is.
    return text.replace(str(root), "<machine>")


@pytest.mark.parametrize("machine", MACHINE_NAMES)
def test_report_matches_golden(machine: str, update_golden: bool) -> None:
    path = GOLDEN / f"{machine}.json"
    got = normalized(machine)
    if update_golden:
        path.parent.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    assert path.exists(), f"no golden file for {machine}: run with --update-golden"
    want = path.read_text(encoding="utf-8")
    assert got == want, (
        f"{machine}: report differs from {path} (rerun with --update-golden and review the diff)"
    )


def test_every_machine_is_captured_with_sysfs() -> None:
    assert set(MACHINE_NAMES) >= {
        "laptop-worn-battery",
        "phone-charge-units",
        "desktop-no-battery",
        "board-iio-typec",
    }
