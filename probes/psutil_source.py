"""psutil behind a seam: the live module, or a snapshot captured beside a fixture tree.

psutil reads the live `/proc` and `/sys` and cannot be pointed at another root, so a
captured machine carries a `psutil.json` snapshot of what psutil returned there. The
snapshot is read into the same named tuples psutil returns, so probes see one shape.

    >>> source = PsutilSnapshot.load(Path("tests/fixtures/machines/desktop/psutil.json"))
    >>> source.virtual_memory().total

Capture a snapshot on a real machine with `python -m probelink.probes.psutil_source > psutil.json`.
"""

from __future__ import annotations

import json
import sys
import time
from collections import namedtuple
from pathlib import Path
from typing import Any, Protocol

from probelink.probes.errors import ParseError


class PsutilSource(Protocol):
    """The part of psutil the probes use."""

    def sensors_battery(self) -> Any: ...
    def disk_partitions(self, all: bool = False) -> list[Any]: ...
    def disk_usage(self, path: str) -> Any: ...
    def disk_io_counters(self, perdisk: bool = False) -> Any: ...
    def sensors_temperatures(self) -> dict[str, list[Any]]: ...
    def sensors_fans(self) -> dict[str, list[Any]]: ...
    def net_if_stats(self) -> dict[str, Any]: ...
    def net_if_addrs(self) -> dict[str, list[Any]]: ...
    def net_io_counters(self, pernic: bool = False) -> Any: ...
    def cpu_count(self, logical: bool = True) -> int | None: ...
    def cpu_freq(self) -> Any: ...
    def getloadavg(self) -> tuple[float, float, float]: ...
    def virtual_memory(self) -> Any: ...
    def swap_memory(self) -> Any: ...
    def boot_time(self) -> float: ...


def live() -> PsutilSource | None:
    """The psutil module itself, or None where it is not installed."""
    try:
        import psutil
    except ImportError:
        return None
    return psutil  # type: ignore[return-value]  # the module satisfies the protocol


def _tuple(name: str, data: dict[str, Any]) -> Any:
    return namedtuple(name, list(data))(**data)


class PsutilSnapshot:
    """psutil's answers as captured on another machine (a JSON object per call)."""

    def __init__(self, data: dict[str, Any], origin: str = "snapshot") -> None:
        self._data = data
        self.origin = origin

    @classmethod
    def load(cls, folder: Path) -> PsutilSnapshot:
        data: dict[str, Any] = {}
        for path in sorted(Path(folder).glob("*.json")):
            try:
                data[path.stem] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ParseError(
                    f"psutil snapshot {path} could not be read: {exc}", str(path)
                ) from exc
        return cls(data, str(folder))

    def _get(self, key: str) -> Any:
        if key not in self._data:
            # The capture did not have this source: same as psutil lacking it here.
            raise AttributeError(f"{key} is not in the psutil snapshot {self.origin}")
        return self._data[key]

    def sensors_battery(self) -> Any:
        value = self._get("sensors_battery")
        return None if value is None else _tuple("sbattery", value)

    def disk_partitions(self, all: bool = False) -> list[Any]:
        return [_tuple("sdiskpart", p) for p in self._get("disk_partitions")]

    def disk_usage(self, path: str) -> Any:
        usage = self._get("disk_usage")
        if path not in usage:
            raise FileNotFoundError(path)
        return _tuple("sdiskusage", usage[path])

    def disk_io_counters(self, perdisk: bool = False) -> Any:
        return {k: _tuple("sdiskio", v) for k, v in self._get("disk_io_counters").items()}

    def sensors_temperatures(self) -> dict[str, list[Any]]:
        return {
            k: [_tuple("shwtemp", e) for e in v]
            for k, v in self._get("sensors_temperatures").items()
        }

    def sensors_fans(self) -> dict[str, list[Any]]:
        return {k: [_tuple("sfan", e) for e in v] for k, v in self._get("sensors_fans").items()}

    def net_if_stats(self) -> dict[str, Any]:
        return {k: _tuple("snicstats", v) for k, v in self._get("net_if_stats").items()}

    def net_if_addrs(self) -> dict[str, list[Any]]:
        return {k: [_tuple("snicaddr", a) for a in v] for k, v in self._get("net_if_addrs").items()}

    def net_io_counters(self, pernic: bool = False) -> Any:
        return {k: _tuple("snetio", v) for k, v in self._get("net_io_counters").items()}

    def cpu_count(self, logical: bool = True) -> int | None:
        counts = self._get("cpu_count")
        value = counts["logical" if logical else "physical"]
        return None if value is None else int(value)

    def cpu_freq(self) -> Any:
        value = self._get("cpu_freq")
        return None if value is None else _tuple("scpufreq", value)

    def getloadavg(self) -> tuple[float, float, float]:
        a, b, c = self._get("getloadavg")
        return (float(a), float(b), float(c))

    def virtual_memory(self) -> Any:
        return _tuple("svmem", self._get("virtual_memory"))

    def swap_memory(self) -> Any:
        return _tuple("sswap", self._get("swap_memory"))

    def boot_time(self) -> float:
        return float(self._get("boot_time"))

    def captured_at(self) -> float | None:
        """When the snapshot was taken (seconds since the epoch), None when not recorded.

        A snapshot is a still picture: what "now" means for it (uptime) travels with it.
        """
        value = self._data.get("captured_at")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParseError(
                f"{self.origin}/captured_at.json: expected seconds since the epoch, read {value!r}",
                self.origin,
            )
        return float(value)


def capture(source: Any) -> dict[str, Any]:
    """What `source` (the psutil module) answers, as a JSON-able snapshot."""

    def d(t: Any) -> Any:
        return None if t is None else {k: getattr(t, k) for k in t._fields}

    parts = source.disk_partitions()
    usage: dict[str, Any] = {}
    for p in parts:
        try:
            usage[p.mountpoint] = d(source.disk_usage(p.mountpoint))
        except OSError:
            continue
    stats = source.net_if_stats()
    return {
        "sensors_battery": d(source.sensors_battery()),
        "disk_partitions": [d(p) for p in parts],
        "disk_usage": usage,
        "disk_io_counters": {
            k: d(v) for k, v in (source.disk_io_counters(perdisk=True) or {}).items()
        },
        "sensors_temperatures": {
            k: [d(e) for e in v] for k, v in source.sensors_temperatures().items()
        },
        "sensors_fans": {k: [d(e) for e in v] for k, v in source.sensors_fans().items()},
        "net_if_stats": {k: {**d(v), "duplex": int(v.duplex)} for k, v in stats.items()},
        "net_if_addrs": {
            k: [{**d(a), "family": int(a.family)} for a in v]
            for k, v in source.net_if_addrs().items()
        },
        "net_io_counters": {k: d(v) for k, v in source.net_io_counters(pernic=True).items()},
        "cpu_count": {"logical": source.cpu_count(), "physical": source.cpu_count(logical=False)},
        "cpu_freq": d(source.cpu_freq()),
        "getloadavg": list(source.getloadavg()),
        "virtual_memory": d(source.virtual_memory()),
        "swap_memory": d(source.swap_memory()),
        "boot_time": source.boot_time(),
        "captured_at": time.time(),
    }


def write(snapshot: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in snapshot.items():
        (folder / f"{key}.json").write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    import psutil

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m probelink.probes.psutil_source OUTPUT_DIR")
    write(capture(psutil), Path(sys.argv[1]))
