"""Business calendars against a brute-force oracle that walks UTC minute by minute and applies the
definitions (local weekday, wall-clock time, holidays, validity) directly, without calling the module."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.domain.calendars import (
    ALWAYS_OPEN,
    BusinessCalendar,
    BusinessClock,
    CalendarError,
    CalendarSchedule,
    Holiday,
    OpenWindow,
    Schedule,
    add_business_time,
    business_ms,
    business_seconds,
    business_time,
    holidays_from_ical,
    is_open,
    open_intervals,
)

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
MIDNIGHT = time(0)
ZONES = (
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Australia/Adelaide",
    "UTC",
)


def utc(*parts: int) -> datetime:
    return datetime(*parts).replace(tzinfo=UTC)  # type: ignore[arg-type]


def local(zone: str, *parts: int, fold: int = 0) -> datetime:
    """A local wall-clock time as a UTC instant (aware datetimes at ambiguous times never equal another
    zone's, so expectations are compared in UTC)."""
    return datetime(*parts).replace(tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)  # type: ignore[arg-type]


def epoch_ms(instant: datetime) -> int:
    return (instant - utc(1970, 1, 1)) // timedelta(milliseconds=1)


def weekdays(start: time, end: time, days: range = range(5)) -> tuple[OpenWindow, ...]:
    return tuple(OpenWindow(day, start, end) for day in days)


# --- the oracle --------------------------------------------------------------------------------------------


def _valid(version: BusinessCalendar, day: date) -> bool:
    after_start = version.valid_from is None or version.valid_from <= day
    return after_start and (version.valid_until is None or day <= version.valid_until)


class Oracle:
    """Open or closed, minute by minute, straight from the written rules."""

    def __init__(self, schedule: Schedule) -> None:
        self.versions = schedule.versions if isinstance(schedule, CalendarSchedule) else (schedule,)
        self.zones = [ZoneInfo(version.timezone) for version in self.versions]
        self._governs: dict[tuple[int, date], bool] = {}

    def governs(self, index: int, day: date) -> bool:
        """A version decides the windows starting on its local date when it is the first version whose
        validity contains the date the instant of local midnight shows in that version's timezone."""
        key = (index, day)
        if key not in self._governs:
            midnight = datetime.combine(day, MIDNIGHT, tzinfo=self.zones[index]).astimezone(UTC)
            self._governs[key] = _valid(self.versions[index], day) and not any(
                _valid(self.versions[j], midnight.astimezone(self.zones[j]).date()) for j in range(index)
            )
        return self._governs[key]

    def is_open(self, instant: datetime) -> bool:
        for index, version in enumerate(self.versions):
            shown = instant.astimezone(self.zones[index])
            day, clock = shown.date(), shown.time()
            if any(
                holiday.day == day
                and (
                    holiday.start is None
                    or holiday.end is None
                    or (holiday.start <= clock and (holiday.end == MIDNIGHT or clock < holiday.end))
                )
                for holiday in version.holidays
            ):
                continue
            yesterday = day - DAY
            for window in version.windows:
                crosses = window.end <= window.start
                if (
                    window.weekday == day.weekday()
                    and clock >= window.start
                    and (crosses or clock < window.end)
                    and self.governs(index, day)
                ):
                    return True
                if (
                    crosses
                    and window.weekday == yesterday.weekday()
                    and clock < window.end
                    and self.governs(index, yesterday)
                ):
                    return True
        return False

    def minutes(self, start: datetime, count: int) -> list[bool]:
        return [self.is_open(start + i * MINUTE) for i in range(count)]


def runs(start: datetime, bits: list[bool]) -> list[tuple[datetime, datetime]]:
    result: list[tuple[datetime, datetime]] = []
    for i, bit in enumerate(bits):
        if not bit:
            continue
        if result and result[-1][1] == start + i * MINUTE:
            result[-1] = (result[-1][0], start + (i + 1) * MINUTE)
        else:
            result.append((start + i * MINUTE, start + (i + 1) * MINUTE))
    return result


def added(start_index: int, bits: list[bool], minutes: int) -> int:
    """Index (in minutes from the range start) of the earliest instant with ``minutes`` open after it."""
    if minutes == 0:
        return start_index
    seen = 0
    for i in range(start_index, len(bits)):
        seen += bits[i]
        if seen == minutes:
            return i + 1
    raise AssertionError("not enough open minutes in range")


def test_oracle_knows_the_basics() -> None:
    """Guard the oracle itself with answers worked out by hand."""
    oracle = Oracle(BusinessCalendar("America/New_York", (OpenWindow(6, time(1), time(4)),)))
    assert sum(oracle.minutes(utc(2024, 3, 10), 24 * 60)) == 120
    assert sum(oracle.minutes(utc(2024, 11, 3), 24 * 60)) == 240


# --- strategies ----------------------------------------------------------------------------------------------

# A 30-minute grid, weighted towards midnight and the hours DST changes happen in.
TIMES = (
    [time(h, m) for h in range(24) for m in (0, 30)]
    + [MIDNIGHT] * 6
    + [time(h, m) for h in (1, 2, 3) for m in (0, 30)] * 2
)


@functools.cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """UTC instants of the 2024 and 2025 offset changes (New York's for zones without DST)."""
    tz = ZoneInfo(zone)
    found = []
    hour = utc(2024, 1, 1)
    while hour < utc(2026, 1, 1):
        if hour.astimezone(tz).utcoffset() != (hour + timedelta(hours=1)).astimezone(tz).utcoffset():
            found.append(hour + timedelta(hours=1))
        hour += timedelta(hours=1)
    return tuple(found) if found else transitions("America/New_York")


def test_transitions_are_found() -> None:
    assert transitions("Europe/London")[0] == utc(2024, 3, 31, 1)
    # Adelaide changes at half past a UTC hour; the hourly scan reports the next full hour.
    assert transitions("Australia/Adelaide")[0] == utc(2024, 4, 6, 17)
    assert len(transitions("Australia/Adelaide")) == 4


@st.composite
def windows(draw: st.DrawFn) -> tuple[OpenWindow, ...]:
    result = []
    for weekday in range(7):
        for _ in range(draw(st.integers(0, 3))):
            start, end = draw(st.sampled_from(TIMES)), draw(st.sampled_from(TIMES))
            if start != end or start == MIDNIGHT:
                result.append(OpenWindow(weekday, start, end))
    return tuple(result)


@st.composite
def holidays(draw: st.DrawFn, around: date) -> tuple[Holiday, ...]:
    result = []
    for _ in range(draw(st.integers(0, 3))):
        day = around + draw(st.integers(-3, 3)) * DAY
        if draw(st.booleans()):
            result.append(Holiday(day, name="whole"))
            continue
        first, second = draw(st.sampled_from(TIMES)), draw(st.sampled_from(TIMES))
        start, end = min(first, second), max(first, second)
        if start == end or draw(st.booleans()):
            end = MIDNIGHT  # until 24:00
        result.append(Holiday(day, start, end, name="partial"))
    return tuple(result)


@st.composite
def schedules(draw: st.DrawFn, zone: str, around: date) -> Schedule:
    versions = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 2, 3]))):
        timezone = zone if draw(st.integers(0, 4)) else draw(st.sampled_from(ZONES))
        lo, hi = draw(st.none() | st.integers(-4, 4)), draw(st.none() | st.integers(-4, 4))
        if lo is not None and hi is not None and hi < lo:
            lo, hi = hi, lo
        valid_from = None if lo is None else around + lo * DAY
        valid_until = None if hi is None else around + hi * DAY
        versions.append(
            BusinessCalendar(timezone, draw(windows()), draw(holidays(around)), valid_from, valid_until)
        )
    if len(versions) == 1 and draw(st.booleans()):
        return versions[0]
    return CalendarSchedule(tuple(versions))


