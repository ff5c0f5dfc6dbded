"""The battery routines against copies of the laptop tree whose files change between reads.

The tree is a real sysfs-like tree, not a mock: the person's answer (the `ask` callback)
or a progress step rewrites `status` or `energy_now`, and the routine sees it because it
re-reads sysfs at every poll.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from probelink.probes.context import ProbeContext
from probelink.probes.registry import get
from probelink.probes.routine import run_inline
from probelink.v1 import routine_pb2
from tests.conftest import MACHINES
from tests.treebuilder import Link, write_tree

R = routine_pb2
BAT0 = "devices/LNXSYSTM:00/LNXSYBUS:00/PNP0C0A:00/power_supply/BAT0"
AC = "devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0003:00/power_supply/AC"


@pytest.fixture
def laptop(tmp_path: Path) -> Path:
    """A private copy of the laptop's sysfs, links kept as links."""
    root = tmp_path / "sys"
    shutil.copytree(MACHINES / "laptop-worn-battery" / "sys", root, symlinks=True)
    return root


def put(root: Path, rel: str, value: str) -> None:
    (root / rel).write_text(value + "\n")


def ctx(root: Path, **limits: float) -> ProbeContext:
    return ProbeContext.for_machine(root, limits=dict(limits), simulated=True)


def never(code: str, question: str) -> bool:
    raise AssertionError(f"asked {code!r} unexpectedly")


def at_progress(percent: int, action: Callable[[], None]) -> Callable[[R.RoutineUpdate], None]:
    """An update hook that runs `action` once, when progress first reaches `percent`."""
    done = {"yes": False}

    def hook(update: R.RoutineUpdate) -> None:
        if (
            not done["yes"]
            and update.state == R.ROUTINE_STATE_RUNNING
            and update.percent >= percent
        ):
            done["yes"] = True
            action()

    return hook


# ---- discharge rate ----------------------------------------------------------------------

WINDOW_S = 0.05


def test_discharge_idle_device_passes_on_the_gauges_draw(laptop: Path) -> None:
    # power_now 7.314 W against energy_full 35.34 Wh: 20.7 %/h. The captured energy_now
    # does not move (a gauge between refreshes): the draw readings still tell the rate.
    result = run_inline(
        get("battery.discharge_rate"),
        ctx(laptop, **{"battery.discharge_window_s": WINDOW_S}),
        ask=never,
    )
    assert result.outcome == R.ROUTINE_OUTCOME_PASSED
    assert result.battery_discharge == R.BatteryDischargeDetail(
        battery="BAT0",
        window_s=WINDOW_S,
        start_capacity_pct=81,
        end_capacity_pct=81,
        discharge_pct_per_hour=20.7,
        mean_power_w=7.314,
        max_allowed_pct_per_hour=30,
    )
    assert result.reason == (
        "BAT0 drains 20.7 %/h on an idle device (from the gauge's draw readings): within 30 %/h"
    )


def test_discharge_heavy_draw_fails(laptop: Path) -> None:
    updates: list[R.RoutineUpdate] = []
    # From the middle of the window the gauge reads 15 W: the mean is (7.314 + 15) / 2 W.
    hook = at_progress(50, lambda: put(laptop, f"{BAT0}/power_now", "15000000"))

    def on_update(update: R.RoutineUpdate) -> None:
        updates.append(update)
        hook(update)

    result = run_inline(
        get("battery.discharge_rate"),
        ctx(laptop, **{"battery.discharge_window_s": WINDOW_S}),
        ask=never,
        on_update=on_update,
    )
    assert result.outcome == R.ROUTINE_OUTCOME_FAILED
    assert (result.percent, result.last_state) == (100, R.ROUTINE_STATE_FINISHED)
    assert result.battery_discharge == R.BatteryDischargeDetail(
        battery="BAT0",
        window_s=WINDOW_S,
        start_capacity_pct=81,
        end_capacity_pct=81,
        discharge_pct_per_hour=31.57,
        mean_power_w=11.157,
        max_allowed_pct_per_hour=30,
    )
    assert result.reason.endswith("(from the gauge's draw readings): above 30 %/h")
    running = [u.percent for u in updates if u.state == R.ROUTINE_STATE_RUNNING]
    assert running == sorted(running) and running[-1] == 95


