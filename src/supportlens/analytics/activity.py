"""Aggregate pipes over ticket histories: time in status, reply times, resolution quality, CSAT
and the backlog (METRICS.md "Aggregates").

Tickets are counted by creation time (the default cohort for durations) except the backlog, which
counts what is unresolved at the end of each day.  Means, medians and p90s are exact: computed
from integer milliseconds, quantiles interpolated linearly (R-7, as ``quantile_cont``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.common import PipeContext, PipeResult, resolved_flags, selection, tickets_from
from supportlens.analytics.facts import category_totals, current_intervals, facts_serve
from supportlens.analytics.history import (
    TICKET_COLUMNS,
    History,
    epoch_ms,
    from_epoch_ms,
    load_history,
    row_calendars,
    timestamp_ms,
)
from supportlens.analytics.params import ParamError, Window
from supportlens.analytics.scope import Conditions
from supportlens.analytics.timeline import CATEGORIES, CalendarClock, DurationClock
from supportlens.domain.metrics import MS_PER_DAY, duration_summary, minutes, percentage, round2
from supportlens.domain.periods import PeriodUnit, zone
from supportlens.domain.statuses import StatusCategory
from supportlens.ingest.timestamps import format_timestamps
from supportlens.store.schema import FACT_CLOCKS

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]
_F = "Nullable(Float64)"
_MAX_BACKLOG_DAYS = 3_700  # about ten years of daily rows


class GroupBy(StrEnum):
    NONE = "none"  # one row for the whole selection, its group null
    PERIOD = "period"
    AGENT = "agent"
    GROUP = "group"
    CATEGORY = "category"
    PRIORITY = "priority"
    CHANNEL = "channel"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Filters:
    window: Window
    agent_id: str | None
    group_id: str | None
    category: str | None
    priority: str | None
    channel: str | None
    as_of: datetime
    business_hours: bool = False

    def equalities(self) -> dict[str, str | None]:
        return {
            column: getattr(self, column)
            for column in ("agent_id", "group_id", "category", "priority", "channel")
        }


def _where(context: PipeContext, filters: Filters, *, created_until: datetime | None = None) -> Conditions:
    if created_until is None:
        return selection(context, filters.equalities(), filters.window.start, filters.window.end)
    return selection(context, filters.equalities(), None, created_until)


def _history(context: PipeContext, filters: Filters, *, created_until: datetime | None = None) -> History:
    where = _where(context, filters, created_until=created_until)
    return load_history(context, where, as_of=filters.as_of, business_hours=filters.business_hours)


def _count(context: PipeContext, where: Conditions) -> int:
    sql = f"SELECT count(*) AS n FROM {tickets_from(context)} WHERE {where.where}"
    return int(context.engine.fetch(sql, where.params, timeout=context.timeout).rows[0][0])


def _tickets(context: PipeContext, where: Conditions, *columns: str) -> pa.Table:
    """The tickets of ``where``: their current state (TICKET_COLUMNS and ``columns``), without
    their log."""
    return _ticket_columns(context, where, *TICKET_COLUMNS, *columns)


# The column each grouping reads (none for ``none``).
_GROUP_COLUMNS: dict[GroupBy, tuple[str, ...]] = {
    GroupBy.NONE: (),
    GroupBy.PERIOD: ("created_at",),
    GroupBy.AGENT: ("agent_id",),
    GroupBy.GROUP: ("group_id",),
    GroupBy.CATEGORY: ("category",),
    GroupBy.PRIORITY: ("priority",),
    GroupBy.CHANNEL: ("channel",),
    GroupBy.STATUS: ("status",),
}


def _ticket_columns(context: PipeContext, where: Conditions, *columns: str) -> pa.Table:
    """Only these columns of the tickets of ``where``: a pipe that counts a million rows spends
    most of its time reading them, every other column included."""
    chosen = dict.fromkeys(columns)
    sql = f"SELECT {', '.join(chosen)} FROM {tickets_from(context)} WHERE {where.where}"
    return context.engine.fetch_arrow(sql, where.params, timeout=context.timeout)


def _group_labels(context: PipeContext, tickets: pa.Table, by: GroupBy, unit: PeriodUnit) -> list[str | None]:
    """The group of each ticket row: its creation period (reporting timezone), an attribute, or
    none (null)."""
    if by is GroupBy.NONE:
        return [None] * tickets.num_rows
    if by is GroupBy.PERIOD:
        created, _ = timestamp_ms(tickets, "created_at")
        names, codes = period_codes(created, unit, context.timezone)
        labels: list[str | None] = np.array(names, dtype=object)[codes].tolist()
        return labels
    (column,) = _GROUP_COLUMNS[by]
    return list(tickets.column(column).to_pylist())


def period_label(moment: datetime, unit: PeriodUnit, timezone: str) -> str:
    """The local start ('YYYY-MM-DD HH:MM:SS') of the period holding ``moment``."""
    local = moment.astimezone(zone(timezone)).replace(tzinfo=None)
    match unit:
        case PeriodUnit.HOUR:
            start = local.replace(minute=0, second=0, microsecond=0)
        case PeriodUnit.DAY:
            start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        case PeriodUnit.WEEK:
            day = local.replace(hour=0, minute=0, second=0, microsecond=0)
            start = day - timedelta(days=day.weekday())
        case PeriodUnit.MONTH:
            start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        case PeriodUnit.QUARTER:
            start = local.replace(
                month=3 * ((local.month - 1) // 3) + 1, day=1, hour=0, minute=0, second=0, microsecond=0
            )
        case PeriodUnit.YEAR:
            start = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.strftime("%Y-%m-%d %H:%M:%S")


# pyarrow applies a zone's rules only up to the last transition its tz database lists (2037):
# later instants take the per-value path.
_VECTORIZED_UNTIL_MS = 2_114_380_800_000  # 2037-01-01 00:00 UTC


def period_labels(instants_ms: I64, unit: PeriodUnit, timezone: str) -> list[str | None]:
    """``period_label`` of many instants (epoch ms) at once: floored in local time by Arrow and
    formatted by DuckDB, about twenty times faster than one at a time."""
    floored = local_period_starts(instants_ms, unit, timezone)
    if floored is None:
        return [period_label(from_epoch_ms(int(ms)), unit, timezone) for ms in instants_ms]
    labels: list[str | None] = format_timestamps(floored).to_pylist()
    return labels


def local_period_starts(instants_ms: I64, unit: PeriodUnit, timezone: str) -> pa.Array | None:
    """The local start of the period holding each instant, as naive local timestamps (their
    order is the labels' order), or None where Arrow's zone rules do not reach (see above)."""
    if len(instants_ms) == 0 or int(instants_ms.max()) >= _VECTORIZED_UNTIL_MS:
        return None
    utc = pa.array(instants_ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    local = pc.local_timestamp(utc.cast(pa.timestamp("ms", tz=timezone)))
    floored: pa.Array = pc.floor_temporal(local, unit=unit.value, week_starts_monday=True)
    return floored


QUARTER_HOUR_MS = 900_000
SINCE_1972_MS = 63_072_000_000  # 1972-01-01 00:00 UTC
_MAX_DIRECT_BUCKETS = 4_000_000  # ~114 years of quarter hours


def period_codes(instants_ms: I64, unit: PeriodUnit, timezone: str) -> tuple[list[str], I64]:
    """The distinct ``period_label``s of many instants (epoch ms), in order, and each instant's
    index into them.  Periods are found once per UTC quarter hour holding an instant: a quarter
    hour never straddles a local period boundary, every offset since 1972 being a multiple of 15
    minutes (earlier instants are labelled one by one).  Distinct periods are found on their
    start instants, and only those are formatted."""
    if len(instants_ms) == 0:
        return [], np.zeros(0, dtype=np.int64)
    if int(instants_ms.min()) < SINCE_1972_MS:
        each = [str(label) for label in period_labels(instants_ms, unit, timezone)]
        names = sorted(set(each))
        index = {label: position for position, label in enumerate(names)}
        return names, np.fromiter((index[label] for label in each), np.int64, len(each))
    quarters = instants_ms // QUARTER_HOUR_MS
    first = int(quarters.min())
    span = int(quarters.max()) - first + 1
    if span <= _MAX_DIRECT_BUCKETS:
        buckets, bucket_of = np.arange(first, first + span, dtype=np.int64), quarters - first
    else:
        buckets, bucket_of = np.unique(quarters, return_inverse=True)
    starts = local_period_starts(buckets * QUARTER_HOUR_MS, unit, timezone)
    if starts is None:
        labels = np.array(period_labels(buckets * QUARTER_HOUR_MS, unit, timezone), dtype=object)
        distinct, label_of_bucket = np.unique(labels, return_inverse=True)
        return [str(name) for name in distinct], np.asarray(label_of_bucket, dtype=np.int64)[bucket_of]
    period_starts = np.asarray(starts.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    distinct_starts, period_of_bucket = np.unique(period_starts, return_inverse=True)
    names = format_timestamps(pa.array(distinct_starts, pa.int64()).cast(starts.type)).to_pylist()
    return [str(name) for name in names], np.asarray(period_of_bucket, dtype=np.int64)[bucket_of]


def _group_codes(
    context: PipeContext, tickets: pa.Table, by: GroupBy, unit: PeriodUnit
) -> tuple[list[str | None], I64]:
    """The groups of the tickets (``_groups``: creation periods, or an attribute's values, in
    order; ``none``: one) and each ticket row's index into them, column-wise."""
    if by is GroupBy.NONE:
        return [None], np.zeros(tickets.num_rows, dtype=np.int64)
    if by is GroupBy.PERIOD:
        created, _ = timestamp_ms(tickets, "created_at")
        names, codes = period_codes(created, unit, context.timezone)
        return list(names), codes
    (column,) = _GROUP_COLUMNS[by]
    return label_codes(tickets.column(column).combine_chunks())


def _counts(codes: I64, groups: int, chosen: BOOL | None) -> list[int]:
    """How many rows of each group (``codes``: each row's group) are ``chosen`` (None: every row),
    in one pass: a mask and a sum per group cost a pass over every row per group."""
    picked = codes if chosen is None else codes[chosen]
    counted: list[int] = np.bincount(picked, minlength=groups).tolist()
    return counted


def label_codes(values: pa.Array) -> tuple[list[str | None], I64]:
    """The distinct values (``_ordered_groups`` order, null last) and each row's index into them."""
    encoded = values.cast(pa.string()).dictionary_encode()
    present = encoded.dictionary.to_pylist()
    labels = _ordered_groups([*present, *([None] if encoded.null_count else [])])
    position = {label: i for i, label in enumerate(labels)}
    # The last slot stands for null.
    remap = np.array([position[label] for label in present] + [position.get(None, 0)], dtype=np.int64)
    codes = np.asarray(encoded.indices.fill_null(len(present)).to_numpy(zero_copy_only=False), np.int64)
    return labels, remap[codes]


def _ordered_groups(labels: Iterable[str | None]) -> list[str | None]:
    return sorted(set(labels), key=lambda label: (label is None, label or ""))


def _groups(labels: Iterable[str | None], by: GroupBy) -> list[str | None]:
    """The rows of a grouped answer: the distinct labels in order, or with ``none`` always the one
    row of the whole selection, however empty."""
    return [None] if by is GroupBy.NONE else _ordered_groups(labels)


# time_in_status --------------------------------------------------------------------------------

TIME_IN_STATUS_COLUMNS: list[tuple[str, str]] = [
    ("status", "String"),
    ("status_category", "String"),
    ("tickets", "UInt64"),
    ("total_minutes", "Float64"),
    ("mean_minutes", _F),
    ("median_minutes", _F),
    ("p90_minutes", _F),
]


def time_in_status(context: PipeContext, filters: Filters, *, by_category: bool) -> PipeResult:
    """Per status (or category): tickets that spent time in it, and the time each spent there.
    By category, from the stored time facts where they serve; by status, from the log."""
    where = _where(context, filters)
    if by_category:
        found = time_in_categories(context, where, as_of=filters.as_of, business_hours=filters.business_hours)
    else:
        found = time_in_status_from_log(
            context, where, as_of=filters.as_of, business_hours=filters.business_hours, by_category=False
        )
    rows: list[dict[str, Any]] = []
    for column, label in enumerate(found.labels):
        spent = found.spent_ms[found.visited[:, column], column]
        if len(spent) == 0:
            continue
        summary = duration_summary(spent)
        category = label if by_category else _category(context, label).value
        rows.append(
            {
                "status": label,
                "status_category": category,
                "tickets": summary["count"],
                "total_minutes": minutes(int(spent.sum())),
                "mean_minutes": summary["mean"],
                "median_minutes": summary["median"],
                "p90_minutes": summary["p90"],
            }
        )
    rows.sort(key=lambda row: (-row["tickets"], row["status"]))
    return PipeResult(TIME_IN_STATUS_COLUMNS, rows, found.tickets, 0.0)


@dataclass(frozen=True, slots=True)
class TimeIn:
    """Per ticket with a log (rows, whose TICKET_COLUMNS are ``rows``) and status or category
    (columns, ``labels``): the time spent there and whether it was visited at all (a visit may
    count no business time); ``tickets`` matched the filters."""

    labels: list[str]
    spent_ms: I64
    visited: npt.NDArray[np.bool_]
    tickets: int
    rows: pa.Table


def time_in_categories(
    context: PipeContext, where: Conditions, *, as_of: datetime, business_hours: bool
) -> TimeIn:
    """Time per status category of the tickets of ``where``: from the stored time facts where
    they serve, else from the log."""
    found = category_time_from_facts(context, where, as_of=as_of, business_hours=business_hours)
    if found is None:
        found = time_in_status_from_log(
            context, where, as_of=as_of, business_hours=business_hours, by_category=True
        )
    return found


def visited_category(
    context: PipeContext, where: Conditions, category: StatusCategory, *, as_of: datetime
) -> pa.Table:
    """The tickets of ``where`` (TICKET_COLUMNS) that ``time_in_status`` by category counts in
    ``category``: those that spent time in it by ``as_of``."""
    found = time_in_categories(context, where, as_of=as_of, business_hours=False)
    return found.rows.filter(pa.array(found.visited[:, CATEGORIES.index(category)]))


def time_in_status_from_log(
    context: PipeContext, where: Conditions, *, as_of: datetime, business_hours: bool, by_category: bool
) -> TimeIn:
    # Time in a status is known from activity logs only: only tickets with events are read.
    matched = _count(context, where)
    logged = where.copy()
    logged.has_events()
    history = load_history(context, logged, as_of=as_of, business_hours=business_hours)
    timelines = history.timelines
    if timelines is None:
        return TimeIn(
            [],
            np.zeros((0, 0), dtype=np.int64),
            np.zeros((0, 0), dtype=bool),
            matched,
            history.tickets.slice(0, 0),
        )
    matrix = timelines.in_category_ms if by_category else timelines.in_status_ms
    labels = [c.value for c in CATEGORIES] if by_category else list(timelines.status_names)
    codes = timelines.intervals.status
    if by_category:
        category_of = np.array([CATEGORIES.index(_category(context, n)) for n in timelines.status_names])
        codes = category_of[codes]
    visited = np.zeros(matrix.shape, dtype=bool)
    visited[timelines.intervals.ticket, codes] = True
    rows = history.tickets.take(pa.array(history.timeline_rows()))
    return TimeIn(labels, matrix, visited, matched, rows)


_CATEGORY_FACTS = (
    "last_event_at",
    "facts_key",
    "timeline_status",
    "status_since",
    *(f"{clock}_in_{c.value}_ms" for clock in FACT_CLOCKS for c in CATEGORIES),
)


def category_time_from_facts(
    context: PipeContext, where: Conditions, *, as_of: datetime, business_hours: bool
) -> TimeIn | None:
    """Time per status category from the stored facts plus each current interval, or None when
    some ticket's facts cannot serve.  A category was visited when it holds closed calendar time
    (a finished visit always lasts) or is the current one."""
    tickets = _tickets(context, where, *_CATEGORY_FACTS)
    as_of_ms = epoch_ms(as_of)
    if not facts_serve(context, tickets, as_of_ms):
        return None
    _, logged = timestamp_ms(tickets, "last_event_at")
    clock: DurationClock = CalendarClock()
    if business_hours:
        clock = row_calendars(context, tickets, as_of, tickets.column("status_since"))
    current = current_intervals(context, tickets, logged, as_of_ms, clock)
    spent = category_totals(tickets, "business" if business_hours else "calendar", current)
    visited = np.stack(
        [
            np.asarray(tickets.column(f"calendar_in_{c.value}_ms").fill_null(0).to_numpy(), dtype=np.int64)
            > 0
            for c in CATEGORIES
        ],
        axis=1,
    )
    visited[np.arange(tickets.num_rows), current.category] = True
    return TimeIn(
        [c.value for c in CATEGORIES],
        spent[logged],
        visited[logged],
        tickets.num_rows,
        tickets.filter(pa.array(logged)),
    )


def _category(context: PipeContext, status: str) -> StatusCategory:
    return context.statuses.category(status) or StatusCategory.OPEN


# reply_times -----------------------------------------------------------------------------------

REPLY_COLUMNS: list[tuple[str, str]] = [
    ("group", "Nullable(String)"),
    ("first_replies", "UInt64"),
    ("first_reply_mean_minutes", _F),
    ("first_reply_median_minutes", _F),
    ("first_reply_p90_minutes", _F),
    ("later_replies", "UInt64"),
    ("later_reply_mean_minutes", _F),
    ("later_reply_median_minutes", _F),
    ("later_reply_p90_minutes", _F),
]


def reply_times(context: PipeContext, filters: Filters, *, by: GroupBy, unit: PeriodUnit) -> PipeResult:
    """Per group of tickets with replies (with ``none``: one row, however empty).  Replies are
    known from activity logs only, so only tickets with events are read (all are counted)."""
    where = _where(context, filters)
    matched = _count(context, where)
    where.has_events()
    history = load_history(context, where, as_of=filters.as_of, business_hours=filters.business_hours)
    labels = np.array(_group_labels(context, history.tickets, by, unit), dtype=object)
    if history.timelines is None:
        wait_ms = rank = np.zeros(0, dtype=np.int64)
        reply_labels = timeline_labels = np.zeros(0, dtype=object)
    else:
        waits = history.timelines.replies
        wait_ms, rank = waits.wait_ms, waits.rank
        timeline_labels = labels[history.timeline_rows()]
        reply_labels = timeline_labels[np.asarray(waits.ticket, dtype=np.int64)]
    rows: list[dict[str, Any]] = []
    for label in _groups(timeline_labels.tolist(), by):
        mine = reply_labels == label
        first = duration_summary(wait_ms[mine & (rank == 0)])
        later = duration_summary(wait_ms[mine & (rank > 0)])
        if first["count"] == 0 and later["count"] == 0 and by is not GroupBy.NONE:
            continue
        rows.append(
            {
                "group": label,
                "first_replies": first["count"],
                "first_reply_mean_minutes": first["mean"],
                "first_reply_median_minutes": first["median"],
                "first_reply_p90_minutes": first["p90"],
                "later_replies": later["count"],
                "later_reply_mean_minutes": later["mean"],
                "later_reply_median_minutes": later["median"],
                "later_reply_p90_minutes": later["p90"],
            }
        )
    return PipeResult(REPLY_COLUMNS, rows, matched, 0.0)


# resolution_quality ----------------------------------------------------------------------------

QUALITY_COLUMNS: list[tuple[str, str]] = [
    ("group", "Nullable(String)"),
    ("tickets", "UInt64"),
    ("tickets_with_history", "UInt64"),
    ("resolved_tickets", "UInt64"),
    ("reopened_tickets", "UInt64"),
    ("reopen_rate", "Float64"),
    ("one_touch_rate", "Float64"),
    ("two_touch_rate", "Float64"),
    ("multi_touch_rate", "Float64"),
    ("first_contact_resolution_rate", "Float64"),
]


@dataclass(frozen=True, slots=True)
class TicketQuality:
    """What resolution quality counts: the matched tickets (``tickets``), and of those with an
    activity log (``logged``: their rows, the same columns) whether each is resolved at ``as_of``,
    was ever reopened, its agent replies and first contact resolution."""

    tickets: pa.Table
    logged: pa.Table
    resolved: npt.NDArray[np.bool_]
    reopened: npt.NDArray[np.bool_]
    replies: I64
    first_contact: npt.NDArray[np.bool_]


_QUALITY_FACTS = (
    "last_event_at",
    "facts_key",
    "timeline_status",
    "reopens",
    "agent_replies",
    "first_contact_resolution",
)


def quality_from_facts(context: PipeContext, filters: Filters, *columns: str) -> TicketQuality | None:
    """From the stored time facts, or None when some ticket's facts cannot serve (analytics/facts.py);
    both tables hold ``columns`` of the tickets.  Two reads of one snapshot: ``columns`` of every
    matched ticket, the facts of those with a log only (at a million tickets, 20,000): the facts
    of all of them took four times as long to read as both."""
    where = _where(context, filters)
    with_log = where.copy()
    with_log.has_events()
    # group_id: facts_serve checks each ticket's facts against its group's calendar.
    facts = dict.fromkeys((*columns, "group_id", *_QUALITY_FACTS))
    tickets, logged = context.engine.fetch_arrows(
        [
            (
                f"SELECT {', '.join(dict.fromkeys(columns)) or 'NULL AS nothing'} "
                f"FROM {tickets_from(context)} WHERE {where.where}",
                where.params,
            ),
            (
                f"SELECT {', '.join(facts)} FROM {tickets_from(context)} WHERE {with_log.where}",
                with_log.params,
            ),
        ],
        timeout=context.timeout,
    )
    if not facts_serve(context, logged, epoch_ms(filters.as_of)):
        return None
    flags = resolved_flags(logged.column("timeline_status"), context.statuses)

    def values(name: str) -> I64:
        column = logged.column(name).cast(pa.int64()).fill_null(0)
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64)

    return TicketQuality(
        tickets,
        logged.select(list(dict.fromkeys(columns))),
        np.asarray(flags.to_numpy(zero_copy_only=False), dtype=bool),
        values("reopens") > 0,
        values("agent_replies"),
        values("first_contact_resolution").astype(bool),
    )


