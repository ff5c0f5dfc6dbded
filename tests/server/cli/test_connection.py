"""How every client command finds its server and its token, and how it fails.

Options and environment variables against a real server; the exit codes of
`probelink.server.cli.client` for a missing token, a refused one, bad options and a
server that is not there.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from probelink.server.cli.client import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from tests.server.cli.conftest import Cli


def _closed_port() -> int:
    # A port that was free a moment ago and that nothing listens on now.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_token_says_how_to_give_one(cli: Cli) -> None:
    result = cli("reports", "list", "--server", cli.server.address, connect=False)
    assert result.exit_code == EXIT_USAGE
    assert result.stdout == ""
    for words in ("--token", "--token-file", "PROBELINK_TOKEN", "admin.token", "data dir"):
        assert words in result.stderr


def test_a_server_that_is_not_running_is_named(cli: Cli) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    result = cli("token", "list", "--server", address, "--token", "plt_x", connect=False)
    assert result.exit_code == EXIT_UNREACHABLE
    assert f"is the server running at {address}?" in result.stderr
    assert result.stderr.count("\n") == 1  # one calm line
    assert result.stdout == ""


def test_environment_variables_name_the_server_and_the_token(cli: Cli) -> None:
    env = {"PROBELINK_SERVER": cli.server.address, "PROBELINK_TOKEN": cli.server.admin_token}
    result = cli("token", "list", "--json", connect=False, env=env)
    assert result.exit_code == EXIT_OK, result.stderr
    assert '"role": "ROLE_ADMIN"' in result.stdout


def test_the_options_win_over_the_environment(cli: Cli) -> None:
    # --server and --token beat PROBELINK_SERVER and PROBELINK_TOKEN.
    env = {"PROBELINK_SERVER": f"127.0.0.1:{_closed_port()}", "PROBELINK_TOKEN": "plt_wrong"}
    result = cli("token", "list", token=cli.server.admin_token, env=env)
    assert result.exit_code == EXIT_OK, result.stderr


def test_the_token_file_wins_over_the_token_in_the_environment(cli: Cli) -> None:
    env = {"PROBELINK_SERVER": cli.server.address, "PROBELINK_TOKEN": "plt_" + "x" * 43}
    result = cli("token", "list", "--token-file", str(cli.token_file), connect=False, env=env)
    assert result.exit_code == EXIT_OK, result.stderr


def test_token_file_problems_are_usage_errors(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    for path, words in ((tmp_path / "missing.token", "cannot read"), (empty, "is empty")):
        options = ("--server", cli.server.address, "--token-file", str(path))
        result = cli("token", "list", *options, connect=False)
        assert result.exit_code == EXIT_USAGE
        assert words in result.stderr and str(path) in result.stderr


def test_an_unknown_token_is_refused_with_the_servers_words(cli: Cli) -> None:
    result = cli("reports", "list", token="plt_" + "x" * 43)
    assert result.exit_code == EXIT_REFUSED
    assert result.stderr == "refused: this token is not known to this server\n"
    result = cli("reports", "list", token="not-a-token")
    assert result.exit_code == EXIT_REFUSED
    assert "not a Probelink credential" in result.stderr


def test_an_enroll_secret_is_not_a_token(cli: Cli) -> None:
    result = cli("reports", "list", token=cli.server.enroll_secret)
    assert result.exit_code == EXIT_REFUSED
    assert "that is an enroll secret" in result.stderr


def test_bad_server_addresses_are_refused_before_any_call(cli: Cli) -> None:
    for address in ("localhost", ":50051", "127.0.0.1:http", "127.0.0.1:0", "127.0.0.1:70000"):
        result = cli("token", "list", "--server", address, "--token", "plt_x", connect=False)
        assert result.exit_code == EXIT_USAGE, address
        assert f"--server {address!r}" in result.stderr


def test_tls_options_are_checked_before_any_call(cli: Cli, tmp_path: Path) -> None:
    pem = tmp_path / "client.pem"
    pem.write_text("not really a certificate\n")
    cases = [
        (("--tls-cert", str(pem)), "--tls-cert and --tls-key go together"),
        (("--tls-key", str(pem)), "--tls-cert and --tls-key go together"),
        (("--tls-ca", str(tmp_path / "nope.pem")), "no such file"),
    ]
    for options, words in cases:
        result = cli("token", "list", *options)
        assert result.exit_code == EXIT_USAGE, options
        assert words in result.stderr


def test_tls_to_a_plaintext_server_fails_calmly(cli: Cli) -> None:
    # The system's roots, a plaintext server: the handshake fails; nothing hangs.
    result = cli("token", "list", "--tls", "--timeout", "5")
    assert result.exit_code == EXIT_UNREACHABLE
    assert f"is the server running at {cli.server.address}?" in result.stderr


def test_a_timeout_must_be_positive(cli: Cli) -> None:
    result = cli("token", "list", "--timeout", "0")
    assert result.exit_code == EXIT_USAGE
    assert "--timeout" in result.stderr


def test_not_found_maps_to_exit_4(cli: Cli) -> None:
    result = cli("reports", "show", "3b8f6c2e-1111-4222-8333-444455556666")
    assert result.exit_code == EXIT_NOT_FOUND
    assert "no report 3b8f6c2e-1111-4222-8333-444455556666 on this server" in result.stderr


def test_the_installed_command_reads_the_environment(cli: Cli) -> None:
    # The real entry point in a child process, as an operator's shell runs it.
    env = {
        **os.environ,
        "PROBELINK_SERVER": cli.server.address,
        "PROBELINK_TOKEN": cli.server.admin_token,
    }
    argv = [sys.executable, "-m", "probelink.server.cli", "token", "list", "--json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_OK, done.stderr
    assert [t["role"] for t in json.loads(done.stdout)] == ["ROLE_ADMIN"]
    env["PROBELINK_TOKEN"] = ""
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_USAGE
    assert "admin.token" in done.stderr