def test_discharge_from_the_level_when_the_gauge_reports_no_draw(tmp_path: Path) -> None:
    dev = "devices/platform/test-battery/power_supply/BAT0"
    root = write_tree(
        tmp_path / "sys",
        {
            "class/power_supply/BAT0": Link(f"../../{dev}"),
            f"{dev}/type": "Battery\n",
            f"{dev}/status": "Discharging\n",
            f"{dev}/energy_full": "40000000\n",
            f"{dev}/energy_now": "30000000\n",
        },
    )
    # 0.08 Wh of 40 Wh (0.2 %) gone during the window.
    hook = at_progress(50, lambda: put(root, f"{dev}/energy_now", "29920000"))
    result = run_inline(
        get("battery.discharge_rate"),
        ctx(root, **{"battery.discharge_window_s": WINDOW_S}),
        ask=never,
        on_update=hook,
    )
    assert result.outcome == R.ROUTINE_OUTCOME_FAILED
    d = result.battery_discharge
    # The window lasts at least WINDOW_S, so the rate is at most 0.2 % per WINDOW_S.
    assert 30 < d.discharge_pct_per_hour <= 0.2 / (WINDOW_S / 3600) + 0.01
    assert 0 < d.mean_power_w <= 0.08 / (WINDOW_S / 3600) + 0.001
    assert d == R.BatteryDischargeDetail(
        battery="BAT0",
        window_s=WINDOW_S,
        discharge_pct_per_hour=d.discharge_pct_per_hour,
        mean_power_w=d.mean_power_w,
        max_allowed_pct_per_hour=30,
    )
    assert "(from the level's fall of 0.20 %)" in result.reason


def test_discharge_asks_to_unplug_and_runs_once_unplugged(laptop: Path) -> None:
    put(laptop, f"{BAT0}/status", "Charging")
    put(laptop, f"{AC}/online", "1")
    asked = []

    def unplug(code: str, question: str) -> bool:
        asked.append((code, question))
        put(laptop, f"{BAT0}/status", "Discharging")
        put(laptop, f"{AC}/online", "0")
        return True

    result = run_inline(
        get("battery.discharge_rate"),
        ctx(laptop, **{"battery.discharge_window_s": WINDOW_S}),
        ask=unplug,
    )
    assert asked == [("unplug_charger", "Unplug the charger, then press Enter.")]
    assert result.outcome == R.ROUTINE_OUTCOME_PASSED


def test_discharge_declined_unplug_is_unsupported(laptop: Path) -> None:
    put(laptop, f"{BAT0}/status", "Charging")
    result = run_inline(get("battery.discharge_rate"), ctx(laptop), ask=lambda c, q: False)
    assert result.outcome == R.ROUTINE_OUTCOME_UNSUPPORTED
    assert result.reason == (
        "BAT0 is Charging and the charger was not unplugged: "
        "the drain can only be measured on battery"
    )


def test_discharge_charger_plugged_mid_window_keeps_partial_detail(laptop: Path) -> None:
    hook = at_progress(30, lambda: put(laptop, f"{BAT0}/status", "Charging"))
    result = run_inline(
        get("battery.discharge_rate"),
        ctx(laptop, **{"battery.discharge_window_s": WINDOW_S}),
        ask=never,
        on_update=hook,
    )
    assert result.outcome == R.ROUTINE_OUTCOME_UNSUPPORTED
    assert "went from Discharging to 'Charging'" in result.reason
    assert result.battery_discharge.battery == "BAT0"
    assert result.battery_discharge.start_capacity_pct == 81


def test_discharge_unreadable_level_is_runtime_error_not_failure(laptop: Path) -> None:
    hook = at_progress(30, lambda: put(laptop, f"{BAT0}/energy_now", "garbage"))
    result = run_inline(
        get("battery.discharge_rate"),
        ctx(laptop, **{"battery.discharge_window_s": WINDOW_S}),
        ask=never,
        on_update=hook,
    )
    assert result.outcome == R.ROUTINE_OUTCOME_RUNTIME_ERROR
    assert "energy_now" in result.reason


# ---- charge detection ------------------------------------------------------------------


def plug_in(root: Path, status: str) -> Callable[[str, str], bool]:
    def ask(code: str, question: str) -> bool:
        assert (code, question) == ("plug_in_charger", "Plug in the charger, then press Enter.")
        put(root, f"{AC}/online", "1")
        put(root, f"{BAT0}/status", status)
        return True

    return ask


@pytest.mark.parametrize("status", ["Charging", "Full", "Not charging"])
def test_charger_accepted(laptop: Path, status: str) -> None:
    # "Not charging" with the adapter online: a laptop holding at its charge threshold.
    result = run_inline(get("battery.charge_detection"), ctx(laptop), ask=plug_in(laptop, status))
    assert result.outcome == R.ROUTINE_OUTCOME_PASSED
    assert result.charge_detection == R.ChargeDetectionDetail(
        battery="BAT0", status_before="Discharging", status_after=status, charging_detected=True
    )
    assert (
        result.reason
        == f"BAT0 went from 'Discharging' to {status!r} once the charger was plugged in"
    )


