"""The stored time facts (analytics/facts.py) give ``ticket_time_metrics`` exactly what the activity
log gives, on both engines, and are never used once they are outdated: evaluation times before a
ticket's last event, other status names, another calendar.  Restating brings them back; so does an
upgrade from a store without them."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.analytics import activity, time_metrics
from supportlens.analytics.common import selection
from supportlens.analytics.params import Window
from supportlens.app import create_app
from supportlens.auth.repository import Workspace
from supportlens.domain.events import ActorType, EventType
from supportlens.domain.periods import PeriodUnit
from supportlens.domain.statuses import StatusCategory
from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from supportlens.store.schema import FACT_COLUMNS, TICKETS
from tests.analytics.test_time_metrics_pipe import grouped_batches, load_grouped
from tests.conftest import make_settings
from tests.domain.test_timeline import History, at, event
from tests.store.test_schema_version import downgrade

_C, _S, _R, _M = EventType.CREATED, EventType.STATUS_CHANGED, EventType.REPLY, EventType.CUSTOMER_MESSAGE
# Answered, on hold, asked again, solved; pending still; solved then reopened; never touched.
FIXED = [
    History(
        [
            event(0, 0, _C, actor_type=ActorType.CUSTOMER, status="open"),
            event(1, 30, _R, actor_type=ActorType.AGENT),
            event(2, 60, _S, status="pending"),
            event(3, 200, _M, actor_type=ActorType.CUSTOMER),
            event(4, 200, _S, status="open"),
            event(5, 400, _S, status="resolved"),
        ],
        0,
    ),
    History([event(0, 10, _C, status="new"), event(1, 100, _S, status="pending")], 0),
    History(
        [
            event(0, 20, _C, actor_type=ActorType.CUSTOMER, status="open"),
            event(1, 50, _R, actor_type=ActorType.AGENT),
            event(2, 90, _S, status="resolved"),
            event(3, 300, _S, status="open"),
        ],
        0,
    ),
    History([event(0, 5, _C, actor_type=ActorType.CUSTOMER)], 0),
]


def _answers(runtime: Runtime, workspace: Workspace, as_of: datetime, business: bool) -> tuple[Any, Any]:
    """(from the facts or None, from the activity log), each as comparable rows."""
    context = runtime.pipe_context(workspace)
    where = time_metrics.conditions(context)
    page = "ORDER BY created_at DESC, ticket_id ASC LIMIT 1000"
    facts = time_metrics.answer_from_facts(context, where, page, as_of=as_of, business_hours=business)
    log = time_metrics.answer_from_log(context, where, page, as_of=as_of, business_hours=business)
    return (None if facts is None else _comparable(facts)), _comparable(log)


def _comparable(table: Any) -> list[dict[str, Any]]:
    rows = table.to_pylist()
    for row in rows:
        if row["minutes_in_status"] is not None:
            row["minutes_in_status"] = orjson.loads(row["minutes_in_status"])
    return rows


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    grouped_batches(),
    st.integers(450, 2000),
    st.booleans(),
)
def test_facts_equal_the_activity_log(
    runtime: Runtime, batch: list[tuple[History, str | None]], as_of_minute: int, business: bool
) -> None:
    """After every event (histories end by minute 450), in calendar and business time, with tickets
    on three calendars (one with a half-hour offset, one with windows past midnight in a DST zone)."""
    workspace, _, _ = load_grouped(runtime, batch)
    facts, log = _answers(runtime, workspace, at(as_of_minute), business)
    assert facts is not None
    assert facts == log


def test_outdated_facts_are_not_used_and_restating_refreshes_them(runtime: Runtime) -> None:
    batch = list(zip(FIXED, ["night", None, "india", "east"], strict=True))
    workspace, _, _ = load_grouped(runtime, batch)
    late = at(3000)
    facts, log = _answers(runtime, workspace, late, True)
    assert facts == log

    # An evaluation time before some ticket's last event: the log, which does not see later events.
    early = at(0)
    facts, _ = _answers(runtime, workspace, early, False)
    assert facts is None

    # New status names, not yet restated: the facts are outdated; restating refreshes them.
    runtime.configuration.set_status_names(workspace.id, {"pending": StatusCategory.ON_HOLD})
    facts, log = _answers(runtime, workspace, late, True)
    assert facts is None
    runtime.writer.restate(workspace.id).result()
    facts, log_after = _answers(runtime, workspace, late, True)
    assert facts == log_after

    # Another calendar for a group: outdated until restated (the runtime queues that itself).
    night = next(c for c in runtime.configuration.calendars(workspace.id) if c.name == "Night shift")
    with runtime.calendar_change(workspace) as change:
        runtime.configuration.assign_group(workspace.id, "east", night.id)
    with runtime.calendar_change(workspace) as nothing:  # the same assignment again
        runtime.configuration.assign_group(workspace.id, "east", night.id)
    assert nothing.restating is None
    assert runtime.restate_if_calendars_changed(workspace, runtime.calendar_signature(workspace)) is None
    restating = change.restating
    assert restating is not None
    restating.result()
    facts, log = _answers(runtime, workspace, late, True)
    assert facts is not None
    assert facts == log


def test_an_upgrade_fills_the_facts(engine_name: str, tmp_path: Path) -> None:
    """A store written before the facts existed (schema 4) is restated on open: every ticket with
    events gets its facts, and the answers stay what they were."""
    settings_ = make_settings(engine_name, tmp_path)
    runtime = Runtime.open(settings_)
    batch = list(zip(FIXED, ["night", None, "india", "east"], strict=True))
    workspace, _, _ = load_grouped(runtime, batch)
    _, expected = _answers(runtime, workspace, at(3000), True)
    runtime.close()

    downgrade(settings_.store_url, 4, columns=[(TICKETS, column.name) for column in FACT_COLUMNS])

    upgraded = Runtime.open(settings_)
    try:
        facts, log = _answers(upgraded, workspace, at(3000), True)
        assert facts is not None
        assert facts == log == expected
    finally:
        upgraded.close()


def test_facts_outdated_at_start_are_restated_in_the_background(
    engine_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Facts computed under status names or calendars the workspace no longer has (an earlier
    release's built-in names, or a restatement a stop cut short: here, names changed without one)
    are found when the server starts, which queues the workspace's restatement; the answers are the
    same before (from the log) and after (from the facts again)."""
    settings_ = make_settings(engine_name, tmp_path)
    runtime = Runtime.open(settings_)
    try:
        batch = list(zip(FIXED, ["night", None, "india", "east"], strict=True))
        workspace, _, _ = load_grouped(runtime, batch)
        assert runtime.restate_outdated_facts() == {}  # every fact is current
        runtime.configuration.set_status_names(workspace.id, {"pending": StatusCategory.ON_HOLD})
        facts, expected = _answers(runtime, workspace, at(3000), True)
        assert facts is None
    finally:
        runtime.close()

    app = create_app(settings_)
    with caplog.at_level(logging.INFO, logger="supportlens.runtime"), TestClient(app) as client:
        assert client.get("/health").status_code == 200
        started: Runtime = app.state.runtime
        assert f"tickets of workspace {workspace.name} hold time facts computed under other" in caplog.text
        restating = app.state.restating_facts
        assert set(restating) == {workspace.id}
        assert restating[workspace.id].result() == len(FIXED)
        facts, log = _answers(started, workspace, at(3000), True)
        assert facts is not None
        assert facts == log == expected
        assert started.restate_outdated_facts() == {}


