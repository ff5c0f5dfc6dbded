"""Trends: when will a metric cross its limit? A least-squares line with an honest interval.

    series = battery_health_by_month(reports)             # oldest report first
    result = project(series, 80.0, Direction.FALLING, now)
    describe(result, "en")  # "battery will reach 80 % in about 5 months (between 4 and 7)"
    describe(result, "zh-CN")  # "电池预计约 5 个月后降至 80 %（4 至 7 个月之间）"

The method, so that a reader can check it by hand:

* The fit is ordinary least squares, y = a + b·x, with the textbook standard errors
  (s² = SSE / (n − 2); se(b) = s / √Sxx; se(a) = s·√(1/n + x̄²/Sxx)).
* The crossing is x₀ = (threshold − a) / b. Its interval is Fieller's: every x where the
  two-sided 90 % confidence band of the fitted line, a + b·x ± t·s·√(1/n + (x − x̄)²/Sxx),
  contains the threshold. It answers "when does the device's underlying level cross",
  not "when will one noisy reading cross", which is what a service reminder is about.
  t is Student's exact quantile with n − 2 degrees of freedom (`t_quantile`). When the
  slope is not clearly non-zero at that level the interval is unbounded: no projection.
* Too little history, a flat or wrong-way slope, a limit already reached or a poor fit
  (r² below `MIN_R_SQUARED`) each give a `NoProjection` with its reason, never a guess.

x is either cycles (battery cycle count) or days since the first report; months in words
are mean Gregorian months (365.2425 / 12 days). The fit is O(n) with no lists of its own.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from probelink.server.diagnosis.facts import is_system_battery
from probelink.v1 import battery_pb2, report_pb2, storage_pb2

# A projection needs this many reports...
MIN_POINTS = 4
# ...spread over at least this many days: a month of weekly checks is the least that
# separates wear from the day-to-day scatter of a battery's estimate.
MIN_SPAN_DAYS = 30.0
# ...and, on a cycle axis, over at least this many cycles.
MIN_SPAN_CYCLES = 10.0
# Below this share of explained variance the line is mostly noise.
MIN_R_SQUARED = 0.5
# Two-sided confidence of the crossing interval.
CONFIDENCE = 0.90
# Mean Gregorian month, in days.
MONTH_DAYS = 365.2425 / 12
# Below this many days, words count days rather than months ("in about 3 weeks" is not
# said: days are exact enough and translate plainly).
WORDS_MONTHS_FROM_DAYS = 61.0
_DAY_SECONDS = 86_400.0


class XUnit(enum.Enum):
    """What x counts."""

    CYCLES = "cycles"
    DAYS = "days"


class Direction(enum.Enum):
    """Which way the metric moves towards its limit."""

    FALLING = "falling"  # battery health falls towards a minimum
    RISING = "rising"  # wear and defect counts rise towards a maximum


class Metric(enum.Enum):
    """A metric trends are made of; the value names the family field."""

    BATTERY_HEALTH = "battery.health_pct"
    NVME_PERCENTAGE_USED = "storage.nvme_percentage_used_pct"
    REALLOCATED_SECTORS = "storage.ata_reallocated_sectors"


@dataclass(frozen=True, slots=True)
class Point:
    """One report's reading: x in the series' unit, y the metric, days since the first."""

    x: float
    y: float
    days: float


@dataclass(frozen=True, slots=True)
class Series:
    """Readings of one metric over time, oldest first; `start` is the first report's time."""

    metric: Metric
    x_unit: XUnit
    points: tuple[Point, ...]
    start: datetime | None

    @classmethod
    def over_days(
        cls, metric: Metric, start: datetime, readings: Iterable[tuple[float, float]]
    ) -> Series:
        """A days series from (days since `start`, value) pairs."""
        return cls(metric, XUnit.DAYS, tuple(Point(d, y, d) for d, y in readings), start)


@dataclass(frozen=True, slots=True)
class Fit:
    """An ordinary least-squares line y = intercept + slope·x and its uncertainty."""

    n: int
    slope: float
    intercept: float
    slope_se: float
    intercept_se: float
    residual_se: float
    r_squared: float
    x_mean: float
    sxx: float


