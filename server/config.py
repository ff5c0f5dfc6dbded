"""What `probelink-server serve` runs with: one dataclass, filled from the command line.

config = ServeConfig(data_dir=Path("probelink-data"))
config.db_url        # sqlite file in the data dir unless --db says otherwise
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_DATA_DIR = Path("probelink-data")
DB_FILE = "probelink.db"


@dataclass(frozen=True)
class TlsConfig:
    cert: Path
    key: Path
    # With a client CA, every client must present a certificate it signed (mTLS).
    client_ca: Path | None = None


@dataclass(frozen=True)
class ServeConfig:
    listen: str = DEFAULT_LISTEN
    data_dir: Path = DEFAULT_DATA_DIR
    db: str | None = None
    tls: TlsConfig | None = None
    insecure: bool = False
    metrics_listen: str | None = None
    # The largest report (serialized bytes) a frame may declare.
    max_report_bytes: int = 1 << 20
    # Train a new dictionary after this many stored reports; 0 = only on request.
    dict_train_after: int = 1000
    # ... and a new one at most this often (seconds).
    dict_retrain_every_s: float = 24 * 3600.0
    max_batch: int = 256
    # How long SIGTERM waits for in-flight reports and streams.
    grace_s: float = 10.0
    port_file: Path | None = None
    # An operator's rule directory, judged with (and over) the shipped rules.
    rules_dir: Path | None = None
    # Prices are quoted in this currency when a device's region is not known.
    currency: str = "USD"
    # A trend crossing its limit within this many days raises an advisory.
    advisory_horizon_days: float = 90.0

    @property
    def db_url(self) -> str:
        return self.db or str(self.data_dir / DB_FILE)

    @property
    def max_message_bytes(self) -> int:
        """gRPC's receive limit: a frame can be a little larger than its content."""
        return self.max_report_bytes + (64 << 10)
