"""Advisories end to end: a real server raises one, a real daemon keeps it, a person sees it.

The daemon runs on the worn-battery laptop with a worn NVMe drive (92 % of its rated
endurance used, `nvme-worn.json`): the server's diagnosis of its first report fires the
rule `storage.nvme_wear` (severity "advisory"), the server records an advisory and sends
it down the daemon's stream; the daemon commits it to `advisories.db` and confirms it.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from probelink.agent.advisories import ADVISORIES_FILE, AdvisoryStore, KeptAdvisory
from probelink.agent.state import AgentState
from probelink.channel import bearer
from probelink.v1 import report_pb2, reports_pb2, reports_pb2_grpc
from tests.agent.daemon_harness import FIXTURES, MACHINE, SECRET, AgentProcess, wait_until
from tests.server.diagnosis.test_facts import machine_report
from tests.server.running import Device, ServerProcess

WORN_NVME = FIXTURES / "smartctl" / "nvme-worn.json"
CODE = "storage.nvme_wear"
NEW_LINE = "advisory from the service network (storage.nvme_wear, advisory): SSD wear:"


def agent_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probelink.agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def server_advisories(data_dir: Path) -> list[tuple[str, str, str, int | None]]:
    """(advisory_id, device_id, code, delivered_at_us) of every advisory the server holds."""
    conn = sqlite3.connect(data_dir / "probelink.db", timeout=30)
    try:
        return [
            (str(a), str(d), str(c), t)
            for a, d, c, t in conn.execute(
                "SELECT advisory_id, device_id, code, delivered_at_us FROM advisories"
            )
        ]
    finally:
        conn.close()


def kept(state_dir: Path, include_acknowledged: bool = True) -> list[KeptAdvisory]:
    store = AdvisoryStore.open_existing(state_dir)
    if store is None:
        return []
    with store:
        return store.list(include_acknowledged)


def worn_agent(tmp_path: Path, server: ServerProcess) -> AgentProcess:
    return AgentProcess(
        tmp_path / "agent",
        server.address,
        server.data_dir / SECRET,
        "--smartctl-json",
        str(WORN_NVME),
    )


def test_an_advisory_raised_by_the_server_is_kept_confirmed_shown_and_acknowledged(
    tmp_path: Path,
) -> None:
    with ServerProcess(tmp_path / "server") as server:
        agent = worn_agent(tmp_path, server)
        with agent:
            status = agent.wait(lambda s: s["link"] == "connected" and s["acked"] >= 1)
            device_id = status["device_id"]
            (advisory,) = wait_until(lambda: kept(agent.state_dir), what="the advisory kept")
            assert (advisory.device_id, advisory.code, advisory.severity, advisory.kind) == (
                device_id,
                CODE,
                "advisory",
                "finding",
            )
            assert advisory.report_id == status["last_ack_report_id"]
            assert advisory.text["en"].startswith("SSD wear:")
            assert advisory.text["zh-CN"].startswith("固态硬盘磨损")
            assert advisory.raised_at is not None and not advisory.acknowledged
            # Confirmed: the server marks it delivered and will never send it again.
            wait_until(
                lambda: _delivered(server.data_dir) is not None,
                what="the server to mark the advisory delivered",
            )
            ((advisory_id, on_device, code, _),) = server_advisories(server.data_dir)
            assert (advisory_id, on_device, code) == (advisory.advisory_id, device_id, CODE)

            # A person sees it while the daemon holds the file open.
            state = ["--state-dir", str(agent.state_dir)]
            listed = agent_cli("advisories", "--json", *state)
            assert listed.returncode == 0, listed.stderr
            assert json.loads(listed.stdout) == [advisory.as_json()]
            checked = agent_cli(
                "check", "--sysfs-root", str(MACHINE), "--probe", "battery.power_supply", *state
            )
            assert checked.returncode in (0, 1), checked.stderr
            tail = checked.stdout[checked.stdout.index("Advisories from the service network") :]
            assert advisory.advisory_id in tail and "SSD wear:" in tail

            acked = agent_cli("advisories", "ack", advisory.advisory_id, *state)
            assert acked.returncode == 0, acked.stderr
            assert agent_cli("advisories", *state).stdout == (
                "No advisories from the service network.\n"
            )
            assert agent.terminate() == 0

        # Started again: the server does not send it again, and the acknowledgement holds.
        again = worn_agent(tmp_path, server)
        with again:
            again.wait(lambda s: s["link"] == "connected")
            assert again.terminate() == 0
        (after,) = kept(agent.state_dir)
        assert after.advisory_id == advisory.advisory_id and after.acknowledged
        assert len(server_advisories(server.data_dir)) == 1
    log = agent.log()
    assert log.count(NEW_LINE) == 1, log
    assert "Traceback" not in log
    assert (agent.state_dir / ADVISORIES_FILE).stat().st_mode & 0o777 == 0o600


def test_an_advisory_the_daemon_could_not_keep_comes_again_after_the_hello(
    tmp_path: Path,
) -> None:
    with ServerProcess(tmp_path / "server") as server:
        agent = worn_agent(tmp_path, server)
        # A damaged advisories.db: the daemon still sends reports, but keeps and confirms
        # no advisory.
        agent.state_dir.mkdir(mode=0o700, parents=True)
        damaged = agent.state_dir / ADVISORIES_FILE
        damaged.write_bytes(b"not the advisories" * 100)
        with agent:
            agent.wait(lambda s: s["link"] == "connected" and s["acked"] >= 1)
            wait_until(lambda: server_advisories(server.data_dir), what="an advisory raised")
            # The store is opened when an advisory comes: that is when it is found damaged.
            wait_until(
                lambda: "advisories from the server will not be kept" in agent.log(),
                what="the daemon to say it cannot keep the advisory",
            )
            assert agent.terminate() == 0
        ((advisory_id, _, code, delivered),) = server_advisories(server.data_dir)
        assert (code, delivered) == (CODE, None)

        damaged.rename(damaged.with_name("advisories.db.damaged"))
        with agent:
            # Offered after the hello, as every advisory the device has not confirmed.
            (advisory,) = wait_until(lambda: kept(agent.state_dir), what="the advisory kept")
            assert advisory.advisory_id == advisory_id
            wait_until(
                lambda: _delivered(server.data_dir) is not None,
                what="the server to mark the advisory delivered",
            )
            assert agent.terminate() == 0
    assert agent.log().count(NEW_LINE) == 1


def _delivered(data_dir: Path) -> int | None:
    rows = server_advisories(data_dir)
    return rows[0][3] if rows else None


def _wearing_battery(
    template: report_pb2.Report, days_ago: float, health: float, cycles: int
) -> report_pb2.Report:
    """`template` as the device reported `days_ago`, its system battery at `health` %."""
    report = report_pb2.Report()
    report.CopyFrom(template)
    report.report_id = str(uuid.uuid4())
    started = datetime.now(UTC) - timedelta(days=days_ago)
    report.started_at.FromDatetime(started)
    report.finished_at.FromDatetime(started + timedelta(seconds=1))
    for result in report.results:
        if result.WhichOneof("data") == "battery":
            result.battery.health_pct = health
            result.battery.cycle_count = cycles
    return report


def test_an_advisory_raised_by_a_trend_reaches_the_connected_agent(tmp_path: Path) -> None:
    """Half a year of a battery wearing from 96 % to 84 %: the server's fit says it reaches
    80 % in about two months, within the horizon, and tells the connected daemon.

    The daemon itself runs on the captured desktop (no battery), so its own report adds
    no battery reading; the device's history and its newest report, which shows the
    wear, are the captured laptop's, uploaded under the daemon's own key and credential.
    """
    with ServerProcess(tmp_path / "server") as server:
        agent = AgentProcess(
            tmp_path / "agent",
            server.address,
            server.data_dir / SECRET,
            "--sysfs-root",
            str(FIXTURES / "machines" / "desktop-no-battery" / "sys"),
        )
        with agent:
            status = agent.wait(lambda s: s["link"] == "connected" and s["acked"] >= 1)
            device_id = status["device_id"]
            state = AgentState(agent.state_dir)
            credential = state.credential()
            assert credential is not None
            channel = grpc.insecure_channel(server.address)
            device = Device(device_id, credential, channel, state.device_key())
            admin = bearer((server.data_dir / "admin.token").read_text().strip())
            reports = reports_pb2_grpc.ReportsServiceStub(channel)
            first = machine_report("laptop-worn-battery")
            # What the device sent over the past months, oldest first, as its spool would
            # deliver a backlog: signed with its key, under its credential. The last is
            # from now: the device's newest report, the one advisories come from.
            for days_ago, health, cycles in (
                (180, 96.0, 40),
                (155, 95.1, 62),
                (130, 93.4, 85),
                (105, 92.2, 106),
                (80, 90.1, 128),
                (55, 88.3, 150),
                (30, 86.4, 171),
                (0, 84.2, 194),
            ):
                device.upload(_wearing_battery(first, days_ago, health, cycles))

            (advisory,) = wait_until(lambda: kept(agent.state_dir), what="the trend advisory")
            assert (advisory.kind, advisory.code, advisory.severity, advisory.device_id) == (
                "trend",
                "battery.health_pct:BAT0",
                "advisory",
                device_id,
            )
            assert advisory.action == "battery_replacement"
            assert advisory.text["en"].startswith("Service reminder: battery will reach 80 %")
            assert advisory.text["zh-CN"].startswith("服务提醒：")
            wait_until(lambda: _delivered(server.data_dir) is not None, what="delivered")

            # The diagnosis that raised it says the same, with the projection behind it.
            made = reports.GetDiagnosis(
                reports_pb2.GetDiagnosisRequest(report_id=advisory.report_id), metadata=admin
            )
            trend = next(
                t
                for t in json.loads(made.diagnosis_json)["trends"]
                if t["x_unit"] == "days" and t["metric"] == "battery.health_pct"
            )
            assert len(trend["points"]) == 8
            assert 20 < trend["projection"]["remaining"] < 90
            assert advisory.text["en"] == f"Service reminder: {trend['text']['en']}."

            # A newer report seeing the same trend raises nothing new.
            newer = _wearing_battery(first, 0, 83.9, 198)
            device.upload(newer)
            wait_until(
                lambda: (
                    reports.GetDiagnosis(
                        reports_pb2.GetDiagnosisRequest(report_id=newer.report_id), metadata=admin
                    ).made_now
                    is False
                ),
                what="the newer report diagnosed after ingest",
            )
            listed = reports.ListAdvisories(
                reports_pb2.ListAdvisoriesRequest(device_id=device_id), metadata=admin
            )
            assert [a.advisory.advisory_id for a in listed.advisories] == [advisory.advisory_id]
            assert listed.advisories[0].HasField("delivered_at")
            channel.close()
            assert agent.terminate() == 0
