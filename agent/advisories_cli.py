"""`probelink-agent advisories`: what the service network told this device, and `ack`.

    probelink-agent advisories                    # the ones not yet acknowledged, a table
    probelink-agent advisories --all --lang zh-CN # acknowledged ones too, marked; in Chinese
    probelink-agent advisories --json             # every field, for machines
    probelink-agent advisories ack ADVISORY_ID    # read it: it stops showing

The daemon keeps what the server sends in `advisories.db` in the state dir
(`probelink.agent.advisories`); these commands only read that file, and `ack` marks one
read. Nothing here talks to the server: it never sends an advisory the agent confirmed
again, so acknowledging is the person's business, not the server's.

`check` ends with the same table (`print_advisories`) when there are any, and its
`--json` carries them (`advisories_json`). Neither makes a state dir or a file that is
not there: a machine that never ran the daemon has no advisories.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from probelink.agent.advisories import (
    ADVISORIES_FILE,
    AdvisoryError,
    AdvisoryStore,
    KeptAdvisory,
    UnknownAdvisory,
)
from probelink.agent.state import STATE_ENV, daemon_state_dir

EXIT_OK, EXIT_USAGE = 0, 2


class Lang(StrEnum):
    en = "en"
    zh_CN = "zh-CN"


# What a person reads, by language. The advisories' own text comes from the server.
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "heading": "Advisories from the service network",
        "none": "No advisories from the service network.",
        "raised": "raised",
        "severity": "severity",
        "advisory": "advisory",
        "id": "id",
        "acknowledged": "acknowledged {date}",
        "hint": "To stop showing one you have read: probelink-agent advisories ack ID",
        "acked": "Acknowledged advisory {id}; it will not show again.",
        "already": "Advisory {id} was already acknowledged on {date}; it does not show.",
        "unknown": "no advisory {id!r} is kept in {path}; `probelink-agent advisories --all` "
        "lists the ones this device has",
        "unreadable": "The advisories cannot be read: {error}",
    },
    "zh-CN": {
        "heading": "服务网络的提醒",
        "none": "服务网络没有发来提醒。",
        "raised": "时间",
        "severity": "级别",
        "advisory": "内容",
        "id": "编号",
        "acknowledged": "{date} 已确认",
        "hint": "读过的提醒可以确认，之后不再显示：probelink-agent advisories ack 编号",
        "acked": "已确认提醒 {id}，之后不再显示。",
        "already": "提醒 {id} 已于 {date} 确认，不再显示。",
        "unknown": "本设备没有编号为 {id!r} 的提醒（{path}）；"
        "用 `probelink-agent advisories --all` 列出本设备的提醒",
        "unreadable": "无法读取提醒：{error}",
    },
}
_SEVERITY_WORDS = {
    "zh-CN": {
        "info": "信息",
        "advisory": "建议",
        "minor": "轻微",
        "major": "严重",
        "critical": "紧急",
    }
}
# Colour carries the severity, the word says it too (a log file, a colour-blind reader).
_SEVERITY_STYLE = {
    "critical": "bold red",
    "major": "red",
    "minor": "yellow",
    "advisory": "cyan",
    "info": "",
}

StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar=STATE_ENV,
        help="The agent's state dir, where the daemon keeps advisories.db "
        "(default: $PROBELINK_AGENT_STATE, XDG state).",
        file_okay=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
LangOpt = Annotated[Lang, typer.Option("--lang", help="The language to print in.")]

app = typer.Typer(
    help="What the service network told this device, before you had to ask.",
    add_completion=False,
    pretty_exceptions_enable=False,
)


def read_kept(state_dir: Path, include_acknowledged: bool = False) -> list[KeptAdvisory]:
    """The kept advisories; [] when the daemon never kept one. Creates nothing."""
    store = AdvisoryStore.open_existing(state_dir)
    if store is None:
        return []
    with store:
        return store.list(include_acknowledged)


def print_advisories(
    console: Console, kept: list[KeptAdvisory], lang: str = "en", heading: bool = False
) -> None:
    """The calm table (or the one line saying there are none)."""
    words = _WORDS[lang]
    if not kept:
        console.print(words["none"], markup=False, highlight=False)
        return
    table = Table(
        title=words["heading"] if heading else None,
        title_justify="left",
        title_style="bold",
        expand=True,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column(words["raised"], no_wrap=True)
    table.add_column(words["severity"], no_wrap=True)
    table.add_column(words["advisory"], ratio=1, overflow="fold")
    for a in kept:
        when = a.raised_at or a.received_at
        severity = _SEVERITY_WORDS.get(lang, {}).get(a.severity, a.severity)
        style = "dim" if a.acknowledged else _SEVERITY_STYLE.get(a.severity, "")
        # The id on a line of its own under the text: `ack` needs it whole, and a
        # column of its own would fold a long id or squeeze the text.
        under = escape(a.advisory_id)
        if a.acknowledged_at is not None:
            under += " · " + words["acknowledged"].format(date=_date(a.acknowledged_at))
        # The server's words: never markup.
        table.add_row(
            _date(when),
            f"[{style}]{escape(severity)}[/]" if style else escape(severity),
            f"{escape(a.text_in(lang))}\n[dim]{under}[/dim]",
        )
    console.print(table)
    if any(not a.acknowledged for a in kept):
        console.print(f"[dim]{escape(words['hint'])}[/dim]")


def advisories_json(kept: list[KeptAdvisory]) -> list[dict[str, Any]]:
    return [a.as_json() for a in kept]


def for_check(state_dir: Path) -> list[KeptAdvisory]:
    """The unacknowledged advisories `check` shows; [] (with a note) if unreadable."""
    try:
        return read_kept(state_dir)
    except AdvisoryError as err:
        # `check` is about the hardware: a damaged advisories file must not fail it.
        Console(stderr=True, highlight=False).print(
            f"[dim]{escape(_WORDS['en']['unreadable'].format(error=err))}[/dim]"
        )
        return []


@app.callback(invoke_without_command=True)
def advisories(
    ctx: typer.Context,
    json_out: JsonOpt = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list the acknowledged ones, marked.")
    ] = False,
    lang: LangOpt = Lang.en,
    state_dir: StateDirOpt = None,
) -> None:
    """List the advisories not yet acknowledged (--all: every kept one)."""
    if ctx.invoked_subcommand is not None:
        # `advisories --state-dir D ack ID` means D too: the options given before the
        # subcommand are its defaults.
        ctx.obj = _GroupOptions(state_dir, lang, json_out)
        return
    root = state_dir or daemon_state_dir()
    try:
        kept = read_kept(root, include_acknowledged=show_all)
    except AdvisoryError as err:
        _fail(_WORDS[lang.value]["unreadable"].format(error=err))
    if json_out:
        sys.stdout.write(json.dumps(advisories_json(kept), indent=2, ensure_ascii=False) + "\n")
    else:
        print_advisories(Console(), kept, lang.value)
    raise typer.Exit(EXIT_OK)


@app.command("ack")
def ack(
    advisory_id: Annotated[
        str, typer.Argument(help="The advisory's id, as listed.", metavar="ADVISORY_ID")
    ],
    ctx: typer.Context,
    json_out: JsonOpt = False,
    lang: Annotated[
        Lang | None, typer.Option("--lang", help="The language to print in.", show_default="en")
    ] = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Acknowledge an advisory: it stops showing (the first time is kept)."""
    group = ctx.obj if isinstance(ctx.obj, _GroupOptions) else _GroupOptions()
    root = state_dir or group.state_dir or daemon_state_dir()
    json_out = json_out or group.json_out
    words = _WORDS[(lang or group.lang).value]
    try:
        store = AdvisoryStore.open_existing(root)
        if store is None:
            raise UnknownAdvisory(advisory_id, root / ADVISORIES_FILE)
        with store:
            before = store.get(advisory_id)
            done = store.acknowledge(advisory_id, datetime.now(UTC))
    except UnknownAdvisory:
        _fail(words["unknown"].format(id=advisory_id, path=root / ADVISORIES_FILE))
    except AdvisoryError as err:
        _fail(words["unreadable"].format(error=err))
    if json_out:
        sys.stdout.write(json.dumps(done.as_json(), indent=2, ensure_ascii=False) + "\n")
    elif before.acknowledged_at is not None:
        print(words["already"].format(id=advisory_id, date=_date(before.acknowledged_at)))
    else:
        print(words["acked"].format(id=advisory_id))


@dataclass(frozen=True)
class _GroupOptions:
    state_dir: Path | None = None
    lang: Lang = Lang.en
    json_out: bool = False


def _fail(message: str) -> NoReturn:
    Console(stderr=True, highlight=False).print(
        f"probelink-agent: {message}", markup=False, soft_wrap=True
    )
    raise typer.Exit(EXIT_USAGE)


def _date(when: datetime | None) -> str:
    """The local date a person reads (the JSON keeps the exact UTC time)."""
    return when.astimezone().strftime("%Y-%m-%d") if when else ""
