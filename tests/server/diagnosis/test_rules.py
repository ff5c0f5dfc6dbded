"""The rule engine on real reports and real rule files: findings, refusals, "could not judge".

Good inputs: the captured machines with the smartctl fixtures give the expected findings,
compared as whole records. Bad inputs: every rule-file mistake is refused at load with a
message naming the file, line, rule and field; every runtime failure while judging one report
is a "could not judge" finding, never an exception and never a silent pass.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from probelink.server.diagnosis.facts import FAMILIES, FAMILY_ZH, facts_of
from probelink.server.diagnosis.rules import SHIPPED_DIR, Finding, RuleError, RuleSet
from probelink.server.diagnosis.thresholds import DEFAULT_THRESHOLDS
from probelink.v1 import status_pb2
from tests.server.diagnosis.test_facts import machine_report

ALL_SMARTCTL = (
    "ata-crc-errors",
    "ata-healthy",
    "ata-reallocated",
    "ata-standby",
    "nvme-critical-warning",
    "nvme-healthy",
    "nvme-worn",
    "open-failed",
    "scsi-grown-defects",
)

WORN_BATTERY = Finding(
    rule_id="battery.worn",
    family="battery",
    severity="major",
    text={
        "en": "The battery holds 62 % of its design capacity, below the 80 % this model "
        "needs; it is worn and should be replaced.",
        "zh-CN": "电池容量仅为设计容量的 62%，低于本机型要求的 80%，电池已老化，建议更换。",
    },
    evidence={"health": 62.0, "minimum": 80.0},
    action="battery_replacement",
)

GOOD_RULE = """
[[rule]]
id = "battery.worn"
family = "battery"
severity = "major"
condition = 'battery.health_pct < threshold("battery.min_health_pct")'
action = "battery_replacement"
[rule.evidence]
health = "battery.health_pct"
[rule.text]
en = "Battery at {health} %."
"zh-CN" = "电池 {health}%。"
"""


def write_rules(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def one_rule(tmp_path: Path, condition: str, evidence: str = 'x = "1"') -> RuleSet:
    """A rule-set of one battery rule with `condition`, loaded from a real file."""
    text = f"""
