"""`probelink-agent run`: the daemon that keeps a device connected and its reports safe."""
