"""`probelink-agent`'s entry point: `run` goes to the light daemon, the rest to the CLI.

The daemon must not carry typer and rich (a few MiB for the device's whole uptime);
importing `probelink.agent.cli` would load both, so the choice is made here first.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["run"]:
        from probelink.agent.daemon.cli import main as run_daemon

        sys.exit(run_daemon(sys.argv[2:]))
    from probelink.agent.cli import main as run_cli

    run_cli()
