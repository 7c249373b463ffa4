"""``time_trends`` keeps each period's result under a fingerprint of the period's rows
(analytics/group_memo.py), on both engines: on random tickets, with writes between runs (new
tickets, changed times, ratings and statuses, removed tickets), every run answers what a run that
keeps nothing answers, for several intervals, timezones (across a DST change) and filters; a kept
period is used while its rows are unchanged, and a write to it makes it computed again."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.analytics.group_memo import Kept
from supportlens.analytics.pipes import PIPES
from supportlens.auth.repository import Workspace
from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime

T0 = datetime(2026, 3, 20, tzinfo=UTC)  # Europe/Berlin moves to summer time on March 29
_DAYS = 20
_NAMES = itertools.count()
QUERIES: list[dict[str, str]] = [
    {},
    {"time_interval": "hour", "timezone": "America/St_Johns"},  # an offset of a half hour
    {"time_interval": "week", "timezone": "Europe/Berlin", "category": "billing"},
]

Ticket = tuple[int, int | None, int | None, str, int | None, str]  # minute, response, resolution, …


def tickets() -> st.SearchStrategy[Ticket]:
    minutes = st.integers(0, 24 * 60 * _DAYS - 1)
    durations = st.one_of(st.none(), st.integers(0, 3 * 24 * 60))
    return st.tuples(
        minutes,
        durations,
        durations,
        st.sampled_from(["open", "pending", "resolved", "closed"]),
        st.one_of(st.none(), st.integers(1, 5)),
        st.sampled_from(["billing", "technical"]),
    )


Write = tuple[str, int, Ticket]  # "new" (a new ticket), "change" or "remove" ticket number n


def writes() -> st.SearchStrategy[list[Write]]:
    kinds = st.sampled_from(["new", "change", "change", "remove"])
    return st.lists(st.tuples(kinds, st.integers(0, 10_000), tickets()), max_size=4)


def _row(number: int, ticket: Ticket, version: int) -> dict[str, Any]:
    minute, response, resolution, status, score, category = ticket
    created = T0 + timedelta(minutes=minute)

    def after(minutes: int | None) -> str | None:
        return None if minutes is None else (created + timedelta(minutes=minutes)).isoformat()

    return {
        "ticket_id": f"T{number}",
        "created_at": created.isoformat(),
        "updated_at": (T0 + timedelta(days=_DAYS + 10, minutes=version)).isoformat(),
        "status": status,
        "first_response_at": after(response),
        "resolved_at": after(resolution),
        "satisfaction_score": score,
        "category": category,
        "priority": "low",
    }


def _answers(
    runtime: Runtime, workspace: Workspace, *, kept: bool, queries: list[dict[str, str]] = QUERIES
) -> list[list[dict[str, Any]]]:
    context = runtime.pipe_context(workspace)
    if not kept:
        context = dataclasses.replace(context, kept_periods=None)
    window = {"start_date": T0.isoformat(), "end_date": (T0 + timedelta(days=_DAYS)).isoformat()}
    return [list(PIPES["time_trends"].run(context, {**window, **query}).rows) for query in queries]


def _ingest(runtime: Runtime, workspace: Workspace, rows: list[dict[str, Any]]) -> None:
    result = runtime.ingest.ingest(workspace.id, "support_tickets", [RawRow(r, str(r)) for r in rows])
    result.committed.result()
    assert result.quarantined_rows == 0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(tickets(), min_size=1, max_size=40), st.lists(writes(), min_size=1, max_size=4))
def test_kept_periods_give_the_answers_of_computing_them_again(
    runtime: Runtime, first: list[Ticket], rounds: list[list[Write]]
) -> None:
    workspace = runtime.metadata.create_workspace(f"w{next(_NAMES)}")
    _ingest(runtime, workspace, [_row(n, t, 0) for n, t in enumerate(first)])
    count = len(first)
    for version, round_writes in enumerate(rounds, start=1):
        kept = _answers(runtime, workspace, kept=True)
        assert kept == _answers(runtime, workspace, kept=False), version
        assert kept == _answers(runtime, workspace, kept=True), version  # from the kept periods
        rows, removed = [], []
        for kind, number, ticket in round_writes:
            if kind == "new":
                rows.append(_row(count, ticket, version))
                count += 1
            elif kind == "change":
                rows.append(_row(number % count, ticket, version))
            else:
                removed.append(f"T{number % count}")
        if rows:
            _ingest(runtime, workspace, rows)
        if removed:
            runtime.ingest.delete_tickets(workspace.id, removed).result()
    assert _answers(runtime, workspace, kept=True) == _answers(runtime, workspace, kept=False)


def test_a_kept_period_is_used_until_a_write_touches_it(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace(f"w{next(_NAMES)}")
    day = 24 * 60
    _ingest(
        runtime, workspace, [_row(n, (n * day + 60, 30, 90, "resolved", 4, "billing"), 0) for n in range(3)]
    )
    (first,) = _answers(runtime, workspace, kept=True, queries=[{}])
    ((_, periods),) = runtime.kept_periods._queries.items()
    assert len(periods) == 3
    # What is kept is what the next run answers: a changed count shows (those rows are not read).
    label = next(iter(periods))
    times, counts = periods[label].value
    periods[label] = Kept(periods[label].fingerprint, (times, {**counts, "ticket_count": 99}))
    (answered,) = _answers(runtime, workspace, kept=True, queries=[{}])
    assert [row["ticket_count"] for row in answered if row["ticket_count"]] == [99, 1, 1]
    # A new ticket that day changes the period's fingerprint: computed again, from its rows.
    _ingest(runtime, workspace, [_row(7, (30, 10, None, "open", None, "billing"), 1)])
    (after,) = _answers(runtime, workspace, kept=True, queries=[{}])
    assert [row["ticket_count"] for row in after if row["ticket_count"]] == [2, 1, 1]
    assert [after] == _answers(runtime, workspace, kept=False, queries=[{}])
    assert after != first
