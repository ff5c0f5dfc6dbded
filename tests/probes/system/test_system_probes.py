"""The system.* probes and device_identity against each captured machine, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from probelink.probes import registry
from probelink.probes.context import ProbeContext
from probelink.probes.results import ERROR, PASS, SKIP, WARN, check, fact, result
from probelink.probes.runner import run_one
from probelink.probes.system.identity import device_identity
from probelink.v1 import probe_pb2, report_pb2, system_pb2
from tests.conftest import MACHINES

SYSTEM_PROBES = ("system.cpu", "system.dmi", "system.memory", "system.os")

NO_DMI = (
    "no DMI/SMBIOS identity (class/dmi/id is absent): phones, ARM boards and some "
    "virtual machines have no SMBIOS tables"
)


def run(name: str, ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    results = run_one(registry.get(name), ctx)
    for r in results:
        r.ClearField("duration")  # the only wall-clock part
    return results


def stamped(name: str, r: probe_pb2.ProbeResult) -> probe_pb2.ProbeResult:
    spec = registry.get(name)
    r.probe, r.category, r.kind = spec.name, spec.category, spec.kind
    return r


def machine_ctx(machine: str, **kwargs: object) -> ProbeContext:
    return ProbeContext.for_machine(MACHINES / machine / "sys", **kwargs)  # type: ignore[arg-type]


def copy_machine(tmp_path: Path, machine: str) -> Path:
    dest = tmp_path / machine
    shutil.copytree(MACHINES / machine, dest, symlinks=True)
    return dest


# ---- the whole result of every probe on every machine --------------------------------------

EXPECTED: dict[tuple[str, str], probe_pb2.ProbeResult] = {
    ("laptop-worn-battery", "system.cpu"): result(
        PASS,
        "11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz, 4 cores / 8 threads, up to 4700 MHz, "
        "load 10.5 %",
        cpu=system_pb2.CpuInfo(
            model_name="11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz",
            logical_cores=8,
            physical_cores=4,
            freq_current_mhz=1248.394,
            freq_max_mhz=4700.0,
            load_1m_pct=10.5,
            architecture="x86_64",
        ),
    ),
    ("laptop-worn-battery", "system.memory"): result(
        PASS,
        "15.3 GiB RAM, 9.5 GiB available (62.2 %), swap 256 MiB of 4.0 GiB used",
        memory=system_pb2.MemoryInfo(
            total_bytes=16459370496,
            available_bytes=10234322944,
            used_pct=37.8,
            swap_total_bytes=4294963200,
            swap_used_bytes=268435456,
        ),
    ),
    ("laptop-worn-battery", "system.os"): result(
        PASS,
        "Ubuntu 24.04.1 LTS, kernel 6.8.0-49-generic, x86_64, up 9 h 48 min",
        facts=[fact("os_release.id", "ubuntu"), fact("os_release.version_id", "24.04")],
        os=system_pb2.OsInfo(
            system="Linux",
            kernel_release="6.8.0-49-generic",
            distribution="Ubuntu 24.04.1 LTS",
            machine="x86_64",
            hostname="thinkpad-x1",
            uptime_s=35280.0,
        ),
    ),
    ("laptop-worn-battery", "system.dmi"): result(
        PASS,
        "LENOVO 20XW00GMUS (ThinkPad X1 Carbon Gen 9), notebook, BIOS N32ET86W (1.62 ) of "
        "10/13/2023",
        facts=[fact("chassis_vendor", "LENOVO"), fact("chassis_type_code", "10")],
        dmi=system_pb2.DmiInfo(
            sys_vendor="LENOVO",
            product_name="20XW00GMUS",
            product_version="ThinkPad X1 Carbon Gen 9",
            product_serial="PF3ABCDE",
            board_vendor="LENOVO",
            board_name="20XW00GMUS",
            bios_vendor="LENOVO",
            bios_version="N32ET86W (1.62 )",
            bios_date="10/13/2023",
            chassis_type="Notebook",
        ),
    ),
    ("desktop-no-battery", "system.cpu"): result(
        PASS,
        "AMD Ryzen 5 3600 6-Core Processor, 6 cores / 12 threads, up to 3600 MHz, load 12.7 %",
        cpu=system_pb2.CpuInfo(
            model_name="AMD Ryzen 5 3600 6-Core Processor",
            logical_cores=12,
            physical_cores=6,
            freq_current_mhz=2733.517,
            freq_max_mhz=3600.0,
            load_1m_pct=12.7,
            architecture="x86_64",
        ),
    ),
    ("desktop-no-battery", "system.memory"): result(
        PASS,
        "31.3 GiB RAM, 26.2 GiB available (83.7 %), swap 0 MiB of 976 MiB used",
        memory=system_pb2.MemoryInfo(
            total_bytes=33595834368,
            available_bytes=28103426048,
            used_pct=16.3,
            swap_total_bytes=1023406080,
            swap_used_bytes=0,
        ),
    ),
    ("desktop-no-battery", "system.os"): result(
        PASS,
        "Debian GNU/Linux 12 (bookworm), kernel 6.1.0-28-amd64, x86_64, up 6 d 19 h",
        facts=[fact("os_release.id", "debian"), fact("os_release.version_id", "12")],
        os=system_pb2.OsInfo(
            system="Linux",
            kernel_release="6.1.0-28-amd64",
            distribution="Debian GNU/Linux 12 (bookworm)",
            machine="x86_64",
            hostname="desk-b450",
            uptime_s=588000.0,
        ),
    ),
    ("desktop-no-battery", "system.dmi"): result(
        PASS,
        "ASUSTeK COMPUTER INC. PRIME B450M-A, desktop, BIOS 3211 of 10/19/2022",
        facts=[
            fact("chassis_type_code", "3"),
            fact("chassis_vendor", "vendor placeholder 'Default string' ignored"),
            fact("product_name", "vendor placeholder 'System Product Name' ignored"),
            fact("product_serial", "vendor placeholder 'System Serial Number' ignored"),
            fact("product_version", "vendor placeholder 'System Version' ignored"),
            fact("sys_vendor", "vendor placeholder 'System manufacturer' ignored"),
        ],
        dmi=system_pb2.DmiInfo(
            board_vendor="ASUSTeK COMPUTER INC.",
            board_name="PRIME B450M-A",
            bios_vendor="American Megatrends Inc.",
            bios_version="3211",
            bios_date="10/19/2022",
            chassis_type="Desktop",
        ),
    ),
    ("phone-charge-units", "system.cpu"): result(
        PASS,
        "1x ARM Cortex-X3 + 2x ARM Cortex-A710 + 2x ARM Cortex-A715 + 3x ARM Cortex-A510, "
        "8 cores, up to 2556 MHz, load 72.9 %",
        facts=[fact("model_name_source", "CPU part")],
        cpu=system_pb2.CpuInfo(
            model_name="1x ARM Cortex-X3 + 2x ARM Cortex-A710 + 2x ARM Cortex-A715 "
            "+ 3x ARM Cortex-A510",
            logical_cores=8,
            physical_cores=8,
            freq_current_mhz=1324.8,
            freq_max_mhz=2556.0,
            load_1m_pct=72.9,
            architecture="aarch64",
        ),
    ),
    # The one real finding among the machines: a phone with 3.9 % of its RAM left.
    ("phone-charge-units", "system.memory"): result(
        WARN,
        "7.1 GiB RAM, 283 MiB available (3.9 %), swap 3.7 GiB of 4.0 GiB used",
        checks=[
            check(
                "system.memory_low",
                WARN,
                "only 283 MiB of 7.1 GiB RAM is available (3.9 %, below 5 %): programs may be "
                "killed or swap heavily; close some before judging speed",
            )
        ],
        memory=system_pb2.MemoryInfo(
            total_bytes=7621656576,
            available_bytes=297242624,
            used_pct=96.1,
            swap_total_bytes=4294967296,
            swap_used_bytes=3951239168,
        ),
    ),
    # Android has no os-release: the distribution is left empty and a fact says why.
    ("phone-charge-units", "system.os"): result(
        PASS,
        "Linux, kernel 5.15.123-android13-8-g8bb5e44e3c3d-ab11061521, aarch64, up 4 h 15 min",
        facts=[fact("os_release", "no os-release file")],
        os=system_pb2.OsInfo(
            system="Linux",
            kernel_release="5.15.123-android13-8-g8bb5e44e3c3d-ab11061521",
            machine="aarch64",
            hostname="localhost",
            uptime_s=15300.0,
        ),
    ),
    ("phone-charge-units", "system.dmi"): result(SKIP, NO_DMI),
    ("board-iio-typec", "system.cpu"): result(
        PASS,
        "ARM Cortex-A55, 4 cores, up to 1992 MHz, load 3 %",
        facts=[fact("model_name_source", "CPU part")],
        cpu=system_pb2.CpuInfo(
            model_name="ARM Cortex-A55",
            logical_cores=4,
            physical_cores=4,
            freq_current_mhz=1992.0,
            freq_max_mhz=1992.0,
            load_1m_pct=3.0,
            architecture="aarch64",
        ),
    ),
    ("board-iio-typec", "system.memory"): result(
        PASS,
        "3.7 GiB RAM, 3.3 GiB available (88.3 %), no swap",
        memory=system_pb2.MemoryInfo(
            total_bytes=3955904512, available_bytes=3491745792, used_pct=11.7
        ),
    ),
    ("board-iio-typec", "system.os"): result(
        PASS,
        "Poky (Yocto Project Reference Distro) 4.0.17 (kirkstone), kernel 5.10.160, aarch64, "
        "up 30 min",
        facts=[fact("os_release.id", "poky"), fact("os_release.version_id", "4.0.17")],
        os=system_pb2.OsInfo(
            system="Linux",
            kernel_release="5.10.160",
            distribution="Poky (Yocto Project Reference Distro) 4.0.17 (kirkstone)",
            machine="aarch64",
            hostname="rk3568-evb1",
            uptime_s=1800.0,
        ),
    ),
    ("board-iio-typec", "system.dmi"): result(SKIP, NO_DMI),
}


@pytest.mark.parametrize(("machine", "probe"), sorted(EXPECTED))
def test_probe_on_machine(machine: str, probe: str) -> None:
    assert run(probe, machine_ctx(machine)) == [stamped(probe, EXPECTED[(machine, probe)])]


def test_every_system_probe_is_covered() -> None:
    names = {s.name for s in registry.all_probes() if s.family == "system"}
    assert names == set(SYSTEM_PROBES)
    assert {p for _, p in EXPECTED} == names


# ---- DeviceIdentity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        (
            "laptop-worn-battery",
            report_pb2.DeviceIdentity(
                manufacturer="LENOVO",
                model="20XW00GMUS",
                serial_number="PF3ABCDE",
                firmware=[report_pb2.FirmwareVersion(component="bios", version="N32ET86W (1.62 )")],
            ),
        ),
        # Placeholders in the system strings: the board is the best identity there is.
        (
            "desktop-no-battery",
            report_pb2.DeviceIdentity(
                manufacturer="ASUSTeK COMPUTER INC.",
                model="PRIME B450M-A",
                firmware=[report_pb2.FirmwareVersion(component="bios", version="3211")],
            ),
        ),
        # No DMI: the device tree names them (vendor from the board's `compatible`).
        (
            "phone-charge-units",
            report_pb2.DeviceIdentity(
                manufacturer="acme", model="Acme Phone X2", serial_number="8f3a91c2"
            ),
        ),
        (
            "board-iio-typec",
            report_pb2.DeviceIdentity(manufacturer="acme", model="Acme IoT Board B1"),
        ),
    ],
)
def test_device_identity(machine: str, expected: report_pb2.DeviceIdentity) -> None:
    assert device_identity(machine_ctx(machine)) == expected


def test_devicetree_strings_are_nul_separated_and_may_fail(tmp_path: Path) -> None:
    import errno

    from probelink.probes.readers.firmware_devicetree import DeviceTreeRecord, read_devicetree
    from probelink.probes.readers.problems import ReadProblem
    from probelink.probes.sysread import SysfsRoot, _os_read
    from tests.treebuilder import write_tree

    base = "firmware/devicetree/base"
    root = write_tree(
        tmp_path / "sys",
        {
            f"{base}/model": b"Board \xffOne\x00",
            f"{base}/compatible": b"vendor,board-1\x00\x00soc,chip\x00",
            f"{base}/serial-number": b"123\x00",
        },
    )

    def read(path: Path) -> bytes:
        if path.name == "serial-number":
            raise OSError(errno.EIO, "Input/output error")
        return _os_read(path)

    assert read_devicetree(SysfsRoot(root, read=read)) == DeviceTreeRecord(
        model="Board \ufffdOne",
        compatible=["vendor,board-1", "soc,chip"],
        serial_number=None,
        errors=[
            ReadProblem(
                f"{base}/serial-number",
                "file_read",
                f"reading {base}/serial-number failed: EIO (Input/output error)",
            )
        ],
    )
    assert read_devicetree(SysfsRoot(tmp_path / "no-tree")) is None


# ---- limits ------------------------------------------------------------------------------


def test_load_above_the_limit_warns() -> None:
    ctx = machine_ctx("phone-charge-units", limits={"system.max_load_pct": 50})
    [r] = run("system.cpu", ctx)
    assert r.status == WARN
    assert list(r.checks) == [
        check(
            "system.load_high",
            WARN,
            "1-minute load is 72.9 % of 8 cores, above 50 %: the machine is overloaded, "
            "close busy programs before judging speed",
        )
    ]


def test_memory_limit_is_configurable() -> None:
    [r] = run(
        "system.memory", machine_ctx("phone-charge-units", limits={"system.min_available_pct": 2})
    )
    assert (r.status, list(r.checks)) == (PASS, [])
    [r] = run(
        "system.memory", machine_ctx("laptop-worn-battery", limits={"system.min_available_pct": 70})
    )
    assert r.status == WARN
    assert [c.code for c in r.checks] == ["system.memory_low"]


# ---- bad input ---------------------------------------------------------------------------


def test_no_psutil_snapshot(tmp_path: Path) -> None:
    root = copy_machine(tmp_path, "board-iio-typec")
    shutil.rmtree(root / "psutil")
    ctx = ProbeContext.for_machine(root / "sys")
    reason = f"the captured machine has no psutil snapshot ({root / 'psutil'})"
    assert run("system.cpu", ctx) == [stamped("system.cpu", result(SKIP, reason))]
    assert run("system.memory", ctx) == [stamped("system.memory", result(SKIP, reason))]
    # The OS is still described; only the uptime is unknown, and a fact says why.
    [r] = run("system.os", ctx)
    assert r.status == PASS
    assert r.os.uptime_s == 0.0
    assert list(r.facts)[-1] == fact("uptime", f"not known: {reason}")


def test_snapshot_without_optional_calls(tmp_path: Path) -> None:
    # A capture whose psutil had no cpu_freq, load average or swap: those are absent.
    root = copy_machine(tmp_path, "board-iio-typec")
    for call in ("cpu_freq", "getloadavg", "swap_memory"):
        (root / "psutil" / f"{call}.json").unlink()
    ctx = ProbeContext.for_machine(root / "sys")
    assert run("system.cpu", ctx) == [
        stamped(
            "system.cpu",
            result(
                PASS,
                "ARM Cortex-A55, 4 cores",
                facts=[
                    fact("model_name_source", "CPU part"),
                    fact("load", "the load average is not available here"),
                ],
                cpu=system_pb2.CpuInfo(
                    model_name="ARM Cortex-A55",
                    logical_cores=4,
                    physical_cores=4,
                    architecture="aarch64",
                ),
            ),
        )
    ]
    [r] = run("system.memory", ctx)
    assert r.status == PASS
    assert list(r.facts) == [fact("swap", "psutil has no swap statistics here")]


def test_unknown_frequency_reads_as_absent(tmp_path: Path) -> None:
    # VMs report cpu_freq max 0.0 (as this VM does): unknown, not "0 MHz".
    root = copy_machine(tmp_path, "desktop-no-battery")
    (root / "psutil" / "cpu_freq.json").write_text(
        json.dumps({"current": 2596.132, "max": 0.0, "min": 0.0})
    )
    [r] = run("system.cpu", ProbeContext.for_machine(root / "sys"))
    assert r.cpu.freq_current_mhz == 2596.132
    assert not r.cpu.HasField("freq_max_mhz")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "not known: the snapshot has no boot or capture time"),
        ("1764064000.0\n", "not known: the clock (1764064000) is before boot (1764064500)"),
        ('"yesterday"\n', "expected seconds since the epoch, read 'yesterday'"),
    ],
)
def test_uptime_of_a_capture_without_a_good_capture_time(
    tmp_path: Path, content: str | None, why: str
) -> None:
    root = copy_machine(tmp_path, "board-iio-typec")
    path = root / "psutil" / "captured_at.json"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    [r] = run("system.os", ProbeContext.for_machine(root / "sys"))
    assert r.status == PASS
    assert r.os.uptime_s == 0.0
    [uptime] = [f for f in r.facts if f.name == "uptime"]
    assert why in uptime.value


def test_unreadable_serial_is_a_fact_not_an_error(tmp_path: Path) -> None:
    import errno

    from probelink.probes.sysread import SysfsRoot

    def read(path: Path) -> bytes:
        if path.name == "product_serial":
            raise PermissionError(errno.EACCES, "Permission denied")
        return path.read_bytes()

    ctx = machine_ctx("laptop-worn-battery")
    ctx.sysfs = SysfsRoot(ctx.sysfs.root, read=read)
    [r] = run("system.dmi", ctx)
    assert r.status == PASS
    assert r.dmi.product_serial == ""
    assert r.dmi.product_name == "20XW00GMUS"
    assert list(r.facts)[-1] == fact(
        "product_serial",
        "not readable: reading class/dmi/id/product_serial failed: EACCES (Permission denied)",
    )
    assert device_identity(ctx).serial_number == ""


def test_dmi_nothing_readable_is_an_error(tmp_path: Path) -> None:
    import errno

    from probelink.probes.sysread import SysfsRoot

    def read(path: Path) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    ctx = machine_ctx("desktop-no-battery")
    ctx.sysfs = SysfsRoot(ctx.sysfs.root, read=read)
    [r] = run("system.dmi", ctx)
    assert r.status == ERROR
    assert r.error.kind == probe_pb2.PROBE_ERROR_KIND_FILE_READ
    assert r.error.source == "class/dmi/id"
    assert (
        "no DMI attribute could be read (e.g. bios_date: reading class/dmi/id/bios_date "
        "failed: EIO (Input/output error))" in r.evidence
    )
    # Identity is a courtesy: it stays empty rather than failing the report.
    assert device_identity(ctx) == report_pb2.DeviceIdentity()


def test_missing_proc_and_etc_on_a_capture(tmp_path: Path) -> None:
    # A capture with only sys/ and psutil/: nothing from the host leaks in.
    root = copy_machine(tmp_path, "board-iio-typec")
    shutil.rmtree(root / "proc")
    shutil.rmtree(root / "etc")
    ctx = ProbeContext.for_machine(root / "sys")
    [os_result] = run("system.os", ctx)
    assert os_result == stamped(
        "system.os",
        result(
            PASS,
            "unknown system, up 30 min",
            facts=[fact("os_release", "no os-release file")],
            os=system_pb2.OsInfo(uptime_s=1800.0),
        ),
    )
    [cpu_result] = run("system.cpu", ctx)
    assert cpu_result.cpu.model_name == ""
    assert list(cpu_result.facts) == [fact("cpuinfo", "cpuinfo is absent")]


# ---- this machine ------------------------------------------------------------------------


def test_live_machine_never_errors() -> None:
    # Limits out of reach: this VM's load and memory vary with whatever else runs on it,
    # and this test is about every source being readable, not about today's load.
    ctx = ProbeContext.for_machine(
        limits={"system.max_load_pct": 1e9, "system.min_available_pct": 0.0}
    )
    for name in SYSTEM_PROBES:
        for r in run(name, ctx):
            assert r.status in (PASS, SKIP), (name, r.evidence)
    [os_result] = run("system.os", ctx)
    assert os_result.os.system == "Linux"
    assert os_result.os.kernel_release
    assert os_result.os.uptime_s > 0
    assert isinstance(device_identity(ctx), report_pb2.DeviceIdentity)
