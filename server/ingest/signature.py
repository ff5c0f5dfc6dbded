"""Check a report's signature with its device's registered key, before anything trusts it.

    checker = SignatureChecker()
    fields = checker.check(frame.signature, public_key, decoded, device_id)
    fields.signing_key, fields.verdict         # "SHA256:3f2a…", SIGNATURE_VERDICT_VERIFIED
    # or IngestRefused: SIGNATURE_MISSING / SIGNATURE_INVALID (both INVALID_ARGUMENT)

The device signs `probelink.signing.signed_message(SHA-256(serialized report))` with the
Ed25519 key it registered when it enrolled. The server verifies with that key (carried
by the authenticated `Caller`, so no database read per report) and the digest it has
computed anyway for idempotency (`DecodedReport.sha256`): one Ed25519 verification per
report and no second hash.

It runs inline on the event loop, through libsodium (else libcrypto) called with the
GIL held (`probelink.signing.verify`). Measured with the ingest bench (8 agents,
SQLite): `cryptography`, which releases the GIL inside each verification, 1,995
reports/s — every release handed the GIL to the store's threads and the loop waited to
get it back, so a 113 µs check cost ~250 µs of server CPU; libcrypto holding the GIL,
2,504/s; libsodium holding the GIL (49-61 µs), 3,005/s. A verifier thread fed whole
batches measured no better than inline. A verifier process on the other core is the
next step if signed ingest must reach the unsigned figure (4,660/s).

A device enrolled before the server kept keys has none: its reports are refused as
SIGNATURE_MISSING, and the message says to enroll it again. The refusals are what an
operator must see — a tampered report, a wrong key — so each is logged at WARNING with
the device, the report and the key, besides the refused-by-reason metric. At most
`burst` lines per device per `window_s` are logged, so one broken device cannot flood
the log; the metric counts every refusal.
"""

from __future__ import annotations

import logging
import time

from probelink.server.errors import IngestRefused
from probelink.server.ingest.decode import DecodedReport
from probelink.server.ingest.validate import report_id_of
from probelink.server.store.base import SignatureFields
from probelink.signing import SIGNATURE_BYTES, key_id, verify
from probelink.v1 import reports_pb2, wire_pb2

logger = logging.getLogger(__name__)

# Devices whose log windows are remembered; past this the memory starts afresh.
_MAX_TRACKED = 10_000


class SignatureChecker:
    """Verifies report signatures and logs (within limits) the ones it refuses."""

    def __init__(self, burst: int = 5, window_s: float = 60.0) -> None:
        self.burst = burst
        self.window_s = window_s
        # device id -> (window start, lines logged in it)
        self._windows: dict[str, tuple[float, int]] = {}

    def check(
        self,
        signature: bytes,
        public_key: bytes | None,
        decoded: DecodedReport,
        device_id: str,
    ) -> SignatureFields:
        """The verified signature's fields; IngestRefused if it is missing or wrong."""
        if public_key is None:
            raise self._refuse(
                wire_pb2.REFUSAL_REASON_SIGNATURE_MISSING,
                f"device {device_id} enrolled before this server kept device keys, so its "
                "reports cannot be verified and none is stored: enroll the device again "
                "(the agent registers its public key when it enrolls), then resend",
                device_id,
                decoded,
                "",
            )
        signing_key = key_id(public_key)
        if len(signature) != SIGNATURE_BYTES:
            what = (
                "carries no signature"
                if not signature
                else f"carries {len(signature)} bytes of signature, not {SIGNATURE_BYTES}"
            )
            raise self._refuse(
                wire_pb2.REFUSAL_REASON_SIGNATURE_MISSING,
                f"the frame {what}: every report must be signed with the key device "
                f"{device_id} registered ({signing_key}); sign it (ReportFrame.signature, "
                "probelink.wire.Encoder(key=…)) and send it again",
                device_id,
                decoded,
                signing_key,
            )
        if not verify(public_key, signature, decoded.sha256):
            raise self._refuse(
                wire_pb2.REFUSAL_REASON_SIGNATURE_INVALID,
                f"the signature does not verify with the key device {device_id} registered "
                f"at enrollment ({signing_key}): the report was changed after it was signed, "
                "or signed with another key. It was not stored, and resending it cannot help",
                device_id,
                decoded,
                signing_key,
            )
        return SignatureFields(signature, signing_key, reports_pb2.SIGNATURE_VERDICT_VERIFIED)

    def _refuse(
        self,
        reason: wire_pb2.RefusalReason.ValueType,
        message: str,
        device_id: str,
        decoded: DecodedReport,
        signing_key: str,
    ) -> IngestRefused:
        report_id = report_id_of(decoded.report)
        refused = IngestRefused(reason, message, report_id)
        logged = self._may_log(device_id)
        if logged:
            more = ""
            if logged == self.burst:
                more = (
                    f" (further refusals from this device within {self.window_s:g} s are "
                    "only counted, in probelink_reports_refused)"
                )
            logger.warning(
                "refused report %s from device %s (%s, key %s): %s%s",
                report_id or "(no valid id)",
                device_id,
                refused.reason_name,
                signing_key or "none registered",
                message,
                more,
            )
        return refused

    def _may_log(self, device_id: str) -> int:
        """0 if this refusal is over the device's limit; else its number in the window."""
        now = time.monotonic()
        start, logged = self._windows.get(device_id, (now, 0))
        if now - start >= self.window_s:
            start, logged = now, 0
        if logged >= self.burst:
            return 0
        if len(self._windows) >= _MAX_TRACKED and device_id not in self._windows:
            self._windows.clear()
        self._windows[device_id] = (start, logged + 1)
        return logged + 1
