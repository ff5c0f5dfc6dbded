"""Records for the storage tests: realistic sizes, distinct content per id.

incoming("r1")                      # device d1, a 1.5 KB frame, a verified signature
incoming("r1", device_id="d2")      # same content, another device: a CONFLICT
"""

from __future__ import annotations

import hashlib
import os

from probelink.server.store import IncomingReport, SignatureFields
from probelink.server.store.base import ReportSummaryFields
from probelink.v1 import reports_pb2

SUMMARY = ReportSummaryFields(
    manufacturer="Acme",
    model="Tab 10",
    kind=1,
    overall=2,
    agent_version="0.1.0",
    started_at_us=1_700_000_000_000_000,
    finished_at_us=1_700_000_000_250_000,
    result_count=40,
    fail_count=1,
    warn_count=2,
    error_count=0,
    spool_evicted=3,
)


def signature_of(content: bytes) -> SignatureFields:
    """A verified-looking signature that follows `content` (the store does not verify)."""
    return SignatureFields(
        hashlib.sha512(content).digest(),
        "SHA256:0123456789abcdef",
        reports_pb2.SIGNATURE_VERDICT_VERIFIED,
    )


def incoming(
    report_id: str,
    device_id: str = "d1",
    content: bytes | None = None,
    frame: bytes | None = None,
    dictionary_id: int = 0,
) -> IncomingReport:
    """A report whose hash follows `content` (default: derived from the id)."""
    content = content if content is not None else f"report {report_id}".encode()
    return IncomingReport(
        report_id=report_id,
        device_id=device_id,
        content_sha256=hashlib.sha256(content).digest(),
        # Random bytes: a frame that survives only if stored byte for byte.
        frame=frame if frame is not None else os.urandom(1500),
        dictionary_id=dictionary_id,
        report_bytes=4096,
        summary=SUMMARY,
        signature=signature_of(content),
    )
