"""``ticket_time_metrics`` on both engines equals the pure reference for every ticket, in calendar
and in business minutes of each ticket's own calendar (its group's, else the default), at any
evaluation time; snapshot-only tickets get what their timestamps say; parameters are checked."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.analytics.params import ParamError
from supportlens.auth.repository import Workspace
from supportlens.configuration.calendars import CalendarDefinition, to_schedule
from supportlens.domain.calendars import (
    CalendarSchedule,
    Schedule,
    business_ms,
    default_business_hours,
    is_open,
)
from supportlens.domain.events import TicketEvent
from supportlens.domain.metrics import minutes
from supportlens.domain.statuses import DEFAULT_STATUS_MAP, StatusCategory
from supportlens.domain.timeline import calendar_ms, ticket_time_metrics
from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from tests.domain.test_timeline import History, at, histories
from tests.ingest.test_ticket_events import _row

_NAMES = itertools.count()
CALENDAR = default_business_hours("UTC")
# Group calendars: a half-hour offset zone, and a DST zone with windows past midnight.
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
GROUP_CALENDARS: dict[str, CalendarDefinition] = {
    "india": CalendarDefinition.model_validate(
        {
            "name": "India",
            "groups": ["india"],
            "timezone": "Asia/Kolkata",
            "windows": [{"weekday": d, "start": "09:30", "end": "18:00"} for d in (*_WEEKDAYS, "saturday")],
        }
    ),
    "night": CalendarDefinition.model_validate(
        {
            "name": "Night shift",
            "groups": ["night"],
            "timezone": "America/New_York",
            "windows": [{"weekday": d, "start": "22:00", "end": "06:00"} for d in _WEEKDAYS],
        }
    ),
}


def _post(
    runtime: Runtime, workspace_id: str, rows: list[dict[str, Any]], datasource: str = "ticket_events"
) -> None:
    runtime.ingest.ingest(workspace_id, datasource, [RawRow(r, str(r)) for r in rows]).committed.result()


def _expected_row(
    events: list[TicketEvent], as_of: datetime, business: bool, calendar: Schedule = CALENDAR
) -> dict[str, Any]:
    clock = (lambda a, b: business_ms(calendar, a, b)) if business else calendar_ms
    expected = ticket_time_metrics(events, as_of=as_of, statuses=DEFAULT_STATUS_MAP, clock=clock)
    by_category = {c: expected.time_in_category_ms.get(c, 0) for c in StatusCategory}

    def total(*categories: StatusCategory) -> float | None:
        return minutes(sum(by_category[c] for c in categories))

    return {
        "status": expected.status,
        "status_category": expected.status_category.value,
        "ongoing": expected.ongoing,
        "first_response_minutes": minutes(expected.first_response_ms),
        "first_resolution_minutes": minutes(expected.first_resolution_ms),
        "full_resolution_minutes": minutes(expected.full_resolution_ms),
        "requester_wait_minutes": total(StatusCategory.NEW, StatusCategory.OPEN, StatusCategory.ON_HOLD),
        "agent_wait_minutes": total(StatusCategory.PENDING),
        "on_hold_minutes": total(StatusCategory.ON_HOLD),
        "agent_work_minutes": total(StatusCategory.NEW, StatusCategory.OPEN),
        **{f"in_{c.value}_minutes": minutes(by_category[c]) for c in StatusCategory},
        "reopens": expected.reopens,
        "agent_replies": expected.agent_replies,
        "one_touch": expected.one_touch,
        "first_contact_resolution": expected.first_contact_resolution,
        "created_outside_business_hours": not is_open(calendar, expected.created_at),
        "created_on_weekend": _on_weekend(calendar, expected.created_at),
        "minutes_in_status": {s: minutes(ms) for s, ms in expected.time_in_status_ms.items() if ms},
    }


def _on_weekend(calendar: Schedule, instant: datetime) -> bool:
    """Oracle: the local date of the first calendar version covering it has no window that day."""
    versions = calendar.versions if isinstance(calendar, CalendarSchedule) else (calendar,)
    for version in versions:
        local = instant.astimezone(ZoneInfo(version.timezone))
        if version.covers(local.date()):
            return local.weekday() not in {window.weekday for window in version.windows}
    return True


def grouped_batches() -> st.SearchStrategy[list[tuple[History, str | None]]]:
    """A few tickets' histories, each in no group, a group without a calendar, or GROUP_CALENDARS'."""
    groups = st.sampled_from([None, "east", *GROUP_CALENDARS])
    return st.lists(st.tuples(histories(), groups), min_size=1, max_size=6)


def load_grouped(
    runtime: Runtime, batch: list[tuple[History, str | None]]
) -> tuple[Workspace, dict[str, list[TicketEvent]], dict[str, Schedule]]:
    """A new workspace with office hours as its default calendar and the GROUP_CALENDARS, holding
    ticket ``T<i>`` for each (history, group) of ``batch``: its events, and the calendar it follows."""
    workspace = runtime.metadata.create_workspace(f"w{next(_NAMES)}")
    # The first calendar becomes the default: the office hours every other ticket follows.
    office = {
        "name": "Office",
        "timezone": "UTC",
        "windows": [{"weekday": d, "start": "09:00", "end": "17:00"} for d in _WEEKDAYS],
    }
    runtime.configuration.create_calendar(workspace.id, CalendarDefinition.model_validate(office))
    for definition in GROUP_CALENDARS.values():
        runtime.configuration.create_calendar(workspace.id, definition)
    tickets: dict[str, list[TicketEvent]] = {}
    calendars: dict[str, Schedule] = {}
    rows: list[dict[str, Any]] = []
    for index, (history, group) in enumerate(batch):
        ticket_id = f"T{index}"
        tickets[ticket_id] = [
            TicketEvent(
                **{
                    **{n: getattr(e, n) for n in TicketEvent.__slots__},
                    "ticket_id": ticket_id,
                    "event_id": f"{ticket_id}{e.event_id}",
                }
            )  # type: ignore[arg-type]
            for e in history.events
        ]
        own = GROUP_CALENDARS.get(group or "")
        calendars[ticket_id] = to_schedule(own) if own else CALENDAR
        mine = [_row(e) for e in tickets[ticket_id]]
        mine[0]["group_id"] = group  # any event may say which group the ticket is in
        rows += mine
    _post(runtime, workspace.id, rows)
    return workspace, tickets, calendars


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    grouped_batches(),
    st.integers(0, 600),
    st.booleans(),
)
def test_pipe_equals_reference(
    runtime: Runtime, batch: list[tuple[History, str | None]], as_of_minute: int, business: bool
) -> None:
    """Tickets of groups "india" and "night" follow their group's calendar, the rest ("east" has
    none of its own) the default."""
    workspace, tickets, calendars = load_grouped(runtime, batch)
    as_of = at(as_of_minute)
    query = {"as_of": as_of.isoformat(), "business_hours": str(business).lower(), "limit": "1000"}
    result = runtime.run_pipe("ticket_time_metrics", workspace, query)
    found = {row["ticket_id"]: row for row in result.rows}
    assert set(found) == set(tickets)
    for ticket_id, events in tickets.items():
        row = found[ticket_id]
        expected = _expected_row(events, as_of, business, calendars[ticket_id])
        actual = {k: row[k] for k in expected}
        actual["minutes_in_status"] = {s: m for s, m in orjson.loads(row["minutes_in_status"]).items() if m}
        assert actual == expected, ticket_id
        assert row["has_activity_log"] is True


def test_snapshot_only_ticket_and_filters(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("w")
    snapshot = {
        "ticket_id": "S1",
        "created_at": "2024-03-08 16:00:00",
        "first_response_at": "2024-03-11 09:30:00",
        "resolved_at": "2024-03-11 10:00:00",
        "status": "closed",
        "agent_id": "A1",
        "category": "billing",
    }
    _post(runtime, workspace.id, [snapshot], "support_tickets")
    _post(
        runtime,
        workspace.id,
        [
            {
                "event_id": "e",
                "ticket_id": "E1",
                "at": "2024-03-08T10:00:00Z",
                "type": "created",
                "agent_id": "A2",
            }
        ],
    )
    calendar = runtime.run_pipe("ticket_time_metrics", workspace, {"as_of": "2024-03-12"}).rows
    assert [row["ticket_id"] for row in calendar] == ["S1", "E1"]  # newest first
    snapshot_row = calendar[0]
    assert snapshot_row["has_activity_log"] is False
    assert snapshot_row["first_response_minutes"] == (2 * 24 * 60 + 17 * 60 + 30)
    assert snapshot_row["full_resolution_minutes"] == (2 * 24 * 60 + 18 * 60)
    assert snapshot_row["in_open_minutes"] is None
    assert snapshot_row["reopens"] is None
    business = runtime.run_pipe(
        "ticket_time_metrics", workspace, {"as_of": "2024-03-12", "business_hours": "true"}
    ).rows
    # Friday 16:00 to Monday 09:30 is 1.5 business hours (Mon-Fri 09:00-17:00 by default).
    assert business[0]["first_response_minutes"] == 90
    assert business[0]["created_outside_business_hours"] is False
    assert business[0]["created_on_weekend"] is False
    only = runtime.run_pipe("ticket_time_metrics", workspace, {"agent_id": "A2", "as_of": "2024-03-12"}).rows
    assert [row["ticket_id"] for row in only] == ["E1"]
    # Created 03-08 10:00, evaluated at the end of 03-12 (a plain date as_of means its end).
    assert only[0]["in_new_minutes"] == 4 * 24 * 60 + 14 * 60


def test_weekend_and_after_hours_flags_of_snapshot_only_tickets(runtime: Runtime) -> None:
    """Tickets posted only as snapshots (as HubSpot's are synced) get both flags from the workspace
    calendar (Monday to Friday, 09:00-17:00, in the workspace's timezone) like any other."""
    workspace = runtime.metadata.create_workspace("w", timezone="America/Halifax")
    created = {
        "SUN": "2024-03-10T15:00:00Z",  # Sunday 11:00 in Halifax (ADT)
        "SAT-LATE": "2024-03-10T02:30:00Z",  # Saturday 22:30 in Halifax, Sunday in UTC
        "MON-NIGHT": "2024-03-12T01:00:00Z",  # Monday 22:00 in Halifax
        "TUE-DAY": "2024-03-12T14:00:00Z",  # Tuesday 11:00 in Halifax
    }
    rows = [{"ticket_id": t, "created_at": at, "status": "open"} for t, at in created.items()]
    _post(runtime, workspace.id, rows, "support_tickets")
    found = {
        row["ticket_id"]: (row["created_on_weekend"], row["created_outside_business_hours"])
        for row in runtime.run_pipe("ticket_time_metrics", workspace, {"as_of": "2024-03-13"}).rows
    }
    assert found == {
        "SUN": (True, True),
        "SAT-LATE": (True, True),
        "MON-NIGHT": (False, True),
        "TUE-DAY": (False, False),
    }


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ({"business_hours": "maybe"}, "business_hours"),
        ({"as_of": "soon"}, "as_of"),
        ({"as_of": "export_end"}, "as_of"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_parameters_name_themselves(runtime: Runtime, query: dict[str, str], name: str) -> None:
    workspace = runtime.metadata.create_workspace("w")
    with pytest.raises(ParamError, match=name):
        runtime.run_pipe("ticket_time_metrics", workspace, query)


def test_as_of_now_is_the_default(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("w")
    _post(
        runtime,
        workspace.id,
        [{"event_id": "e", "ticket_id": "E1", "at": "2024-03-08T10:00:00Z", "type": "created"}],
    )
    row = runtime.run_pipe("ticket_time_metrics", workspace, {}).rows[0]
    assert datetime.fromisoformat(row["as_of"].replace(" ", "T")).replace(tzinfo=UTC) > datetime(
        2026, 1, 1, tzinfo=UTC
    )
    assert row["ongoing"] is True


def test_no_ticket_at_all(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("empty")
    result = runtime.run_pipe("ticket_time_metrics", workspace, {"business_hours": "true"})
    assert list(result.rows) == []
    assert result.rows_before_limit == 0
