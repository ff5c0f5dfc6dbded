"""readers/os_release.py: the file format's quirks, the /etc vs /usr/lib choice, the fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from probelink.probes.readers.os_release import OsRelease, parse_os_release, read_os_release
from tests.conftest import MACHINES
from tests.treebuilder import Link, write_tree

UBUNTU = {
    "PRETTY_NAME": "Ubuntu 24.04.1 LTS",
    "NAME": "Ubuntu",
    "VERSION_ID": "24.04",
    "VERSION": "24.04.1 LTS (Noble Numbat)",
    "VERSION_CODENAME": "noble",
    "ID": "ubuntu",
    "ID_LIKE": "debian",
    "HOME_URL": "https://www.ubuntu.com/",
    "SUPPORT_URL": "https://help.ubuntu.com/",
    "BUG_REPORT_URL": "https://bugs.launchpad.net/ubuntu/",
    "PRIVACY_POLICY_URL": "https://www.ubuntu.com/legal/terms-and-policies/privacy-policy",
    "UBUNTU_CODENAME": "noble",
    "LOGO": "ubuntu-logo",
}


def test_laptop_follows_the_etc_link_into_usr_lib() -> None:
    # Ubuntu's /etc/os-release is a link to ../usr/lib/os-release; it is still "etc".
    rel = read_os_release(MACHINES / "laptop-worn-battery" / "etc")
    assert rel == OsRelease(source="etc/os-release", values=UBUNTU)
    assert rel.pretty_name == "Ubuntu 24.04.1 LTS"


def test_desktop_debian() -> None:
    rel = read_os_release(MACHINES / "desktop-no-battery" / "etc")
    assert rel == OsRelease(
        source="etc/os-release",
        values={
            "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
            "NAME": "Debian GNU/Linux",
            "VERSION_ID": "12",
            "VERSION": "12 (bookworm)",
            "VERSION_CODENAME": "bookworm",
            "ID": "debian",
            "HOME_URL": "https://www.debian.org/",
            "SUPPORT_URL": "https://www.debian.org/support",
            "BUG_REPORT_URL": "https://bugs.debian.org/",
        },
    )


def test_board_yocto_unquoted_and_quoted_mixed() -> None:
    rel = read_os_release(MACHINES / "board-iio-typec" / "etc")
    assert rel == OsRelease(
        source="etc/os-release",
        values={
            "ID": "poky",
            "NAME": "Poky (Yocto Project Reference Distro)",
            "VERSION": "4.0.17 (kirkstone)",
            "VERSION_ID": "4.0.17",
            "VERSION_CODENAME": "kirkstone",
            "PRETTY_NAME": "Poky (Yocto Project Reference Distro) 4.0.17 (kirkstone)",
            "CPE_NAME": "cpe:/o:openembedded:poky:4.0.17",
        },
    )


def test_android_phone_has_none() -> None:
    assert read_os_release(MACHINES / "phone-charge-units" / "etc") is None


def test_quotes_escapes_comments_and_blank_lines() -> None:
    text = (
        "# written by the image builder\n"
        "\n"
        "   \n"
        'NAME="Acme \\"Rugged\\" Linux"\n'
        "ID='acme'\n"
        'ID_LIKE="debian ubuntu"\n'
        "  VERSION_ID=3.1  \n"
        "VARIANT=\n"
        'BUILD_ID="2024-05-01 \\$HOME \\\\ \\`x\\`"\n'
        'HOME_URL="https://acme.example/#linux"\n'
        "    # an indented comment\n"
        "LOGO=acme # trailing comment\n"
    )
    assert parse_os_release(text) == OsRelease(
        source="os-release",
        values={
            "NAME": 'Acme "Rugged" Linux',
            "ID": "acme",
            "ID_LIKE": "debian ubuntu",
            "VERSION_ID": "3.1",
            "VARIANT": "",
            "BUILD_ID": "2024-05-01 $HOME \\ `x`",
            "HOME_URL": "https://acme.example/#linux",
            "LOGO": "acme",
        },
    )


def test_bad_lines_are_kept_as_errors_not_guessed() -> None:
    text = (
        'NAME="Broken\n'  # unclosed quote
        "this is not an assignment\n"
        "1ID=digit-first\n"
        "PRETTY_NAME=Acme Linux 3\n"  # unquoted spaces: a shell keeps "Acme"
        "ID=acme\n"
    )
    assert parse_os_release(text, "etc/os-release") == OsRelease(
        source="etc/os-release",
        values={"PRETTY_NAME": "Acme", "ID": "acme"},
        errors=[
            "etc/os-release line 1: NAME: no closing quotation",
            "etc/os-release line 2: not an assignment: 'this is not an assignment'",
            "etc/os-release line 3: not an assignment: '1ID=digit-first'",
            "etc/os-release line 4: PRETTY_NAME has unquoted spaces; kept 'Acme' as a shell would",
        ],
    )


@pytest.mark.parametrize(
    ("values", "pretty"),
    [
        ({"PRETTY_NAME": "Fedora Linux 40", "NAME": "Fedora Linux"}, "Fedora Linux 40"),
        ({"NAME": "Arch Linux", "VERSION": "rolling"}, "Arch Linux rolling"),
        ({"NAME": "Arch Linux"}, "Arch Linux"),
        ({"PRETTY_NAME": "", "NAME": "Alpine"}, "Alpine"),
        ({}, None),
    ],
)
def test_pretty_name_fallbacks(values: dict[str, str], pretty: str | None) -> None:
    assert OsRelease("etc/os-release", values).pretty_name == pretty


def test_usr_lib_is_the_fallback(tmp_path: Path) -> None:
    write_tree(tmp_path / "m", {"etc/hostname": "x\n", "usr/lib/os-release": "ID=arch\n"})
    assert read_os_release(tmp_path / "m" / "etc") == OsRelease(
        source="usr/lib/os-release", values={"ID": "arch"}
    )


def test_etc_takes_precedence_and_is_not_merged(tmp_path: Path) -> None:
    write_tree(
        tmp_path / "m",
        {"etc/os-release": "ID=custom\n", "usr/lib/os-release": "ID=arch\nNAME=Arch\n"},
    )
    assert read_os_release(tmp_path / "m" / "etc") == OsRelease(
        source="etc/os-release", values={"ID": "custom"}
    )


def test_absolute_link_out_of_a_capture_is_not_followed(tmp_path: Path) -> None:
    # A capture copied with an absolute link would otherwise describe the host's OS.
    host = tmp_path / "host-os-release"
    host.write_text("ID=host\n")
    write_tree(tmp_path / "m", {"etc/os-release": Link(str(host))})
    rel = read_os_release(tmp_path / "m" / "etc")
    assert rel is not None
    assert rel.values == {}
    assert rel.source == ""
    assert len(rel.errors) == 1
    assert "outside the sysfs root" in rel.errors[0]


def test_empty_etc_file_falls_back(tmp_path: Path) -> None:
    write_tree(tmp_path / "m", {"etc/os-release": "", "usr/lib/os-release": "ID=arch\n"})
    rel = read_os_release(tmp_path / "m" / "etc")
    assert rel == OsRelease(source="usr/lib/os-release", values={"ID": "arch"})


def test_unreadable_file_keeps_the_errno_name(tmp_path: Path) -> None:
    # A link loop cannot be opened (ELOOP); the error names why, not just "failed".
    write_tree(tmp_path / "m", {"etc/os-release": Link("os-release")})
    assert read_os_release(tmp_path / "m" / "etc") == OsRelease(
        source="",
        errors=["reading etc/os-release failed: ELOOP (Too many levels of symbolic links)"],
    )


def test_unreadable_etc_is_salvaged_by_usr_lib_but_not_hidden(tmp_path: Path) -> None:
    write_tree(
        tmp_path / "m", {"etc/os-release": Link("os-release"), "usr/lib/os-release": "ID=arch\n"}
    )
    assert read_os_release(tmp_path / "m" / "etc") == OsRelease(
        source="usr/lib/os-release",
        values={"ID": "arch"},
        errors=["reading etc/os-release failed: ELOOP (Too many levels of symbolic links)"],
    )
