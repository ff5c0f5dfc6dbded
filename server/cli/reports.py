"""`probelink-server reports`: read the reports devices sent.

probelink-server reports list --token-file probelink-data/admin.token
probelink-server reports list --device 4f1c… --all --json
probelink-server reports show 0b7e… --format json
probelink-server reports show 0b7e… --verify      # check the device's signature here

`show --verify` exits 3 when the stored report does not verify with its device's key
(the other exit codes are the client commands' own: see `probelink.server.cli.client`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Annotated

import grpc
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from probelink.server.cli.client import Client, JsonOpt, connected, fail, to_dict
from probelink.server.cli.verify import StoredCheck, check_stored
from probelink.server.render import (
    format_bytes,
    format_time,
    kind_words,
    render_report,
    signature_word,
    status_text,
)
from probelink.v1 import reports_pb2

# The server's largest page (ReportsService.ListReports); also --all's page size.
MAX_PAGE = 1000
DEFAULT_LIMIT = 50
FORMATS = ("text", "json")
# `show --verify`: the stored report does not verify with its device's key.
EXIT_NOT_VERIFIED = 3

app = typer.Typer(help="Read stored reports.", no_args_is_help=True)


@app.command("list")
@connected
def list_reports(
    client: Client,
    device: Annotated[
        str | None, typer.Option("--device", help="Only this device's reports (its id).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help=f"At most this many, newest first (1..{MAX_PAGE}).")
    ] = DEFAULT_LIMIT,
    every: Annotated[
        bool, typer.Option("--all", help="Every report, page after page (--limit per page).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """List stored reports, newest first."""
    if device is not None and not device.strip():
        raise fail("--device is empty: give a device id (`probelink-server device list`)")
    if not 1 <= limit <= MAX_PAGE:
        raise fail(f"--limit {limit}: give a number from 1 to {MAX_PAGE}")
    summaries: list[reports_pb2.ReportSummary] = []
    more = False
    for page in _pages(client, (device or "").strip(), limit):
        summaries.extend(page.reports)
        more = bool(page.next_page_token)
        if not every:
            break
    if json_out:
        print(json.dumps([to_dict(s) for s in summaries], indent=2))
        return
    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped or logged: whole lines (ids intact) rather than folded at 80 columns.
        console = Console(highlight=False, width=max(console.width, 160))
    if not summaries:
        console.print(
            "No reports stored yet." if device is None else f"No reports from {device}.",
            markup=False,
        )
        return
    console.print(_table(summaries))
    if more and not every:
        Console(stderr=True, highlight=False).print(
            f"Showing the newest {len(summaries)}; --all lists every report.", style="dim"
        )


def _pages(
    client: Client, device_id: str, page_size: int
) -> Iterator[reports_pb2.ListReportsResponse]:
    token = ""
    while True:
        request = reports_pb2.ListReportsRequest(
            device_id=device_id, page_size=page_size, page_token=token
        )
        page: reports_pb2.ListReportsResponse = client.call(client.reports.ListReports, request)
        yield page
        token = page.next_page_token
        if not token:
            return


def _table(summaries: list[reports_pb2.ReportSummary]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("received", no_wrap=True)
    # The report id whole: it is what `reports show` takes.
    table.add_column("report", no_wrap=True, min_width=36)
    table.add_column("device", overflow="fold")
    table.add_column("model", overflow="ellipsis")
    table.add_column("kind", overflow="ellipsis")
    table.add_column("overall", no_wrap=True)
    table.add_column("fail", justify="right")
    table.add_column("warn", justify="right")
    table.add_column("error", justify="right")
    table.add_column("stored", justify="right", no_wrap=True)
    table.add_column("signed", no_wrap=True)
    for s in summaries:
        model = " ".join(p for p in (s.manufacturer, s.model) if p) or "-"
        # Text, not str: ids and model names are the devices' words, not rich markup.
        table.add_row(
            Text(format_time(s.received_at).removesuffix(" UTC")),
            Text(s.report_id),
            Text(s.device_id),
            Text(model),
            Text(kind_words(s.kind)),
            status_text(s.overall),
            Text(str(s.fail_count)),
            Text(str(s.warn_count)),
            Text(str(s.error_count)),
            Text(format_bytes(s.stored_bytes)),
            signature_word(s),
        )
    return table


@app.command("show")
@connected
def show_report(
    client: Client,
    report_id: Annotated[str, typer.Argument(help="The report's id (`reports list` shows them).")],
    output: Annotated[str, typer.Option("--format", help="text (for people) or json.")] = "text",
    json_out: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Check the device's signature here, with its registered key (exit 3 if "
            "the report does not verify).",
        ),
    ] = False,
) -> None:
    """Show one stored report: its summary, its signature and every result."""
    report_id = report_id.strip()
    if not report_id:
        raise fail("the report id is empty: `probelink-server reports list` shows the ids")
    output = output.strip().lower()
    if output not in FORMATS:
        raise fail(f"--format {output!r}: choose one of {', '.join(FORMATS)}")
    response: reports_pb2.GetReportResponse = client.call(
        client.reports.GetReport,
        reports_pb2.GetReportRequest(report_id=report_id),
        hints={grpc.StatusCode.NOT_FOUND: "`probelink-server reports list` shows the ids"},
    )
    checked = check_stored(response) if check else None
    report = checked.report if checked is not None else response.report
    if json_out or output == "json":
        document = {
            "summary": to_dict(response.summary),
            "report": to_dict(report),
            "signature": _signature_json(response, checked),
        }
        print(json.dumps(document, indent=2))
    else:
        extra = []
        if checked is not None:
            style = "green" if checked.ok else "bold red"
            extra.append(("checked", Text(f"here: {checked.message}", style=style)))
        render_report(Console(highlight=False), response.summary, report, extra)
    if checked is not None and not checked.ok:
        raise typer.Exit(EXIT_NOT_VERIFIED)


def _signature_json(
    response: reports_pb2.GetReportResponse, checked: StoredCheck | None
) -> dict[str, object]:
    """The signature and key as the server holds them, and the local check if made."""
    document: dict[str, object] = {
        "verdict": reports_pb2.SignatureVerdict.Name(response.summary.signature),
        "signing_key": response.summary.signing_key,
        # Base64, as the protobuf JSON mapping writes bytes.
        "signature": base64.b64encode(response.signature).decode(),
        "device_public_key": base64.b64encode(response.device_public_key).decode(),
    }
    if checked is not None:
        document["checked_here"] = {"ok": checked.ok, "message": checked.message}
    return document
