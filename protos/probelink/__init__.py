"""Probelink: the diagnostics backbone of an after-sales service network.

Every part of the repository installs under this one namespace:

    probelink.v1              the contract (generated from protos/probelink/v1/*.proto)
    probelink.probes          pure readers of the machine
    probelink.agent           the agent: self-check, daemon, fixture runner
    probelink.server          the server
    probelink.firmware_tools  firmware inventory, catalog, images, flashing
"""

__version__ = "0.1.0"
