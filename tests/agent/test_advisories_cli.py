"""`probelink-agent advisories` and the end of `check`, as a person runs them.

Real processes and real files: the store is filled with `AdvisoryStore` (what the daemon
does when the server sends one) and read by the CLI in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from probelink.agent.advisories import ADVISORIES_FILE, AdvisoryStore
from probelink.v1 import advisory_pb2
from tests.conftest import MACHINES

AGENT = [sys.executable, "-m", "probelink.agent.cli"]
RECEIVED = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
LAPTOP = MACHINES / "laptop-worn-battery" / "sys"
# One quick probe: these tests are about what `check` prints last, not the probes.
QUICK_CHECK = ["check", "--sysfs-root", str(LAPTOP), "--probe", "battery.power_supply"]


def agent(
    *args: str, state_dir: Path | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # Wide enough that rich never folds an id or a sentence the asserts look for; dates
    # in UTC so the table's local date is the one written here.
    env.update(COLUMNS="160", TZ="UTC")
    env.pop("PROBELINK_AGENT_STATE", None)
    if state_dir is not None:
        env["PROBELINK_AGENT_STATE"] = str(state_dir)
    if home is not None:
        env["HOME"] = str(home)
        env.pop("XDG_STATE_HOME", None)
    return subprocess.run(
        [*AGENT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def advisory(
    advisory_id: str, days: int, severity: str, en: str, zh: str | None = None
) -> advisory_pb2.Advisory:
    a = advisory_pb2.Advisory(
        advisory_id=advisory_id,
        device_id="dev-7",
        kind="trend",
        code=f"code.{advisory_id}",
        severity=severity,
        text={"en": en, **({"zh-CN": zh} if zh else {})},
        action="battery_replacement",
        report_id="rep-1",
    )
    a.raised_at.FromDatetime(datetime(2026, 11, 1, 9, 0, tzinfo=UTC) + timedelta(days=days))
    return a


BATTERY = advisory(
    "adv-battery",
    days=20,
    severity="advisory",
    en="The battery will reach 80 % in about 5 months.",
    zh="电池大约 5 个月后降到 80 %。",
)
SSD = advisory(
    "adv-ssd",
    days=10,
    severity="major",
    en="The SSD has used [bold]92 %[/bold] of its rated life.",
)
FAN = advisory("adv-fan", days=1, severity="minor", en="Clean the fan.", zh="请清洁风扇。")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state dir where the daemon kept three advisories and a person read one."""
    root = tmp_path / "state"
    with AdvisoryStore.open(root) as store:
        store.keep([FAN, SSD, BATTERY], now=RECEIVED)
        store.acknowledge("adv-fan", datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    return root


def kept_json(state_dir: Path, include_acknowledged: bool = False) -> list[dict[str, object]]:
    with AdvisoryStore.open(state_dir) as store:
        return [a.as_json() for a in store.list(include_acknowledged)]


# -- advisories ------------------------------------------------------------------------
def test_lists_the_unacknowledged_ones_newest_first_as_a_table(state_dir: Path) -> None:
    proc = agent("advisories", "--state-dir", str(state_dir))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.index(BATTERY.text["en"]) < out.index("The SSD has used")
    # The server's words are printed as they are, never as markup.
    assert "[bold]92 %[/bold]" in out
    for word in ("raised", "severity", "advisory", "2026-11-21", "major", "adv-battery"):
        assert word in out
    assert "adv-fan" not in out and "Clean the fan" not in out
    assert "probelink-agent advisories ack ID" in out


def test_json_is_every_field_of_the_unacknowledged_ones(state_dir: Path) -> None:
    proc = agent("advisories", "--json", "--state-dir", str(state_dir))
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed == kept_json(state_dir)
    assert printed[1] == {
        "advisory_id": "adv-ssd",
        "device_id": "dev-7",
        "kind": "trend",
        "code": "code.adv-ssd",
        "severity": "major",
        "text": {"en": "The SSD has used [bold]92 %[/bold] of its rated life."},
        "action": "battery_replacement",
        "report_id": "rep-1",
        "raised_at": "2026-11-11T09:00:00Z",
        "received_at": "2026-11-25T16:00:00Z",
        "acknowledged_at": None,
        "acknowledged": False,
    }


def test_all_includes_the_acknowledged_ones_marked(state_dir: Path) -> None:
    proc = agent("advisories", "--all", "--state-dir", str(state_dir))
    assert proc.returncode == 0, proc.stderr
    assert "Clean the fan." in proc.stdout
    assert "adv-fan · acknowledged 2026-11-26" in proc.stdout
    as_json = agent("advisories", "--all", "--json", "--state-dir", str(state_dir))
    printed = json.loads(as_json.stdout)
    assert printed == kept_json(state_dir, include_acknowledged=True)
    assert [(a["advisory_id"], a["acknowledged_at"]) for a in printed] == [
        ("adv-battery", None),
        ("adv-ssd", None),
        ("adv-fan", "2026-11-26T08:00:00Z"),
    ]


def test_chinese_with_english_where_the_server_gave_no_chinese(state_dir: Path) -> None:
    proc = agent("advisories", "--all", "--lang", "zh-CN", "--state-dir", str(state_dir))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for word in ("时间", "级别", "内容", "建议", "严重", "轻微", "电池大约 5 个月后降到 80 %。"):
        assert word in out, word
    assert "The SSD has used [bold]92 %[/bold] of its rated life." in out
    assert "adv-fan · 2026-11-26 已确认" in out
    assert "probelink-agent advisories ack 编号" in out


def test_no_advisories_is_one_calm_line_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "never-ran"
    proc = agent("advisories", "--state-dir", str(missing))
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        "No advisories from the service network.\n",
        "",
    )
    zh = agent("advisories", "--lang", "zh-CN", state_dir=missing)
    assert (zh.returncode, zh.stdout) == (0, "服务网络没有发来提醒。\n")
    assert agent("advisories", "--json", "--state-dir", str(missing)).stdout == "[]\n"
    assert not missing.exists()