@dataclass(frozen=True, slots=True)
class Projection:
    """Where the fitted line reaches the threshold, and the interval around it.

    `at_x`, `low_x`, `high_x` are in the series' x unit; `remaining*` count from now (the
    latest cycle count on a cycle axis), `remaining_low` never below 0. Dates (UTC) are
    set on a days axis only: a cycle axis says nothing about the calendar.
    """

    metric: Metric
    threshold: float
    direction: Direction
    x_unit: XUnit
    at_x: float
    low_x: float
    high_x: float
    remaining: float
    remaining_low: float
    remaining_high: float
    at: datetime | None
    low_at: datetime | None
    high_at: datetime | None
    confidence: float
    fit: Fit


class Reason(enum.Enum):
    """Why there is no projection."""

    TOO_LITTLE_HISTORY = "too_little_history"
    NOT_HEADING = "not_heading"
    ALREADY_PAST = "already_past"
    POOR_FIT = "poor_fit"
    TOO_UNCERTAIN = "too_uncertain"


@dataclass(frozen=True, slots=True)
class NoProjection:
    """No projection, with the reason and the numbers behind it."""

    metric: Metric
    threshold: float
    direction: Direction
    x_unit: XUnit
    reason: Reason
    points: int
    span_days: float
    span_x: float
    latest: float | None
    fit: Fit | None


# --- the statistics ---------------------------------------------------------------


def _t_two_sided_mass(t: float, dof: int) -> float:
    """P(|T| <= t) for Student's t with integer `dof` (Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(dof))
    c2 = math.cos(theta) ** 2
    s = math.sin(theta)
    if dof % 2 == 1:
        total, term = 0.0, math.cos(theta)
        for k in range(1, (dof - 1) // 2 + 1):
            if k > 1:
                term *= c2 * (2 * k - 2) / (2 * k - 1)
            total += term
        return (2 / math.pi) * (theta + s * total) if dof > 1 else 2 * theta / math.pi
    total, term = 1.0, 1.0
    for k in range(1, dof // 2):
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return s * total


@functools.lru_cache(maxsize=256)
def t_quantile(confidence: float, dof: int) -> float:
    """The t with P(|T| <= t) = `confidence` for `dof` degrees of freedom (bisection)."""
    if not 0.0 < confidence < 1.0 or dof < 1:
        raise ValueError(
            f"t_quantile needs 0 < confidence < 1 and dof >= 1, not {confidence}, {dof}"
        )
    low, high = 0.0, 1.0
    while _t_two_sided_mass(high, dof) < confidence:
        high *= 2
    for _ in range(100):
        mid = (low + high) / 2
        if _t_two_sided_mass(mid, dof) < confidence:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def fit_line(points: Sequence[Point]) -> Fit:
    """Least-squares line through `points` (at least 3, not all at one x)."""
    n = len(points)
    if n < 3:
        raise ValueError(f"a line with an uncertainty needs at least 3 points, not {n}")
    # Centred sums (two passes) keep precision when x is a large cycle count.
    x_mean = math.fsum(p.x for p in points) / n
    y_mean = math.fsum(p.y for p in points) / n
    sxx = sxy = syy = 0.0
    for p in points:
        dx, dy = p.x - x_mean, p.y - y_mean
        sxx += dx * dx
        sxy += dx * dy
        syy += dy * dy
    if sxx == 0.0:
        raise ValueError("every point is at the same x: no slope can be fitted")
    slope = sxy / sxx
    intercept = y_mean - slope * x_mean
    # Residuals summed directly rather than syy - slope·sxy, which can go negative.
    sse = 0.0
    for p in points:
        r = p.y - (intercept + slope * p.x)
        sse += r * r
    residual_se = math.sqrt(sse / (n - 2))
    return Fit(
        n=n,
        slope=slope,
        intercept=intercept,
        slope_se=residual_se / math.sqrt(sxx),
        intercept_se=residual_se * math.sqrt(1 / n + x_mean * x_mean / sxx),
        residual_se=residual_se,
        r_squared=1.0 - sse / syy if syy > 0.0 else 0.0,
        x_mean=x_mean,
        sxx=sxx,
    )


def crossing_interval(fit: Fit, threshold: float, confidence: float) -> tuple[float, float] | None:
    """Fieller's interval for the x where the line meets `threshold`; None if unbounded."""
    t = t_quantile(confidence, fit.n - 2)
    k = (t * fit.residual_se) ** 2
    b = fit.slope
    d = fit.intercept + b * fit.x_mean - threshold  # fitted value at x̄, minus the limit
    # (b·u + d)² = k·(1/n + u²/Sxx) with u = x − x̄, a quadratic in u.
    qa = b * b - k / fit.sxx
    if qa <= 0.0:
        return None
    qb = 2 * b * d
    qc = d * d - k / fit.n
    root = math.sqrt(max(qb * qb - 4 * qa * qc, 0.0))
    u1, u2 = (-qb - root) / (2 * qa), (-qb + root) / (2 * qa)
    return fit.x_mean + min(u1, u2), fit.x_mean + max(u1, u2)


