"""`probelink-server device`: enrolled devices — list (staff), revoke (admin).

probelink-server device list
probelink-server device revoke 4f1c9e2a-…   # its credential stops working at once
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import grpc
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from probelink.server.cli.client import Client, JsonOpt, connected, fail, to_dict
from probelink.server.render import format_time
from probelink.v1 import admin_pb2

app = typer.Typer(help="Enrolled devices.", no_args_is_help=True)


@app.command("list")
@connected
def list_devices(client: Client, json_out: JsonOpt = False) -> None:
    """List every enrolled device."""
    response: admin_pb2.ListDevicesResponse = client.call(
        client.admin.ListDevices, admin_pb2.ListDevicesRequest()
    )
    if json_out:
        print(json.dumps([to_dict(d) for d in response.devices], indent=2))
        return
    console = Console(highlight=False)
    if not response.devices:
        console.print("No device has enrolled yet.")
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("device id", "model", "agent", "enroll secret", "enrolled", "revoked"):
        table.add_column(column, overflow="fold")
    for d in response.devices:
        cells = (
            d.device_id,
            " ".join(p for p in (d.manufacturer, d.model) if p) or "-",
            d.agent_version,
            d.enroll_secret_id,
            format_time(d.enrolled_at),
            format_time(d.revoked_at) if d.HasField("revoked_at") else "",
        )
        # Text, not str: a model name is the device's words, not rich markup.
        table.add_row(*(Text(c) for c in cells))
    console.print(table)


@app.command("revoke")
@connected
def revoke(
    client: Client,
    device_id: Annotated[str, typer.Argument(help="The device's id (`device list`).")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke a device: its credential stops working and its streams end."""
    device_id = device_id.strip()
    if not device_id:
        raise fail("the device id is empty: `probelink-server device list` shows the ids")
    try:
        uuid.UUID(device_id)
    except ValueError:
        raise fail(
            f"{device_id!r} is not a device id (a UUID): `probelink-server device list` "
            "shows the ids"
        ) from None
    response: admin_pb2.RevokeDeviceResponse = client.call(
        client.admin.RevokeDevice,
        admin_pb2.RevokeDeviceRequest(device_id=device_id),
        hints={grpc.StatusCode.NOT_FOUND: "`probelink-server device list` shows the ids"},
    )
    if json_out:
        print(json.dumps(to_dict(response.info), indent=2))
        return
    Console(highlight=False).print(
        f"Revoked device {response.info.device_id}; it must enroll again to send reports.",
        markup=False,
    )
