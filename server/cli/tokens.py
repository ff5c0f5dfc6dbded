"""`probelink-server token`: people's API tokens — create, revoke, list (admin only).

    probelink-server token create --role technician --label "desk 3"
    probelink-server token create --role customer --device 4f1c…   # reads one device
    probelink-server token revoke tok_3f9c2a1b7e40

A token is printed once, when it is made: the server keeps only its hash.
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

ROLES: dict[str, admin_pb2.Role.ValueType] = {
    "customer": admin_pb2.ROLE_CUSTOMER,
    "technician": admin_pb2.ROLE_TECHNICIAN,
    "engineer": admin_pb2.ROLE_ENGINEER,
    "admin": admin_pb2.ROLE_ADMIN,
}

app = typer.Typer(help="People's API tokens (admin only).", no_args_is_help=True)


def role_word(role: admin_pb2.Role.ValueType) -> str:
    """`ROLE_TECHNICIAN` -> `technician`."""
    return admin_pb2.Role.Name(role).removeprefix("ROLE_").lower()


@app.command("create")
@connected
def create(
    client: Client,
    role: Annotated[str, typer.Option("--role", help="customer, technician, engineer or admin.")],
    label: Annotated[str, typer.Option("--label", help="Whose token, for the list.")] = "",
    device: Annotated[
        str | None, typer.Option("--device", help="A customer token's device (its id).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Make a token for a person; it is shown once."""
    name = role.strip().lower()
    if name not in ROLES:
        hint = " (devices enroll with an enroll secret instead)" if name == "device" else ""
        raise fail(f"--role {role!r} is not a role: choose one of {', '.join(ROLES)}{hint}")
    device_id = (device or "").strip()
    if name == "customer" and not device_id:
        raise fail(
            "a customer token reads one device's reports: give --device ID "
            "(`probelink-server device list` shows them)"
        )
    if name != "customer" and device is not None:
        raise fail(f"--device is for customer tokens; a {name} reads every device's reports")
    response: admin_pb2.CreateTokenResponse = client.call(
        client.admin.CreateToken,
        admin_pb2.CreateTokenRequest(role=ROLES[name], label=label, device_id=device_id),
        hints={grpc.StatusCode.NOT_FOUND: "`probelink-server device list` shows the devices"},
    )
    if json_out:
        print(json.dumps({"token": response.token, "info": to_dict(response.info)}, indent=2))
        return
    console = Console(highlight=False)
    console.print(f"Created {_describe(response.info)}:", markup=False)
    console.print(response.token, markup=False, soft_wrap=True)
    console.print(
        "Keep it now: the server keeps only its hash, so it cannot be shown again.",
        style="dim",
    )


@app.command("revoke")
@connected
def revoke(
    client: Client,
    token_id: Annotated[str, typer.Argument(help="The token's id (tok_…, from `token list`).")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke a token: it stops working at once."""
    token_id = token_id.strip()
    if not token_id:
        raise fail("the token id is empty: `probelink-server token list` shows the ids")
    if token_id.startswith("plt_"):
        raise fail(
            "that is the token itself; revoke takes its id (tok_…), which "
            "`probelink-server token list` shows"
        )
    response: admin_pb2.RevokeTokenResponse = client.call(
        client.admin.RevokeToken,
        admin_pb2.RevokeTokenRequest(token_id=token_id),
        hints={grpc.StatusCode.NOT_FOUND: "`probelink-server token list` shows the ids"},
    )
    if json_out:
        print(json.dumps(to_dict(response.info), indent=2))
        return
    Console(highlight=False).print(f"Revoked {_describe(response.info)}.", markup=False)


@app.command("list")
@connected
def list_tokens(client: Client, json_out: JsonOpt = False) -> None:
    """List every token: role, label, device, created and revoked."""
    response: admin_pb2.ListTokensResponse = client.call(
        client.admin.ListTokens, admin_pb2.ListTokensRequest()
    )
    if json_out:
        print(json.dumps([to_dict(t) for t in response.tokens], indent=2))
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("token id", "role", "label", "device", "created", "revoked"):
        table.add_column(column, overflow="fold")
    for t in response.tokens:
        revoked = format_time(t.revoked_at) if t.HasField("revoked_at") else ""
        cells = (t.token_id, role_word(t.role), t.label, t.device_id, format_time(t.created_at))
        # Text, not str: a label is the admin's words, not rich markup.
        table.add_row(*(Text(c) for c in (*cells, revoked)))
    Console(highlight=False).print(table)


def _describe(info: admin_pb2.TokenInfo) -> str:
    text = f"{role_word(info.role)} token {info.token_id}"
    if info.label:
        text += f" ({info.label})"
    if info.device_id:
        text += f" for device {info.device_id}"
    return text
