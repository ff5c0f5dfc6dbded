"""`reports show ID --verify`: check a stored report's signature here, not on the server.

    check = check_stored(response)          # a GetReportResponse
    check.ok, check.message                 # True, "the signature holds: …"
    check.report                            # the Report parsed from the signed bytes

The warranty desk's tamper check. The server verified the device's signature when it
stored the report; this does it again on the reader's machine from what the server
hands out — the report exactly as the device serialized it, the device's signature and
the public key the device registered when it enrolled — so a report changed in the
database after ingest (or a server that lies about its verdict) is caught. What is shown
afterwards is parsed from the very bytes that were checked.

What it cannot catch: someone who rewrites the report, its signature *and* the device's
registered key together. Against that, compare the key id printed here with the one the
device itself shows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from probelink.signing import check_public_key, key_id, verify
from probelink.v1 import report_pb2, reports_pb2


@dataclass(frozen=True)
class StoredCheck:
    ok: bool
    # One sentence for a person: what holds, or what does not and what it means.
    message: str
    # The key id of the registered key the check used ("" when there was none).
    signing_key: str
    # Parsed from the signed bytes when they verified; else the server's copy.
    report: report_pb2.Report


def check_stored(response: reports_pb2.GetReportResponse) -> StoredCheck:
    """Verify `response.serialized_report` with the device's key and signature."""
    summary = response.summary
    public_key = response.device_public_key

    def failed(message: str, signing_key: str = "") -> StoredCheck:
        return StoredCheck(False, message, signing_key, response.report)

    if not response.serialized_report:
        return failed(
            "the server sent no signed bytes for this report (a server older than "
            "signature checks?): nothing to verify"
        )
    if not response.signature:
        return failed(
            "the server holds no signature for this report: it was stored before the "
            "server checked signatures, so it cannot be shown to be the device's"
        )
    if not public_key:
        return failed(
            f"the server holds no public key for device {summary.device_id} (enrolled "
            "before the server kept keys, or its record is gone): the signature cannot "
            "be checked"
        )
    problem = check_public_key(public_key)
    if problem is not None:
        return failed(f"the device's registered key is not usable: {problem}")
    registered = key_id(public_key)
    if summary.signing_key and summary.signing_key != registered:
        return failed(
            f"the server says the report was verified with key {summary.signing_key}, but "
            f"device {summary.device_id}'s registered key is {registered}",
            registered,
        )
    digest = hashlib.sha256(response.serialized_report).digest()
    if not verify(public_key, response.signature, digest):
        return failed(
            f"DOES NOT VERIFY with device {summary.device_id}'s key {registered}: the "
            "stored report or its signature was changed after the device signed it",
            registered,
        )
    try:
        signed = report_pb2.Report.FromString(response.serialized_report)
    except DecodeError as err:  # signed by the device, yet not a Report: say so
        return failed(f"the signed bytes are not a report ({err})", registered)
    if signed.report_id != summary.report_id:
        return failed(
            f"the signed bytes are report {signed.report_id}, not {summary.report_id}",
            registered,
        )
    if signed != response.report:
        return StoredCheck(
            False,
            "the signature holds for the stored bytes, but the report the server shows "
            "differs from them; what follows is the signed report",
            registered,
            signed,
        )
    return StoredCheck(
        True,
        f"the signature holds: this is exactly the report device {summary.device_id} "
        f"signed with key {registered}",
        registered,
        signed,
    )
