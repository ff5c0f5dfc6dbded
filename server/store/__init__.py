"""Where reports, identities and dictionaries live: SQLite by default, PostgreSQL by URL.

    store = open_store("sqlite:///var/lib/probelink/probelink.db")   # or a plain path
    store = open_store("postgresql://probelink@db/probelink")
    store.migrate()

Both backends implement `Store` (`base.py`) with one schema and the same versioned
migrations (`migrations.py`); the storage test-suite runs against both.
"""

from probelink.server.store.base import (
    DeviceRecord,
    DictionaryRecord,
    EnrollSecretRecord,
    IncomingReport,
    ReportRow,
    SignatureFields,
    Store,
    StoredReport,
    StoreOutcome,
    StoreResult,
    TokenRecord,
)
from probelink.server.store.open import open_store

__all__ = [
    "DeviceRecord",
    "DictionaryRecord",
    "EnrollSecretRecord",
    "IncomingReport",
    "ReportRow",
    "SignatureFields",
    "Store",
    "StoreOutcome",
    "StoreResult",
    "StoredReport",
    "TokenRecord",
    "open_store",
]
