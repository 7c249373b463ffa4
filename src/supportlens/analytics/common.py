"""What every pipe shares: the request context, the result shape, and the SQL pieces for the
durations and averages that METRICS.md defines once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.group_memo import KeptGroups
from supportlens.analytics.history_memo import FoldedLogs
from supportlens.analytics.scope import Conditions, Scope
from supportlens.analytics.sla_memo import KeptEvaluations, TargetStates
from supportlens.domain.calendars import CalendarChoice, Schedule, default_business_hours
from supportlens.domain.metrics import average, average_minutes, minutes
from supportlens.domain.sla import PolicySet
from supportlens.domain.statuses import DEFAULT_STATUS_MAP, StatusMap
from supportlens.store.base import Engine, QueryResult
from supportlens.store.schema import TICKETS


@dataclass(frozen=True, slots=True)
class PipeContext:
    engine: Engine
    scope: Scope
    timezone: str = "UTC"
    default_window_days: int = 365
    timeout: float = 30.0
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The workspace's business calendar and status names (durations in business time, categories).
    calendar: Schedule = field(default_factory=lambda: default_business_hours("UTC"))
    statuses: StatusMap = DEFAULT_STATUS_MAP
    # The end of the newest imported activity export's window (``as_of=export_end``).
    export_end: datetime | None = None
    # Read lazily, by the pipes that need them: the workspace's SLA policies, and its calendars with
    # the calendar of each group.  Unset: the built-in policy, and ``calendar`` for every ticket.
    sla_policies: Callable[[], PolicySet] | None = None
    calendars: Callable[[], CalendarChoice] | None = None
    # SLA evaluations of tickets with events, kept between runs (analytics/sla_memo.py).
    sla_memo: KeptEvaluations | None = None
    # What sla_attainment reads of the targets of ticket versions, kept between runs (the same module).
    sla_states: TargetStates | None = None
    # What sla_at_risk lists of settled ticket versions, kept between runs (the same module).
    at_risk_states: TargetStates | None = None
    # Activity logs read and folded, kept between runs (analytics/history_memo.py).
    folded_logs: FoldedLogs | None = None
    # time_trends' results per period, kept between runs (analytics/group_memo.py).
    kept_periods: KeptGroups[Any] | None = None

    def calendar_choice(self) -> CalendarChoice:
        return self.calendars() if self.calendars else CalendarChoice.only(self.calendar)


class TableRows(Sequence[dict[str, Any]]):
    """The rows of an Arrow table, made into dicts only when read (a Parquet answer never is)."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table
        self._rows: list[dict[str, Any]] | None = None

    def _materialized(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = self._table.to_pylist()
        return self._rows

    def __len__(self) -> int:
        return int(self._table.num_rows)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return self._materialized()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self._materialized() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class PipeResult:
    columns: list[tuple[str, str]]  # (name, ClickHouse-style type) as Tinybird's "meta"
    rows: Sequence[dict[str, Any]]
    rows_read: int
    elapsed: float
    rows_before_limit: int | None = None
    # The same rows as an Arrow table, when the pipe built them column-wise (Parquet skips ``rows``).
    table: pa.Table | None = None


# Stored per ticket at ingestion: see store/schema.py.
RESOLVED = "is_resolved"
RESPONSE_MS = "response_ms"
RESOLUTION_MS = "resolution_ms"


def tickets_from(context: PipeContext) -> str:
    return context.engine.dialect.table(TICKETS)


def duration_sums() -> str:
    """Exact integer sums and counts, from which averages are computed in Python, so both engines
    give identical figures (``count(x)`` skips nulls everywhere)."""
    return (
        f"sum({RESOLUTION_MS}) AS resolution_ms_sum, count({RESOLUTION_MS}) AS resolution_n, "
        f"sum({RESPONSE_MS}) AS response_ms_sum, count({RESPONSE_MS}) AS response_n, "
        "sum(satisfaction_score) AS satisfaction_sum, count(satisfaction_score) AS satisfaction_n"
    )


# The levels of every median and p90 computed in SQL (``Dialect.quantiles``).
QUANTILES = (0.5, 0.9)


def quantile_minutes(found: Sequence[float] | None) -> tuple[float | None, float | None]:
    """The median and p90 of ``Dialect.quantiles(..., QUANTILES)`` in minutes (null for nothing)."""
    median, p90 = found or (None, None)
    return minutes(median), minutes(p90)


def averages(row: Mapping[str, Any]) -> tuple[float | None, float | None, float | None]:
    """(resolution minutes, response minutes, satisfaction) from a ``duration_sums`` row."""
    return (
        average_minutes(row.get("resolution_ms_sum"), row.get("resolution_n")),
        average_minutes(row.get("response_ms_sum"), row.get("response_n")),
        average(row.get("satisfaction_sum"), row.get("satisfaction_n")),
    )


def run(context: PipeContext, sql: str, conditions: Conditions) -> QueryResult:
    return context.engine.fetch(sql, conditions.params, timeout=context.timeout)


def conditions(context: PipeContext) -> Conditions:
    return Conditions(context.engine.dialect, context.scope)


def selection(
    context: PipeContext,
    filters: Mapping[str, str | None],
    start: datetime | None = None,
    end: datetime | None = None,
) -> Conditions:
    """The caller's tickets created in [start, end] (a None end is open) whose columns equal every
    given filter (a None value is not given): what every ticket pipe selects from."""
    where = conditions(context)
    where.between("created_at", start, end)
    for column, value in filters.items():
        where.equals(column, value)
    return where


def resolved_flags(status: pa.ChunkedArray, statuses: StatusMap) -> pa.ChunkedArray:
    """``is_resolved`` of stored status names under a status map, vectorized: each distinct name
    is looked up once, then a set lookup per row.  A missing or unknown name is not resolved
    (METRICS.md, status categories)."""
    names = pc.unique(status).to_pylist()
    resolved = sorted(name for name in names if name is not None and statuses.is_resolved(name))
    return pc.fill_null(pc.is_in(status, value_set=pa.array(resolved, pa.string())), False)
