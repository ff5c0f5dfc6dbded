"""A diagnosis document (schema probelink.diagnosis/v1) as calm terminal text, in en or zh-CN.

    >>> document = json.loads(response.diagnosis_json)
    >>> Console().print(render_diagnosis(document, lang="zh-CN"))

Shared by `probelink-server diagnose` and `probelink-agent check --upload`, so it reads the
document (docs/diagnosis.md) and nothing else: no server, agent or probe imports.

What a person sees, top to bottom: the verdict as one line (a word *and* a colour, never
colour alone, so a log file or a colour-blind reader gets the same); the findings in the
document's order (most severe first) with their evidence as `name = value`; what could not
be judged and why; what to do (self-help steps or a service, its list price, its coverage and
what the customer pays) with the totals; the warranty facts; the trends; and a dim footer
with the report id, when the diagnosis was made and the rule set (first 12 characters).

Money is printed one way in both languages: the ISO currency code, a space, and the
document's amount string untouched -- `CNY 399.00`, `EUR 0.00`. The amount is never parsed
into a float, so what is printed is exactly what the server priced.

Every value taken from the document goes into a `rich.text.Text`, never into a markup
string: a finding that says "[bold]" is shown as "[bold]".

`check_document` is the gate both renderings share: it raises `ValueError` naming the
problem when what it is given is not a v1 document, and uses nothing from rich.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

SCHEMA: Final = "probelink.diagnosis/v1"
LANGS: Final = ("en", "zh-CN")

# Every top-level key docs/diagnosis.md promises ("fields are always present"), with the
# JSON type it must have; v1 may add keys, so extra ones are allowed.
REQUIRED_KEYS: Final[Mapping[str, type | tuple[type, ...]]] = {
    "schema": str,
    "report_id": str,
    "device_id": str,
    "device": Mapping,
    "report_time": str,
    "made_at": str,
    "ruleset_version": str,
    "verdict": Mapping,
    "findings": list,
    "not_judged": list,
    "actions": list,
    "totals": Mapping,
    "warranty": Mapping,
    "trends": list,
}

# The one table of words this renderer adds to the document's own texts. Keys are the
# document's codes (verdict, severity, reason, kind, remedy, family) or a label name.
WORDS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "verdict.urgent": "URGENT",
        "verdict.repair_recommended": "REPAIR RECOMMENDED",
        "verdict.attention": "ATTENTION",
        "verdict.could_not_judge": "COULD NOT JUDGE",
        "verdict.healthy": "HEALTHY",
        "severity.critical": "CRITICAL",
        "severity.major": "MAJOR",
        "severity.minor": "MINOR",
        "severity.advisory": "ADVISORY",
        "severity.info": "INFO",
        "reason.missing": "no results",
        "reason.unreadable": "unreadable",
        "reason.error": "rule failed",
        "kind.self_help": "Self-help",
        "kind.service": "Service",
        "remedy.return": "return",
        "remedy.exchange": "exchange",
        "remedy.repair": "repair",
        "remedy.none": "no remedy",
        "family.battery": "Battery",
        "family.storage": "Storage",
        "family.sensors": "Sensors",
        "family.ports": "Ports",
        "family.system": "System",
        "family.firmware": "Firmware",
        "heading.findings": "Findings",
        "heading.not_judged": "Could not judge",
        "heading.actions": "What to do",
        "heading.trends": "Trends",
        "no_findings": "No findings.",
        "list_price": "List price",
        "coverage": "Coverage",
        "customer_pays": "Customer pays",
        "covered": "covered",
        "not_covered": "not covered",
        "remedy": "remedy",
        "coverage_unknown": "not known (no warranty facts)",
        "no_price": "no price",
        "totals": "Totals",
        "warranty": "Warranty",
        "purchased": "purchased",
        "region": "region",
        "plans": "plans",
        "exclusions": "exclusions",
        "warranty_unknown": "not known",
        "source.request": "as given with this request",
        "around": "around",
        "between": "between",
        "and": "and",
        "left": "left",
        "unit.days": "days",
        "unit.cycles": "cycles",
        "metric.battery.health_pct": "Battery",
        "metric.storage.nvme_percentage_used_pct": "NVMe wear",
        "metric.storage.ata_reallocated_sectors": "Reallocated",
        "axis.days": "by date",
        "axis.cycles": "by cycle",
        "report": "Report",
        "made": "made",
        "rules": "rules",
        "model_unknown": "model not in the catalog: judged by default limits",
        ":": ": ",
        "(": " (",
        ")": ")",
    },
    "zh-CN": {
        "verdict.urgent": "紧急",
        "verdict.repair_recommended": "建议维修",
        "verdict.attention": "需留意",
        "verdict.could_not_judge": "无法判断",
        "verdict.healthy": "健康",
        "severity.critical": "危急",
        "severity.major": "严重",
        "severity.minor": "轻微",
        "severity.advisory": "提示",
        "severity.info": "信息",
        "reason.missing": "无结果",
        "reason.unreadable": "无法读取",
        "reason.error": "规则出错",
        "kind.self_help": "自助处理",
        "kind.service": "送修服务",
        "remedy.return": "退货",
        "remedy.exchange": "换货",
        "remedy.repair": "维修",
        "remedy.none": "无补救",
        "family.battery": "电池",
        "family.storage": "存储",
        "family.sensors": "传感器",
        "family.ports": "接口",
        "family.system": "系统",
        "family.firmware": "固件",
        "heading.findings": "发现的问题",
        "heading.not_judged": "无法判断的项目",
        "heading.actions": "处理建议",
        "heading.trends": "趋势",
        "no_findings": "没有发现问题。",
        "list_price": "标价",
        "coverage": "保修",
        "customer_pays": "客户支付",
        "covered": "在保",
        "not_covered": "不在保",
        "remedy": "方式",
        "coverage_unknown": "未知（缺少保修信息）",
        "no_price": "无价格",
        "totals": "合计",
        "warranty": "保修信息",
        "purchased": "购买日期",
        "region": "地区",
        "plans": "增值服务",
        "exclusions": "除外情形",
        "warranty_unknown": "未知",
        "source.request": "按本次请求提供",
        "around": "约",
        "between": "介于",
        "and": "至",
        "left": "剩余",
        "unit.days": "天",
        "unit.cycles": "次循环",
        "metric.battery.health_pct": "电池",
        "metric.storage.nvme_percentage_used_pct": "NVMe 磨损",
        "metric.storage.ata_reallocated_sectors": "重映射扇区",
        "axis.days": "按日期",
        "axis.cycles": "按循环",
        "report": "报告",
        "made": "生成于",
        "rules": "规则",
        "model_unknown": "型号不在目录中：按默认限值判断",
        ":": "：",
        "(": "（",
        ")": "）",
    },
}

# Colour follows the word; the word alone must already say it all.
VERDICT_STYLE: Final[Mapping[str, str]] = {
    "urgent": "bold red",
    "repair_recommended": "red",
    "attention": "yellow",
    "could_not_judge": "cyan",
    "healthy": "green",
}
SEVERITY_STYLE: Final[Mapping[str, str]] = {
    "critical": "bold red",
    "major": "red",
    "minor": "yellow",
    "advisory": "cyan",
    "info": "dim",
}


def check_document(document: Any) -> Mapping[str, Any]:
    """Return `document` if it is a probelink.diagnosis/v1 document, else raise ValueError.

    Checks the shape the renderers rely on at the top: an object, the right schema, every
    required key with the right JSON type. Deeper problems are named while rendering.
    """
    if not isinstance(document, Mapping):
        raise ValueError(
            f"not a diagnosis document: expected a JSON object, got {type(document).__name__}"
        )
    if "schema" not in document:
        raise ValueError(f"not a diagnosis document: no 'schema' key, expected {SCHEMA!r}")
    schema = document["schema"]
    if schema != SCHEMA:
        raise ValueError(f"not a diagnosis document: schema is {schema!r}, expected {SCHEMA!r}")
    missing = [key for key in REQUIRED_KEYS if key not in document]
    if missing:
        raise ValueError(f"diagnosis document is missing required keys: {', '.join(missing)}")
    for key, kind in REQUIRED_KEYS.items():
        if not isinstance(document[key], kind):
            raise ValueError(
                f"diagnosis document key {key!r} has the wrong type: {type(document[key]).__name__}"
            )
    return document


def check_lang(lang: str) -> str:
    """Return `lang` if this renderer speaks it, else raise ValueError naming the choices."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")
    return lang