@st.composite
def cases(draw: st.DrawFn, max_days: int = 5) -> tuple[Schedule, datetime, int]:
    """A schedule and a minute-aligned range [start, start + minutes) that usually spans a 2024/2025 DST
    change (whole days are drawn separately so that hypothesis does not favour tiny ranges)."""
    zone = draw(st.sampled_from(ZONES))
    anchor = draw(st.sampled_from(transitions(zone)))
    before = draw(st.integers(0, 3)) * 1440 + draw(st.integers(0, 1439))
    minutes = draw(st.integers(0, max_days - 1)) * 1440 + draw(st.integers(1, 1440))
    schedule = draw(schedules(zone, anchor.astimezone(ZoneInfo(zone)).date()))
    return schedule, anchor - before * MINUTE, minutes


ORACLE_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


# --- property tests against the oracle ------------------------------------------------------------------


@ORACLE_SETTINGS
@given(case=cases(), data=st.data())
def test_scalar_api_matches_oracle(case: tuple[Schedule, datetime, int], data: st.DataObject) -> None:
    schedule, start, count = case
    bits = Oracle(schedule).minutes(start, count)
    end = start + count * MINUTE

    assert open_intervals(schedule, start, end) == runs(start, bits)

    i, j = data.draw(st.integers(0, count)), data.draw(st.integers(0, count))
    assert business_ms(schedule, start + i * MINUTE, start + j * MINUTE) == 60_000 * sum(bits[i:j])

    for k in data.draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=4)):
        assert is_open(schedule, start + k * MINUTE) == bits[k]

    k = data.draw(st.integers(0, count - 1))
    minutes = data.draw(st.integers(0, sum(bits[k:])))
    expected = start + added(k, bits, minutes) * MINUTE
    assert add_business_time(schedule, start + k * MINUTE, minutes * MINUTE) == expected