[[rule]]
id = "test.rule"
family = "battery"
severity = "minor"
condition = '{condition}'
action = "battery_replacement"
[rule.evidence]
{evidence}
[rule.text]
en = "fired"
"zh-CN" = "触发"
"""
    write_rules(tmp_path / "rules", "test.toml", text)
    return RuleSet.load(tmp_path / "rules", shipped=False)


def not_judged(
    reason: str, reason_zh: str, rule_id: str = "test.rule", severity: str = "minor"
) -> Finding:
    """What a battery rule that could not judge gives: the English reason is also kept in
    `could_not_judge`; the zh-CN text has the Chinese reason."""
    return Finding(
        rule_id=rule_id,
        family="battery",
        severity=severity,
        text={"en": f"Could not judge: {reason}", "zh-CN": f"无法判断：{reason_zh}"},
        evidence={},
        action="battery_replacement",
        could_not_judge=reason,
    )


def error_not_judged(reason: str) -> Finding:
    """`not_judged` for a rule whose evaluation raised: `reason` is "Type: message", and the
    zh-CN text names the same type and message inside the Chinese sentence."""
    kind, message = reason.split(": ", 1)
    return not_judged(reason, f"规则计算出错（{kind}：{message}）")


# --- good inputs: the shipped rules on the captured machines ---------------------------------


def test_worn_laptop_gives_exactly_the_worn_battery_finding() -> None:
    facts = facts_of(machine_report("laptop-worn-battery"))
    assert RuleSet.load().evaluate(facts, DEFAULT_THRESHOLDS) == [WORN_BATTERY]


def test_every_smartctl_fixture_gets_its_own_storage_rule() -> None:
    facts = facts_of(machine_report("laptop-worn-battery", *ALL_SMARTCTL))
    findings = RuleSet.load().evaluate(facts, DEFAULT_THRESHOLDS)
    assert [(f.rule_id, f.severity, f.action, f.evidence) for f in findings] == [
        ("battery.worn", "major", "battery_replacement", {"health": 62.0, "minimum": 80.0}),
        ("storage.crc_errors", "minor", "reseat_drive_cable",
         {"drives": ["Samsung SSD 860 EVO 500GB /dev/sdb: 147"]}),
        ("storage.grown_defects", "major", "storage_replacement",
         {"drives": ["SEAGATE ST4000NM0023 /dev/sdc: 37"]}),
        ("storage.media_errors", "major", "storage_replacement",
         {"drives": ["WDC PC SN530 SDBPNPZ-512G-1006 /dev/nvme0: 23"]}),
        ("storage.nvme_critical_warning", "critical", "data_backup",
         {"drives": ["WDC PC SN530 SDBPNPZ-512G-1006 /dev/nvme0: warning bits 4"]}),
        ("storage.nvme_wear", "advisory", "storage_replacement",
         {"drives": ["INTEL SSDPEKNW010T8 /dev/nvme1: 92 %"], "limit": 90.0}),
        ("storage.pending", "major", "data_backup",
         {"drives": ["ST2000DM008-2FR102 /dev/sda: 2"]}),
        ("storage.reallocated", "major", "storage_replacement",
         {"drives": ["ST2000DM008-2FR102 /dev/sda: 8"]}),
    ]  # fmt: skip
    assert all(not f.could_not_judge for f in findings)


def test_crc_errors_blame_the_cable_in_both_languages() -> None:
    facts = facts_of(machine_report("laptop-worn-battery", "ata-crc-errors"))
    (crc,) = [
        f for f in RuleSet.load().evaluate(facts, DEFAULT_THRESHOLDS) if f.family == "storage"
    ]
    assert crc == Finding(
        rule_id="storage.crc_errors",
        family="storage",
        severity="minor",
        text={
            "en": "Interface CRC errors: Samsung SSD 860 EVO 500GB /dev/sdb: 147. This is the "
            "cable or connector, not the disk: reseat or replace the data cable.",
            "zh-CN": "接口 CRC 错误：Samsung SSD 860 EVO 500GB /dev/sdb: 147。这是数据线或接口的"
            "问题，并非硬盘本身：请重新插紧或更换数据线。",
        },
        evidence={"drives": ["Samsung SSD 860 EVO 500GB /dev/sdb: 147"]},
        action="reseat_drive_cable",
    )


def test_model_thresholds_change_the_verdict() -> None:
    facts = facts_of(machine_report("laptop-worn-battery"))
    lenient = dict(DEFAULT_THRESHOLDS) | {"battery.min_health_pct": 60.0}
    assert RuleSet.load().evaluate(facts, lenient) == []


def test_desktop_without_battery_skips_battery_rules_and_flags_the_stopped_fan() -> None:
    facts = facts_of(machine_report("desktop-no-battery"))
    findings = RuleSet.load().evaluate(facts, DEFAULT_THRESHOLDS)
    assert [f.rule_id for f in findings if f.family == "battery"] == []
    assert [f for f in findings if f.family == "sensors"] == [
        Finding(
            rule_id="thermal.fan_alarm",
            family="sensors",
            severity="major",
            text={
                "en": "Fan not turning as it should: nct6775/fan2: 0 RPM. "
                "Clean or replace the fan.",
                "zh-CN": "风扇运转异常：nct6775/fan2: 0 RPM。请清洁或更换风扇。",
            },
            evidence={"fans": ["nct6775/fan2: 0 RPM"]},
            action="fan_cleaning",
        )
    ]


def test_operator_directory_overrides_a_shipped_rule_by_id(tmp_path: Path) -> None:
    write_rules(tmp_path / "ops", "mine.toml", GOOD_RULE.replace('"major"', '"critical"'))
    rules = RuleSet.load(tmp_path / "ops")
    assert rules.rules["battery.worn"].severity == "critical"
    assert len(rules.rules) == len(RuleSet.load().rules)  # replaced, not added
    assert rules.version != RuleSet.load().version


# --- bad input: a report missing whole families --------------------------------------------


def test_report_missing_whole_families_is_not_judged_not_healthy() -> None:
    report = machine_report("laptop-worn-battery")
    kept = [r for r in report.results if r.category == status_pb2.CATEGORY_SYSTEM]
    del report.results[:]
    report.results.extend(kept)
    findings = RuleSet.load().evaluate(facts_of(report), DEFAULT_THRESHOLDS)
    shipped = RuleSet.load().rules
    assert sorted(f.rule_id for f in findings) == sorted(shipped)  # every rule says so
    assert all(f.could_not_judge for f in findings)
    (worn,) = [f for f in findings if f.rule_id == "battery.worn"]
    assert worn == not_judged(
        "the report has no battery data",
        "报告中没有电池数据",
        rule_id="battery.worn",
        severity="major",
    )


def test_unreadable_battery_is_not_judged_with_the_probe_error() -> None:
    report = machine_report("laptop-worn-battery")
    (battery,) = [r for r in report.results if r.category == status_pb2.CATEGORY_BATTERY]
    battery.ClearField("battery")
    battery.status = status_pb2.STATUS_ERROR
    battery.error.message = "EIO reading class/power_supply/BAT0/energy_full"
    findings = RuleSet.load().evaluate(facts_of(report), DEFAULT_THRESHOLDS)
    (worn,) = [f for f in findings if f.rule_id == "battery.worn"]
    assert worn == not_judged(
        "battery could not be read: EIO reading class/power_supply/BAT0/energy_full",
        "无法读取电池：EIO reading class/power_supply/BAT0/energy_full",
        rule_id="battery.worn",
        severity="major",
    )


# --- bad input: runtime failures in one rule -----------------------------------------------

BATTERY_FACTS = {"battery": {"name": "BAT0", "health_pct": 62.0, "energy_full_design_wh": 0.0}}


def test_string_compared_with_number_is_not_judged(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, "battery.name > 5")
    (finding,) = rules.evaluate(BATTERY_FACTS, DEFAULT_THRESHOLDS)
    assert finding.could_not_judge.startswith("TypeError: No such overload")
    assert finding == error_not_judged(finding.could_not_judge)


def test_missing_key_is_not_judged(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, "battery.temp_celsius > 50.0")
    assert rules.evaluate(BATTERY_FACTS, DEFAULT_THRESHOLDS) == [
        not_judged("KeyError: 'temp_celsius'", "规则计算出错（KeyError：'temp_celsius'）")
    ]


def test_missing_threshold_for_the_model_is_not_judged(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, 'battery.health_pct < threshold("battery.min_health_pct")')
    partial = {k: v for k, v in DEFAULT_THRESHOLDS.items() if k != "battery.min_health_pct"}
    assert rules.evaluate(BATTERY_FACTS, partial) == [
        not_judged(
            "threshold battery.min_health_pct is not set for this model",
            "本机型没有设置阈值 battery.min_health_pct",
        )
    ]


def test_division_by_zero_in_a_derived_metric_is_not_judged(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, "div(battery.health_pct, battery.energy_full_design_wh) > 1.0")
    (finding,) = rules.evaluate(BATTERY_FACTS, DEFAULT_THRESHOLDS)
    assert "ZeroDivisionError: division by zero in div(62.0, 0.0)" in finding.could_not_judge
    assert finding == error_not_judged(finding.could_not_judge)


def test_integer_division_by_zero_is_not_judged(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, "battery.count % 0 == 1", evidence="")
    facts = {"battery": {"count": 7}}
    (finding,) = rules.evaluate(facts, DEFAULT_THRESHOLDS)
    assert finding == error_not_judged(finding.could_not_judge)
    assert "ZeroDivisionError" in finding.could_not_judge or "modulus" in finding.could_not_judge


def test_condition_that_is_not_a_bool_is_not_judged(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, "battery.health_pct")
    assert rules.evaluate(BATTERY_FACTS, DEFAULT_THRESHOLDS) == [
        not_judged("condition gave 62.0, not true or false", "条件的结果是 62.0，不是真或假")
    ]


def test_evidence_that_is_not_a_finite_number_is_not_judged(tmp_path: Path) -> None:
    # CEL's double arithmetic gives inf instead of failing: a fact that is already infinite
    # (a driver's garbage reading) must not be shown as evidence of a real finding.
    rules = one_rule(tmp_path, "battery.health_pct > 0.0", evidence='x = "battery.health_pct"')
    facts = {"battery": {"health_pct": float("inf")}}
    assert rules.evaluate(facts, DEFAULT_THRESHOLDS) == [
        not_judged(
            "evidence x is not a finite number (division by zero?)",
            "证据 x 不是有限的数值（除以零？）",
        )
    ]


# --- the zh-CN texts of "could not judge" are Chinese, not the English reason ----------------

# The fixed words of every English reason template (rules.RuleSet._judge).
ENGLISH_TEMPLATE_WORDS = (
    "could not be read",
    "the report has no",
    "data",
    "threshold",
    "is not set for this model",
    "condition gave",
    "not true or false",
    "evidence",
    "is not a finite number",
    "division by zero?",
)


def _zh_reason(finding: Finding, *values: str) -> str:
    """The zh-CN text with the reason's values (names, messages taken from the report or
    the error, which stay as they are) cut out: what is left is the template's own words."""
    text = finding.text["zh-CN"]
    assert text.startswith("无法判断："), text
    for value in values:
        assert value in text, f"{value!r} missing from {text!r}"
        text = text.replace(value, "")
    return text


