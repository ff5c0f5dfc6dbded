"""The action catalog: what a customer can do themselves, and what service costs.

Every recommended action is one of two kinds. **Self-help** is steps the customer can take
(free space, update firmware, clean a port), in English and Simplified Chinese, at no charge.
**Service** is parts and labour at the desk, with a published price per currency::

    >>> catalog = load_actions()
    >>> catalog["battery_replacement"].price("CNY")
    Money(amount=Decimal('399.00'), currency='CNY')
    >>> catalog["free_space"].kind
    'self_help'

Prices are `Decimal` from the file to the bill (TOML floats are parsed as Decimal): a price
that passed through float could be a fraction of a cent off. A negative price, a currency
that is not ISO 4217, or more decimals than the currency has are refused at load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

from probelink.server.diagnosis.data import CatalogError, line_of, parse_toml, shipped_text
from probelink.server.diagnosis.models import COMPONENTS

__all__ = [
    "CURRENCIES",
    "LANGUAGES",
    "Action",
    "ActionCatalog",
    "Money",
    "PriceLine",
    "load_actions",
    "parse_actions",
]

LANGUAGES = ("en", "zh-CN")
"""Every customer-facing text exists in each of these."""

# ISO 4217 code → decimal places of its minor unit. Not the whole standard: the currencies a
# service network publishes prices in. Add a line here to price in another.
CURRENCIES: Mapping[str, int] = MappingProxyType(
    {
        "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2,
        "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "INR": 2, "JPY": 0, "KRW": 0, "MXN": 2,
        "MYR": 2, "NOK": 2, "NZD": 2, "PHP": 2, "PLN": 2, "SEK": 2, "SGD": 2, "THB": 2,
        "TWD": 2, "USD": 2, "VND": 0, "ZAR": 2,
    }
)  # fmt: skip

ActionKind = Literal["self_help", "service"]


@dataclass(frozen=True)
class Money:
    """An amount in one ISO 4217 currency; never a float."""

    amount: Decimal
    currency: str

    @classmethod
    def zero(cls, currency: str) -> Money:
        """No charge, written with the currency's decimals (CNY 0.00, JPY 0)."""
        return cls(Decimal(0).scaleb(-CURRENCIES[currency]), currency)

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)

    def __str__(self) -> str:
        return f"{self.currency} {self.amount}"


@dataclass(frozen=True)
class PriceLine:
    """A service action's published price in one currency: the part and the labour."""

    parts: Money
    labour: Money

    @property
    def total(self) -> Money:
        return self.parts + self.labour


@dataclass(frozen=True)
class Action:
    """One thing to do about a finding.

    `component` is what a service action repairs (warranty decides coverage by it); None for
    services that repair nothing (data backup) and for self-help. `steps` is empty for service.
    """

    id: str
    kind: ActionKind
    title: Mapping[str, str]
    steps: Mapping[str, tuple[str, ...]]
    component: str | None
    parts: tuple[str, ...]
    prices: Mapping[str, PriceLine]

    def price(self, currency: str) -> Money:
        """What the customer pays with no cover: the total, or zero for self-help.

        Raises `CatalogError` when a service action has no price in `currency`.
        """
        if self.kind == "self_help":
            return Money.zero(currency)
        line = self.prices.get(currency)
        if line is None:
            raise CatalogError(
                f"action {self.id!r} has no published price in {currency}; "
                f"add [actions.{self.id}.prices.{currency}] to actions.toml"
            )
        return line.total


ActionCatalog = Mapping[str, Action]
"""Action id → action."""


def load_actions() -> ActionCatalog:
    """The shipped action catalog (``data/actions.toml``)."""
    text, source = shipped_text("actions.toml")
    return parse_actions(text, source)


def parse_actions(text: str, source: str) -> ActionCatalog:
    """Read and validate an action catalog; `source` names the file in every error."""
    doc = parse_toml(text, source)
    _only(doc, {"actions"}, source, text, "", "the top level")
    actions = doc.get("actions")
    if not isinstance(actions, dict) or not actions:
        raise CatalogError(f"{source}: no [actions.<id>] tables; add at least one action")
    return MappingProxyType(
        {aid: _action(aid, body, source, text) for aid, body in actions.items()}
    )


def _where(source: str, text: str, table: str) -> str:
    line = line_of(text, table)
    return f"{source}:{line}" if line else source


