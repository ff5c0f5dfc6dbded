"""`probelink-server secret`: enroll secrets, which devices trade for a credential (admin only).

    probelink-server secret create --label "shop floor, line 2"
    probelink-server secret revoke sec_3f9c2a1b7e40
    probelink-server secret list

A secret is printed once, when it is made: the server keeps only its hash. Revoking
one stops new enrollments with it; devices that already enrolled keep working.
"""

from __future__ import annotations

import json
from typing import Annotated

import grpc
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from probelink.server.cli.client import Client, JsonOpt, connected, fail, to_dict
from probelink.server.render import format_time
from probelink.v1 import admin_pb2

app = typer.Typer(help="Enroll secrets for devices (admin only).", no_args_is_help=True)


@app.command("create")
@connected
def create(
    client: Client,
    label: Annotated[str, typer.Option("--label", help="Where it is used, for the list.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Make an enroll secret; it is shown once."""
    response: admin_pb2.CreateEnrollSecretResponse = client.call(
        client.admin.CreateEnrollSecret, admin_pb2.CreateEnrollSecretRequest(label=label)
    )
    if json_out:
        print(json.dumps({"secret": response.secret, "info": to_dict(response.info)}, indent=2))
        return
    console = Console(highlight=False)
    console.print(f"Created {_describe(response.info)}:", markup=False)
    console.print(response.secret, markup=False, soft_wrap=True)
    console.print(
        "Keep it now: the server keeps only its hash, so it cannot be shown again. "
        "Agents enroll with it (--enroll-secret-file).",
        style="dim",
    )


@app.command("revoke")
@connected
def revoke(
    client: Client,
    secret_id: Annotated[str, typer.Argument(help="The secret's id (sec_…).")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke an enroll secret: no new device can enroll with it."""
    secret_id = secret_id.strip()
    if not secret_id:
        raise fail("the secret id is empty: give its id (sec_…)")
    if secret_id.startswith("ple_"):
        raise fail("that is the secret itself; revoke takes its id (sec_…)")
    response: admin_pb2.RevokeEnrollSecretResponse = client.call(
        client.admin.RevokeEnrollSecret,
        admin_pb2.RevokeEnrollSecretRequest(secret_id=secret_id),
        hints={grpc.StatusCode.NOT_FOUND: "check the id `secret create` printed"},
    )
    if json_out:
        print(json.dumps(to_dict(response.info), indent=2))
        return
    Console(highlight=False).print(
        f"Revoked {_describe(response.info)}; devices already enrolled keep working.",
        markup=False,
    )


@app.command("list")
@connected
def list_secrets(client: Client, json_out: JsonOpt = False) -> None:
    """List every enroll secret: id, label, created and revoked (never the secret)."""
    response: admin_pb2.ListEnrollSecretsResponse = client.call(
        client.admin.ListEnrollSecrets, admin_pb2.ListEnrollSecretsRequest()
    )
    if json_out:
        print(json.dumps([to_dict(s) for s in response.secrets], indent=2))
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("secret id", "label", "created", "revoked"):
        table.add_column(column, overflow="fold")
    for s in response.secrets:
        revoked = format_time(s.revoked_at) if s.HasField("revoked_at") else ""
        # Text, not str: a label is the admin's words, not rich markup.
        table.add_row(
            *(Text(c) for c in (s.secret_id, s.label, format_time(s.created_at), revoked))
        )
    Console(highlight=False).print(table)


def _describe(info: admin_pb2.EnrollSecretInfo) -> str:
    return f"enroll secret {info.secret_id}" + (f" ({info.label})" if info.label else "")