def _assert_chinese(finding: Finding, *values: str) -> None:
    rest = _zh_reason(finding, *values)
    for words in ENGLISH_TEMPLATE_WORDS:
        assert words not in rest, f"English template words {words!r} in zh-CN text {rest!r}"
    assert not re.search(r"[A-Za-z]{2,}", rest), f"an English word in zh-CN text {rest!r}"
    # The English text keeps its English reason, unchanged.
    assert finding.text["en"] == f"Could not judge: {finding.could_not_judge}"


def test_family_names_have_chinese_names() -> None:
    assert sorted(FAMILY_ZH) == sorted(FAMILIES)
    assert all(not re.search(r"[A-Za-z]", name) for name in FAMILY_ZH.values())


def test_no_data_and_unreadable_texts_are_chinese_for_every_shipped_rule() -> None:
    rules = RuleSet.load()
    # No facts at all: every shipped rule, of every family, says the report has no data.
    missing = rules.evaluate({}, DEFAULT_THRESHOLDS)
    assert sorted(f.rule_id for f in missing) == sorted(rules.rules)
    for finding in missing:
        assert finding.text["zh-CN"] == f"无法判断：报告中没有{FAMILY_ZH[finding.family]}数据"
        _assert_chinese(finding)
    # Every family unreadable; the probe's reason is kept as the probe gave it.
    why = "EIO reading class/power_supply/BAT0/energy_full"
    unreadable = rules.evaluate(
        {"unreadable_families": dict.fromkeys(FAMILIES, why)}, DEFAULT_THRESHOLDS
    )
    assert sorted(f.rule_id for f in unreadable) == sorted(rules.rules)
    for finding in unreadable:
        assert finding.text["zh-CN"] == f"无法判断：无法读取{FAMILY_ZH[finding.family]}：{why}"
        _assert_chinese(finding, why)


