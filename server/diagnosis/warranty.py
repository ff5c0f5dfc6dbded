"""Warranty: for one recommended action, whether it is covered, under which term, and who pays.

Coverage is data (``data/warranty.toml``): statutory terms by region (China's three
guarantees for phones, the EU's two-year legal guarantee), the maker's limited warranty by
device kind, value-added plans the customer bought, and exclusions that void them::

    >>> from probelink.server.diagnosis.models import load_models
    >>> book = load_warranty()
    >>> laptop = load_models().lookup("LENOVO", "20XW00GMUS")
    >>> c = book.coverage("battery_replacement", model=laptop, purchase_date=date(2024, 5, 1),
    ...                   today=date(2025, 11, 1), region="CN", plans={"battery_renewal"},
    ...                   exclusions=(), battery_health_pct=62.0)
    >>> c.covered, c.remedy, str(c.customer_pays), str(c.list_price)
    (True, 'repair', 'CNY 0.00', 'CNY 399.00')

The order decides what a person is told: an exclusion voids every term and every plan that
does not waive it; otherwise the strongest statutory remedy (return, then exchange, for a
main-unit fault) wins, then a repair under a statutory or maker's term, then a plan.
"""

from __future__ import annotations

import calendar
import functools
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from probelink.server.diagnosis.data import CatalogError, line_of, parse_toml, shipped_text
from probelink.server.diagnosis.models import COMPONENTS, KINDS, MAIN_UNIT, DeviceModel
from probelink.server.diagnosis.prices import ActionCatalog, Money, load_actions
from probelink.server.errors import InvalidArgument

__all__ = [
    "Coverage",
    "Exclusion",
    "Plan",
    "Region",
    "Remedy",
    "Term",
    "WarrantyBook",
    "WarrantyError",
    "add_months",
    "coverage",
    "load_warranty",
    "parse_warranty",
]

Remedy = Literal["return", "exchange", "repair", "none"]
_Names = Mapping[str, str]


class WarrantyError(InvalidArgument):
    """A coverage question a person must fix: a future purchase date, an unknown region…"""


@dataclass(frozen=True)
class Coverage:
    """The answer for one action. `term` is for a person; `term_id` for code (and zh-CN text).

    `term_id` is a term or plan id, or one of "self_help", "not_a_repair", "excluded",
    "not_covered".
    """

    covered: bool
    remedy: Remedy
    term: str
    term_id: str
    customer_pays: Money
    list_price: Money
    # The last day the remedy is available under the term (None when not covered).
    until: date | None = None


@dataclass(frozen=True)
class Region:
    id: str
    name: _Names
    currency: str
    # Whose calendar "today" and the windows' days are in (a purchase on the 26th in
    # Shanghai is the 25th in UTC until 08:00).
    time_zone: tzinfo = UTC

    def today(self, now: datetime) -> date:
        """The date in this region at the instant `now` (which must carry a zone)."""
        if now.tzinfo is None:
            raise ValueError("now must carry a time zone")
        return now.astimezone(self.time_zone).date()


@dataclass(frozen=True)
class Term:
    """A statutory or maker's warranty. `kinds` None = every kind; `regions` has "*" = all."""

    id: str
    name: _Names
    basis: Literal["statutory", "limited"]
    regions: frozenset[str]
    kinds: frozenset[str] | None
    months: Mapping[str, int]
    return_days: int
    exchange_days: int

    def applies(self, region: str, kind: str | None) -> bool:
        in_region = "*" in self.regions or region in self.regions
        return in_region and (self.kinds is None or kind in self.kinds)

    def months_for(self, group: str) -> int | None:
        return self.months.get(group, self.months.get("*"))


@dataclass(frozen=True)
class Plan:
    id: str
    name: _Names
    covers: frozenset[str]
    months: int
    below_health_pct: float | None
    waives: frozenset[str]


