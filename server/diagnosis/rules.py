"""Diagnosis rules as data: TOML files of CEL conditions, compiled once, judged per report.

A rule file holds ``[[rule]]`` tables::

    [[rule]]
    id = "battery.worn"
    family = "battery"                # the facts key the rule reads (see facts.py)
    severity = "major"                # info | advisory | minor | major | critical
    condition = 'battery.health_pct < threshold("battery.min_health_pct")'
    action = "battery_replacement"
    [rule.evidence]                   # name → CEL expression, shown in the text
    health = "battery.health_pct"
    [rule.text]
    en = "The battery holds {health} % of its design capacity."
    "zh-CN" = "电池容量为设计容量的 {health}%。"

Use it so::

    rules = RuleSet.load()                          # shipped rules (+ an operator's directory)
    findings = rules.evaluate(facts_of(report), DEFAULT_THRESHOLDS)

Two functions are added to CEL: `threshold(name)` reads the model's thresholds (names are
checked against `thresholds.KNOWN_THRESHOLDS` at load), and `div(a, b)` divides. The `/`
operator is refused at load because CEL's double division by zero gives infinity, which
compares like a number and would let a broken derived metric pass silently; `div` fails.

Everything wrong with a rule file is a `RuleError` at load naming the file, line, rule and
fix, so a server with a bad rule-set refuses to start. Everything that goes wrong while
judging one report (a type error, a division by zero, a missing key or threshold, a family
the report lacks) is a `Finding` marked `could_not_judge` for that rule: never an exception,
never a silent pass.
"""

from __future__ import annotations

import hashlib
import math
import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import cel

from probelink.server.diagnosis.facts import FAMILIES, FAMILY_ZH, Facts
from probelink.server.diagnosis.thresholds import KNOWN_THRESHOLDS, Thresholds
from probelink.server.errors import InvalidArgument

SEVERITIES: Final = ("info", "advisory", "minor", "major", "critical")
LANGUAGES: Final = ("en", "zh-CN")
SHIPPED_DIR: Final = Path(__file__).parent / "rules"

_FIELDS: Final = frozenset(
    {"id", "family", "severity", "condition", "evidence", "text", "action", "description"}
)
_REQUIRED: Final = ("id", "family", "severity", "condition", "text", "action")
_ID = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
# threshold("name") with a literal name: the only form allowed, so every name is known at load.
_THRESHOLD_CALL = re.compile(r"""\bthreshold\s*\(\s*(?:"([^"]*)"|'([^']*)')\s*\)""")
_ANY_THRESHOLD_CALL = re.compile(r"\bthreshold\s*\(")


class RuleError(InvalidArgument):
    """A rule file that cannot be used; the message names the file, line, rule and fix."""


@dataclass(frozen=True)
class Finding:
    """What one rule concluded about one report.

    `could_not_judge` is empty for a real finding; otherwise it says why the rule could not
    decide (then `evidence` is empty and `text` says so in each language).
    """

    rule_id: str
    family: str
    severity: str
    text: dict[str, str]
    evidence: dict[str, Any]
    action: str
    could_not_judge: str = ""


@dataclass(frozen=True)
class Rule:
    """One validated, compiled rule."""

    id: str
    family: str
    severity: str
    condition: str
    text: dict[str, str]
    action: str
    evidence: dict[str, str] = field(default_factory=dict)
    source: str = ""  # "file:line", for messages
    thresholds: frozenset[str] = frozenset()
    program: Any = field(default=None, repr=False, compare=False)
    evidence_programs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _line_of(text: str, rule_id: str) -> int:
    """The line of the rule's `id = "..."`: tomllib gives no positions, the file does."""
    pattern = re.compile(r"""^\s*id\s*=\s*["']""" + re.escape(rule_id) + r"""["']""")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return 0


def _compile(expression: object, where: str, what: str) -> Any:
    if not isinstance(expression, str) or not expression.strip():
        raise RuleError(f"{where}: {what} must be a non-empty CEL string")
    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError, TypeError) as err:
        raise RuleError(f"{where}: {what} does not compile: {err}") from None
    if "_/_" in program.functions():
        raise RuleError(
            f"{where}: {what} uses '/'; write div(a, b) instead, which fails on a zero "
            "divisor where '/' would give infinity and judge it as a number"
        )
    return program


