"""The server's exceptions, in one tree, and the one place they become gRPC statuses.

    ServerError
    ├── StoreError                  the database could not do what was asked
    │   ├── StoreUnavailable        locked, gone, connection lost: retry later
    │   └── DictionaryIdTaken       another replica issued that dictionary id first
    ├── IngestRefused               a report frame was refused (carries a RefusalReason)
    ├── Unauthenticated             no credential, or one the server does not know
    ├── PermissionDenied            a known caller asked for what its role does not allow
    ├── InvalidArgument             a request a person must fix
    ├── NotFound                    no such report, token, device or dictionary
    └── FailedPrecondition          the request needs something first (e.g. enough reports)

Servicers raise these; `status_of` gives the gRPC code, and `probelink.server.gateway`
aborts the call with it and the message, which is written for the person who reads it.

    >>> status_of(NotFound("no report 42")).name
    'NOT_FOUND'
"""

from __future__ import annotations

import grpc

from probelink.v1 import wire_pb2


class ServerError(Exception):
    """The root: any error the server can explain to a caller."""


class StoreError(ServerError):
    """The database could not do what was asked."""


class StoreUnavailable(StoreError):
    """The database is locked, gone or unreachable; nothing was written."""


class DictionaryIdTaken(StoreError):
    """A dictionary with this id exists already (another replica trained one)."""


class IngestRefused(ServerError):
    """A report frame was refused; `reason` is what the counters and the agent see."""

    def __init__(
        self, reason: wire_pb2.RefusalReason.ValueType, message: str, report_id: str = ""
    ) -> None:
        super().__init__(message)
        self.reason = reason
        # Set once the report could be read far enough to know it.
        self.report_id = report_id

    @property
    def reason_name(self) -> str:
        """The reason without its enum prefix, lower case: `not_zstd`."""
        return wire_pb2.RefusalReason.Name(self.reason).removeprefix("REFUSAL_REASON_").lower()


class Unauthenticated(ServerError):
    """No credential, or one the server does not know (or has revoked)."""


class PermissionDenied(ServerError):
    """A known caller asked for something its role does not allow."""


class InvalidArgument(ServerError):
    """A request that a person must fix."""


class NotFound(ServerError):
    """No such report, token, device or dictionary."""


class FailedPrecondition(ServerError):
    """The request needs something done first."""


# Why each refusal maps where it does: the agent's spool keys its behaviour on the code.
# UNAVAILABLE means "resend later, it may work"; everything else means "this frame will
# never be accepted as it is" (except FAILED_PRECONDITION: fetch the dictionary, re-encode).
_REFUSAL_CODES: dict[int, grpc.StatusCode] = {
    wire_pb2.REFUSAL_REASON_NOT_ZSTD: grpc.StatusCode.INVALID_ARGUMENT,
    wire_pb2.REFUSAL_REASON_NO_CONTENT_SIZE: grpc.StatusCode.INVALID_ARGUMENT,
    wire_pb2.REFUSAL_REASON_NO_CHECKSUM: grpc.StatusCode.INVALID_ARGUMENT,
    wire_pb2.REFUSAL_REASON_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    wire_pb2.REFUSAL_REASON_TRUNCATED: grpc.StatusCode.INVALID_ARGUMENT,
    wire_pb2.REFUSAL_REASON_TRAILING_DATA: grpc.StatusCode.INVALID_ARGUMENT,
    wire_pb2.REFUSAL_REASON_CORRUPT: grpc.StatusCode.DATA_LOSS,
    wire_pb2.REFUSAL_REASON_UNKNOWN_DICTIONARY: grpc.StatusCode.FAILED_PRECONDITION,
    wire_pb2.REFUSAL_REASON_MALFORMED_REPORT: grpc.StatusCode.INVALID_ARGUMENT,
    wire_pb2.REFUSAL_REASON_INVALID_REPORT: grpc.StatusCode.INVALID_ARGUMENT,
    wire_pb2.REFUSAL_REASON_ID_CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    wire_pb2.REFUSAL_REASON_STORE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    wire_pb2.REFUSAL_REASON_SHUTTING_DOWN: grpc.StatusCode.UNAVAILABLE,
    # Resending the same frame cannot help: the report must be signed, by the right key.
    wire_pb2.REFUSAL_REASON_SIGNATURE_MISSING: grpc.StatusCode.INVALID_ARGUMENT,
    wire_pb2.REFUSAL_REASON_SIGNATURE_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
}

_CODES: list[tuple[type[ServerError], grpc.StatusCode]] = [
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
    (DictionaryIdTaken, grpc.StatusCode.ABORTED),
    (StoreError, grpc.StatusCode.INTERNAL),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
]


def status_of(error: ServerError) -> grpc.StatusCode:
    """The gRPC status code a caller gets for `error`."""
    if isinstance(error, IngestRefused):
        return _REFUSAL_CODES.get(error.reason, grpc.StatusCode.INVALID_ARGUMENT)
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL
