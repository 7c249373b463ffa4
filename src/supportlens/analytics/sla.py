"""The seed's simple SLA endpoints: sla_performance (by priority) and agent_performance."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from itertools import compress

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.common import (
    RESOLUTION_MS,
    RESOLVED,
    RESPONSE_MS,
    PipeContext,
    PipeResult,
    averages,
    duration_sums,
    run,
    selection,
    tickets_from,
)
from supportlens.analytics.durations import NO_DURATIONS, DurationSummary, ticket_durations
from supportlens.analytics.params import Kind, Param, Window
from supportlens.analytics.scope import Conditions
from supportlens.domain.metrics import MS_PER_MINUTE, percentage
from supportlens.domain.models import PRIORITY_ORDER, priority_rank
from supportlens.store.base import ParamType

_DEFAULT_RESPONSE = {"high": 30.0, "medium": 60.0, "low": 120.0, "default": 60.0}
_DEFAULT_RESOLUTION = {"high": 240.0, "medium": 480.0, "low": 1440.0, "default": 480.0}


def _threshold_params(kind: str, defaults: dict[str, float]) -> tuple[Param, ...]:
    params = [
        Param(
            f"urgent_priority_{kind}_sla",
            Kind.MINUTES,
            f"{kind.capitalize()} SLA of urgent (and critical) tickets, minutes; default: the high one.",
        )
    ]
    for level in ("high", "medium", "low"):
        params.append(
            Param(
                f"{level}_priority_{kind}_sla",
                Kind.MINUTES,
                f"{kind.capitalize()} SLA of {level}-priority tickets, minutes.",
                default=defaults[level],
            )
        )
    params.append(
        Param(
            f"default_{kind}_sla",
            Kind.MINUTES,
            f"{kind.capitalize()} SLA of tickets of any other priority, minutes.",
            default=defaults["default"],
        )
    )
    return tuple(params)


RESPONSE_SLA_PARAMS = _threshold_params("response", _DEFAULT_RESPONSE)
RESOLUTION_SLA_PARAMS = _threshold_params("resolution", _DEFAULT_RESOLUTION)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Minutes per priority; ``default`` covers every other priority and none."""

    by_priority: dict[str, float]
    default: float

    @classmethod
    def from_params(cls, kind: str, values: dict[str, object]) -> Thresholds:
        levels = {
            level: float(str(values[f"{level}_priority_{kind}_sla"])) for level in ("high", "medium", "low")
        }
        urgent = values.get(f"urgent_priority_{kind}_sla")
        levels["urgent"] = levels["high"] if urgent is None else float(str(urgent))
        return cls(levels, float(str(values[f"default_{kind}_sla"])))

    def whole_ms(self, priority: str | None) -> int:
        """The threshold of a priority in whole milliseconds.  Durations are whole milliseconds, so
        ``duration <= minutes`` holds exactly when ``duration <= floor(minutes * 60000)``: integer
        comparisons, exact for any threshold."""
        minutes = self.by_priority.get(priority, self.default) if priority is not None else self.default
        return math.floor(Fraction(minutes) * MS_PER_MINUTE)

    def sql_ms(self, where: Conditions, kind: str) -> str:
        """A CASE expression giving each ticket's threshold in whole milliseconds."""
        branches = []
        for level in PRIORITY_ORDER:
            placeholder = where.bind(f"{kind}_{level}_ms", self.whole_ms(level), ParamType.INT)
            branches.append(f"WHEN '{level}' THEN {placeholder}")
        default = where.bind(f"{kind}_default_ms", self.whole_ms(None), ParamType.INT)
        return f"(CASE priority {' '.join(branches)} ELSE {default} END)"

    def ms_array(self, priorities: pa.ChunkedArray) -> npt.NDArray[np.int64]:
        """``whole_ms`` of each ticket's priority."""
        encoded = pc.dictionary_encode(priorities).combine_chunks()
        limits = [self.whole_ms(p) for p in (*encoded.dictionary.to_pylist(), None)]
        indices = encoded.indices.fill_null(len(limits) - 1).to_numpy(zero_copy_only=False)
        return np.array(limits, dtype=np.int64)[np.asarray(indices, dtype=np.int64)]


def _met(context: PipeContext, where: Conditions, thresholds: Thresholds, kind: str) -> str:
    duration = RESPONSE_MS if kind == "response" else RESOLUTION_MS
    limit = thresholds.sql_ms(where, kind)
    # A missing timestamp gives a null duration, and null <= x is not true: never met.
    return context.engine.dialect.count_if(f"{duration} <= {limit}")


