"""Battery probes: power_supply sysfs (psutil as fallback) and the battery routines."""
