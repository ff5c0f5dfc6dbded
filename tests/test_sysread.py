"""The hardened sysfs reader: what real kernels and broken drivers hand it."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest

from probelink.probes.errors import AttributeReadError, ParseError
from probelink.probes.sysread import SysfsRoot, _os_read
from tests.treebuilder import Dir, Link, write_tree


def failing(paths: dict[str, list[int]]) -> Callable[[Path], bytes]:
    """A read that fails with the given errnos, one per call, for the named files."""

    def read(path: Path) -> bytes:
        queue = paths.get(path.name)
        if queue:
            code = queue.pop(0)
            raise OSError(code, f"simulated {errno.errorcode[code]}")
        return _os_read(path)

    return read


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "sys",
        {
            "class/power_supply/BAT0": Link("../../devices/platform/bat/power_supply/BAT0"),
            "devices/platform/bat/power_supply/BAT0/type": "Battery\n",
            "devices/platform/bat/power_supply/BAT0/energy_full": "41000000",  # no newline
            "devices/platform/bat/power_supply/BAT0/model_name": "5B10W13975  \n",
            "devices/platform/bat/power_supply/BAT0/manufacturer": b"\xffSMP\n",
            "devices/platform/bat/power_supply/BAT0/empty": "",
            "devices/platform/bat/power_supply/BAT0/cycle_count": "lots\n",
            "devices/usb1/speed": "1.5\n",
            "devices/usb1/version": " 2.00\n",
            "devices/typec/data_role": "host [device]\n",
            "class/hwmon/hwmon9": Link("../../devices/gone/hwmon9"),
            "class/hwmon/escape": Link("/etc"),
            "class/thermal": Dir(),
        },
    )


def test_values_are_stripped_and_decoded(tree: Path) -> None:
    sys = SysfsRoot(tree)
    assert sys.read_text("class/power_supply/BAT0/type") == "Battery"
    assert sys.read_int("class/power_supply/BAT0/energy_full") == 41000000
    assert sys.read_text("class/power_supply/BAT0/model_name") == "5B10W13975"
    assert sys.read_text("class/power_supply/BAT0/manufacturer") == "\ufffdSMP"
    assert sys.read_float("devices/usb1/speed") == 1.5
    assert sys.read_float("devices/usb1/version") == 2.0
    assert sys.read_selected("devices/typec/data_role") == "device"


def test_absent_and_empty_are_none_not_errors(tree: Path) -> None:
    sys = SysfsRoot(tree)
    assert sys.read_text("class/power_supply/BAT0/empty") is None
    assert sys.read_int("class/power_supply/BAT0/no_such_file") is None
    assert sys.read_text("class/hwmon/hwmon9/name") is None  # dangling link
    assert sys.listdir("class/nothing") == []
    assert sys.listdir("class/thermal") == []


def test_non_numeric_is_a_parse_error_naming_the_file(tree: Path) -> None:
    with pytest.raises(ParseError, match="cycle_count: expected an integer, read 'lots'"):
        SysfsRoot(tree).read_int("class/power_supply/BAT0/cycle_count")


def test_links_out_of_the_root_are_never_followed(tree: Path) -> None:
    sys = SysfsRoot(tree)
    assert sys.resolve("class/hwmon/escape") is None
    assert not sys.is_dir("class/hwmon/escape")
    assert sys.listdir("class/hwmon/escape") == []
    with pytest.raises(AttributeReadError, match="links outside the sysfs root"):
        sys.read_text("class/hwmon/escape/hostname")


def test_eagain_is_retried(tree: Path) -> None:
    sys = SysfsRoot(tree, read=failing({"type": [errno.EAGAIN, errno.EAGAIN]}))
    assert sys.read_text("class/power_supply/BAT0/type") == "Battery"


def test_persistent_eagain_is_an_error(tree: Path) -> None:
    sys = SysfsRoot(tree, read=failing({"type": [errno.EAGAIN] * 10}))
    with pytest.raises(AttributeReadError, match="EAGAIN"):
        sys.read_text("class/power_supply/BAT0/type")


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EIO, errno.EACCES])
def test_driver_errors_name_the_errno_and_the_file(tree: Path, code: int) -> None:
    sys = SysfsRoot(tree, read=failing({"energy_full": [code]}))
    with pytest.raises(AttributeReadError) as info:
        sys.read_int("class/power_supply/BAT0/energy_full")
    assert errno.errorcode[code] in info.value.message
    assert info.value.source == "class/power_supply/BAT0/energy_full"


def test_enodata_means_absent(tree: Path) -> None:
    sys = SysfsRoot(tree, read=failing({"energy_full": [errno.ENODATA]}))
    assert sys.read_int("class/power_supply/BAT0/energy_full") is None


def test_a_root_that_does_not_exist_reads_as_empty(tmp_path: Path) -> None:
    sys = SysfsRoot(tmp_path / "nowhere")
    assert not sys.exists()
    assert sys.listdir("class/power_supply") == []
    assert sys.read_text("class/dmi/id/sys_vendor") is None
