"""A diagnosis document as one printable HTML page (A4), in English or Simplified Chinese.

    document = json.loads(diagnosis_json)            # schema probelink.diagnosis/v1
    page = render_diagnosis_html(document, "zh-CN")  # '<!DOCTYPE html><html lang="zh-CN">...'
    Path("d.html").write_text(page, encoding="utf-8")

The page is made from the document and nothing else (docs/diagnosis.md): a header (device,
ids, times, rule set), the verdict, the findings with their evidence, what could not be
judged, what to do with price and who pays, the totals, the warranty facts, and one inline
SVG chart per trend. It is self-contained: the CSS is inline, there is no script, no font,
no image and no link to anything, and a Content-Security-Policy says so to the browser, so
the file can be mailed, archived or printed years later and looks the same.

Every text on the page came from a device or a rule file, so every one is escaped. Colour
always comes with a word (a verdict, a severity), so the page reads the same in black and
white or for a colour-blind reader.
"""

from __future__ import annotations

import contextlib
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from probelink.diagnosis_text import LANGS, SCHEMA, check_document, check_lang

__all__ = ["LANGS", "SCHEMA", "render_diagnosis_html"]

# Every fixed word on the page, (English, 简体中文). Texts that come with the document are
# already in both languages; these are only the page's own headings and names of codes.
_LABELS: dict[str, tuple[str, str]] = {
    "title": ("Diagnosis", "诊断报告"),
    "device": ("Device", "设备"),
    "device_id": ("Device id", "设备 ID"),
    "report_id": ("Report", "报告"),
    "report_time": ("Report time", "报告时间"),
    "made_at": ("Diagnosed at", "诊断时间"),
    "ruleset": ("Rule set", "规则集"),
    "model_unknown": ("model not in the catalog", "机型不在目录中"),
    "verdict": ("Verdict", "结论"),
    "findings": ("Findings", "发现的问题"),
    "no_findings": ("No findings.", "没有发现问题。"),
    "severity": ("Severity", "严重程度"),
    "finding": ("Finding", "问题"),
    "evidence": ("Evidence", "依据"),
    "rule": ("Rule", "规则"),
    "family": ("Family", "类别"),
    "reason": ("Reason", "原因"),
    "why": ("Why", "说明"),
    "not_judged": ("Could not judge", "无法判断的项目"),
    "all_judged": ("Every rule that applies could judge.", "所有适用的规则均已判断。"),
    "actions": ("What to do", "处理建议"),
    "no_actions": ("Nothing to do.", "无需处理。"),
    "action": ("Action", "处理"),
    "steps": ("Steps", "步骤"),
    "list_price": ("List price", "标价"),
    "coverage": ("Coverage", "保修"),
    "customer_pays": ("Customer pays", "客户支付"),
    "for_findings": ("For", "针对"),
    "totals": ("Totals", "合计"),
    "not_known": ("not known", "未知"),
    "warranty": ("Warranty", "保修信息"),
    "purchase_date": ("Purchase date", "购买日期"),
    "region": ("Region", "地区"),
    "plans": ("Plans", "服务计划"),
    "exclusions": ("Exclusions", "除外情形"),
    "currency": ("Currency", "币种"),
    "source": ("Facts from", "信息来源"),
    "none": ("none", "无"),
    "trends": ("Wear trends", "损耗趋势"),
    "limit": ("limit", "上限"),
    "readings": ("readings", "次读数"),
    "fit": ("fitted line", "拟合直线"),
    "crossing": ("projected crossing", "预计越限"),
    "interval": ("interval", "区间"),
    "no_projection": ("No projection", "无预测"),
    "date": ("Date", "日期"),
    "cycles": ("Charge cycles", "充放电次数"),
    "to": ("to", "至"),
    "yes": ("yes", "是"),
    # punctuation differs too: full-width in Chinese
    ",": (", ", "，"),
    ":": (": ", "："),
    ".": (".", "。"),
    "no": ("no", "否"),
    "footer": ("Made by Probelink from a diagnosis document", "由 Probelink 根据诊断文档生成"),
    # verdict codes
    "v.urgent": ("Urgent", "紧急"),
    "v.repair_recommended": ("Repair recommended", "建议维修"),
    "v.attention": ("Needs attention", "需要关注"),
    "v.could_not_judge": ("Could not judge", "无法判断"),
    "v.healthy": ("Healthy", "良好"),
    # severities
    "s.critical": ("Critical", "严重"),
    "s.major": ("Major", "重要"),
    "s.minor": ("Minor", "轻微"),
    "s.advisory": ("Advisory", "提示"),
    "s.info": ("Info", "信息"),
    # not-judged reasons
    "r.missing": ("missing", "缺少结果"),
    "r.unreadable": ("unreadable", "无法读取"),
    "r.error": ("rule error", "规则出错"),
    # action kinds
    "k.self_help": ("Self-help", "自助处理"),
    "k.service": ("Service", "售后服务"),
    # remedies
    "m.return": ("return", "退货"),
    "m.exchange": ("exchange", "换货"),
    "m.repair": ("repair", "维修"),
    "m.none": ("no remedy", "无"),
    "covered": ("covered", "在保"),
    "not_covered": ("not covered", "不在保"),
    # warranty sources
    "w.device": ("the device's record", "设备登记信息"),
    "w.request": ("this request", "本次请求"),
    "w.none": ("nowhere: warranty not judged", "无：未判断保修"),
    # trend reasons
    "t.too_little_history": ("too little history", "历史数据太少"),
    "t.not_heading": ("not heading towards the limit", "未朝上限变化"),
    "t.already_past": ("already at or past the limit", "已达到或越过上限"),
    "t.poor_fit": ("readings too scattered", "读数过于分散"),
    "t.too_uncertain": ("trend too uncertain", "趋势不确定"),
    # trend metrics
    "metric.battery.health_pct": ("Battery health", "电池健康度"),
    "metric.storage.nvme_percentage_used_pct": ("NVMe wear", "NVMe 磨损"),
    "metric.storage.ata_reallocated_sectors": ("Reallocated sectors", "重新分配扇区数"),
}

