"""Firmware tools: inventory, catalog, image verification and serial flashing (to come)."""
