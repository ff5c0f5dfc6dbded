"""`probelink-server dict`: the zstd dictionaries reports are compressed with.

    probelink-server dict train --samples 2000   # admin: train one from stored reports
    probelink-server dict show                   # the current one; `dict show 3` for another

Every dictionary the server issued is kept, so every stored report stays readable.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import grpc
import typer
from rich.console import Console
from rich.table import Table

from probelink.server.cli.client import Client, JsonOpt, connected, fail
from probelink.server.render import format_bytes, format_time
from probelink.v1 import admin_pb2, gateway_pb2, wire_pb2

app = typer.Typer(help="zstd dictionaries for reports.", no_args_is_help=True)


@app.command("train")
@connected
def train(
    client: Client,
    samples: Annotated[
        int | None,
        typer.Option("--samples", help="Train on at most this many of the newest reports."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a new dictionary from stored reports and issue it to agents."""
    if samples is not None and not 1 <= samples <= 0xFFFFFFFF:
        raise fail(f"--samples {samples}: give a number of reports, 1 or more")
    response: admin_pb2.TrainDictionaryResponse = client.call(
        client.admin.TrainDictionary,
        admin_pb2.TrainDictionaryRequest(sample_limit=samples or 0),
    )
    _print(response.dictionary, json_out, "Trained")


@app.command("show")
@connected
def show(
    client: Client,
    dictionary_id: Annotated[
        int | None, typer.Argument(help="Its id; the current dictionary when left out.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a dictionary: id, size, how many reports it was trained on, when."""
    if dictionary_id is not None and not 1 <= dictionary_id <= 0xFFFFFFFF:
        raise fail(f"dictionary id {dictionary_id}: ids count up from 1")
    hint = (
        "`probelink-server dict train` makes one"
        if dictionary_id is None
        else "`probelink-server dict show` names the current one"
    )
    response: gateway_pb2.GetDictionaryResponse = client.call(
        client.gateway.GetDictionary,
        gateway_pb2.GetDictionaryRequest(dictionary_id=dictionary_id or 0),
        hints={grpc.StatusCode.NOT_FOUND: hint},
    )
    _print(response.dictionary, json_out, "Current" if dictionary_id is None else "Dictionary")


def describe(dictionary: wire_pb2.Dictionary) -> dict[str, Any]:
    """What a person wants to know of a dictionary (not its bytes)."""
    return {
        "dictionary_id": dictionary.dictionary_id,
        "size_bytes": len(dictionary.content),
        "trained_on_reports": dictionary.trained_on_reports,
        "created_at": dictionary.created_at.ToJsonString()
        if dictionary.HasField("created_at")
        else None,
    }


def _print(dictionary: wire_pb2.Dictionary, json_out: bool, title: str) -> None:
    if json_out:
        print(json.dumps(describe(dictionary), indent=2))
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("dictionary", str(dictionary.dictionary_id))
    grid.add_row("size", format_bytes(len(dictionary.content)))
    grid.add_row("trained on", f"{dictionary.trained_on_reports} reports")
    grid.add_row("created", format_time(dictionary.created_at))
    console = Console(highlight=False)
    console.print(f"{title}:")
    console.print(grid)
