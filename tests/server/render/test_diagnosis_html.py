"""The printable HTML diagnosis, read back with the standard library's HTML parser.

The samples in tests/fixtures/diagnosis follow docs/diagnosis.md; every one must render in
both languages as a self-contained page whose texts are escaped and whose charts carry the
document's numbers.
"""

from __future__ import annotations

import copy
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from probelink.server.render import render_diagnosis_html
from probelink.server.render.diagnosis_html import LANGS, SCHEMA

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "diagnosis"
SAMPLES = ("urgent_laptop", "healthy_phone", "could_not_judge")
EVIL = "<script>alert(1)</script>"


def sample(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SAMPLES_DIR / f"{name}.json").read_text("utf-8"))
    return document


class Page(HTMLParser):
    """Every element (tag, attributes, path of open tags) and the text inside each."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None], tuple[str, ...]]] = []
        self.texts: list[tuple[tuple[str, ...], str]] = []
        self.doctype = ""
        self._open: list[str] = []
        self.feed(source)
        self.close()

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs), tuple(self._open)))
        if tag not in VOID:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs), tuple(self._open)))

    def handle_endtag(self, tag: str) -> None:
        assert self._open and self._open[-1] == tag, f"</{tag}> closes {self._open[-1:]}"
        self._open.pop()

    def handle_data(self, data: str) -> None:
        self.texts.append((tuple(self._open), data))

    def all(self, tag: str, cls: str | None = None) -> list[dict[str, str | None]]:
        return [
            attrs
            for t, attrs, _ in self.elements
            if t == tag and (cls is None or cls in (attrs.get("class") or "").split())
        ]

    def text(self) -> str:
        return " ".join(data for _, data in self.texts)

    def text_in(self, tag: str) -> str:
        return " ".join(data for path, data in self.texts if tag in path)


VOID = {"meta", "link", "br", "col", "img", "input", "hr", "wbr", "source"}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_renders_a_whole_page_in_both_languages(name: str, lang: str) -> None:
    document = sample(name)
    source = render_diagnosis_html(document, lang)
    page = Page(source)  # the parser asserts that every element is closed in order

    assert page.doctype.lower() == "doctype html"
    assert page.all("html")[0]["lang"] == lang
    assert page.all("meta")[0] == {"charset": "utf-8"}
    assert page.all("style"), "the CSS is inline"
    css = page.text_in("style")
    assert "@page { size: A4; margin: 15mm; }" in css
    assert "print-color-adjust: exact" in css
    text = page.text()
    # The document's own words, in the page's language.
    assert document["verdict"]["text"][lang] in text
    for finding in document["findings"]:
        assert finding["text"][lang] in text
        assert finding["rule_id"] in text
    for entry in document["not_judged"]:
        assert entry["text"][lang] in text
    for action in document["actions"]:
        assert action["title"][lang] in text
        for step in action["steps"][lang]:
            assert step in text
    for trend in document["trends"]:
        assert trend["text"][lang] in text
    # The findings table keeps the document's order (most severe first).
    rows = page.all("tr", "finding")
    assert [r["class"] for r in rows] == [
        f"finding severity-{f['severity']}" for f in document["findings"]
    ]


def test_english_and_chinese_labels_come_from_the_table() -> None:
    english = Page(render_diagnosis_html(sample("urgent_laptop"), "en")).text()
    chinese = Page(render_diagnosis_html(sample("urgent_laptop"), "zh-CN")).text()
    for word in ("Findings", "Urgent", "Critical", "Customer pays", "Battery renewal plan"):
        assert word in english
    for word in ("发现的问题", "紧急", "严重", "客户支付", "电池焕新计划", "维修"):
        assert word in chinese
    assert "Findings" not in chinese


def test_the_verdict_is_a_word_as_well_as_a_colour() -> None:
    words = {"urgent_laptop": "Urgent", "healthy_phone": "Healthy", "could_not_judge": "Could"}
    for name, word in words.items():
        document = sample(name)
        page = Page(render_diagnosis_html(document, "en"))
        (banner,) = page.all("section", "verdict")
        assert f"verdict-{document['verdict']['code']}" in (banner["class"] or "")
        assert "background:" in (banner["style"] or "")
        assert word in page.text()


def test_money_coverage_and_totals_are_shown_as_given() -> None:
    text = Page(render_diagnosis_html(sample("urgent_laptop"), "en")).text()
    assert "399.00 CNY" in text  # the battery's list price...
    assert "0.00 CNY" in text  # ...which the battery renewal plan pays
    assert "battery_renewal" in text and "not_covered" in text
    assert "1077.00 CNY" in text and "678.00 CNY" in text


def test_unknown_totals_and_warranty_say_so() -> None:
    document = sample("could_not_judge")
    text = Page(render_diagnosis_html(document, "en")).text()
    assert "not known" in text
    assert document["warranty"]["problem"]["en"] in text
    assert "nowhere: warranty not judged" in text
    for reason in ("missing", "unreadable"):
        assert reason in text


def test_nothing_is_fetched_from_anywhere() -> None:
    for name in SAMPLES:
        for lang in LANGS:
            source = render_diagnosis_html(sample(name), lang)
            page = Page(source)
            assert not page.all("script")
            assert not page.all("link")
            assert not page.all("img")
            assert not page.all("iframe")
            for tag, attrs, _ in page.elements:
                for key, value in attrs.items():
                    # The only URL is the SVG namespace name, which nothing loads.
                    if key == "xmlns":
                        assert value == "http://www.w3.org/2000/svg"
                        continue
                    assert key not in ("src", "href", "xlink:href", "action", "srcset"), tag
                    assert "url(" not in (value or ""), (tag, key)
            css = page.text_in("style")
            assert "url(" not in css and "@import" not in css
            csp = [a for a in page.all("meta") if a.get("http-equiv")]
            assert csp and "default-src 'none'" in (csp[0]["content"] or "")


def test_texts_from_devices_and_rules_are_escaped() -> None:
    document = copy.deepcopy(sample("urgent_laptop"))
    finding = document["findings"][0]
    finding["text"] = {"en": f"bad {EVIL}", "zh-CN": f"坏 {EVIL}"}
    finding["evidence"] = {EVIL: [EVIL, 1.5, True], "drives": f'"quoted" {EVIL}'}
    finding["rule_id"] = f"storage.{EVIL}"
    document["device"]["model"] = f'X1" onload="alert(1) {EVIL}'
    document["verdict"]["code"] = f'urgent" style="x{EVIL}'
    document["trends"][0]["subject"] = EVIL
    document["actions"][3]["steps"]["en"][0] = EVIL
    for lang in LANGS:
        source = render_diagnosis_html(document, lang)
        page = Page(source)
        assert EVIL not in source
        assert not page.all("script")
        assert all("onload" not in attrs for _, attrs, _ in page.elements)
        # ...and still there to read, as text.
        text = page.text()
        assert text.count(EVIL) >= 8
        assert f'X1" onload="alert(1) {EVIL}' in text


def svg_charts(page: Page) -> list[list[tuple[str, dict[str, str | None]]]]:
    """The elements of each <svg>, chart by chart."""
    charts: list[list[tuple[str, dict[str, str | None]]]] = []
    for tag, attrs, path in page.elements:
        if tag == "svg":
            charts.append([])
        elif "svg" in path:
            charts[-1].append((tag, attrs))
    return charts


def has_class(attrs: dict[str, str | None], cls: str) -> bool:
    return cls in (attrs.get("class") or "").split()


@pytest.mark.parametrize("lang", LANGS)
def test_one_chart_per_trend_with_its_points_and_limit(lang: str) -> None:
    document = sample("urgent_laptop")
    page = Page(render_diagnosis_html(document, lang))
    charts = svg_charts(page)
    assert len(charts) == len(document["trends"]) == 2
    for chart, trend in zip(charts, document["trends"], strict=True):
        points = [a for t, a in chart if t == "circle" and has_class(a, "point")]
        assert len(points) == len(trend["points"])
        thresholds = [a for t, a in chart if t == "line" and has_class(a, "threshold")]
        assert len(thresholds) == 1 and thresholds[0]["stroke-dasharray"]
        assert [t for t, _ in chart].count("title") == 1
        assert [t for t, _ in chart].count("desc") == 1
        projected = trend["projection"] is not None
        assert any(has_class(a, "fit") for _, a in chart) == projected
        assert any(has_class(a, "interval") for _, a in chart) == projected
        assert any(has_class(a, "crossing") for _, a in chart) == projected
    svgs = page.all("svg")
    assert all(s["role"] == "img" and s["viewbox"] for s in svgs)


def test_the_chart_is_drawn_where_the_numbers_say() -> None:
    """Points fall on a straight line in the data, so their pixels do too."""
    document = sample("urgent_laptop")
    page = Page(render_diagnosis_html(document, "en"))
    chart = svg_charts(page)[0]
    points = [a for t, a in chart if t == "circle" and has_class(a, "point")]
    xs = [float(p["cx"] or 0) for p in points]
    ys = [float(p["cy"] or 0) for p in points]
    data = document["trends"][0]["points"]
    # Pixels are linear in x and y: compare slopes between the first and every other point.
    scale_x = (xs[-1] - xs[0]) / (data[-1]["x"] - data[0]["x"])
    scale_y = (ys[-1] - ys[0]) / (data[-1]["y"] - data[0]["y"])
    for p, x, y in zip(data, xs, ys, strict=True):
        assert x == pytest.approx(xs[0] + (p["x"] - data[0]["x"]) * scale_x, abs=0.2)
        assert y == pytest.approx(ys[0] + (p["y"] - data[0]["y"]) * scale_y, abs=0.2)
    assert scale_x > 0 and scale_y < 0  # time goes right, health goes up
    # The threshold sits at y = 80 on the same scale.
    (threshold,) = [a for t, a in chart if has_class(a, "threshold")]
    expected = ys[0] + (80.0 - data[0]["y"]) * scale_y
    assert float(threshold["y1"] or 0) == pytest.approx(expected, abs=0.2)
    # The crossing's marker is at at_x on the same scale, inside the shaded interval.
    projection = document["trends"][0]["projection"]
    (crossing,) = [a for t, a in chart if has_class(a, "crossing")]
    at_px = xs[0] + (projection["at_x"] - data[0]["x"]) * scale_x
    assert float(crossing["x1"] or 0) == pytest.approx(at_px, abs=0.2)
    (interval,) = [a for t, a in chart if has_class(a, "interval")]
    left = float(interval["x"] or 0)
    assert left < at_px < left + float(interval["width"] or 0)


def test_a_days_axis_shows_dates_and_a_cycles_axis_counts() -> None:
    page = Page(render_diagnosis_html(sample("urgent_laptop"), "en"))
    figures = page.text_in("figure")
    assert "2027-05-09" in figures  # the projected crossing's date
    assert "Date" in figures and "Charge cycles" in figures
    assert "Battery health (%)" in figures


@pytest.mark.parametrize("lang", LANGS)
def test_a_trend_without_projection_shows_its_reason(lang: str) -> None:
    document = sample("urgent_laptop")
    trend = document["trends"][1]
    assert trend["projection"] is None and trend["reason"] == "too_little_history"
    page = Page(render_diagnosis_html(document, lang))
    reasons = [data for path, data in page.texts if "figcaption" in path]
    caption = " ".join(reasons)
    assert trend["text"][lang] in caption
    assert ("too little history" if lang == "en" else "历史数据太少") in caption


def test_a_document_without_trends_has_no_chart() -> None:
    for name in ("healthy_phone", "could_not_judge"):
        assert not Page(render_diagnosis_html(sample(name), "en")).all("svg")


@pytest.mark.parametrize("schema", ["probelink.diagnosis/v2", "probelink.report/v1", "", None, 1])
def test_a_document_of_another_schema_is_refused(schema: object) -> None:
    document = sample("healthy_phone")
    document["schema"] = schema
    with pytest.raises(ValueError, match=r"schema .*expected 'probelink\.diagnosis/v1'"):
        render_diagnosis_html(document)


def test_a_document_without_a_schema_is_refused() -> None:
    document = sample("healthy_phone")
    del document["schema"]
    with pytest.raises(ValueError, match=r"probelink\.diagnosis/v1"):
        render_diagnosis_html(document, "en")
    assert SCHEMA == "probelink.diagnosis/v1"


@pytest.mark.parametrize("lang", ["fr", "zh", "zh-cn", "EN", "", "zh-TW"])
def test_an_unknown_language_is_refused_naming_the_allowed_ones(lang: str) -> None:
    with pytest.raises(ValueError, match=r"unknown language .*: use one of en, zh-CN"):
        render_diagnosis_html(sample("urgent_laptop"), lang)


def test_unknown_codes_show_as_themselves_rather_than_failing() -> None:
    """v1 may grow: a severity or verdict this renderer does not know is shown as its code."""
    document = copy.deepcopy(sample("urgent_laptop"))
    document["verdict"]["code"] = "quarantine"
    document["findings"][0]["severity"] = "catastrophic"
    document["trends"][1]["reason"] = "sensor_swapped"
    document["new_field"] = {"anything": 1}
    text = Page(render_diagnosis_html(document, "en")).text()
    assert "quarantine" in text and "catastrophic" in text and "sensor_swapped" in text


ODD_TRENDS: dict[str, Any] = {
    "no points": {"points": []},
    "one point": {"points": [{"at": "2026-04-02T09:00:00Z", "x": 0.0, "y": 90.0}]},
    "a crossing in a far future": {"projection": {"at_x": 1e12, "low_x": 1e11, "high_x": 1e15}},
    "x beyond float precision": {"points": [{"at": "?", "x": 1e20 + i, "y": 1.0} for i in (0, 1)]},
    "no threshold": {"threshold": None},
}


@pytest.mark.parametrize("change", ODD_TRENDS.values(), ids=ODD_TRENDS.keys())
def test_odd_trend_numbers_still_give_a_chart(change: dict[str, Any]) -> None:
    document = copy.deepcopy(sample("urgent_laptop"))
    trend = document["trends"][0]
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(trend[key], dict):
            trend[key].update(value)
        else:
            trend[key] = value
    page = Page(render_diagnosis_html(document, "en"))
    assert len(page.all("svg")) == 2
