"""Builds the WHERE clause every ticket query starts from: the workspace, the token's fixed
filters (which no parameter can widen) and the request's own filters, all as bound parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from supportlens.store.base import Dialect, ParamType

# Columns a token's fixed filters and the pipes' equality filters may name.
FILTERABLE_COLUMNS: frozenset[str] = frozenset(
    {"ticket_id", "customer_id", "agent_id", "group_id", "category", "priority", "status", "channel"}
)


@dataclass(frozen=True, slots=True)
class Scope:
    """Who is asking: a workspace, and the filters their token fixes."""

    workspace_id: str
    fixed_filters: dict[str, str] = field(default_factory=dict)


def naive_utc(moment: datetime) -> datetime:
    """Both engines bind timestamps as naive UTC values."""
    return moment.astimezone(UTC).replace(tzinfo=None)


class Conditions:
    """Accumulates SQL conditions and their bound parameters."""

    def __init__(self, dialect: Dialect, scope: Scope) -> None:
        self.dialect = dialect
        self.params: dict[str, Any] = {}
        self._clauses: list[str] = []
        self.equals("workspace_id", scope.workspace_id)
        for column, value in sorted(scope.fixed_filters.items()):
            self.equals(column, value, param_name=f"fixed_{column}")

    def _bind(self, name: str, value: Any, kind: ParamType) -> str:
        if name in self.params:
            raise ValueError(f"parameter {name!r} bound twice")
        self.params[name] = value
        return self.dialect.param(name, kind)

    def bind(self, name: str, value: Any, kind: ParamType) -> str:
        """A placeholder for a value used outside the WHERE clause (thresholds, timezone)."""
        return self._bind(name, value, kind)

    def equals(self, column: str, value: str | None, *, param_name: str | None = None) -> None:
        if value is None:
            return
        if column not in FILTERABLE_COLUMNS and column != "workspace_id":
            raise ValueError(f"{column!r} is not a filterable column")
        self._clauses.append(f"{column} = {self._bind(param_name or column, value, ParamType.STRING)}")

    def between(self, column: str, start: datetime | None, end: datetime | None) -> None:
        if start is not None:
            placeholder = self._bind(f"{column}_from", naive_utc(start), ParamType.TIMESTAMP)
            self._clauses.append(f"{column} >= {placeholder}")
        if end is not None:
            placeholder = self._bind(f"{column}_to", naive_utc(end), ParamType.TIMESTAMP)
            self._clauses.append(f"{column} <= {placeholder}")

    def within(self, column: str, spans: Sequence[tuple[datetime, datetime]]) -> None:
        """``column`` in one of the [start, end) ``spans`` (none: no row)."""
        if not spans:
            self._clauses.append("1 = 0")
            return
        parts = []
        for index, (start, end) in enumerate(spans):
            low = self._bind(f"{column}_span{index}_from", naive_utc(start), ParamType.TIMESTAMP)
            high = self._bind(f"{column}_span{index}_to", naive_utc(end), ParamType.TIMESTAMP)
            parts.append(f"({column} >= {low} AND {column} < {high})")
        self._clauses.append(f"({' OR '.join(parts)})")

    def unresolved_at(self, moment: datetime) -> None:
        """Leave out tickets resolved continuously since before ``moment``: resolved now, and their
        last entry into a resolved status (``resolved_at``) at or before it."""
        placeholder = self._bind("resolved_by", naive_utc(moment), ParamType.TIMESTAMP)
        self._clauses.append(
            f"NOT (is_resolved AND resolved_at IS NOT NULL AND resolved_at <= {placeholder})"
        )

    def has_events(self) -> None:
        """Only tickets with an activity log (``last_event_at`` is set exactly on those)."""
        self._clauses.append("last_event_at IS NOT NULL")

    def copy(self) -> Conditions:
        """The same conditions, to narrow without changing these."""
        copied = Conditions.__new__(Conditions)  # the clauses carry the scope already
        copied.dialect = self.dialect
        copied.params = dict(self.params)
        copied._clauses = list(self._clauses)
        return copied

    def not_closed_snapshot_by(self, moment: datetime) -> None:
        """Leave out tickets without events (``last_event_at`` null) whose resolved_at is at or
        before ``moment``: the backlog never counts them open after it (analytics/activity.py)."""
        placeholder = self._bind("closed_by", naive_utc(moment), ParamType.TIMESTAMP)
        self._clauses.append(
            f"NOT (last_event_at IS NULL AND resolved_at IS NOT NULL AND resolved_at <= {placeholder})"
        )

    def listed_or_received_since(self, ids: Sequence[str], since: datetime) -> None:
        """Tickets among ``ids`` or received (their latest posting or event) at or after ``since``."""
        received = f"received_at >= {self._bind('received_from', naive_utc(since), ParamType.TIMESTAMP)}"
        if not ids:  # an empty list parameter has no element type to bind
            self._clauses.append(received)
            return
        if "listed_ids" in self.params:
            raise ValueError("parameter 'listed_ids' bound twice")
        self.params["listed_ids"] = list(ids)
        self._clauses.append(f"({self.dialect.in_list('ticket_id', 'listed_ids')} OR {received})")

    def among(self, ids: Sequence[str]) -> None:
        """Tickets whose id is one of ``ids`` (at least one)."""
        self.params["among_ids"] = list(ids)
        self._clauses.append(self.dialect.in_list("ticket_id", "among_ids"))

    @property
    def where(self) -> str:
        return " AND ".join(self._clauses)