@ORACLE_SETTINGS
@given(case=cases(), data=st.data())
def test_business_clock_matches_oracle(case: tuple[Schedule, datetime, int], data: st.DataObject) -> None:
    schedule, start, count = case
    bits = Oracle(schedule).minutes(start, count)
    clock = BusinessClock(schedule, start, start + count * MINUTE)
    start_ms = epoch_ms(start)

    boundaries = start_ms + 60_000 * np.arange(count + 1, dtype=np.int64)
    expected_cumulative = 60_000 * np.concatenate([[0], np.cumsum(bits)])
    assert clock.cumulative(boundaries).tolist() == expected_cumulative.tolist()

    starts, ends, cum_before = clock.intervals()
    assert [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)] == [
        (epoch_ms(a), epoch_ms(b)) for a, b in runs(start, bits)
    ]
    assert cum_before.tolist() == (np.cumsum(ends - starts) - (ends - starts)).tolist()

    picks = data.draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=8))
    durations = [data.draw(st.integers(0, sum(bits[k:]))) for k in picks]
    result = clock.add(boundaries[picks], 60_000 * np.array(durations, dtype=np.int64))
    assert result.tolist() == [
        start_ms + 60_000 * added(k, bits, d) for k, d in zip(picks, durations, strict=True)
    ]
    assert clock.business_ms(boundaries[picks], boundaries[-1:]).tolist() == [
        60_000 * sum(bits[k:]) for k in picks
    ]


# --- properties that hold at any resolution ---------------------------------------------------------------

instants_us = st.integers(-2 * 86_400_000_000, 4 * 86_400_000_000)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(max_days=1), offsets=st.lists(instants_us, min_size=3, max_size=3))
def test_business_time_is_additive(case: tuple[Schedule, datetime, int], offsets: list[int]) -> None:
    schedule, anchor, _ = case
    a, b, c = sorted(anchor + timedelta(microseconds=offset) for offset in offsets)
    assert business_time(schedule, a, c) == business_time(schedule, a, b) + business_time(schedule, b, c)
    assert business_time(schedule, c, a) == timedelta(0)
    assert business_seconds(schedule, a, c) == business_time(schedule, a, c).total_seconds()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=cases(max_days=1),
    offset=instants_us,
    duration=st.integers(0, 3 * 86_400_000_000).map(lambda us: timedelta(microseconds=us)),
)
def test_add_business_time_is_the_earliest_inverse(
    case: tuple[Schedule, datetime, int], offset: int, duration: timedelta
) -> None:
    schedule, anchor, _ = case
    # Keep open time in the future: drop open-ended versions without windows (they would close everything
    # after them for good) and end with an open-ended fallback.
    versions = schedule.versions if isinstance(schedule, CalendarSchedule) else (schedule,)
    kept = [version for version in versions if version.windows or version.valid_until is not None]
    schedule = CalendarSchedule((*kept, BusinessCalendar("UTC", weekdays(time(9), time(10)))))
    t = anchor + timedelta(microseconds=offset)
    u = add_business_time(schedule, t, duration)
    assert business_time(schedule, t, u) == duration
    if duration:
        assert business_time(schedule, t, u - timedelta(microseconds=1)) < duration
        assert is_open(schedule, u - timedelta(microseconds=1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), data=st.data())
def test_business_clock_agrees_with_scalar_api_off_the_minute_grid(
    case: tuple[Schedule, datetime, int], data: st.DataObject
) -> None:
    schedule, start, count = case
    span_ms = count * 60_000
    clock = BusinessClock(schedule, start, start + count * MINUTE)
    picks = data.draw(st.lists(st.integers(0, span_ms), min_size=1, max_size=5))
    stamps = [start + timedelta(milliseconds=ms) for ms in picks]
    ts = np.array([clock.start_ms + ms for ms in picks], dtype=np.int64)
    assert clock.cumulative(ts).tolist() == [business_ms(schedule, start, stamp) for stamp in stamps]
    available = [business_ms(schedule, stamp, start + count * MINUTE) for stamp in stamps]
    durations = [data.draw(st.integers(0, limit)) for limit in available]
    expected = [
        add_business_time(schedule, stamp, timedelta(milliseconds=d))
        for stamp, d in zip(stamps, durations, strict=True)
    ]
    assert clock.add(ts, durations).tolist() == [epoch_ms(u) for u in expected]


# --- hand-written cases ---------------------------------------------------------------------------------------

NY_OFFICE = BusinessCalendar("America/New_York", weekdays(time(9), time(17)), name="NY office")


