"""`token create / list / revoke` against a real server: the whole life of a token."""

from __future__ import annotations

from probelink.server.cli.client import EXIT_NOT_FOUND, EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from probelink.v1 import admin_pb2
from tests.server.cli.conftest import Cli


def test_a_token_is_made_listed_used_and_revoked(cli: Cli) -> None:
    made = cli.json("token", "create", "--role", "technician", "--label", "desk 3")
    info = made["info"]
    assert made["token"].startswith("plt_")
    assert info["token_id"].startswith("tok_")
    assert {k: v for k, v in info.items() if k not in ("token_id", "created_at")} == {
        "role": "ROLE_TECHNICIAN",
        "label": "desk 3",
    }
    assert info in cli.json("token", "list")
    # The new token reads reports...
    assert cli("reports", "list", token=made["token"]).exit_code == EXIT_OK

    revoked = cli.json("token", "revoke", info["token_id"])
    assert revoked == {**info, "revoked_at": revoked["revoked_at"]}
    assert revoked in cli.json("token", "list")
    # ...and is refused once revoked, in the server's words.
    result = cli("reports", "list", token=made["token"])
    assert result.exit_code == EXIT_REFUSED
    assert result.stderr == (
        f"refused: token {info['token_id']} was revoked; ask an admin for a new one\n"
    )


def test_create_prints_the_token_once_with_a_warning(cli: Cli) -> None:
    result = cli("token", "create", "--role", "engineer", "--label", "[bold]lab[/bold]")
    assert result.exit_code == EXIT_OK, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Created engineer token tok_")
    assert lines[0].endswith(" ([bold]lab[/bold]):")  # the label as typed, not markup
    assert lines[1].startswith("plt_") and len(lines[1]) == 47
    assert "cannot be shown again" in lines[2]
    listed = cli("token", "list")
    assert listed.exit_code == EXIT_OK
    assert "[bold]lab[/bold]" in listed.stdout
    assert lines[1] not in listed.stdout


def test_a_customer_token_needs_a_device(cli: Cli) -> None:
    before = cli.json("token", "list")
    result = cli("token", "create", "--role", "customer")
    assert result.exit_code == EXIT_USAGE
    assert "--device" in result.stderr and "device list" in result.stderr
    assert cli.json("token", "list") == before


def test_a_customer_token_reads_only_its_device(cli: Cli) -> None:
    device = cli.server.enroll()
    made = cli.json("token", "create", "--role", "customer", "--device", device.device_id)
    assert made["info"]["device_id"] == device.device_id
    assert cli.json("reports", "list", token=made["token"]) == []
    other = cli.server.enroll()
    result = cli("reports", "list", "--device", other.device_id, token=made["token"])
    assert result.exit_code == EXIT_REFUSED
    assert f"reads only the reports of device {device.device_id}" in result.stderr


def test_a_customer_token_for_a_device_not_enrolled(cli: Cli) -> None:
    missing = "3b8f6c2e-1111-4222-8333-444455556666"
    result = cli("token", "create", "--role", "customer", "--device", missing)
    assert result.exit_code == EXIT_NOT_FOUND
    assert f"no device {missing} is enrolled on this server" in result.stderr


def test_unknown_roles_list_the_valid_ones(cli: Cli) -> None:
    for role, extra in (("wizard", ""), ("device", "enroll"), ("", "")):
        result = cli("token", "create", "--role", role)
        assert result.exit_code == EXIT_USAGE, role
        assert "customer, technician, engineer, admin" in result.stderr
        assert extra in result.stderr


def test_only_a_customer_token_names_a_device(cli: Cli) -> None:
    device = cli.server.enroll()
    result = cli("token", "create", "--role", "technician", "--device", device.device_id)
    assert result.exit_code == EXIT_USAGE
    assert "--device is for customer tokens" in result.stderr


def test_a_technician_cannot_make_tokens(cli: Cli) -> None:
    technician = cli.server.token(admin_pb2.ROLE_TECHNICIAN)
    result = cli("token", "create", "--role", "admin", token=technician)
    assert result.exit_code == EXIT_REFUSED
    assert result.stderr == (
        "refused: a technician cannot call AdminService/CreateToken; it needs one of: admin\n"
    )
    for args in (("token", "list"), ("token", "revoke", "tok_000000000000")):
        assert cli(*args, token=technician).exit_code == EXIT_REFUSED


def test_revoke_checks_its_argument(cli: Cli) -> None:
    result = cli("token", "revoke", " ")
    assert result.exit_code == EXIT_USAGE
    assert "token list" in result.stderr
    result = cli("token", "revoke", cli.server.admin_token)
    assert result.exit_code == EXIT_USAGE
    assert "that is the token itself" in result.stderr
    result = cli("token", "revoke", "tok_000000000000")
    assert result.exit_code == EXIT_NOT_FOUND
    assert "no token tok_000000000000 on this server" in result.stderr
