"""The terminal rendering of a diagnosis document: what a person must see, in en and zh-CN.

Each sample in tests/fixtures/diagnosis/ is printed to a real rich Console (width 100, plain
and coloured; width 60 for narrow terminals) and the output is searched for the words the
document says. Wrapping moves words between lines, so text is compared with all whitespace
removed; money is compared on a single line, exactly as the document spells it.
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from probelink.diagnosis_text import LANGS, SCHEMA, WORDS, check_document, render_diagnosis

SAMPLES = Path(__file__).parent / "fixtures" / "diagnosis"
NAMES = ("urgent_laptop", "healthy_phone", "could_not_judge")
WIDE, NARROW = 100, 60


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text("utf-8"))
    return document


def console(width: int, color: bool) -> Console:
    return Console(
        record=True,
        width=width,
        file=io.StringIO(),
        color_system="standard" if color else None,
        force_terminal=color,
        legacy_windows=False,
    )


def render(
    document: Any, lang: str = "en", width: int = WIDE, color: bool = False
) -> tuple[str, str]:
    """(plain text, what the terminal was sent) of one rendering."""
    out = console(width, color)
    out.print(render_diagnosis(document, lang))
    assert isinstance(out.file, io.StringIO)
    return out.export_text(), out.file.getvalue()


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def monies(document: Mapping[str, Any]) -> Iterator[str]:
    """Every amount the text shows, spelled as the document spells it."""
    for action in document["actions"]:
        for key in ("list_price", "customer_pays"):
            if action[key] is not None:
                yield f"{action[key]['currency']} {action[key]['amount']}"
    if document["actions"]:
        for key in ("list_price", "customer_pays"):
            money = document["totals"][key]
            if money is not None:
                yield f"{money['currency']} {money['amount']}"


def words_a_person_must_see(document: Mapping[str, Any], lang: str) -> Iterator[str]:
    yield WORDS[lang][f"verdict.{document['verdict']['code']}"]
    yield document["verdict"]["text"][lang]
    for finding in document["findings"]:
        yield WORDS[lang][f"severity.{finding['severity']}"]
        yield finding["text"][lang]
        for name in finding["evidence"]:
            yield f"{name} ="
    for item in document["not_judged"]:
        yield WORDS[lang][f"reason.{item['reason']}"]
        yield item["text"][lang]
    for action in document["actions"]:
        yield WORDS[lang][f"kind.{action['kind']}"]
        yield action["title"][lang]
        yield from action["steps"][lang]
        if action["coverage"] is not None:
            yield action["coverage"]["term"][lang]
    for trend in document["trends"]:
        yield trend["text"][lang]
    yield document["report_id"]
    yield document["ruleset_version"][:12]


CASES = [(name, lang) for name in NAMES for lang in LANGS]


@pytest.mark.parametrize("color", [False, True], ids=["plain", "color"])
@pytest.mark.parametrize(("name", "lang"), CASES)
def test_every_word_a_person_needs_is_shown(name: str, lang: str, color: bool) -> None:
    document = load(name)
    plain, _ = render(document, lang, color=color)
    flat = squash(plain)
    for words in words_a_person_must_see(document, lang):
        assert squash(words) in flat, f"{words!r} missing from the {lang} rendering of {name}"
    lines = plain.splitlines()
    for money in monies(document):
        assert any(money in line for line in lines), f"{money} not shown as one piece"


def test_customer_pays_is_shown_next_to_its_label() -> None:
    plain, _ = render(load("urgent_laptop"))
    pays = [line for line in plain.splitlines() if "Customer pays" in line]
    # One per action (99, 579, 0 under the battery plan, 0 for self-help) and the total.
    assert [line.split("Customer pays")[1].strip() for line in pays] == [
        "CNY 99.00",
        "CNY 579.00",
        "CNY 0.00",
        "CNY 0.00",
        "CNY 678.00",
    ]
    zh, _ = render(load("urgent_laptop"), "zh-CN")
    assert "客户支付  CNY 678.00" in zh


def test_coverage_says_covered_or_not_with_its_remedy() -> None:
    flat = squash(render(load("urgent_laptop"))[0])
    assert squash("covered · Battery renewal plan") in flat
    assert squash("· remedy: repair") in flat
    assert squash("not covered · Not a repair") in flat
    zh = squash(render(load("urgent_laptop"), "zh-CN")[0])
    assert squash("在保 · 电池焕新计划") in zh
    assert squash("方式：维修") in zh


def test_self_help_steps_are_numbered_in_order() -> None:
    flat = squash(render(load("urgent_laptop"))[0])
    assert squash("1. Empty the trash") in flat
    assert squash("2. Uninstall apps") in flat
    assert flat.index("1.Emptythe") < flat.index("2.Uninstall") < flat.index("3.Movephotos")


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_verdict_first_then_sections_then_findings_in_document_order(name: str, lang: str) -> None:
    document = load(name)
    plain, _ = render(document, lang)
    flat = squash(plain)
    words = WORDS[lang]
    assert plain.startswith(words[f"verdict.{document['verdict']['code']}"])
    places = [flat.index(squash(f["text"][lang])) for f in document["findings"]]
    assert places == sorted(places)
    assert all(place > flat.index(squash(words["heading.findings"])) for place in places)
    titles = [flat.index(squash(a["title"][lang])) for a in document["actions"]]
    assert titles == sorted(titles)
    # Sections in the order a person reads them (headings are lines of their own).
    lines = [line.strip() for line in plain.splitlines()]
    order = [lines.index(words["heading.findings"])]
    if document["not_judged"]:
        order.append(lines.index(words["heading.not_judged"]))
    if document["actions"]:
        order.append(lines.index(words["heading.actions"]))
    order.append(next(i for i, line in enumerate(lines) if line.startswith(words["warranty"])))
    if document["trends"]:
        order.append(lines.index(words["heading.trends"]))
    order.append(next(i for i, line in enumerate(lines) if document["report_id"] in line))
    assert order == sorted(order)


def test_colour_carries_the_verdict_and_severity_but_the_word_is_there_too() -> None:
    _, styled = render(load("urgent_laptop"), color=True)
    assert "\x1b[" in styled
    assert re.search(r"\x1b\[[0-9;]*31[0-9;]*mURGENT", styled)  # red
    assert re.search(r"\x1b\[[0-9;]*33[0-9;]*mMINOR", styled)  # yellow
    plain, sent = render(load("urgent_laptop"), color=False)
    assert "\x1b[" not in sent
    assert plain.startswith("URGENT")


def test_healthy_phone_shows_no_actions_and_no_trends() -> None:
    plain, _ = render(load("healthy_phone"))
    assert plain.startswith("HEALTHY")
    assert "What to do" not in plain
    assert "Trends" not in plain
    assert "Could not judge" not in plain
    assert "INFO" in plain
    assert "health = 96.0" in plain
    assert "cycles = 212" in plain
    assert "purchased 2026-02-14 · region EU (as given with this request)" in plain


def test_could_not_judge_lists_each_cause_once_and_the_warranty_problem() -> None:
    document = load("could_not_judge")
    plain, _ = render(document)
    flat = squash(plain)
    assert plain.startswith("COULD NOT JUDGE")
    assert "No findings." in plain
    # Two battery rules fail for one cause: the cause is read once.
    assert flat.count(squash("The report has no battery results.")) == 1
    assert "Battery  no results: The report has no battery results." in plain
    assert squash(document["warranty"]["problem"]["en"]) in flat
    assert "model not in the catalog" in plain
    zh = squash(render(document, "zh-CN")[0])
    assert zh.count(squash("报告中没有电池检测结果。")) == 1
    assert squash(document["warranty"]["problem"]["zh-CN"]) in zh


def test_warranty_facts_and_trend_projection() -> None:
    plain, _ = render(load("urgent_laptop"))
    assert "Warranty  purchased 2025-03-01 · region CN · plans: battery_renewal" in plain
    # Beside its label, the projection may wrap: compared without the layout's spaces.
    assert squash(
        "around 2027-05-09 (between 2027-04-24 and 2027-05-25) · 165 days left (151–181)"
    ) in squash(plain)
    zh, _ = render(load("urgent_laptop"), "zh-CN")
    assert squash("约 2027-05-09（介于 2027-04-24 至 2027-05-25） · 剩余 165 天（151–181）") in (
        squash(zh)
    )


def test_each_trend_says_what_it_follows() -> None:
    # Three trends of one report would read alike without their metric, part and axis.
    plain, _ = render(load("urgent_laptop"))
    assert "Battery BAT0 by date" in plain and "Battery BAT0 by cycle" in plain
    zh, _ = render(load("urgent_laptop"), "zh-CN")
    assert "电池 BAT0 按日期" in zh and "电池 BAT0 按循环" in zh


def test_a_cycles_projection_has_no_dates() -> None:
    document = load("urgent_laptop")
    trend = document["trends"][1]
    trend["reason"] = None
    trend["projection"] = {
        "at": None,
        "low_at": None,
        "high_at": None,
        "at_x": 1200.0,
        "low_x": 1150.0,
        "high_x": 1260.0,
        "remaining": 154.0,
        "remaining_low": 104.0,
        "remaining_high": 214.0,
        "confidence": 0.9,
        "fit": {"slope": -0.05, "intercept": 140.0, "r_squared": 0.9},
    }
    plain, _ = render(document)
    assert "154 cycles left (104–214)" in plain
    assert plain.count("around ") == 1  # only the days-axis trend has a date
    zh, _ = render(document, "zh-CN")
    assert "剩余 154 次循环（104–214）" in zh


def test_footer_has_report_time_and_short_ruleset() -> None:
    document = load("urgent_laptop")
    plain, _ = render(document)
    last = squash("".join(plain.rstrip().splitlines()[-2:]))
    assert squash(f"Report {document['report_id']}") in last
    assert squash("made 2026-11-25 15:24:09 UTC") in last
    assert squash("rules 3f9a1c07be52") in last
    assert document["ruleset_version"][:13] not in squash(plain)


def test_missing_price_and_coverage_say_why() -> None:
    document = load("urgent_laptop")
    action = document["actions"][1]
    action["list_price"] = action["coverage"] = action["customer_pays"] = None
    action["problem"] = {
        "en": "No price for storage_replacement in EUR.",
        "zh-CN": "storage_replacement 没有欧元价格。",
    }
    plain, _ = render(document)
    assert "List price     no price" in plain
    assert "Coverage       not known (no warranty facts)" in plain
    assert "No price for storage_replacement in EUR." in plain
    zh, _ = render(document, "zh-CN")
    assert "storage_replacement 没有欧元价格。" in zh


def _data_strings(value: Any) -> Iterator[str]:
    """Strings of the document a person reads as-is: ids, evidence names, zh-CN texts."""
    if isinstance(value, Mapping):
        if set(value) == {"en", "zh-CN"}:
            yield from _data_strings(value["zh-CN"])
            return
        for key, inner in value.items():
            yield str(key)
            yield from _data_strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _data_strings(inner)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("name", NAMES)
def test_zh_cn_output_has_no_english_label(name: str) -> None:
    document = load(name)
    plain, _ = render(document, "zh-CN")
    data = " ".join(_data_strings(document))
    leaked = []
    for label in WORDS["en"].values():
        if not re.search("[A-Za-z]", label):
            continue
        pattern = rf"(?<![A-Za-z]){re.escape(label.strip())}(?![A-Za-z])"
        # "cycles = 212" is the document's evidence name, not our label.
        if re.search(pattern, data):
            continue
        if re.search(pattern, plain):
            leaked.append(label)
    assert leaked == []


def test_every_label_has_both_languages() -> None:
    assert set(WORDS) == set(LANGS)
    assert set(WORDS["en"]) == set(WORDS["zh-CN"])


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_narrow_console_keeps_amounts_on_one_line(name: str, lang: str) -> None:
    document = load(name)
    plain, _ = render(document, lang, width=NARROW, color=True)
    lines = plain.splitlines()
    assert all(cell_len(line) <= NARROW for line in lines)
    for money in monies(document):
        assert any(money in line for line in lines), f"{money} broken across lines"
    for words in words_a_person_must_see(document, lang):
        assert squash(words) in squash(plain)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected a JSON object, got list"),
        ("probelink.diagnosis/v1", "expected a JSON object, got str"),
        (None, "expected a JSON object, got NoneType"),
        ({}, "no 'schema' key"),
        ({"schema": None, "report_id": "x"}, "schema is None"),
        ({"schema": "probelink.report/v1"}, "schema is 'probelink.report/v1'"),
        ({"schema": "probelink.diagnosis/v2"}, f"expected {SCHEMA!r}"),
    ],
)
def test_not_a_diagnosis_document(document: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_document(document)
    with pytest.raises(ValueError, match=re.escape(message)):
        render_diagnosis(document)


def test_missing_keys_are_named() -> None:
    document = load("urgent_laptop")
    del document["findings"]
    del document["warranty"]
    with pytest.raises(ValueError, match="missing required keys: findings, warranty"):
        render_diagnosis(document)


def test_a_key_of_the_wrong_type_is_named() -> None:
    document = load("urgent_laptop")
    document["findings"] = {"battery.worn": {}}
    with pytest.raises(ValueError, match="'findings' has the wrong type: dict"):
        check_document(document)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda d: d["findings"][2].pop("text"), "findings[2]: missing 'text'"),
        (lambda d: d["findings"][0]["text"].pop("zh-CN"), "findings[0].text: no 'zh-CN' text"),
        (lambda d: d["actions"][0].update(list_price=399.0), "actions[0].list_price"),
        (lambda d: d["verdict"].update(text="urgent"), "verdict.text: expected a Texts"),
        (lambda d: d["trends"][0].pop("projection"), "trends[0]: missing 'projection'"),
    ],
)
def test_a_broken_field_inside_is_named(spoil: Any, message: str) -> None:
    document = load("urgent_laptop")
    spoil(document)
    with pytest.raises(ValueError, match=re.escape(message)):
        render_diagnosis(document, "zh-CN")


def test_a_good_document_passes_the_check_unchanged() -> None:
    document = load("healthy_phone")
    assert check_document(document) is document


@pytest.mark.parametrize("lang", ["fr", "zh", "EN", "zh-cn", ""])
def test_unknown_language_names_the_choices(lang: str) -> None:
    with pytest.raises(ValueError, match=r"unknown language .*: use one of en, zh-CN"):
        render_diagnosis(load("healthy_phone"), lang)


def test_document_values_are_never_read_as_markup() -> None:
    document = load("urgent_laptop")
    trap = "[bold red]x[/] see [link=http://e]here[/link]"
    document["findings"][0]["text"] = {"en": trap, "zh-CN": trap}
    document["findings"][0]["evidence"] = {"[b]key[/b]": "[i]value"}
    document["actions"][0]["title"] = {"en": "[red]title[/red]", "zh-CN": "[/]"}
    document["actions"][3]["steps"]["en"][0] = "[blink]step"
    document["trends"][0]["text"]["en"] = "[dim]trend[/"
    for lang in LANGS:
        plain, styled = render(copy.deepcopy(document), lang, color=True)
        flat = squash(plain)
        assert squash(trap) in flat
        assert "[b]key[/b] = [i]value" in plain
        assert "\x1b]8;" not in styled  # no hyperlink was made
    plain, _ = render(document, "en")
    assert "[red]title[/red]" in plain
    assert "1. [blink]step" in plain
    assert "[dim]trend[/" in plain
    assert "[/]" in render(document, "zh-CN")[0]


def test_unknown_codes_are_shown_as_themselves() -> None:
    # v1 may grow: a newer server's severity must not crash an older agent's rendering.
    document = load("urgent_laptop")
    document["findings"][0]["severity"] = "catastrophic"
    document["verdict"]["code"] = "beyond_repair"
    plain, _ = render(document)
    assert plain.startswith("beyond_repair")
    assert "catastrophic" in plain
