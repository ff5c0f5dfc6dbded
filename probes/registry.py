"""The registry of probes, filled by a decorator in each probe's own file.

    @telemetry("battery.power_supply", BATTERY, "Batteries: charge, health, cycles")
    def power_supply(ctx: ProbeContext) -> Iterable[ProbeResult]:
        ...

`load_all()` imports every module under the family folders, so adding a probe is adding
a file. Names are "<family>.<what>"; they are stable: reports, rules and the remote
engineer's allow-list refer to them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from probelink.v1 import probe_pb2, status_pb2

if TYPE_CHECKING:
    from probelink.probes.context import ProbeContext

BATTERY = status_pb2.CATEGORY_BATTERY
STORAGE = status_pb2.CATEGORY_STORAGE
SENSORS = status_pb2.CATEGORY_SENSORS
PORTS = status_pb2.CATEGORY_PORTS
SYSTEM = status_pb2.CATEGORY_SYSTEM
FIRMWARE = status_pb2.CATEGORY_FIRMWARE

TELEMETRY = status_pb2.PROBE_KIND_TELEMETRY
ROUTINE = status_pb2.PROBE_KIND_ROUTINE

FAMILIES = ("battery", "storage", "sensors", "ports", "system")
FAMILY_CATEGORY = {
    "battery": BATTERY,
    "storage": STORAGE,
    "sensors": SENSORS,
    "ports": PORTS,
    "system": SYSTEM,
}

ProbeFn = Callable[["ProbeContext"], Iterable[probe_pb2.ProbeResult]]
# Returns None when the probe can run here, else the reason it cannot.
SupportFn = Callable[["ProbeContext"], "str | None"]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ProbeSpec:
    name: str
    category: status_pb2.Category.ValueType
    kind: status_pb2.ProbeKind.ValueType
    summary: str
    fn: Callable[..., Any]
    support: SupportFn | None = None
    # Routines only: budgets enforced by the watchdog.
    time_budget_s: float = 0.0
    memory_budget_mib: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    def unsupported_reason(self, ctx: ProbeContext) -> str | None:
        return self.support(ctx) if self.support else None


_REGISTRY: dict[str, ProbeSpec] = {}


def register(spec: ProbeSpec) -> None:
    if spec.name in _REGISTRY and _REGISTRY[spec.name].fn is not spec.fn:
        raise ValueError(f"probe {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec


def telemetry(
    name: str,
    category: status_pb2.Category.ValueType,
    summary: str,
    *,
    support: SupportFn | None = None,
) -> Callable[[F], F]:
    """Register a telemetry probe: a passive snapshot that takes milliseconds."""

    def wrap(fn: F) -> F:
        register(ProbeSpec(name, category, TELEMETRY, summary, fn, support))
        return fn

    return wrap


def get(name: str) -> ProbeSpec:
    load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"no probe named {name!r}; known probes: {known}") from None


def all_probes(kind: status_pb2.ProbeKind.ValueType | None = None) -> list[ProbeSpec]:
    """Every registered probe in a stable order: by family as listed, then by name."""
    load_all()
    order = {f: i for i, f in enumerate(FAMILIES)}
    specs = [s for s in _REGISTRY.values() if kind is None or s.kind == kind]
    return sorted(specs, key=lambda s: (order.get(s.family, len(order)), s.name))


_loaded = False


def load_all() -> None:
    """Import every probe module so that its decorator registers it.

    A module that fails to import (a bug, a missing optional library) must not take the
    other probes down with it: it is registered under its module's name as a probe that
    reports the import error, so the check still runs and says what broke.
    """
    global _loaded
    if _loaded:
        return
    for family in FAMILIES:
        package = importlib.import_module(f"probelink.probes.{family}")
        for info in pkgutil.iter_modules(package.__path__):
            module = f"{package.__name__}.{info.name}"
            try:
                importlib.import_module(module)
            except Exception as exc:
                _register_broken(family, info.name, module, exc)
    _loaded = True


def _register_broken(family: str, name: str, module: str, exc: Exception) -> None:
    reason = f"the probe module {module} could not be loaded: {type(exc).__name__}: {exc}"

    def broken(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
        raise RuntimeError(reason)

    register(ProbeSpec(f"{family}.{name}", FAMILY_CATEGORY[family], TELEMETRY, reason, broken))
