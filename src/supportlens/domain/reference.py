"""Pure-Python reference implementation of the analytics endpoints (``docs/pipes.md``).

This module is the test oracle the SQL implementations (DuckDB, ClickHouse) are compared against on
randomized data.  It follows the spec literally and is written to be obviously correct rather than
fast: plain loops, exact integer / ``Fraction`` arithmetic, no SQL, no I/O.

Conventions:

* Every ``datetime`` is timezone-aware UTC.  Instants are compared and subtracted at millisecond
  precision (as the stores keep them): each timestamp is floored to whole epoch milliseconds first.
* Filter arguments are the raw strings a user typed; they are normalized like ingestion does
  (``category``/``status``: trimmed, lower-cased; ``priority``: also ``critical`` = ``urgent``; ids:
  trimmed).  ``None`` or a blank value means "not given".  A given filter never matches a null column.
* The window (``start``/``end``, both inclusive, on ``created_at``) is passed explicitly; defaulting
  it (last 365 days) is the caller's job.
* Every aggregate takes the filters ``category``, ``priority``, ``agent_id``, ``channel`` and
  ``group_id`` as keyword arguments (``**filters``; ``ticket_metrics`` also ``customer_id``), as
  ``_select`` reads them.
* ``business`` (where taken): durations in business time, each ticket's by its calendar in that
  choice (its group's, else the default), measured by ``domain.calendars.business_ms`` between the
  same two instants; None (the default) means calendar time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from supportlens.domain.calendars import CalendarChoice, business_ms
from supportlens.domain.events import TicketEvent
from supportlens.domain.models import (
    RESOLVED_STATUSES,
    TicketSnapshot,
    normalize_label,
    normalize_priority,
    priority_rank,
)
from supportlens.domain.statuses import DEFAULT_STATUS_MAP, StatusMap
from supportlens.domain.timeline import StatusInterval, creation_time, order_events, status_intervals

__all__ = [
    "Histories",
    "SlaThresholds",
    "agent_performance",
    "arrivals",
    "category_analysis",
    "current_state",
    "sla_performance",
    "ticket_details",
    "ticket_metrics",
    "time_trends",
]

Row = dict[str, object]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_PER_MINUTE = 60_000
_MEDIAN = Fraction(1, 2)
_P90 = Fraction(9, 10)
_MAX_LIMIT = 10_000


# --------------------------------------------------------------------------------------------------
# SLA thresholds
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlaThresholds:
    """SLA thresholds in minutes.  ``None`` for an urgent threshold means "not given": it then takes
    the high threshold in force (the given one, or its default)."""

    urgent_response: float | None = None
    high_response: float = 30.0
    medium_response: float = 60.0
    low_response: float = 120.0
    default_response: float = 60.0
    urgent_resolution: float | None = None
    high_resolution: float = 240.0
    medium_resolution: float = 480.0
    low_resolution: float = 1440.0
    default_resolution: float = 480.0

    def for_priority(self, priority: str | None) -> tuple[float, float]:
        """``(response, resolution)`` thresholds in minutes for a (normalized) priority.  Priorities
        other than urgent/high/medium/low, and null, use the default thresholds."""
        if priority == "urgent":
            response = self.high_response if self.urgent_response is None else self.urgent_response
            resolution = self.high_resolution if self.urgent_resolution is None else self.urgent_resolution
            return (response, resolution)
        if priority == "high":
            return (self.high_response, self.high_resolution)
        if priority == "medium":
            return (self.medium_response, self.medium_resolution)
        if priority == "low":
            return (self.low_response, self.low_resolution)
        return (self.default_response, self.default_resolution)


# --------------------------------------------------------------------------------------------------
# Small exact helpers
# --------------------------------------------------------------------------------------------------


def _epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch (floored), computed exactly with integers."""
    delta = moment - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return micros // 1000