@pytest.mark.parametrize(
    ("friday_close", "monday_open", "monday_close"),
    [
        # Spring forward on Sunday 2024-03-10: Friday is EST (UTC-5), Monday EDT (UTC-4).
        (utc(2024, 3, 8, 22), utc(2024, 3, 11, 13), utc(2024, 3, 11, 21)),
        # Fall back on Sunday 2024-11-03: Friday is EDT, Monday EST.
        (utc(2024, 11, 1, 21), utc(2024, 11, 4, 14), utc(2024, 11, 4, 22)),
    ],
)
def test_office_hours_across_dst_weekends(
    friday_close: datetime, monday_open: datetime, monday_close: datetime
) -> None:
    hour = timedelta(hours=1)
    assert business_time(NY_OFFICE, friday_close - hour, monday_open + hour) == 2 * hour
    assert open_intervals(NY_OFFICE, friday_close, monday_close + DAY)[0] == (monday_open, monday_close)
    assert add_business_time(NY_OFFICE, friday_close - hour / 2, hour) == monday_open + hour / 2
    assert add_business_time(NY_OFFICE, friday_close - hour, hour) == friday_close  # earliest, not Monday
    assert not is_open(NY_OFFICE, friday_close)
    assert is_open(NY_OFFICE, monday_open)
    assert not is_open(NY_OFFICE, monday_open - timedelta(microseconds=1))


def test_small_hours_window_on_dst_days() -> None:
    sunday = BusinessCalendar("America/New_York", (OpenWindow(6, time(1), time(4)),))
    # 01:00 EST to 04:00 EDT: the clock skips 02:00-03:00.
    assert open_intervals(sunday, utc(2024, 3, 10), utc(2024, 3, 11)) == [
        (utc(2024, 3, 10, 6), utc(2024, 3, 10, 8))
    ]
    # 01:00 EDT to 04:00 EST: 01:00-02:00 happens twice.
    assert open_intervals(sunday, utc(2024, 11, 3), utc(2024, 11, 4)) == [
        (utc(2024, 11, 3, 5), utc(2024, 11, 3, 9))
    ]
    assert business_seconds(sunday, utc(2024, 11, 3), utc(2024, 11, 4)) == 4 * 3600


def test_southern_hemisphere_fall_back() -> None:
    """Sydney turns 03:00 AEDT back to 02:00 AEST on Sunday 2024-04-07."""
    early = BusinessCalendar("Australia/Sydney", (OpenWindow(6, time(2), time(3)),))
    assert business_time(early, utc(2024, 4, 6), utc(2024, 4, 7)) == timedelta(hours=2)
    adelaide = BusinessCalendar("Australia/Adelaide", (OpenWindow(6, time(2), time(3)),))
    assert open_intervals(adelaide, utc(2024, 4, 6), utc(2024, 4, 7)) == [
        (utc(2024, 4, 6, 15, 30), utc(2024, 4, 6, 17, 30))
    ]


def test_ambiguous_and_nonexistent_window_edges() -> None:
    # Starting inside the repeated hour: open while the clock shows 01:30-03:00, which it does twice for
    # 01:30-02:00 but not while it shows 01:00-01:30 the second time.
    repeated = BusinessCalendar("America/New_York", (OpenWindow(6, time(1, 30), time(3)),))
    assert open_intervals(repeated, utc(2024, 11, 3), utc(2024, 11, 4)) == [
        (local("America/New_York", 2024, 11, 3, 1, 30), utc(2024, 11, 3, 6)),  # 01:30-02:00 EDT
        (local("America/New_York", 2024, 11, 3, 1, 30, fold=1), local("America/New_York", 2024, 11, 3, 3)),
    ]
    assert utc(2024, 11, 3, 6) == local("America/New_York", 2024, 11, 3, 1, fold=1)  # the clock falls back
    # Starting in the gap: opens at the transition instant.
    gap = BusinessCalendar("America/New_York", (OpenWindow(6, time(2, 30), time(5)),))
    assert open_intervals(gap, utc(2024, 3, 10), utc(2024, 3, 11)) == [
        (utc(2024, 3, 10, 7), utc(2024, 3, 10, 9))
    ]
    # Ending in the gap: closes at the transition instant.
    ends_in_gap = BusinessCalendar("America/New_York", (OpenWindow(6, time(0), time(2, 30)),))
    assert open_intervals(ends_in_gap, utc(2024, 3, 10), utc(2024, 3, 11)) == [
        (utc(2024, 3, 10, 5), utc(2024, 3, 10, 7))
    ]