def quality_from_log(context: PipeContext, filters: Filters) -> TicketQuality:
    history = _history(context, filters)
    logged = history.timeline_of >= 0
    tickets = history.tickets
    if history.timelines is None:
        nothing = np.zeros(0, dtype=bool)
        return TicketQuality(
            tickets, tickets.slice(0, 0), nothing, nothing, np.zeros(0, dtype=np.int64), nothing
        )
    timelines, at = history.timelines, history.timeline_of[logged]
    category_resolved = np.array([c.is_resolved for c in CATEGORIES], dtype=bool)
    return TicketQuality(
        tickets,
        tickets.filter(pa.array(logged)),
        category_resolved[timelines.status_category[at]],
        timelines.reopens[at] > 0,
        np.asarray(timelines.agent_replies[at], dtype=np.int64),
        np.asarray(timelines.first_contact_resolution[at], dtype=bool),
    )


def _shared_group_codes(
    context: PipeContext, tickets: pa.Table, some: pa.Table, by: GroupBy, unit: PeriodUnit
) -> tuple[list[str | None], I64, I64]:
    """``_group_codes`` of the rows of ``tickets`` and of ``some`` of them (the same grouping
    columns), into one list of groups."""
    if by is GroupBy.NONE:
        return [None], np.zeros(tickets.num_rows, dtype=np.int64), np.zeros(some.num_rows, dtype=np.int64)
    columns = list(_GROUP_COLUMNS[by])
    groups, codes = _group_codes(
        context, pa.concat_tables([tickets.select(columns), some.select(columns)]), by, unit
    )
    return groups, codes[: tickets.num_rows], codes[tickets.num_rows :]


