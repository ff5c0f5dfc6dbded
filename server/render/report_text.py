"""A stored report as calm text for a person: who sent what, when, and what it found.

    render_report(Console(), response.summary, response.report)

A header (ids, device, kind, times, the overall verdict in plain words, stored vs raw
size, whether the device's signature was verified and with which key, and any reports
the device's spool had to drop), then one table per category: probe, subject, status,
evidence. Colour carries
the status, but every status is also a word, so it reads the same in a log file or for
a colour-blind reader. The server has its own renderer: it never imports the agent.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import TypeAlias

from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table
from rich.text import Text

from probelink.v1 import probe_pb2, report_pb2, reports_pb2, status_pb2

Status: TypeAlias = status_pb2.Status.ValueType

STATUS_STYLE: dict[Status, tuple[str, str]] = {
    status_pb2.STATUS_PASS: ("PASS", "green"),
    status_pb2.STATUS_WARN: ("WARN", "yellow"),
    status_pb2.STATUS_FAIL: ("FAIL", "bold red"),
    status_pb2.STATUS_SKIP: ("SKIP", "dim"),
    status_pb2.STATUS_ERROR: ("ERROR", "magenta"),
}

# The overall verdict: only PASS, WARN and FAIL judge hardware (status.proto).
VERDICT_WORDS: dict[Status, str] = {
    status_pb2.STATUS_PASS: "healthy: every check that could judge passed",
    status_pb2.STATUS_WARN: "working, with something to keep an eye on",
    status_pb2.STATUS_FAIL: "needs attention: a check failed",
}
NOT_JUDGED = "not judged: no check could read the hardware"

CATEGORY_TITLE: dict[status_pb2.Category.ValueType, str] = {
    status_pb2.CATEGORY_BATTERY: "Battery",
    status_pb2.CATEGORY_STORAGE: "Storage",
    status_pb2.CATEGORY_SENSORS: "Sensors",
    status_pb2.CATEGORY_PORTS: "Ports",
    status_pb2.CATEGORY_SYSTEM: "System",
    status_pb2.CATEGORY_FIRMWARE: "Firmware",
}

KIND_WORDS: dict[report_pb2.ReportKind.ValueType, str] = {
    report_pb2.REPORT_KIND_SELF_CHECK: "self-check",
    report_pb2.REPORT_KIND_INTAKE: "service intake",
    report_pb2.REPORT_KIND_SCHEDULED: "scheduled",
    report_pb2.REPORT_KIND_LIVE: "live telemetry",
    report_pb2.REPORT_KIND_REMOTE_REQUEST: "remote request",
}

ERROR_WORDS: dict[probe_pb2.ProbeErrorKind.ValueType, str] = {
    probe_pb2.PROBE_ERROR_KIND_FILE_READ: "could not read",
    probe_pb2.PROBE_ERROR_KIND_PARSE: "could not parse",
    probe_pb2.PROBE_ERROR_KIND_MISSING_UTILITY: "missing utility",
    probe_pb2.PROBE_ERROR_KIND_UNAVAILABLE: "unavailable",
    probe_pb2.PROBE_ERROR_KIND_TIMEOUT: "timed out",
    probe_pb2.PROBE_ERROR_KIND_INTERNAL: "internal error",
    probe_pb2.PROBE_ERROR_KIND_RESOURCE_LIMIT: "over its resource limit",
    probe_pb2.PROBE_ERROR_KIND_CANCELLED: "cancelled",
}


def status_text(status: Status) -> Text:
    """A status as a coloured word: PASS, WARN, FAIL, SKIP, ERROR (or '-' for none)."""
    word, style = STATUS_STYLE.get(status, ("-", "dim"))
    return Text(word, style=style)


def verdict_text(overall: Status) -> Text:
    """The overall verdict in plain words, coloured like its status."""
    words = VERDICT_WORDS.get(overall, NOT_JUDGED)
    return Text(words, style=STATUS_STYLE.get(overall, ("", "cyan"))[1])


def kind_words(kind: report_pb2.ReportKind.ValueType) -> str:
    return KIND_WORDS.get(kind, "unspecified")


def format_time(ts: Timestamp) -> str:
    """`2025-06-01 00:00:00 UTC`, or `-` when unset (one zone for every reader)."""
    if ts.seconds == 0 and ts.nanos == 0:
        return "-"
    moment = datetime.datetime.fromtimestamp(ts.seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_bytes(count: int) -> str:
    """`812 B`, `14.3 KiB`, `1.0 MiB`."""
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def _duration(summary: reports_pb2.ReportSummary) -> str:
    started = summary.started_at.ToMicroseconds()
    finished = summary.finished_at.ToMicroseconds()
    if not summary.started_at.seconds or finished < started:
        return ""
    return f" (took {(finished - started) / 1e6:.1f} s)"


def _storage(summary: reports_pb2.ReportSummary) -> str:
    stored, raw = summary.stored_bytes, summary.report_bytes
    share = f" ({stored * 100 / raw:.0f} %)" if raw else ""
    codec = (
        f"zstd with dictionary {summary.dictionary_id}"
        if summary.dictionary_id
        else "zstd, no dictionary"
    )
    return f"{format_bytes(stored)} of {format_bytes(raw)}{share}, {codec}"


def signature_text(summary: reports_pb2.ReportSummary) -> Text:
    """What the server found checking the device's signature, with the key's id."""
    if summary.signature == reports_pb2.SIGNATURE_VERDICT_VERIFIED:
        return Text(
            f"verified when stored, with the device's key {summary.signing_key}", style="green"
        )
    return Text("not checked: stored before this server verified signatures", style="yellow")


def signature_word(summary: reports_pb2.ReportSummary) -> Text:
    """The verdict in one word, for a table column."""
    if summary.signature == reports_pb2.SIGNATURE_VERDICT_VERIFIED:
        return Text("verified", style="green")
    return Text("-", style="dim")


def _evicted(count: int) -> Text:
    noun = "report" if count == 1 else "reports"
    return Text(
        f"the device's spool dropped {count} {noun} unsent before this one (full); "
        "they will never arrive",
        style="yellow",
    )


def _counts(summary: reports_pb2.ReportSummary) -> str:
    return (
        f"{summary.result_count} results · {summary.fail_count} failed · "
        f"{summary.warn_count} to watch · {summary.error_count} could not run"
    )


def header(
    summary: reports_pb2.ReportSummary,
    report: report_pb2.Report,
    extra: Sequence[tuple[str, Text]] = (),
) -> Table:
    """The report's facts as a two-column grid; `extra` rows go last."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    device = " ".join(p for p in (summary.manufacturer, summary.model) if p) or "unknown model"
    rows: list[tuple[str, str | Text]] = [
        ("report", summary.report_id),
        ("device", f"{summary.device_id}  ({device})"),
        ("kind", kind_words(summary.kind)),
        ("agent", summary.agent_version or "-"),
        ("ran", f"{format_time(summary.started_at)}{_duration(summary)}"),
        ("received", format_time(summary.received_at)),
        ("verdict", verdict_text(summary.overall)),
        ("results", _counts(summary)),
        ("stored", _storage(summary)),
        ("signed", signature_text(summary)),
    ]
    if summary.spool_evicted:
        rows.append(("evicted", _evicted(summary.spool_evicted)))
    rows.extend(extra)
    firmware = ", ".join(f"{f.component} {f.version}" for f in report.device.firmware)
    if firmware:
        rows.insert(2, ("firmware", firmware))
    for name, value in rows:
        # Text, not str: what a device sent is its words, never rich markup.
        grid.add_row(name, value if isinstance(value, Text) else Text(value))
    return grid


