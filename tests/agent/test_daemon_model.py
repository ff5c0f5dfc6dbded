"""A model-based test of delivery: hypothesis drives real processes through failures.

Steps: produce reports, let them flow, crash the agent (kill -9), crash the server
(kill -9), drop the link (a TCP proxy resets every connection), stop and start. After
each generated sequence the agent is allowed to drain, and the invariant must hold:

    every report produced is stored on the server exactly once, or counted as evicted
    — and the evictions counted reach the server inside later reports.

(A report the spool evicts while it is in flight may arrive all the same: then it is
both stored and counted. The count is of reports dropped before their ack.)

The spool is small (25 reports), so sequences that produce while the server is down
exercise eviction. Reports are produced into the agent's spool by the same function
the daemon's producer uses (`spool_report`), from this process, while the agent runs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from probelink.agent.daemon.produce import spool_report
from probelink.agent.spool import Spool
from tests.agent.daemon_harness import (
    SECRET,
    SPOOLED,
    AgentProcess,
    free_port,
    integrity,
    spool_evicted_on_server,
    stored_ids,
)
from tests.server.ingest.reports import varied_reports
from tests.server.running import ServerProcess
from tests.tcpproxy import TcpProxy

SPOOL_REPORTS = 25


class Delivery(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="delivery-"))
        self.port = free_port()
        self.server = ServerProcess(self.tmp / "server", "--listen", f"127.0.0.1:{self.port}")
        self.server.start()
        self.server_up = True
        self.proxy = TcpProxy("127.0.0.1", self.port)
        self.agent = AgentProcess(
            self.tmp / "agent",
            f"127.0.0.1:{self.proxy.port}",
            self.server.data_dir / SECRET,
            "--spool-max-reports",
            str(SPOOL_REPORTS),
            "--ack-timeout",
            "2",
        )
        self.agent.start()
        self.agent_up = True
        self.produced: set[str] = set()
        self.pool = iter(varied_reports(2000, seed=11))

    # -- what can happen ------------------------------------------------------------
    @rule(n=st.integers(min_value=1, max_value=30))
    def produce(self, n: int) -> None:
        with Spool(self.agent.spool_path, max_bytes=1 << 30, max_reports=SPOOL_REPORTS) as spool:
            for _ in range(n):
                report = next(self.pool)
                spool_report(spool, report, [])
                self.produced.add(report.report_id)

    @precondition(lambda self: self.agent_up)
    @rule()
    def crash_agent(self) -> None:
        self.agent.kill()
        self.agent_up = False

    @precondition(lambda self: not self.agent_up)
    @rule()
    def start_agent(self) -> None:
        self.agent.start()
        self.agent_up = True

    @precondition(lambda self: self.server_up)
    @rule()
    def crash_server(self) -> None:
        self.server.kill()
        assert integrity(self.server.data_dir) == "ok"
        self.server_up = False

    @precondition(lambda self: not self.server_up)
    @rule()
    def start_server(self) -> None:
        self.server.start()
        self.server_up = True

    @rule()
    def drop_link(self) -> None:
        self.proxy.reset()

    @precondition(lambda self: self.agent_up and self.server_up)
    @rule()
    def let_it_flow(self) -> None:
        self.agent.wait(lambda s: s["link"] == "connected" or s["spool_reports"] == 0, 30)

    # -- the end of a sequence: drain, then hold it to the invariant ------------------
    def teardown(self) -> None:
        try:
            if not self.server_up:
                self.server.start()
            if not self.agent_up:
                self.agent.start()
            self.agent.wait(lambda s: s["spool_reports"] == 0 and s["acked"] > 0, 120)
            status = self.agent.status()
            self.agent.terminate()
            produced = self.produced | set(SPOOLED.findall(self.agent.log()))
            stored = stored_ids(self.server.data_dir)
            token = (self.server.data_dir / "admin.token").read_text().strip()
            told = spool_evicted_on_server(self.server.address, token)
            assert set(stored) <= produced, "a report nobody produced"
            missing = produced - set(stored)
            # Evicted means dropped before its ack: a report in flight when the spool
            # dropped it may still have arrived, so the count may exceed what is missing,
            # never fall short of it.
            assert len(missing) <= status["evicted"], "a report lost without being counted"
            # Every eviction is told by a stored report, or still waits in the counter.
            # (A report evicted while in flight may arrive anyway, and the count it
            # carried is told again by the next: told twice, never lost.)
            assert sum(told.values()) + status["evicted_unreported"] >= status["evicted"]
            assert integrity(self.server.data_dir) == "ok"
        finally:
            self.agent.__exit__()
            self.server.__exit__()
            self.proxy.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


Delivery.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_delivery_model = Delivery.TestCase