@dataclass(frozen=True)
class Exclusion:
    id: str
    name: _Names


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (Jan 31 + 1 → Feb 28/29)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class WarrantyBook:
    """The loaded warranty terms, checked against the action catalog's currencies."""

    def __init__(
        self,
        regions: Mapping[str, Region],
        terms: Mapping[str, Term],
        plans: Mapping[str, Plan],
        exclusions: Mapping[str, Exclusion],
        actions: ActionCatalog,
    ) -> None:
        self.regions = regions
        self.terms = terms
        self.plans = plans
        self.exclusions = exclusions
        self.actions = actions

    def coverage(
        self,
        action_id: str,
        *,
        model: DeviceModel,
        purchase_date: date,
        today: date,
        region: str,
        plans: Collection[str] = (),
        exclusions: Collection[str] = (),
        battery_health_pct: float | None = None,
    ) -> Coverage:
        """Who pays for `action_id` on this device today. Raises `WarrantyError` on bad input."""
        action = self.actions.get(action_id)
        if action is None:
            raise WarrantyError(_unknown("action", action_id, self.actions))
        if region not in self.regions:
            raise WarrantyError(_unknown("region", region, self.regions))
        # A bare string is a Collection[str] too, and would be read letter by letter.
        if isinstance(plans, str) or isinstance(exclusions, str):
            raise WarrantyError("plans and exclusions must be collections of ids, not one string")
        for plan_id in sorted(plans):
            if plan_id not in self.plans:
                raise WarrantyError(_unknown("plan", plan_id, self.plans))
        for exclusion in sorted(exclusions):
            if exclusion not in self.exclusions:
                raise WarrantyError(_unknown("exclusion", exclusion, self.exclusions))
        # datetime is a date subclass that does not compare with date: refuse it plainly.
        if isinstance(purchase_date, datetime) or isinstance(today, datetime):
            raise WarrantyError("purchase_date and today must be dates, not date-times")
        if purchase_date > today:
            raise WarrantyError(
                f"purchase date {purchase_date.isoformat()} is after today "
                f"({today.isoformat()}); check the date on the receipt"
            )
        # A new cell can measure above 100 % of design (the phone fixture reads 102.44).
        if battery_health_pct is not None and not (
            math.isfinite(battery_health_pct) and battery_health_pct >= 0
        ):
            raise WarrantyError(
                f"battery health {battery_health_pct} % is not a percentage ≥ 0; "
                f"pass the measured health or None"
            )

        currency = self.regions[region].currency
        price = action.price(currency)
        free = Money.zero(currency)
        if action.kind == "self_help":
            return Coverage(False, "none", "self-help: no charge", "self_help", free, price)
        if action.component is None:
            return Coverage(
                False, "none", "not a repair: no warranty covers it", "not_a_repair", price, price
            )

        group = model.group(action.component)
        age_days = (today - purchase_date).days
        terms = [t for t in self.terms.values() if t.applies(region, model.kind)]
        chosen = [self.plans[p] for p in sorted(plans)]
        excluded = ", ".join(self.exclusions[e].name["en"] for e in sorted(exclusions))
        if exclusions:
            # An exclusion voids every term; a plan survives only if it waives all of them.
            terms = []
            chosen = [p for p in chosen if set(exclusions) <= p.waives]

        ended: list[str] = []
        if group == MAIN_UNIT:
            # Statutory windows for a main-unit fault; return is the stronger remedy.
            for term in terms:
                if term.return_days and age_days <= term.return_days:
                    text = (
                        f"{term.name['en']}: return within {term.return_days} days (day {age_days})"
                    )
                    until = purchase_date + timedelta(days=term.return_days)
                    return Coverage(True, "return", text, term.id, free, price, until)
            for term in terms:
                if term.exchange_days and age_days <= term.exchange_days:
                    text = (
                        f"{term.name['en']}: exchange within {term.exchange_days} days "
                        f"(day {age_days})"
                    )
                    until = purchase_date + timedelta(days=term.exchange_days)
                    return Coverage(True, "exchange", text, term.id, free, price, until)
        for term in terms:
            months = term.months_for(group)
            if months is None:
                continue
            until = add_months(purchase_date, months)
            if today <= until:
                text = f"{term.name['en']}: {_group_name(group)} repair until {until.isoformat()}"
                return Coverage(True, "repair", text, term.id, free, price, until)
            ended.append(f"{term.name['en']} ended {until.isoformat()}")
        for plan in chosen:
            if not (action.component in plan.covers or group in plan.covers):
                continue
            until = add_months(purchase_date, plan.months)
            if today > until:
                ended.append(f"{plan.name['en']} ended {until.isoformat()}")
                continue
            if plan.below_health_pct is not None:
                if battery_health_pct is None:
                    ended.append(f"{plan.name['en']} needs the measured battery health")
                    continue
                if battery_health_pct >= plan.below_health_pct:
                    ended.append(
                        f"{plan.name['en']} needs health below {plan.below_health_pct:g} % "
                        f"(measured {battery_health_pct:g} %)"
                    )
                    continue
            what = action.component if action.component in plan.covers else group
            text = f"{plan.name['en']}: {_group_name(what)} until {until.isoformat()}"
            return Coverage(True, "repair", text, plan.id, free, price, until)
        if exclusions:
            why = "; ".join([excluded, *ended])
            return Coverage(False, "none", f"excluded: {why}", "excluded", price, price)
        why = "; ".join(ended) if ended else f"no term or plan covers the {_group_name(group)}"
        return Coverage(False, "none", f"not covered: {why}", "not_covered", price, price)