def _evidence(result: probe_pb2.ProbeResult) -> Text:
    detail = Text(result.evidence)
    if result.HasField("error"):
        error = result.error
        words = ERROR_WORDS.get(error.kind, "error")
        line = f"{words}: {error.message}" if error.message else words
        if error.source:
            line += f" ({error.source})"
        detail.append(("\n" if detail else "") + line, style="magenta")
    for check in result.checks:
        if check.status in (status_pb2.STATUS_WARN, status_pb2.STATUS_FAIL):
            detail.append(
                ("\n" if detail else "") + f"• {check.message}",
                style=STATUS_STYLE[check.status][1],
            )
    return detail


def category_table(title: str, results: Iterable[probe_pb2.ProbeResult]) -> Table:
    """One category's results: probe, subject, status, evidence."""
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        expand=True,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("probe", ratio=2, overflow="fold")
    table.add_column("subject", ratio=1, overflow="fold")
    table.add_column("status", width=6, no_wrap=True)
    table.add_column("evidence", ratio=5, overflow="fold")
    for result in results:
        table.add_row(
            Text(result.probe), Text(result.subject), status_text(result.status), _evidence(result)
        )
    return table


def render_report(
    console: Console,
    summary: reports_pb2.ReportSummary,
    report: report_pb2.Report,
    extra: Sequence[tuple[str, Text]] = (),
) -> None:
    """Print the header (with `extra` rows), then one table per category in the
    contract's order."""
    console.print(header(summary, report, extra))
    by_category: dict[status_pb2.Category.ValueType, list[probe_pb2.ProbeResult]] = {}
    for result in report.results:
        by_category.setdefault(result.category, []).append(result)
    for category, results in sorted(by_category.items()):
        console.print()
        console.print(category_table(CATEGORY_TITLE.get(category, "Other"), results))
    if not report.results:
        console.print()
        console.print("The report holds no results.", style="dim")
