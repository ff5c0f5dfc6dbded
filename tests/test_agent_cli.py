"""`probelink-agent` as a person runs it: real processes, real exit codes, real output."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from probelink.v1 import report_pb2, routine_pb2, status_pb2
from tests.conftest import MACHINES

AGENT = [sys.executable, "-m", "probelink.agent.cli"]


def agent(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AGENT, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_check_on_this_machine_gives_valid_json_and_never_crashes() -> None:
    proc = agent("check", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert report["kind"] == "REPORT_KIND_SELF_CHECK"
    statuses = {r["status"] for r in report["results"]}
    assert statuses <= {"STATUS_PASS", "STATUS_WARN", "STATUS_FAIL", "STATUS_SKIP", "STATUS_ERROR"}
    # Every skip says why.
    assert all(r.get("evidence") for r in report["results"])
    # No probe crashed: an ERROR here would be a probe bug, not this VM's hardware.
    internal = [
        r
        for r in report["results"]
        if r.get("error", {}).get("kind") == "PROBE_ERROR_KIND_INTERNAL"
    ]
    assert not internal, internal


def test_check_renders_a_table_and_a_verdict() -> None:
    proc = agent("check")
    assert proc.returncode in (0, 1), proc.stderr
    for family in ("Battery", "Storage", "System"):
        assert family in proc.stdout
    assert any(w in proc.stdout for w in ("healthy", "attention", "keep an eye", "Could not judge"))


def test_out_writes_a_protobuf_report(tmp_path: Path) -> None:
    out = tmp_path / "report.pb"
    sys_root = MACHINES / "laptop-worn-battery" / "sys"
    proc = agent("check", "--sysfs-root", str(sys_root), "--out", str(out), "--json")
    report = report_pb2.Report.FromString(out.read_bytes())
    assert report.report_id == json.loads(proc.stdout)["report_id"]
    assert {r.probe.split(".")[0] for r in report.results} >= {
        "battery",
        "storage",
        "sensors",
        "ports",
        "system",
    }


def test_exit_code_is_one_when_a_check_fails() -> None:
    # The desktop's stalled fan is a FAIL.
    proc = agent("check", "--sysfs-root", str(MACHINES / "desktop-no-battery" / "sys"), "--json")
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["overall"] == "STATUS_FAIL"


def test_one_probe_only() -> None:
    proc = agent(
        "check",
        "--sysfs-root",
        str(MACHINES / "laptop-worn-battery" / "sys"),
        "--probe",
        "battery.power_supply",
        "--json",
    )
    report = json.loads(proc.stdout)
    assert {r["probe"] for r in report["results"]} == {"battery.power_supply"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--sysfs-root", "/no/such/root"], "does not exist"),
        (["check", "--probe", "battery.nope"], "no probe named 'battery.nope'"),
        (["check", "--smartctl-json", "/no/such.json"], "does not exist"),
        (["check", "--timeout", "0"], "0.1"),
        (["check", "--bogus"], "No such option"),
        (["check", "--psutil-snapshot", "/no/such/snapshot"], "does not exist"),
        (["check", "--out", "/no/such/dir/report.pb"], "/no/such/dir is not a directory"),
        (["check", "--limit", "battery.min_health_pct"], "expected FAMILY.NAME=NUMBER"),
        (["check", "--limit", "battery.min_health_pct=lots"], "'lots' is not a number"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    proc = agent(*args)
    assert proc.returncode == 2
    # rich draws usage errors in a box; compare the words, not the frame.
    words = " ".join(proc.stderr.replace("│", " ").split())
    assert message in words, proc.stderr


def test_limits_change_the_verdict() -> None:
    # The laptop's battery holds 62 % of its design capacity: a WARN under the default
    # limit of 80 %, a FAIL when the service centre's limit is 65 %.
    args = [
        "check",
        "--sysfs-root",
        str(MACHINES / "laptop-worn-battery" / "sys"),
        "--probe",
        "battery.power_supply",
        "--json",
    ]
    default = json.loads(agent(*args).stdout)
    strict = agent(*args, "--limit", "battery.fail_health_pct=65")
    assert default["results"][0]["status"] == "STATUS_WARN"
    assert json.loads(strict.stdout)["results"][0]["status"] == "STATUS_FAIL"
    assert strict.returncode == 1


def test_probes_lists_every_probe_with_a_reason() -> None:
    proc = agent("probes", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    names = {r["name"] for r in rows}
    assert {
        "battery.power_supply",
        "storage.smart",
        "sensors.fans",
        "ports.usb",
        "system.cpu",
    } <= names
    assert {r["kind"] for r in rows} == {"telemetry", "routine"}
    assert all(r["supported"] or r["reason"] for r in rows)


@pytest.mark.slow
def test_ctrl_c_during_a_routine_keeps_the_partial_report(tmp_path: Path) -> None:
    # The laptop's battery is discharging, so the discharge routine samples for its
    # whole window; Ctrl-C in the middle must stop it cleanly and keep what ran.
    out = tmp_path / "partial.pb"
    proc = subprocess.Popen(
        [
            *AGENT,
            "check",
            "--sysfs-root",
            str(MACHINES / "laptop-worn-battery" / "sys"),
            "--simulated-device",
            "--probe",
            "system.cpu",
            "--probe",
            "battery.discharge_rate",
            "--out",
            str(out),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Wait for the routine's child process, then give it a moment to take its first
    # sample, so the Ctrl-C lands in the routine and not before it.
    deadline = time.monotonic() + 60
    while not psutil.Process(proc.pid).children() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)
    # A terminal's Ctrl-C reaches the whole foreground process group.
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    report = report_pb2.Report.FromString(out.read_bytes())
    by_probe = {r.probe: r for r in report.results}
    assert by_probe["system.cpu"].status == status_pb2.STATUS_PASS
    routine = by_probe["battery.discharge_rate"].routine
    assert routine.outcome == routine_pb2.ROUTINE_OUTCOME_CANCELLED
    assert routine.HasField("battery_discharge"), "the partial detail was lost"
    assert "Interrupted" in stderr


def _read_until(fd: int, needle: bytes, timeout_s: float = 60) -> bytes:
    """Read a pty's output until `needle` shows (or the program ends, or time runs out)."""
    import select

    seen = b""
    deadline = time.monotonic() + timeout_s
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the program closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.slow
def test_a_routine_asks_the_person_at_a_real_terminal(tmp_path: Path) -> None:
    # A simulated device (a copy of the laptop's tree) on a real pty: the routine asks
    # for the charger, the "person" plugs it in (the tree's status changes) and answers.
    machine = tmp_path / "laptop"
    shutil.copytree(MACHINES / "laptop-worn-battery", machine, symlinks=True)
    status = next((machine / "sys" / "devices").rglob("BAT0/status"))
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [
            *AGENT,
            "check",
            "--sysfs-root",
            str(machine / "sys"),
            "--simulated-device",
            "--probe",
            "battery.charge_detection",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(slave)
    try:
        asked = _read_until(master, b"Ready?")
        assert b"Plug in the charger" in asked, asked.decode(errors="replace")
        status.write_text("Charging\n")
        os.write(master, b"y\r")
        rest = _read_until(master, b"could not run")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = rest.decode(errors="replace")
    assert "PASS" in text and "charge_detection" in text, text