def test_half_hour_zone() -> None:
    kolkata = BusinessCalendar("Asia/Kolkata", weekdays(time(9, 30), time(18)))
    # Monday 2024-01-01 09:30-18:00 IST is 04:00-12:30 UTC.
    assert open_intervals(kolkata, utc(2024, 1, 1), utc(2024, 1, 2)) == [
        (utc(2024, 1, 1, 4), utc(2024, 1, 1, 12, 30))
    ]
    assert business_ms(kolkata, utc(2024, 1, 1), utc(2024, 1, 8)) == 5 * 8.5 * 3_600_000


def test_window_crossing_midnight() -> None:
    night = BusinessCalendar("Europe/London", (OpenWindow(4, time(22), time(6)),))
    # Friday 2024-01-05 22:00 to Saturday 06:00 (GMT).
    assert open_intervals(night, utc(2024, 1, 1), utc(2024, 1, 8)) == [
        (utc(2024, 1, 5, 22), utc(2024, 1, 6, 6))
    ]
    assert is_open(night, utc(2024, 1, 6, 5, 59))
    assert not is_open(night, utc(2024, 1, 6, 6))
    assert not is_open(night, utc(2024, 1, 4, 23))
    # A Saturday holiday closes the tail after midnight, not the Friday evening.
    saturday_off = BusinessCalendar(night.timezone, night.windows, (Holiday(date(2024, 1, 6)),))
    assert open_intervals(saturday_off, utc(2024, 1, 1), utc(2024, 1, 8)) == [
        (utc(2024, 1, 5, 22), utc(2024, 1, 6))
    ]


def test_window_touching_midnight_and_whole_days() -> None:
    evening = BusinessCalendar("UTC", (OpenWindow(0, time(18), MIDNIGHT), OpenWindow(1, MIDNIGHT, time(2))))
    # Monday 18:00-24:00 and Tuesday 00:00-02:00 join into one interval.
    assert open_intervals(evening, utc(2024, 1, 1), utc(2024, 1, 3)) == [
        (utc(2024, 1, 1, 18), utc(2024, 1, 2, 2))
    ]
    sunday = BusinessCalendar("America/New_York", (OpenWindow(6, MIDNIGHT, MIDNIGHT),))
    assert business_time(sunday, utc(2024, 3, 9), utc(2024, 3, 12)) == timedelta(hours=23)
    assert business_time(sunday, utc(2024, 11, 2), utc(2024, 11, 5)) == timedelta(hours=25)


def test_overlapping_windows_count_once() -> None:
    overlapping = BusinessCalendar(
        "UTC",
        (
            OpenWindow(0, time(9), time(12)),
            OpenWindow(0, time(11), time(14)),
            OpenWindow(6, time(20), time(10)),
        ),
    )
    # Sunday 20:00 to Monday 14:00, once.
    assert open_intervals(overlapping, utc(2024, 1, 1), utc(2024, 1, 2)) == [
        (utc(2024, 1, 1), utc(2024, 1, 1, 14))
    ]


def test_partial_and_whole_holidays() -> None:
    monday = date(2024, 1, 8)
    lunch = BusinessCalendar(NY_OFFICE.timezone, NY_OFFICE.windows, (Holiday(monday, time(12), time(14)),))
    assert business_time(lunch, utc(2024, 1, 8), utc(2024, 1, 9)) == timedelta(hours=6)
    assert not is_open(lunch, local("America/New_York", 2024, 1, 8, 13))
    closed = BusinessCalendar(NY_OFFICE.timezone, NY_OFFICE.windows, (Holiday(monday, name="closed"),))
    assert business_time(closed, utc(2024, 1, 8), utc(2024, 1, 9)) == timedelta(0)
    until_midnight = BusinessCalendar(
        NY_OFFICE.timezone, NY_OFFICE.windows, (Holiday(monday, time(16), MIDNIGHT),)
    )
    assert business_time(until_midnight, utc(2024, 1, 8), utc(2024, 1, 9)) == timedelta(hours=7)


def test_holidays_on_dst_days() -> None:
    sunday = (OpenWindow(6, MIDNIGHT, MIDNIGHT),)
    spring = BusinessCalendar("America/New_York", sunday, (Holiday(date(2024, 3, 10), time(1), time(4)),))
    assert business_time(spring, utc(2024, 3, 9), utc(2024, 3, 12)) == timedelta(hours=21)
    fall = BusinessCalendar("America/New_York", sunday, (Holiday(date(2024, 11, 3), time(1), time(2)),))
    assert business_time(fall, utc(2024, 11, 2), utc(2024, 11, 5)) == timedelta(hours=23)
    whole = BusinessCalendar("Europe/London", sunday, (Holiday(date(2024, 3, 31)),))
    assert business_time(whole, utc(2024, 3, 30), utc(2024, 4, 1, 12)) == timedelta(0)


