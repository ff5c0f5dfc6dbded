"""The server assembled: store, writer, dictionaries, services, health, reflection, metrics.

    server = await ProbelinkServer.start(ServeConfig(listen="127.0.0.1:0", data_dir=d))
    print(server.port)        # the bound port (port 0 picks a free one)
    await server.stop()       # finish in-flight writes, then end every call

Shutdown order is what makes "acks nothing it did not store" true: health turns
NOT_SERVING, new frames are refused (SHUTTING_DOWN, i.e. UNAVAILABLE: resend), the
writer commits everything already queued and those reports get their acks, streams
end, and only then does the gRPC server stop and the database close.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from probelink.server.auth.authenticator import Authenticator
from probelink.server.bootstrap import bootstrap
from probelink.server.config import ServeConfig
from probelink.server.diagnosis.engine import Diagnoser
from probelink.server.diagnosis.service import Diagnoses
from probelink.server.errors import InvalidArgument
from probelink.server.gateway.admin import Admin
from probelink.server.gateway.agent_gateway import AgentGateway
from probelink.server.gateway.calls import Guard
from probelink.server.gateway.convert import dictionary_message
from probelink.server.gateway.hub import Hub
from probelink.server.gateway.reports import Reports
from probelink.server.ingest.dictionaries import DictionaryBook
from probelink.server.ingest.pipeline import Ingestor
from probelink.server.ingest.training import DictionaryTrainer
from probelink.server.ingest.writer import GroupCommitWriter
from probelink.server.metrics import Metrics
from probelink.server.store import open_store
from probelink.server.store.async_store import AsyncStore
from probelink.server.store.base import DictionaryRecord, Store
from probelink.server.tls import require_safe_listen, server_credentials, split_listen
from probelink.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
)

SERVICE_NAMES = (
    gateway_pb2.DESCRIPTOR.services_by_name["AgentGatewayService"].full_name,
    reports_pb2.DESCRIPTOR.services_by_name["ReportsService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
)


@dataclass
class ProbelinkServer:
    config: ServeConfig
    port: int
    store: AsyncStore
    metrics: Metrics
    book: DictionaryBook
    gateway: AgentGateway
    trainer: DictionaryTrainer
    #: Files written on the very first start (admin.token, enroll.secret).
    first_start_files: list[Path]
    metrics_port: int | None = None
    diagnoses: Diagnoses | None = None
    _grpc: grpc.aio.Server | None = None
    _health: HealthServicer | None = None
    _writer: GroupCommitWriter | None = None
    _hub: Hub = field(default_factory=Hub)
    _metrics_http: object | None = None
    _stopped: bool = False

    @classmethod
    async def start(cls, config: ServeConfig) -> ProbelinkServer:
        require_safe_listen(config.listen, config.tls, config.insecure)
        split_listen(config.listen)
        # Rules and catalogs first: a bad rule file stops the server before anything opens.
        diagnoser = await asyncio.to_thread(
            Diagnoser.load, config.rules_dir, default_currency=config.currency
        )
        # Private: it holds the admin token, the enroll secret and (SQLite) every report.
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        store = await asyncio.to_thread(_open_and_migrate, config.db_url)
        try:
            first = await asyncio.to_thread(bootstrap, store, config.data_dir)
            book = await asyncio.to_thread(DictionaryBook.load, store)
        except BaseException:
            store.close()
            raise
        astore = AsyncStore(store)
        metrics = Metrics()
        hub = Hub()
        writer = GroupCommitWriter(astore, metrics, config.max_batch)
        writer.start()

        def issued(record: DictionaryRecord) -> None:
            hub.broadcast(gateway_pb2.ConnectResponse(dictionary=dictionary_message(record)))

        trainer = DictionaryTrainer(
            astore,
            book,
            issued,
            train_after=config.dict_train_after,
            retrain_every_s=config.dict_retrain_every_s,
        )
        diagnoses = Diagnoses(
            astore, book, diagnoser, hub, horizon_days=config.advisory_horizon_days
        )
        diagnoses.start()
        ingestor = Ingestor(
            writer,
            book,
            metrics,
            max_content_size=config.max_report_bytes,
            on_stored=trainer.note_stored,
            store=astore,
            on_report=diagnoses.stored,
        )
        guard = Guard(Authenticator(astore), metrics)
        gateway = AgentGateway(astore, guard, ingestor, book, hub, metrics, diagnoses)

        server: grpc.aio.Server | None = None
        try:
            server = grpc.aio.server(
                options=[
                    ("grpc.max_receive_message_length", config.max_message_bytes),
                    ("grpc.max_send_message_length", config.max_message_bytes * 2),
                    # Long-lived streams from devices behind NAT: ping, and let them ping us.
                    ("grpc.keepalive_time_ms", 60_000),
                    ("grpc.keepalive_timeout_ms", 20_000),
                    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                    ("grpc.keepalive_permit_without_calls", 1),
                ]
            )
            gateway_pb2_grpc.add_AgentGatewayServiceServicer_to_server(gateway, server)
            reports_pb2_grpc.add_ReportsServiceServicer_to_server(
                Reports(astore, guard, book, diagnoses), server
            )
            admin_pb2_grpc.add_AdminServiceServicer_to_server(
                Admin(astore, guard, hub, trainer, diagnoses), server
            )
            health = HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(health, server)
            reflection.enable_server_reflection(
                (
                    *SERVICE_NAMES,
                    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                    reflection.SERVICE_NAME,
                ),
                server,
            )
            if config.tls is not None:
                port = server.add_secure_port(config.listen, server_credentials(config.tls))
            else:
                port = server.add_insecure_port(config.listen)
            await server.start()
            for name in ("", *SERVICE_NAMES):
                await health.set(name, health_pb2.HealthCheckResponse.SERVING)

            app = cls(
                config=config,
                port=port,
                store=astore,
                metrics=metrics,
                book=book,
                gateway=gateway,
                trainer=trainer,
                first_start_files=first,
                _grpc=server,
                _health=health,
                _writer=writer,
                _hub=hub,
                diagnoses=diagnoses,
            )
            if config.metrics_listen:
                host, mport = split_listen(config.metrics_listen)
                try:
                    app._metrics_http, app.metrics_port = metrics.serve(host, mport)
                except OSError as exc:
                    raise InvalidArgument(
                        f"--metrics-listen {config.metrics_listen}: {exc.strerror or exc}"
                    ) from None
            if config.port_file is not None:
                _write_port_file(config.port_file, port)
        except BaseException:
            # A bind error, a bad TLS file, a metrics port in use: leave nothing running.
            if server is not None:
                await server.stop(0)
            await writer.close()
            await diagnoses.close()
            await asyncio.to_thread(astore.close)
            raise
        return app

    @property
    def address(self) -> str:
        host, _ = split_listen(self.config.listen)
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{self.port}"

    async def stop(self) -> None:
        """Finish in-flight writes, answer them, end every call, close the database."""
        if self._stopped:
            return
        self._stopped = True
        assert self._grpc is not None and self._health is not None and self._writer is not None
        grace = self.config.grace_s
        await self._health.enter_graceful_shutdown()
        self.gateway.draining = True
        # Stop taking new calls now; calls in flight keep running for the grace period.
        stopping = asyncio.create_task(self._grpc.stop(grace))
        await self._writer.close()
        await self._hub.end_all(grace)
        await stopping
        await self.trainer.close()
        if self.diagnoses is not None:
            await self.diagnoses.close()
        await asyncio.to_thread(self.store.close)
        if self._metrics_http is not None:
            with contextlib.suppress(Exception):
                self._metrics_http.shutdown()  # type: ignore[attr-defined]
        if self.config.port_file is not None:
            self.config.port_file.unlink(missing_ok=True)


def _open_and_migrate(url: str) -> Store:
    store = open_store(url)
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store


def _write_port_file(path: Path, port: int) -> None:
    draft = path.with_name(path.name + ".new")
    draft.write_text(f"{port}\n")
    os.replace(draft, path)
