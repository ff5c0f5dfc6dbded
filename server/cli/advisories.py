"""`probelink-server advisories`: what the server told devices before their owners asked.

probelink-server advisories list                     # every device (staff)
probelink-server advisories list --device 4f1c… --json

An advisory is raised by a diagnosis (a trend that will cross its limit soon, or a rule of
severity "advisory"), once per device and subject, and sent down the device's stream;
"delivered" is when the agent confirmed it kept it.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from probelink.diagnosis_text import LANGS
from probelink.server.cli.client import Client, JsonOpt, connected, fail, to_dict
from probelink.server.render import format_time
from probelink.v1 import reports_pb2

app = typer.Typer(help="Advisories raised for devices.", no_args_is_help=True)


@app.command("list")
@connected
def list_advisories(
    client: Client,
    device: Annotated[
        str | None, typer.Option("--device", help="Only this device's advisories (its id).")
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="en or zh-CN.")] = "en",
    json_out: JsonOpt = False,
) -> None:
    """List advisories, newest first."""
    if lang not in LANGS:
        raise fail(f"--lang {lang!r}: use one of {', '.join(LANGS)}")
    response: reports_pb2.ListAdvisoriesResponse = client.call(
        client.reports.ListAdvisories,
        reports_pb2.ListAdvisoriesRequest(device_id=(device or "").strip()),
    )
    if json_out:
        print(json.dumps([to_dict(a) for a in response.advisories], indent=2, ensure_ascii=False))
        return
    console = Console(highlight=False)
    if not response.advisories:
        console.print("No advisories raised yet.")
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("raised", "device", "about", "advisory", "delivered"):
        table.add_column(column, overflow="fold")
    for record in response.advisories:
        a = record.advisory
        text = a.text.get(lang) or a.text.get("en", "")
        delivered = (
            format_time(record.delivered_at) if record.HasField("delivered_at") else "not yet"
        )
        table.add_row(
            Text(format_time(a.raised_at)),
            Text(a.device_id),
            Text(a.code),
            Text(text),
            Text(delivered),
        )
    console.print(table)
