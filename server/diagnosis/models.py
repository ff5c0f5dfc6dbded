"""The model catalog: which limits judge a device, and what kind of device it is.

A phone and a laptop are not judged by the same limits (a phone battery is rated for fewer
cycles), and warranty needs to know a device's kind and which of its components are "main
parts" (repairs to them are repairs of the main unit under China's three guarantees). The
catalog (``data/models.toml``) holds both, keyed by the report's `DeviceIdentity`::

    >>> catalog = load_models()
    >>> m = catalog.lookup("LENOVO", "20XW00GMUS")
    >>> m.kind, m.thresholds["battery.min_health_pct"], m.group("screen")
    ('laptop', 80.0, 'main_unit')

A model not in the catalog falls back to the generic entry for its kind (when the caller
knows it) or to the defaults of `thresholds.DEFAULT_THRESHOLDS` with no kind.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from probelink.server.diagnosis.data import CatalogError, line_of, parse_toml, shipped_text
from probelink.server.diagnosis.thresholds import DEFAULT_THRESHOLDS, KNOWN_THRESHOLDS, Thresholds

__all__ = ["COMPONENTS", "KINDS", "MAIN_UNIT", "DeviceModel", "ModelCatalog", "load_models"]

KINDS = ("phone", "laptop", "desktop", "board")
"""What a device is; maker warranties and generic limits differ by kind."""

COMPONENTS = frozenset(
    {"battery", "board", "camera", "charger", "charging_port", "fan", "keyboard", "screen",
     "speaker", "storage"}
)  # fmt: skip
"""What a service action can repair; warranty terms cover components or the main unit."""

MAIN_UNIT = "main_unit"
"""The group every main part of a kind belongs to (warranty terms give it one period)."""


@dataclass(frozen=True)
class DeviceModel:
    """One model's limits and facts. `kind` is None for an unknown model of unknown kind."""

    manufacturer: str
    model: str
    name: str
    kind: str | None
    thresholds: Thresholds
    main_parts: frozenset[str]
    generic: bool

    def group(self, component: str) -> str:
        """The warranty group of a component: `MAIN_UNIT` for a main part, else itself."""
        return MAIN_UNIT if component in self.main_parts else component


@dataclass(frozen=True)
class _Kind:
    name: Mapping[str, str]
    main_parts: frozenset[str]
    thresholds: Thresholds


class ModelCatalog:
    """Models by (manufacturer, model), with generic entries per kind."""

    def __init__(self, kinds: Mapping[str, _Kind], models: Mapping[tuple[str, str], DeviceModel]):
        self._kinds = kinds
        self._models = models

    def __len__(self) -> int:
        return len(self._models)

    def lookup(self, manufacturer: str, model: str, *, kind: str | None = None) -> DeviceModel:
        """The catalog entry; else the generic one for `kind`; else defaults with no kind.

        Matching ignores case and surrounding space: DMI says "LENOVO", a desk types "Lenovo".
        """
        found = self._models.get(_key(manufacturer, model))
        if found is not None:
            return found
        if kind is None:
            return DeviceModel(
                manufacturer, model, model, None, DEFAULT_THRESHOLDS, frozenset(), generic=True
            )
        facts = self._kinds.get(kind)
        if facts is None:
            raise CatalogError(f"unknown device kind {kind!r}; use one of {', '.join(KINDS)}")
        return DeviceModel(
            manufacturer,
            model,
            facts.name["en"],
            kind,
            facts.thresholds,
            facts.main_parts,
            generic=True,
        )

    def generic(self, kind: str) -> DeviceModel:
        """The generic entry for a kind ("a phone", "a laptop")."""
        return self.lookup("", "", kind=kind)


def _key(manufacturer: str, model: str) -> tuple[str, str]:
    return manufacturer.strip().casefold(), model.strip().casefold()


def load_models() -> ModelCatalog:
    """The shipped model catalog (``data/models.toml``)."""
    text, source = shipped_text("models.toml")
    return parse_models(text, source)


