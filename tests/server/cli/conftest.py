"""The server's client commands run against a real server in this process.

    def test_something(cli: Cli) -> None:
        result = cli("token", "list", "--json")                 # as the admin
        result = cli("reports", "list", token="plt_…")          # as someone else
        result = cli("reports", "list", connect=False, env={…}) # the test gives it all

`Cli` runs `probelink-server` through Typer's CliRunner with stdout and stderr apart,
and with the environment's PROBELINK_* variables cleared so a developer's shell cannot
change what a test sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from probelink.server.cli import app
from tests.server.running import RunningServer

_CLEAN_ENV: dict[str, str | None] = {
    "PROBELINK_SERVER": None,
    "PROBELINK_TOKEN": None,
    "PROBELINK_TLS_CA": None,
    # Wide enough that no id in a table is folded onto two lines.
    "COLUMNS": "240",
}


class Cli:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.runner = CliRunner()

    def __call__(
        self,
        *args: str,
        token: str | None = None,
        connect: bool = True,
        env: Mapping[str, str | None] | None = None,
    ) -> Result:
        """Run one command; `token` instead of the admin's; `connect=False`: no options added."""
        argv = list(args)
        if connect:
            argv += ["--server", self.server.address]
            argv += ["--token", token] if token else ["--token-file", str(self.token_file)]
        return self.runner.invoke(app, argv, env={**_CLEAN_ENV, **(env or {})})

    @property
    def token_file(self) -> Path:
        return self.server.data_dir / "admin.token"

    def json(self, *args: str, token: str | None = None) -> Any:
        """Run a command with --json that must succeed; its parsed output."""
        result = self(*args, "--json", token=token)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with RunningServer(tmp_path / "data") as running:
        yield running


@pytest.fixture
def cli(server: RunningServer) -> Cli:
    return Cli(server)
