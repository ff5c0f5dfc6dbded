"""Storage probes: filesystems, I/O counters, SMART/NVMe health, and the read-speed routine."""