# --- projecting ---------------------------------------------------------------------


def _past(value: float, threshold: float, direction: Direction) -> bool:
    return value <= threshold if direction is Direction.FALLING else value >= threshold


def project(
    series: Series, threshold: float, direction: Direction, now: datetime
) -> Projection | NoProjection:
    """When `series` will reach `threshold`, or why that cannot be said."""
    if now.tzinfo is None:
        raise ValueError("now must carry a timezone (UTC)")
    pts = series.points
    span_days = pts[-1].days - pts[0].days if pts else 0.0
    span_x = max(p.x for p in pts) - min(p.x for p in pts) if pts else 0.0
    latest = pts[-1].y if pts else None

    def no(reason: Reason, fit: Fit | None = None) -> NoProjection:
        return NoProjection(
            series.metric, threshold, direction, series.x_unit, reason,
            len(pts), span_days, span_x, latest, fit,
        )  # fmt: skip

    too_short = span_days < MIN_SPAN_DAYS or (
        series.x_unit is XUnit.CYCLES and span_x < MIN_SPAN_CYCLES
    )
    if len(pts) < MIN_POINTS or too_short or series.start is None or latest is None:
        return no(Reason.TOO_LITTLE_HISTORY)
    fit = fit_line(pts)
    if series.x_unit is XUnit.DAYS:
        x_now = (now - series.start).total_seconds() / _DAY_SECONDS
    else:
        x_now = pts[-1].x  # the cycle count now is the latest one reported
    if _past(latest, threshold, direction) or _past(
        fit.intercept + fit.slope * x_now, threshold, direction
    ):
        return no(Reason.ALREADY_PAST, fit)
    if fit.slope == 0.0 or (fit.slope > 0.0) != (direction is Direction.RISING):
        return no(Reason.NOT_HEADING, fit)
    if fit.r_squared < MIN_R_SQUARED:
        return no(Reason.POOR_FIT, fit)
    interval = crossing_interval(fit, threshold, CONFIDENCE)
    if interval is None:
        return no(Reason.TOO_UNCERTAIN, fit)
    at_x = (threshold - fit.intercept) / fit.slope
    low_x, high_x = interval

    def date(x: float) -> datetime | None:
        if series.x_unit is not XUnit.DAYS or series.start is None:
            return None
        return series.start + timedelta(days=x)

    return Projection(
        metric=series.metric,
        threshold=threshold,
        direction=direction,
        x_unit=series.x_unit,
        at_x=at_x,
        low_x=low_x,
        high_x=high_x,
        remaining=at_x - x_now,
        remaining_low=max(low_x - x_now, 0.0),
        remaining_high=high_x - x_now,
        at=date(at_x),
        low_at=date(low_x),
        high_at=date(high_x),
        confidence=CONFIDENCE,
        fit=fit,
    )


# --- the metrics from reports -------------------------------------------------------


def _time(report: report_pb2.Report) -> datetime:
    return report.started_at.ToDatetime(tzinfo=UTC)


def system_battery(
    report: report_pb2.Report, name: str | None = None
) -> battery_pb2.BatteryInfo | None:
    """System battery `name` (or the first) with a health reading; never a peripheral's."""
    for result in report.results:
        if not is_system_battery(result):
            continue
        battery = result.battery
        if battery.HasField("health_pct") and name in (None, battery.name):
            return battery
    return None


# The storage counters trends follow (typed, so protobuf's HasField is checked).
StorageField = Literal["nvme_percentage_used_pct", "ata_reallocated_sectors"]


