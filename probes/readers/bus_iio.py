"""Reader of `bus/iio/devices/iio:deviceN`: accelerometers, gyroscopes, light sensors and kin.

    >>> sysfs = SysfsRoot(Path("tests/fixtures/machines/board-iio-typec/sys"))
    >>> dev = read_iio_devices(sysfs)[0]
    >>> dev.name, dev.channels[0]
    ('accel_3d', IioChannel(channel='in_accel_x', type='accel', value=-0.1176798, unit='m/s^2',
                            raw=-12.0, scale=0.00980665, offset=0.0, processed=False))

Following Documentation/ABI/testing/sysfs-bus-iio:

- A channel is an `in_<type>[N][_<modifier>]_raw` file (e.g. `in_accel_x_raw`,
  `in_illuminance_raw`, `in_voltage0_raw`) or an already processed `..._input` file.
- A raw value becomes a physical one as `(raw + offset) * scale`; `offset` and
  `scale` come from the channel's own `<stem>_offset` / `<stem>_scale`, or else
  from the attribute shared by every channel of the type (`in_accel_scale`). No
  offset means 0, no scale means 1 (the driver then reports processed values).
  `_input` values are processed: neither offset nor scale applies.
- Units after scaling are the ABI's: accel m/s^2, anglvel rad/s, illuminance lux,
  magn gauss, pressure kPa, temp millidegrees Celsius and humidityrelative milli-percent.
  The last two are converted here to degrees Celsius and percent, so `unit` is the unit
  of `value` as held in the record.

Read failures are kept per device in `errors` (see `problems.ReadProblem`); a
channel whose value could not be read has value None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from probelink.probes.readers.problems import Problems, ReadProblem
from probelink.probes.sysread import SysfsRoot

BUS_IIO_DEVICES = "bus/iio/devices"

# in_accel_x_raw, in_voltage0_raw, in_illuminance_input, in_voltage0-voltage1_raw:
# the stem ("accel_x") and the type, the leading letters ("accel").
_CHANNEL = re.compile(r"^in_(([a-z]+)[^_]*(?:_[a-z0-9]+)*?)_(raw|input)$")

# Unit of each type after scale and offset, and a divisor to the unit we hold.
_UNITS: dict[str, tuple[str, float]] = {
    "accel": ("m/s^2", 1.0),
    "anglvel": ("rad/s", 1.0),
    "illuminance": ("lux", 1.0),
    "magn": ("gauss", 1.0),
    "pressure": ("kPa", 1.0),
    "temp": ("celsius", 1000.0),  # ABI: millidegrees Celsius
    "humidityrelative": ("percent", 1000.0),  # ABI: milli-percent
    "voltage": ("mV", 1.0),
    "current": ("mA", 1.0),
}


@dataclass(frozen=True)
class IioChannel:
    """One channel with (raw + offset) x scale applied, in `unit`."""

    # The attribute stem with its direction, e.g. "in_accel_x", "in_illuminance".
    channel: str
    # The channel type, e.g. "accel", "anglvel", "illuminance", "proximity".
    type: str
    value: float | None
    # Unit of `value`; "" when the ABI gives the type no unit (proximity, intensity).
    unit: str
    raw: float | None
    scale: float | None
    offset: float | None
    # True for an `_input` channel the driver already processed.
    processed: bool = False


@dataclass(frozen=True)
class IioDevice:
    """One `bus/iio/devices/iio:deviceN`."""

    device: str
    # "name": the part or driver, e.g. "accel_3d", "als", "bmi160".
    name: str | None
    channels: list[IioChannel] = field(default_factory=list)
    errors: list[ReadProblem] = field(default_factory=list)

    @property
    def types(self) -> list[str]:
        """Channel types in the order they first appear."""
        return list(dict.fromkeys(c.type for c in self.channels))


def iio_device_dirs(sysfs: SysfsRoot) -> list[str]:
    """Names of the iio:deviceN entries that lead to a directory inside the root."""
    names = [n for n in sysfs.listdir(BUS_IIO_DEVICES) if re.fullmatch(r"iio:device\d+", n)]
    names = [n for n in names if sysfs.is_dir(f"{BUS_IIO_DEVICES}/{n}")]
    return sorted(names, key=lambda n: int(n[len("iio:device") :]))


def read_iio_devices(sysfs: SysfsRoot) -> list[IioDevice]:
    """Every IIO device under the root; [] when there is none. Triggers are left out."""
    return [read_iio_device(sysfs, name) for name in iio_device_dirs(sysfs)]


def _shared(stem: str, type_: str) -> list[str]:
    """The stems whose scale/offset may apply, most specific first.

    "accel_x" -> ["accel_x", "accel"]; "voltage0" -> ["voltage0", "voltage"].
    """
    return [stem] if stem == type_ else [stem, type_]


def read_iio_device(sysfs: SysfsRoot, device: str) -> IioDevice:
    base = f"{BUS_IIO_DEVICES}/{device}"
    problems = Problems()
    name = problems.read(sysfs.read_text, f"{base}/name")
    attrs = set(sysfs.listdir(base))

    def number(attr: str) -> float | None:
        if attr not in attrs:
            return None
        return problems.read(sysfs.read_float, f"{base}/{attr}")

    def first(stems: list[str], item: str) -> float | None:
        for stem in stems:
            if f"in_{stem}_{item}" in attrs:
                return number(f"in_{stem}_{item}")
        return None

    channels = []
    seen: set[str] = set()
    # _input first: where a driver offers both, the processed value is the one to trust.
    for attr in sorted(attrs, key=lambda a: (not a.endswith("_input"), a)):
        m = _CHANNEL.match(attr)
        if not m or m.group(1) in seen:
            continue
        stem, type_, item = m.group(1), m.group(2), m.group(3)
        seen.add(stem)
        unit, divisor = _UNITS.get(type_, ("", 1.0))
        raw = number(attr)
        if item == "input":
            value = None if raw is None else raw / divisor
            channels.append(IioChannel(f"in_{stem}", type_, value, unit, raw, None, None, True))
            continue
        scale = first(_shared(stem, type_), "scale")
        offset = first(_shared(stem, type_), "offset")
        value = None
        if raw is not None:
            value = (raw + (offset or 0.0)) * (1.0 if scale is None else scale) / divisor
        channels.append(IioChannel(f"in_{stem}", type_, value, unit, raw, scale, offset))
    channels.sort(key=lambda c: c.channel)
    return IioDevice(device, name, channels, problems.items)