def div(a: float, b: float) -> float:
    """CEL `div(a, b)`: a / b, raising on a zero divisor (see the module docstring)."""
    if b == 0:
        raise ZeroDivisionError(f"division by zero in div({a!r}, {b!r})")
    return a / b


def _threshold_names(expression: str, where: str) -> set[str]:
    names = {a or b for a, b in _THRESHOLD_CALL.findall(expression)}
    if len(_ANY_THRESHOLD_CALL.findall(expression)) != len(_THRESHOLD_CALL.findall(expression)):
        raise RuleError(
            f'{where}: threshold() takes a quoted name, e.g. threshold("battery.min_health_pct")'
        )
    unknown = sorted(names - KNOWN_THRESHOLDS)
    if unknown:
        raise RuleError(
            f"{where}: unknown threshold {', '.join(unknown)}; "
            f"known: {', '.join(sorted(KNOWN_THRESHOLDS))} (thresholds.py is the one list)"
        )
    return names


def _rule(raw: object, path: Path, text: str, index: int) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"{path}: [[rule]] number {index + 1} is not a table")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise RuleError(
            f"{path}: [[rule]] number {index + 1}: id must be a dotted lower-case name "
            f'like "battery.worn", got {rule_id!r}'
        )
    where = f"{path}:{_line_of(text, rule_id)}: rule {rule_id}"
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise RuleError(
            f"{where}: unknown field {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}"
        )
    missing = [name for name in _REQUIRED if name not in raw]
    if missing:
        raise RuleError(f"{where}: missing field {', '.join(missing)}")
    family, severity, action = raw["family"], raw["severity"], raw["action"]
    if family not in FAMILIES:
        raise RuleError(f"{where}: family {family!r} is not one of {', '.join(FAMILIES)}")
    if severity not in SEVERITIES:
        raise RuleError(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    if not isinstance(action, str) or not _ID.match(action):
        raise RuleError(f'{where}: action must be an action id like "battery_replacement"')
    evidence = raw.get("evidence", {})
    if not isinstance(evidence, dict) or not all(isinstance(v, str) for v in evidence.values()):
        raise RuleError(f"{where}: evidence must be a table of name = CEL expression")
    texts = raw["text"]
    if not isinstance(texts, dict) or sorted(texts) != sorted(LANGUAGES):
        raise RuleError(f"{where}: text must have exactly the languages {', '.join(LANGUAGES)}")
    for lang, message in texts.items():
        if not isinstance(message, str):
            raise RuleError(f"{where}: text.{lang} must be a string")
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(message) if name}
        except ValueError as err:
            raise RuleError(f"{where}: text.{lang} is not a valid template: {err}") from None
        if names - set(evidence):
            missing_names = ", ".join(sorted(names - set(evidence)))
            raise RuleError(
                f"{where}: text.{lang} uses {{{missing_names}}} but evidence has no such name"
            )
    condition = raw["condition"]
    program = _compile(condition, where, "condition")
    programs = {name: _compile(expr, where, f"evidence.{name}") for name, expr in evidence.items()}
    used = _threshold_names(condition, where)
    for expr in evidence.values():
        used |= _threshold_names(expr, where)
    return Rule(
        id=rule_id,
        family=family,
        severity=severity,
        condition=condition,
        text=dict(texts),
        action=action,
        evidence=dict(evidence),
        source=where.rsplit(": rule", 1)[0],
        thresholds=frozenset(used),
        program=program,
        evidence_programs=programs,
    )