def test_all_acknowledged_lists_none_without_all(tmp_path: Path) -> None:
    root = tmp_path / "state"
    with AdvisoryStore.open(root) as store:
        store.keep([FAN], now=RECEIVED)
        store.acknowledge("adv-fan", RECEIVED)
    proc = agent("advisories", state_dir=root)
    assert proc.stdout == "No advisories from the service network.\n"


# -- ack -------------------------------------------------------------------------------
def test_ack_stops_it_showing_and_a_second_ack_keeps_the_first_time(state_dir: Path) -> None:
    proc = agent("advisories", "ack", "adv-ssd", "--state-dir", str(state_dir))
    assert (proc.returncode, proc.stdout) == (
        0,
        "Acknowledged advisory adv-ssd; it will not show again.\n",
    )
    listed = json.loads(agent("advisories", "--json", "--state-dir", str(state_dir)).stdout)
    assert [a["advisory_id"] for a in listed] == ["adv-battery"]
    first = next(a for a in kept_json(state_dir, True) if a["advisory_id"] == "adv-ssd")
    again = agent("advisories", "ack", "adv-ssd", "--json", "--state-dir", str(state_dir))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == first
    text = agent("advisories", "ack", "adv-ssd", state_dir=state_dir)
    assert text.stdout.startswith("Advisory adv-ssd was already acknowledged on ")


def test_options_before_ack_apply_to_it(state_dir: Path) -> None:
    proc = agent(
        "advisories", "--state-dir", str(state_dir), "--lang", "zh-CN", "ack", "adv-battery"
    )
    assert (proc.returncode, proc.stdout) == (0, "已确认提醒 adv-battery，之后不再显示。\n")


def test_ack_of_an_unknown_id_exits_2_naming_it_and_how_to_list(state_dir: Path) -> None:
    before = kept_json(state_dir, include_acknowledged=True)
    proc = agent("advisories", "ack", "adv-nope", "--state-dir", str(state_dir))
    assert proc.returncode == 2
    assert proc.stdout == ""
    message = " ".join(proc.stderr.split())
    assert "no advisory 'adv-nope' is kept in" in message
    assert "probelink-agent advisories --all" in message
    assert kept_json(state_dir, include_acknowledged=True) == before


def test_ack_with_no_advisories_file_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "never-ran"
    proc = agent("advisories", "ack", "adv-1", "--json", state_dir=missing)
    assert proc.returncode == 2
    assert "no advisory 'adv-1'" in proc.stderr
    assert not missing.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["advisories", "--lang", "fr"], "'fr' is not one of"),
        (["advisories", "ack"], "Missing argument"),
        (["advisories", "--bogus"], "No such option"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = agent(*args, state_dir=tmp_path / "state")
    assert proc.returncode == 2
    assert message in " ".join(proc.stderr.replace("│", " ").split()), proc.stderr


def test_a_damaged_file_exits_2_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    (root / ADVISORIES_FILE).write_bytes(b"these are not the advisories" * 100)
    proc = agent("advisories", state_dir=root)
    assert proc.returncode == 2
    assert str(root / ADVISORIES_FILE) in " ".join(proc.stderr.split())


# -- the end of check ------------------------------------------------------------------
def test_check_ends_with_the_unacknowledged_advisories(state_dir: Path) -> None:
    proc = agent(*QUICK_CHECK, "--state-dir", str(state_dir))
    assert proc.returncode in (0, 1), proc.stderr
    out = proc.stdout
    heading = out.index("Advisories from the service network")
    # After the report (its family table and verdict), last.
    assert out.index("Battery") < heading
    assert heading < out.index(BATTERY.text["en"]) < out.index("The SSD has used")
    assert "Clean the fan." not in out


def test_check_json_carries_the_unacknowledged_advisories(state_dir: Path) -> None:
    proc = agent(*QUICK_CHECK, "--json", state_dir=state_dir)
    assert proc.returncode in (0, 1), proc.stderr
    printed = json.loads(proc.stdout)
    assert printed["advisories"] == kept_json(state_dir)
    assert printed["kind"] == "REPORT_KIND_SELF_CHECK"


def test_check_with_no_state_dir_creates_none_and_says_nothing_of_advisories(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    text = agent(*QUICK_CHECK, home=home)
    assert text.returncode in (0, 1), text.stderr
    assert "dvisor" not in text.stdout + text.stderr
    as_json = agent(*QUICK_CHECK, "--json", home=home)
    assert json.loads(as_json.stdout)["advisories"] == []
    explicit = tmp_path / "not-there"
    agent(*QUICK_CHECK, "--state-dir", str(explicit))
    assert list(home.iterdir()) == []
    assert not explicit.exists()


def test_check_with_a_damaged_advisories_file_still_checks(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    (root / ADVISORIES_FILE).write_bytes(b"these are not the advisories" * 100)
    proc = agent(*QUICK_CHECK, "--json", state_dir=root)
    assert proc.returncode in (0, 1), proc.stderr
    assert json.loads(proc.stdout)["advisories"] == []
    assert "The advisories cannot be read" in proc.stderr
