"""The daemon's settings: TOML files, the command line on top, and every bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from probelink.agent.daemon.config import ConfigError, DaemonConfig
from probelink.agent.daemon.watchdog import MIB


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_a_full_file_is_read_with_units_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("ple_x\n")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    path = write(
        tmp_path,
        """
server = "probelink.example:443"
enroll_secret_file = "secret"
state_dir = "state"

[tls]
ca = "ca.pem"

[telemetry]
interval_seconds = 600
jitter = 0.25
probes = ["battery.power_supply", "storage.smart"]

[spool]
max_reports = 500
max_megabytes = 8

[stream]
window = 16
ack_timeout_seconds = 5
backoff_initial_seconds = 0.5
backoff_max_seconds = 20

[watchdog]
probe_cpu_seconds = 2
probe_rss_megabytes = 100
probe_wall_seconds = 30
skip_hours = 1
agent_rss_megabytes = 50
agent_cpu_percent = 1
""",
    )
    config = DaemonConfig.load(path, environ={})
    assert config == DaemonConfig(
        server="probelink.example:443",
        state_dir=tmp_path / "state",
        enroll_secret_file=tmp_path / "secret",
        interval_s=600.0,
        jitter=0.25,
        probes=("battery.power_supply", "storage.smart"),
        spool_max_reports=500,
        spool_max_bytes=8 * MIB,
        window=16,
        ack_timeout_s=5.0,
        backoff_initial_s=0.5,
        backoff_max_s=20.0,
        probe_cpu_s=2.0,
        probe_rss_bytes=100 * MIB,
        probe_wall_s=30.0,
        skip_s=3600.0,
        agent_rss_bytes=50 * MIB,
        agent_cpu_percent=1.0,
        tls_ca=tmp_path / "ca.pem",
        source=str(path),
    )


def test_command_line_overrides_the_file_and_env_fills_gaps(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'server = "a.example:1"\ninsecure = true\n[telemetry]\ninterval_seconds = 600\n'
    )
    config = DaemonConfig.load(
        path,
        {"interval_s": 5.0, "server": None},
        environ={"PROBELINK_AGENT_STATE": str(tmp_path / "st")},
    )
    assert (config.server, config.interval_s, config.state_dir) == (
        "a.example:1",
        5.0,
        tmp_path / "st",
    )
    only_env = DaemonConfig.load(None, {}, environ={"PROBELINK_SERVER": "localhost:2"})
    assert only_env.server == "localhost:2"
    assert only_env.source == "the command line"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server = 'x'", "expected HOST:PORT"),
        ("server = '127.0.0.1:1'\nsurver = '127.0.0.1:2'", "surver is not a setting"),
        (
            "server = '127.0.0.1:1'\n[telemetri]\ninterval_seconds = 1",
            r"\[telemetri\] is not a section",
        ),
        ("server = '127.0.0.1:1'\n[telemetry]\ninterval_seconds = 'hourly'", "must be a number"),
        ("server = '127.0.0.1:1'\n[telemetry]\ninterval_seconds = true", "must be a number"),
        ("server = '127.0.0.1:1'\n[telemetry]\ninterval_seconds = 0.5", "at least 1"),
        ("server = '127.0.0.1:1'\n[telemetry]\njitter = 1.0", "jitter must be a fraction"),
        ("server = '127.0.0.1:1'\n[telemetry]\nprobes = 'battery'", "list of probe names"),
        ("server = '127.0.0.1:1'\n[spool]\nmax_reports = 0", "max_reports must be at least 1"),
        ("server = '127.0.0.1:1'\n[spool]\nmax_reports = 1.5", "whole number"),
        (
            "server = '127.0.0.1:1'\n[stream]\n"
            "backoff_initial_seconds = 9\nbackoff_max_seconds = 3",
            "below backoff_initial_seconds",
        ),
        ("server = '127.0.0.1:1'\n[tls]\ncert = 'c.pem'", "cert and key go together"),
        ("server = '127.0.0.1:1'\n[tls]\nca = 'ca.pem'", "TLS CA .*ca.pem does not exist"),
        ("server = '127.0.0.1:1'\nenroll_secret_file = 'missing'", "does not exist"),
        ("server = 42", "must be a string"),
        ("server = '127.0.0.1:1'\n[telemetry\n", "not valid TOML"),
        ("state_dir = 'x'", "no server to connect to"),
        ("server = '127.0.0.1:1'\n[spool]\nmax_reports = inf", "must be a finite number"),
        ("server = '127.0.0.1:1'\n[stream]\nack_timeout_seconds = nan", "finite number"),
        ("server = 'far.example:443'", "no TLS is configured"),
        ("server = 'far.example:443'\ninsecure = 'yes'", "must be true or false"),
    ],
)
def test_bad_files_name_the_key_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DaemonConfig.load(write(tmp_path, text), environ={})


def test_plaintext_beyond_loopback_needs_insecure_and_nan_never_passes(tmp_path: Path) -> None:
    far = DaemonConfig.load(None, {"server": "far.example:443", "insecure": True}, environ={})
    assert far.insecure is True
    for loopback in ("127.0.0.1:5", "localhost:5", "[::1]:5"):
        assert DaemonConfig.load(None, {"server": loopback}, environ={}).server == loopback
    with pytest.raises(ConfigError, match="finite"):
        DaemonConfig.load(None, {"server": "127.0.0.1:1", "interval_s": float("nan")}, environ={})


def test_a_missing_or_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        DaemonConfig.load(tmp_path / "nope.toml", environ={})
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ConfigError, match="cannot read the config file"):
        DaemonConfig.load(tmp_path / "dir.toml", environ={})


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probelink.agent.daemon.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_checks_its_settings_before_starting(tmp_path: Path) -> None:
    bad = run("--server", "nowhere", "--state-dir", str(tmp_path))
    assert bad.returncode == 2
    assert "expected HOST:PORT" in bad.stderr
    assert "Traceback" not in bad.stderr

    path = write(tmp_path, "server = '127.0.0.1:1'\n[telemetry]\ninterval_seconds = 600\n")
    shown = run("--config", str(path), "--interval", "30", "--check-config")
    assert shown.returncode == 0, shown.stderr
    assert '"interval_s": 30.0' in shown.stdout
    assert '"server": "127.0.0.1:1"' in shown.stdout
