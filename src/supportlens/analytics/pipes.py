"""The public endpoint registry: each pipe's name, description, parameters and how to run it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from supportlens.analytics import activity, sla, sla_state, tickets, time_metrics, trends
from supportlens.analytics.common import PipeContext, PipeResult
from supportlens.analytics.params import (
    EXPORT_END,
    NOW,
    Kind,
    Param,
    ParamError,
    Window,
    parse_params,
    resolve_window,
)
from supportlens.domain.periods import PeriodUnit
from supportlens.domain.statuses import StatusCategory

MAX_OFFSET = 1_000_000_000
_START = Param(
    "start_date", Kind.START, "Earliest created_at (inclusive); default: 365 days before end_date."
)
_END = Param("end_date", Kind.END, "Latest created_at (inclusive); a plain date means its end; default: now.")
_CATEGORY = Param("category", Kind.LABEL, "Only this category (case-insensitive).")
_PRIORITY = Param("priority", Kind.PRIORITY, "Only this priority (case-insensitive; critical = urgent).")
_AGENT = Param("agent_id", Kind.TEXT, "Only this agent.")
_CUSTOMER = Param("customer_id", Kind.TEXT, "Only this customer.")
_GROUP = Param("group_id", Kind.TEXT, "Only this group (team).")
_CHANNEL = Param("channel", Kind.LABEL, "Only this channel (case-insensitive).")
# The filters every ticket pipe takes (each on the ticket's current value).
_FILTERS = (_CATEGORY, _PRIORITY, _AGENT, _CHANNEL, _GROUP)
_TIMEZONE = Param(
    "timezone",
    Kind.TIMEZONE,
    "IANA timezone the periods, days, weekdays and hours are cut in, e.g. Europe/Berlin; default: the "
    "workspace's reporting timezone.  Dates without an offset stay UTC.",
)
_BUSINESS_HOURS = Param(
    "business_hours",
    Kind.BOOL,
    "Durations in business minutes of each ticket's calendar (its group's, else the workspace "
    "default) instead of calendar minutes.",
    default=False,
)


@dataclass(frozen=True, slots=True)
class Pipe:
    name: str
    description: str
    params: tuple[Param, ...]
    columns: list[tuple[str, str]]
    handler: Callable[[PipeContext, dict[str, Any]], PipeResult]

    def run(self, context: PipeContext, query: Mapping[str, str]) -> PipeResult:
        values = parse_params(self.params, query)
        if values.get("timezone") is not None:
            context = replace(context, timezone=values["timezone"])
        return self.handler(context, values)


def _equalities(values: dict[str, Any], *more: str) -> dict[str, str | None]:
    """The values of the filters every ticket pipe takes, and of ``more`` of its own."""
    return {name: values[name] for name in (*(p.name for p in _FILTERS), *more)}


def _window(context: PipeContext, values: dict[str, Any], default_days: int | None = None) -> Window:
    return resolve_window(
        values["start_date"],
        values["end_date"],
        now=context.now,
        default_days=default_days or context.default_window_days,
        names=("start_date", "end_date"),
    )


def _time_trends(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    return trends.time_trends(
        context,
        _window(context, values),
        filters=_equalities(values),
        time_interval=values["time_interval"],
        business_hours=values["business_hours"],
    )


def _arrivals(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    return trends.arrivals(context, _window(context, values), filters=_equalities(values))


def _sla_performance(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    return sla.sla_performance(
        context,
        _window(context, values),
        filters=_equalities(values),
        response=sla.Thresholds.from_params("response", values),
        resolution=sla.Thresholds.from_params("resolution", values),
    )


def _agent_performance(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    return sla.agent_performance(
        context,
        _window(context, values),
        filters=_equalities(values),
        response=sla.Thresholds.from_params("response", values),
        business_hours=values["business_hours"],
    )


def _ticket_details(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    return tickets.ticket_details(
        context,
        filters=_equalities(values, "ticket_id", "customer_id", "status"),
        created_after=values["created_after"],
        created_before=values["created_before"],
        limit=values["limit"],
        offset=values["offset"],
        drill=_drill_down(context, values),
    )


def _drill_down(context: PipeContext, values: dict[str, Any]) -> tickets.DrillDown:
    open_at: datetime | None = values["open_at"]
    if open_at is None:
        for name in ("age_min_days", "age_max_days"):
            if values[name] is not None:
                raise ParamError(name, "needs open_at (it is the age at open_at)")
    youngest: int = values["age_min_days"] or 0
    if values["age_max_days"] is not None and values["age_max_days"] <= youngest:
        raise ParamError("age_max_days", f"must be greater than age_min_days ({youngest})")
    return tickets.DrillDown(
        as_of=_as_of(context, values["as_of"]),
        open_at=None if open_at is None else open_at.astimezone(UTC),
        age_min_days=youngest,
        age_max_days=values["age_max_days"],
        created_weekday=values["created_weekday"],
        created_hour=values["created_hour"],
        in_status_category=_status_category(values["in_status_category"]),
    )


def _status_category(value: str | None) -> StatusCategory | None:
    if value is None:
        return None
    try:
        return StatusCategory(value)
    except ValueError:
        names = ", ".join(c.value for c in StatusCategory)
        raise ParamError("in_status_category", f"must be one of {names}; got {value!r}") from None


def _category_analysis(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    return tickets.category_analysis(
        context,
        _window(context, values),
        filters=_equalities(values),
        business_hours=values["business_hours"],
    )


def _ticket_metrics(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    return tickets.ticket_metrics(
        context,
        _window(context, values),
        filters=_equalities(values, "customer_id"),
        business_hours=values["business_hours"],
    )


def _as_of(context: PipeContext, value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if value == EXPORT_END:
        if context.export_end is None:
            raise ParamError("as_of", "export_end needs an imported activity export; none was imported")
        return context.export_end
    return context.now


def _ticket_time_metrics(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    selection = time_metrics.Selection(
        filters=_equalities(values, "ticket_id", "status"),
        created_after=values["created_after"],
        created_before=values["created_before"],
        limit=values["limit"],
        offset=values["offset"],
    )
    return time_metrics.ticket_time_metrics(
        context, selection, as_of=_as_of(context, values["as_of"]), business_hours=values["business_hours"]
    )


_CREATED_AFTER = Param("created_after", Kind.START, "Earliest created_at (inclusive).")
_CREATED_BEFORE = Param("created_before", Kind.END, "Latest created_at (inclusive).")


def _paging(returned: str, skipped: str) -> tuple[Param, Param]:
    """``limit`` (default 1,000, at most 100,000) and ``offset`` of a paged SLA answer."""
    return (
        Param("limit", Kind.INT, f"{returned} (1..100000).", default=1000, minimum=1, maximum=100_000),
        Param("offset", Kind.INT, f"{skipped}.", default=0, minimum=0, maximum=MAX_OFFSET),
    )


_OFFSET = Param("offset", Kind.INT, "Rows to skip (at most 1e9).", default=0, minimum=0, maximum=MAX_OFFSET)
_TICKET = Param("ticket_id", Kind.TEXT, "Only this ticket.")
_STATUS = Param("status", Kind.LABEL, "Only this status (case-insensitive).")
_AS_OF = Param(
    "as_of",
    Kind.AS_OF,
    "Evaluation time of ongoing intervals: now (default), export_end (the newest imported "
    "export's end_at) or a date.",
    default=NOW,
)
_GROUPINGS = "period, agent, group, category, priority, channel or none"
_MAX_AGE_DAYS = 100_000
# What a chart's bar or cell selects: the tickets the pipe behind it counts there.
_DRILL_DOWN = (
    Param(
        "open_at",
        Kind.END,
        "Only tickets open (unresolved) at this instant, as backlog counts them at a day end; a plain "
        "date means its last millisecond (UTC).",
    ),
    Param(
        "age_min_days",
        Kind.INT,
        "With open_at: only tickets at least this many days old at open_at (default 0).",
        minimum=0,
        maximum=_MAX_AGE_DAYS,
    ),
    Param(
        "age_max_days",
        Kind.INT,
        "With open_at: only tickets less than this many days old at open_at.",
        minimum=1,
        maximum=_MAX_AGE_DAYS,
    ),
    Param(
        "created_weekday",
        Kind.INT,
        "Only tickets created on this ISO weekday (1 = Monday .. 7 = Sunday) of the reporting timezone, "
        "as arrivals counts them.",
        minimum=1,
        maximum=7,
    ),
    Param(
        "created_hour",
        Kind.INT,
        "Only tickets created in this hour (0..23) of the reporting timezone, as arrivals counts them.",
        minimum=0,
        maximum=23,
    ),
    Param(
        "in_status_category",
        Kind.LABEL,
        "Only tickets that spent time in this status category (new, open, pending, on_hold, solved, "
        "closed) by as_of, as time_in_status counts them.",
    ),
)


def _group_by_param(default: str, choices: str) -> Param:
    return Param("group_by", Kind.TEXT, f"Rows per {choices}.", default=default)


def _activity_filters(
    context: PipeContext, values: dict[str, Any], default_days: int | None = None
) -> activity.Filters:
    return activity.Filters(
        window=_window(context, values, default_days),
        agent_id=values["agent_id"],
        group_id=values["group_id"],
        category=values["category"],
        priority=values["priority"],
        channel=values["channel"],
        as_of=_as_of(context, values["as_of"]),
        business_hours=values.get("business_hours", False),
    )


G = TypeVar("G", bound=StrEnum)


def _group_by(values: dict[str, Any], allowed: tuple[G, ...]) -> G:
    try:
        chosen = type(allowed[0])(str(values["group_by"]).lower())
    except ValueError:
        chosen = None
    if chosen not in allowed:
        names = ", ".join(g.value for g in allowed)
        raise ParamError("group_by", f"must be one of {names}; got {values['group_by']!r}")
    assert chosen is not None
    return chosen


def _period_unit(values: dict[str, Any]) -> PeriodUnit:
    try:
        return PeriodUnit(str(values["time_interval"]).lower())
    except ValueError:
        names = ", ".join(u.value for u in PeriodUnit)
        raise ParamError(
            "time_interval", f"must be one of {names}; got {values['time_interval']!r}"
        ) from None


_BY_ATTRIBUTE = (
    activity.GroupBy.PERIOD,
    activity.GroupBy.AGENT,
    activity.GroupBy.GROUP,
    activity.GroupBy.CATEGORY,
    activity.GroupBy.PRIORITY,
    activity.GroupBy.CHANNEL,
    activity.GroupBy.NONE,
)


def _time_in_status(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    by = _group_by(values, (activity.GroupBy.STATUS, activity.GroupBy.CATEGORY))
    return activity.time_in_status(
        context, _activity_filters(context, values), by_category=by is activity.GroupBy.CATEGORY
    )


Grouped = Callable[..., PipeResult]


def _grouped(aggregate: Grouped) -> Callable[[PipeContext, dict[str, Any]], PipeResult]:
    """A handler for an aggregate that takes the common filters, a grouping and a period unit."""

    def handler(context: PipeContext, values: dict[str, Any]) -> PipeResult:
        return aggregate(
            context,
            _activity_filters(context, values),
            by=_group_by(values, _BY_ATTRIBUTE),
            unit=_period_unit(values),
        )

    return handler


def _ticket_sla(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    return sla_state.ticket_sla(
        context, _activity_filters(context, values), limit=values["limit"], offset=values["offset"]
    )


def _sla_attainment(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    return sla_state.sla_attainment(
        context,
        _activity_filters(context, values),
        by=_group_by(values, tuple(sla_state.SlaGroupBy)),
        unit=_period_unit(values),
    )


def _sla_at_risk(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    return sla_state.sla_at_risk(
        context, _activity_filters(context, values), limit=values["limit"], offset=values["offset"]
    )


_BACKLOG_DAYS = 30


def _backlog(context: PipeContext, values: dict[str, Any]) -> PipeResult:
    filters = _activity_filters(context, values, _BACKLOG_DAYS)
    by = _group_by(values, (activity.GroupBy.NONE, activity.GroupBy.STATUS, activity.GroupBy.PRIORITY))
    return activity.backlog(context, filters, by=by)


_PERIOD = Param(
    "time_interval",
    Kind.TEXT,
    "Period of group_by=period: hour, day, week, month, quarter, year.",
    default="week",
)
_HISTORY_FILTERS = (_START, _END, *_FILTERS, _AS_OF)

PIPES: dict[str, Pipe] = {
    pipe.name: pipe
    for pipe in (
        Pipe(
            "time_trends",
            "Ticket volume, resolutions, and average, median and p90 times per period (reporting timezone).",
            (
                _START,
                _END,
                *_FILTERS,
                Param(
                    "time_interval",
                    Kind.INTERVAL,
                    "hour, day, week, month, quarter, year, or a pattern such as yyyy-MM-dd.",
                    default="day",
                ),
                _TIMEZONE,
                _BUSINESS_HOURS,
            ),
            trends.COLUMNS,
            _time_trends,
        ),
        Pipe(
            "arrivals",
            "Tickets created per weekday and hour of the reporting timezone: all 168 cells, Monday first.",
            (_START, _END, *_FILTERS, _TIMEZONE),
            trends.ARRIVAL_COLUMNS,
            _arrivals,
        ),
        Pipe(
            "sla_performance",
            "Response and resolution SLA attainment per priority.",
            (_START, _END, *_FILTERS, *sla.RESPONSE_SLA_PARAMS, *sla.RESOLUTION_SLA_PARAMS),
            sla.SLA_COLUMNS,
            _sla_performance,
        ),
        Pipe(
            "agent_performance",
            "Per-agent volume, resolution rate, satisfaction, times and response SLA.",
            (_START, _END, *_FILTERS, *sla.RESPONSE_SLA_PARAMS, _BUSINESS_HOURS),
            sla.AGENT_COLUMNS,
            _agent_performance,
        ),
        Pipe(
            "ticket_details",
            "Matching tickets with their response and resolution times, newest first.",
            (
                _TICKET,
                _CUSTOMER,
                _STATUS,
                *_FILTERS,
                _CREATED_AFTER,
                _CREATED_BEFORE,
                *_DRILL_DOWN,
                _TIMEZONE,
                _AS_OF,
                Param(
                    "limit", Kind.INT, "Rows to return (1..10000).", default=100, minimum=1, maximum=10_000
                ),
                _OFFSET,
            ),
            tickets.DETAIL_COLUMNS,
            _ticket_details,
        ),
        Pipe(
            "category_analysis",
            "Ticket distribution and average times per category.",
            (_START, _END, *_FILTERS, _BUSINESS_HOURS),
            tickets.CATEGORY_COLUMNS,
            _category_analysis,
        ),
        Pipe(
            "ticket_metrics",
            "Summary metrics with medians and p90s for any filter combination.",
            (_START, _END, *_FILTERS, _CUSTOMER, _BUSINESS_HOURS),
            tickets.METRICS_COLUMNS,
            _ticket_metrics,
        ),
        Pipe(
            "ticket_time_metrics",
            "Per ticket: time in each status and category, first response, resolution, waits, "
            "reopens, replies, one-touch and first-contact resolution, in calendar or business minutes.",
            (
                _TICKET,
                _STATUS,
                *_FILTERS,
                _CREATED_AFTER,
                _CREATED_BEFORE,
                _AS_OF,
                _BUSINESS_HOURS,
                Param(
                    "limit",
                    Kind.INT,
                    "Rows to return (1..1000000).",
                    default=100,
                    minimum=1,
                    maximum=1_000_000,
                ),
                _OFFSET,
            ),
            time_metrics.COLUMNS,
            _ticket_time_metrics,
        ),
        Pipe(
            "time_in_status",
            "Per status (or status category): tickets that spent time in it, total, mean, median "
            "and p90 minutes (tickets by creation time).",
            (*_HISTORY_FILTERS, _BUSINESS_HOURS, _group_by_param("status", "status or category")),
            activity.TIME_IN_STATUS_COLUMNS,
            _time_in_status,
        ),
        Pipe(
            "reply_times",
            "First and later reply times: count, mean, median and p90 minutes per group.",
            (*_HISTORY_FILTERS, _BUSINESS_HOURS, _group_by_param("period", _GROUPINGS), _PERIOD, _TIMEZONE),
            activity.REPLY_COLUMNS,
            _grouped(activity.reply_times),
        ),
        Pipe(
            "resolution_quality",
            "Reopen, one-touch, two-touch, multi-touch and first-contact-resolution rates of "
            "resolved tickets, per group.",
            (*_HISTORY_FILTERS, _group_by_param("period", _GROUPINGS), _PERIOD, _TIMEZONE),
            activity.QUALITY_COLUMNS,
            _grouped(activity.resolution_quality),
        ),
        Pipe(
            "csat",
            "CSAT % (ratings of 4 or 5), mean score and rating counts per group; unrated tickets left out.",
            (*_HISTORY_FILTERS, _group_by_param("period", _GROUPINGS), _PERIOD, _TIMEZONE),
            activity.CSAT_COLUMNS,
            _grouped(activity.csat),
        ),
        Pipe(
            "backlog",
            "Unresolved tickets at the end of each day (reporting timezone) with age buckets, "
            "optionally by status or priority; default window: the last 30 days.",
            (*_HISTORY_FILTERS, _group_by_param("none", "none, status or priority"), _TIMEZONE),
            activity.BACKLOG_COLUMNS,
            _backlog,
        ),
        Pipe(
            "ticket_sla",
            "Per ticket and SLA target (the workspace's policies): state, due time, elapsed and "
            "remaining minutes, breach and at-risk flags at as_of (tickets by creation time, a page "
            "of them: limit and offset count tickets).",
            (
                *_HISTORY_FILTERS,
                *_paging("Tickets to return, each with all its targets", "Tickets to skip"),
            ),
            sla_state.TICKET_SLA_COLUMNS,
            _ticket_sla,
        ),
        Pipe(
            "sla_attainment",
            "Achieved, breached and running SLA targets and attainment % (achieved / completed) per "
            "group and target type, for the tickets created in the window.",
            (
                *_HISTORY_FILTERS,
                _group_by_param(
                    "target_type", "target_type, priority, agent, group, category, policy, period or none"
                ),
                _PERIOD,
                _TIMEZONE,
            ),
            sla_state.ATTAINMENT_COLUMNS,
            _sla_attainment,
        ),
        Pipe(
            "sla_at_risk",
            "Running SLA targets at risk or breached at as_of, soonest due (longest overdue) first "
            "(a page of them: limit and offset count targets).",
            (
                *_HISTORY_FILTERS,
                *_paging("Targets to return", "Targets to skip"),
            ),
            sla_state.AT_RISK_COLUMNS,
            _sla_at_risk,
        ),
    )
}
