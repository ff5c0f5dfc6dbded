"""`probelink-server run-local`, the main job end to end, as a person runs it: a real process.

Each test runs the command as a child process on a captured machine (no probe reads
this test machine), with its data dir in tmp_path: the embedded server, the agent as
its own child process, real gRPC on loopback, a real SQLite file. What it stored is then
checked through the store itself, and through the very commands it printed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from probelink.server.store import open_store
from probelink.signing import DeviceKey
from tests.conftest import MACHINES, SMARTCTL

LAPTOP = MACHINES / "laptop-worn-battery" / "sys"  # overall WARN: a worn battery, a full disk
RUN_TIMEOUT_S = 120


def run_local(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, this interpreter's, with no PROBELINK_* of the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBELINK_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "probelink.server.cli", "run-local", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def run_json(cwd: Path, *args: str) -> dict[str, Any]:
    result = run_local(cwd, *args, "--json")
    assert result.returncode == 0, result.stderr
    printed: dict[str, Any] = json.loads(result.stdout)
    return printed


def stored_counts(data: Path) -> tuple[int, list[str]]:
    """The reports stored and the devices enrolled, read from the SQLite file itself."""
    store = open_store(str(data / "probelink.db"))
    try:
        return store.count_reports(), [d.device_id for d in store.list_devices()]
    finally:
        store.close()


def test_it_prints_the_diagnosis_in_the_language_asked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_local(tmp_path, "--data-dir", str(data), "--sysfs-root", str(LAPTOP))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("Stored, and read back") < out.index("Diagnosis") < out.index("Read it again")
    assert "A repair is recommended." in out and "Replace the battery" in out
    assert f"Printable diagnosis: {data}/diagnosis-" in out
    chinese = run_local(
        tmp_path, "--data-dir", str(data), "--sysfs-root", str(LAPTOP), "--lang", "zh-CN"
    )
    assert chinese.returncode == 0, chinese.stderr
    assert "建议维修。" in chinese.stdout and "更换电池" in chinese.stdout


def test_an_unknown_lang_is_refused_before_anything_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_local(tmp_path, "--data-dir", str(data), "--lang", "fr")
    assert result.returncode == 2
    assert "--lang 'fr': use one of en, zh-CN" in result.stderr
    assert not data.exists()


def test_it_stores_the_report_and_reads_it_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    printed = run_json(tmp_path, "--data-dir", str(data), "--sysfs-root", str(LAPTOP))

    summary = printed["summary"]
    report_id, device_id = printed["report_id"], printed["device_id"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", printed["server"])
    server_bin = shlex.split(printed["commands"][0])[0]
    assert Path(server_bin).name == "probelink-server" and os.access(server_bin, os.X_OK)
    assert printed == {
        "report_id": report_id,
        "device_id": device_id,
        "server": printed["server"],
        "data_dir": str(data.resolve()),
        "store": f"sqlite {data.resolve() / 'probelink.db'}",
        "enrolled": True,
        "first_start_files": [str(data / "admin.token"), str(data / "enroll.secret")],
        "signature_verified": True,
        "stored_matches_sent": True,
        "summary": summary,
        "diagnosis": printed["diagnosis"],
        "diagnosis_html": str((data / f"diagnosis-{report_id}.html").resolve()),
        "commands": [
            f"{server_bin} serve --data-dir {data}",
            f"export PROBELINK_TOKEN=$(cat {data / 'admin.token'})",
            f"{server_bin} reports show {report_id}",
            f"{server_bin} diagnose {report_id}",
        ],
    }
    # The diagnosis is the one the server stored for this report: the laptop's battery
    # holds 62 % of its design capacity, below the 80 % its model needs.
    diagnosis = printed["diagnosis"]
    store = open_store(str(data / "probelink.db"))
    try:
        kept = store.get_diagnosis(report_id)
    finally:
        store.close()
    assert kept is not None and json.loads(kept.document) == diagnosis
    assert (diagnosis["report_id"], diagnosis["device_id"]) == (report_id, device_id)
    assert diagnosis["verdict"]["code"] == "repair_recommended"
    assert [f["rule_id"] for f in diagnosis["findings"]] == ["battery.worn"]
    page = Path(printed["diagnosis_html"]).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and report_id in page
    # Signed with the key the agent keeps in the data dir, and verified by the server.
    kept_key = DeviceKey.from_private_bytes((data / "agent" / "device.key").read_bytes())
    fields = ("report_id", "device_id", "kind", "overall", "signature", "signing_key")
    assert {k: summary[k] for k in fields} == {
        "report_id": report_id,
        "device_id": device_id,
        "kind": "REPORT_KIND_SELF_CHECK",
        "overall": "STATUS_WARN",
        "signature": "SIGNATURE_VERDICT_VERIFIED",
        "signing_key": kept_key.key_id,
    }
    # The SQLite file holds exactly this report, from exactly this device.
    assert stored_counts(data) == (1, [device_id])
    store = open_store(str(data / "probelink.db"))
    try:
        stored = store.get_report(report_id)
    finally:
        store.close()
    assert stored is not None and stored.row.device_id == device_id
    # The agent's state lives in the data dir, private like the rest of it.
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert (data / "agent").is_dir()


def test_running_twice_reuses_the_data_dir_and_the_device(tmp_path: Path) -> None:
    # The default data dir in a folder with a Makefile: what `make run` does in the repo.
    (tmp_path / "Makefile").write_text("serve:\n\t@true\n")
    first = run_json(tmp_path, "--sysfs-root", str(LAPTOP))
    data = tmp_path / "probelink-data"
    token = (data / "admin.token").read_text()
    second = run_json(tmp_path, "--sysfs-root", str(LAPTOP))

    assert (first["enrolled"], second["enrolled"]) == (True, False)
    assert second["device_id"] == first["device_id"]
    assert second["report_id"] != first["report_id"]
    assert second["data_dir"] == first["data_dir"] == str(data.resolve())
    assert second["first_start_files"] == []
    assert (data / "admin.token").read_text() == token  # never rewritten
    assert second["commands"][:2] == [
        "make serve",
        "export PROBELINK_TOKEN=$(cat probelink-data/admin.token)",
    ]
    assert stored_counts(data) == (2, [first["device_id"]])


def test_the_printed_commands_read_the_report_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_local(tmp_path, "--data-dir", str(data), "--sysfs-root", str(LAPTOP))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Stored, and read back from the server" in lines
    assert any(re.match(r"verdict\s+working, with something to keep an eye on", x) for x in lines)
    assert any(
        re.match(r"round trip\s+the server's copy is the report the agent sent", x) for x in lines
    )
    assert any(
        re.match(r"signature\s+verified with the device's key SHA256:[0-9a-f]{16}$", x.rstrip())
        for x in lines
    )
    assert "To look at" in lines  # the worn battery and the full disk are shown
    start = lines.index(next(x for x in lines if x.startswith("Read it again later")))
    serve, export, show = (x.strip() for x in lines[start + 1 : start + 4])
    assert "Enrolled with 127.0.0.1:" in result.stderr

    # The printed serve command (on a free port here, not 50051), then the printed show.
    port_file = tmp_path / "port"
    argv = [*shlex.split(serve), "--listen", "127.0.0.1:0", "--port-file", str(port_file)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "the printed serve command never listened"
            time.sleep(0.05)
        token_path = re.fullmatch(r"export PROBELINK_TOKEN=\$\(cat (.+)\)", export)
        assert token_path is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROBELINK_")}
        env["PROBELINK_TOKEN"] = Path(token_path.group(1)).read_text().strip()
        address = f"127.0.0.1:{port_file.read_text().strip()}"
        shown = subprocess.run(
            [*shlex.split(show), "--server", address, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    finally:
        server.terminate()
        server.wait(30)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    report_id = shlex.split(show)[-1]
    assert document["summary"]["report_id"] == report_id
    assert document["report"]["report_id"] == report_id
    assert document["summary"]["overall"] == "STATUS_WARN"


def test_a_failed_check_is_stored_and_exits_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_local(
        tmp_path,
        "--data-dir",
        str(data),
        "--sysfs-root",
        str(LAPTOP),
        "--smartctl-json",
        str(SMARTCTL / "ata-reallocated.json"),
        "--json",
    )
    assert result.returncode == 1, result.stderr
    printed = json.loads(result.stdout)
    assert printed["summary"]["overall"] == "STATUS_FAIL"
    assert printed["stored_matches_sent"] is True
    assert stored_counts(data) == (1, [printed["device_id"]])


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    taken = tmp_path / "file"
    taken.write_text("not a directory\n")
    result = run_local(tmp_path, "--data-dir", str(taken), "--sysfs-root", str(LAPTOP))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"probelink-server run-local: --data-dir {taken} is a file, not a directory: "
        "give a directory (it is made if missing)\n"
    )
    assert taken.read_text() == "not a directory\n"


def test_a_data_dir_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    taken = tmp_path / "file"
    taken.write_text("")
    inside = taken / "data"
    result = run_local(tmp_path, "--data-dir", str(inside), "--json")
    assert result.returncode == 2
    message = (
        f"--data-dir {inside}: cannot make it (Not a directory); give a directory you can write to"
    )
    assert json.loads(result.stdout) == {"error": message, "exit_code": 2}
    assert result.stderr == f"probelink-server run-local: {message}\n"


def test_an_unwritable_data_dir_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        data = tmp_path / "data"
        data.mkdir(mode=0o500)
    else:
        # Root writes to any directory by mode; /proc/sys refuses even root.
        data = Path("/proc/sys")
        assert not os.access(data, os.W_OK), "expected /proc/sys to be read-only here"
    before = sorted(p.name for p in data.iterdir())
    try:
        result = run_local(tmp_path, "--data-dir", str(data))
    finally:
        if data.is_relative_to(tmp_path):
            data.chmod(0o700)
    assert result.returncode == 2
    assert result.stderr == (
        f"probelink-server run-local: --data-dir {data} is not writable by this user: "
        "give a directory you can write to\n"
    )
    assert sorted(p.name for p in data.iterdir()) == before


def test_a_port_in_use_is_explained(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_local(
            tmp_path, "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{port}"
        )
    assert result.returncode == 2
    assert (
        f"probelink-server run-local: cannot listen on 127.0.0.1:{port}: the port is taken "
        "or not available here (is another server there?); leave --listen out to take any "
        "free port\n"
    ) in result.stderr
    assert result.stdout == ""


def test_only_loopback_is_served(tmp_path: Path) -> None:
    result = run_local(tmp_path, "--data-dir", str(tmp_path / "data"), "--listen", "0.0.0.0:0")
    assert result.returncode == 2
    assert result.stderr == (
        "probelink-server run-local: --listen 0.0.0.0:0: the embedded server speaks "
        "plaintext, so it listens on loopback only; give 127.0.0.1:PORT (or leave --listen "
        "out for a free port)\n"
    )


def test_an_agent_that_cannot_run_the_check_gives_its_exit_code(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "agent").write_text("a file where the agent keeps its state\n")
    result = run_local(tmp_path, "--data-dir", str(data), "--sysfs-root", str(LAPTOP))
    assert result.returncode == 2
    assert str(data / "agent") in result.stderr  # the agent's own message, passed on
    assert result.stderr.endswith(
        "probelink-server run-local: the agent could not run the check (exit 2); its message "
        "is above\n"
    )
    assert stored_counts(data) == (0, [])


def test_a_refused_upload_exits_3_with_the_reason(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_json(tmp_path, "--data-dir", str(data), "--sysfs-root", str(LAPTOP))
    # A device that has not enrolled, with a secret the server never issued.
    for kept in (data / "agent").iterdir():
        kept.unlink()
    (data / "enroll.secret").write_text("ple_not-a-secret-this-server-issued\n")
    result = run_local(tmp_path, "--data-dir", str(data), "--sysfs-root", str(LAPTOP), "--json")
    assert result.returncode == 3
    printed = json.loads(result.stdout)
    assert printed["exit_code"] == 3
    assert printed["error"].startswith(
        "the agent checked this machine but the upload failed (UNAUTHENTICATED): the enroll "
        f"secret in {(data / 'enroll.secret').resolve()} was refused"
    )
    assert f"probelink-server run-local: {printed['error']}\n" in result.stderr
    assert stored_counts(data)[0] == 1  # only the first run's


def test_a_missing_admin_token_is_explained_before_the_check(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_json(tmp_path, "--data-dir", str(data), "--sysfs-root", str(LAPTOP))
    (data / "admin.token").unlink()
    result = run_local(tmp_path, "--data-dir", str(data), "--sysfs-root", str(LAPTOP))
    assert result.returncode == 2
    assert result.stderr.endswith(
        f"probelink-server run-local: cannot read {data / 'admin.token'} (No such file or "
        "directory): it holds the admin token that reads the report back, and the server "
        "writes it only on the first start of an empty data dir; give a fresh --data-dir, or "
        "write an admin token (`probelink-server token create --role admin`) to "
        f"{data / 'admin.token'}\n"
    )
    assert stored_counts(data)[0] == 1  # the check did not run again
