"""`python -m probelink.server.cli` is `probelink-server`."""

from probelink.server.cli import main

main()
