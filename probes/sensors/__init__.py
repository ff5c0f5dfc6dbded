"""Sensor probes: hwmon temperatures, fans and voltages, thermal zones, cooling devices, IIO."""