def test_versions_over_time() -> None:
    old = BusinessCalendar(
        "America/New_York",
        (*weekdays(time(9), time(17)), OpenWindow(6, time(22), time(6))),
        (Holiday(date(2024, 7, 1), time(5), time(6)),),
        valid_until=date(2024, 6, 30),
    )
    new = BusinessCalendar(
        "America/New_York",
        weekdays(time(8), time(12)),
        (Holiday(date(2024, 7, 1), time(0), time(9)),),
        valid_from=date(2024, 7, 1),
    )
    schedule = CalendarSchedule((old, new))
    ny = "America/New_York"
    # Sunday 2024-06-30 22:00 opens under the old version and runs into Monday (a window belongs to the
    # day it starts on); the old version's holiday closes 05:00-06:00, the new one's does not touch it.
    assert open_intervals(schedule, local(ny, 2024, 6, 30), local(ny, 2024, 7, 2)) == [
        (local(ny, 2024, 6, 30, 22), local(ny, 2024, 7, 1, 5)),
        (local(ny, 2024, 7, 1, 9), local(ny, 2024, 7, 1, 12)),
    ]
    # The week before: the Sunday night shift's tail until 06:00 Monday, then 40 office hours.
    assert business_time(schedule, local(ny, 2024, 6, 24), local(ny, 2024, 6, 29)) == timedelta(hours=46)
    gap = CalendarSchedule((BusinessCalendar(ny, NY_OFFICE.windows, valid_until=date(2024, 6, 28)), new))
    # Dates no version covers (the weekend of 2024-06-29) are closed.
    assert business_time(gap, local(ny, 2024, 6, 28, 12), local(ny, 2024, 7, 1, 10)) == timedelta(hours=6)
    assert CalendarSchedule.of(new) == CalendarSchedule((new,))
    assert CalendarSchedule.of(schedule) is schedule


def test_first_matching_version_wins() -> None:
    closed_week = BusinessCalendar("UTC", (), valid_from=date(2024, 1, 8), valid_until=date(2024, 1, 14))
    normal = BusinessCalendar("UTC", weekdays(time(9), time(17)))
    schedule = CalendarSchedule((closed_week, normal))
    assert business_time(schedule, utc(2024, 1, 1), utc(2024, 1, 22)) == timedelta(hours=80)


def test_always_open_measures_calendar_time() -> None:
    a, b = utc(2024, 3, 9, 12, 0, 0, 123), utc(2024, 3, 12, 1)
    assert business_time(ALWAYS_OPEN, a, b) == b - a
    assert add_business_time(ALWAYS_OPEN, a, timedelta(days=40)) == a + timedelta(days=40)
    assert open_intervals(ALWAYS_OPEN, a, b) == [(a, b)]


def test_add_business_time_zero_and_long_durations() -> None:
    t = local("America/New_York", 2024, 3, 9, 12)
    assert add_business_time(NY_OFFICE, t, timedelta(0)) is t
    # 1000 business hours is 25 weeks of 40 hours, from Monday 2024-03-11 09:00 EDT.
    assert add_business_time(NY_OFFICE, t, timedelta(hours=1000)) == local(
        "America/New_York", 2024, 8, 30, 17
    )


@pytest.mark.parametrize(
    "schedule",
    [
        BusinessCalendar("UTC", ()),
        BusinessCalendar("UTC", weekdays(time(9), time(17)), valid_until=date(2024, 1, 31)),
        BusinessCalendar("UTC", weekdays(time(9), time(17)), valid_from=date(2040, 1, 1)),
    ],
    ids=["no windows", "expired", "starts after the horizon"],
)
def test_add_business_time_gives_up(schedule: BusinessCalendar) -> None:
    with pytest.raises(CalendarError, match="open"):
        add_business_time(schedule, utc(2024, 1, 1), timedelta(hours=1000))


def test_bad_arguments() -> None:
    with pytest.raises(CalendarError, match="timezone-aware"):
        business_ms(NY_OFFICE, datetime(2024, 1, 1), utc(2024, 1, 2))
    with pytest.raises(CalendarError, match="non-negative"):
        add_business_time(NY_OFFICE, utc(2024, 1, 1), timedelta(hours=-1))
    with pytest.raises(CalendarError, match="BusinessCalendar or CalendarSchedule"):
        is_open("24x7", utc(2024, 1, 1))  # type: ignore[arg-type]
    assert business_ms(NY_OFFICE, utc(2024, 1, 9), utc(2024, 1, 8)) == 0


# --- BusinessClock -------------------------------------------------------------------------------------------


