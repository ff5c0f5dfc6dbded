"""readers/problems.py: the per-device record of attributes that could not be read or parsed."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from probelink.probes.errors import AttributeReadError, MissingUtility, ParseError
from probelink.probes.readers.problems import Problems, ReadProblem, first_error
from probelink.probes.sysread import SysfsRoot
from tests.treebuilder import write_tree

BAT = "class/power_supply/BAT0"


def eio_on(name: str, root: Path) -> SysfsRoot:
    def read(path: Path) -> bytes:
        if path.name == name:
            raise OSError(errno.EIO, "Input/output error")
        return path.read_bytes()

    return SysfsRoot(root, read=read)


def test_reads_keep_failures_and_hand_back_values(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {f"{BAT}/capacity": "87\n", f"{BAT}/cycle_count": "many\n", f"{BAT}/status": "Full\n"},
    )
    sysfs = eio_on("status", root)
    problems = Problems()
    assert problems.read(sysfs.read_int, f"{BAT}/capacity") == 87
    assert problems.read(sysfs.read_int, f"{BAT}/cycle_count") is None
    assert problems.read(sysfs.read_text, f"{BAT}/status") is None
    assert problems.read(sysfs.read_text, f"{BAT}/absent") is None  # missing is no problem
    assert problems.items == [
        ReadProblem(
            f"{BAT}/cycle_count", "parse", f"{BAT}/cycle_count: expected an integer, read 'many'"
        ),
        ReadProblem(
            f"{BAT}/status", "file_read", f"reading {BAT}/status failed: EIO (Input/output error)"
        ),
    ]


def test_a_parser_that_names_no_source_gets_the_path_read() -> None:
    def parse(rel: str) -> int:
        raise ParseError("expected a rate in Mb/s, read 'fast'")

    problems = Problems()
    assert problems.read(parse, "bus/usb/devices/1-1/speed") is None
    assert problems.items == [
        ReadProblem("bus/usb/devices/1-1/speed", "parse", "expected a rate in Mb/s, read 'fast'")
    ]


def test_other_exceptions_are_bugs_and_are_raised() -> None:
    def broken(rel: str) -> int:
        raise KeyError(rel)

    problems = Problems()
    with pytest.raises(KeyError):
        problems.read(broken, "class/hwmon/hwmon0/temp1_input")
    assert problems.items == []


def test_of_and_to_error_round_trip() -> None:
    parse = ParseError("bad number", "class/nvme/nvme0/cntlid")
    unreadable = AttributeReadError("EIO", "class/nvme/nvme0/state")
    assert ReadProblem.of(parse) == ReadProblem("class/nvme/nvme0/cntlid", "parse", "bad number")
    assert ReadProblem.of(unreadable) == ReadProblem("class/nvme/nvme0/state", "file_read", "EIO")
    # Any other source error is a failed read, never a parse problem.
    assert ReadProblem.of(MissingUtility("no tool", "x")).kind == "file_read"
    for exc in (parse, unreadable):
        back = ReadProblem.of(exc).to_error()
        assert (type(back), back.message, back.source) == (type(exc), exc.message, exc.source)


def test_first_error_is_the_first_problem_counting_the_rest() -> None:
    one = [ReadProblem("a/speed", "parse", "a/speed: expected a rate")]
    three = [
        ReadProblem("a/version", "file_read", "reading a/version failed: EIO"),
        *one,
        ReadProblem("a/busnum", "file_read", "reading a/busnum failed: EIO"),
    ]
    single = first_error(one)
    several = first_error(three)
    assert (type(single), single.message, single.source) == (
        ParseError,
        "a/speed: expected a rate",
        "a/speed",
    )
    assert (type(several), several.message, several.source) == (
        AttributeReadError,
        "reading a/version failed: EIO (and 2 more)",
        "a/version",
    )
