"""`probelink-server`: the server side's commands (serve, reports, order, support …).

The server itself arrives with the server-core issue; today this only answers
`--version`, so that the console script the package declares is real.
"""

from __future__ import annotations

import typer

from probelink import __version__

app = typer.Typer(help="Probelink server.", add_completion=False, pretty_exceptions_enable=False)


@app.command()
def version() -> None:
    """Print the server's version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