def test_business_clock_table_and_span() -> None:
    clock = BusinessClock(NY_OFFICE, utc(2024, 3, 8), utc(2024, 3, 12))
    starts, ends, cum_before = clock.intervals()
    ms = [(utc(2024, 3, 8, 14), utc(2024, 3, 8, 22)), (utc(2024, 3, 11, 13), utc(2024, 3, 11, 21))]
    assert starts.tolist() == [epoch_ms(a) for a, _ in ms]
    assert ends.tolist() == [epoch_ms(b) for _, b in ms]
    assert cum_before.tolist() == [0, 8 * 3_600_000]
    assert not starts.flags.writeable
    with pytest.raises(CalendarError, match="span"):
        clock.cumulative([clock.end_ms + 1])
    with pytest.raises(CalendarError, match="span end"):
        clock.add([clock.start_ms], [16 * 3_600_000 + 1])
    with pytest.raises(CalendarError, match="negative"):
        clock.add([clock.start_ms], [-1])
    assert clock.add([clock.start_ms], [16 * 3_600_000]).tolist() == [ends[-1]]
    with pytest.raises(CalendarError, match="before it starts"):
        BusinessClock(NY_OFFICE, utc(2024, 3, 8), utc(2024, 3, 7))


def test_business_clock_without_open_time() -> None:
    clock = BusinessClock(BusinessCalendar("UTC", ()), utc(2024, 1, 1), utc(2024, 1, 2))
    ts = np.array([clock.start_ms, clock.end_ms], dtype=np.int64)
    assert clock.cumulative(ts).tolist() == [0, 0]
    assert clock.add(ts, [0, 0]).tolist() == ts.tolist()
    with pytest.raises(CalendarError, match="span end"):
        clock.add(ts, [0, 1])


def test_business_clock_widens_to_whole_milliseconds() -> None:
    clock = BusinessClock(ALWAYS_OPEN, utc(2024, 1, 1, 0, 0, 0, 1500), utc(2024, 1, 1, 0, 0, 1, 2500))
    base = epoch_ms(utc(2024, 1, 1))
    assert (clock.start_ms, clock.end_ms) == (base + 1, base + 1003)


# --- iCalendar import ---------------------------------------------------------------------------------------

ICS = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//supportlens//tests//EN",
        "BEGIN:VEVENT",
        "UID:christmas",
        "DTSTAMP:20240101T000000Z",
        "DTSTART;VALUE=DATE:20241225",
        "DTEND;VALUE=DATE:20241226",
        "SUMMARY:Christmas Day",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:year-end",
        "DTSTAMP:20240101T000000Z",
        "DTSTART;VALUE=DATE:20241230",
        "DTEND;VALUE=DATE:20250102",
        "SUMMARY:Year end",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:eve",
        "DTSTAMP:20240101T000000Z",
        "DTSTART;TZID=Europe/Berlin:20241224T130000",
        "DTEND;TZID=Europe/Berlin:20241224T180000",
        "SUMMARY:Christmas Eve afternoon",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:maintenance",
        "DTSTAMP:20240101T000000Z",
        "DTSTART:20250102T220000Z",
        "DURATION:PT4H",
        "SUMMARY:Maintenance",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:cancelled",
        "DTSTAMP:20240101T000000Z",
        "DTSTART;VALUE=DATE:20241231",
        "STATUS:CANCELLED",
        "SUMMARY:Cancelled",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)


def test_holidays_from_ical() -> None:
    assert holidays_from_ical(ICS, "Europe/London") == [
        Holiday(date(2024, 12, 24), time(12), time(17), "Christmas Eve afternoon"),
        Holiday(date(2024, 12, 25), name="Christmas Day"),
        Holiday(date(2024, 12, 30), name="Year end"),
        Holiday(date(2024, 12, 31), name="Year end"),
        Holiday(date(2025, 1, 1), name="Year end"),
        Holiday(date(2025, 1, 2), time(22), MIDNIGHT, "Maintenance"),
        Holiday(date(2025, 1, 3), time(0), time(2), "Maintenance"),
    ]
    # The same timed events seen from New York, from bytes.
    in_new_york = holidays_from_ical(ICS.encode(), "America/New_York")
    assert Holiday(date(2024, 12, 24), time(7), time(12), "Christmas Eve afternoon") in in_new_york
    assert Holiday(date(2025, 1, 2), time(17), time(21), "Maintenance") in in_new_york


def test_ical_holidays_close_the_calendar() -> None:
    london = BusinessCalendar(
        "Europe/London", weekdays(time(9), time(17)), tuple(holidays_from_ical(ICS, "Europe/London"))
    )
    # Week of 2024-12-23: Monday open, Tuesday until 12:00, Wednesday closed, Thursday and Friday open.
    assert business_time(london, utc(2024, 12, 23), utc(2024, 12, 28)) == timedelta(hours=8 + 3 + 8 + 8)


