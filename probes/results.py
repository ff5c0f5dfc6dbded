"""Small builders for ProbeResult, so every probe states its verdict the same way.

    >>> checks = [check("battery.health_low", WARN, "health 62 % is below 70 %")]
    >>> r = result(worst(checks), "BAT0: 62 % of design capacity", subject="BAT0",
    ...            checks=checks, battery=info)

The runner fills in probe name, category, kind and duration afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

from probelink.probes.errors import SourceError
from probelink.v1 import probe_pb2, status_pb2

PASS = status_pb2.STATUS_PASS
WARN = status_pb2.STATUS_WARN
FAIL = status_pb2.STATUS_FAIL
SKIP = status_pb2.STATUS_SKIP
ERROR = status_pb2.STATUS_ERROR

StatusValue: TypeAlias = status_pb2.Status.ValueType

# Higher is worse, for statuses that judge hardware.
_SEVERITY = {PASS: 1, WARN: 2, FAIL: 3}


def check(code: str, status: StatusValue, message: str) -> probe_pb2.Check:
    return probe_pb2.Check(code=code, status=status, message=message)


def worst(
    checks: Iterable[probe_pb2.Check | StatusValue], default: StatusValue = PASS
) -> StatusValue:
    """The worst hardware verdict among checks (or statuses); `default` when none judges."""
    found = default
    for item in checks:
        status = item.status if isinstance(item, probe_pb2.Check) else item
        if _SEVERITY.get(status, 0) > _SEVERITY.get(found, 0):
            found = status
    return found


def measurement(name: str, value: float, unit: str) -> probe_pb2.Measurement:
    return probe_pb2.Measurement(name=name, value=float(value), unit=unit)


def fact(name: str, value: str) -> probe_pb2.Fact:
    return probe_pb2.Fact(name=name, value=value)


def result(
    status: StatusValue,
    evidence: str,
    *,
    subject: str = "",
    checks: Iterable[probe_pb2.Check] = (),
    measurements: Iterable[probe_pb2.Measurement] = (),
    facts: Iterable[probe_pb2.Fact] = (),
    error: probe_pb2.ProbeError | None = None,
    **data: Any,
) -> probe_pb2.ProbeResult:
    """A ProbeResult; `data` is one typed family message, e.g. `battery=BatteryInfo(...)`."""
    return probe_pb2.ProbeResult(
        status=status,
        evidence=evidence,
        subject=subject,
        checks=list(checks),
        measurements=list(measurements),
        facts=list(facts),
        error=error,
        **data,
    )


def skipped(reason: str, subject: str = "") -> probe_pb2.ProbeResult:
    return result(SKIP, reason, subject=subject)


def errored(exc: SourceError, subject: str = "", **data: Any) -> probe_pb2.ProbeResult:
    """ERROR for one subject whose source failed; other subjects are judged as usual."""
    prefix = f"{subject}: " if subject else ""
    return result(
        ERROR,
        f"{prefix}could not read: {exc.message}",
        subject=subject,
        error=exc.to_proto(),
        **data,
    )
