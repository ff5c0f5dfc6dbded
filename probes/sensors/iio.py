"""sensors.iio: IIO sensors (accelerometer, gyroscope, light, ...) with scale and offset applied.

    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/board-iio-typec/sys"))
    >>> [(r.subject, r.evidence) for r in iio(ctx)]
    [('iio:device0', 'accel_3d (accelerometer): in_accel_x -0.1177 m/s^2, ...'), ...]

One result per device, PASS, reporting each channel's value in its unit (see
`readers.bus_iio` for the ABI's units). Nothing is judged yet: an accelerometer at rest
should read about 9.81 m/s^2 in magnitude, but the board may be moving, so that needs a
routine with the person's help, not a snapshot. A device whose channels could not be read
is ERROR with the first problem; a device with some channels read keeps the rest as facts.
"""

from __future__ import annotations

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.bus_iio import (
    BUS_IIO_DEVICES,
    IioDevice,
    iio_device_dirs,
    read_iio_devices,
)
from probelink.probes.registry import SENSORS, telemetry
from probelink.probes.results import PASS, errored, fact, result
from probelink.probes.sensors._common import absent_reason
from probelink.v1 import probe_pb2, sensors_pb2

# Channel type -> what the device is. A device with several types (an IMU with accel,
# anglvel and a die temperature) is named by the first of these it has: the die
# temperature of a motion sensor does not make it a thermometer.
_KINDS: list[tuple[str, sensors_pb2.IioKind.ValueType, str]] = [
    ("accel", sensors_pb2.IIO_KIND_ACCELEROMETER, "accelerometer"),
    ("anglvel", sensors_pb2.IIO_KIND_GYROSCOPE, "gyroscope"),
    ("magn", sensors_pb2.IIO_KIND_MAGNETOMETER, "magnetometer"),
    ("illuminance", sensors_pb2.IIO_KIND_LIGHT, "light sensor"),
    ("intensity", sensors_pb2.IIO_KIND_LIGHT, "light sensor"),
    ("proximity", sensors_pb2.IIO_KIND_PROXIMITY, "proximity sensor"),
    ("pressure", sensors_pb2.IIO_KIND_PRESSURE, "pressure sensor"),
    ("humidityrelative", sensors_pb2.IIO_KIND_HUMIDITY, "humidity sensor"),
    ("temp", sensors_pb2.IIO_KIND_TEMPERATURE, "thermometer"),
]


def kind_of(device: IioDevice) -> tuple[sensors_pb2.IioKind.ValueType, str]:
    types = set(device.types)
    for type_, kind, words in _KINDS:
        if type_ in types:
            return kind, words
    if types:
        return sensors_pb2.IIO_KIND_OTHER, "sensor"
    return sensors_pb2.IIO_KIND_UNSPECIFIED, "device without channels"


def _support(ctx: ProbeContext) -> str | None:
    return (
        None if iio_device_dirs(ctx.sysfs) else absent_reason(ctx, "IIO sensors", BUS_IIO_DEVICES)
    )


def reported(d: IioDevice) -> probe_pb2.ProbeResult:
    kind, words = kind_of(d)
    read = [c for c in d.channels if c.value is not None]
    proto = sensors_pb2.IioSensor(
        device=d.device,
        name=d.name or "",
        kind=kind,
        channels=[
            sensors_pb2.IioChannel(channel=c.channel, value=c.value, unit=c.unit)
            for c in d.channels
            if c.value is not None
        ],
    )
    if d.errors and not read:
        return errored(d.errors[0].to_error(), d.device, iio_sensor=proto)
    values = ", ".join(f"{c.channel} {c.value:.4g} {c.unit}".rstrip() for c in read)
    label = f"{d.name} ({words})" if d.name else words
    return result(
        PASS,
        f"{label}: {values}" if values else f"{label}: no channels to read",
        subject=d.device,
        facts=[fact("read_problem", p.message) for p in d.errors],
        iio_sensor=proto,
    )


@telemetry(
    "sensors.iio",
    SENSORS,
    "IIO sensors: accelerometer, gyroscope, light and others",
    support=_support,
)
def iio(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    devices = read_iio_devices(ctx.sysfs)
    if not devices:
        raise Unsupported(absent_reason(ctx, "IIO sensors", BUS_IIO_DEVICES))
    return [reported(d) for d in devices]