def render_diagnosis(document: Mapping[str, Any], lang: str = "en") -> Group:
    """The whole diagnosis as one rich Group, ready for `console.print`.

    Raises ValueError when `lang` is not "en" or "zh-CN", or when the document is not a v1
    diagnosis (the message names the field at fault).
    """
    return Group(*_Renderer(check_document(document), check_lang(lang)).parts())


class _Renderer:
    """One rendering in one language; each method draws one section of the page."""

    def __init__(self, document: Mapping[str, Any], lang: str) -> None:
        self.doc = document
        self.lang = lang
        self.words = WORDS[lang]

    def parts(self) -> list[RenderableType]:
        parts: list[RenderableType] = [self.verdict()]
        sections = (self.findings, self.not_judged, self.actions, self.warranty, self.trends)
        for section in sections:
            drawn = section()
            if drawn:  # an empty section leaves no heading and no gap behind
                parts.append(Text())
                parts.extend(drawn)
        parts.append(Text())
        parts.append(self.footer())
        return parts

    # -- words and the document's values; every reader names the path it failed at ----

    def word(self, key: str, fallback: str | None = None) -> str:
        # A code this version does not know (v1 may grow) is shown as the code itself.
        return self.words.get(key, fallback if fallback is not None else key)

    def label(self, key: str) -> str:
        """`Warranty: ` / `保修信息：` -- the punctuation follows the language."""
        return f"{self.word(key)}{self.word(':')}"

    def paren(self, inside: str) -> str:
        return f"{self.word('(')}{inside}{self.word(')')}"

    def texts(self, value: Any, where: str) -> str:
        """The document's *Texts* object in this language."""
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a Texts object, got {type(value).__name__}")
        text = value.get(self.lang)
        if not isinstance(text, str):
            raise ValueError(f"{where}: no {self.lang!r} text")
        return text

    def money(self, money: Any, where: str) -> Text:
        if money is None:
            return Text(self.word("no_price"), style="dim")
        return Text(format_money(money, where))

    # -- sections ---------------------------------------------------------------------

    def verdict(self) -> Table:
        verdict = self.doc["verdict"]
        code = str(_field(verdict, "code", "verdict"))
        row = _grid()
        row.add_row(
            Text(self.word(f"verdict.{code}", code), style=VERDICT_STYLE.get(code, "bold")),
            Text(self.texts(_field(verdict, "text", "verdict"), "verdict.text")),
        )
        return row

    def findings(self) -> list[RenderableType]:
        heading = _heading(self.word("heading.findings"))
        rows = _grid()
        for i, finding in enumerate(self.doc["findings"]):
            where = f"findings[{i}]"
            severity = str(_field(finding, "severity", where))
            body = Text(self.texts(_field(finding, "text", where), f"{where}.text"))
            evidence = _field(finding, "evidence", where)
            if not isinstance(evidence, Mapping):
                raise ValueError(f"{where}.evidence: expected an object")
            for name, value in evidence.items():
                body.append(f"\n{name} = {_evidence_value(value)}", style="dim")
            rows.add_row(
                Text(
                    self.word(f"severity.{severity}", severity),
                    style=SEVERITY_STYLE.get(severity, ""),
                ),
                body,
            )
        if not rows.rows:
            return [heading, Text(self.word("no_findings"))]
        return [heading, rows]

    def not_judged(self) -> list[RenderableType]:
        rows = _grid()
        seen: set[tuple[str, str, str]] = set()
        for i, item in enumerate(self.doc["not_judged"]):
            where = f"not_judged[{i}]"
            family = str(_field(item, "family", where))
            reason = str(_field(item, "reason", where))
            text = self.texts(_field(item, "text", where), f"{where}.text")
            # Several rules of one family fail for one cause ("no battery results"):
            # a person needs to read that cause once.
            if (family, reason, text) in seen:
                continue
            seen.add((family, reason, text))
            body = Text.assemble(
                (self.word(f"reason.{reason}", reason) + self.word(":"), "cyan"), text
            )
            rows.add_row(Text(self.word(f"family.{family}", family)), body)
        if not rows.rows:
            return []
        return [_heading(self.word("heading.not_judged")), rows]

    def actions(self) -> list[RenderableType]:
        rows = _grid()
        for i, action in enumerate(self.doc["actions"]):
            kind = str(_field(action, "kind", f"actions[{i}]"))
            rows.add_row(
                Text(self.word(f"kind.{kind}", kind), style="bold"), self.action(i, action)
            )
        if not rows.rows:
            return []
        totals = self.doc["totals"]
        money = _grid()
        for key in ("list_price", "customer_pays"):
            money.add_row(
                Text(self.word(key)), self.money(_field(totals, key, "totals"), f"totals.{key}")
            )
        rows.add_row(Text(self.word("totals"), style="bold"), money)
        return [_heading(self.word("heading.actions")), rows]

    def action(self, i: int, action: Mapping[str, Any]) -> RenderableType:
        where = f"actions[{i}]"
        parts: list[RenderableType] = [
            Text(self.texts(_field(action, "title", where), f"{where}.title"), style="bold")
        ]
        steps = _field(action, "steps", where)
        if not isinstance(steps, Mapping) or not isinstance(steps.get(self.lang), list):
            raise ValueError(f"{where}.steps: no {self.lang!r} list of steps")
        numbered = _grid(padding=1)
        for n, step in enumerate(steps[self.lang], start=1):
            numbered.add_row(Text(f"{n}."), Text(str(step)))
        if numbered.rows:
            parts.append(numbered)
        facts = _grid()
        facts.add_row(
            Text(self.word("list_price")),
            self.money(_field(action, "list_price", where), f"{where}.list_price"),
        )
        facts.add_row(Text(self.word("coverage")), self.coverage(action, where))
        facts.add_row(
            Text(self.word("customer_pays")),
            self.money(_field(action, "customer_pays", where), f"{where}.customer_pays"),
        )
        parts.append(facts)
        problem = _field(action, "problem", where)
        if problem is not None:
            parts.append(Text(self.texts(problem, f"{where}.problem"), style="yellow"))
        return Group(*parts)

    def coverage(self, action: Mapping[str, Any], where: str) -> Text:
        coverage = _field(action, "coverage", where)
        if coverage is None:
            return Text(self.word("coverage_unknown"), style="dim")
        where = f"{where}.coverage"
        covered = _field(coverage, "covered", where)
        remedy = str(_field(coverage, "remedy", where))
        line = Text.assemble(
            (self.word("covered" if covered else "not_covered"), "green" if covered else ""),
            " · ",
            self.texts(_field(coverage, "term", where), f"{where}.term"),
        )
        if remedy != "none":  # "none" says nothing a person can act on
            line.append(f" · {self.label('remedy')}{self.word(f'remedy.{remedy}', remedy)}")
        return line

    def warranty(self) -> list[RenderableType]:
        warranty = self.doc["warranty"]
        source = _field(warranty, "source", "warranty")
        problem = _field(warranty, "problem", "warranty")
        line = Text()
        if source == "none":
            # No purchase facts: the problem text says why and what to record.
            line.append(
                self.word("warranty_unknown")
                if problem is None
                else self.texts(problem, "warranty.problem")
            )
        else:
            facts = []
            for key, name in (("purchase_date", "purchased"), ("region", "region")):
                value = _field(warranty, key, "warranty")
                if value is not None:
                    facts.append(f"{self.word(name)} {value}")
            for key in ("plans", "exclusions"):
                items = _field(warranty, key, "warranty")
                if items:
                    facts.append(f"{self.label(key)}{', '.join(map(_plan_name, items))}")
            line.append(" · ".join(facts) or self.word("warranty_unknown"))
            if source == "request":
                line.append(self.paren(self.word("source.request")), style="dim")
            if problem is not None:
                line.append(f"\n{self.texts(problem, 'warranty.problem')}", style="yellow")
        row = _grid()
        row.add_row(Text(self.word("warranty"), style="bold"), line)
        return [row]

    def trends(self) -> list[RenderableType]:
        grid = _grid()
        for i, trend in enumerate(self.doc["trends"]):
            where = f"trends[{i}]"
            line = Text(self.texts(_field(trend, "text", where), f"{where}.text"))
            x_unit = str(_field(trend, "x_unit", where))
            projection = _field(trend, "projection", where)
            if projection is not None:
                line.append(f"\n{self.projection(projection, x_unit, where)}", style="dim")
            # What the line is about: three trends of one report read alike otherwise.
            metric = str(_field(trend, "metric", where))
            subject = str(trend.get("subject") or "")
            label = Text(self.word(f"metric.{metric}", metric), style="bold")
            if subject:
                label.append(f" {subject}")
            # One line: a second one would sit beside the wrapped text's second line.
            label.append(f" {self.word(f'axis.{x_unit}', x_unit)}", style="dim")
            grid.add_row(label, line)
        if not grid.rows:
            return []
        return [_heading(self.word("heading.trends")), grid]

    def projection(self, projection: Any, x_unit: str, where: str) -> str:
        """`around 2027-04-20 (between 2027-03-15 and 2027-05-30) · 146 days left (114–184)`.

        Dates only on a days axis (the document leaves them null on a cycles axis).
        """
        where = f"{where}.projection"
        parts = []
        at = _field(projection, "at", where)
        if at is not None:
            part = f"{self.word('around')} {at}"
            low, high = _field(projection, "low_at", where), _field(projection, "high_at", where)
            if low is not None and high is not None:
                part += self.paren(f"{self.word('between')} {low} {self.word('and')} {high}")
            parts.append(part)
        remaining = _field(projection, "remaining", where)
        if remaining is not None:
            unit = self.word(f"unit.{x_unit}", x_unit)
            low = _field(projection, "remaining_low", where)
            high = _field(projection, "remaining_high", where)
            spread = self.paren(f"{_count(low)}–{_count(high)}") if None not in (low, high) else ""
            if self.lang == "zh-CN":  # 剩余 146 天, not 146 天 剩余
                parts.append(f"{self.word('left')} {_count(remaining)} {unit}{spread}")
            else:
                parts.append(f"{_count(remaining)} {unit} {self.word('left')}{spread}")
        return " · ".join(parts)

    def footer(self) -> Text:
        doc = self.doc
        device = doc["device"]
        name = " ".join(
            str(part) for part in (device.get("manufacturer"), device.get("model")) if part
        )
        line = Text(style="dim")
        line.append(f"{self.word('report')} {doc['report_id']} · {doc['device_id']}")
        if name:
            line.append(self.paren(name))
        line.append(
            f" · {self.word('made')} {_time(doc['made_at'])}"
            f" · {self.word('rules')} {doc['ruleset_version'][:12]}"
        )
        if device.get("model_known") is False:
            line.append(f"\n{self.word('model_unknown')}")
        return line


