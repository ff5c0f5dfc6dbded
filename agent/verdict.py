"""The one-line verdict a person reads at the end of a self-check, in plain words.

    >>> verdict(report).headline
    'Something needs attention: 1 problem found.'

Only PASS, WARN and FAIL speak about the hardware; SKIP and ERROR are "could not
judge" and are counted apart, so a machine without sensors is never called broken.
"""

from __future__ import annotations

from dataclasses import dataclass

from probelink.probes.results import ERROR, FAIL, PASS, SKIP, WARN
from probelink.v1 import report_pb2, status_pb2


@dataclass(frozen=True)
class Verdict:
    overall: status_pb2.Status.ValueType
    headline: str
    advice: str
    failed: int
    warned: int
    passed: int
    skipped: int
    errored: int


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def verdict(report: report_pb2.Report) -> Verdict:
    counts = {s: 0 for s in (PASS, WARN, FAIL, SKIP, ERROR)}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    failed, warned, passed = counts[FAIL], counts[WARN], counts[PASS]
    skipped, errored = counts[SKIP], counts[ERROR]
    if failed:
        overall = FAIL
        headline = f"Something needs attention: {_plural(failed, 'problem')} found."
        advice = "See the items marked FAIL above; book a service check if they persist."
    elif warned:
        overall = WARN
        headline = f"Working, with {_plural(warned, 'thing')} to keep an eye on."
        advice = "Nothing is broken; the items marked WARN above say what to watch or try."
    elif passed:
        overall = PASS
        headline = "All checks passed: this device looks healthy."
        advice = "Nothing to do."
    else:
        overall = status_pb2.STATUS_UNSPECIFIED
        headline = "Could not judge this device: no check could read its hardware here."
        advice = "The reasons are listed above; this is common in virtual machines."
    if errored:
        advice += f" {_plural(errored, 'check')} could not run; that is not a hardware fault."
    return Verdict(overall, headline, advice, failed, warned, passed, skipped, errored)
