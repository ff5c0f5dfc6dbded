"""`probelink-server`: the server's commands.

    probelink-server serve                    # run the server (SQLite in ./probelink-data)
    probelink-server run-local                # self-check this machine end to end (make run)
    probelink-server reports list --json      # read what devices sent (needs a token)
    probelink-server diagnose REPORT_ID       # what is wrong, what to do, what it costs
    probelink-server token create --role technician --label "desk 3"

Every command but `serve` and `run-local` is a client of a running server:
`--server HOST:PORT` and `--token T` (or PROBELINK_SERVER / PROBELINK_TOKEN) say which
and as whom.
"""

from __future__ import annotations

import typer

from probelink import __version__
from probelink.server.cli import advisories, devices, dicts, reports, rules, secrets, tokens
from probelink.server.cli.diagnose import diagnose
from probelink.server.cli.local import run_local
from probelink.server.cli.serve import serve

app = typer.Typer(
    help="Probelink server: serve, and read and manage what it holds.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)
app.command()(serve)
app.command("run-local")(run_local)
app.command()(diagnose)
app.add_typer(reports.app, name="reports")
app.add_typer(tokens.app, name="token")
app.add_typer(secrets.app, name="secret")
app.add_typer(devices.app, name="device")
app.add_typer(dicts.app, name="dict")
app.add_typer(rules.app, name="rules")
app.add_typer(advisories.app, name="advisories")


@app.command()
def version() -> None:
    """Print the server's version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