# Verdict colour (text, background): red for urgent down to green for healthy.
_VERDICT_COLOURS: dict[str, tuple[str, str]] = {
    "urgent": ("#ffffff", "#b3261e"),
    "repair_recommended": ("#ffffff", "#b45309"),
    "attention": ("#3d2e00", "#fcd34d"),
    "could_not_judge": ("#ffffff", "#57606a"),
    "healthy": ("#ffffff", "#1a7f37"),
}
_SEVERITY_COLOURS: dict[str, tuple[str, str]] = {
    "critical": ("#ffffff", "#b3261e"),
    "major": ("#ffffff", "#b45309"),
    "minor": ("#3d2e00", "#fcd34d"),
    "advisory": ("#0b3a66", "#cfe3fb"),
    "info": ("#24292f", "#e5e7eb"),
}
_UNKNOWN_COLOURS = ("#24292f", "#e5e7eb")

_CSS = """
@page { size: A4; margin: 15mm; }
* { box-sizing: border-box; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
html { font: 10pt/1.45 "Noto Sans", "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC",
       "Microsoft YaHei", "DejaVu Sans", Arial, sans-serif; color: #1f2328; background: #fff; }
body { margin: 0 auto; padding: 6mm; max-width: 190mm; }
@media print { body { padding: 0; max-width: none; } }
h1 { font-size: 16pt; margin: 0 0 2mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; border-bottom: 0.3mm solid #d0d7de; break-after: avoid;
     page-break-after: avoid; }
p { margin: 1mm 0; }
dl.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 0.5mm 4mm;
           margin: 0; }
dl.facts dt { color: #57606a; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.verdict { margin: 4mm 0; padding: 3mm 4mm; border-radius: 1.5mm; break-inside: avoid;
           page-break-inside: avoid; }
.verdict .word { display: block; font-size: 14pt; font-weight: bold; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; }
th, td { text-align: left; vertical-align: top; padding: 1.2mm 1.5mm;
         border-bottom: 0.2mm solid #d0d7de; overflow-wrap: anywhere; word-break: break-word; }
th { background: #f6f8fa; font-weight: 600; }
tr { break-inside: avoid; page-break-inside: avoid; }
.badge { display: inline-block; padding: 0.2mm 1.5mm; border-radius: 1mm; font-weight: 600;
         white-space: nowrap; }
.rule { color: #57606a; font-size: 8.5pt; font-family: "DejaVu Sans Mono", monospace; }
ul.ev, ol.steps { margin: 0; padding-left: 4.5mm; }
ol.steps { margin-top: 1mm; }
.ev .key { color: #57606a; }
.num { text-align: right; }
td.num { white-space: nowrap; }
.problem { color: #b3261e; }
figure.trend { margin: 3mm 0; break-inside: avoid; page-break-inside: avoid; }
figure.trend svg { display: block; width: 100%; max-width: 178mm; height: auto; }
figcaption { font-size: 9pt; }
footer { margin-top: 6mm; color: #57606a; font-size: 8pt; }
"""

