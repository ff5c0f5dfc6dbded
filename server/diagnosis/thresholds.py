"""The one list of threshold names the diagnosis knows, with their defaults.

Rules refer to limits by name (``threshold("battery.min_health_pct")``) and the per-model
catalog overrides them by the same name; this module is the single place a name is born, so a
typo in a rule or a catalog is caught at load instead of silently judging against nothing::

    >>> DEFAULT_THRESHOLDS["battery.min_health_pct"]
    80.0
    >>> "battery.min_health_pct" in KNOWN_THRESHOLDS
    True

Units are in the names' comments below; every value is a float so CEL compares it with the
report's numbers without int/double mismatches.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

Thresholds = Mapping[str, float]
"""Threshold name → limit. A model's catalog entry is the defaults with some names overridden."""

DEFAULT_THRESHOLDS: Final[Thresholds] = MappingProxyType(
    {
        # Battery: full-charge capacity as % of design; below it the battery is worn.
        "battery.min_health_pct": 80.0,
        # Battery: charge cycles the maker rates the cell for.
        "battery.max_cycle_count": 1000.0,
        # Battery: cell temperature (°C) above which charging is unsafe.
        "battery.max_temp_celsius": 50.0,
        # Storage: SMART 5 reallocated sectors tolerated before a finding.
        "storage.max_reallocated": 0.0,
        # Storage: SMART 197 current pending sectors tolerated.
        "storage.max_pending": 0.0,
        # Storage: SMART 198 offline uncorrectable sectors tolerated.
        "storage.max_uncorrectable": 0.0,
        # Storage: NVMe media and data-integrity errors tolerated.
        "storage.max_media_errors": 0.0,
        # Storage: SMART 199 UDMA CRC errors (cable/connector, not media) tolerated.
        "storage.max_crc_errors": 0.0,
        # Storage: SCSI grown defect list entries tolerated.
        "storage.max_grown_defects": 0.0,
        # Storage: SMART 5 reallocated sectors at which a drive should be replaced before it
        # fails; the trend projects when a growing count gets there (the finding fires at 1).
        "storage.trend_max_reallocated": 50.0,
        # Storage: NVMe "percentage used" (rated endurance consumed, %) that warrants a finding.
        "storage.nvme_max_used_pct": 90.0,
        # Storage: drive temperature (°C) above which it is too hot.
        "storage.max_temp_celsius": 70.0,
        # Thermal: CPU package temperature (°C) above which the machine is overheating.
        "thermal.max_cpu_celsius": 95.0,
        # Thermal: any other sensor's temperature (°C) above which it is too hot.
        "thermal.max_sensor_celsius": 90.0,
    }
)

KNOWN_THRESHOLDS: Final[frozenset[str]] = frozenset(DEFAULT_THRESHOLDS)
"""Every name a rule or catalog may use; anything else is refused at load."""
