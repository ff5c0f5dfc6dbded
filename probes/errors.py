"""The one home of the probes' exceptions, translated to results in one place.

    ProbeProblem                 base: something kept a probe from judging
    ├── Unsupported              the hardware or subsystem is not here      -> SKIP
    └── SourceError              a source could not be used                 -> ERROR
        ├── AttributeReadError   a sysfs/procfs file could not be read      (FILE_READ)
        ├── ParseError           content that makes no sense                (PARSE)
        ├── MissingUtility       a helper program is not installed          (MISSING_UTILITY)
        ├── Unavailable          a source exists but cannot be used here    (UNAVAILABLE)
        └── ProbeTimeout         a probe or helper ran past its budget      (TIMEOUT)

`probelink.probes.runner` is the boundary: it turns these (and any other exception,
as INTERNAL) into a ProbeResult, so that "could not run" never reads as "hardware failed".
"""

from __future__ import annotations

from probelink.v1 import probe_pb2


class ProbeProblem(Exception):
    """Base of everything that keeps a probe from judging the hardware."""


class Unsupported(ProbeProblem):
    """The hardware or subsystem this probe reads is not on this machine: SKIP."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SourceError(ProbeProblem):
    """A source could not be used: ERROR with a typed kind."""

    kind: probe_pb2.ProbeErrorKind.ValueType = probe_pb2.PROBE_ERROR_KIND_UNSPECIFIED

    def __init__(self, message: str, source: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.source = source

    def to_proto(self) -> probe_pb2.ProbeError:
        return probe_pb2.ProbeError(kind=self.kind, message=self.message, source=self.source)


class AttributeReadError(SourceError):
    kind = probe_pb2.PROBE_ERROR_KIND_FILE_READ


class ParseError(SourceError):
    kind = probe_pb2.PROBE_ERROR_KIND_PARSE


class MissingUtility(SourceError):
    kind = probe_pb2.PROBE_ERROR_KIND_MISSING_UTILITY


class Unavailable(SourceError):
    kind = probe_pb2.PROBE_ERROR_KIND_UNAVAILABLE


class ProbeTimeout(SourceError):
    kind = probe_pb2.PROBE_ERROR_KIND_TIMEOUT
