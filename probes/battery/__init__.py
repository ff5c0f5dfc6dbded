"""Battery probes: power_supply sysfs (psutil as fallback) and the battery routines.

- `power_supply`     telemetry: one result per battery (charge, wear, cycles, health, temp)
- `discharge_rate`   routine: drain of an idle device over a bounded window
- `charge_detection` routine: the battery charges once the charger is plugged in

All three read `class/power_supply` through `probelink.probes.readers.class_power_supply`.
"""
