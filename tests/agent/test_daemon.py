"""`probelink-agent run` against a real server process: enroll, stream, spool, recover.

Every test runs the daemon as a process on a captured fixture machine and a real
`probelink-server serve` on loopback, and checks what the server stored.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from probelink.agent.spool import Spool
from probelink.signing import DeviceKey
from tests.agent.daemon_harness import (
    SECRET,
    AgentProcess,
    free_port,
    integrity,
    prefill,
    stored_ids,
    wait_until,
)
from tests.server.ingest.reports import varied_reports
from tests.server.running import ServerProcess


def agent_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probelink.agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_enrolls_streams_its_telemetry_and_stops_cleanly(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "server") as server:
        agent = AgentProcess(tmp_path / "agent", server.address, server.data_dir / SECRET)
        with agent:
            status = agent.wait(lambda s: s["link"] == "connected" and s["acked"] >= 1)
            assert status["running"] is True
            assert status["produced"] == 1
            assert status["spool_reports"] == 0
            (first,) = stored_ids(server.data_dir)
            assert status["last_ack_report_id"] == first

            # SIGUSR1: one more report, now.
            assert agent.proc is not None
            os.kill(agent.proc.pid, signal.SIGUSR1)
            agent.wait(lambda s: s["acked"] >= 2)
            assert len(set(stored_ids(server.data_dir))) == 2

            shown = agent_cli("status", "--state-dir", str(agent.state_dir), "--json")
            assert shown.returncode == 0, shown.stderr
            info = json.loads(shown.stdout)
            assert (info["running"], info["link"], info["device_id"]) == (
                True,
                "connected",
                status["device_id"],
            )
            human = agent_cli("status", "--state-dir", str(agent.state_dir))
            assert "connected to " + server.address in human.stdout

            assert agent.terminate() == 0
        log = agent.log()
        assert "enrolled with" in log and "connected to" in log and "stopped;" in log
        assert "Traceback" not in log
        for name in ("credential", "device.key", "spool.db", "privacy-salt"):
            assert (agent.state_dir / name).stat().st_mode & 0o777 == 0o600, name
        after = agent_cli("status", "--state-dir", str(agent.state_dir), "--json")
        assert after.returncode == 3
        assert json.loads(after.stdout)["link"] == "not running"


def test_a_backlog_drains_through_one_stream_and_each_report_is_stored_once(
    tmp_path: Path,
) -> None:
    with ServerProcess(tmp_path / "server") as server:
        agent = AgentProcess(tmp_path / "agent", server.address, server.data_dir / SECRET)
        backlog = prefill(agent.spool_path, varied_reports(600, seed=4))
        with agent:
            agent.wait(lambda s: s["spool_reports"] == 0 and s["acked"] >= 601, timeout=120)
            agent.terminate()
        stored = stored_ids(server.data_dir)
        assert len(stored) == 601
        assert set(backlog) <= set(stored)


def test_server_down_then_back_delivers_everything(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess(tmp_path / "server", "--listen", f"127.0.0.1:{port}")
    server.start()
    secret = server.data_dir / SECRET
    server.kill()  # it made its enroll secret; now it is gone
    agent = AgentProcess(tmp_path / "agent", f"127.0.0.1:{port}", secret)
    backlog = prefill(agent.spool_path, varied_reports(50, seed=5))
    with agent:
        # Nothing listens: the agent waits with backoff and keeps everything.
        agent.wait(lambda s: s["produced"] == 1 and s["link"] == "waiting")
        assert agent.status()["spool_reports"] == 51
        assert "UNAVAILABLE" in agent.status()["last_error"]
        with server:  # back, on the same port
            agent.wait(lambda s: s["spool_reports"] == 0 and s["link"] == "connected", 90)
            stored = stored_ids(server.data_dir)
        assert len(stored) == 51
        assert set(backlog) < set(stored)
        agent.terminate()


def test_a_revoked_device_enrolls_again_with_its_secret(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "server") as server:
        agent = AgentProcess(tmp_path / "agent", server.address, server.data_dir / SECRET)
        with agent:
            first = agent.wait(lambda s: s["acked"] >= 1 and s["device_id"])["device_id"]
            token = (server.data_dir / "admin.token").read_text().strip()
            revoked = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "probelink.server.cli",
                    "device",
                    "revoke",
                    first,
                    "--server",
                    server.address,
                    "--token",
                    token,
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert revoked.returncode == 0, revoked.stderr
            second = agent.wait(lambda s: s["link"] == "connected" and s["device_id"] != first)
            assert agent.proc is not None
            os.kill(agent.proc.pid, signal.SIGUSR1)
            agent.wait(lambda s: s["acked"] >= 2)
            agent.terminate()
        assert second["device_id"] != first
        assert "enrolling again" in agent.log()
        assert len(stored_ids(server.data_dir)) == 2


def test_without_secret_or_credential_it_waits_and_says_how_to_enroll(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "server") as server:
        agent = AgentProcess(tmp_path / "agent", server.address, None)
        with agent:
            status = agent.wait(lambda s: "--enroll-secret-file" in s["last_error"])
            # The report it made is kept for when it can enroll.
            agent.wait(lambda s: s["spool_reports"] == 1)
            assert status["running"] is True
            agent.terminate()
        assert stored_ids(server.data_dir) == []


def test_a_wrong_key_is_refused_the_report_kept_aside_and_the_operator_sees_it(
    tmp_path: Path,
) -> None:
    with ServerProcess(tmp_path / "server") as server:
        agent = AgentProcess(tmp_path / "agent", server.address, server.data_dir / SECRET)
        with agent:
            agent.wait(lambda s: s["acked"] >= 1)
            agent.terminate()
        # Another key in the state dir: the device's registered key no longer signs.
        (agent.state_dir / "device.key").write_bytes(DeviceKey.generate().private_bytes())
        with agent:
            assert agent.proc is not None
            status = agent.wait(lambda s: s["rejected"] >= 1)
            assert status["last_rejection"]["reason"] == "signature_invalid"
            agent.terminate()
        assert "refused report" in agent.log()
        assert "signature_invalid" in agent.log()
        assert len(stored_ids(server.data_dir)) == 1
        with Spool(agent.spool_path, max_bytes=1 << 30, max_reports=1 << 20) as spool:
            total, kept = spool.rejected()
        assert total == 1
        assert kept[0].reason == "signature_invalid"
    assert integrity(server.data_dir) == "ok"


def test_wait_until_reports_what_it_waited_for() -> None:
    import pytest

    with pytest.raises(TimeoutError, match="the impossible"):
        wait_until(lambda: False, timeout=0.1, what="the impossible")