@pytest.mark.parametrize(
    ("condition", "evidence", "facts", "limits", "values"),
    [
        # A threshold the model does not set: the name stays, the words are Chinese.
        ('battery.health_pct < threshold("battery.min_health_pct")', 'x = "1"', BATTERY_FACTS,
         {}, ("battery.min_health_pct",)),
        # A condition that is not a bool.
        ("battery.name", 'x = "1"', BATTERY_FACTS, None, ("'BAT0'",)),
        # An exception: its type and message are the error's own.
        ("battery.temp_celsius > 50.0", 'x = "1"', BATTERY_FACTS, None,
         ("KeyError", "'temp_celsius'")),
        # Evidence that is not a finite number.
        ("battery.health_pct > 0.0", 'inf_health = "battery.health_pct"',
         {"battery": {"health_pct": float("inf")}}, None, ("inf_health",)),
    ],
)  # fmt: skip
def test_runtime_not_judged_texts_are_chinese(
    tmp_path: Path,
    condition: str,
    evidence: str,
    facts: dict[str, object],
    limits: dict[str, float] | None,
    values: tuple[str, ...],
) -> None:
    rules = one_rule(tmp_path, condition, evidence=evidence)
    (finding,) = rules.evaluate(facts, DEFAULT_THRESHOLDS if limits is None else limits)
    assert finding.could_not_judge
    _assert_chinese(finding, *values)