def load_file(path: Path) -> list[Rule]:
    """The rules of one TOML file, validated and compiled; `RuleError` names what is wrong."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        # tomllib's message ends "(at line N, column M)": the line is already named.
        raise RuleError(f"{path}: TOML syntax error: {err}") from None
    extra = sorted(set(data) - {"rule"})
    if extra:
        raise RuleError(f"{path}: unknown top-level key {', '.join(extra)}; use [[rule]] tables")
    raws = data.get("rule", [])
    if not isinstance(raws, list):
        raise RuleError(f"{path}: rules must be [[rule]] tables (an array of tables)")
    rules = [_rule(raw, path, text, i) for i, raw in enumerate(raws)]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise RuleError(f"{rule.source}: rule {rule.id} is defined twice in this file")
        seen.add(rule.id)
    return rules


def _show(value: Any) -> str:
    """An evidence value as text: 62.0 → "62", 62.25 → "62.2", lists joined with commas."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.1f}".removesuffix(".0")
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    return str(value)


def _bad_number(value: Any) -> bool:
    """inf or NaN anywhere in a value: CEL's double division by zero gives these, not an error."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_bad_number(v) for v in value)
    if isinstance(value, dict):
        return any(_bad_number(v) for v in value.values())
    return False


class RuleSet:
    """Rules by id, compiled once; `evaluate` judges one report's facts with them."""

    def __init__(self, rules: Iterable[Rule], version: str = "", *, prune: bool = True) -> None:
        self.rules: dict[str, Rule] = {rule.id: rule for rule in rules}
        self.version = version
        self._ordered = sorted(self.rules.values(), key=lambda r: r.id)
        # Only the facts some rule reads go into the CEL context: converting the rest (every
        # port and sensor) would cost more than judging.
        #: Every variable some expression reads (families, and comprehension variables).
        self.reads = self._reads = frozenset(
            name
            for rule in self._ordered
            for program in (rule.program, *rule.evidence_programs.values())
            for name in program.variables()
        )
        #: The families the rules judge: facts of other families need not be made.
        self.families = frozenset(rule.family for rule in self._ordered)
        # And within those facts, only the keys some expression can name; handing CEL the
        # whole of every map costs more than all the rules together (bench/diagnosis.py).
        # Only for rules known to read keys by name alone: `size(battery)`, a loop over a
        # map's keys or `==` on a whole map would see the pruned map, so an operator's
        # rules (`prune=False`) get every key.
        self._prune = prune
        self._fields = frozenset(
            name
            for rule in self._ordered
            for source in (rule.condition, *rule.evidence.values())
            for name in _named_keys(source)
        )

    @classmethod
    def load(cls, directory: Path | None = None, *, shipped: bool = True) -> RuleSet:
        """The shipped rules, then `directory`'s `*.toml`, whose rules replace shipped ones by id.

        With `shipped=False` only `directory` is read (what `rules check DIR` validates).
        Raises `RuleError` on the first bad file, rule or expression.
        """
        dirs: list[Path] = [SHIPPED_DIR] if shipped else []
        if directory is not None:
            if not directory.is_dir():
                raise RuleError(f"{directory}: not a directory of rule files")
            dirs.append(directory)
        digest = hashlib.sha256()
        merged: dict[str, Rule] = {}
        for folder in dirs:
            in_folder: dict[str, Rule] = {}
            for path in sorted(folder.glob("*.toml")):
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
                for rule in load_file(path):
                    if rule.id in in_folder:
                        raise RuleError(
                            f"{rule.source}: rule {rule.id} is also defined at "
                            f"{in_folder[rule.id].source}; an id is defined once per directory"
                        )
                    in_folder[rule.id] = rule
            merged |= in_folder
        # The shipped rules are tested to judge alike with and without pruning.
        return cls(merged.values(), version=digest.hexdigest()[:16], prune=directory is None)

    def evaluate(self, facts: Facts, thresholds: Thresholds) -> list[Finding]:
        """Every rule that fired or could not judge, in rule-id order."""
        limits = dict(thresholds)

        def threshold(name: str) -> float:
            return limits[name]

        fields = self._fields
        variables = {
            name: _only_keys(value, fields) if self._prune else value
            for name, value in facts.items()
            if name in self._reads
        }
        context = cel.Context(variables=variables, functions={"threshold": threshold, "div": div})
        out: list[Finding] = []
        for rule in self._ordered:
            finding = self._judge(rule, facts, limits, context)
            if finding is not None:
                out.append(finding)
        return out

    @staticmethod
    def _judge(
        rule: Rule, facts: Facts, limits: Mapping[str, float], context: cel.Context
    ) -> Finding | None:
        if rule.family not in facts:
            if rule.family in facts.get("absent_families", {}):
                return None  # no such hardware: the rule does not apply
            why = facts.get("unreadable_families", {}).get(rule.family)
            family_zh = FAMILY_ZH.get(rule.family, rule.family)
            if why:
                return _not_judged(
                    rule,
                    f"{rule.family} could not be read: {why}",
                    f"无法读取{family_zh}：{why}",
                )
            return _not_judged(
                rule, f"the report has no {rule.family} data", f"报告中没有{family_zh}数据"
            )
        missing = sorted(rule.thresholds - set(limits))
        if missing:
            names = ", ".join(missing)
            return _not_judged(
                rule,
                f"threshold {names} is not set for this model",
                f"本机型没有设置阈值 {names}",
            )
        try:
            verdict = rule.program.execute(context)
            if not isinstance(verdict, bool):
                return _not_judged(
                    rule,
                    f"condition gave {verdict!r}, not true or false",
                    f"条件的结果是 {verdict!r}，不是真或假",
                )
            if not verdict:
                return None
            evidence = {name: p.execute(context) for name, p in rule.evidence_programs.items()}
        except Exception as err:
            # cel raises TypeError, KeyError, ZeroDivisionError, RuntimeError (and whatever a
            # function raised) for one report's data: that rule could not judge; others go on.
            return _not_judged(
                rule, f"{type(err).__name__}: {err}", f"规则计算出错（{type(err).__name__}：{err}）"
            )
        bad = sorted(name for name, value in evidence.items() if _bad_number(value))
        if bad:
            names = ", ".join(bad)
            return _not_judged(
                rule,
                f"evidence {names} is not a finite number (division by zero?)",
                f"证据 {names} 不是有限的数值（除以零？）",
            )
        shown = {name: _show(value) for name, value in evidence.items()}
        return Finding(
            rule_id=rule.id,
            family=rule.family,
            severity=rule.severity,
            text={lang: template.format(**shown) for lang, template in rule.text.items()},
            evidence=evidence,
            action=rule.action,
        )