def parse_models(text: str, source: str) -> ModelCatalog:
    """Read and validate a model catalog; every error names `source` and the entry."""
    doc = parse_toml(text, source)
    unknown = sorted(set(doc) - {"kinds", "models"})
    if unknown:
        raise CatalogError(f"{source}: unknown top-level key {unknown[0]!r}; use kinds, models")
    raw_kinds = doc.get("kinds", {})
    missing = [k for k in KINDS if k not in raw_kinds]
    if missing:
        raise CatalogError(f"{source}: [kinds.{missing[0]}] is missing; every kind needs one")
    kinds = {}
    for kind, body in raw_kinds.items():
        line = line_of(text, f"kinds.{kind}")
        where = f"{source}:{line}: kinds.{kind}" if line else f"{source}: kinds.{kind}"
        if kind not in KINDS:
            raise CatalogError(f"{where}: unknown kind; use one of {', '.join(KINDS)}")
        kinds[kind] = _kind(body, where)
    models: dict[tuple[str, str], DeviceModel] = {}
    for index, body in enumerate(doc.get("models", [])):
        entry = _model(body, kinds, f"{source}: models[{index}]")
        key = _key(entry.manufacturer, entry.model)
        if key in models:
            raise CatalogError(
                f"{source}: models[{index}]: {entry.manufacturer} {entry.model} is listed twice"
            )
        models[key] = entry
    return ModelCatalog(MappingProxyType(kinds), MappingProxyType(models))


def _kind(body: Any, where: str) -> _Kind:
    _only(body, {"name", "main_parts", "thresholds"}, where)
    name = body.get("name")
    if not isinstance(name, dict) or not all(isinstance(name.get(x), str) for x in ("en", "zh-CN")):
        raise CatalogError(f'{where}.name: needs en and zh-CN, e.g. name = {{ en = "a phone" }}')
    parts = body.get("main_parts")
    if not isinstance(parts, list) or not parts:
        raise CatalogError(f"{where}.main_parts: list the components that are main parts")
    for part in parts:
        if part not in COMPONENTS:
            raise CatalogError(
                f"{where}.main_parts: {part!r} is not a component; "
                f"use one of {', '.join(sorted(COMPONENTS))}"
            )
    thresholds = _thresholds(body.get("thresholds", {}), DEFAULT_THRESHOLDS, where)
    return _Kind(MappingProxyType(dict(name)), frozenset(parts), thresholds)


def _model(body: Any, kinds: Mapping[str, _Kind], where: str) -> DeviceModel:
    if not isinstance(body, dict):
        raise CatalogError(f"{where}: must be a table ([[models]])")
    _only(body, {"manufacturer", "model", "name", "kind", "thresholds"}, where)
    for field in ("manufacturer", "model", "name", "kind"):
        if not isinstance(body.get(field), str) or not body[field].strip():
            raise CatalogError(f"{where}.{field}: required text is missing")
    where = f"{where} ({body['manufacturer']} {body['model']})"
    kind = body["kind"]
    if kind not in kinds:
        raise CatalogError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    facts = kinds[kind]
    thresholds = _thresholds(body.get("thresholds", {}), facts.thresholds, where)
    return DeviceModel(
        body["manufacturer"].strip(),
        body["model"].strip(),
        body["name"],
        kind,
        thresholds,
        facts.main_parts,
        generic=False,
    )


def _thresholds(raw: Any, base: Thresholds, where: str) -> Thresholds:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}.thresholds: must be a table of name = number")
    merged = dict(base)
    for name, value in raw.items():
        if name not in KNOWN_THRESHOLDS:
            close = difflib.get_close_matches(name, KNOWN_THRESHOLDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "; see diagnosis/thresholds.py"
            raise CatalogError(f"{where}.thresholds: unknown threshold {name!r}{hint}")
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise CatalogError(f"{where}.thresholds.{name}: {value!r} is not a number")
        # Thresholds are floats everywhere (see thresholds.py): CEL compares doubles.
        merged[name] = float(value)
    return MappingProxyType(merged)


def _only(body: Any, allowed: set[str], where: str) -> None:
    if not isinstance(body, dict):
        raise CatalogError(f"{where}: must be a table")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise CatalogError(
            f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(allowed))}"
        )