def test_one_failing_rule_does_not_hide_the_others(tmp_path: Path) -> None:
    write_rules(tmp_path / "r", "a.toml", GOOD_RULE)
    write_rules(
        tmp_path / "r",
        "b.toml",
        GOOD_RULE.replace('"battery.worn"', '"battery.broken"').replace(
            "battery.health_pct <", "battery.name <"
        ),
    )
    findings = RuleSet.load(tmp_path / "r", shipped=False).evaluate(
        BATTERY_FACTS, DEFAULT_THRESHOLDS
    )
    assert [(f.rule_id, bool(f.could_not_judge)) for f in findings] == [
        ("battery.broken", True),
        ("battery.worn", False),
    ]


# --- bad input: rule files refused at load --------------------------------------------------


def load_error(tmp_path: Path, text: str) -> str:
    path = write_rules(tmp_path / "bad", "bad.toml", text)
    with pytest.raises(RuleError) as caught:
        RuleSet.load(tmp_path / "bad", shipped=False)
    message = str(caught.value)
    assert message.startswith(str(path))
    return message


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, GOOD_RULE.replace('severity = "major"', "severity = major"))
    assert "TOML syntax error" in message and "line 5" in message


def test_unknown_field_names_file_line_rule_and_field(tmp_path: Path) -> None:
    message = load_error(tmp_path, GOOD_RULE.replace("action =", 'serverity = "x"\naction ='))
    assert message.startswith(
        f"{tmp_path}/bad/bad.toml:3: rule battery.worn: unknown field serverity"
    )


def test_condition_that_does_not_compile_names_file_line_rule_and_cel_error(
    tmp_path: Path,
) -> None:
    message = load_error(
        tmp_path, GOOD_RULE.replace("battery.health_pct <", "battery.health_pct <<")
    )
    assert message.startswith(
        f"{tmp_path}/bad/bad.toml:3: rule battery.worn: condition does not compile: "
    )
    assert "Syntax error" in message


def test_unknown_threshold_name_is_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, GOOD_RULE.replace("min_health_pct", "min_healt_pct"))
    assert "rule battery.worn: unknown threshold battery.min_healt_pct; known: " in message


def test_threshold_with_a_computed_name_is_refused(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        GOOD_RULE.replace('threshold("battery.min_health_pct")', "threshold(battery.name)"),
    )
    assert "threshold() takes a quoted name" in message


