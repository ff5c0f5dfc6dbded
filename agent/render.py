"""Terminal rendering of a self-check: a calm table per family and the verdict.

    >>> render_report(Console(), report)

Colour carries the status, but every status is also a word, so the table reads the
same in a log file or for a colour-blind reader.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from probelink.agent.verdict import verdict
from probelink.probes.results import ERROR, FAIL, PASS, SKIP, WARN
from probelink.v1 import probe_pb2, report_pb2, status_pb2

STATUS_STYLE = {
    PASS: ("PASS", "green"),
    WARN: ("WARN", "yellow"),
    FAIL: ("FAIL", "bold red"),
    SKIP: ("SKIP", "dim"),
    ERROR: ("ERROR", "magenta"),
}

FAMILY_TITLE = {
    status_pb2.CATEGORY_BATTERY: "Battery",
    status_pb2.CATEGORY_STORAGE: "Storage",
    status_pb2.CATEGORY_SENSORS: "Sensors",
    status_pb2.CATEGORY_PORTS: "Ports",
    status_pb2.CATEGORY_SYSTEM: "System",
    status_pb2.CATEGORY_FIRMWARE: "Firmware",
}


def status_text(status: status_pb2.Status.ValueType) -> Text:
    word, style = STATUS_STYLE.get(status, ("?", ""))
    return Text(word, style=style)


def _family_table(title: str, results: Iterable[probe_pb2.ProbeResult]) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        expand=True,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("status", width=6, no_wrap=True)
    table.add_column("check", ratio=2, overflow="fold")
    table.add_column("what was found", ratio=5, overflow="fold")
    for r in results:
        name = r.probe.split(".", 1)[-1]
        label = f"{name} [dim]{r.subject}[/dim]" if r.subject else name
        detail = Text(r.evidence)
        for c in r.checks:
            if c.status in (WARN, FAIL):
                detail.append(f"\n• {c.message}", style=STATUS_STYLE[c.status][1])
        table.add_row(status_text(r.status), label, detail)
    return table


def render_report(
    console: Console, report: report_pb2.Report, *, show_skipped: bool = True
) -> None:
    by_family: dict[status_pb2.Category.ValueType, list[probe_pb2.ProbeResult]] = {}
    for r in report.results:
        if show_skipped or r.status != SKIP:
            by_family.setdefault(r.category, []).append(r)
    for category, results in sorted(by_family.items()):
        console.print(_family_table(FAMILY_TITLE.get(category, "Other"), results))
        console.print()
    render_verdict(console, report)


def render_verdict(console: Console, report: report_pb2.Report) -> None:
    v = verdict(report)
    style = STATUS_STYLE[v.overall][1] if v.overall in STATUS_STYLE else "cyan"
    counts = Text(
        f"{v.passed} passed · {v.warned} to watch · {v.failed} failed · "
        f"{v.skipped} not applicable · {v.errored} could not run",
        style="dim",
    )
    console.print(
        Panel(
            Group(Text(v.headline, style="bold"), Text(v.advice), counts),
            border_style=style,
            expand=False,
        )
    )