def test_charging_starts_a_little_later(laptop: Path) -> None:
    def ask(code: str, question: str) -> bool:
        put(laptop, f"{AC}/online", "1")
        return True

    # The status flips only after the first poll, as a slow embedded controller does.
    hook = at_progress(5, lambda: put(laptop, f"{BAT0}/status", "Charging"))
    result = run_inline(
        get("battery.charge_detection"),
        ctx(laptop, **{"battery.charge_detect_timeout_s": 0.2}),
        ask=ask,
        on_update=hook,
    )
    assert result.outcome == R.ROUTINE_OUTCOME_PASSED
    assert result.charge_detection.status_after == "Charging"


def test_charger_not_detected_fails(laptop: Path) -> None:
    result = run_inline(
        get("battery.charge_detection"),
        ctx(laptop, **{"battery.charge_detect_timeout_s": 0.05}),
        ask=lambda c, q: True,
    )
    assert result.outcome == R.ROUTINE_OUTCOME_FAILED
    assert result.charge_detection == R.ChargeDetectionDetail(
        battery="BAT0",
        status_before="Discharging",
        status_after="Discharging",
        charging_detected=False,
    )
    assert result.reason.startswith("BAT0 still reports 'Discharging' 0.05 s after")


def test_nobody_to_plug_in_is_unsupported(laptop: Path) -> None:
    result = run_inline(get("battery.charge_detection"), ctx(laptop), ask=lambda c, q: False)
    assert result.outcome == R.ROUTINE_OUTCOME_UNSUPPORTED
    assert result.reason == "nobody confirmed the charger was plugged in"
    assert result.charge_detection.status_before == "Discharging"


def test_unreadable_status_is_runtime_error_not_failure(tmp_path: Path) -> None:
    dev = "devices/platform/test-battery/power_supply/BAT0"
    root = write_tree(
        tmp_path / "sys",
        {
            "class/power_supply/BAT0": Link(f"../../{dev}"),
            f"{dev}/type": "Battery\n",
            f"{dev}/status": "Discharging\n",
        },
    )

    def ask(code: str, question: str) -> bool:
        put(root, f"{dev}/status", "")  # the empty file reads as absent...
        put(root, f"{dev}/capacity", "lots")  # ...and a broken attribute is kept
        return True

    result = run_inline(get("battery.charge_detection"), ctx(root), ask=ask)
    assert result.outcome == R.ROUTINE_OUTCOME_RUNTIME_ERROR
    assert "capacity" in result.reason


@pytest.mark.parametrize("name", ["battery.discharge_rate", "battery.charge_detection"])
@pytest.mark.parametrize("machine", ["desktop-no-battery", "board-iio-typec"])
def test_routines_without_a_system_battery_are_unsupported(name: str, machine: str) -> None:
    result = run_inline(get(name), ctx(MACHINES / machine / "sys"), ask=never)
    assert result.outcome == R.ROUTINE_OUTCOME_UNSUPPORTED
    assert result.reason == "no system battery in class/power_supply (desktop or VM)"


def test_battery_without_status_cannot_detect_charging(tmp_path: Path) -> None:
    dev = "devices/platform/test-battery/power_supply/BAT0"
    root = write_tree(
        tmp_path / "sys",
        {
            "class/power_supply/BAT0": Link(f"../../{dev}"),
            f"{dev}/type": "Battery\n",
            f"{dev}/capacity": "50\n",
        },
    )
    result = run_inline(get("battery.charge_detection"), ctx(root), ask=never)
    assert result.outcome == R.ROUTINE_OUTCOME_UNSUPPORTED
    assert result.reason == "BAT0 reports no status, so charging cannot be detected"


@pytest.mark.parametrize("name", ["battery.charge_detection", "battery.discharge_rate"])
def test_a_captured_machine_is_not_watched_by_routines(name: str) -> None:
    # A still picture cannot show a battery charging: the routine must not judge it.
    ctx = ProbeContext.for_machine(MACHINES / "laptop-worn-battery" / "sys")
    asked: list[str] = []

    def ask(code: str, question: str) -> bool:
        asked.append(code)
        return True

    result = run_inline(get(name), ctx, ask=ask)
    assert result.outcome == routine_pb2.ROUTINE_OUTCOME_UNSUPPORTED
    assert "captured machine" in result.reason
    assert asked == []