# The browser is told the page needs nothing from anywhere: a stray reference would be
# blocked and reported, never fetched.
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def render_diagnosis_html(document: Mapping[str, Any], lang: str = "en") -> str:
    """The document as one complete, self-contained HTML5 page in `lang` ("en" or "zh-CN")."""
    # The same checks, and words, as the terminal rendering.
    check_lang(lang)
    check_document(document)
    page = _Page(lang)
    device = document.get("device") or {}
    title = f"{page.label('title')} — {_device_name(device)} — {document.get('report_id', '')}"
    body = "\n".join(
        [
            page.header(document),
            page.verdict(document.get("verdict") or {}),
            page.findings(document.get("findings") or []),
            page.not_judged(document.get("not_judged") or []),
            page.actions(document.get("actions") or [], document.get("totals") or {}),
            page.warranty(document.get("warranty") or {}),
            page.trends(document.get("trends") or []),
            f"<footer>{_e(page.label('footer'))} ({_e(SCHEMA)}).</footer>",
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{_e(lang)}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _e(value: object) -> str:
    """Escaped for text and for double- or single-quoted attributes."""
    return html.escape(str(value), quote=True)


def _device_name(device: Mapping[str, Any]) -> str:
    return " ".join(str(device.get(k) or "") for k in ("manufacturer", "model")).strip() or "?"


def _num(value: Any) -> str:
    """80.0 → "80", 0.02519 → "0.0252": numbers as people write them."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}".rstrip("0").rstrip(".")


def _time(value: Any) -> str:
    """RFC 3339 UTC → "2026-11-25 15:20 UTC"; anything unparsable is shown as given."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return parsed.strftime("%Y-%m-%d %H:%M UTC")


def _money(money: Any, fallback: str) -> str:
    if not isinstance(money, Mapping):
        return fallback
    return f"{money.get('amount', '?')} {money.get('currency', '')}".strip()


def _badge(word: str, colours: tuple[str, str]) -> str:
    fg, bg = colours
    return f'<span class="badge" style="color:{fg};background:{bg}">{_e(word)}</span>'


class _Page:
    """The page's sections in one language; each method returns an HTML fragment."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._i = 1 if lang == "zh-CN" else 0

    def label(self, key: str, fallback: str | None = None) -> str:
        pair = _LABELS.get(key)
        if pair is None:
            return fallback if fallback is not None else key
        return pair[self._i]

    def text(self, texts: Any) -> str:
        """A document's Texts in this language (English when a translation is missing)."""
        if isinstance(texts, Mapping):
            return str(texts.get(self.lang) or texts.get("en") or "")
        return "" if texts is None else str(texts)

    def code(self, prefix: str, code: Any) -> str:
        """A code's word, or the code itself when this page does not know it."""
        return self.label(f"{prefix}.{code}", str(code))

    # --- sections ---------------------------------------------------------------------

    def header(self, doc: Mapping[str, Any]) -> str:
        device = doc.get("device") or {}
        name = _device_name(device)
        if device.get("kind"):
            name += f" ({device['kind']})"
        if device.get("model_known") is False:
            name += f" — {self.label('model_unknown')}"
        ruleset = str(doc.get("ruleset_version") or "")
        facts = [
            ("device", name),
            ("device_id", doc.get("device_id", "")),
            ("report_id", doc.get("report_id", "")),
            ("report_time", _time(doc.get("report_time"))),
            ("made_at", _time(doc.get("made_at"))),
            ("ruleset", ruleset[:12]),
        ]
        return f"<header>\n<h1>{_e(self.label('title'))}</h1>\n{self.facts(facts)}\n</header>"

    def verdict(self, verdict: Mapping[str, Any]) -> str:
        code = str(verdict.get("code", ""))
        fg, bg = _VERDICT_COLOURS.get(code, _UNKNOWN_COLOURS)
        return (
            f'<section class="verdict verdict-{_e(code)}" style="color:{fg};background:{bg}">'
            f'<span class="word">{_e(self.code("v", code))}</span>'
            f"<p>{_e(self.text(verdict.get('text')))}</p></section>"
        )

    def findings(self, findings: Sequence[Mapping[str, Any]]) -> str:
        head = f"<section>\n<h2>{_e(self.label('findings'))}</h2>\n"
        if not findings:
            return f"{head}<p>{_e(self.label('no_findings'))}</p>\n</section>"
        rows = []
        for f in findings:  # in the document's order: most severe first
            severity = str(f.get("severity", ""))
            badge = _badge(
                self.code("s", severity), _SEVERITY_COLOURS.get(severity, _UNKNOWN_COLOURS)
            )
            rows.append(
                f'<tr class="finding severity-{_e(severity)}"><td>{badge}</td>'
                f"<td>{_e(self.text(f.get('text')))}"
                f'<div class="rule">{_e(f.get("rule_id", ""))}</div></td>'
                f"<td>{self._evidence(f.get('evidence') or {})}</td></tr>"
            )
        return (
            f'{head}<table class="findings">{_cols(16, 52, 32)}<thead><tr>'
            f"<th>{_e(self.label('severity'))}</th><th>{_e(self.label('finding'))}</th>"
            f"<th>{_e(self.label('evidence'))}</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows)
            + "\n</tbody></table>\n</section>"
        )

    def not_judged(self, entries: Sequence[Mapping[str, Any]]) -> str:
        head = f"<section>\n<h2>{_e(self.label('not_judged'))}</h2>\n"
        if not entries:
            return f"{head}<p>{_e(self.label('all_judged'))}</p>\n</section>"
        rows = [
            f'<tr class="not-judged"><td class="rule">{_e(n.get("rule_id", ""))}</td>'
            f"<td>{_e(n.get('family', ''))}</td><td>{_e(self.code('r', n.get('reason')))}</td>"
            f"<td>{_e(self.text(n.get('text')))}</td></tr>"
            for n in entries
        ]
        return (
            f'{head}<table class="not-judged">{_cols(26, 14, 16, 44)}<thead><tr>'
            f"<th>{_e(self.label('rule'))}</th><th>{_e(self.label('family'))}</th>"
            f"<th>{_e(self.label('reason'))}</th><th>{_e(self.label('why'))}</th></tr></thead>\n"
            "<tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n</section>"
        )

    def actions(self, actions: Sequence[Mapping[str, Any]], totals: Mapping[str, Any]) -> str:
        head = f"<section>\n<h2>{_e(self.label('actions'))}</h2>\n"
        unknown = self.label("not_known")
        if actions:
            rows = [self._action(a, unknown) for a in actions]
            table = (
                f'<table class="actions">{_cols(44, 14, 28, 14)}<thead><tr>'
                f"<th>{_e(self.label('action'))}</th>"
                f'<th class="num">{_e(self.label("list_price"))}</th>'
                f"<th>{_e(self.label('coverage'))}</th>"
                f'<th class="num">{_e(self.label("customer_pays"))}</th></tr></thead>\n<tbody>\n'
                + "\n".join(rows)
                + "\n</tbody></table>\n"
            )
        else:
            table = f"<p>{_e(self.label('no_actions'))}</p>\n"
        total_facts = [
            ("list_price", _money(totals.get("list_price"), unknown)),
            ("customer_pays", _money(totals.get("customer_pays"), unknown)),
        ]
        return (
            f"{head}{table}<h2>{_e(self.label('totals'))}</h2>\n"
            f'<div class="totals">{self.facts(total_facts)}</div>\n</section>'
        )

    def _action(self, action: Mapping[str, Any], unknown: str) -> str:
        kind = str(action.get("kind", ""))
        steps = (action.get("steps") or {}).get(self.lang) or (action.get("steps") or {}).get("en")
        steps_html = (
            '<ol class="steps">' + "".join(f"<li>{_e(s)}</li>" for s in steps) + "</ol>"
            if steps
            else ""
        )
        coverage = action.get("coverage")
        if isinstance(coverage, Mapping):
            covered = self.label("covered" if coverage.get("covered") else "not_covered")
            remedy = self.code("m", coverage.get("remedy"))
            cover_html = (
                f"<strong>{_e(covered)}</strong>{_e(self.label(','))}{_e(remedy)}"
                f"<div>{_e(self.text(coverage.get('term')))}</div>"
                f'<div class="rule">{_e(coverage.get("term_id", ""))}</div>'
            )
        else:
            cover_html = _e(unknown)
        problem = self.text(action.get("problem"))
        problem_html = f'<div class="problem">{_e(problem)}</div>' if problem else ""
        for_findings = ", ".join(str(f) for f in action.get("for_findings") or [])
        return (
            f'<tr class="action kind-{_e(kind)}"><td><strong>{_e(self.text(action.get("title")))}'
            f"</strong><div>{_e(self.code('k', kind))}</div>"
            f'<div class="rule">{_e(self.label("for_findings"))}{_e(self.label(":"))}'
            f"{_e(for_findings)}</div>"
            f"{steps_html}{problem_html}</td>"
            f'<td class="num">{_e(_money(action.get("list_price"), unknown))}</td>'
            f"<td>{cover_html}</td>"
            f'<td class="num">{_e(_money(action.get("customer_pays"), unknown))}</td></tr>'
        )

    def warranty(self, warranty: Mapping[str, Any]) -> str:
        none = self.label("none")
        facts = [
            ("purchase_date", warranty.get("purchase_date") or self.label("not_known")),
            ("region", warranty.get("region") or self.label("not_known")),
            ("plans", ", ".join(str(p) for p in warranty.get("plans") or []) or none),
            ("exclusions", ", ".join(str(x) for x in warranty.get("exclusions") or []) or none),
            ("currency", warranty.get("currency") or ""),
            ("source", self.code("w", warranty.get("source"))),
        ]
        problem = self.text(warranty.get("problem"))
        problem_html = f'\n<p class="problem">{_e(problem)}</p>' if problem else ""
        return (
            f"<section>\n<h2>{_e(self.label('warranty'))}</h2>\n{self.facts(facts)}"
            f"{problem_html}\n</section>"
        )

    def trends(self, trends: Sequence[Mapping[str, Any]]) -> str:
        if not trends:
            return ""
        figures = [_TrendChart(self, t, i).figure() for i, t in enumerate(trends)]
        return (
            f"<section>\n<h2>{_e(self.label('trends'))}</h2>\n"
            + "\n".join(figures)
            + "\n</section>"
        )

    # --- small parts ------------------------------------------------------------------

    def facts(self, facts: Iterable[tuple[str, Any]]) -> str:
        items = "".join(f"<dt>{_e(self.label(k))}</dt><dd>{_e(v)}</dd>" for k, v in facts)
        return f'<dl class="facts">{items}</dl>'

    def _evidence(self, evidence: Mapping[str, Any]) -> str:
        items = []
        for key, value in evidence.items():
            if isinstance(value, list):
                shown = "; ".join(self._value(v) for v in value)
            else:
                shown = self._value(value)
            items.append(f'<li><span class="key">{_e(key)}:</span> {_e(shown)}</li>')
        return f'<ul class="ev">{"".join(items)}</ul>' if items else ""

    def _value(self, value: Any) -> str:
        if isinstance(value, bool):
            return self.label("yes" if value else "no")
        return _num(value)


def _cols(*percent: int) -> str:
    """Fixed column widths, so that long evidence wraps instead of widening the page."""
    return "<colgroup>" + "".join(f'<col style="width:{p}%">' for p in percent) + "</colgroup>"


# --- the trend chart ------------------------------------------------------------------

# The SVG's own coordinate system; CSS scales it to the page's width (mm), text with it.
_W, _H = 640.0, 250.0
_LEFT, _RIGHT, _TOP, _BOTTOM = 58.0, 22.0, 14.0, 44.0


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 × 10ⁿ apart) covering [lo, hi]."""
    span = hi - lo
    if span <= 0 or not math.isfinite(span):
        return [lo]
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    # Counted, not accumulated: a step below the values' precision must not loop forever.
    ticks = [round(first + i * step, 10) for i in range(2 * count + 2)]
    return [t for t in ticks if t <= hi + step * 1e-9] or [lo]


def _month_ticks(origin: date, lo: float, hi: float, most: int = 7) -> list[tuple[float, str]]:
    """Ticks on the first of every 1, 2, 3, 6 or 12·k months between day `lo` and `hi`."""
    first, last = origin + timedelta(days=lo), origin + timedelta(days=hi)
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    step = next(
        (m for m in (1, 2, 3, 6, 12) if months / m <= most), 12 * math.ceil(months / 12 / most)
    )
    ticks: list[tuple[float, str]] = []
    index = first.year * 12 + first.month - 1  # months since year 0, January = 0
    index += -index % step  # on a multiple of the step: Jan/Apr/Jul/Oct for 3
    while True:
        tick = date(index // 12, index % 12 + 1, 1)
        if tick > last:
            return ticks
        if tick >= first:
            ticks.append(((tick - origin).days * 1.0, tick.strftime("%Y-%m")))
        index += step


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class _TrendChart:
    """One trend as an inline SVG figure with its caption."""

    def __init__(self, page: _Page, trend: Mapping[str, Any], index: int) -> None:
        self.page = page
        self.trend = trend
        self.id = f"trend{index}"
        self.points = [
            (x, y)
            for p in trend.get("points") or []
            if (x := _finite(p.get("x"))) is not None and (y := _finite(p.get("y"))) is not None
        ]
        projection = trend.get("projection")
        self.projection: Mapping[str, Any] | None = (
            projection if isinstance(projection, Mapping) else None
        )
        self.threshold = _finite(trend.get("threshold"))
        self.days = trend.get("x_unit") == "days"
        self.origin = self._origin(trend.get("points") or [])
        self._scale()

    def _origin(self, points: Sequence[Mapping[str, Any]]) -> date | None:
        """The date at x = 0 on a days axis (x counts days since the first report)."""
        if not self.days or not points:
            return None
        try:
            first = datetime.fromisoformat(str(points[0].get("at")).replace("Z", "+00:00"))
            return first.date() - timedelta(days=float(points[0].get("x") or 0.0))
        except (ValueError, TypeError, OverflowError):
            return None

    def _fit(self, x: float) -> float | None:
        fit = (self.projection or {}).get("fit") or {}
        slope, intercept = _finite(fit.get("slope")), _finite(fit.get("intercept"))
        return None if slope is None or intercept is None else intercept + slope * x

    def _scale(self) -> None:
        xs = [x for x, _ in self.points]
        ys = [y for _, y in self.points]
        if self.projection is not None:
            xs += [v for k in ("low_x", "at_x", "high_x") if (v := _finite(self.projection.get(k)))]
        if self.threshold is not None:
            ys.append(self.threshold)
        if not xs:
            xs = [0.0, 1.0]
        x_lo, x_hi = min(xs), max(xs)
        for x in (x_lo, x_hi):  # the fitted line is drawn across the whole x range
            if (y := self._fit(x)) is not None:
                ys.append(y)
        if not ys:
            ys = [0.0, 1.0]
        y_lo, y_hi = min(ys), max(ys)
        if x_hi - x_lo < 1e-9:
            x_lo, x_hi = x_lo - 1.0, x_hi + 1.0
        if y_hi - y_lo < 1e-9:
            y_lo, y_hi = y_lo - 1.0, y_hi + 1.0
        pad_x, pad_y = (x_hi - x_lo) * 0.04, (y_hi - y_lo) * 0.08
        self.x_lo, self.x_hi = x_lo - pad_x, x_hi + pad_x
        self.y_lo, self.y_hi = y_lo - pad_y, y_hi + pad_y

    def sx(self, x: float) -> float:
        return _LEFT + (x - self.x_lo) / (self.x_hi - self.x_lo) * (_W - _LEFT - _RIGHT)

    def sy(self, y: float) -> float:
        return _TOP + (self.y_hi - y) / (self.y_hi - self.y_lo) * (_H - _TOP - _BOTTOM)

    def figure(self) -> str:
        page, trend = self.page, self.trend
        metric = str(trend.get("metric", ""))
        unit = str(trend.get("unit") or "")
        name = page.label(f"metric.{metric}", metric)
        subject = str(trend.get("subject") or "")
        title = f"{name} — {subject}" if subject else name
        words = page.text(trend.get("text"))
        limit = f"{page.label('limit')} {_num(self.threshold)} {unit}".strip()
        desc = f"{words} ({len(self.points)} {page.label('readings')}, {limit})"
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W:g} {_H:g}" role="img" '
            f'aria-labelledby="{self.id}-title {self.id}-desc" font-size="11" '
            f'font-family="inherit">'
            f'<title id="{self.id}-title">{_e(title)}</title>'
            f'<desc id="{self.id}-desc">{_e(desc)}</desc>'
            f"{self._axes(name, unit)}{self._interval()}{self._threshold(limit)}"
            f"{self._fit_line()}{self._points()}{self._crossing()}</svg>"
        )
        reason = trend.get("reason")
        if self.projection is None and reason:
            caption = (
                f'<p class="no-projection"><strong>{_e(page.label("no_projection"))}'
                f"{_e(page.label(':'))}{_e(page.code('t', reason))}{_e(page.label('.'))}</strong> "
                f"{_e(words)}</p>"
            )
        else:
            caption = f"<p>{_e(words)}</p>{self._projection_facts(unit)}"
        return (
            f'<figure class="trend" id="{self.id}">\n{svg}\n<figcaption><strong>{_e(title)}'
            f"</strong>{caption}</figcaption>\n</figure>"
        )

    def _axes(self, name: str, unit: str) -> str:
        left, right, top, bottom = _LEFT, _W - _RIGHT, _TOP, _H - _BOTTOM
        parts = [
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" '
            f'height="{bottom - top:.1f}" fill="#ffffff" stroke="#8c959f" stroke-width="1"/>'
        ]
        for y in _nice_ticks(self.y_lo, self.y_hi):
            py = self.sy(y)
            parts.append(
                f'<line x1="{left:.1f}" y1="{py:.1f}" x2="{right:.1f}" y2="{py:.1f}" '
                f'stroke="#eaeef2" stroke-width="1"/>'
                f'<text x="{left - 5:.1f}" y="{py + 4:.1f}" text-anchor="end" fill="#57606a">'
                f"{_e(_num(y))}</text>"
            )
        x_ticks = [(x, _num(x)) for x in _nice_ticks(self.x_lo, self.x_hi)]
        if self.origin is not None:
            # A projection centuries away is nonsense, but must not break the page.
            with contextlib.suppress(OverflowError, ValueError):
                x_ticks = _month_ticks(self.origin, self.x_lo, self.x_hi)
        for x, words in x_ticks:
            px = self.sx(x)
            parts.append(
                f'<line x1="{px:.1f}" y1="{bottom:.1f}" x2="{px:.1f}" y2="{bottom + 4:.1f}" '
                f'stroke="#8c959f" stroke-width="1"/>'
                f'<text x="{px:.1f}" y="{bottom + 16:.1f}" text-anchor="middle" fill="#57606a">'
                f"{_e(words)}</text>"
            )
        x_label = self.page.label("date" if self.days else "cycles")
        y_label = f"{name} ({unit})" if unit else name
        parts.append(
            f'<text class="x-label" x="{(left + right) / 2:.1f}" y="{_H - 6:.1f}" '
            f'text-anchor="middle" fill="#24292f">{_e(x_label)}</text>'
            f'<text class="y-label" x="{-(top + bottom) / 2:.1f}" y="14" '
            f'transform="rotate(-90)" text-anchor="middle" fill="#24292f">{_e(y_label)}</text>'
        )
        return "".join(parts)

    def _threshold(self, limit: str) -> str:
        if self.threshold is None:
            return ""
        py = self.sy(self.threshold)
        return (
            f'<line class="threshold" x1="{_LEFT:.1f}" y1="{py:.1f}" x2="{_W - _RIGHT:.1f}" '
            f'y2="{py:.1f}" stroke="#b3261e" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{_LEFT + 4:.1f}" y="{py - 4:.1f}" text-anchor="start" '
            f'fill="#b3261e">{_e(limit)}</text>'
        )

    def _fit_line(self) -> str:
        data_x = [x for x, _ in self.points]
        if self.projection is None or not data_x:
            return ""
        x0 = min(data_x)
        x1 = max([*data_x, _finite(self.projection.get("at_x")) or x0])
        y0, y1 = self._fit(x0), self._fit(x1)
        if y0 is None or y1 is None:
            return ""
        return (
            f'<line class="fit" x1="{self.sx(x0):.1f}" y1="{self.sy(y0):.1f}" '
            f'x2="{self.sx(x1):.1f}" y2="{self.sy(y1):.1f}" stroke="#0969da" stroke-width="1.5"/>'
        )

    def _points(self) -> str:
        return "".join(
            f'<circle class="point" cx="{self.sx(x):.1f}" cy="{self.sy(y):.1f}" r="3.5" '
            f'fill="#0969da" stroke="#ffffff" stroke-width="1"/>'
            for x, y in self.points
        )

    def _interval(self) -> str:
        if self.projection is None:
            return ""
        low, high = _finite(self.projection.get("low_x")), _finite(self.projection.get("high_x"))
        if low is None or high is None:
            return ""
        x0, x1 = self.sx(min(low, high)), self.sx(max(low, high))
        return (
            f'<rect class="interval" x="{x0:.1f}" y="{_TOP:.1f}" width="{max(x1 - x0, 1.0):.1f}" '
            f'height="{_H - _TOP - _BOTTOM:.1f}" fill="#b3261e" fill-opacity="0.12"/>'
        )

    def _crossing(self) -> str:
        at_x = _finite((self.projection or {}).get("at_x"))
        if at_x is None or self.threshold is None:
            return ""
        px, py = self.sx(at_x), self.sy(self.threshold)
        return (
            f'<line class="crossing" x1="{px:.1f}" y1="{_TOP:.1f}" x2="{px:.1f}" '
            f'y2="{_H - _BOTTOM:.1f}" stroke="#b3261e" stroke-width="1"/>'
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4.5" fill="#ffffff" stroke="#b3261e" '
            f'stroke-width="2"/>'
        )

    def _projection_facts(self, unit: str) -> str:
        p = self.projection
        if p is None:
            return ""
        page = self.page
        fit = p.get("fit") or {}
        slope = _finite(fit.get("slope")) or 0.0
        sign = "−" if slope < 0 else "+"
        equation = (
            f"y = {_num(fit.get('intercept'))} {sign} {_num(abs(slope))}·x, "
            f"r² {_num(fit.get('r_squared'))}"
        )
        if self.days:
            at, low, high = (p.get(k) or "?" for k in ("at", "low_at", "high_at"))
        else:
            at, low, high = (
                f"{_num(round(v))}" if (v := _finite(p.get(k))) is not None else "?"
                for k in ("at_x", "low_x", "high_x")
            )
        confidence = _finite(p.get("confidence"))
        level = f"{round(confidence * 100)} % " if confidence is not None else ""
        facts = [
            ("fit", equation),
            ("crossing", f"{at} ({level}{page.label('interval')} {low} {page.label('to')} {high})"),
        ]
        return page.facts(facts)