def test_slash_division_is_refused_in_favour_of_div(tmp_path: Path) -> None:
    message = load_error(
        tmp_path, GOOD_RULE.replace("battery.health_pct <", "battery.health_pct / 2.0 <")
    )
    assert "condition uses '/'; write div(a, b) instead" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('severity = "major"', 'severity = "urgent"', "severity 'urgent' is not one of info, "),
        ('family = "battery"', 'family = "screen"', "family 'screen' is not one of battery, "),
        ('"zh-CN" = "电池 {health}%。"', "", "text must have exactly the languages en, zh-CN"),
        ("Battery at {health} %.", "Battery at {healt} %.", "text.en uses {healt} but evidence"),
        ('action = "battery_replacement"', "", "missing field action"),
        ('health = "battery.health_pct"', 'health = "battery.health_pct +"',
         "evidence.health does not compile"),
    ],
)  # fmt: skip
def test_other_rule_mistakes_are_refused(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD_RULE
    assert expected in load_error(tmp_path, GOOD_RULE.replace(old, new))


def test_same_id_twice_in_a_directory_is_refused(tmp_path: Path) -> None:
    write_rules(tmp_path / "bad", "a.toml", GOOD_RULE)
    write_rules(tmp_path / "bad", "b.toml", GOOD_RULE)
    with pytest.raises(
        RuleError, match=r"b\.toml:3: rule battery.worn is also defined at .*a\.toml:3"
    ):
        RuleSet.load(tmp_path / "bad", shipped=False)


def test_shipped_rules_load_and_use_only_known_thresholds() -> None:
    rules = RuleSet.load()
    assert {r.family for r in rules.rules.values()} == {"battery", "storage", "sensors"}
    assert set().union(*(r.thresholds for r in rules.rules.values())) <= set(DEFAULT_THRESHOLDS)


# --- `probelink-server rules check` through the real CLI -----------------------------------


def rules_check(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBELINK_")}
    return subprocess.run(
        [sys.executable, "-m", "probelink.server.cli", "rules", "check", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rules_check_passes_the_shipped_directory() -> None:
    done = rules_check(str(SHIPPED_DIR), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["ok"] is True and out["problems"] == []
    assert out["rules"] == sorted(RuleSet.load().rules)


def test_rules_check_reports_every_bad_file_and_exits_2(tmp_path: Path) -> None:
    write_rules(tmp_path, "good.toml", GOOD_RULE)
    write_rules(tmp_path, "syntax.toml", "[[rule]\n")
    write_rules(tmp_path, "field.toml", GOOD_RULE.replace("action =", 'colour = "red"\naction ='))
    done = rules_check(str(tmp_path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(f"{tmp_path}/field.toml:3: rule battery.worn: unknown field colour")
    assert lines[1].startswith(f"{tmp_path}/syntax.toml: TOML syntax error:")
    assert "line 1" in lines[1]
    as_json = json.loads(rules_check(str(tmp_path), "--json").stdout)
    assert as_json["ok"] is False and len(as_json["problems"]) == 2


def test_rules_check_refuses_an_action_the_catalog_does_not_have(tmp_path: Path) -> None:
    # What `serve --rules-dir` would refuse, `rules check` refuses first.
    write_rules(tmp_path, "local.toml", GOOD_RULE.replace('"battery_replacement"', '"polish"'))
    done = rules_check(str(tmp_path), "--json")
    assert done.returncode == 2
    (problem,) = json.loads(done.stdout)["problems"]
    assert problem.startswith(
        f"{tmp_path}/local.toml:3: rule battery.worn recommends unknown action 'polish' "
        "(actions in the catalog: battery_inspection, battery_replacement,"
    )


# --- pruning the facts handed to CEL --------------------------------------------------

PRUNING_CASES = [
    ("laptop-worn-battery", ()),
    ("laptop-worn-battery", ("ata-reallocated",)),
    ("laptop-worn-battery", ("ata-crc-errors",)),
    ("laptop-worn-battery", ("nvme-worn",)),
    ("laptop-worn-battery", ("nvme-critical-warning",)),
    ("laptop-worn-battery", ("open-failed",)),
    ("desktop-no-battery", ("scsi-grown-defects", "ata-standby")),
    ("phone-charge-units", ()),
    ("board-iio-typec", ()),
]


@pytest.mark.parametrize(("machine", "smartctl"), PRUNING_CASES)
def test_the_shipped_rules_judge_alike_with_and_without_pruning(
    machine: str, smartctl: tuple[str, ...]
) -> None:
    # The shipped rules get only the keys their expressions name (for speed); that must
    # never change a finding, its evidence or a could-not-judge.
    shipped = RuleSet.load()
    whole = RuleSet(shipped.rules.values(), shipped.version, prune=False)
    facts = facts_of(machine_report(machine, *smartctl))
    assert shipped.evaluate(facts, DEFAULT_THRESHOLDS) == whole.evaluate(facts, DEFAULT_THRESHOLDS)


def test_an_operators_rules_see_whole_maps(tmp_path: Path) -> None:
    # size() of a map counts keys no expression names: pruned, it would count fewer.
    write_rules(
        tmp_path,
        "local.toml",
        GOOD_RULE.replace(
            'battery.health_pct < threshold("battery.min_health_pct")', "size(battery) > 5"
        ),
    )
    rules = RuleSet.load(tmp_path)
    facts = facts_of(machine_report("laptop-worn-battery"))
    assert len(facts["battery"]) > 5
    fired = [f.rule_id for f in rules.evaluate(facts, DEFAULT_THRESHOLDS) if not f.could_not_judge]
    assert "battery.worn" in fired
