"""The sensor probes' verdicts on the captured machines and on tiny trees."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from probelink.probes import registry, runner
from probelink.probes.context import LIVE_SYSFS, ProbeContext
from probelink.probes.psutil_source import PsutilSnapshot
from probelink.probes.results import ERROR, FAIL, PASS, SKIP, WARN
from probelink.probes.sensors.cooling_devices import cooling_devices
from probelink.probes.sensors.hwmon_fans import fans
from probelink.probes.sensors.hwmon_temperatures import from_psutil, temperatures
from probelink.probes.sensors.hwmon_voltages import voltages
from probelink.probes.sensors.iio import iio
from probelink.probes.sensors.thermal_zones import thermal_zones
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import probe_pb2, sensors_pb2
from probelink.v1.probe_pb2 import Check, Fact, ProbeResult
from tests.conftest import MACHINES
from tests.treebuilder import Link, write_tree

SENSOR_PROBES = (
    "sensors.cooling_devices",
    "sensors.fans",
    "sensors.iio",
    "sensors.temperatures",
    "sensors.thermal_zones",
    "sensors.voltages",
)


def machine(name: str) -> ProbeContext:
    return ProbeContext.for_machine(MACHINES / name / "sys")


def verdicts(results: list[ProbeResult]) -> list[tuple[str, int, list[str]]]:
    """(subject, status, codes of the checks that are findings) per result."""
    return [(r.subject, r.status, [c.code for c in r.checks if c.status != PASS]) for r in results]


def run(name: str, ctx: ProbeContext) -> list[ProbeResult]:
    return runner.run_one(registry.get(name), ctx)


def test_the_family_registers_its_probes() -> None:
    names = [s.name for s in registry.all_probes() if s.family == "sensors"]
    assert names == list(SENSOR_PROBES)
    assert {registry.get(n).category for n in names} == {registry.SENSORS}


# ---------------------------------------------------------------- captured machines


def test_laptop_uninitialised_acpi_zone_is_a_sensor_fault_not_cold_or_hot() -> None:
    ctx = machine("laptop-worn-battery")
    zones = thermal_zones(ctx)
    assert verdicts(zones) == [
        ("thermal_zone0", WARN, ["sensors.sensor_fault"]),
        ("thermal_zone1", PASS, []),  # its passive trips read 0: unprogrammed, not judged
        ("thermal_zone2", PASS, []),
    ]
    message = (
        "thermal_zone0 (acpitz) reads -273.2 °C, outside what a working sensor reports "
        "(-60 °C to 200 °C): the sensor is faulty or was never initialised; "
        "this says nothing about the machine being cold or hot"
    )
    assert zones[0] == ProbeResult(
        status=WARN,
        evidence=message,
        subject="thermal_zone0",
        checks=[Check(code="sensors.sensor_fault", status=WARN, message=message)],
        thermal_zone=sensors_pb2.ThermalZone(
            zone="thermal_zone0",
            type="acpitz",
            temp_celsius=-273.2,
            trip_points=[sensors_pb2.TripPoint(type="critical", temp_celsius=103.0)],
            sensor_fault=True,
            mode="enabled",
        ),
    )
    assert [c.code for c in zones[2].checks] == ["sensors.zone_critical", "sensors.zone_hot"]


def test_laptop_temperatures_healthy_cores_not_flagged_and_zone_mirror_not_counted() -> None:
    # acpitz (hwmon0) is thermal_zone0 shown again by the kernel's thermal_hwmon bridge:
    # its fault is judged once, by sensors.thermal_zones, not twice.
    results = temperatures(machine("laptop-worn-battery"))
    assert verdicts(results) == [
        ("coretemp/Package id 0", PASS, []),
        ("coretemp/Core 0", PASS, []),
        ("coretemp/Core 1", PASS, []),
        ("coretemp/Core 2", PASS, []),
        ("coretemp/Core 3", PASS, []),
    ]
    assert results[0] == ProbeResult(
        status=PASS,
        evidence="coretemp/Package id 0: 52 °C (high 84 °C, critical 100 °C)",
        subject="coretemp/Package id 0",
        checks=[
            Check(
                code="sensors.temp_critical",
                status=PASS,
                message="Package id 0 at 52 °C is below its critical limit 100 °C",
            ),
            Check(
                code="sensors.temp_high",
                status=PASS,
                message="Package id 0 at 52 °C is below its high limit 84 °C",
            ),
        ],
        facts=[Fact(name="hwmon", value="hwmon3"), Fact(name="chip_name_source", value="name")],
        thermal_sensor=sensors_pb2.ThermalSensor(
            chip="coretemp",
            label="Package id 0",
            source=sensors_pb2.SENSOR_SOURCE_HWMON,
            temp_celsius=52.0,
            max_celsius=84.0,
            crit_celsius=100.0,
        ),
    )


def test_laptop_cooling_devices_are_informational() -> None:
    results = cooling_devices(machine("laptop-worn-battery"))
    assert [(r.subject, r.status, r.evidence) for r in results] == [
        ("cooling_device0", PASS, "cooling_device0 (Processor): state 0 of 10"),
        ("cooling_device1", PASS, "cooling_device1 (Processor): state 0 of 10"),
        ("cooling_device2", PASS, "cooling_device2 (intel_powerclamp): inactive (up to state 50)"),
        ("cooling_device3", PASS, "cooling_device3 (TCC Offset): state 5 of 63"),
    ]
    assert results[2].cooling_device == sensors_pb2.CoolingDevice(
        name="cooling_device2", type="intel_powerclamp", max_state=50
    )


def test_desktop_stalled_fan_fails_and_idle_fans_pass() -> None:
    results = fans(machine("desktop-no-battery"))
    assert verdicts(results) == [
        ("nct6775/fan1", PASS, []),
        ("nct6775/fan2", FAIL, ["sensors.fan_stalled", "sensors.fan_alarm"]),
        ("nct6775/fan3", PASS, []),  # 0 RPM with a minimum of 0: resting at idle
        ("it8792/fan1", PASS, []),  # 0 RPM with no minimum at all
    ]
    assert results[1].fan == sensors_pb2.Fan(
        chip="nct6775", label="fan2", rpm=0.0, min_rpm=600.0, alarm=True
    )
    assert results[1].checks[0].message == (
        "fan2 reads 0 RPM against a minimum of 600 RPM: the fan is not turning "
        "(seized, unplugged or a broken tachometer wire)"
    )


def test_desktop_temperatures_and_voltages() -> None:
    ctx = machine("desktop-no-battery")
    temps = temperatures(ctx)
    assert verdicts(temps) == [
        ("nct6775/SYSTIN", PASS, []),
        ("nct6775/CPUTIN", PASS, []),
        ("k10temp/Tctl", PASS, []),
        ("it8792/temp1", PASS, []),
        ("it8792/temp2", PASS, []),
        ("it8792/temp3", SKIP, []),  # an empty temp3_input: no reading, nothing judged
    ]
    assert [f.value for f in temps[2].facts if f.name == "chip_name_source"] == ["driver"]
    assert [f.value for f in temps[3].facts if f.name == "chip_name_source"] == ["device/name"]
    volts = voltages(ctx)
    assert verdicts(volts) == [
        ("nct6775/in0", PASS, []),
        ("nct6775/in1", PASS, []),
        ("nct6775/in2", PASS, []),
        ("it8792/in0", PASS, []),
    ]
    # in1's window reads 0..0: never programmed, so not judged at all.
    assert list(volts[1].checks) == []
    assert run("sensors.thermal_zones", ctx)[0].status == SKIP


def test_board_iio_sensors_reported_with_kind() -> None:
    results = iio(machine("board-iio-typec"))
    assert [(r.subject, r.status, r.iio_sensor.kind) for r in results] == [
        ("iio:device0", PASS, sensors_pb2.IIO_KIND_ACCELEROMETER),
        ("iio:device1", PASS, sensors_pb2.IIO_KIND_GYROSCOPE),
        ("iio:device2", PASS, sensors_pb2.IIO_KIND_LIGHT),
    ]
    light = results[2].iio_sensor
    assert [(c.channel, round(c.value, 6), c.unit) for c in light.channels] == [
        ("in_illuminance", 134.2, "lux"),
        ("in_intensity_both", 134.2, ""),
    ]
    assert results[0].evidence == (
        "accel_3d (accelerometer): in_accel_x -0.1177 m/s^2, in_accel_y 0.2452 m/s^2, "
        "in_accel_z -9.826 m/s^2"
    )


def test_phone_zones_pass_and_hwmon_probes_skip_without_psutil_stand_in() -> None:
    ctx = machine("phone-charge-units")
    assert verdicts(thermal_zones(ctx)) == [
        ("thermal_zone0", PASS, []),
        ("thermal_zone1", PASS, []),
    ]
    # The capture has a psutil snapshot, but on a captured machine the tree is the authority.
    skipped = run("sensors.temperatures", ctx)
    assert [(r.status, r.evidence) for r in skipped] == [
        (SKIP, "this machine has no hwmon sensor chips (class/hwmon is empty or missing)")
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("laptop-worn-battery", {"sensors.fans", "sensors.voltages", "sensors.iio"}),
        ("desktop-no-battery", {"sensors.thermal_zones", "sensors.cooling_devices", "sensors.iio"}),
        (
            "board-iio-typec",
            {
                "sensors.temperatures",
                "sensors.fans",
                "sensors.voltages",
                "sensors.thermal_zones",
                "sensors.cooling_devices",
            },
        ),
        (
            "phone-charge-units",
            {"sensors.temperatures", "sensors.fans", "sensors.voltages", "sensors.iio"},
        ),
    ],
)
def test_each_machine_skips_exactly_what_it_lacks(name: str, expected: set[str]) -> None:
    ctx = machine(name)
    skipped = set()
    for probe in SENSOR_PROBES:
        results = run(probe, ctx)
        assert all(r.status != ERROR for r in results), (probe, results)
        if [r.status for r in results] == [SKIP] and not results[0].subject:
            skipped.add(probe)
        # What the registry's cheap support check rules out, the probe skips too (the probe
        # may still skip more: hwmon chips without any fan, say).
        if registry.get(probe).unsupported_reason(ctx) is not None:
            assert probe in skipped
    assert skipped == expected


def test_missing_sysfs_root_skips_every_probe_with_the_reason(tmp_path: Path) -> None:
    ctx = ProbeContext.for_machine(tmp_path / "nowhere" / "sys")
    for probe in SENSOR_PROBES:
        [r] = run(probe, ctx)
        assert (r.status, r.evidence) == (
            SKIP,
            f"the sysfs root {tmp_path / 'nowhere' / 'sys'} does not exist",
        )


# ---------------------------------------------------------------- tiny trees

HW = "devices/platform/chip.0/hwmon/hwmon0"


def hwmon_ctx(tmp_path: Path, attrs: dict[str, str], **kwargs: object) -> ProbeContext:
    tree: dict[str, str | Link] = {
        "class/hwmon/hwmon0": Link(f"../../{HW}"),
        f"{HW}/name": "chip\n",
    }
    tree |= {f"{HW}/{k}": v + "\n" for k, v in attrs.items()}
    return ProbeContext.for_machine(write_tree(tmp_path / "m" / "sys", tree), **kwargs)  # type: ignore[arg-type]


def test_temperature_limits(tmp_path: Path) -> None:
    ctx = hwmon_ctx(
        tmp_path,
        {
            "temp1_input": "84000", "temp1_max": "84000", "temp1_crit": "100000",  # at max
            "temp2_input": "100000", "temp2_max": "84000", "temp2_crit": "100000",  # at crit
            "temp3_input": "60000", "temp3_alarm": "1",  # the chip's own alarm
            "temp4_input": "0", "temp4_fault": "1",  # an open diode
            "temp5_input": "255000",  # a missing diode read as 255 °C
            "temp6_input": "-128000",  # a lost sensor read as -128 °C
            "temp7_input": "120000",  # hot, but the chip gives no limit to judge against
            # a latched or spurious alarm bit, well below the critical limit
            "temp8_input": "45000", "temp8_crit": "100000", "temp8_alarm": "1",
            # the alarm backed by a reading at the critical limit
            "temp9_input": "100000", "temp9_crit": "100000", "temp9_alarm": "1",
        },
    )  # fmt: skip
    results = temperatures(ctx)
    assert verdicts(results) == [
        ("chip/temp1", WARN, ["sensors.temp_high"]),
        ("chip/temp2", FAIL, ["sensors.temp_critical", "sensors.temp_high"]),
        ("chip/temp3", WARN, ["sensors.temp_alarm"]),  # an alarm bit alone is no failure
        ("chip/temp4", WARN, ["sensors.sensor_fault"]),
        ("chip/temp5", WARN, ["sensors.sensor_fault"]),
        ("chip/temp6", WARN, ["sensors.sensor_fault"]),
        ("chip/temp7", PASS, []),
        ("chip/temp8", WARN, ["sensors.temp_alarm"]),
        ("chip/temp9", FAIL, ["sensors.temp_alarm", "sensors.temp_critical"]),
    ]
    assert list(results[7].checks) == [
        Check(
            code="sensors.temp_alarm",
            status=WARN,
            message="the chip raised its alarm for temp8 at 45 °C",
        ),
        Check(
            code="sensors.temp_critical",
            status=PASS,
            message="temp8 at 45 °C is below its critical limit 100 °C",
        ),
    ]
    assert [(c.code, c.status) for c in results[8].checks] == [
        ("sensors.temp_alarm", FAIL),
        ("sensors.temp_critical", FAIL),
    ]
    assert results[0].evidence == "chip/temp1: temp1 at 84 °C is at or above its high limit 84 °C"
    assert results[3].evidence == (
        "chip/temp4: the chip chip reports temp4 as faulty (open or shorted sensor); "
        "its reading is not a temperature"
    )
    assert results[6].evidence == "chip/temp7: 120 °C (the chip sets no limits)"
    assert results[4].thermal_sensor.sensor_fault


def test_plausible_range_is_a_limit(tmp_path: Path) -> None:
    ctx = hwmon_ctx(
        tmp_path, {"temp1_input": "-70000"}, limits={"sensors.min_plausible_celsius": -80}
    )
    assert verdicts(temperatures(ctx)) == [("chip/temp1", PASS, [])]


def test_fan_limits(tmp_path: Path) -> None:
    ctx = hwmon_ctx(
        tmp_path,
        {
            "fan1_input": "400", "fan1_min": "600",  # turning, too slowly
            "fan2_input": "900", "fan2_alarm": "1",
            "fan3_input": "0", "fan3_fault": "1",
        },
    )  # fmt: skip
    assert verdicts(fans(ctx)) == [
        ("chip/fan1", WARN, ["sensors.fan_slow"]),
        ("chip/fan2", WARN, ["sensors.fan_alarm"]),
        ("chip/fan3", WARN, ["sensors.sensor_fault"]),
    ]


def test_voltage_window(tmp_path: Path) -> None:
    ctx = hwmon_ctx(
        tmp_path,
        {
            "in0_input": "1600", "in0_min": "600", "in0_max": "1500",
            "in1_input": "3300", "in1_min": "2976", "in1_max": "3632", "in1_alarm": "1",
            "in2_input": "500", "in2_min": "600", "in2_max": "1500",
        },
    )  # fmt: skip
    results = voltages(ctx)
    assert verdicts(results) == [
        ("chip/in0", WARN, ["sensors.voltage_out_of_range"]),
        ("chip/in1", WARN, ["sensors.voltage_alarm"]),
        ("chip/in2", WARN, ["sensors.voltage_out_of_range"]),
    ]
    assert (
        results[0].evidence == "chip/in0: in0 at 1.600 V is outside its window [0.600 V, 1.500 V]"
    )


def test_unreadable_sensor_is_error_and_hides_no_other(tmp_path: Path) -> None:
    ctx = hwmon_ctx(
        tmp_path,
        {
            "temp1_input": "50000",
            "temp2_input": "50000",
            "temp3_input": "n/a",
            "fan1_input": "1000",
        },
    )

    def read(path: Path) -> bytes:
        if path.name in ("temp1_input", "fan1_input"):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return path.read_bytes()

    ctx.sysfs = SysfsRoot(ctx.sysfs.root, read=read)
    results = temperatures(ctx)
    assert verdicts(results) == [
        ("chip/temp1", ERROR, []),
        ("chip/temp2", PASS, []),
        ("chip/temp3", ERROR, []),
    ]
    rel = "class/hwmon/hwmon0/temp1_input"
    assert results[0].error == probe_pb2.ProbeError(
        kind=probe_pb2.PROBE_ERROR_KIND_FILE_READ,
        message=f"reading {rel} failed: EINVAL (Invalid argument)",
        source=rel,
    )
    assert (
        results[0].evidence
        == f"chip/temp1: could not read: reading {rel} failed: EINVAL (Invalid argument)"
    )
    assert results[2].error.kind == probe_pb2.PROBE_ERROR_KIND_PARSE
    assert verdicts(fans(ctx)) == [("chip/fan1", ERROR, [])]


def test_zone_trip_points(tmp_path: Path) -> None:
    tz = "devices/virtual/thermal"
    tree: dict[str, str | Link] = {}
    for n, (temp, trips) in enumerate(
        [
            ("96000", [("critical", "105000"), ("passive", "95000")]),  # throttling
            ("105000", [("critical", "105000"), ("hot", "100000")]),  # at critical
            ("60000", [("active", "50000")]),  # an active trip only steps a fan up
            ("45000", [("passive", "-273200"), ("critical", "0")]),  # impossible / unset trips
        ]
    ):
        tree[f"class/thermal/thermal_zone{n}"] = Link(f"../../{tz}/thermal_zone{n}")
        tree[f"{tz}/thermal_zone{n}/type"] = "soc\n"
        tree[f"{tz}/thermal_zone{n}/temp"] = temp + "\n"
        for i, (kind, value) in enumerate(trips):
            tree[f"{tz}/thermal_zone{n}/trip_point_{i}_type"] = kind + "\n"
            tree[f"{tz}/thermal_zone{n}/trip_point_{i}_temp"] = value + "\n"
    ctx = ProbeContext.for_machine(write_tree(tmp_path / "m" / "sys", tree))
    results = thermal_zones(ctx)
    assert verdicts(results) == [
        ("thermal_zone0", WARN, ["sensors.zone_hot"]),
        ("thermal_zone1", FAIL, ["sensors.zone_critical", "sensors.zone_hot"]),
        ("thermal_zone2", PASS, []),
        ("thermal_zone3", PASS, []),
    ]
    assert (
        results[0].evidence
        == "thermal_zone0 (soc) at 96 °C is at or above its throttling trip 95 °C"
    )


def test_psutil_results_are_judged_the_same_way() -> None:
    snapshot = PsutilSnapshot.load(MACHINES / "laptop-worn-battery" / "psutil")
    ctx = machine("laptop-worn-battery")
    results = from_psutil(snapshot.sensors_temperatures(), ctx)
    assert verdicts(results) == [
        ("acpitz/temp1", WARN, ["sensors.sensor_fault"]),
        ("coretemp/Package id 0", PASS, []),
        ("coretemp/Core 0", PASS, []),
        ("coretemp/Core 1", PASS, []),
        ("coretemp/Core 2", PASS, []),
        ("coretemp/Core 3", PASS, []),
    ]
    assert {r.thermal_sensor.source for r in results} == {sensors_pb2.SENSOR_SOURCE_PSUTIL}


def test_live_machine_without_hwmon_falls_back_to_psutil() -> None:
    if SysfsRoot(LIVE_SYSFS).listdir("class/hwmon"):
        pytest.skip("this host has hwmon chips: the fallback does not apply here")
    snapshot = PsutilSnapshot.load(MACHINES / "desktop-no-battery" / "psutil")
    ctx = ProbeContext(sysfs=SysfsRoot(LIVE_SYSFS), psutil=snapshot)
    assert ctx.live
    temps = run("sensors.temperatures", ctx)
    assert [(r.subject, r.status, r.thermal_sensor.source) for r in temps] == [
        ("it8792/temp1", PASS, sensors_pb2.SENSOR_SOURCE_PSUTIL),
        ("it8792/temp2", PASS, sensors_pb2.SENSOR_SOURCE_PSUTIL),
        ("nct6775/SYSTIN", PASS, sensors_pb2.SENSOR_SOURCE_PSUTIL),
        ("nct6775/CPUTIN", PASS, sensors_pb2.SENSOR_SOURCE_PSUTIL),
    ]
    # psutil has no fan minimum: a fan at 0 RPM cannot be judged stalled from it.
    assert verdicts(run("sensors.fans", ctx)) == [
        ("it8792/fan1", PASS, []),
        ("nct6775/fan1", PASS, []),
        ("nct6775/fan2", PASS, []),
        ("nct6775/fan3", PASS, []),
    ]
    # No psutil either: an honest SKIP.
    bare = ProbeContext(sysfs=SysfsRoot(LIVE_SYSFS), psutil=PsutilSnapshot({}))
    [r] = run("sensors.temperatures", bare)
    assert r.status == SKIP
    assert r.evidence.endswith(", and psutil reports no temperatures")


def test_zone_without_data_is_skipped_alone(tmp_path: Path) -> None:
    tz = "devices/virtual/thermal"
    root = write_tree(
        tmp_path / "m" / "sys",
        {
            "class/thermal/thermal_zone0": Link(f"../../{tz}/thermal_zone0"),
            f"{tz}/thermal_zone0/type": "iwlwifi_1\n",
            f"{tz}/thermal_zone0/temp": "40000\n",
            "class/thermal/thermal_zone1": Link(f"../../{tz}/thermal_zone1"),
            f"{tz}/thermal_zone1/type": "pch_skylake\n",
            f"{tz}/thermal_zone1/temp": "45000\n",
        },
    )

    def read(path: Path) -> bytes:
        # iwlwifi answers ENODATA while the radio is off: no reading, not a failure.
        if path.parent.name == "thermal_zone0" and path.name == "temp":
            raise OSError(errno.ENODATA, os.strerror(errno.ENODATA))
        return path.read_bytes()

    ctx = ProbeContext.for_machine(root)
    ctx.sysfs = SysfsRoot(root, read=read)
    results = thermal_zones(ctx)
    assert [(r.subject, r.status, r.evidence) for r in results] == [
        ("thermal_zone0", SKIP, "thermal_zone0 (iwlwifi_1): the zone gives no reading now"),
        ("thermal_zone1", PASS, "thermal_zone1 (pch_skylake): 45 °C"),
    ]


def test_chip_problems_travel_as_facts(tmp_path: Path) -> None:
    ctx = hwmon_ctx(tmp_path, {"temp1_input": "45000"})

    def read(path: Path) -> bytes:
        if path.name == "name" and path.exists():
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return path.read_bytes()

    ctx.sysfs = SysfsRoot(ctx.sysfs.root, read=read)
    [r] = temperatures(ctx)
    assert (r.subject, r.status) == ("hwmon0/temp1", PASS)
    assert list(r.facts) == [
        Fact(name="hwmon", value="hwmon0"),
        Fact(name="chip_name_source", value="directory"),
        Fact(
            name="chip_read_problem",
            value="reading class/hwmon/hwmon0/name failed: EIO (Input/output error)",
        ),
    ]