def _ics(*event_lines: str) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN", "BEGIN:VEVENT", "UID:x", *event_lines]
    return "\r\n".join([*lines, "END:VEVENT", "END:VCALENDAR", ""])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("not a calendar", "invalid iCalendar"),
        ("", "invalid iCalendar"),
        ("BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n", "expected a VCALENDAR"),
        (_ics("SUMMARY:No start"), "No start"),
        (_ics("SUMMARY:Bad", "DTSTART:2024XX"), "Bad"),
        (
            _ics("SUMMARY:Weekly", "DTSTART;VALUE=DATE:20240101", "RRULE:FREQ=WEEKLY"),
            "recurring event 'Weekly'",
        ),
        (_ics("SUMMARY:Backwards", "DTSTART;VALUE=DATE:20240105", "DTEND;VALUE=DATE:20240101"), "Backwards"),
        (_ics("SUMMARY:Mixed", "DTSTART;VALUE=DATE:20240101", "DTEND:20240102T100000Z"), "Mixed"),
    ],
)
def test_bad_ical(data: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        holidays_from_ical(data, "UTC")


def test_ical_text_is_never_read_as_a_path(tmp_path: Path) -> None:
    path = tmp_path / "holidays.ics"
    path.write_text(ICS)
    with pytest.raises(CalendarError, match="invalid iCalendar"):
        holidays_from_ical(str(path), "UTC")


def test_ical_zero_length_and_floating_events() -> None:
    data = _ics("SUMMARY:Point", "DTSTART:20240101T100000")
    assert holidays_from_ical(data, "Asia/Kolkata") == []
    floating = _ics("SUMMARY:Local", "DTSTART:20240101T100000", "DTEND:20240101T113000")
    assert holidays_from_ical(floating, "Asia/Kolkata") == [
        Holiday(date(2024, 1, 1), time(10), time(11, 30), "Local")
    ]
    with pytest.raises(CalendarError, match="timezone"):
        holidays_from_ical(floating, "Mars/Olympus")


# --- validation ------------------------------------------------------------------------------------------------

INVALID: list[tuple[Callable[[], object], str]] = [
    (lambda: OpenWindow(7, time(9), time(17)), "OpenWindow.weekday"),
    (lambda: OpenWindow(-1, time(9), time(17)), "OpenWindow.weekday"),
    (lambda: OpenWindow(True, time(9), time(17)), "OpenWindow.weekday"),
    (lambda: OpenWindow(0, time(9), time(9)), "zero-length"),
    (lambda: OpenWindow(0, "09:00", time(17)), "OpenWindow.start"),  # type: ignore[arg-type]
    (lambda: OpenWindow(0, time(9, tzinfo=UTC), time(17)), "OpenWindow.start must be a naive"),
    (lambda: OpenWindow(0, time(9), time(17, 0, 0, 1)), "OpenWindow.end must be a whole number"),
    (lambda: Holiday(datetime(2024, 1, 1)), "Holiday.day"),
    (lambda: Holiday(date(2024, 1, 1), time(9)), "both be set"),
    (lambda: Holiday(date(2024, 1, 1), None, time(9)), "both be set"),
    (lambda: Holiday(date(2024, 1, 1), time(12), time(9)), "Holiday.end must be after"),
    (lambda: Holiday(date(2024, 1, 1), time(9), time(9)), "Holiday.end must be after"),
    (lambda: BusinessCalendar("Mars/Olympus", ()), "BusinessCalendar.timezone"),
    (lambda: BusinessCalendar("../etc/passwd", ()), "BusinessCalendar.timezone"),
    (lambda: BusinessCalendar("UTC", (time(9),)), "BusinessCalendar.windows"),  # type: ignore[arg-type]
    (lambda: BusinessCalendar("UTC", (), (date(2024, 1, 1),)), "BusinessCalendar.holidays"),  # type: ignore[arg-type]
    (
        lambda: BusinessCalendar("UTC", (), valid_from=date(2024, 2, 1), valid_until=date(2024, 1, 1)),
        "valid_until",
    ),
    (lambda: BusinessCalendar("UTC", (), valid_from=datetime(2024, 1, 1)), "valid_from"),
    (lambda: CalendarSchedule(()), "at least one"),
    (lambda: CalendarSchedule((NY_OFFICE.windows[0],)), "CalendarSchedule.versions"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("build", "message"), INVALID)
def test_validation_errors(build: Callable[[], object], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        build()


def test_calendars_accept_lists_and_stay_hashable() -> None:
    calendar = BusinessCalendar("UTC", [OpenWindow(0, time(9), time(17))], [Holiday(date(2024, 1, 1))])  # type: ignore[arg-type]
    assert isinstance(calendar.windows, tuple)
    assert isinstance(calendar.holidays, tuple)
    assert hash(CalendarSchedule([calendar])) == hash(CalendarSchedule((calendar,)))  # type: ignore[arg-type]
    assert OpenWindow(0, MIDNIGHT, MIDNIGHT) in ALWAYS_OPEN.windows
