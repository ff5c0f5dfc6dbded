"""The daemon's watchdog end to end, and its log under systemd.

A probe over its CPU budget is stopped in the collector child; the report the daemon
sends names it (AgentNotes.watchdog) and says in its place that the watchdog stopped
it, and the server stores exactly that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from probelink.channel import bearer, open_channel
from probelink.v1 import reports_pb2, reports_pb2_grpc, status_pb2
from tests.agent.daemon_harness import SECRET, AgentProcess, stored_ids, wait_until
from tests.server.running import ServerProcess

REPO = Path(__file__).resolve().parents[2]
# tests/agent/misbehaving_probes.py, by name: importing it here would register its probes
# in this test process, where other tests list the real ones.
BURNS_CPU = "watchdogtest.burns_cpu"
SLEEPS_FOREVER = "watchdogtest.sleeps_forever"
BEHAVES = "watchdogtest.behaves"


@pytest.fixture(autouse=True)
def tests_importable_by_children(monkeypatch: pytest.MonkeyPatch) -> None:
    # The collector child imports the test probes by module name.
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{path}" if path else str(REPO))


def test_a_probe_over_budget_is_stopped_and_the_server_is_told_which(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        "[telemetry]\n"
        f'probes = ["{BURNS_CPU}", "{BEHAVES}", "system.cpu"]\n'
        'probe_modules = ["tests.agent.misbehaving_probes"]\n'
        "[watchdog]\n"
        "probe_cpu_seconds = 0.5\n"
    )
    with ServerProcess(tmp_path / "server") as server:
        agent = AgentProcess(
            tmp_path / "agent", server.address, server.data_dir / SECRET, "--config", str(config)
        )
        with agent:
            agent.wait(lambda s: s["acked"] >= 1, timeout=90)
            agent.terminate()
        (report_id,) = stored_ids(server.data_dir)
        token = (server.data_dir / "admin.token").read_text().strip()
        channel = open_channel(server.address)
        try:
            got = reports_pb2_grpc.ReportsServiceStub(channel).GetReport(
                reports_pb2.GetReportRequest(report_id=report_id),
                metadata=bearer(token),
                timeout=30,
            )
        finally:
            channel.close()
    (event,) = got.report.agent.watchdog
    assert (event.probe, event.resource, event.budget) == (BURNS_CPU, "cpu_seconds", 0.5)
    assert event.observed > 0.5
    by_probe = {r.probe: r for r in got.report.results}
    assert by_probe[BURNS_CPU].status == status_pb2.STATUS_ERROR
    assert "watchdog" in by_probe[BURNS_CPU].evidence
    # The rest of the cycle still arrived.
    assert by_probe[BEHAVES].status != status_pb2.STATUS_ERROR
    assert "system.cpu" in by_probe
    assert f"{BURNS_CPU} used" in agent.log()
    # Skipped from now on: the denylist survives the daemon.
    assert BURNS_CPU in (agent.state_dir / "watchdog.json").read_text()


def test_sigterm_during_a_hung_collection_stops_at_once_and_leaves_no_child(
    tmp_path: Path,
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[telemetry]\nprobes = ["{SLEEPS_FOREVER}"]\n'
        'probe_modules = ["tests.agent.misbehaving_probes"]\n'
    )
    with ServerProcess(tmp_path / "server") as server:
        agent = AgentProcess(
            tmp_path / "agent", server.address, server.data_dir / SECRET, "--config", str(config)
        )
        with agent:
            assert agent.proc is not None
            children = Path(f"/proc/{agent.proc.pid}/task/{agent.proc.pid}/children")
            child = int(wait_until(lambda: children.read_text().split(), 60, "the collector")[0])
            # The probe hangs for up to its wall budget (120 s); stopping does not wait.
            assert agent.terminate(timeout=15) == 0
        assert (
            not Path(f"/proc/{child}").exists()
            or "zombie" in Path(f"/proc/{child}/status").read_text()
        )
        assert stored_ids(server.data_dir) == []
    assert "stopped;" in agent.log()


def test_a_daemon_over_its_memory_budget_asks_to_be_restarted(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    # 1 MiB: any Python process is over it, three checks in a row.
    config.write_text("[watchdog]\nagent_rss_megabytes = 1\nagent_check_seconds = 0.2\n")
    with ServerProcess(tmp_path / "server") as server:
        agent = AgentProcess(
            tmp_path / "agent", server.address, server.data_dir / SECRET, "--config", str(config)
        )
        with agent:
            assert agent.proc is not None
            assert agent.proc.wait(timeout=60) == 75
    log = agent.log()
    assert "watchdog: agent used" in log  # the event, logged once
    assert "exiting with 75" in log
    assert "stopped;" in log  # a clean stop: the spool closed, nothing lost


def test_under_systemd_each_line_carries_its_priority_and_no_time(tmp_path: Path) -> None:
    log = tmp_path / "journal"
    code = (
        "import os, sys\n"
        "st = os.fstat(2)\n"
        "os.environ['JOURNAL_STREAM'] = f'{st.st_dev}:{st.st_ino}'\n"
        "from probelink.agent.daemon.logs import daemon_logger\n"
        "log = daemon_logger()\n"
        "log.info('connected to %s', 'h:1')\n"
        "log.warning('two\\nlines')\n"
        "log.error('gone')\n"
    )
    with log.open("wb") as err:
        subprocess.run([sys.executable, "-c", code], stderr=err, check=True, timeout=60)
    assert log.read_text().splitlines() == ["<6>connected to h:1", "<4>two | lines", "<3>gone"]

    # Anywhere else: a time and the level in words.
    elsewhere = subprocess.run(
        [sys.executable, "-c", code.replace("os.environ['JOURNAL_STREAM']", "_")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    first = elsewhere.stderr.splitlines()[0]
    assert first.endswith(" INFO connected to h:1")
    assert first[:4].isdigit()
