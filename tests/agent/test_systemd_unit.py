"""The shipped systemd unit and example config: systemd accepts them, and so does the agent."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from probelink.agent.daemon.cli import parser
from probelink.agent.daemon.config import DaemonConfig

SHIPPED = Path(__file__).resolve().parents[2] / "agent" / "systemd"
UNIT = SHIPPED / "probelink-agent.service"
EXAMPLE = SHIPPED / "agent.toml"


def local_unit(tmp_path: Path) -> Path:
    """The unit with its paths pointed at this checkout, for `systemd-analyze verify`."""
    config = tmp_path / "agent.toml"
    config.write_text('server = "127.0.0.1:50051"\n')
    text = UNIT.read_text().replace(
        "/usr/bin/probelink-agent", str(Path(sys.executable).parent / "probelink-agent")
    )
    text = text.replace("/etc/probelink/agent.toml", str(config))
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    return unit


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_systemd_accepts_the_unit_without_a_single_warning(tmp_path: Path) -> None:
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(local_unit(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 even for unknown keys; its warnings are the verdict.
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.strip() == "", checked.stderr


def service_lines() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), value.strip())
    return out


def test_exec_start_is_a_command_line_the_agent_accepts() -> None:
    lines = service_lines()
    argv = shlex.split(lines["ExecStart"])
    assert argv[:2] == ["/usr/bin/probelink-agent", "run"]
    args = parser().parse_args(argv[2:])
    assert args.config == Path("/etc/probelink/agent.toml")
    assert lines["Environment"] == "PROBELINK_AGENT_STATE=/var/lib/probelink-agent"
    assert lines["StateDirectory"] == "probelink-agent"
    assert lines["Restart"] == "on-failure"
    # No access to people's files: the agent collects hardware facts only.
    assert lines["ProtectHome"] == "yes"
    assert lines["ProtectSystem"] == "strict"


def test_the_example_config_loads_once_its_files_exist(tmp_path: Path) -> None:
    (tmp_path / "enroll.secret").write_text("ple_x\n")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    text = EXAMPLE.read_text().replace("/etc/probelink/", f"{tmp_path}/")
    config_file = tmp_path / "agent.toml"
    config_file.write_text(text)
    config = DaemonConfig.load(config_file, environ={"PROBELINK_AGENT_STATE": str(tmp_path)})
    # The example states the defaults: only the server, the files and the source differ.
    defaults = DaemonConfig(server="probelink.example:443", state_dir=tmp_path)
    assert config == replace(
        defaults,
        enroll_secret_file=tmp_path / "enroll.secret",
        tls_ca=tmp_path / "ca.pem",
        source=str(config_file),
    )