SLA_COLUMNS = [
    ("priority", "Nullable(String)"),
    ("total_tickets", "UInt64"),
    ("met_response_sla", "UInt64"),
    ("met_resolution_sla", "UInt64"),
    ("response_sla_percentage", "Float64"),
    ("resolution_sla_percentage", "Float64"),
]


def sla_performance(
    context: PipeContext,
    window: Window,
    *,
    filters: Mapping[str, str | None],
    response: Thresholds,
    resolution: Thresholds,
) -> PipeResult:
    where = selection(context, filters, window.start, window.end)
    sql = (
        f"SELECT priority, count(*) AS total, {_met(context, where, response, 'response')} AS met_response, "
        f"{_met(context, where, resolution, 'resolution')} AS met_resolution "
        f"FROM {tickets_from(context)} WHERE {where.where} GROUP BY priority"
    )
    result = run(context, sql, where)
    found = sorted(result.dicts(), key=lambda r: priority_rank(r["priority"]))
    rows = [
        {
            "priority": r["priority"],
            "total_tickets": int(r["total"]),
            "met_response_sla": int(r["met_response"]),
            "met_resolution_sla": int(r["met_resolution"]),
            "response_sla_percentage": percentage(r["met_response"], r["total"]),
            "resolution_sla_percentage": percentage(r["met_resolution"], r["total"]),
        }
        for r in found
    ]
    return PipeResult(SLA_COLUMNS, rows, sum(r["total_tickets"] for r in rows), result.elapsed)


AGENT_COLUMNS = [
    ("agent_id", "Nullable(String)"),
    ("tickets_handled", "UInt64"),
    ("resolved_tickets", "UInt64"),
    ("resolution_rate", "Float64"),
    ("avg_satisfaction", "Nullable(Float64)"),
    ("avg_resolution_time_minutes", "Nullable(Float64)"),
    ("avg_response_time_minutes", "Nullable(Float64)"),
    ("met_response_sla", "UInt64"),
    ("response_sla_percentage", "Float64"),
]


def agent_performance(
    context: PipeContext,
    window: Window,
    *,
    filters: Mapping[str, str | None],
    response: Thresholds,
    business_hours: bool,
) -> PipeResult:
    """Per agent; with ``business_hours``, the times and the response SLA in business minutes
    (the thresholds then count business minutes too)."""
    where = selection(context, filters, window.start, window.end)
    sql = (
        f"SELECT agent_id, count(*) AS handled, {context.engine.dialect.count_if(RESOLVED)} AS resolved, "
        f"{_met(context, where, response, 'response')} AS met_response, {duration_sums()} "
        f"FROM {tickets_from(context)} WHERE {where.where} GROUP BY agent_id"
    )
    result = run(context, sql, where)
    found = sorted(
        result.dicts(), key=lambda r: (-int(r["handled"]), r["agent_id"] is None, r["agent_id"] or "")
    )
    if business_hours:
        durations = ticket_durations(context, filters, window, "agent_id", "priority", business_hours=True)
        agents = durations.tickets.column("agent_id")
        times = durations.summaries(agents)
        limits = response.ms_array(durations.tickets.column("priority"))
        met = Counter(
            compress(agents.to_pylist(), durations.has_response & (durations.response_ms <= limits))
        )
    else:
        times = {r["agent_id"]: DurationSummary.from_sql(r) for r in found}
        met = Counter({r["agent_id"]: int(r["met_response"]) for r in found})
    rows = []
    for r in found:
        _, _, avg_satisfaction = averages(r)
        mine = times.get(r["agent_id"], NO_DURATIONS)
        rows.append(
            {
                "agent_id": r["agent_id"],
                "tickets_handled": int(r["handled"]),
                "resolved_tickets": int(r["resolved"]),
                "resolution_rate": percentage(r["resolved"], r["handled"]),
                "avg_satisfaction": avg_satisfaction,
                "avg_resolution_time_minutes": mine.resolution_mean,
                "avg_response_time_minutes": mine.response_mean,
                "met_response_sla": met[r["agent_id"]],
                "response_sla_percentage": percentage(met[r["agent_id"]], r["handled"]),
            }
        )
    return PipeResult(AGENT_COLUMNS, rows, sum(r["tickets_handled"] for r in rows), result.elapsed)
