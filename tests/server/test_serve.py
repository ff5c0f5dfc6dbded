"""`probelink-server serve` as an operator runs it: first start, health, reflection,
metrics, TLS, shutdown on SIGTERM, and a database that is locked or gone.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import stat
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from probelink import wire
from probelink.channel import ClientTls, bearer, open_aio_channel, open_channel
from probelink.server.config import TlsConfig
from probelink.signing import DeviceKey
from probelink.v1 import gateway_pb2, gateway_pb2_grpc, reports_pb2, reports_pb2_grpc
from tests.server.conftest import with_params
from tests.server.ingest.reports import varied_reports
from tests.server.running import RunningServer, ServerProcess, serve_argv
from tests.server.streams import acks_of, refusals_of
from tests.server.tlsfiles import make_tls
from tests.tcpproxy import TcpProxy

REPO = Path(__file__).resolve().parents[2]


def _first_event(proc: ServerProcess) -> dict[str, object]:
    assert proc.proc is not None and proc.proc.stdout is not None
    event: dict[str, object] = json.loads(proc.proc.stdout.readline())
    return event


def test_first_start_writes_private_secrets_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data) as proc:
        event = _first_event(proc)
        assert event["event"] == "listening"
        assert event["first_start_files"] == [
            str(data / "admin.token"),
            str(data / "enroll.secret"),
        ]
        code, out, _ = proc.terminate()
        assert code == 0 and '"stopped"' in out
    token = (data / "admin.token").read_text()
    secret = (data / "enroll.secret").read_text()
    assert token.startswith("plt_") and secret.startswith("ple_")
    for name in ("admin.token", "enroll.secret"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
    with ServerProcess(data) as proc:
        assert _first_event(proc)["first_start_files"] == []
        proc.terminate()
    assert (data / "admin.token").read_text() == token
    assert (data / "enroll.secret").read_text() == secret


def test_the_human_output_says_where_the_secrets_are(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        serve_argv(data, "--port-file", str(tmp_path / "port")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "port").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "listening  127.0.0.1:" in out and "plaintext, loopback only" in out
    assert "admin.token" in out and "enroll.secret" in out and "0600" in out
    assert "stopped cleanly" in err


def test_health_says_serving_and_reflection_lists_the_services(tmp_path: Path) -> None:
    with RunningServer(tmp_path / "data") as server, open_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "probelink.v1.AgentGatewayService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {
            "probelink.v1.AgentGatewayService",
            "probelink.v1.ReportsService",
            "probelink.v1.AdminService",
            "grpc.health.v1.Health",
        } <= services


def test_buf_curl_lists_the_services(tmp_path: Path) -> None:
    buf = REPO / ".tools" / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        pytest.skip("buf is not installed here; `make buf-lint` installs it (CI has it)")
    with RunningServer(tmp_path / "data") as server:
        listed = subprocess.run(
            [
                str(buf),
                "curl",
                "--protocol",
                "grpc",
                "--http2-prior-knowledge",
                "--list-services",
                f"http://{server.address}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    assert "probelink.v1.AgentGatewayService" in listed.stdout.split()


def test_metrics_count_what_happened(tmp_path: Path) -> None:
    with RunningServer(tmp_path / "data", metrics_listen="127.0.0.1:0") as server:
        device = server.enroll()
        device.upload(varied_reports(1)[0])
        with pytest.raises(grpc.RpcError):
            device.upload_frame(wire.encode_report(b"not a report at all"))
        assert server.server is not None
        url = f"http://127.0.0.1:{server.server.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
    assert "probelink_reports_received_total 2.0" in text
    assert "probelink_reports_stored_total 1.0" in text
    assert 'probelink_reports_refused_total{reason="malformed_report"} 1.0' in text
    assert 'probelink_reports_refused_total{reason="not_zstd"} 0.0' in text
    assert "probelink_ingest_latency_seconds_count 2.0" in text
    assert "probelink_ingest_queue_depth 0.0" in text


def test_plaintext_beyond_loopback_needs_insecure(tmp_path: Path) -> None:
    argv = serve_argv(tmp_path / "data", listen="0.0.0.0:0")
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "--tls-cert" in refused.stderr and "--insecure" in refused.stderr
    assert not (tmp_path / "data" / "admin.token").exists()
    with ServerProcess(tmp_path / "data2", "--insecure") as proc:
        proc.terminate()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--tls-cert", "x.pem"], "go together"),
        (["--max-report-bytes", "10"], "at least 1024"),
        (["--listen", "nonsense"], "HOST:PORT"),
        (["--db", "mysql://x"], "unknown database scheme"),
        (["--db", "postgresql://nobody@127.0.0.1:1/none"], "cannot start"),
    ],
)
def test_bad_serve_options_are_explained(tmp_path: Path, args: list[str], words: str) -> None:
    argv = serve_argv(tmp_path / "data", *args)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert words in done.stderr


def test_tls_and_mutual_tls(tmp_path: Path) -> None:
    files = make_tls(tmp_path / "tls")
    tls = TlsConfig(files.server_cert, files.server_key)
    with RunningServer(tmp_path / "data", tls=tls) as server:
        with open_channel(server.address, ClientTls(ca=files.ca)) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == 1
        with open_channel(server.address) as plain, pytest.raises(grpc.RpcError) as excinfo:
            health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
    mtls = TlsConfig(files.server_cert, files.server_key, client_ca=files.ca)
    with RunningServer(tmp_path / "data", tls=mtls) as server:
        with open_channel(server.address, ClientTls(ca=files.ca)) as anonymous:
            with pytest.raises(grpc.RpcError) as excinfo:
                health_pb2_grpc.HealthStub(anonymous).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
            assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
        client = ClientTls(ca=files.ca, cert=files.client_cert, key=files.client_key)
        with open_channel(server.address, client) as channel:
            stub = reports_pb2_grpc.ReportsServiceStub(channel)
            listed = stub.ListReports(
                reports_pb2.ListReportsRequest(), metadata=bearer(server.admin_token), timeout=10
            )
            assert list(listed.reports) == []


async def _burst(
    address: str, credential: str, frames: list[object], on_first_acks: asyncio.Event
) -> tuple[list[gateway_pb2.ConnectResponse], list[grpc.StatusCode]]:
    """Stream `frames`; every answer, and the error status the stream ended with, if any."""
    answers: list[gateway_pb2.ConnectResponse] = []
    done = asyncio.Event()
    ended: list[grpc.StatusCode] = []

    async def requests() -> AsyncIterator[gateway_pb2.ConnectRequest]:
        yield gateway_pb2.ConnectRequest(hello=gateway_pb2.ConnectHello())
        for sequence, frame in enumerate(frames, start=1):
            yield gateway_pb2.ConnectRequest(
                report=gateway_pb2.ReportUpload(sequence=sequence, frame=frame)  # type: ignore[arg-type]
            )
        await done.wait()

    async with open_aio_channel(address) as channel:
        call = gateway_pb2_grpc.AgentGatewayServiceStub(channel).Connect(
            requests(), metadata=bearer(credential), timeout=120
        )
        try:
            async for answer in call:
                answers.append(answer)
                if len(acks_of(answers)) >= 100:
                    on_first_acks.set()
        except grpc.aio.AioRpcError as error:
            # The server ends the stream with OK once it answered everything; grpc.aio's
            # client may still report INTERNAL when its own write races that end
            # (grpc/grpc#36066), and then drops what it had not handed over.
            ended.append(error.code())
        finally:
            done.set()
    return answers, ended


def test_sigterm_mid_burst_acks_only_what_it_stored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    reports = varied_reports(3000, seed=21)
    key = DeviceKey.generate()
    encoder = wire.Encoder(key=key)
    frames: list[object] = [encoder.encode(r.SerializeToString()) for r in reports]
    with ServerProcess(data) as proc:
        secret = (data / "enroll.secret").read_text().strip()
        from probelink.v1 import report_pb2

        with open_channel(proc.address) as channel:
            enrolled = gateway_pb2_grpc.AgentGatewayServiceStub(channel).Enroll(
                gateway_pb2.EnrollRequest(
                    enroll_secret=secret,
                    identity=report_pb2.DeviceIdentity(model="M"),
                    device_public_key=key.public_key,
                ),
                timeout=30,
            )

        async def scenario() -> tuple[list[gateway_pb2.ConnectResponse], list[grpc.StatusCode]]:
            first = asyncio.Event()
            burst = asyncio.create_task(_burst(proc.address, enrolled.credential, frames, first))
            await asyncio.wait_for(first.wait(), 60)
            assert proc.proc is not None
            proc.proc.send_signal(15)
            return await burst

        answers, ended = asyncio.run(scenario())
        assert proc.proc is not None
        assert proc.proc.wait(60) == 0
    acked = {a.report_id for a in acks_of(answers)}
    refused = refusals_of(answers)
    assert 100 <= len(acked) < len(reports)
    assert all(r.code == grpc.StatusCode.UNAVAILABLE.value[0] for r in refused)
    with sqlite3.connect(data / "probelink.db") as db:
        stored = {row[0] for row in db.execute("SELECT report_id FROM reports")}
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # Nothing acked that was not stored, and (when the client library reports the
    # clean end the server sent) every report stored was acked before the stream ended.
    assert acked <= stored
    if not ended:
        assert acked == stored
    # Everything not acked can be sent again: the restarted server stores each once.
    with ServerProcess(data) as proc:
        from tests.server.streams import stream_frames

        again = asyncio.run(stream_frames(proc.address, enrolled.credential, frames))  # type: ignore[arg-type]
        proc.terminate()
    assert len(acks_of(again)) == len(reports)
    with sqlite3.connect(data / "probelink.db") as db:
        assert db.execute("SELECT count(*) FROM reports").fetchone() == (len(reports),)


def test_a_locked_database_refuses_as_unavailable_and_acks_nothing(tmp_path: Path) -> None:
    db = tmp_path / "data" / "probelink.db"
    with RunningServer(tmp_path / "data", db=f"sqlite://{db}?busy_timeout=0.3") as server:
        device = server.enroll()
        report = varied_reports(1, seed=31)[0]
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(grpc.RpcError) as excinfo:
                device.upload(report)
            assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
            details = excinfo.value.details() or ""
            assert "locked" in details and "send it again" in details
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        ack = device.upload(report).ack
        assert not ack.duplicate  # it was not stored before: nothing half-written


def test_a_database_file_gone_is_unavailable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with RunningServer(data) as server:
        device = server.enroll()
        device.upload(varied_reports(1, seed=41)[0])
        for path in data.glob("probelink.db*"):
            path.unlink()
        with pytest.raises(grpc.RpcError) as excinfo:
            device.upload(varied_reports(1, seed=42)[0])
        assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "probelink.db" in (excinfo.value.details() or "")


def test_postgresql_gone_then_back(tmp_path: Path, pg_isolated_url: str) -> None:
    parts = urlsplit(pg_isolated_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    via_proxy = parts._replace(
        netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    ).geturl()
    with RunningServer(tmp_path / "data", db=with_params(via_proxy, connect_timeout="2")) as server:
        device = server.enroll()
        device.upload(varied_reports(1, seed=51)[0])
        proxy.cut()
        lost = varied_reports(1, seed=52)[0]
        with pytest.raises(grpc.RpcError) as excinfo:
            device.upload(lost)
        assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
        proxy.restore()
        deadline = time.monotonic() + 60
        while True:  # the pool reconnects with a growing delay
            try:
                ack = device.upload(lost).ack
                break
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() < deadline, "the store never came back"
                time.sleep(0.2)
        assert not ack.duplicate
    proxy.cut()


def test_data_dir_is_private(tmp_path: Path) -> None:
    with RunningServer(tmp_path / "data"):
        pass
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700


def test_ports_in_use_are_explained_and_leave_nothing_behind(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        metrics = subprocess.run(
            serve_argv(tmp_path / "data", "--metrics-listen", f"127.0.0.1:{port}"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert metrics.returncode == 2, metrics.stderr
        assert f"--metrics-listen 127.0.0.1:{port}" in metrics.stderr
        assert "Traceback" not in metrics.stderr
        listen = subprocess.run(
            serve_argv(tmp_path / "data", listen=f"127.0.0.1:{port}"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listen.returncode == 1, listen.stderr
        assert f"cannot listen on 127.0.0.1:{port}" in listen.stderr
        assert "Traceback" not in listen.stderr
