"""Reporting periods: the ``time_interval`` values time series take, and the list of periods a
window covers in a reporting timezone (so that empty periods can be shown as zeros)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class PeriodUnit(Enum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"  # ISO weeks, starting on Monday
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


MAX_PERIODS = 100_000
_LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"

# Pattern fields, coarsest first, and what each contributes to strftime.
_FIELDS: dict[str, tuple[PeriodUnit, str]] = {
    "yyyy": (PeriodUnit.YEAR, "%Y"),
    "MM": (PeriodUnit.MONTH, "%m"),
    "dd": (PeriodUnit.DAY, "%d"),
    "HH": (PeriodUnit.HOUR, "%H"),
}
_TOKEN = re.compile(r"yyyy|MM|dd|HH|[A-Za-z]+|[^A-Za-z]+")
_ORDER = [PeriodUnit.YEAR, PeriodUnit.MONTH, PeriodUnit.DAY, PeriodUnit.HOUR]


class IntervalError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Interval:
    unit: PeriodUnit
    strftime: str | None = None  # None: label is the local period start 'YYYY-MM-DD HH:MM:SS'

    def label(self, local_start: str) -> str:
        """The period's label from its local start as the engines return it."""
        if self.strftime is None:
            return local_start
        return datetime.strptime(local_start, _LOCAL_FORMAT).strftime(self.strftime)


def parse_interval(text: str) -> Interval:
    """``hour|day|week|month|quarter|year`` or a pattern such as ``yyyy-MM-dd``, ``yyyy-MM-dd HH:00``."""
    named = text.strip().lower()
    for unit in PeriodUnit:
        if named == unit.value:
            return Interval(unit)
    parts = _TOKEN.findall(text)
    units: list[PeriodUnit] = []
    strftime = []
    for part in parts:
        if part in _FIELDS:
            unit, directive = _FIELDS[part]
            if unit in units:
                raise IntervalError(f"{text!r} repeats {part!r}")
            units.append(unit)
            strftime.append(directive)
        elif part[0].isalpha():
            raise IntervalError(
                f"{text!r} is not a time_interval: use hour, day, week, month, quarter, year or a "
                "pattern of yyyy, MM, dd, HH (for example yyyy-MM-dd or 'yyyy-MM-dd HH:00')"
            )
        else:
            strftime.append(part.replace("%", "%%"))
    if PeriodUnit.YEAR not in units:
        raise IntervalError(f"{text!r} must contain yyyy")
    finest = max(units, key=_ORDER.index)
    # Every coarser field must be present, or two different periods would share a label.
    missing = [u for u in _ORDER[: _ORDER.index(finest)] if u not in units]
    if missing:
        raise IntervalError(f"{text!r} has {finest.value} but no {missing[0].value}")
    return Interval(finest, "".join(strftime))


def _truncate(local: datetime, unit: PeriodUnit) -> datetime:
    match unit:
        case PeriodUnit.HOUR:
            return local.replace(minute=0, second=0, microsecond=0)
        case PeriodUnit.DAY:
            return local.replace(hour=0, minute=0, second=0, microsecond=0)
        case PeriodUnit.WEEK:
            day = local.replace(hour=0, minute=0, second=0, microsecond=0)
            return day - timedelta(days=day.weekday())
        case PeriodUnit.MONTH:
            return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        case PeriodUnit.QUARTER:
            month = (local.month - 1) // 3 * 3 + 1
            return local.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
        case PeriodUnit.YEAR:
            return local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    raise AssertionError(unit)  # pragma: no cover


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise IntervalError(f"unknown timezone {name!r}") from exc


def _next_start(local: datetime, unit: PeriodUnit) -> datetime:
    match unit:
        case PeriodUnit.DAY:
            return local + timedelta(days=1)
        case PeriodUnit.WEEK:
            return local + timedelta(days=7)
        case PeriodUnit.MONTH | PeriodUnit.QUARTER | PeriodUnit.YEAR:
            months = {PeriodUnit.MONTH: 1, PeriodUnit.QUARTER: 3, PeriodUnit.YEAR: 12}[unit]
            index = local.year * 12 + local.month - 1 + months
            return local.replace(year=index // 12, month=index % 12 + 1)
    raise AssertionError(unit)  # pragma: no cover


def period_starts(start: datetime, end: datetime, unit: PeriodUnit, timezone: str) -> list[str]:
    """Local starts ('YYYY-MM-DD HH:MM:SS', wall clock) of every period overlapping [start, end],
    found the way the engines assign tickets to them: by truncating local wall-clock time.

    Hours are found by walking UTC instants an hour apart (plus ``end``): in a fall-back hour two
    UTC hours share one local label and are one period; a skipped spring-forward hour is none.
    Longer periods are listed by stepping the wall-clock calendar from the first to the last."""
    tz = zone(timezone)
    labels: list[str] = []
    if unit is not PeriodUnit.HOUR:
        current = _truncate(start.astimezone(tz).replace(tzinfo=None), unit)
        last = _truncate(end.astimezone(tz).replace(tzinfo=None), unit)
        while current <= last:
            labels.append(current.strftime(_LOCAL_FORMAT))
            if len(labels) > MAX_PERIODS:
                raise IntervalError(f"the window holds more than {MAX_PERIODS} periods of this time_interval")
            current = _next_start(current, unit)
        return labels
    step = timedelta(hours=1)
    if (end - start) / step > MAX_PERIODS:
        raise IntervalError(f"the window holds more than {MAX_PERIODS} periods of this time_interval")
    seen: set[str] = set()
    moment = start
    while True:
        label = _truncate(moment.astimezone(tz).replace(tzinfo=None), unit).strftime(_LOCAL_FORMAT)
        if label not in seen:
            seen.add(label)
            labels.append(label)
        if moment >= end:
            break
        moment = min(moment + step, end)
    return labels