def _only(
    body: dict[str, Any], allowed: set[str], source: str, text: str, table: str, what: str
) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise CatalogError(
            f"{_where(source, text, table)}: {what}: unknown key {unknown[0]!r}; "
            f"expected one of {', '.join(sorted(allowed))}"
        )


def _texts(value: Any, where: str, field: str) -> Mapping[str, str]:
    if not isinstance(value, dict) or any(
        not isinstance(value.get(lang), str) or not value[lang].strip() for lang in LANGUAGES
    ):
        raise CatalogError(f"{where}: {field} needs non-empty text for each of {LANGUAGES}")
    _no_extra_langs(value, where, field)
    return MappingProxyType({lang: value[lang] for lang in LANGUAGES})


def _no_extra_langs(value: dict[str, Any], where: str, field: str) -> None:
    extra = sorted(set(value) - set(LANGUAGES))
    if extra:
        raise CatalogError(f"{where}: {field}.{extra[0]}: unknown language; use {LANGUAGES}")


def _action(aid: str, body: Any, source: str, text: str) -> Action:
    table = f"actions.{aid}"
    where = f"{_where(source, text, table)}: {table}"
    if not isinstance(body, dict):
        raise CatalogError(f"{where}: must be a table")
    kind = body.get("kind")
    if kind not in ("self_help", "service"):
        raise CatalogError(f"{where}.kind: {kind!r} is not 'self_help' or 'service'")
    title = _texts(body.get("title"), where, "title")
    if kind == "self_help":
        _only(body, {"kind", "title", "steps"}, source, text, table, table)
        return Action(aid, "self_help", title, _steps(body.get("steps"), where), None, (), {})
    _only(body, {"kind", "title", "component", "parts", "prices"}, source, text, table, table)
    component = body.get("component")
    if component is not None and component not in COMPONENTS:
        raise CatalogError(
            f"{where}.component: {component!r} is not a known component; "
            f"use one of {', '.join(sorted(COMPONENTS))} or leave it out"
        )
    parts = body.get("parts", [])
    if not isinstance(parts, list) or not all(isinstance(p, str) and p for p in parts):
        raise CatalogError(f"{where}.parts: must be a list of part numbers (strings)")
    prices = body.get("prices")
    if not isinstance(prices, dict) or not prices:
        raise CatalogError(
            f"{where}.prices: a service action needs a published price: "
            f"add [{table}.prices.CNY] with parts and labour"
        )
    lines = {cur: _price_line(cur, line, where) for cur, line in prices.items()}
    return Action(aid, "service", title, {}, component, tuple(parts), MappingProxyType(lines))


def _steps(value: Any, where: str) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise CatalogError(f"{where}.steps: a self-help action needs steps for each of {LANGUAGES}")
    _no_extra_langs(value, where, "steps")
    out: dict[str, tuple[str, ...]] = {}
    for lang in LANGUAGES:
        steps = value.get(lang)
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise CatalogError(f"{where}.steps.{lang}: must be a non-empty list of strings")
        out[lang] = tuple(steps)
    if len(out["en"]) != len(out["zh-CN"]):
        raise CatalogError(f"{where}.steps: en and zh-CN must have the same number of steps")
    return MappingProxyType(out)


def _price_line(currency: str, line: Any, where: str) -> PriceLine:
    field = f"{where}.prices.{currency}"
    if currency not in CURRENCIES:
        raise CatalogError(
            f"{field}: {currency!r} is not a known ISO 4217 currency code "
            f"(e.g. CNY, EUR, USD); add it to prices.CURRENCIES if it is real"
        )
    if not isinstance(line, dict) or set(line) != {"parts", "labour"}:
        raise CatalogError(f"{field}: must have exactly 'parts' and 'labour' amounts")
    return PriceLine(
        _amount(line["parts"], currency, f"{field}.parts"),
        _amount(line["labour"], currency, f"{field}.labour"),
    )


def _amount(value: Any, currency: str, field: str) -> Money:
    # bool is an int in Python; `true` is no price.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise CatalogError(f"{field}: {value!r} is not a number; write e.g. 399.00")
    amount = Decimal(value)
    if not amount.is_finite():
        raise CatalogError(f"{field}: {value} is not a finite number; write e.g. 399.00")
    if amount < 0:
        raise CatalogError(f"{field}: {value} is negative; a published price is 0 or more")
    places = CURRENCIES[currency]
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise CatalogError(f"{field}: {value} has more than {places} decimal places for {currency}")
    return Money(amount.quantize(Decimal(1).scaleb(-places)), currency)
