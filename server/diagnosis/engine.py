"""The diagnosis of one report: verdict, findings, actions with price and cover, trends.

Everything the diagnosis package knows comes together here, and leaves as one plain
document (schema ``probelink.diagnosis/v1``, docs/diagnosis.md) that the renderers, the API
and the store share::

    diagnoser = Diagnoser.load()                       # shipped rules and catalogs
    doc = diagnoser.diagnose(report, report_id="r1", device_id="d1",
                             history=earlier_reports, now=datetime.now(UTC),
                             purchase=PurchaseFacts(date(2025, 3, 1), "CN", ("battery_renewal",)))
    doc["verdict"]["code"]                             # "repair_recommended"

The document carries both languages, so it is made once and shown in either.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

from probelink.diagnosis_text import LANGS, SCHEMA
from probelink.server.diagnosis.data import CatalogError, shipped_text
from probelink.server.diagnosis.facts import FAMILIES, FAMILY_ZH, Facts, facts_of
from probelink.server.diagnosis.models import DeviceModel, ModelCatalog, parse_models
from probelink.server.diagnosis.prices import CURRENCIES, ActionCatalog, Money, parse_actions
from probelink.server.diagnosis.rules import Finding, RuleError, RuleSet
from probelink.server.diagnosis.trends import (
    Direction,
    NoProjection,
    Projection,
    Series,
    StorageField,
    battery_health_by_cycle,
    battery_health_by_month,
    describe,
    nvme_percentage_used_by_month,
    project,
    reallocated_sectors_by_month,
    storage_value,
    system_battery,
)
from probelink.server.diagnosis.warranty import (
    Coverage,
    WarrantyBook,
    WarrantyError,
    parse_warranty,
)
from probelink.v1 import report_pb2

# The shipped catalogs a diagnosis depends on (data/*.toml), in the version's digest.
CATALOG_FILES: Final = ("models.toml", "actions.toml", "warranty.toml")
SEVERITY_ORDER: Final = ("critical", "major", "minor", "advisory", "info")
_RANK: Final = {severity: rank for rank, severity in enumerate(SEVERITY_ORDER)}

Texts = dict[str, str]
Document = dict[str, Any]

_VERDICT_TEXT: Final[dict[str, Texts]] = {
    "healthy": {"en": "No problems found.", "zh-CN": "未发现问题。"},
    "attention": {
        "en": "Working, with something to keep an eye on.",
        "zh-CN": "可以正常使用，但有需要留意的地方。",
    },
    "repair_recommended": {"en": "A repair is recommended.", "zh-CN": "建议维修。"},
    "urgent": {
        "en": "Needs service now: a part is failing.",
        "zh-CN": "需要立即维修：有部件正在失效。",
    },
}


@dataclass(frozen=True)
class PurchaseFacts:
    """What warranty is judged by. `source` says where the facts came from (docs/diagnosis.md)."""

    purchase_date: date | None = None
    region: str | None = None
    plans: tuple[str, ...] = ()
    exclusions: tuple[str, ...] = ()
    source: Literal["device", "request", "none"] = "none"

    @property
    def known(self) -> bool:
        return self.purchase_date is not None and self.region is not None


NO_PURCHASE: Final = PurchaseFacts()


def region_today(book: WarrantyBook, region: str | None, now: datetime) -> date:
    """The date at `now` where the device was bought (its region's calendar), else UTC's:
    the statutory windows count that region's days."""
    known = book.regions.get(region) if region is not None else None
    return known.today(now) if known is not None else now.astimezone(UTC).date()


def check_purchase(facts: PurchaseFacts, book: WarrantyBook, today: date) -> None:
    """Raise `WarrantyError` (INVALID_ARGUMENT) for facts warranty cannot be judged by."""
    if facts.region is not None and facts.region not in book.regions:
        raise WarrantyError(
            f"unknown region {facts.region!r}; known regions: {', '.join(sorted(book.regions))}"
        )
    for plan in facts.plans:
        if plan not in book.plans:
            raise WarrantyError(
                f"unknown plan {plan!r}; known plans: {', '.join(sorted(book.plans))}"
            )
    for exclusion in facts.exclusions:
        if exclusion not in book.exclusions:
            raise WarrantyError(
                f"unknown exclusion {exclusion!r}; known exclusions: "
                f"{', '.join(sorted(book.exclusions))}"
            )
    if facts.purchase_date is not None and facts.purchase_date > today:
        raise WarrantyError(
            f"purchase date {facts.purchase_date.isoformat()} is in the future "
            f"(today is {today.isoformat()}); check the date on the receipt"
        )
    if (facts.purchase_date is None) != (facts.region is None):
        raise WarrantyError("give both the purchase date and the region, or neither")


@dataclass(frozen=True)
class _TrendSpec:
    metric: str
    unit: str
    threshold: str
    direction: Direction


_BATTERY_HEALTH: Final = _TrendSpec(
    "battery.health_pct", "%", "battery.min_health_pct", Direction.FALLING
)
_NVME_USED: Final = _TrendSpec(
    "storage.nvme_percentage_used_pct", "%", "storage.nvme_max_used_pct", Direction.RISING
)
_REALLOCATED: Final = _TrendSpec(
    "storage.ata_reallocated_sectors",
    "sectors",
    "storage.trend_max_reallocated",
    Direction.RISING,
)


def unknown_actions(rules: RuleSet, actions: ActionCatalog) -> list[str]:
    """One message per rule recommending an action the catalog does not have."""
    known = ", ".join(sorted(actions))
    return sorted(
        f"{rule.source}: rule {rule.id} recommends unknown action {rule.action!r} "
        f"(actions in the catalog: {known})"
        for rule in rules.rules.values()
        if rule.action not in actions
    )


class Diagnoser:
    """Rules, model catalog, action catalog and warranty, loaded and checked together."""

    def __init__(
        self,
        rules: RuleSet,
        models: ModelCatalog,
        actions: ActionCatalog,
        warranty: WarrantyBook,
        *,
        default_currency: str = "USD",
        catalogs_version: str = "",
    ) -> None:
        unknown = unknown_actions(rules, actions)
        if unknown:
            raise RuleError("; ".join(unknown))
        if default_currency not in CURRENCIES:
            raise CatalogError(
                f"unknown currency {default_currency!r}; use an ISO 4217 code such as USD"
            )
        self.rules = rules
        self.models = models
        self.actions = actions
        self.warranty = warranty
        self.default_currency = default_currency
        # What a stored diagnosis is compared with: the rules, and the catalogs and default
        # currency that priced and covered it. A new price or warranty term makes every
        # stored diagnosis stale, as a new rule does (`diagnose --recompute --all`).
        digest = hashlib.sha256(f"{rules.version}\0{catalogs_version}\0{default_currency}".encode())
        self.version = digest.hexdigest()[:16]
        # The families some rule judges or reads; battery facts also decide battery-renewal
        # cover, whatever the rules read.
        self._families = rules.families | (rules.reads & set(FAMILIES)) | {"battery"}

    @classmethod
    def load(cls, rules_dir: Path | None = None, *, default_currency: str = "USD") -> Diagnoser:
        """The shipped rules (plus `rules_dir`'s) and catalogs. Raises RuleError/CatalogError."""
        # Each catalog read once: parsed, and hashed into the version.
        texts = {name: shipped_text(name) for name in CATALOG_FILES}
        catalogs = hashlib.sha256()
        for name, (text, _) in texts.items():
            catalogs.update(name.encode() + b"\0" + text.encode())
        actions = parse_actions(*texts["actions.toml"])
        return cls(
            RuleSet.load(rules_dir),
            parse_models(*texts["models.toml"]),
            actions,
            parse_warranty(*texts["warranty.toml"], actions),
            default_currency=default_currency,
            catalogs_version=catalogs.hexdigest(),
        )

    def diagnose(
        self,
        report: report_pb2.Report,
        *,
        report_id: str,
        device_id: str,
        now: datetime,
        history: Sequence[report_pb2.Report] = (),
        purchase: PurchaseFacts = NO_PURCHASE,
    ) -> Document:
        """The diagnosis document of `report`; `history` is the device's earlier reports,
        oldest first (for trends). Purchase facts are assumed checked (`check_purchase`)."""
        model = self.models.lookup(report.device.manufacturer, report.device.model)
        facts = facts_of(report, self._families)
        judged = self.rules.evaluate(facts, model.thresholds)
        findings = sorted(
            (f for f in judged if not f.could_not_judge),
            key=lambda f: (_RANK[f.severity], f.rule_id),
        )
        not_judged = [_not_judged(f, facts) for f in judged if f.could_not_judge]
        not_judged += _unreadable_parts(facts)
        currency = (
            self.warranty.regions[purchase.region].currency
            if purchase.region is not None
            else self.default_currency
        )
        actions = self._actions(findings, model, purchase, currency, now, facts)
        return {
            "schema": SCHEMA,
            "report_id": report_id,
            "device_id": device_id,
            "device": {
                "manufacturer": report.device.manufacturer,
                "model": report.device.model,
                "kind": model.kind,
                "model_known": not model.generic,
            },
            "report_time": _rfc3339(_report_time(report)),
            "made_at": _rfc3339(now),
            "ruleset_version": self.version,
            "verdict": _verdict(findings, not_judged),
            "findings": [_finding(f) for f in findings],
            "not_judged": not_judged,
            "actions": actions,
            "totals": _totals(actions, currency),
            "warranty": _warranty(purchase, currency),
            "trends": _trends([*history, report], report, model, now),
        }

    def _actions(
        self,
        findings: list[Finding],
        model: DeviceModel,
        purchase: PurchaseFacts,
        currency: str,
        now: datetime,
        facts: Facts,
    ) -> list[dict[str, Any]]:
        by_action: dict[str, list[str]] = {}
        for finding in findings:
            by_action.setdefault(finding.action, []).append(finding.rule_id)
        battery = facts.get("battery", {})
        health = battery.get("health_pct") if isinstance(battery, dict) else None
        out = []
        for action_id, rule_ids in by_action.items():
            action = self.actions[action_id]
            problem: Texts | None = None
            try:
                list_price: Money | None = action.price(currency)
            except CatalogError:
                list_price = None
                problem = {
                    "en": f"No published price in {currency} for this service.",
                    "zh-CN": f"此项服务没有以 {currency} 公布的价格。",
                }
            coverage = None
            if purchase.known and list_price is not None:
                assert purchase.purchase_date is not None and purchase.region is not None
                try:
                    cover = self.warranty.coverage(
                        action_id,
                        model=model,
                        purchase_date=purchase.purchase_date,
                        today=region_today(self.warranty, purchase.region, now),
                        region=purchase.region,
                        plans=purchase.plans,
                        exclusions=purchase.exclusions,
                        battery_health_pct=float(health) if health is not None else None,
                    )
                except WarrantyError as err:
                    problem = {"en": str(err), "zh-CN": f"无法判断保修：{err}"}
                else:
                    if model.kind is None and cover.term_id == "not_covered":
                        # The maker's terms are by device kind: for a model the catalog
                        # does not know, "not covered" would be a guess. Say so instead.
                        problem = {
                            "en": f"{model.manufacturer} {model.model} is not in the model "
                            "catalog: whether the maker's warranty covers it is not known; "
                            "the list price is shown.",
                            "zh-CN": f"型号目录中没有 {model.manufacturer} {model.model}："
                            "无法确定厂商保修是否适用；显示的是公开价格。",
                        }
                    else:
                        coverage = {
                            "covered": cover.covered,
                            "remedy": cover.remedy,
                            "term_id": cover.term_id,
                            "term": self._term_texts(cover),
                            "customer_pays": _money(cover.customer_pays),
                        }
            pays = coverage["customer_pays"] if coverage else _money_or_none(list_price)
            out.append(
                {
                    "id": action.id,
                    "kind": action.kind,
                    "title": dict(action.title),
                    "steps": {lang: list(action.steps.get(lang, ())) for lang in LANGS},
                    "for_findings": rule_ids,
                    "list_price": _money_or_none(list_price),
                    "coverage": coverage,
                    "customer_pays": pays,
                    "problem": problem,
                }
            )
        return out

    def _term_texts(self, cover: Coverage) -> Texts:
        book = self.warranty
        named = book.terms.get(cover.term_id) or book.plans.get(cover.term_id)
        if named is not None:
            name = named.name["zh-CN"]
            until = cover.until.isoformat() if cover.until else ""
            zh = {
                "return": f"{name}：{until} 前可退货",
                "exchange": f"{name}：{until} 前可换货",
                "repair": f"{name}：保修至 {until}",
            }.get(cover.remedy, name)
            return {"en": cover.term, "zh-CN": zh}
        zh_fixed = {
            "self_help": "自助操作：免费",
            "not_a_repair": "非维修项目：不在保修范围内",
            "excluded": "不在保修范围内（除外条款）",
            "not_covered": "不在保修范围内",
        }
        return {"en": cover.term, "zh-CN": zh_fixed.get(cover.term_id, cover.term)}


def _report_time(report: report_pb2.Report) -> datetime:
    stamp = report.finished_at if report.HasField("finished_at") else report.started_at
    return stamp.ToDatetime(tzinfo=UTC)


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(money: Money) -> dict[str, str]:
    return {"amount": f"{money.amount:.{CURRENCIES[money.currency]}f}", "currency": money.currency}


def _money_or_none(money: Money | None) -> dict[str, str] | None:
    return None if money is None else _money(money)


def _plain(value: Any) -> Any:
    """Evidence as JSON values: CEL hands back its own int/float/list/map types."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "rule_id": finding.rule_id,
        "family": finding.family,
        "severity": finding.severity,
        "text": dict(finding.text),
        "evidence": {name: _plain(value) for name, value in finding.evidence.items()},
        "action": finding.action,
    }


def _not_judged(finding: Finding, facts: Facts) -> dict[str, Any]:
    family = finding.family
    if family in facts.get("unreadable_families", {}):
        reason = "unreadable"
    elif family not in facts:
        reason = "missing"
    else:
        reason = "error"
    return {
        "rule_id": finding.rule_id,
        "family": family,
        "device": None,
        "reason": reason,
        "text": dict(finding.text),
    }


def _unreadable_parts(facts: Facts) -> list[dict[str, Any]]:
    """A drive or battery that could not be read, beside others that could: its family's
    rules judged the others only."""
    out = []
    for family, parts in sorted(facts.get("unreadable_parts", {}).items()):
        zh = FAMILY_ZH.get(family, family)
        for name, why in parts:
            out.append(
                {
                    "rule_id": "",
                    "family": family,
                    "device": name,
                    "reason": "unreadable",
                    "text": {
                        "en": f"Could not judge {name}: it could not be read ({why}).",
                        "zh-CN": f"无法判断{zh}设备 {name}：无法读取（{why}）。",
                    },
                }
            )
    return out


def _verdict(findings: list[Finding], not_judged: list[dict[str, Any]]) -> dict[str, Any]:
    severities = {f.severity for f in findings}
    if "critical" in severities:
        code = "urgent"
    elif "major" in severities:
        code = "repair_recommended"
    elif severities & {"minor", "advisory"}:
        code = "attention"
    elif not_judged:
        families = sorted({str(n["family"]) for n in not_judged})
        zh = "、".join(FAMILY_ZH.get(f, f) for f in families)
        return {
            "code": "could_not_judge",
            "text": {
                "en": f"Could not judge: {', '.join(families)} could not be checked.",
                "zh-CN": f"无法判断：{zh}未能检查。",
            },
        }
    else:
        code = "healthy"
    return {"code": code, "text": dict(_VERDICT_TEXT[code])}


def _totals(actions: list[dict[str, Any]], currency: str) -> dict[str, Any]:
    def total(key: str) -> dict[str, str] | None:
        amount = Decimal(0)
        for action in actions:
            money = action[key]
            if money is None:
                return None  # a price is missing: no total is better than a wrong one
            amount += Decimal(money["amount"])
        return _money(Money(amount, currency))

    return {"list_price": total("list_price"), "customer_pays": total("customer_pays")}


def _warranty(purchase: PurchaseFacts, currency: str) -> dict[str, Any]:
    problem: Texts | None = None
    if not purchase.known:
        problem = {
            "en": "No purchase date and region on record: prices are list prices; "
            "record them with `probelink-server device warranty` to judge cover.",
            "zh-CN": "没有购买日期和地区记录：显示的是公开价格；"
            "用 `probelink-server device warranty` 记录后即可判断保修。",
        }
    return {
        "purchase_date": purchase.purchase_date.isoformat() if purchase.purchase_date else None,
        "region": purchase.region,
        "plans": list(purchase.plans),
        "exclusions": list(purchase.exclusions),
        "currency": currency,
        "source": purchase.source if purchase.known else "none",
        "problem": problem,
    }


# --- trends ----------------------------------------------------------------------


def _drive_with(report: report_pb2.Report, field: StorageField) -> str | None:
    found = storage_value(report, field)
    return found[0] if found is not None else None


def _trends(
    reports: Sequence[report_pb2.Report],
    latest: report_pb2.Report,
    model: DeviceModel,
    now: datetime,
) -> list[dict[str, Any]]:
    """Trends of the metrics the latest report has; each follows one battery or drive."""
    out: list[dict[str, Any]] = []
    found = system_battery(latest)
    battery = found.name if found is not None else None
    if battery is not None:
        out.append(
            _trend(_BATTERY_HEALTH, battery, battery_health_by_month(reports, battery), model, now)
        )
        by_cycle = battery_health_by_cycle(reports, battery)
        if by_cycle.points:
            out.append(_trend(_BATTERY_HEALTH, battery, by_cycle, model, now))
    nvme = _drive_with(latest, "nvme_percentage_used_pct")
    if nvme is not None:
        series = nvme_percentage_used_by_month(reports, nvme)
        out.append(_trend(_NVME_USED, nvme, series, model, now))
    ata = _drive_with(latest, "ata_reallocated_sectors")
    if ata is not None:
        series = reallocated_sectors_by_month(reports, ata)
        out.append(_trend(_REALLOCATED, ata, series, model, now))
    return out


def _trend(
    spec: _TrendSpec, subject: str, series: Series, model: DeviceModel, now: datetime
) -> dict[str, Any]:
    threshold = model.thresholds[spec.threshold]
    result = project(series, threshold, spec.direction, now)
    start = series.start
    points = [
        {
            "at": _rfc3339(start + timedelta(days=p.days)) if start else None,
            "x": p.x,
            "y": p.y,
        }
        for p in series.points
    ]
    return {
        "metric": spec.metric,
        "subject": subject,
        "unit": spec.unit,
        "x_unit": series.x_unit.value,
        "direction": spec.direction.value,
        "threshold": threshold,
        "points": points,
        "projection": _projection(result) if isinstance(result, Projection) else None,
        "reason": result.reason.value if isinstance(result, NoProjection) else None,
        "text": {lang: describe(result, lang) for lang in LANGS},
    }


def _projection(p: Projection) -> dict[str, Any]:
    def day(at: datetime | None) -> str | None:
        return at.date().isoformat() if at is not None else None

    return {
        "at": day(p.at),
        "low_at": day(p.low_at),
        "high_at": day(p.high_at),
        "at_x": p.at_x,
        "low_x": p.low_x,
        "high_x": p.high_x,
        "remaining": p.remaining,
        "remaining_low": p.remaining_low,
        "remaining_high": p.remaining_high,
        "confidence": p.confidence,
        "fit": {"slope": p.fit.slope, "intercept": p.fit.intercept, "r_squared": p.fit.r_squared},
    }