def _group_name(group: str) -> str:
    return group.replace("_", " ")


def _unknown(what: str, value: str, known: Mapping[str, Any]) -> str:
    return f"unknown {what} {value!r}; known {what}s: {', '.join(sorted(known))}"


@functools.cache
def _shipped() -> WarrantyBook:
    return load_warranty()


def coverage(
    action_id: str,
    *,
    model: DeviceModel,
    purchase_date: date,
    today: date,
    region: str,
    plans: Collection[str] = (),
    exclusions: Collection[str] = (),
    battery_health_pct: float | None = None,
) -> Coverage:
    """`WarrantyBook.coverage` with the shipped terms and action catalog."""
    return _shipped().coverage(
        action_id,
        model=model,
        purchase_date=purchase_date,
        today=today,
        region=region,
        plans=plans,
        exclusions=exclusions,
        battery_health_pct=battery_health_pct,
    )


def load_warranty(actions: ActionCatalog | None = None) -> WarrantyBook:
    """The shipped terms (``data/warranty.toml``) over `actions` (default: the shipped ones)."""
    text, source = shipped_text("warranty.toml")
    return parse_warranty(text, source, load_actions() if actions is None else actions)


def parse_warranty(text: str, source: str, actions: ActionCatalog) -> WarrantyBook:
    """Read and validate warranty terms; every error names `source`, the entry and the key."""
    doc = parse_toml(text, source)
    unknown = sorted(set(doc) - {"regions", "terms", "plans", "exclusions"})
    if unknown:
        raise CatalogError(
            f"{source}: unknown top-level key {unknown[0]!r}; use regions, terms, plans, exclusions"
        )
    reader = _Reader(text, source)
    regions = {rid: reader.region(rid, b, actions) for rid, b in _tables(doc, "regions", source)}
    exclusions = {
        eid: Exclusion(eid, reader.names(reader.where("exclusions", eid), b, {"name"}))
        for eid, b in _tables(doc, "exclusions", source)
    }
    terms = {tid: reader.term(tid, b, regions) for tid, b in _tables(doc, "terms", source)}
    plans = {pid: reader.plan(pid, b, exclusions) for pid, b in _tables(doc, "plans", source)}
    return WarrantyBook(
        MappingProxyType(regions),
        MappingProxyType(terms),
        MappingProxyType(plans),
        MappingProxyType(exclusions),
        actions,
    )


def _tables(doc: dict[str, Any], section: str, source: str) -> list[tuple[str, Any]]:
    body = doc.get(section, {})
    if not isinstance(body, dict) or (section != "plans" and not body):
        raise CatalogError(f"{source}: [{section}.<id>] tables are missing; add at least one")
    return list(body.items())