# Every way an expression can name a map key: `x.key`, `has(x.key)`, `x["key"]` and
# `"key" in x` (any string literal is taken as a possible key: a superset is safe).
_DOTTED_NAME = re.compile(r"\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_STRING_LITERAL = re.compile(r"""(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def _named_keys(source: str) -> set[str]:
    names = set(_DOTTED_NAME.findall(source))
    for double, single in _STRING_LITERAL.findall(source):
        names.add(double or single)
    return names


def _only_keys(value: Any, keys: frozenset[str]) -> Any:
    """`value` with every map keeping only `keys` (lists and scalars as they are)."""
    if isinstance(value, dict):
        return {k: _only_keys(v, keys) for k, v in value.items() if k in keys}
    if isinstance(value, list):
        return [_only_keys(v, keys) for v in value]
    return value


def _not_judged(rule: Rule, reason: str, reason_zh: str) -> Finding:
    return Finding(
        rule_id=rule.id,
        family=rule.family,
        severity=rule.severity,
        text={"en": f"Could not judge: {reason}", "zh-CN": f"无法判断：{reason_zh}"},
        evidence={},
        action=rule.action,
        could_not_judge=reason,
    )


def check_directory(directory: Path) -> list[str]:
    """Every problem in `directory`'s rule files (one per bad file); empty when all are good."""
    if not directory.is_dir():
        return [f"{directory}: not a directory of rule files"]
    problems: list[str] = []
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        return [f"{directory}: no *.toml rule files"]
    for path in paths:
        try:
            load_file(path)
        except RuleError as err:
            problems.append(str(err))
    if not problems:
        try:
            RuleSet.load(directory, shipped=False)
        except RuleError as err:
            problems.append(str(err))
    return problems
