"""Which state dir the reading commands (`status`, `advisories`, the end of `check`) look in.

The packaged systemd unit keeps the daemon's state in /var/lib/probelink-agent; a person
running `sudo probelink-agent advisories` has a home of their own without one. The system
dir is passed in as a real directory in tmp_path (the module's constant is the seam).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from probelink.agent import state
from probelink.agent.state import STATE_ENV, daemon_state_dir


@pytest.fixture
def system_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "var-lib-probelink-agent"
    folder.mkdir(mode=0o700)
    monkeypatch.setattr(state, "SYSTEM_STATE_DIR", folder)
    return folder


def test_the_environment_wins(tmp_path: Path, system_dir: Path) -> None:
    chosen = tmp_path / "chosen"
    assert daemon_state_dir({STATE_ENV: str(chosen), "HOME": str(tmp_path)}) == chosen


def test_this_users_state_dir_when_it_exists(tmp_path: Path, system_dir: Path) -> None:
    home = tmp_path / "home"
    mine = home / ".local" / "state" / "probelink-agent"
    mine.mkdir(parents=True)
    env = {"XDG_STATE_HOME": str(home / ".local" / "state")}
    assert daemon_state_dir(env) == mine


def test_the_system_daemons_when_this_user_has_none(tmp_path: Path, system_dir: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "nobody" / "state")}
    assert daemon_state_dir(env) == system_dir


def test_this_users_default_when_the_system_dir_cannot_be_read(
    tmp_path: Path, system_dir: Path
) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "nobody" / "state")}
    system_dir.rmdir()
    assert daemon_state_dir(env) == tmp_path / "nobody" / "state" / "probelink-agent"
    assert not (tmp_path / "nobody").exists()  # looking creates nothing
