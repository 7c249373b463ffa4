"""Business calendars: when a team is open, and how much open time lies between two instants.

This module is the reference implementation: the vectorized and SQL versions are tested against it, so
every rule is exact (integer microseconds, exact UTC offsets) rather than approximate.

Semantics, which the brute-force oracle in the tests implements independently:

- Wall clock decides. An instant is inside a window occurrence when the wall-clock time it shows in the
  calendar's timezone lies inside the window's local span. On a spring-forward day a 01:00-04:00 window
  is therefore 2 hours long, and a window starting or ending in the gap does so at the transition instant
  (wall times that do not exist are never shown). On a fall-back day 01:00-04:00 is 4 hours long: both
  occurrences of the repeated hour show wall times inside it, i.e. the start is taken at fold=0 and the
  end at fold=1. A window starting inside the repeated hour (01:30-03:00) is open during both
  occurrences of 01:30-02:00 but not while the clock shows 01:00-01:30 the second time: 2 hours, in two
  pieces.
- A window belongs to the local date it starts on: a Friday 22:00-06:00 window is open until Saturday
  06:00, and the calendar version in force on Friday decides it even if another version governs Saturday.
- Holidays close wall-clock time by the local date the instant shows (a whole-day holiday on Saturday
  closes the Saturday 00:00-06:00 tail of that Friday window). A version's holidays only close that
  version's windows; a holiday never adds open time.
- A schedule's versions are tried in order: the first version whose validity (inclusive local dates in its
  own timezone) contains a date governs that date; dates no version contains are closed. When versions use
  different timezones, version V governs its local date D when the first version claiming the instant at
  which D begins in V's timezone is V.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

_Interval: TypeAlias = tuple[int, int]  # [start, end) in UTC epoch microseconds
Int64Array: TypeAlias = npt.NDArray[np.int64]

_US = timedelta(microseconds=1)
_US_PER_MS = 1000
_US_PER_DAY = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MIDNIGHT = time(0)
_EPOCH_DAY = date(1970, 1, 1)
_ONE_DAY = timedelta(days=1)
# tzdata has never had two UTC-offset changes less than four days apart, so sampling every 12 hours and
# bisecting each change finds every transition.
_SAMPLE_US = 12 * 3_600_000_000
_HORIZON_US = 3653 * _US_PER_DAY  # add_business_time gives up after ten years
_FIRST_CHUNK_US = 7 * _US_PER_DAY
_MAX_CHUNK_US = 366 * _US_PER_DAY


class CalendarError(ValueError):
    """An invalid calendar definition or input, or a question the calendar cannot answer."""


def _zone(key: str, field: str) -> ZoneInfo:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise CalendarError(f"{field}: unknown timezone {key!r}") from exc


def _check_time(value: object, field: str) -> None:
    if not isinstance(value, time):
        raise CalendarError(f"{field} must be a datetime.time, got {value!r}")
    if value.tzinfo is not None:
        raise CalendarError(f"{field} must be a naive wall-clock time (the calendar's timezone applies)")
    if value.microsecond % _US_PER_MS:
        raise CalendarError(f"{field} must be a whole number of milliseconds, got {value}")


def _check_date(value: object, field: str) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise CalendarError(f"{field} must be a datetime.date, got {value!r}")


@dataclass(frozen=True, slots=True)
class OpenWindow:
    """Open on ``weekday`` (0 = Monday) from ``start`` to ``end``, local wall-clock time.

    ``end <= start`` crosses midnight into the next day and ``end == time(0)`` means 24:00, so
    ``time(0)``-``time(0)`` is the whole day.
    """

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if isinstance(self.weekday, bool) or not isinstance(self.weekday, int) or not 0 <= self.weekday <= 6:
            raise CalendarError(f"OpenWindow.weekday must be 0 (Monday) to 6 (Sunday), got {self.weekday!r}")
        _check_time(self.start, "OpenWindow.start")
        _check_time(self.end, "OpenWindow.end")
        if self.start == self.end and self.start != _MIDNIGHT:
            raise CalendarError(
                f"OpenWindow is zero-length ({self.start}-{self.end}); use time(0)-time(0) for a whole day "
                "or split a 24-hour window in two"
            )


@dataclass(frozen=True, slots=True)
class Holiday:
    """Closed all of ``day`` (local date), or only during [``start``, ``end``) when both are given.

    ``end == time(0)`` means 24:00.
    """

    day: date
    start: time | None = None
    end: time | None = None
    name: str = ""

    def __post_init__(self) -> None:
        _check_date(self.day, "Holiday.day")
        if (self.start is None) != (self.end is None):
            raise CalendarError(
                "Holiday.start and Holiday.end must both be set (partial holiday) or both be None (whole day)"
            )
        if self.start is not None and self.end is not None:
            _check_time(self.start, "Holiday.start")
            _check_time(self.end, "Holiday.end")
            if self.end != _MIDNIGHT and self.end <= self.start:
                raise CalendarError(
                    "Holiday.end must be after Holiday.start (or time(0) for 24:00), "
                    f"got {self.start}-{self.end}"
                )


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """A weekly schedule in one timezone, minus holidays, valid on [valid_from, valid_until] (local dates)."""

    timezone: str
    windows: tuple[OpenWindow, ...]
    holidays: tuple[Holiday, ...] = ()
    valid_from: date | None = None
    valid_until: date | None = None
    name: str = ""

    def __post_init__(self) -> None:
        _zone(self.timezone, "BusinessCalendar.timezone")
        # Lists are accepted for convenience; tuples keep the calendar hashable.
        object.__setattr__(self, "windows", tuple(self.windows))
        object.__setattr__(self, "holidays", tuple(self.holidays))
        for window in self.windows:
            if not isinstance(window, OpenWindow):
                raise CalendarError(f"BusinessCalendar.windows must hold OpenWindow values, got {window!r}")
        for holiday in self.holidays:
            if not isinstance(holiday, Holiday):
                raise CalendarError(f"BusinessCalendar.holidays must hold Holiday values, got {holiday!r}")
        if self.valid_from is not None:
            _check_date(self.valid_from, "BusinessCalendar.valid_from")
        if self.valid_until is not None:
            _check_date(self.valid_until, "BusinessCalendar.valid_until")
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until < self.valid_from
        ):
            raise CalendarError(
                f"BusinessCalendar.valid_until ({self.valid_until}) is before valid_from ({self.valid_from})"
            )

    def covers(self, day: date) -> bool:
        """Whether ``day`` (a local date in this calendar's timezone) is within the validity dates."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


@dataclass(frozen=True, slots=True)
class CalendarSchedule:
    """Calendar versions over time; the first version whose validity contains a date governs it."""

    versions: tuple[BusinessCalendar, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", tuple(self.versions))
        if not self.versions:
            raise CalendarError("CalendarSchedule.versions must hold at least one BusinessCalendar")
        for version in self.versions:
            if not isinstance(version, BusinessCalendar):
                raise CalendarError(
                    f"CalendarSchedule.versions must hold BusinessCalendar values, got {version!r}"
                )

    @classmethod
    def of(cls, calendar: BusinessCalendar | CalendarSchedule) -> CalendarSchedule:
        """The schedule of a single calendar (a schedule is returned unchanged)."""
        return calendar if isinstance(calendar, CalendarSchedule) else cls((calendar,))


Schedule: TypeAlias = BusinessCalendar | CalendarSchedule

ALWAYS_OPEN = BusinessCalendar(
    "UTC", tuple(OpenWindow(day, _MIDNIGHT, _MIDNIGHT) for day in range(7)), name="24x7"
)
"""Open at every instant: business time through this calendar is plain elapsed time."""


# --- conversions -------------------------------------------------------------------------------------


def _to_us(instant: datetime, field: str = "instant") -> int:
    if not isinstance(instant, datetime) or instant.utcoffset() is None:
        raise CalendarError(f"{field} must be a timezone-aware datetime, got {instant!r}")
    return (instant - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _wall_us(day: date, clock: time) -> int:
    """Wall-clock date and time as microseconds since 1970-01-01 00:00 on the same (naive) clock."""
    seconds = (
        (day.toordinal() - _EPOCH_ORDINAL) * 86_400 + clock.hour * 3600 + clock.minute * 60 + clock.second
    )
    return seconds * 1_000_000 + clock.microsecond


def _local(zone: tzinfo, us: int) -> datetime:
    return _from_us(us).astimezone(zone)


def _offset_us(zone: tzinfo, us: int) -> int:
    local = _local(zone, us).replace(tzinfo=None)
    return (local - _NAIVE_EPOCH) // _US - us


class _Offsets:
    """A timezone's UTC offset over a bounded UTC span, as constant-offset segments."""

    __slots__ = ("_end", "_max_offset", "_min_offset", "_segments", "_starts")

    def __init__(self, zone: tzinfo, lo: int, hi: int) -> None:
        segments: list[tuple[int, int, int]] = []
        seg_start, offset, probe = lo, _offset_us(zone, lo), lo
        while probe < hi - 1:
            nxt = min(probe + _SAMPLE_US, hi - 1)
            nxt_offset = _offset_us(zone, nxt)
            if nxt_offset != offset:
                before, after = probe, nxt
                while after - before > 1:
                    mid = (before + after) // 2
                    if _offset_us(zone, mid) == offset:
                        before = mid
                    else:
                        after = mid
                segments.append((seg_start, after, offset))
                seg_start, offset = after, nxt_offset
            probe = nxt
        segments.append((seg_start, hi, offset))
        self._segments = segments
        self._starts = [segment[0] for segment in segments]
        self._min_offset = min(segment[2] for segment in segments)
        self._max_offset = max(segment[2] for segment in segments)
        self._end = hi

    def _from(self, wall: int) -> list[tuple[int, int, int]]:
        first = bisect.bisect_right(self._starts, wall - self._max_offset) - 1
        return self._segments[max(first, 0) :]

    def preimage(self, wall_lo: int, wall_hi: int) -> Iterator[_Interval]:
        """The instants whose wall-clock time lies in [wall_lo, wall_hi): one piece per segment."""
        for start, end, offset in self._from(wall_lo):
            if start >= wall_hi - self._min_offset:
                break
            lo, hi = max(start, wall_lo - offset), min(end, wall_hi - offset)
            if lo < hi:
                yield lo, hi

    def first_at_or_after(self, wall: int) -> int:
        """The earliest instant whose wall-clock time is at least ``wall`` (the span end if none is)."""
        for start, end, offset in self._from(wall):
            if wall - offset < end:
                return max(start, wall - offset)
        return self._end


# --- interval algebra --------------------------------------------------------------------------------


def _merge(intervals: list[_Interval]) -> list[_Interval]:
    merged: list[_Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _subtract(opened: list[_Interval], closed: list[_Interval]) -> list[_Interval]:
    """``opened`` minus ``closed``, both sorted and merged."""
    result: list[_Interval] = []
    first = 0
    for start, end in opened:
        while first < len(closed) and closed[first][1] <= start:
            first += 1
        cursor, index = start, first
        while index < len(closed) and closed[index][0] < end:
            if closed[index][0] > cursor:
                result.append((cursor, closed[index][0]))
            cursor = max(cursor, closed[index][1])
            index += 1
        if cursor < end:
            result.append((cursor, end))
    return result


# --- the open set --------------------------------------------------------------------------------------


def _versions(schedule: Schedule) -> tuple[BusinessCalendar, ...]:
    if isinstance(schedule, BusinessCalendar):
        return (schedule,)
    if isinstance(schedule, CalendarSchedule):
        return schedule.versions
    raise CalendarError(f"expected a BusinessCalendar or CalendarSchedule, got {schedule!r}")


def _governs(versions: tuple[BusinessCalendar, ...], index: int, offsets: _Offsets, day: date) -> bool:
    """Whether ``versions[index]`` decides the windows starting on its local date ``day``."""
    if not versions[index].covers(day):
        return False
    if index == 0:
        return True
    day_start = offsets.first_at_or_after(_wall_us(day, _MIDNIGHT))
    return not any(
        earlier.covers(_local(ZoneInfo(earlier.timezone), day_start).date()) for earlier in versions[:index]
    )


def _holiday_wall(holiday: Holiday) -> _Interval:
    if holiday.start is None or holiday.end is None:
        return _wall_us(holiday.day, _MIDNIGHT), _wall_us(holiday.day + _ONE_DAY, _MIDNIGHT)
    end_day = holiday.day + _ONE_DAY if holiday.end == _MIDNIGHT else holiday.day
    return _wall_us(holiday.day, holiday.start), _wall_us(end_day, holiday.end)


def _version_open(versions: tuple[BusinessCalendar, ...], index: int, lo: int, hi: int) -> list[_Interval]:
    """Open time of ``versions[index]`` within [lo, hi), sorted and merged."""
    version = versions[index]
    zone = ZoneInfo(version.timezone)
    # Windows starting on day D show wall times in [D 00:00, D+2 00:00), so these dates cover [lo, hi).
    first_day = _local(zone, lo).date() - 2 * _ONE_DAY
    last_day = _local(zone, hi).date() + _ONE_DAY
    if (
        not version.windows
        or (version.valid_until is not None and version.valid_until < first_day)
        or (version.valid_from is not None and version.valid_from > last_day)
    ):
        return []
    offsets = _Offsets(zone, lo - 4 * _US_PER_DAY, hi + 4 * _US_PER_DAY)
    by_weekday: list[list[OpenWindow]] = [[] for _ in range(7)]
    for window in version.windows:
        by_weekday[window.weekday].append(window)
    opened: list[_Interval] = []
    day = first_day
    while day <= last_day:
        windows = by_weekday[day.weekday()]
        if windows and _governs(versions, index, offsets, day):
            for window in windows:
                end_day = day if window.end > window.start else day + _ONE_DAY
                opened.extend(offsets.preimage(_wall_us(day, window.start), _wall_us(end_day, window.end)))
        day += _ONE_DAY
    closed = [
        piece
        for holiday in version.holidays
        if first_day <= holiday.day <= last_day
        for piece in offsets.preimage(*_holiday_wall(holiday))
    ]
    return [
        (max(start, lo), min(end, hi))
        for start, end in _subtract(_merge(opened), _merge(closed))
        if start < hi and end > lo
    ]


def _open(versions: tuple[BusinessCalendar, ...], lo: int, hi: int) -> list[_Interval]:
    if hi <= lo:
        return []
    return _merge(
        [piece for index in range(len(versions)) for piece in _version_open(versions, index, lo, hi)]
    )


# --- scalar API ------------------------------------------------------------------------------------------


def open_intervals(schedule: Schedule, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The open time within [start, end) as sorted, merged, non-overlapping UTC intervals."""
    lo, hi = _to_us(start, "start"), _to_us(end, "end")
    return [(_from_us(a), _from_us(b)) for a, b in _open(_versions(schedule), lo, hi)]


def _business_us(schedule: Schedule, a: datetime, b: datetime) -> int:
    return sum(end - start for start, end in _open(_versions(schedule), _to_us(a, "a"), _to_us(b, "b")))


def business_time(schedule: Schedule, a: datetime, b: datetime) -> timedelta:
    """Open time in [a, b), exactly; zero when ``b <= a``."""
    return timedelta(microseconds=_business_us(schedule, a, b))


def business_ms(schedule: Schedule, a: datetime, b: datetime) -> int:
    """Open milliseconds in [a, b) (exact for millisecond-aligned inputs, else rounded down)."""
    return _business_us(schedule, a, b) // _US_PER_MS


def business_seconds(schedule: Schedule, a: datetime, b: datetime) -> float:
    """Open seconds in [a, b)."""
    return _business_us(schedule, a, b) / 1_000_000


def is_open(schedule: Schedule, t: datetime) -> bool:
    """Whether the instant ``t`` is open."""
    at = _to_us(t, "t")
    return bool(_open(_versions(schedule), at, at + 1))


def on_closed_weekday(schedule: Schedule, instants_ms: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether each instant (epoch ms) falls on a local weekday without opening hours in the week
    of the calendar version governing its date: the weekend, for a Monday-to-Friday desk (seed 004's
    weekend detection).  Holidays are no weekend (``is_open`` tells closed hours of any kind); a date
    no version governs has no opening hours, so it counts as one."""
    ms = np.asarray(instants_ms, dtype=np.int64)
    closed = np.ones(ms.size, dtype=bool)
    undecided = np.ones(ms.size, dtype=bool)
    for version in _versions(schedule):
        local = pa.array(ms, pa.timestamp("ms", tz=version.timezone))
        weekday = np.asarray(pc.day_of_week(local).to_numpy(zero_copy_only=False), dtype=np.int64)
        day = np.asarray(
            pc.cast(pc.local_timestamp(local), pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False),
            dtype=np.int64,
        )
        governed = undecided.copy()
        if version.valid_from is not None:
            governed &= day >= (version.valid_from - _EPOCH_DAY).days
        if version.valid_until is not None:
            governed &= day <= (version.valid_until - _EPOCH_DAY).days
        open_days = np.zeros(7, dtype=bool)
        open_days[[window.weekday for window in version.windows]] = True
        closed[governed] = ~open_days[weekday[governed]]
        undecided &= ~governed
    return closed


def _open_until(versions: tuple[BusinessCalendar, ...]) -> int | None:
    """An instant after which no version has open time, or None when one never expires."""
    bounds: list[int] = []
    for version in versions:
        if not version.windows:
            continue
        if version.valid_until is None:
            return None
        # Windows end before valid_until + 2 days (local); UTC offsets are under a day.
        bounds.append(_wall_us(version.valid_until + 2 * _ONE_DAY, _MIDNIGHT) + _US_PER_DAY)
    return max(bounds)


def add_business_time(schedule: Schedule, t: datetime, duration: timedelta) -> datetime:
    """The earliest instant ``u >= t`` with ``duration`` of open time in [t, u) (``t`` itself for zero).

    Raises CalendarError when that instant is more than ten years after ``t`` or the schedule closes for good
    before it, so an always-closed schedule never loops.
    """
    if not isinstance(duration, timedelta) or duration < timedelta(0):
        raise CalendarError(f"duration must be a non-negative timedelta, got {duration!r}")
    cursor = _to_us(t, "t")
    if not duration:
        return t
    versions = _versions(schedule)
    if not any(version.windows for version in versions):
        raise CalendarError("the schedule has no open windows")
    remaining = duration // _US
    stop_at = cursor + _HORIZON_US
    expiry = _open_until(versions)
    if expiry is not None:
        stop_at = min(stop_at, expiry)
    chunk = _FIRST_CHUNK_US
    while cursor < stop_at:
        stop = min(cursor + chunk, stop_at)
        for start, end in _open(versions, cursor, stop):
            if end - start >= remaining:
                return _from_us(start + remaining)
            remaining -= end - start
        cursor, chunk = stop, min(2 * chunk, _MAX_CHUNK_US)
    raise CalendarError(
        f"the schedule has less than {duration} of open time in the ten years after {t.isoformat()}"
    )


# --- vectorized API --------------------------------------------------------------------------------------


def open_time_before(starts: Int64Array, ends: Int64Array, before: Int64Array, t: Int64Array) -> Int64Array:
    """Open time up to each instant of ``t``, given sorted open intervals [starts, ends) and the open
    time ``before`` each (any one unit for all)."""
    if not starts.size:
        return np.zeros(t.shape, dtype=np.int64)
    index = np.searchsorted(starts, t, side="right") - 1
    safe = np.maximum(index, 0)
    inside = np.minimum(t, ends[safe]) - starts[safe]
    result: Int64Array = np.where(index >= 0, before[safe] + inside, 0)
    return result


class BusinessClock:
    """Business time for many instants at once, over a fixed UTC span.

    Built once from a schedule: the span's open intervals in epoch milliseconds with the business time
    before each, so B(t) (business ms from the span start to t) is a binary search, business(a, b) =
    B(b) - B(a), and the same table can be loaded into SQL for an ASOF join. The span is widened outward to
    whole milliseconds. Instants outside it raise CalendarError instead of being clamped, because a clamped
    B(t) would silently understate business time.
    """

    __slots__ = ("_cum_before", "_cum_end", "_ends", "_starts", "end_ms", "start_ms")

    def __init__(self, schedule: Schedule, start: datetime, end: datetime) -> None:
        lo, hi = _to_us(start, "start"), _to_us(end, "end")
        if hi < lo:
            raise CalendarError(f"BusinessClock span ends ({end}) before it starts ({start})")
        self.start_ms = lo // _US_PER_MS
        self.end_ms = -(-hi // _US_PER_MS)
        # Every bound is a window or holiday time (whole ms), a tz transition (whole s) or a span end.
        intervals = _open(_versions(schedule), self.start_ms * _US_PER_MS, self.end_ms * _US_PER_MS)
        starts = np.array([a // _US_PER_MS for a, _ in intervals], dtype=np.int64)
        ends = np.array([b // _US_PER_MS for _, b in intervals], dtype=np.int64)
        cum_end = np.cumsum(ends - starts, dtype=np.int64)
        cum_before = cum_end - (ends - starts)
        for array in (starts, ends, cum_end, cum_before):
            array.flags.writeable = False
        self._starts, self._ends, self._cum_end, self._cum_before = starts, ends, cum_end, cum_before

    def intervals(self) -> tuple[Int64Array, Int64Array, Int64Array]:
        """(start_ms, end_ms, cum_before_ms) of each open interval, sorted; read-only arrays."""
        return self._starts, self._ends, self._cum_before

    def _instants(self, ts_ms: npt.ArrayLike) -> Int64Array:
        ts = np.asarray(ts_ms, dtype=np.int64)
        if ts.size and (int(ts.min()) < self.start_ms or int(ts.max()) > self.end_ms):
            raise CalendarError(
                f"instants must lie within the clock's span [{self.start_ms}, {self.end_ms}] (epoch ms)"
            )
        return ts

    def cumulative(self, ts_ms: npt.ArrayLike) -> Int64Array:
        """B(t): business ms from the span start up to each instant (epoch ms)."""
        return open_time_before(self._starts, self._ends, self._cum_before, self._instants(ts_ms))

    def business_ms(self, a_ms: npt.ArrayLike, b_ms: npt.ArrayLike) -> Int64Array:
        """Business ms in [a, b) for each pair; zero where ``b <= a``."""
        a, b = self._instants(a_ms), self._instants(b_ms)
        result: Int64Array = np.where(b > a, self.cumulative(b) - self.cumulative(a), 0)
        return result

    def add(self, ts_ms: npt.ArrayLike, durations_ms: npt.ArrayLike) -> Int64Array:
        """The vectorized add_business_time: earliest u >= t with B(u) - B(t) == duration, per element."""
        ts, durations = np.broadcast_arrays(self._instants(ts_ms), np.asarray(durations_ms, dtype=np.int64))
        if durations.size and int(durations.min()) < 0:
            raise CalendarError("durations must not be negative")
        target = self.cumulative(ts) + durations
        total = int(self._cum_end[-1]) if self._cum_end.size else 0
        if np.any((durations > 0) & (target > total)):
            raise CalendarError(f"result would fall after the clock's span end ({self.end_ms} epoch ms)")
        if not self._starts.size:
            return np.array(ts, dtype=np.int64)
        index = np.minimum(np.searchsorted(self._cum_end, target, side="left"), self._starts.size - 1)
        result: Int64Array = np.where(
            durations == 0, ts, self._starts[index] + target - self._cum_before[index]
        )
        return result


# --- iCalendar import ------------------------------------------------------------------------------------


def _wall(value: datetime, zone: tzinfo) -> datetime:
    """Local wall-clock time in ``zone``; floating (naive) iCal times already are."""
    return value if value.tzinfo is None else value.astimezone(zone).replace(tzinfo=None)


def _event_holidays(start: date, end: date, zone: tzinfo, name: str) -> list[Holiday]:
    if not isinstance(start, datetime):
        if isinstance(end, datetime):
            raise CalendarError(f"event {name!r} mixes an all-day DTSTART with a timed end")
        if end <= start:
            raise CalendarError(f"event {name!r} ends before it starts")
        return [Holiday(start + offset * _ONE_DAY, name=name) for offset in range((end - start).days)]
    if not isinstance(end, datetime):
        raise CalendarError(f"event {name!r} mixes a timed DTSTART with an all-day end")
    local_start, local_end = _wall(start, zone), _wall(end, zone)
    if local_end <= local_start:
        if local_end < local_start:
            raise CalendarError(f"event {name!r} ends before it starts in local wall-clock time")
        return []  # a zero-length event closes nothing
    holidays: list[Holiday] = []
    day = local_start.date()
    while datetime.combine(day, _MIDNIGHT) < local_end:
        day_start = datetime.combine(day, _MIDNIGHT)
        lo, hi = max(local_start, day_start), min(local_end, day_start + _ONE_DAY)
        if lo == day_start and hi == day_start + _ONE_DAY:
            holidays.append(Holiday(day, name=name))
        else:
            closing = hi.time() if hi < day_start + _ONE_DAY else _MIDNIGHT
            holidays.append(Holiday(day, lo.time().replace(fold=0), closing.replace(fold=0), name))
        day += _ONE_DAY
    return holidays


def holidays_from_ical(data: bytes | str, timezone: str) -> list[Holiday]:
    """Holidays from iCalendar VEVENTs, for a calendar in ``timezone``, sorted by day and start.

    All-day events close whole days (DTEND exclusive, one Holiday per day). Timed events become partial
    holidays in ``timezone`` wall-clock time, split at local midnights; floating times are taken as local.
    SUMMARY is the name. Cancelled events are skipped. Recurring events (RRULE/RDATE) are rejected rather than
    expanded: export holiday calendars with recurrences expanded.
    """
    # Deferred import: only importers of holiday files pay for the parser.
    import icalendar

    zone = _zone(timezone, "timezone")
    # Bytes, never str: icalendar reads a one-line string naming an existing file from disk.
    raw = data.encode() if isinstance(data, str) else data
    try:
        calendar = icalendar.Calendar.from_ical(raw)
    except ValueError as exc:
        raise CalendarError(f"invalid iCalendar data: {exc}") from exc
    if calendar.name != "VCALENDAR":
        raise CalendarError(f"invalid iCalendar data: expected a VCALENDAR, got {calendar.name}")
    holidays: list[Holiday] = []
    for event in [event for event in calendar.walk("VEVENT") if isinstance(event, icalendar.Event)]:
        name = str(event.get("SUMMARY", ""))
        if "RRULE" in event or "RDATE" in event:
            raise CalendarError(
                f"recurring event {name!r} (RRULE/RDATE) is not supported; "
                "export the calendar with recurrences expanded"
            )
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        try:
            start, end = event.start, event.end
        except ValueError as exc:
            raise CalendarError(f"invalid event {name!r}: {exc}") from exc
        holidays.extend(_event_holidays(start, end, zone, name))
    return sorted(holidays, key=lambda holiday: (holiday.day, holiday.start or _MIDNIGHT))


def fingerprint(schedule: Schedule) -> str:
    """A short digest of everything that decides business time under ``schedule`` (equal schedules,
    equal digests): what materialized business durations record to know they are still valid."""
    return hashlib.sha256(repr(schedule).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class CalendarChoice:
    """A workspace's calendars and which one each ticket follows: its group's calendar where the
    group has one, else the default.  ``schedules[0]`` is the default; ``ids`` holds each one's
    calendar id (None for the default entry), ``group_index`` a group's index into them."""

    schedules: tuple[Schedule, ...]
    ids: tuple[str | None, ...]
    group_index: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def only(cls, default: Schedule) -> CalendarChoice:
        return cls((default,), (None,))

    def index_of(self, group_id: str | None) -> int:
        return self.group_index.get(group_id, 0) if group_id is not None else 0

    def fingerprints(self) -> tuple[str, ...]:
        return tuple(fingerprint(schedule) for schedule in self.schedules)

    def by_id(self) -> dict[str | None, Schedule]:
        """Every calendar by id, None -> the default (what an SLA policy's calendar_id picks from)."""
        return dict(zip(self.ids, self.schedules, strict=True))

    def for_group(self, group_id: str | None) -> dict[str | None, Schedule]:
        """``by_id`` for one ticket: None -> the ticket's own calendar (its group's, else the default)."""
        return {**self.by_id(), None: self.schedules[self.index_of(group_id)]}


def default_business_hours(timezone: str) -> BusinessCalendar:
    """The calendar a workspace has until it defines its own: Monday to Friday, 09:00-17:00 in its
    reporting timezone, no holidays."""
    return BusinessCalendar(
        timezone=timezone,
        windows=tuple(OpenWindow(day, time(9), time(17)) for day in range(5)),
        name="Default business hours",
    )