def _quality(
    found: activity.TicketQuality,
) -> tuple[list[str], dict[str, tuple[bool, bool, int, bool]]]:
    """The matched tickets, and what each one with a log counts."""
    ids = found.logged.column("ticket_id").to_pylist()
    columns = (found.resolved, found.reopened, found.replies, found.first_contact)
    return sorted(found.tickets.column("ticket_id").to_pylist()), {
        ticket_id: (bool(a), bool(b), int(c), bool(d))
        for ticket_id, a, b, c, d in zip(ids, *columns, strict=True)
    }


def _counted(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return row["tickets"], row["tickets_with_history"], row["resolved_tickets"], row["reopened_tickets"]


def _quality_by(
    found: activity.TicketQuality, by: activity.GroupBy
) -> dict[str | None, tuple[int, int, int, int]]:
    """``_counted`` of each agent (or of everyone), in plain Python from each ticket's quality."""

    def group(row: dict[str, Any]) -> str | None:
        return row["agent_id"] if by is activity.GroupBy.AGENT else None

    counts: dict[str | None, list[int]] = {}
    for row in found.tickets.to_pylist():
        counts.setdefault(group(row), [0, 0, 0, 0])[0] += 1
    for row, resolved, reopened in zip(found.logged.to_pylist(), found.resolved, found.reopened, strict=True):
        mine = counts[group(row)]
        mine[1] += 1
        mine[2] += bool(resolved)
        mine[3] += bool(resolved and reopened)
    return {label: (a, b, c, d) for label, (a, b, c, d) in counts.items()}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grouped_batches(), st.integers(450, 2000))
