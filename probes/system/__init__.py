"""System probes: CPU, memory, operating system, DMI/BIOS identity, uptime."""
