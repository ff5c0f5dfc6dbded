"""Trends: exact fits with known answers, every reason for no projection, real reports."""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from probelink.server.diagnosis.trends import (
    CONFIDENCE,
    MONTH_DAYS,
    Direction,
    Fit,
    Metric,
    NoProjection,
    Point,
    Projection,
    Reason,
    Series,
    XUnit,
    battery_health_by_cycle,
    battery_health_by_month,
    crossing_interval,
    describe,
    fit_line,
    nvme_percentage_used_by_month,
    project,
    reallocated_sectors_by_month,
    t_quantile,
)
from probelink.v1 import battery_pb2, report_pb2
from tests.server.ingest.reports import captured_report

START = datetime(2025, 6, 1, tzinfo=UTC)


def _rounded(value: Any, digits: int = 6) -> Any:
    """A record as plain data with floats to `digits` significant digits, to compare whole."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _rounded(getattr(value, f.name), digits) for f in dataclasses.fields(value)}
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, tuple | list):
        return [_rounded(v, digits) for v in value]
    return value


def _days(readings: list[tuple[float, float]]) -> Series:
    return Series.over_days(Metric.BATTERY_HEALTH, START, readings)


# --- Student's t ----------------------------------------------------------------------

# Two-sided 90 % and 95 % quantiles from the published t table.
T_TABLE = {
    1: (6.3138, 12.7062),
    2: (2.9200, 4.3027),
    3: (2.3534, 3.1824),
    4: (2.1318, 2.7764),
    5: (2.0150, 2.5706),
    10: (1.8125, 2.2281),
    30: (1.6973, 2.0423),
}


@pytest.mark.parametrize("dof", sorted(T_TABLE))
def test_t_quantile_matches_the_table(dof: int) -> None:
    t90, t95 = T_TABLE[dof]
    assert t_quantile(0.90, dof) == pytest.approx(t90, abs=5e-5)
    assert t_quantile(0.95, dof) == pytest.approx(t95, abs=5e-5)


def test_t_quantile_tends_to_the_normal() -> None:
    assert t_quantile(0.90, 100_000) == pytest.approx(1.644854, abs=1e-4)


@pytest.mark.parametrize(("confidence", "dof"), [(0.0, 3), (1.0, 3), (0.9, 0), (-0.5, 4)])
def test_t_quantile_refuses_nonsense(confidence: float, dof: int) -> None:
    with pytest.raises(ValueError, match="t_quantile needs"):
        t_quantile(confidence, dof)


# --- the fit ----------------------------------------------------------------------------


def test_fit_matches_hand_computed_ols() -> None:
    # x̄ = 2, ȳ = 3, Sxx = 10, Sxy = 8, Syy = 10 → b = 0.8, a = 1.4;
    # residuals −0.4, 0.8, −1.0, 1.2, −0.6 → SSE = 3.6, s² = 1.2.
    points = [Point(x, y, x) for x, y in [(0, 1), (1, 3), (2, 2), (3, 5), (4, 4)]]
    assert _rounded(fit_line(points), 12) == _rounded(
        Fit(
            n=5,
            slope=0.8,
            intercept=1.4,
            slope_se=math.sqrt(1.2 / 10),
            intercept_se=math.sqrt(1.2 * (1 / 5 + 4 / 10)),
            residual_se=math.sqrt(1.2),
            r_squared=0.64,
            x_mean=2.0,
            sxx=10.0,
        ),
        12,
    )


def test_a_perfect_line_has_zero_errors_and_the_exact_crossing() -> None:
    # health = 96 − 0.25·x: exact in binary, so every error is exactly zero.
    series = _days([(x, 96 - 0.25 * x) for x in (0.0, 10.0, 20.0, 30.0, 40.0, 50.0)])
    assert fit_line(series.points) == Fit(
        n=6,
        slope=-0.25,
        intercept=96.0,
        slope_se=0.0,
        intercept_se=0.0,
        residual_se=0.0,
        r_squared=1.0,
        x_mean=25.0,
        sxx=1750.0,
    )
    now = START + timedelta(days=50)
    result = project(series, 80.0, Direction.FALLING, now)
    assert result == Projection(
        metric=Metric.BATTERY_HEALTH,
        threshold=80.0,
        direction=Direction.FALLING,
        x_unit=XUnit.DAYS,
        at_x=64.0,
        low_x=64.0,
        high_x=64.0,
        remaining=14.0,
        remaining_low=14.0,
        remaining_high=14.0,
        at=datetime(2025, 8, 4, tzinfo=UTC),
        low_at=datetime(2025, 8, 4, tzinfo=UTC),
        high_at=datetime(2025, 8, 4, tzinfo=UTC),
        confidence=CONFIDENCE,
        fit=fit_line(series.points),
    )
    # Under 61 days, words count days.
    assert describe(result) == "battery will reach 80 % in about 14 days (between 14 and 14)"
    assert describe(result, "zh-CN") == "电池预计约 14 天后降至 80 %（14 至 14 天之间）"


def test_fit_needs_three_points_at_two_xs() -> None:
    with pytest.raises(ValueError, match="at least 3 points, not 2"):
        fit_line([Point(0, 1, 0), Point(1, 2, 1)])
    with pytest.raises(ValueError, match="same x"):
        fit_line([Point(5, 1, 0), Point(5, 2, 1), Point(5, 3, 2)])


def test_crossing_interval_is_fiellers_textbook_formula() -> None:
    points = [Point(x, y, x) for x, y in [(0, 10.2), (1, 9.1), (2, 8.3), (3, 6.8), (4, 6.1)]]
    fit = fit_line(points)
    # Draper & Smith: x̄ + [(x₀ − x̄) ± (t·s/b)·√((x₀ − x̄)²/Sxx + (1 − g)/n)] / (1 − g),
    # g = t²s²/(b²Sxx), written here independently of the quadratic the module solves.
    t = t_quantile(0.90, 3)
    s, b, n, sxx, xbar = fit.residual_se, fit.slope, fit.n, fit.sxx, fit.x_mean
    x0 = (5.0 - fit.intercept) / b
    g = (t * s) ** 2 / (b * b * sxx)
    half = abs(t * s / b) * math.sqrt((x0 - xbar) ** 2 / sxx + (1 - g) / n)
    expected = (xbar + (x0 - xbar - half) / (1 - g), xbar + (x0 - xbar + half) / (1 - g))
    assert crossing_interval(fit, 5.0, 0.90) == pytest.approx(expected, rel=1e-12)


def test_noisy_series_interval_contains_the_true_crossing() -> None:
    # True line 95 − 0.03·days crosses 80 at day 500; readings every 30 days with noise.
    rng = random.Random(7)
    series = _days([(d, 95 - 0.03 * d + rng.gauss(0, 0.8)) for d in range(0, 360, 30)])
    result = project(series, 80.0, Direction.FALLING, START + timedelta(days=330))
    assert isinstance(result, Projection)
    assert result.low_x < 500.0 < result.high_x
    assert result.low_x < result.at_x < result.high_x


def test_interval_covers_the_truth_about_as_often_as_it_says() -> None:
    covered = 0
    for seed in range(400):
        rng = random.Random(seed)
        series = _days([(d, 95 - 0.03 * d + rng.gauss(0, 0.8)) for d in range(0, 360, 30)])
        result = project(series, 80.0, Direction.FALLING, START + timedelta(days=330))
        assert isinstance(result, Projection)
        covered += result.low_x <= 500.0 <= result.high_x
    # 90 % nominal; 400 trials put the binomial's standard deviation at 1.5 %.
    assert 0.85 <= covered / 400 <= 0.95


def test_rising_metric_projects_upwards() -> None:
    series = Series.over_days(
        Metric.NVME_PERCENTAGE_USED, START, [(0, 10.0), (30, 12.0), (60, 14.0), (90, 16.0)]
    )
    result = project(series, 100.0, Direction.RISING, START + timedelta(days=90))
    assert isinstance(result, Projection)
    assert (result.at_x, result.remaining) == (1350.0, 1260.0)
    # 1260 days = 41.4 mean months; the exact line's interval is rounded outwards.
    assert describe(result) == "NVMe wear will reach 100 % in about 41 months (between 41 and 42)"
    assert describe(result, "zh-CN") == "NVMe 磨损预计约 41 个月后升至 100 %（41 至 42 个月之间）"


# --- every reason for no projection -------------------------------------------------------


def test_too_little_history_in_reports_and_days() -> None:
    series = _days([(0.0, 90.0), (3.0, 89.0)])
    result = project(series, 80.0, Direction.FALLING, START + timedelta(days=3))
    assert result == NoProjection(
        metric=Metric.BATTERY_HEALTH,
        threshold=80.0,
        direction=Direction.FALLING,
        x_unit=XUnit.DAYS,
        reason=Reason.TOO_LITTLE_HISTORY,
        points=2,
        span_days=3.0,
        span_x=3.0,
        latest=89.0,
        fit=None,
    )
    assert describe(result) == (
        "too little history: 2 reports over 3 days; a projection needs at least 4 over 30 days"
    )
    assert describe(result, "zh-CN") == "历史数据太少：3 天内 2 份报告；预测至少需要 30 天内 4 份"


def test_too_little_history_many_reports_short_span() -> None:
    series = _days([(float(d), 90.0 - d) for d in range(0, 25, 5)])
    result = project(series, 80.0, Direction.FALLING, START + timedelta(days=20))
    assert isinstance(result, NoProjection)
    assert (result.reason, result.points, result.span_days) == (
        Reason.TOO_LITTLE_HISTORY,
        5,
        20.0,
    )


def test_too_little_history_empty_series() -> None:
    series = Series(Metric.BATTERY_HEALTH, XUnit.DAYS, (), None)
    result = project(series, 80.0, Direction.FALLING, START)
    assert result == NoProjection(
        Metric.BATTERY_HEALTH,
        80.0,
        Direction.FALLING,
        XUnit.DAYS,
        Reason.TOO_LITTLE_HISTORY,
        0,
        0.0,
        0.0,
        None,
        None,
    )
    assert describe(result) == (
        "too little history: 0 reports over 0 days; a projection needs at least 4 over 30 days"
    )


def test_too_little_history_on_a_cycle_axis_counts_cycles() -> None:
    # 60 days of reports but the battery went through only 4 cycles.
    points = tuple(Point(100.0 + i, 95.0 - i, 20.0 * i) for i in range(5))
    series = Series(Metric.BATTERY_HEALTH, XUnit.CYCLES, points, START)
    result = project(series, 80.0, Direction.FALLING, START + timedelta(days=80))
    assert isinstance(result, NoProjection)
    assert result.reason is Reason.TOO_LITTLE_HISTORY
    assert describe(result) == (
        "too little history: 5 reports over 4 cycles; a projection needs at least 4 over 10 cycles"
    )
    assert describe(result, "zh-CN") == (
        "历史数据太少：4 次循环内 5 份报告；预测至少需要 10 次循环内 4 份"
    )


@pytest.mark.parametrize(
    "ys", [[90.0, 90.5, 91.0, 91.5], [90.0, 90.0, 90.0, 90.0]], ids=["wrong-way", "flat"]
)
def test_not_heading_towards_the_limit(ys: list[float]) -> None:
    series = _days([(30.0 * i, y) for i, y in enumerate(ys)])
    result = project(series, 80.0, Direction.FALLING, START + timedelta(days=90))
    assert isinstance(result, NoProjection)
    assert result.reason is Reason.NOT_HEADING
    assert result.fit == fit_line(series.points)
    assert describe(result) == "battery health is not heading towards 80 %"
    assert describe(result, "zh-CN") == "电池健康度没有朝 80 % 变化"


def test_already_past_when_the_latest_reading_is_at_the_limit() -> None:
    series = _days([(0.0, 86.0), (30.0, 84.0), (60.0, 82.0), (90.0, 80.0)])
    result = project(series, 80.0, Direction.FALLING, START + timedelta(days=90))
    assert isinstance(result, NoProjection)
    assert (result.reason, result.latest) == (Reason.ALREADY_PAST, 80.0)
    assert describe(result) == "battery health is already at or past 80 % (latest 80 %)"
    assert describe(result, "zh-CN") == "电池健康度已达到或越过 80 %（最新 80 %）"


def test_already_past_when_the_line_has_crossed_by_now() -> None:
    # The last reading (82) is above 80 but the line, at "now" two months on, is not.
    series = _days([(0.0, 88.0), (30.0, 86.0), (60.0, 84.0), (90.0, 82.0)])
    result = project(series, 80.0, Direction.FALLING, START + timedelta(days=150))
    assert isinstance(result, NoProjection)
    assert result.reason is Reason.ALREADY_PAST


def test_already_past_reallocated_sectors_words() -> None:
    series = Series.over_days(
        Metric.REALLOCATED_SECTORS, START, [(0, 2.0), (30, 6.0), (60, 9.0), (90, 12.5)]
    )
    result = project(series, 10.0, Direction.RISING, START + timedelta(days=90))
    assert describe(result) == (
        "the reallocated sector count is already at or past 10 (latest 12.5)"
    )
    assert describe(result, "zh-CN") == "重新分配扇区数已达到或越过 10 个（最新 12.5 个）"


def test_poor_fit() -> None:
    series = _days([(15.0 * i, y) for i, y in enumerate([100.0, 96.0, 99.0, 95.0])])
    result = project(series, 80.0, Direction.FALLING, START + timedelta(days=45))
    assert isinstance(result, NoProjection)
    assert result.reason is Reason.POOR_FIT
    assert result.fit is not None
    assert result.fit.r_squared == pytest.approx(0.4235294, abs=1e-7)
    assert describe(result) == (
        "the readings are too scattered to project (r² 0.42, needs at least 0.50)"
    )
    assert describe(result, "zh-CN") == "读数过于分散，无法预测（r² 0.42，至少需要 0.50）"


def test_too_uncertain_when_the_slope_could_be_zero() -> None:
    # r² = 0.64 passes the floor, but with 2 degrees of freedom t = 2.92 and the slope's
    # t statistic is only √(0.64·2/0.36) = 1.89: the crossing could be never.
    series = _days([(15.0 * i, y) for i, y in enumerate([100.0, 98.0, 99.0, 97.0])])
    result = project(series, 80.0, Direction.FALLING, START + timedelta(days=45))
    assert isinstance(result, NoProjection)
    assert result.reason is Reason.TOO_UNCERTAIN
    assert result.fit is not None
    assert crossing_interval(result.fit, 80.0, CONFIDENCE) is None
    assert describe(result) == (
        "the trend is too uncertain to project: at 90 % confidence the rate could be zero"
    )
    assert describe(result, "zh-CN") == "趋势不确定，无法预测：在 90 % 置信度下变化率可能为零"


def test_bad_arguments() -> None:
    series = _days([(0.0, 90.0), (30.0, 89.0), (60.0, 88.0), (90.0, 87.0)])
    with pytest.raises(ValueError, match="timezone"):
        project(series, 80.0, Direction.FALLING, datetime(2025, 9, 1))
    result = project(series, 80.0, Direction.FALLING, START + timedelta(days=90))
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        describe(result, "fr")


# --- metrics from real reports ------------------------------------------------------------


def _monthly(healths: list[float], machine: str = "laptop-worn-battery") -> list[report_pb2.Report]:
    """Copies of the captured report on the first of each month from June 2025, 09:30 UTC."""
    reports = []
    for i, health in enumerate(healths):
        report = captured_report(machine)
        year, month = 2025 + (5 + i) // 12, (5 + i) % 12 + 1
        report.started_at.FromDatetime(datetime(year, month, 1, 9, 30, tzinfo=UTC))
        for result in report.results:
            if result.WhichOneof("data") == "battery":
                result.battery.health_pct = health
                result.battery.cycle_count = 300 + 25 * i
            if result.WhichOneof("data") == "storage_device" and result.storage_device.HasField(
                "nvme_percentage_used_pct"
            ):
                result.storage_device.nvme_percentage_used_pct = 3 + i
        reports.append(report)
    return reports


def _battery(report: report_pb2.Report) -> battery_pb2.BatteryInfo:
    return next(r.battery for r in report.results if r.WhichOneof("data") == "battery")


def _drop_family(report: report_pb2.Report, family: str) -> None:
    kept = [r for r in report.results if r.WhichOneof("data") != family]
    del report.results[:]
    report.results.extend(kept)


HEALTHS = [95.0, 93.2, 94.1, 91.5, 92.3, 89.6, 90.2, 88.1, 88.9, 86.4, 87.0, 85.2]
# The day after the twelfth report (2026-05-01 09:30 UTC).
NOW = datetime(2026, 5, 2, tzinfo=UTC)


def test_days_since_the_first_report_use_real_calendar_months() -> None:
    series = battery_health_by_month(_monthly(HEALTHS[:4]))
    # June has 30 days, July and August 31: the x axis is real elapsed time in UTC.
    assert series == Series(
        Metric.BATTERY_HEALTH,
        XUnit.DAYS,
        (
            Point(0.0, 95.0, 0.0),
            Point(30.0, 93.2, 30.0),
            Point(61.0, 94.1, 61.0),
            Point(92.0, 91.5, 92.0),
        ),
        datetime(2025, 6, 1, 9, 30, tzinfo=UTC),
    )
    assert pytest.approx(30.436875) == MONTH_DAYS


def test_cycle_series_and_skipped_reports() -> None:
    reports = _monthly(HEALTHS[:5])
    _drop_family(reports[1], "battery")  # no battery family: skipped, not zero
    _battery(reports[2]).ClearField("cycle_count")  # no count: skipped on cycles only
    _battery(reports[3]).scope = battery_pb2.BATTERY_SCOPE_DEVICE  # a peripheral: never judged
    by_month = battery_health_by_month(reports)
    assert [(p.x, p.y) for p in by_month.points] == [(0.0, 95.0), (61.0, 94.1), (122.0, 92.3)]
    by_cycle = battery_health_by_cycle(reports)
    assert by_cycle == Series(
        Metric.BATTERY_HEALTH,
        XUnit.CYCLES,
        (Point(300.0, 95.0, 0.0), Point(400.0, 92.3, 122.0)),
        datetime(2025, 6, 1, 9, 30, tzinfo=UTC),
    )


def test_the_first_reading_sets_the_start_when_early_reports_lack_the_family() -> None:
    reports = _monthly(HEALTHS[:3])
    _drop_family(reports[0], "battery")
    series = battery_health_by_month(reports)
    assert series.start == datetime(2025, 7, 1, 9, 30, tzinfo=UTC)
    assert [(p.x, p.y) for p in series.points] == [(0.0, 93.2), (31.0, 94.1)]


def test_a_machine_without_a_system_battery_has_no_battery_series() -> None:
    # The desktop's only battery is a wireless peripheral's.
    series = battery_health_by_month([captured_report("desktop-no-battery")])
    assert series == Series(Metric.BATTERY_HEALTH, XUnit.DAYS, (), None)
    result = project(series, 80.0, Direction.FALLING, NOW)
    assert isinstance(result, NoProjection)
    assert result.reason is Reason.TOO_LITTLE_HISTORY


def test_nvme_wear_series_from_the_laptop() -> None:
    series = nvme_percentage_used_by_month(_monthly(HEALTHS[:3]))
    assert [(p.x, p.y) for p in series.points] == [(0.0, 3.0), (30.0, 4.0), (61.0, 5.0)]
    assert series.metric is Metric.NVME_PERCENTAGE_USED


def test_reallocated_sectors_follow_one_drive() -> None:
    # The desktop has two ATA drives: /dev/sda reports 8 reallocated sectors, /dev/sdb 0.
    reports = []
    for i, count in enumerate([8, 9, 11]):
        report = captured_report("desktop-no-battery")
        report.started_at.FromDatetime(START + timedelta(days=30 * i))
        for result in report.results:
            device = result.storage_device
            if result.WhichOneof("data") == "storage_device" and device.name == "/dev/sda":
                device.ata_reallocated_sectors = count
        reports.append(report)
    _drop_family(reports[1], "storage_device")
    first = reallocated_sectors_by_month(reports)
    assert [(p.x, p.y) for p in first.points] == [(0.0, 8.0), (60.0, 11.0)]
    other = reallocated_sectors_by_month(reports, device="/dev/sdb")
    assert [(p.x, p.y) for p in other.points] == [(0.0, 0.0), (60.0, 0.0)]


def test_twelve_monthly_laptop_reports_project_the_battery() -> None:
    reports = _monthly(HEALTHS)
    result = project(battery_health_by_month(reports), 80.0, Direction.FALLING, NOW)
    assert _rounded(result) == _rounded(
        Projection(
            metric=Metric.BATTERY_HEALTH,
            threshold=80.0,
            direction=Direction.FALLING,
            x_unit=XUnit.DAYS,
            at_x=530.724542,
            low_x=482.288685,
            high_x=594.979805,
            remaining=196.120375,
            remaining_low=147.684519,
            remaining_high=260.375638,
            at=datetime(2026, 11, 14, 2, 53, 20, 413798, tzinfo=UTC),
            low_at=datetime(2026, 9, 26, 16, 25, 42, 404489, tzinfo=UTC),
            high_at=datetime(2027, 1, 17, 9, 0, 55, 135018, tzinfo=UTC),
            confidence=0.9,
            fit=Fit(
                n=12,
                slope=-0.0278817159,
                intercept=94.7975109,
                slope_se=0.00224602269,
                intercept_se=0.444117031,
                residual_se=0.81657341,
                r_squared=0.939062612,
                x_mean=167.583333,
                sxx=132178.917,
            ),
        )
    )
    assert describe(result) == "battery will reach 80 % in about 6 months (between 4 and 9)"
    assert describe(result, "zh-CN") == "电池预计约 6 个月后降至 80 %（4 至 9 个月之间）"
    # "now" in another timezone is the same instant and gives the same projection.
    shanghai = NOW.astimezone(timezone(timedelta(hours=8)))
    assert project(battery_health_by_month(reports), 80.0, Direction.FALLING, shanghai) == result


def test_twelve_monthly_laptop_reports_by_cycle() -> None:
    reports = _monthly(HEALTHS)
    result = project(battery_health_by_cycle(reports), 80.0, Direction.FALLING, NOW)
    assert isinstance(result, Projection)
    # On a cycle axis there are no dates; "now" is the latest count, 575.
    assert (result.at, result.low_at, result.high_at) == (None, None, None)
    assert result.remaining == pytest.approx(result.at_x - 575.0)
    assert describe(result) == "battery will reach 80 % in about 161 cycles (between 121 and 214)"
    assert describe(result, "zh-CN") == "电池预计约 161 次循环后降至 80 %（121 至 214 次循环之间）"
