"""Probes: pure readers of the machine that return typed ProbeResults.

    >>> from probelink.probes import ProbeContext, TELEMETRY, all_probes, run_telemetry
    >>> results = run_telemetry(all_probes(TELEMETRY), ProbeContext.for_machine())

One probe per file under a family folder (`battery/`, `storage/`, `sensors/`, `ports/`,
`system/`), registered by its decorator; parsers of kernel classes and tool outputs live
in `readers/` and know nothing of verdicts. Every source is reached through the
`ProbeContext`, so a captured fixture tree runs through the same code as a live machine.
"""

from probelink.probes.context import ProbeContext
from probelink.probes.errors import (
    AttributeReadError,
    MissingUtility,
    ParseError,
    ProbeProblem,
    ProbeTimeout,
    SourceError,
    Unavailable,
    Unsupported,
)
from probelink.probes.registry import (
    BATTERY,
    PORTS,
    ROUTINE,
    SENSORS,
    STORAGE,
    SYSTEM,
    TELEMETRY,
    ProbeSpec,
    all_probes,
    get,
    telemetry,
)
from probelink.probes.routine import Finished, RoutineCancelled, RoutineRun, routine
from probelink.probes.runner import run_one, run_telemetry
from probelink.probes.sysread import SysfsRoot

__all__ = [
    "BATTERY",
    "PORTS",
    "ROUTINE",
    "SENSORS",
    "STORAGE",
    "SYSTEM",
    "TELEMETRY",
    "AttributeReadError",
    "Finished",
    "MissingUtility",
    "ParseError",
    "ProbeContext",
    "ProbeProblem",
    "ProbeSpec",
    "ProbeTimeout",
    "RoutineCancelled",
    "RoutineRun",
    "SourceError",
    "SysfsRoot",
    "Unavailable",
    "Unsupported",
    "all_probes",
    "get",
    "routine",
    "run_one",
    "run_telemetry",
    "telemetry",
]
