"""The daemon under the failures the issue names, with real processes and sockets.

- `kill -9` of the server, 20 times, during a burst of uploads;
- `kill -9` of the agent while it writes its spool;
- a flaky network: a TCP proxy that resets, stalls and refuses connections;
- a full spool: eviction oldest-first, counted, and the count reaches the server.

After each, the server's database holds every report the agent produced exactly once
(or, for a full spool, exactly the evicted ones are missing and counted), and SQLite's
integrity check passes.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from tests.agent.daemon_harness import (
    SECRET,
    SPOOLED,
    AgentProcess,
    free_port,
    integrity,
    prefill,
    spool_evicted_on_server,
    stored_ids,
    wait_until,
)
from tests.server.ingest.reports import varied_reports
from tests.server.running import ServerProcess
from tests.tcpproxy import TcpProxy


def produced_by(agent: AgentProcess) -> set[str]:
    """The reports the agent said it spooled (each line is printed after the commit)."""
    return set(SPOOLED.findall(agent.log()))


def test_kill_9_of_the_server_twenty_times_during_a_burst(tmp_path: Path) -> None:
    rng = random.Random(20)
    port = free_port()
    data = tmp_path / "server"
    server = ServerProcess(data, "--listen", f"127.0.0.1:{port}")
    server.start()
    # A small window and a big backlog: the burst outlasts the twenty kills.
    agent = AgentProcess(tmp_path / "agent", server.address, data / SECRET, "--window", "16")
    backlog = prefill(agent.spool_path, varied_reports(6000, seed=9))
    kills = 0
    with agent:
        try:
            for _ in range(20):
                before = len(stored_ids(data))

                def progressed(before: int = before) -> bool:
                    return len(stored_ids(data)) > before

                # Kill it in the middle of the burst: once it has stored something.
                wait_until(progressed, 60, "progress")
                time.sleep(rng.uniform(0, 0.15))
                server.kill()
                kills += 1
                stored = stored_ids(data)
                # Each id is stored once by construction (the store's primary key); what
                # a crash could do is store something nobody produced, or damage the file.
                assert set(stored) <= set(backlog) | produced_by(agent), "a foreign report"
                assert integrity(data) == "ok"
                server.start()
            assert agent.status()["spool_reports"] > 0, "the burst ended before the kills did"
            agent.wait(lambda s: s["spool_reports"] == 0, timeout=180)
            agent.terminate()
        finally:
            server.__exit__()
    stored = stored_ids(data)
    assert kills == 20
    assert set(stored) == set(backlog) | produced_by(agent)
    assert integrity(data) == "ok"
    # The server trained its dictionary during the burst and the agent took it up.
    assert "compressing with dictionary" in agent.log()


def test_kill_9_of_the_agent_while_it_writes_its_spool(tmp_path: Path) -> None:
    rng = random.Random(7)
    with ServerProcess(tmp_path / "server") as server:
        agent = AgentProcess(
            tmp_path / "agent", server.address, server.data_dir / SECRET, interval=1
        )
        backlog = prefill(agent.spool_path, varied_reports(3000, seed=3))
        for _ in range(12):
            agent.start()
            # Acks are being written (the backlog drains) and reports are being put.
            time.sleep(rng.uniform(0.3, 1.5))
            agent.kill()
        # The last start makes one report (a long interval) and drains everything.
        final = AgentProcess(agent.state_dir, server.address, server.data_dir / SECRET)
        with final:
            final.wait(lambda s: s["produced"] == 1 and s["spool_reports"] == 0, 120)
            final.terminate()
        stored = stored_ids(server.data_dir)
    promised = set(backlog) | produced_by(agent)
    # Nothing spooled is lost. A kill between a put's commit and its log line leaves a
    # scheduled report stored that the log never promised: at most one per kill.
    assert promised <= set(stored)
    assert len(set(stored) - promised) <= 12
    assert integrity(server.data_dir) == "ok"


def test_a_flaky_network_resets_stalls_and_refuses_but_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(3)
    with ServerProcess(tmp_path / "server") as server, TcpProxy("127.0.0.1", server.port) as proxy:
        agent = AgentProcess(
            tmp_path / "agent",
            f"127.0.0.1:{proxy.port}",
            server.data_dir / SECRET,
            "--ack-timeout",
            "1",
            "--window",
            "16",
        )
        backlog = prefill(agent.spool_path, varied_reports(3000, seed=6))
        with agent:
            agent.wait(lambda s: s["link"] == "connected")
            for round_ in range(6):
                time.sleep(rng.uniform(0.2, 0.6))
                fault = ("reset", "stall", "drop")[round_ % 3]
                if fault == "reset":
                    proxy.reset()
                elif fault == "stall":
                    proxy.stall()
                    time.sleep(2)  # longer than the ack timeout: the agent gives up
                    proxy.heal()
                else:
                    proxy.reset()
                    proxy.drop()
                    time.sleep(1)
                    proxy.heal()
            agent.wait(lambda s: s["spool_reports"] == 0, timeout=180)
            agent.terminate()
        stored = stored_ids(server.data_dir)
        assert proxy.accepted > 3  # it did reconnect through every fault
    log = agent.log()
    # The stall was noticed: by unanswered reports, or by a write the server never took.
    assert "in flight had no answer" in log or "the server took no data" in log
    assert set(stored) == set(backlog) | produced_by(agent)


def test_a_full_spool_evicts_oldest_first_and_the_count_reaches_the_server(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = ServerProcess(tmp_path / "server", "--listen", f"127.0.0.1:{port}")
    server.start()
    secret = server.data_dir / SECRET
    server.kill()
    agent = AgentProcess(
        tmp_path / "agent", f"127.0.0.1:{port}", secret, "--spool-max-reports", "3"
    )
    with agent:
        assert agent.proc is not None
        for n in range(1, 8):

            def has_made(status: dict[str, int], n: int = n) -> bool:
                return status["produced"] >= n

            agent.wait(has_made)
            if n < 7:
                os.kill(agent.proc.pid, signal.SIGUSR1)
        assert len(SPOOLED.findall(agent.log())) == 7
        status = agent.status()
        assert (status["spool_reports"], status["evicted"]) == (3, 4)
        with server:
            agent.wait(lambda s: s["spool_reports"] == 0)
            # One more report: it tells what the last put evicted.
            os.kill(agent.proc.pid, signal.SIGUSR1)
            agent.wait(lambda s: s["produced"] >= 8 and s["spool_reports"] == 0)
            token = (server.data_dir / "admin.token").read_text().strip()
            told = spool_evicted_on_server(server.address, token)
        agent.terminate()
    made = SPOOLED.findall(agent.log())
    # Oldest first: the first four are gone, the rest arrived.
    assert set(told) == set(made[4:])
    assert sum(told.values()) == 4 == agent.status()["evicted"]
    assert agent.status()["evicted_unreported"] == 0
    assert "the spool was full and evicted the 1 oldest" in agent.log()