def storage_value(
    report: report_pb2.Report, field: StorageField, device: str | None = None
) -> tuple[str, float] | None:
    """(device name, `field`) of `device`, or of the first device reporting the field."""
    for result in report.results:
        if result.WhichOneof("data") != "storage_device":
            continue
        info: storage_pb2.StorageDevice = result.storage_device
        if (device is None or info.name == device) and info.HasField(field):
            return info.name, float(getattr(info, field))
    return None


def _storage_values(
    reports: Sequence[report_pb2.Report], field: StorageField, device: str | None
) -> Iterable[float | None]:
    # One drive is followed throughout: two drives' counters are not one trend.
    for report in reports:
        found = storage_value(report, field, device)
        if found is None:
            yield None
            continue
        device, value = found
        yield value


def _days_series(
    metric: Metric, reports: Sequence[report_pb2.Report], values: Iterable[float | None]
) -> Series:
    start: datetime | None = None
    points = []
    for report, value in zip(reports, values, strict=True):
        if value is None:
            continue  # the family is missing from this report: skipped, never zero
        at = _time(report)
        start = start or at
        days = (at - start).total_seconds() / _DAY_SECONDS
        points.append(Point(days, value, days))
    return Series(metric, XUnit.DAYS, tuple(points), start)


def _batteries(
    reports: Sequence[report_pb2.Report], name: str | None
) -> Iterable[battery_pb2.BatteryInfo | None]:
    # One battery is followed throughout, as one drive is.
    for report in reports:
        battery = system_battery(report, name)
        if battery is not None:
            name = battery.name
        yield battery


def battery_health_by_month(
    reports: Sequence[report_pb2.Report], battery: str | None = None
) -> Series:
    """System battery health % against days since its first reading.

    `battery` is the power supply's name (e.g. "BAT0"); by default the first system
    battery with a health reading, followed in every later report.
    """
    values = (b.health_pct if b else None for b in _batteries(reports, battery))
    return _days_series(Metric.BATTERY_HEALTH, reports, values)


def battery_health_by_cycle(
    reports: Sequence[report_pb2.Report], battery: str | None = None
) -> Series:
    """System battery health % against its cycle count (reports without a count skipped)."""
    start: datetime | None = None
    points = []
    for report, info in zip(reports, _batteries(reports, battery), strict=True):
        if info is None or not info.HasField("cycle_count"):
            continue
        at = _time(report)
        start = start or at
        days = (at - start).total_seconds() / _DAY_SECONDS
        points.append(Point(float(info.cycle_count), info.health_pct, days))
    return Series(Metric.BATTERY_HEALTH, XUnit.CYCLES, tuple(points), start)


def nvme_percentage_used_by_month(
    reports: Sequence[report_pb2.Report], device: str | None = None
) -> Series:
    """NVMe "percentage used" (wear, %) of one drive against days since its first reading.

    `device` is the storage device's name (e.g. "/dev/nvme0"); by default the first
    drive that reports the counter, followed in every later report.
    """
    values = _storage_values(reports, "nvme_percentage_used_pct", device)
    return _days_series(Metric.NVME_PERCENTAGE_USED, reports, values)


def reallocated_sectors_by_month(
    reports: Sequence[report_pb2.Report], device: str | None = None
) -> Series:
    """ATA reallocated sectors of one drive against days since its first reading."""
    values = _storage_values(reports, "ata_reallocated_sectors", device)
    return _days_series(Metric.REALLOCATED_SECTORS, reports, values)


# --- plain words --------------------------------------------------------------------

# (English name, Chinese name, English unit suffix, Chinese unit suffix) per metric.
_NAMES: dict[Metric, tuple[str, str, str, str]] = {
    Metric.BATTERY_HEALTH: ("battery", "电池", " %", " %"),
    Metric.NVME_PERCENTAGE_USED: ("NVMe wear", "NVMe 磨损", " %", " %"),
    Metric.REALLOCATED_SECTORS: ("reallocated sectors", "重新分配扇区", "", " 个"),
}
_SUBJECT_EN: dict[Metric, str] = {
    Metric.BATTERY_HEALTH: "battery health",
    Metric.NVME_PERCENTAGE_USED: "NVMe wear",
    Metric.REALLOCATED_SECTORS: "the reallocated sector count",
}
_SUBJECT_ZH: dict[Metric, str] = {
    Metric.BATTERY_HEALTH: "电池健康度",
    Metric.NVME_PERCENTAGE_USED: "NVMe 磨损",
    Metric.REALLOCATED_SECTORS: "重新分配扇区数",
}