def resolution_quality(
    context: PipeContext, filters: Filters, *, by: GroupBy, unit: PeriodUnit
) -> PipeResult:
    """Rates over the resolved tickets that have an activity log (touches and reopens need it):
    from the stored time facts where they serve, else from the log."""
    quality = quality_from_facts(context, filters, *_GROUP_COLUMNS[by]) or quality_from_log(context, filters)
    groups, matched, logged = _shared_group_codes(context, quality.tickets, quality.logged, by, unit)
    done = quality.resolved
    replies = quality.replies
    count = partial(_counts, logged, len(groups))
    tickets, with_history, resolved = _counts(matched, len(groups), None), count(None), count(done)
    reopened, fcr = count(done & quality.reopened), count(done & quality.first_contact)
    one, two, multi = count(done & (replies == 1)), count(done & (replies == 2)), count(done & (replies > 2))
    rows: list[dict[str, Any]] = [
        {
            "group": label,
            "tickets": tickets[code],
            "tickets_with_history": with_history[code],
            "resolved_tickets": resolved[code],
            "reopened_tickets": reopened[code],
            "reopen_rate": percentage(reopened[code], resolved[code]),
            "one_touch_rate": percentage(one[code], resolved[code]),
            "two_touch_rate": percentage(two[code], resolved[code]),
            "multi_touch_rate": percentage(multi[code], resolved[code]),
            "first_contact_resolution_rate": percentage(fcr[code], resolved[code]),
        }
        for code, label in enumerate(groups)
    ]
    return PipeResult(QUALITY_COLUMNS, rows, quality.tickets.num_rows, 0.0)


