"""`probelink-server device`: enrolled devices — list, warranty facts (staff), revoke (admin).

probelink-server device list
probelink-server device revoke 4f1c9e2a-…   # its credential stops working at once
probelink-server device warranty 4f1c… --purchased 2025-03-01 --region CN --plan battery_renewal
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
from probelink.v1 import admin_pb2, advisory_pb2

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


@app.command("warranty")
@connected
def warranty(
    client: Client,
    device_id: Annotated[str, typer.Argument(help="The device (`device list` shows ids).")],
    purchased: Annotated[
        str, typer.Option("--purchased", help="The purchase date on the receipt (YYYY-MM-DD).")
    ],
    region: Annotated[str, typer.Option("--region", help="Where it was bought (CN, EU, US).")],
    plan: Annotated[
        list[str] | None, typer.Option("--plan", help="A plan bought with it (repeatable).")
    ] = None,
    exclusion: Annotated[
        list[str] | None,
        typer.Option("--exclusion", help="An exclusion found at the desk (repeatable)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Record a device's purchase facts; its diagnoses judge warranty by them."""
    request = admin_pb2.SetDeviceWarrantyRequest(
        device_id=device_id.strip(),
        warranty=advisory_pb2.WarrantyFacts(
            purchase_date=purchased.strip(),
            region=region.strip(),
            plans=plan or [],
            exclusions=exclusion or [],
        ),
    )
    response: admin_pb2.SetDeviceWarrantyResponse = client.call(
        client.admin.SetDeviceWarranty, request
    )
    if json_out:
        print(json.dumps(to_dict(response.warranty), indent=2))
        return
    w = response.warranty
    extras = ", ".join([*w.plans, *(f"excluded: {e}" for e in w.exclusions)])
    Console(highlight=False).print(
        f"Device {device_id} bought {w.purchase_date} in {w.region}"
        + (f" ({extras})" if extras else "")
        + ". Diagnoses made from now on judge warranty by this; "
        "`diagnose ID --recompute` applies it to an earlier one.",
        markup=False,
    )
