"""SubprocessRunner against real programs: small shell scripts on a temporary PATH."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from probelink.probes.commands import CommandResult, SubprocessRunner
from probelink.probes.errors import MissingUtility, ProbeTimeout, Unavailable


def script(bindir: Path, name: str, body: str) -> Path:
    bindir.mkdir(exist_ok=True)
    path = bindir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def gone(pid: int) -> bool:
    """The process no longer runs: no such pid, or only a zombie left for init to reap."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        # /proc/<pid>/stat: "pid (comm) STATE ..."; comm may hold spaces or parentheses.
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_output_and_exit_status_are_returned(tmp_path: Path) -> None:
    script(tmp_path / "bin", "smartctl", 'echo "out $*"; echo err >&2; exit 4\n')
    runner = SubprocessRunner(path=str(tmp_path / "bin"))
    assert runner.run(["smartctl", "--json", "-x"], timeout_s=10) == CommandResult(
        argv=("smartctl", "--json", "-x"),
        returncode=4,
        stdout=b"out --json -x\n",
        stderr=b"err\n",
    )


def test_missing_program(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingUtility) as caught:
        SubprocessRunner(path=str(tmp_path / "empty")).run(["smartctl", "--scan"], timeout_s=5)
    assert (caught.value.message, caught.value.source) == (
        "smartctl is not installed (not found on PATH)",
        "smartctl",
    )


def test_program_that_cannot_be_started(tmp_path: Path) -> None:
    # Executable, but its interpreter does not exist: execve fails with ENOENT.
    bindir = tmp_path / "bin"
    path = script(bindir, "smartctl", "")
    path.write_text(f"#!{tmp_path}/no-such-shell\n")
    with pytest.raises(Unavailable) as caught:
        SubprocessRunner(path=str(bindir)).run(["smartctl"], timeout_s=5)
    assert caught.value.message == "smartctl could not be started: No such file or directory"


def test_timeout_kills_the_helper_and_everything_it_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "sleep.pid"
    # The helper starts a child and waits on it: killing only the helper would leave
    # the child running (and holding our pipes open).
    script(tmp_path / "bin", "smartctl", f'sleep 300 &\necho $! > "{pidfile}"\nwait\n')
    runner = SubprocessRunner(path=str(tmp_path / "bin"))
    with pytest.raises(ProbeTimeout) as caught:
        runner.run(["smartctl", "-x", "/dev/sda"], timeout_s=0.5)
    assert caught.value.message == "smartctl did not finish within 0.5 s and was stopped"
    pid = int(pidfile.read_text())
    # SIGKILL is delivered at once, but the orphan is reaped by init in its own time.
    for _ in range(200):
        if gone(pid):
            break
        time.sleep(0.01)
    assert gone(pid), f"the helper's child {pid} still runs"
