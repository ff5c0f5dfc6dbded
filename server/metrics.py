"""The server's Prometheus metrics, in one registry, served on `--metrics-listen`.

    metrics = Metrics()
    metrics.refused.labels(reason="not_zstd").inc()
    server, port = metrics.serve("127.0.0.1", 9464)   # GET /metrics

One registry per server (not prometheus_client's global one), so tests can run several
servers in one process and read each one's numbers.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.exposition import generate_latest

from probelink.v1 import wire_pb2

# Ingest latency is a few milliseconds when the batch commits quickly and up to the
# database's busy timeout when it does not: the buckets cover both.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("probelink_reports_received", "Report frames received.", registry=r)
        self.stored = Counter("probelink_reports_stored", "Reports durably committed.", registry=r)
        self.duplicates = Counter(
            "probelink_reports_duplicate",
            "Reports resent after they were stored: acked again, not stored twice.",
            registry=r,
        )
        self.refused = Counter(
            "probelink_reports_refused", "Report frames refused, by reason.", ["reason"], registry=r
        )
        self.latency = Histogram(
            "probelink_ingest_latency_seconds",
            "From a frame's arrival to its answer (ack after commit, or refusal).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "probelink_ingest_batch_reports",
            "Reports per group commit.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "probelink_ingest_queue_depth",
            "Reports waiting for the writer.",
            registry=r,
        )
        self.streams = Gauge("probelink_connected_streams", "Open Connect streams.", registry=r)
        self.auth_refused = Counter(
            "probelink_auth_refused",
            "Calls refused as unauthenticated or not permitted.",
            ["code"],
            registry=r,
        )
        # Every reason shows up at 0 from the start, so a dashboard can plot a rate.
        for value in wire_pb2.RefusalReason.values():
            if value:
                name = wire_pb2.RefusalReason.Name(value).removeprefix("REFUSAL_REASON_")
                self.refused.labels(reason=name.lower())

    def serve(self, host: str, port: int) -> tuple[object, int]:
        """Start the /metrics HTTP endpoint; returns the server (for shutdown()) and port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server, int(server.server_port)

    def text(self) -> str:
        """The exposition text, as /metrics would serve it."""
        return generate_latest(self.registry).decode()