# csat ------------------------------------------------------------------------------------------

CSAT_COLUMNS: list[tuple[str, str]] = [
    ("group", "Nullable(String)"),
    ("tickets", "UInt64"),
    ("ratings", "UInt64"),
    ("csat_pct", _F),
    ("csat_mean", _F),
    ("response_rate", _F),
    ("nps", _F),
]


def csat(context: PipeContext, filters: Filters, *, by: GroupBy, unit: PeriodUnit) -> PipeResult:
    """CSAT on the 1-5 scale: ratings of 4 or 5 over all ratings; unrated tickets left out.
    Surveys sent are not tracked yet, so response_rate is null; NPS needs a 0-10 scale: null.
    The score is part of the current state: no activity log to read."""
    tickets = _ticket_columns(context, _where(context, filters), *_GROUP_COLUMNS[by], "satisfaction_score")
    groups, codes = _group_codes(context, tickets, by, unit)
    column = tickets.column("satisfaction_score")
    has = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    # The ratings in row order, with the group of each (a third of a million of a million rows).
    scores = np.asarray(column.drop_null().cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    rated = codes[has]
    members, ratings = _counts(codes, len(groups), None), _counts(rated, len(groups), None)
    satisfied = _counts(rated, len(groups), scores >= 4)
    # Float weights sum small integers exactly (below 2**53).
    sums = np.rint(np.bincount(rated, weights=scores, minlength=len(groups))).astype(np.int64)
    rows: list[dict[str, Any]] = [
        {
            "group": label,
            "tickets": members[code],
            "ratings": ratings[code],
            "csat_pct": percentage(satisfied[code], ratings[code]) if ratings[code] else None,
            "csat_mean": round2(Fraction(int(sums[code]), ratings[code])) if ratings[code] else None,
            "response_rate": None,
            "nps": None,
        }
        for code, label in enumerate(groups)
    ]
    return PipeResult(CSAT_COLUMNS, rows, tickets.num_rows, 0.0)


# backlog ---------------------------------------------------------------------------------------

_AGE_BUCKETS: tuple[tuple[str, int], ...] = (
    ("age_under_1d", 1),
    ("age_1_3d", 3),
    ("age_3_7d", 7),
    ("age_7_30d", 30),
)
BACKLOG_COLUMNS: list[tuple[str, str]] = [
    ("day", "Date"),
    ("group", "Nullable(String)"),
    ("open_tickets", "UInt64"),
    *((name, "UInt64") for name, _ in _AGE_BUCKETS),
    ("age_over_30d", "UInt64"),
]


# What open_spans reads of the tickets (and load_history needs in any case).
_BACKLOG_COLUMNS_READ = ("ticket_id", "created_at", "resolved_at", "status", "priority")
_NO_AGE_LIMIT_MS = int(np.iinfo(np.int64).max // 2)  # added to a creation time, never overflows
_STILL_OPEN_MS = int(np.iinfo(np.int64).max)


@dataclass(frozen=True, slots=True)
class OpenSpans:
    """When the tickets of a history were unresolved: spans [start_ms, until_ms) of epoch ms
    (``until_ms`` the far future while still open), each with its ticket row, its group (an index
    into ``labels``, which are ordered as every grouped answer orders them) and the ticket's
    creation (``born_ms``, where its age is 0)."""

    row: I64
    group: I64
    labels: list[str | None]
    start_ms: I64
    until_ms: I64
    born_ms: I64

    def aged(self, youngest_ms: int, oldest_ms: int) -> tuple[I64, I64]:
        """Per span, the instants [from, to) when it is open and the ticket is at least
        ``youngest_ms`` and less than ``oldest_ms`` old (none where from >= to)."""
        return (
            np.maximum(self.start_ms, self.born_ms + youngest_ms),
            np.minimum(self.until_ms, self.born_ms + oldest_ms),
        )


def open_spans(context: PipeContext, history: History, by: GroupBy) -> OpenSpans:
    """The backlog's definition of open: a ticket with events is unresolved during its unresolved
    status visits, its current one running on past ``history.as_of``; a snapshot-only one from
    creation to its resolved_at (its status is its current one; resolved with no resolved_at,
    never).  Labels: the status (by=status), the priority (by=priority) or none.  Column-wise: a
    workspace's whole history is read (old tickets may still be open)."""
    tickets = history.tickets
    created, _ = history.column_ms("created_at")
    resolved_at, has_resolved = history.column_ms("resolved_at")
    as_of_ms = epoch_ms(history.as_of)
    rows: list[I64] = []
    starts: list[I64] = []
    untils: list[I64] = []
    label_parts: list[pa.Array] = []
    timelines = history.timelines
    if timelines is not None:
        iv = timelines.intervals
        resolved_name = np.array(
            [context.statuses.is_resolved(name) for name in timelines.status_names], dtype=bool
        )
        status = np.asarray(iv.status, dtype=np.int64)
        visit = np.flatnonzero(~resolved_name[status])
        row = history.timeline_rows()[np.asarray(iv.ticket, dtype=np.int64)[visit]]
        stop = np.asarray(iv.end_ms, dtype=np.int64)[visit]
        rows.append(row)
        starts.append(np.asarray(iv.start_ms, dtype=np.int64)[visit])
        # The current visit runs to as_of: still open at every later instant.
        untils.append(np.where(stop < as_of_ms, stop, _STILL_OPEN_MS))
        if by is GroupBy.STATUS:
            names = pa.array(timelines.status_names, pa.string())
            label_parts.append(names.take(pa.array(status[visit], pa.int64())))
        elif by is GroupBy.PRIORITY:
            label_parts.append(tickets.column("priority").take(pa.array(row, pa.int64())).combine_chunks())
    snapshot_only = history.timeline_of < 0
    status_resolved = np.asarray(
        resolved_flags(tickets.column("status"), context.statuses).to_numpy(zero_copy_only=False), dtype=bool
    )
    # Resolved with no time known: never counted open.
    counted = np.flatnonzero(snapshot_only & (has_resolved | ~status_resolved))
    rows.append(counted)
    starts.append(created[counted])
    untils.append(np.where(has_resolved[counted], resolved_at[counted], _STILL_OPEN_MS))
    if by is not GroupBy.NONE:
        column = "status" if by is GroupBy.STATUS else "priority"
        label_parts.append(tickets.column(column).take(pa.array(counted, pa.int64())).combine_chunks())
    of = np.concatenate(rows)
    if by is GroupBy.NONE or of.size == 0:
        group = np.zeros(of.size, dtype=np.int64)
        labels: list[str | None] = [None]
    else:
        labels, group = label_codes(pa.concat_arrays([part.cast(pa.string()) for part in label_parts]))
    return OpenSpans(of, group, labels, np.concatenate(starts), np.concatenate(untils), created[of])


def backlog(context: PipeContext, filters: Filters, *, by: GroupBy) -> PipeResult:
    """Unresolved tickets (``open_spans``) at the end of each day of the window (reporting
    timezone), by status or priority (or none), with age buckets."""
    tz = zone(context.timezone)
    first_day = filters.window.start.astimezone(tz).date()
    last_day = filters.window.end.astimezone(tz).date()
    days = (last_day - first_day).days + 1
    if days > _MAX_BACKLOG_DAYS:
        raise ParamError("start_date", f"the backlog covers at most {_MAX_BACKLOG_DAYS} days")
    ends = [datetime.combine(first_day + timedelta(days=i + 1), datetime.min.time(), tz) for i in range(days)]
    end_ms = np.array([epoch_ms(e) - 1 for e in ends], dtype=np.int64)  # the last instant of each day
    as_of = max(ends[-1], filters.as_of)
    # Snapshot-only tickets resolved before the first day end are never open at one: not read (at
    # 1M tickets over a year, most of them).  Tickets with events are all read: their visits say.
    where = _where(context, filters, created_until=ends[-1])
    where.not_closed_snapshot_by(ends[0] - timedelta(milliseconds=1))
    history = load_history(
        context,
        where,
        as_of=as_of,
        business_hours=filters.business_hours,
        ticket_columns=_BACKLOG_COLUMNS_READ,
    )
    spans = open_spans(context, history, by)

    # Per (group, age bucket): +1 at the first day end a span covers, -1 after its last.  A span
    # is cut where the ticket's age crosses a bucket limit.
    label_list = spans.labels
    limits = [0, *(days_ * MS_PER_DAY for _, days_ in _AGE_BUCKETS), _NO_AGE_LIMIT_MS]
    delta = np.zeros((len(label_list), len(limits) - 1, days + 1), dtype=np.int64)
    cells = len(label_list) * (days + 1)  # (group, day) of one bucket, flattened
    # Day ends where the span is open and the age is in [limits[bucket], limits[bucket + 1]):
    # from the first at or after both the span's start and the lower age limit, to the first at
    # or after either its end or the upper limit.  The search is monotone, so each bound is
    # searched once and the bands are cut from them.
    opened = np.searchsorted(end_ms, spans.start_ms, side="left")
    closed = np.searchsorted(end_ms, spans.until_ms, side="left")
    reached = [np.searchsorted(end_ms, spans.born_ms + limit, side="left") for limit in limits]
    for bucket in range(len(limits) - 1):
        first = np.maximum(opened, reached[bucket])
        last = np.minimum(closed, reached[bucket + 1])
        keep = last > first
        row = spans.group[keep] * (days + 1)
        opens = np.bincount(row + first[keep], minlength=cells)
        delta[:, bucket, :] = (opens - np.bincount(row + last[keep], minlength=cells)).reshape(-1, days + 1)
    per_day = np.cumsum(delta, axis=2)[:, :, :days]
    rows: list[dict[str, Any]] = []
    for day in range(days):
        for g, label in enumerate(label_list):
            buckets = [int(x) for x in per_day[g, :, day]]
            entry: dict[str, Any] = {
                "day": (first_day + timedelta(days=day)).isoformat(),
                "group": label,
                "open_tickets": sum(buckets),
            }
            entry.update(zip([name for name, _ in _AGE_BUCKETS] + ["age_over_30d"], buckets, strict=True))
            rows.append(entry)
    return PipeResult(BACKLOG_COLUMNS, rows, history.tickets.num_rows, 0.0)


def open_at(
    context: PipeContext,
    where: Conditions,
    moment: datetime,
    *,
    youngest_days: int = 0,
    oldest_days: int | None = None,
) -> pa.Table:
    """The tickets of ``where`` (TICKET_COLUMNS) the backlog counts open at the instant ``moment``
    (a day end), at least ``youngest_days`` and less than ``oldest_days`` old then: its age
    bucket.  Whether a visit holds ``moment`` follows from the events up to it, so the log is read
    up to the instant after it (the backlog reads it further)."""
    history = load_history(context, where, as_of=moment + timedelta(milliseconds=1), business_hours=False)
    spans = open_spans(context, history, GroupBy.NONE)
    oldest_ms = _NO_AGE_LIMIT_MS if oldest_days is None else oldest_days * MS_PER_DAY
    low, high = spans.aged(youngest_days * MS_PER_DAY, oldest_ms)
    at = epoch_ms(moment)
    rows = np.unique(spans.row[(low <= at) & (at < high)])
    return history.tickets.take(pa.array(rows, pa.int64()))


def _asdict(filters: Filters) -> dict[str, Any]:
    return {name: getattr(filters, name) for name in Filters.__slots__}