def _num(value: float) -> str:
    """80.0 → "80", 79.5 → "79.5": limits and readings as people write them."""
    return f"{value:.1f}".removesuffix(".0")


def _span(days: float) -> tuple[float, str, str]:
    """How to count a remaining time in days → (days per unit, English unit, Chinese unit)."""
    if days >= WORDS_MONTHS_FROM_DAYS:
        return MONTH_DAYS, "months", "个月"
    return 1.0, "days", "天"


def _describe_projection(p: Projection, lang: str) -> str:
    name_en, name_zh, unit_en, unit_zh = _NAMES[p.metric]
    if p.x_unit is XUnit.DAYS:
        per_unit, en_unit, zh_unit = _span(p.remaining)
    else:
        per_unit, en_unit, zh_unit = 1.0, "cycles", "次循环"
    # The ends are rounded outwards so that the words never claim more certainty.
    mid = round(p.remaining / per_unit)
    low = math.floor(p.remaining_low / per_unit)
    high = math.ceil(p.remaining_high / per_unit)
    limit = _num(p.threshold)
    if lang == "zh-CN":
        verb = "降至" if p.direction is Direction.FALLING else "升至"
        return (
            f"{name_zh}预计约 {mid} {zh_unit}后{verb} {limit}{unit_zh}"
            f"（{low} 至 {high} {zh_unit}之间）"
        )
    return (
        f"{name_en} will reach {limit}{unit_en} in about {mid} {en_unit} (between {low} and {high})"
    )


def _describe_no_projection(p: NoProjection, lang: str) -> str:
    _, _, unit_en, unit_zh = _NAMES[p.metric]
    limit = _num(p.threshold)
    zh = lang == "zh-CN"
    if p.reason is Reason.TOO_LITTLE_HISTORY:
        cycles = p.x_unit is XUnit.CYCLES and p.span_days >= MIN_SPAN_DAYS
        span, need = (p.span_x, MIN_SPAN_CYCLES) if cycles else (p.span_days, MIN_SPAN_DAYS)
        if zh:
            u = "次循环" if cycles else "天"
            return (
                f"历史数据太少：{round(span)} {u}内 {p.points} 份报告；"
                f"预测至少需要 {round(need)} {u}内 {MIN_POINTS} 份"
            )
        u = "cycles" if cycles else "days"
        noun = "report" if p.points == 1 else "reports"
        return (
            f"too little history: {p.points} {noun} over {round(span)} {u}; "
            f"a projection needs at least {MIN_POINTS} over {round(need)} {u}"
        )
    subject = _SUBJECT_ZH[p.metric] if zh else _SUBJECT_EN[p.metric]
    if p.reason is Reason.ALREADY_PAST:
        latest = _num(p.latest if p.latest is not None else p.threshold)
        if zh:
            return f"{subject}已达到或越过 {limit}{unit_zh}（最新 {latest}{unit_zh}）"
        return f"{subject} is already at or past {limit}{unit_en} (latest {latest}{unit_en})"
    if p.reason is Reason.NOT_HEADING:
        if zh:
            return f"{subject}没有朝 {limit}{unit_zh} 变化"
        return f"{subject} is not heading towards {limit}{unit_en}"
    r2 = f"{p.fit.r_squared:.2f}" if p.fit else "?"
    if p.reason is Reason.POOR_FIT:
        if zh:
            return f"读数过于分散，无法预测（r² {r2}，至少需要 {MIN_R_SQUARED:.2f}）"
        return (
            f"the readings are too scattered to project "
            f"(r² {r2}, needs at least {MIN_R_SQUARED:.2f})"
        )
    level = round(CONFIDENCE * 100)
    if zh:
        return f"趋势不确定，无法预测：在 {level} % 置信度下变化率可能为零"
    return f"the trend is too uncertain to project: at {level} % confidence the rate could be zero"


def describe(result: Projection | NoProjection, lang: str = "en") -> str:
    """Plain words for a projection or its absence, in "en" or "zh-CN"."""
    if lang not in ("en", "zh-CN"):
        raise ValueError(f"unknown language {lang!r}: use 'en' or 'zh-CN'")
    if isinstance(result, Projection):
        return _describe_projection(result, lang)
    return _describe_no_projection(result, lang)
