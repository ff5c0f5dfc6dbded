"""The capture tool keeps working: a machine captured from a fixture reads the same."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MACHINES
from tests.test_golden import MACHINE_NAMES, normalized

CAPTURE = Path(__file__).parent / "fixtures" / "capture.py"


@pytest.mark.parametrize("machine", MACHINE_NAMES)
def test_capturing_a_machine_round_trips(machine: str, tmp_path: Path) -> None:
    src = MACHINES / machine
    copy = tmp_path / machine
    subprocess.run(
        [sys.executable, str(CAPTURE), str(copy), "--sysfs", str(src / "sys"), "--keep-serials"],
        check=True,
        capture_output=True,
    )
    # Only sys/ goes through the capture tool here; the rest is taken as it is.
    for extra in ("psutil", "smartctl", "etc", "proc", "dev"):
        if (src / extra).exists():
            shutil.copytree(src / extra, copy / extra, symlinks=False)
    assert normalized(machine, root=copy) == normalized(machine)


def test_serials_are_replaced_unless_kept(tmp_path: Path) -> None:
    src = MACHINES / "laptop-worn-battery" / "sys"
    subprocess.run(
        [sys.executable, str(CAPTURE), str(tmp_path / "m"), "--sysfs", str(src)],
        check=True,
        capture_output=True,
    )
    serials = [
        p
        for p in (tmp_path / "m" / "sys").rglob("serial*")
        if p.is_file() and p.read_text().strip()
    ]
    assert serials, "the laptop fixture has serial numbers to replace"
    assert {p.read_text() for p in serials} == {"CAPTURED-SERIAL\n"}