class _Reader:
    """Validation helpers that know the file, so each message can point into it."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source

    def where(self, section: str, entry: str) -> str:
        table = f"{section}.{entry}"
        line = line_of(self.text, table)
        return f"{self.source}:{line}: {table}" if line else f"{self.source}: {table}"

    def names(self, where: str, body: Any, allowed: set[str]) -> _Names:
        if not isinstance(body, dict):
            raise CatalogError(f"{where}: must be a table")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise CatalogError(
                f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(allowed))}"
            )
        name = body.get("name")
        if not isinstance(name, dict) or not all(
            isinstance(name.get(lang), str) for lang in ("en", "zh-CN")
        ):
            raise CatalogError(
                f'{where}.name: needs en and zh-CN text, e.g. {{ en = "…", zh-CN = "…" }}'
            )
        return MappingProxyType({"en": name["en"], "zh-CN": name["zh-CN"]})

    def region(self, rid: str, body: Any, actions: ActionCatalog) -> Region:
        where = self.where("regions", rid)
        name = self.names(where, body, {"name", "currency", "time_zone"})
        currency = body.get("currency")
        if not isinstance(currency, str):
            raise CatalogError(f"{where}.currency: required, an ISO 4217 code such as CNY")
        zone_name = body.get("time_zone", "UTC")
        try:
            zone = ZoneInfo(zone_name) if isinstance(zone_name, str) else None
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
        if zone is None:
            raise CatalogError(
                f"{where}.time_zone: {zone_name!r} is not a time zone; use an IANA name "
                'such as "Asia/Shanghai"'
            )
        for action in actions.values():
            if action.kind == "service" and currency not in action.prices:
                raise CatalogError(
                    f"{where}.currency: action {action.id!r} has no {currency} price; "
                    f"publish one in actions.toml or quote this region in another currency"
                )
        return Region(rid, name, currency, zone)

    def term(self, tid: str, body: Any, regions: Mapping[str, Region]) -> Term:
        where = self.where("terms", tid)
        keys = {"name", "basis", "regions", "kinds", "months", "return_days", "exchange_days"}
        name = self.names(where, body, keys)
        basis = body.get("basis")
        if basis not in ("statutory", "limited"):
            raise CatalogError(f"{where}.basis: {basis!r} is not 'statutory' or 'limited'")
        in_regions = self._list(where, "regions", body.get("regions"), {*regions, "*"})
        kinds = body.get("kinds")
        kind_set = None if kinds is None else self._list(where, "kinds", kinds, set(KINDS))
        months = body.get("months")
        if not isinstance(months, dict) or not months:
            raise CatalogError(f"{where}.months: give repair months per group, e.g. main_unit = 12")
        groups = {MAIN_UNIT, "*", *COMPONENTS}
        for group, value in months.items():
            if group not in groups:
                raise CatalogError(
                    f"{where}.months.{group}: not a group; use main_unit, '*' or a component"
                )
            self._count(where, f"months.{group}", value)
        return_days = self._count(where, "return_days", body.get("return_days", 0))
        exchange_days = self._count(where, "exchange_days", body.get("exchange_days", 0))
        if basis == "limited" and (return_days or exchange_days):
            raise CatalogError(f"{where}: return/exchange windows are statutory; set basis")
        return Term(
            tid,
            name,
            basis,
            in_regions,
            kind_set,
            MappingProxyType(dict(months)),
            return_days,
            exchange_days,
        )

    def plan(self, pid: str, body: Any, exclusions: Mapping[str, Exclusion]) -> Plan:
        where = self.where("plans", pid)
        name = self.names(where, body, {"name", "covers", "months", "below_health_pct", "waives"})
        covers = self._list(where, "covers", body.get("covers"), {MAIN_UNIT, *COMPONENTS})
        months = self._count(where, "months", body.get("months"))
        if months == 0:
            raise CatalogError(f"{where}.months: a plan must last at least one month")
        waives = self._list(where, "waives", body.get("waives", []), set(exclusions), empty=True)
        below = body.get("below_health_pct")
        if below is not None and (
            isinstance(below, bool) or not isinstance(below, int | Decimal) or not 0 < below <= 100
        ):
            raise CatalogError(f"{where}.below_health_pct: {below!r} is not a % in (0, 100]")
        health = None if below is None else float(below)
        return Plan(pid, name, covers, months, health, waives)

    def _list(
        self, where: str, field: str, value: Any, allowed: set[str], *, empty: bool = False
    ) -> frozenset[str]:
        if not isinstance(value, list) or (not value and not empty):
            raise CatalogError(f"{where}.{field}: must be a list, e.g. {field} = [...]")
        for item in value:
            if item not in allowed:
                raise CatalogError(
                    f"{where}.{field}: {item!r} is not known; use {', '.join(sorted(allowed))}"
                )
        return frozenset(value)

    def _count(self, where: str, field: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CatalogError(f"{where}.{field}: {value!r} must be a whole number ≥ 0")
        return value