def test_resolution_quality_from_facts_equals_the_log(
    runtime: Runtime, batch: list[tuple[History, str | None]], as_of_minute: int
) -> None:
    workspace, _, _ = load_grouped(runtime, batch)
    # And tickets known only by snapshots: counted as matched, not as having a log.
    snapshots = [
        {"ticket_id": f"S{n}", "created_at": at(n).isoformat(), "status": status, "agent_id": agent}
        for n, (status, agent) in enumerate([("open", "A1"), ("resolved", "A1"), ("open", None)])
    ]
    runtime.ingest.ingest(
        workspace.id, "support_tickets", [RawRow(row, orjson.dumps(row).decode()) for row in snapshots]
    ).committed.result()
    context = runtime.pipe_context(workspace)
    window = Window(at(-60), at(3000))
    filters = activity.Filters(window, None, None, None, None, None, at(as_of_minute))
    facts = activity.quality_from_facts(context, filters, "ticket_id")
    assert facts is not None
    from_log = activity.quality_from_log(context, filters)
    assert _quality(facts) == _quality(from_log)
    # The pipe counts every matched ticket, and the rates over those with a log, in each group.
    for by in (activity.GroupBy.AGENT, activity.GroupBy.NONE):
        answer = activity.resolution_quality(context, filters, by=by, unit=PeriodUnit.WEEK)
        assert {row["group"]: _counted(row) for row in answer.rows} == _quality_by(from_log, by)
    early = activity.Filters(window, None, None, None, None, None, at(-30))  # before every event
    assert activity.quality_from_facts(context, early) is None


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grouped_batches(), st.integers(450, 2000), st.booleans())
def test_time_per_category_from_facts_equals_the_log(
    runtime: Runtime, batch: list[tuple[History, str | None]], as_of_minute: int, business: bool
) -> None:
    """Per ticket and category: the time spent and whether it was visited (a visit over a closed
    calendar counts no business time but is still a visit)."""
    workspace, _, _ = load_grouped(runtime, batch)
    context = runtime.pipe_context(workspace)
    where = selection(context, {}, at(-60), at(3000))
    as_of = at(as_of_minute)
    facts = activity.category_time_from_facts(context, where, as_of=as_of, business_hours=business)
    log = activity.time_in_status_from_log(
        context, where, as_of=as_of, business_hours=business, by_category=True
    )
    assert facts is not None
    assert facts.labels == log.labels

    # Both list the tickets with a log, in the order the store returned them: compare as sets of rows.
    def as_rows(found: activity.TimeIn) -> list[tuple[str, list[int], list[bool]]]:
        ids = found.rows.column("ticket_id").to_pylist()
        return sorted(zip(ids, found.spent_ms.tolist(), found.visited.tolist(), strict=True))

    assert as_rows(facts) == as_rows(log)
    early = activity.category_time_from_facts(context, where, as_of=at(-30), business_hours=business)
    assert early is None