def format_money(money: Any, where: str = "money") -> str:
    """`CNY 399.00`: the currency code and the document's amount string, never a float."""
    if not isinstance(money, Mapping):
        raise ValueError(f"{where}: expected a Money object, got {type(money).__name__}")
    amount, currency = money.get("amount"), money.get("currency")
    if not isinstance(amount, str) or not isinstance(currency, str):
        raise ValueError(f"{where}: Money needs string 'amount' and 'currency'")
    return f"{currency} {amount}"


def _field(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{where}: missing {key!r}")
    return obj[key]


def _grid(padding: int = 2) -> Table:
    # The left column holds one word (severity, kind, label) and never wraps, so the
    # right column wraps under itself: a hanging indent on a narrow terminal. It also
    # keeps a money value, alone in its cell, on one line.
    grid = Table.grid(padding=(0, padding))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _heading(words: str) -> Text:
    return Text(words, style="bold underline")


def _evidence_value(value: Any) -> str:
    # JSON spellings, so an engineer reads the same value as in --format json.
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(_evidence_value(v) for v in value) + "]"
    return str(value)


def _plan_name(plan: Any) -> str:
    # Plans and exclusions are ids in v1; an object with an "id" is read as that id.
    if isinstance(plan, Mapping) and "id" in plan:
        return str(plan["id"])
    return str(plan)


def _count(value: Any) -> str:
    # Days and cycles left are estimates; whole units say as much as the fit knows.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.0f}"
    return str(value)


def _time(stamp: str) -> str:
    # RFC 3339 UTC in the document; one readable spelling for every reader.
    if len(stamp) == 20 and stamp.endswith("Z") and stamp[10] == "T":
        return f"{stamp[:10]} {stamp[11:19]} UTC"
    return stamp


__all__ = [
    "LANGS",
    "SCHEMA",
    "WORDS",
    "check_document",
    "check_lang",
    "format_money",
    "render_diagnosis",
]