def _from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _format_utc(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, with ``.fff`` only when the milliseconds are nonzero."""
    ms = _epoch_ms(moment)
    utc = _from_epoch_ms(ms)
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} {utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    millis = ms % 1000
    if millis:
        text += f".{millis:03d}"
    return text


def _format_optional_utc(moment: datetime | None) -> str | None:
    return None if moment is None else _format_utc(moment)


def _format_wall(wall: datetime) -> str:
    """A naive local wall-clock time as ``YYYY-MM-DD HH:MM:SS``."""
    return (
        f"{wall.year:04d}-{wall.month:02d}-{wall.day:02d} {wall.hour:02d}:{wall.minute:02d}:{wall.second:02d}"
    )


def _round2(value: Fraction) -> float:
    """Round an exact value to 2 decimals, half away from zero, and return the nearest float."""
    magnitude = abs(value) * 100
    hundredths = math.floor(magnitude + Fraction(1, 2))
    if hundredths == 0:
        return 0.0
    if value < 0:
        hundredths = -hundredths
    return float(Fraction(hundredths, 100))


def _duration_ms(start: datetime, end: datetime | None) -> int | None:
    """``end - start`` in whole milliseconds; null when ``end`` is missing (never zero)."""
    if end is None:
        return None
    return _epoch_ms(end) - _epoch_ms(start)


def _since_created_ms(
    ticket: TicketSnapshot, end: datetime | None, business: CalendarChoice | None
) -> int | None:
    """``created_at -> end`` in whole milliseconds: calendar time, or the business time of the
    ticket's calendar in ``business``; null when ``end`` is missing."""
    if business is None or end is None:
        return _duration_ms(ticket.created_at, end)
    schedule = business.schedules[business.index_of(ticket.group_id)]
    start_ms, end_ms = _epoch_ms(ticket.created_at), _epoch_ms(end)
    return business_ms(schedule, _from_epoch_ms(start_ms), _from_epoch_ms(end_ms))


def _response_ms(ticket: TicketSnapshot, business: CalendarChoice | None = None) -> int | None:
    return _since_created_ms(ticket, ticket.first_response_at, business)


def _resolution_ms(ticket: TicketSnapshot, business: CalendarChoice | None = None) -> int | None:
    return _since_created_ms(ticket, ticket.resolved_at, business)


def _minutes_rounded(ms: int | None) -> float | None:
    if ms is None:
        return None
    return _round2(Fraction(ms, _MS_PER_MINUTE))


def _average_minutes(values_ms: list[int]) -> float | None:
    """Mean of millisecond durations, in minutes, rounded; null when there is nothing to average."""
    if not values_ms:
        return None
    total = 0
    for value in values_ms:
        total += value
    return _round2(Fraction(total, len(values_ms) * _MS_PER_MINUTE))


def _average(values: list[int]) -> float | None:
    if not values:
        return None
    total = 0
    for value in values:
        total += value
    return _round2(Fraction(total, len(values)))


def _quantile_minutes(values_ms: list[int], level: Fraction) -> float | None:
    """Quantile with linear interpolation between closest ranks (R-7, ``quantile_cont``,
    ``PERCENTILE.INC``) of millisecond durations, in minutes, rounded; null when empty."""
    if not values_ms:
        return None
    ordered = sorted(values_ms)
    position = (len(ordered) - 1) * level  # exact, 0-based
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    value_ms = ordered[lower] + fraction * (ordered[upper] - ordered[lower])
    return _round2(Fraction(value_ms) / _MS_PER_MINUTE)


def _percentage(part: int, whole: int) -> float:
    """``100 * part / whole`` rounded; ``whole = 0`` gives 0."""
    if whole == 0:
        return 0.0
    return _round2(Fraction(100 * part, whole))


def _meets(duration_ms: int | None, threshold_minutes: float) -> bool:
    """Met when the timestamp exists and the duration is at most the threshold (compared exactly)."""
    if duration_ms is None:
        return False
    return Fraction(duration_ms, _MS_PER_MINUTE) <= Fraction(threshold_minutes)


def _responses_ms(tickets: list[TicketSnapshot], business: CalendarChoice | None = None) -> list[int]:
    values: list[int] = []
    for ticket in tickets:
        ms = _response_ms(ticket, business)
        if ms is not None:
            values.append(ms)
    return values


def _resolutions_ms(tickets: list[TicketSnapshot], business: CalendarChoice | None = None) -> list[int]:
    values: list[int] = []
    for ticket in tickets:
        ms = _resolution_ms(ticket, business)
        if ms is not None:
            values.append(ms)
    return values


def _scores(tickets: list[TicketSnapshot]) -> list[int]:
    values: list[int] = []
    for ticket in tickets:
        if ticket.satisfaction_score is not None:
            values.append(ticket.satisfaction_score)
    return values


def _count_resolved(tickets: list[TicketSnapshot]) -> int:
    count = 0
    for ticket in tickets:
        if ticket.status in RESOLVED_STATUSES:
            count += 1
    return count


# --------------------------------------------------------------------------------------------------
# Filters and window
# --------------------------------------------------------------------------------------------------


def _id_filter(raw: str | None) -> str | None:
    """Ids are trimmed at ingestion; a blank filter means "not given"."""
    if raw is None:
        return None
    text = raw.strip()
    return text or None


def _matches(value: str | None, wanted: str | None) -> bool:
    return wanted is None or value == wanted


def _check_window(start: datetime, end: datetime) -> None:
    if _epoch_ms(start) > _epoch_ms(end):
        raise ValueError("start_date is after end_date")


def _in_window(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    ms = _epoch_ms(moment)
    if start is not None and ms < _epoch_ms(start):
        return False
    return not (end is not None and ms > _epoch_ms(end))


def _select(
    tickets: Iterable[TicketSnapshot],
    start: datetime | None,
    end: datetime | None,
    *,
    ticket_id: str | None = None,
    customer_id: str | None = None,
    agent_id: str | None = None,
    status: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    channel: str | None = None,
    group_id: str | None = None,
) -> list[TicketSnapshot]:
    """Tickets created in [start, end] (an end left None is open) matching every given filter,
    each filter normalized the way ingestion normalizes the column."""
    wanted = {
        "ticket_id": _id_filter(ticket_id),
        "customer_id": _id_filter(customer_id),
        "agent_id": _id_filter(agent_id),
        "group_id": _id_filter(group_id),
        "status": normalize_label(status),
        "category": normalize_label(category),
        "priority": normalize_priority(priority),
        "channel": normalize_label(channel),
    }
    return [
        ticket
        for ticket in tickets
        if _in_window(ticket.created_at, start, end)
        and all(_matches(getattr(ticket, column), value) for column, value in wanted.items())
    ]


# --------------------------------------------------------------------------------------------------
# current_state
# --------------------------------------------------------------------------------------------------


def current_state(postings: Sequence[tuple[TicketSnapshot, datetime]]) -> list[TicketSnapshot]:
    """The current snapshot of every ticket, from postings in arrival order with their receive times.

    Per ``ticket_id`` the posting with the greatest ``(updated_at or received_at, arrival index)``
    wins (compared at millisecond precision).  Returned sorted by ``ticket_id``."""
    best: dict[str, tuple[tuple[int, int], TicketSnapshot]] = {}
    for index, (snapshot, received_at) in enumerate(postings):
        effective = snapshot.updated_at if snapshot.updated_at is not None else received_at
        key = (_epoch_ms(effective), index)
        previous = best.get(snapshot.ticket_id)
        if previous is None or key > previous[0]:
            best[snapshot.ticket_id] = (key, snapshot)
    return [best[ticket_id][1] for ticket_id in sorted(best)]


# --------------------------------------------------------------------------------------------------
# time_trends
# --------------------------------------------------------------------------------------------------

_NAMED_INTERVALS = ("hour", "day", "week", "month", "quarter", "year")
# Pattern fields from coarsest to finest, and the period each sets when it is the finest one.
_PATTERN_FIELDS = ("yyyy", "MM", "dd", "HH")
_FIELD_UNIT = {"yyyy": "year", "MM": "month", "dd": "day", "HH": "hour"}


@dataclass(frozen=True, slots=True)
class _Interval:
    unit: str  # one of _NAMED_INTERVALS
    pattern: tuple[str, ...] | None  # parts: a field name of _PATTERN_FIELDS or a 1-character literal


def _parse_interval(time_interval: str) -> _Interval:
    if not time_interval.strip():
        return _Interval("day", None)  # empty = not given = the default
    if time_interval in _NAMED_INTERVALS:
        return _Interval(time_interval, None)
    parts: list[str] = []
    index = 0
    while index < len(time_interval):
        for name in _PATTERN_FIELDS:
            if time_interval.startswith(name, index):
                parts.append(name)
                index += len(name)
                break
        else:
            char = time_interval[index]
            if char.isalpha():
                raise ValueError(
                    f"time_interval={time_interval!r} is not valid: use hour, day, week, month, quarter, "
                    f"year or a pattern of yyyy, MM, dd, HH and separators (write minutes and seconds "
                    f"as literal 00); {char!r} at position {index} is not allowed"
                )
            parts.append(char)
            index += 1
    present = [name for name in _PATTERN_FIELDS if name in parts]
    if not present:
        raise ValueError(
            f"time_interval={time_interval!r} is not valid: a pattern needs at least yyyy "
            f"(fields: yyyy, MM, dd, HH)"
        )
    finest = present[-1]
    required = _PATTERN_FIELDS[: _PATTERN_FIELDS.index(finest) + 1]
    missing = [name for name in required if name not in parts]
    if missing:
        raise ValueError(
            f"time_interval={time_interval!r} is not valid: a pattern with {finest} must also contain "
            f"{', '.join(missing)} so that every period gets its own label"
        )
    return _Interval(_FIELD_UNIT[finest], tuple(parts))


def _truncate(wall: datetime, unit: str) -> datetime:
    """Start of the period containing a naive local wall-clock time."""
    if unit == "hour":
        return wall.replace(minute=0, second=0, microsecond=0)
    day = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())  # ISO week: Monday
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if unit == "year":
        return day.replace(month=1, day=1)
    raise AssertionError(unit)


def _add_months(wall: datetime, months: int) -> datetime:
    index = wall.year * 12 + (wall.month - 1) + months
    return wall.replace(year=index // 12, month=index % 12 + 1)


def _next_period(start: datetime, unit: str) -> datetime:
    """The wall-clock start of the following period (naive arithmetic)."""
    if unit == "hour":
        return start + timedelta(hours=1)
    if unit == "day":
        return start + timedelta(days=1)
    if unit == "week":
        return start + timedelta(days=7)
    if unit == "month":
        return _add_months(start, 1)
    if unit == "quarter":
        return _add_months(start, 3)
    if unit == "year":
        return _add_months(start, 12)
    raise AssertionError(unit)


def _format_pattern(parts: tuple[str, ...], wall: datetime) -> str:
    pieces: list[str] = []
    for part in parts:
        if part == "yyyy":
            pieces.append(f"{wall.year:04d}")
        elif part == "MM":
            pieces.append(f"{wall.month:02d}")
        elif part == "dd":
            pieces.append(f"{wall.day:02d}")
        elif part == "HH":
            pieces.append(f"{wall.hour:02d}")
        else:
            pieces.append(part)
    return "".join(pieces)


# DST choice: a period is a *local wall-clock* period.  A ticket's period is found by converting its
# created_at to local time and truncating the wall-clock time (hour, day, ...).  Consequently, in a
# fall-back hour the two distinct UTC hours that show the same local hour (e.g. 01:00 EDT and 01:00
# EST in America/New_York) share one label and are merged into a single period row; in a spring-
# forward gap the skipped local hour contains no instant and so is not listed.  A day is never
# dropped: a day whose midnight is skipped (e.g. America/Santiago) still exists from the first
# instant after the gap.
#
# The periods listed are exactly the keys (truncated local wall-clock times) of the instants in the
# window.  They are found by walking the window from `start`: take the key of the current instant,
# then jump to the first instant (in whole milliseconds) whose key differs.  That relies on keys being
# non-decreasing in time, which holds whenever a clock change does not move the wall clock back
# across a period boundary (true of real-world transitions: a fall-back at midnight to 23:00 never
# shows the later day before the transition).


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {tz!r}") from exc


def _period_key(ms: int, zone: ZoneInfo, unit: str) -> datetime:
    wall = _from_epoch_ms(ms).astimezone(zone).replace(tzinfo=None)
    return _truncate(wall, unit)


def _next_key_change_ms(ms: int, key: datetime, zone: ZoneInfo, unit: str) -> int:
    """The first instant after ``ms`` (whole ms) whose period key is not ``key``."""
    # Fast path: the next period's wall-clock start, as an instant under either fold, verified.
    following = _next_period(key, unit)
    guesses: list[int] = []
    for fold in (0, 1):
        guesses.append(_epoch_ms(following.replace(tzinfo=zone, fold=fold).astimezone(UTC)))
    for guess in sorted(guesses):
        if guess > ms and _period_key(guess, zone, unit) != key and _period_key(guess - 1, zone, unit) == key:
            return guess
    # Slow path (unusual transitions): exponential then binary search on whole milliseconds.
    low = ms
    step = 3_600_000
    high = ms + step
    while _period_key(high, zone, unit) == key:
        low = high
        step *= 2
        high = ms + step
    while high - low > 1:
        middle = (low + high) // 2
        if _period_key(middle, zone, unit) == key:
            low = middle
        else:
            high = middle
    return high


def _periods_in_window(start: datetime, end: datetime, zone: ZoneInfo, unit: str) -> set[datetime]:
    keys: set[datetime] = set()
    ms = _epoch_ms(start)
    end_ms = _epoch_ms(end)
    while ms <= end_ms:
        key = _period_key(ms, zone, unit)
        keys.add(key)
        ms = _next_key_change_ms(ms, key, zone, unit)
    return keys


def time_trends(
    tickets: Iterable[TicketSnapshot],
    *,
    start: datetime,
    end: datetime,
    time_interval: str,
    tz: str,
    business: CalendarChoice | None = None,
    **filters: str | None,
) -> list[Row]:
    """Tickets per period of the reporting timezone ``tz``, every period of the window listed."""
    interval = _parse_interval(time_interval)
    zone = _zone(tz)
    _check_window(start, end)

    by_period: dict[datetime, list[TicketSnapshot]] = {}
    for key in _periods_in_window(start, end, zone, interval.unit):
        by_period[key] = []
    for ticket in _select(tickets, start, end, **filters):
        key = _period_key(_epoch_ms(ticket.created_at), zone, interval.unit)
        by_period.setdefault(key, []).append(ticket)

    rows: list[Row] = []
    for key in sorted(by_period):
        group = by_period[key]
        label = _format_wall(key) if interval.pattern is None else _format_pattern(interval.pattern, key)
        resolutions = _resolutions_ms(group, business)
        responses = _responses_ms(group, business)
        rows.append(
            {
                "time_period": label,
                "ticket_count": len(group),
                "resolved_tickets": _count_resolved(group),
                "avg_resolution_time_minutes": _average_minutes(resolutions),
                "avg_response_time_minutes": _average_minutes(responses),
                "avg_satisfaction_score": _average(_scores(group)),
                "median_response_time_minutes": _quantile_minutes(responses, _MEDIAN),
                "p90_response_time_minutes": _quantile_minutes(responses, _P90),
                "median_resolution_time_minutes": _quantile_minutes(resolutions, _MEDIAN),
                "p90_resolution_time_minutes": _quantile_minutes(resolutions, _P90),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# sla_performance
# --------------------------------------------------------------------------------------------------


def sla_performance(
    tickets: Iterable[TicketSnapshot],
    *,
    start: datetime,
    end: datetime,
    thresholds: SlaThresholds,
    **filters: str | None,
) -> list[Row]:
    """One row per priority (null its own row), ordered urgent, high, medium, low, others, null."""
    _check_window(start, end)

    groups: dict[str | None, list[TicketSnapshot]] = {}
    for ticket in _select(tickets, start, end, **filters):
        groups.setdefault(ticket.priority, []).append(ticket)

    rows: list[Row] = []
    for priority in sorted(groups, key=priority_rank):
        group = groups[priority]
        response_threshold, resolution_threshold = thresholds.for_priority(priority)
        met_response = 0
        met_resolution = 0
        for ticket in group:
            if _meets(_response_ms(ticket), response_threshold):
                met_response += 1
            if _meets(_resolution_ms(ticket), resolution_threshold):
                met_resolution += 1
        rows.append(
            {
                "priority": priority,
                "total_tickets": len(group),
                "met_response_sla": met_response,
                "met_resolution_sla": met_resolution,
                "response_sla_percentage": _percentage(met_response, len(group)),
                "resolution_sla_percentage": _percentage(met_resolution, len(group)),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# agent_performance
# --------------------------------------------------------------------------------------------------


def _null_last_key(value: str | None) -> tuple[int, str]:
    return (1, "") if value is None else (0, value)


def agent_performance(
    tickets: Iterable[TicketSnapshot],
    *,
    start: datetime,
    end: datetime,
    thresholds: SlaThresholds,
    business: CalendarChoice | None = None,
    **filters: str | None,
) -> list[Row]:
    """One row per agent (null its own row), by tickets handled descending then agent id (null
    last).  With ``business``, the thresholds are business minutes too."""
    _check_window(start, end)

    groups: dict[str | None, list[TicketSnapshot]] = {}
    for ticket in _select(tickets, start, end, **filters):
        groups.setdefault(ticket.agent_id, []).append(ticket)

    def order(agent: str | None) -> tuple[int, tuple[int, str]]:
        return (-len(groups[agent]), _null_last_key(agent))

    rows: list[Row] = []
    for agent in sorted(groups, key=order):
        group = groups[agent]
        resolved = _count_resolved(group)
        met_response = 0
        for ticket in group:
            response_threshold, _ = thresholds.for_priority(ticket.priority)
            if _meets(_response_ms(ticket, business), response_threshold):
                met_response += 1
        rows.append(
            {
                "agent_id": agent,
                "tickets_handled": len(group),
                "resolved_tickets": resolved,
                "resolution_rate": _percentage(resolved, len(group)),
                "avg_satisfaction": _average(_scores(group)),
                "avg_resolution_time_minutes": _average_minutes(_resolutions_ms(group, business)),
                "avg_response_time_minutes": _average_minutes(_responses_ms(group, business)),
                "met_response_sla": met_response,
                "response_sla_percentage": _percentage(met_response, len(group)),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# ticket_details
# --------------------------------------------------------------------------------------------------


_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Histories:
    """The activity logs of the tickets that have one (by ticket id) with the workspace's
    ``statuses``: what the history-based drill-downs of ticket_details read, ``in_status_category``
    as of ``as_of``."""

    events: Mapping[str, Sequence[TicketEvent]]
    as_of: datetime
    statuses: StatusMap = DEFAULT_STATUS_MAP

    def intervals(self, ticket_id: str, as_of: datetime) -> list[StatusInterval] | None:
        """The ticket's status visits up to ``as_of``, or None without a log."""
        events = self.events.get(ticket_id)
        if not events:
            return None
        ordered = order_events(events)
        return status_intervals(ordered, self.statuses, as_of, creation_time(ordered))


def _open_at(
    ticket: TicketSnapshot, moment: datetime, histories: Histories, ages: tuple[int, int | None]
) -> bool:
    """Open at ``moment`` as the backlog counts a day end, at least ``ages[0]`` and less than
    ``ages[1]`` days old (by ``created_at``): a ticket with a log during its unresolved status
    visits, the log read up to the instant after ``moment``; any other from creation to its
    ``resolved_at`` (without one: open for good, unless its status is a resolved one)."""
    at = _epoch_ms(moment)
    age = at - _epoch_ms(ticket.created_at)
    youngest, oldest = ages
    if age < youngest * _DAY_MS or (oldest is not None and age >= oldest * _DAY_MS):
        return False
    visits = histories.intervals(ticket.ticket_id, _from_epoch_ms(at + 1))
    if visits is not None:
        return any(
            not visit.category.is_resolved and _epoch_ms(visit.start) <= at < _epoch_ms(visit.end)
            for visit in visits
        )
    if ticket.resolved_at is None:
        return not histories.statuses.is_resolved(ticket.status)
    return at < _epoch_ms(ticket.resolved_at)


def _visited(ticket: TicketSnapshot, category: str, histories: Histories) -> bool:
    """Whether the ticket's log shows a visit to a status of ``category`` by ``as_of`` (the
    current one included, however short); a ticket without a log visited nothing."""
    visits = histories.intervals(ticket.ticket_id, histories.as_of)
    return visits is not None and any(visit.category.value == category for visit in visits)


def _created_in(ticket: TicketSnapshot, zone: ZoneInfo, weekday: int | None, hour: int | None) -> bool:
    """Created on the ISO ``weekday`` and in the ``hour`` of local wall-clock time (as arrivals)."""
    wall = _from_epoch_ms(_epoch_ms(ticket.created_at)).astimezone(zone)
    return weekday in (None, wall.isoweekday()) and hour in (None, wall.hour)


def ticket_details(
    tickets: Iterable[TicketSnapshot],
    *,
    ticket_id: str | None,
    customer_id: str | None,
    agent_id: str | None,
    status: str | None,
    category: str | None,
    priority: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int,
    offset: int,
    channel: str | None = None,
    group_id: str | None = None,
    open_at: datetime | None = None,
    age_min_days: int = 0,
    age_max_days: int | None = None,
    created_weekday: int | None = None,
    created_hour: int | None = None,
    tz: str = "UTC",
    in_status_category: str | None = None,
    histories: Histories | None = None,
) -> tuple[list[Row], int]:
    """Matching tickets by created_at descending then ticket_id, and the count before limit/offset.

    The drill-downs: ``open_at`` (with the age limits ``age_min_days``/``age_max_days``) keeps the
    tickets the backlog counts open then; ``created_weekday``/``created_hour`` those created then
    in the local time of ``tz``; ``in_status_category`` those whose log shows time in it.  Tickets
    with an activity log are read from ``histories`` (none: every ticket is snapshot-only)."""
    if not 1 <= limit <= _MAX_LIMIT:
        raise ValueError(f"limit={limit} is outside 1..{_MAX_LIMIT}")
    if offset < 0:
        raise ValueError(f"offset={offset} is negative")
    if created_after is not None and created_before is not None:
        _check_window(created_after, created_before)
    if age_max_days is not None and age_max_days <= age_min_days:
        raise ValueError("age_max_days is not greater than age_min_days")
    logs = histories or Histories({}, _EPOCH)
    zone = _zone(tz)
    matching = [
        ticket
        for ticket in _select(
            tickets,
            created_after,
            created_before,
            ticket_id=ticket_id,
            customer_id=customer_id,
            agent_id=agent_id,
            status=status,
            category=category,
            priority=priority,
            channel=channel,
            group_id=group_id,
        )
        if (open_at is None or _open_at(ticket, open_at, logs, (age_min_days, age_max_days)))
        and _created_in(ticket, zone, created_weekday, created_hour)
        and (in_status_category is None or _visited(ticket, in_status_category, logs))
    ]

    def order(ticket: TicketSnapshot) -> tuple[int, str]:
        return (-_epoch_ms(ticket.created_at), ticket.ticket_id)

    matching.sort(key=order)
    page = matching[offset : offset + limit]
    rows: list[Row] = []
    for ticket in page:
        rows.append(
            {
                "ticket_id": ticket.ticket_id,
                "customer_id": ticket.customer_id,
                "agent_id": ticket.agent_id,
                "category": ticket.category,
                "priority": ticket.priority,
                "status": ticket.status,
                "created_at": _format_utc(ticket.created_at),
                "first_response_at": _format_optional_utc(ticket.first_response_at),
                "resolved_at": _format_optional_utc(ticket.resolved_at),
                "satisfaction_score": ticket.satisfaction_score,
                "tags": list(ticket.tags),
                "updated_at": _format_optional_utc(ticket.updated_at),
                "channel": ticket.channel,
                "subject": ticket.subject,
                "response_time_minutes": _minutes_rounded(_response_ms(ticket)),
                "resolution_time_minutes": _minutes_rounded(_resolution_ms(ticket)),
            }
        )
    return rows, len(matching)


# --------------------------------------------------------------------------------------------------
# category_analysis
# --------------------------------------------------------------------------------------------------


def category_analysis(
    tickets: Iterable[TicketSnapshot],
    *,
    start: datetime,
    end: datetime,
    business: CalendarChoice | None = None,
    **filters: str | None,
) -> list[Row]:
    """One row per category (null its own row), by ticket count descending then category (null last)."""
    _check_window(start, end)

    groups: dict[str | None, list[TicketSnapshot]] = {}
    total = 0
    for ticket in _select(tickets, start, end, **filters):
        groups.setdefault(ticket.category, []).append(ticket)
        total += 1

    def order(category: str | None) -> tuple[int, tuple[int, str]]:
        return (-len(groups[category]), _null_last_key(category))

    rows: list[Row] = []
    for category in sorted(groups, key=order):
        group = groups[category]
        rows.append(
            {
                "category": category,
                "ticket_count": len(group),
                "percentage_of_total": _percentage(len(group), total),
                "avg_resolution_time_minutes": _average_minutes(_resolutions_ms(group, business)),
                "avg_response_time_minutes": _average_minutes(_responses_ms(group, business)),
                "avg_satisfaction_score": _average(_scores(group)),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# ticket_metrics
# --------------------------------------------------------------------------------------------------


def ticket_metrics(
    tickets: Iterable[TicketSnapshot],
    *,
    start: datetime,
    end: datetime,
    business: CalendarChoice | None = None,
    **filters: str | None,
) -> Row:
    """The single summary row of the window."""
    _check_window(start, end)
    selected = _select(tickets, start, end, **filters)

    resolved = _count_resolved(selected)
    resolutions = _resolutions_ms(selected, business)
    responses = _responses_ms(selected, business)
    return {
        "start_date": _format_utc(start),
        "end_date": _format_utc(end),
        "total_tickets": len(selected),
        "resolved_tickets": resolved,
        "open_tickets": len(selected) - resolved,
        "avg_resolution_time_minutes": _average_minutes(resolutions),
        "avg_first_response_time_minutes": _average_minutes(responses),
        "avg_satisfaction_score": _average(_scores(selected)),
        "median_resolution_time_minutes": _quantile_minutes(resolutions, _MEDIAN),
        "p90_resolution_time_minutes": _quantile_minutes(resolutions, _P90),
        "median_first_response_time_minutes": _quantile_minutes(responses, _MEDIAN),
        "p90_first_response_time_minutes": _quantile_minutes(responses, _P90),
    }


# --------------------------------------------------------------------------------------------------
# arrivals
# --------------------------------------------------------------------------------------------------

_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def arrivals(
    tickets: Iterable[TicketSnapshot], *, start: datetime, end: datetime, tz: str, **filters: str | None
) -> list[Row]:
    """Tickets created per ISO weekday and hour of their local wall-clock time in ``tz``: all 168
    cells, by weekday (1 = Monday) then hour."""
    zone = _zone(tz)
    _check_window(start, end)
    counts = {(weekday, hour): 0 for weekday in range(1, 8) for hour in range(24)}
    for ticket in _select(tickets, start, end, **filters):
        wall = _from_epoch_ms(_epoch_ms(ticket.created_at)).astimezone(zone)
        counts[(wall.isoweekday(), wall.hour)] += 1
    return [
        {"weekday": weekday, "weekday_name": _WEEKDAY_NAMES[weekday - 1], "hour": hour, "tickets": count}
        for (weekday, hour), count in sorted(counts.items())
    ]
