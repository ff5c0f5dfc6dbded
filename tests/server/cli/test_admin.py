"""`secret`, `device` and `dict` against a real server: each command's effect is checked
by what the server then does (an enrollment refused, an upload refused, a dictionary
served), not only by what the command printed.
"""

from __future__ import annotations

import grpc
import pytest

from probelink.channel import bearer
from probelink.server.cli.client import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    to_dict,
)
from probelink.v1 import admin_pb2, gateway_pb2
from tests.server.cli.conftest import Cli
from tests.server.ingest.reports import varied_reports


def test_a_secret_enrolls_devices_until_it_is_revoked(cli: Cli) -> None:
    made = cli.json("secret", "create", "--label", "line 2")
    assert made["secret"].startswith("ple_")
    assert made["info"]["label"] == "line 2"
    device = cli.server.enroll(secret=made["secret"])
    listed = cli.json("device", "list")
    assert (
        next(d for d in listed if d["device_id"] == device.device_id)["enroll_secret_id"]
        == (made["info"]["secret_id"])
    )

    revoked = cli.json("secret", "revoke", made["info"]["secret_id"])
    assert revoked == {**made["info"], "revoked_at": revoked["revoked_at"]}
    with pytest.raises(grpc.RpcError) as refused:
        cli.server.enroll(secret=made["secret"])
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_secret_create_prints_it_once(cli: Cli) -> None:
    result = cli("secret", "create")
    assert result.exit_code == EXIT_OK, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Created enroll secret sec_")
    assert lines[1].startswith("ple_")
    assert "cannot be shown again" in lines[2]


def test_secret_revoke_checks_its_argument(cli: Cli) -> None:
    for secret_id, code, words in (
        (" ", EXIT_USAGE, "the secret id is empty"),
        (cli.server.enroll_secret, EXIT_USAGE, "that is the secret itself"),
        ("sec_000000000000", EXIT_NOT_FOUND, "no enroll secret sec_000000000000"),
    ):
        result = cli("secret", "revoke", secret_id)
        assert result.exit_code == code, secret_id
        assert words in result.stderr


def test_device_list_is_what_the_server_holds(cli: Cli) -> None:
    assert cli("device", "list").stdout == "No device has enrolled yet.\n"
    first = cli.server.enroll(model="[red]Board[/red]")
    cli.server.enroll(model="Other")
    served = cli.server.admin().ListDevices(
        admin_pb2.ListDevicesRequest(), metadata=bearer(cli.server.admin_token)
    )
    assert cli.json("device", "list") == [to_dict(d) for d in served.devices]
    text = cli("device", "list").stdout
    assert first.device_id in text and "Probelink Labs [red]Board[/red]" in text


def test_a_revoked_device_can_no_longer_upload(cli: Cli) -> None:
    device = cli.server.enroll()
    revoked = cli.json("device", "revoke", device.device_id)
    assert revoked["device_id"] == device.device_id and "revoked_at" in revoked
    with pytest.raises(grpc.RpcError) as refused:
        device.upload(varied_reports(1)[0])
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_device_revoke_checks_its_argument(cli: Cli) -> None:
    missing = "3b8f6c2e-1111-4222-8333-444455556666"
    for device_id, code, words in (
        (" ", EXIT_USAGE, "the device id is empty"),
        ("dev-1", EXIT_USAGE, "'dev-1' is not a device id (a UUID)"),
        (missing, EXIT_NOT_FOUND, f"no device {missing} is enrolled"),
    ):
        result = cli("device", "revoke", device_id)
        assert result.exit_code == code, device_id
        assert words in result.stderr


def test_a_technician_lists_devices_but_cannot_revoke_them(cli: Cli) -> None:
    device = cli.server.enroll()
    technician = cli.server.token(admin_pb2.ROLE_TECHNICIAN)
    assert cli("device", "list", token=technician).exit_code == EXIT_OK
    result = cli("device", "revoke", device.device_id, token=technician)
    assert result.exit_code == EXIT_REFUSED
    assert "a technician cannot call AdminService/RevokeDevice" in result.stderr


def test_no_dictionary_yet(cli: Cli) -> None:
    result = cli("dict", "show")
    assert result.exit_code == EXIT_NOT_FOUND
    assert "has no dictionary yet" in result.stderr
    assert "`probelink-server dict train` makes one" in result.stderr
    result = cli("dict", "train")
    assert result.exit_code == EXIT_USAGE  # FAILED_PRECONDITION: too few reports
    assert "needs at least" in result.stderr


def test_a_trained_dictionary_is_shown(cli: Cli) -> None:
    device = cli.server.enroll()
    for report in varied_reports(120, seed=3):
        device.upload(report)
    trained = cli.json("dict", "train", "--samples", "110")
    assert trained["dictionary_id"] == 1
    assert trained["trained_on_reports"] == 110
    assert trained["size_bytes"] > 0
    assert cli.json("dict", "show") == trained
    assert cli.json("dict", "show", "1") == trained
    served = device.gateway.GetDictionary(
        gateway_pb2.GetDictionaryRequest(dictionary_id=1), metadata=device.metadata
    )
    assert trained["size_bytes"] == len(served.dictionary.content)
    text = cli("dict", "show").stdout
    assert " ".join(text.split()).startswith("Current: dictionary 1 size ")
    assert "trained on 110 reports" in " ".join(text.split())
    result = cli("dict", "show", "2")
    assert result.exit_code == EXIT_NOT_FOUND
    assert "never issued dictionary 2" in result.stderr


def test_dict_checks_its_arguments(cli: Cli) -> None:
    result = cli("dict", "train", "--samples", "0")
    assert result.exit_code == EXIT_USAGE
    assert "--samples 0" in result.stderr
    result = cli("dict", "show", "0")
    assert result.exit_code == EXIT_USAGE
    assert "ids count up from 1" in result.stderr


def test_secret_list_shows_ids_and_revocations_never_secrets(cli: Cli) -> None:
    made = cli.json("secret", "create", "--label", "line 2")
    cli.json("secret", "revoke", made["info"]["secret_id"])
    by_id = {s["secret_id"]: s for s in cli.json("secret", "list")}
    assert len(by_id) == 2  # and the default one from the first start
    assert by_id[made["info"]["secret_id"]]["label"] == "line 2"
    assert "revoked_at" in by_id[made["info"]["secret_id"]]
    result = cli("secret", "list")
    assert result.exit_code == EXIT_OK, result.stderr
    assert made["info"]["secret_id"] in result.stdout
    assert made["secret"] not in result.stdout and cli.server.enroll_secret not in result.stdout
