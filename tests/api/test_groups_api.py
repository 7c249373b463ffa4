"""Groups over HTTP on both engines: a ticket's group comes from its events (the latest that set
it) or its snapshot; every aggregate filters and groups by it, tokens can be fixed to one, and a
group's calendar is the ticket's calendar for business minutes and for SLA policies without a
calendar of their own."""

from __future__ import annotations

from typing import Any

import orjson

from supportlens.auth.tokens import Scope
from tests.api.conftest import Api

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
OFFICE = {
    "name": "Office",
    "default": True,
    "timezone": "UTC",
    "windows": [{"weekday": d, "start": "09:00", "end": "17:00"} for d in _WEEKDAYS],
}
# New York is on EDT (UTC-4) until 2024-11-03: Friday's 22:00-06:00 shift is Sat 02:00-10:00 UTC.
NIGHT = {
    "name": "Night shift",
    "groups": ["night"],
    "timezone": "America/New_York",
    "windows": [{"weekday": d, "start": "22:00", "end": "06:00"} for d in _WEEKDAYS],
}
POLICY = {
    "name": "Everyone",
    "targets": {"default": [{"type": "first_response", "minutes": 60, "business_hours": True}]},
}
AS_OF = "2024-11-05T00:00:00Z"
WINDOW = f"start_date=2024-11-01&end_date=2024-11-02&as_of={AS_OF}"


def _event(event_id: str, ticket_id: str, at: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "ticket_id": ticket_id, "at": at, "type": kind, **fields}


# N1 (night): created Fri 20:00 UTC, answered Sat 02:30 UTC = 30 minutes into the night shift.
# D1 (day, no calendar of its own): created Fri 16:30 UTC, answered Mon 09:15 = 30 + 15 minutes.
EVENTS = [
    _event(
        "n1", "N1", "2024-11-01T20:00:00Z", "created", actor_type="customer", group_id="night", status="open"
    ),
    _event("n2", "N1", "2024-11-02T02:30:00Z", "reply", actor_type="agent", actor_id="A1"),
    _event(
        "d1", "D1", "2024-11-01T16:30:00Z", "created", actor_type="customer", group_id="day", status="open"
    ),
    _event("d2", "D1", "2024-11-04T09:15:00Z", "reply", actor_type="agent", actor_id="A2"),
]
SNAPSHOT = {"ticket_id": "S1", "created_at": "2024-11-01T12:00:00Z", "status": "open", "group_id": "night"}


def _load(api: Api) -> None:
    for body in (OFFICE, NIGHT):
        assert api.client.post("/v1/calendars", json=body, headers=api.headers()).status_code == 201
    assert api.client.post("/v1/sla-policies", json=POLICY, headers=api.headers()).status_code == 201
    for name, rows in (("ticket_events", EVENTS), ("support_tickets", [SNAPSHOT])):
        body = b"\n".join(orjson.dumps(row) for row in rows)
        response = api.client.post(f"/v0/events?name={name}&wait=true", content=body, headers=api.headers())
        assert response.json()["quarantined_rows"] == 0, response.text


def _pipe(api: Api, name: str, query: str, token: str | None = None) -> list[dict[str, Any]]:
    response = api.client.get(f"/v0/pipes/{name}.json?{query}", headers=api.headers(token))
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def _by_ticket(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["ticket_id"]: row for row in rows}


def test_business_minutes_follow_the_group_calendar(api: Api) -> None:
    _load(api)
    rows = _by_ticket(_pipe(api, "ticket_time_metrics", f"business_hours=true&as_of={AS_OF}"))
    assert {t: (r["group_id"], r["first_response_minutes"]) for t, r in rows.items()} == {
        "N1": ("night", 30.0),
        "D1": ("day", 45.0),
        "S1": ("night", None),
    }
    # 20:00 UTC Friday is outside the night shift (it opens at 02:00 UTC), 16:30 inside office hours.
    assert rows["N1"]["created_outside_business_hours"] is True
    assert rows["D1"]["created_outside_business_hours"] is False
    calendar = _by_ticket(_pipe(api, "ticket_time_metrics", f"as_of={AS_OF}"))
    assert calendar["N1"]["first_response_minutes"] == 390.0


def test_sla_policy_without_calendar_follows_the_group_calendar(api: Api) -> None:
    _load(api)
    for ticket_id, due_at, actual in (
        ("N1", "2024-11-02T03:00:00Z", "30 minutes"),
        ("D1", "2024-11-04T09:30:00Z", "45 minutes"),
    ):
        url = f"/v1/support/tickets/{ticket_id}/sla?as_of={AS_OF}"
        response = api.client.get(url, headers=api.headers()).json()["sla_status"]["response_time"]
        assert (response["due_at"], response["actual"], response["status"]) == (due_at, actual, "met")


def test_every_aggregate_filters_and_groups_by_group(api: Api) -> None:
    _load(api)
    night = f"{WINDOW}&group_id=night"
    assert set(_by_ticket(_pipe(api, "ticket_time_metrics", f"group_id=night&as_of={AS_OF}"))) == {"N1", "S1"}
    assert {r["ticket_id"] for r in _pipe(api, "ticket_sla", night)} == {"N1", "S1"}
    statuses = {r["status"]: r["tickets"] for r in _pipe(api, "time_in_status", night)}
    assert statuses["open"] == 1  # N1; S1 has no activity log to measure
    replies = {
        r["group"]: r for r in _pipe(api, "reply_times", f"{WINDOW}&group_by=group&business_hours=true")
    }
    assert {g: (r["first_replies"], r["first_reply_mean_minutes"]) for g, r in replies.items()} == {
        "day": (1, 45.0),
        "night": (1, 30.0),
    }
    attainment = _pipe(api, "sla_attainment", f"{WINDOW}&group_by=group")
    assert {(r["group"], r["target_type"]): r["achieved"] for r in attainment} == {
        ("day", "first_response"): 1,
        ("night", "first_response"): 1,
    }
    for pipe in ("resolution_quality", "csat", "backlog", "sla_at_risk"):
        _pipe(api, pipe, night)  # accepted everywhere
    backlog = _pipe(api, "backlog", f"start_date=2024-11-01&end_date=2024-11-01&group_id=day&as_of={AS_OF}")
    assert [r["open_tickets"] for r in backlog] == [1]


def test_the_latest_group_wins_and_tokens_can_be_fixed_to_a_group(api: Api) -> None:
    _load(api)
    moved = _event("d3", "D1", "2024-11-04T10:00:00Z", "field_changed", field="group_id", to="night")
    response = api.client.post("/v0/events?name=ticket_events&wait=true", json=moved, headers=api.headers())
    assert response.json()["successful_rows"] == 1
    night_only = api.token(Scope.READ, fixed_filters={"group_id": "night"})
    seen = _by_ticket(_pipe(api, "ticket_time_metrics", f"business_hours=true&as_of={AS_OF}", night_only))
    assert set(seen) == {"N1", "D1", "S1"}
    # D1 now follows the night shift: Fri 16:30 UTC is outside it, and by its answer (Mon 04:15
    # EST, after the switch to winter time) only Friday night's shift had passed: 480 minutes.
    assert seen["D1"]["created_outside_business_hours"] is True
    assert seen["D1"]["first_response_minutes"] == 480
    other = api.token(Scope.READ, fixed_filters={"group_id": "day"})
    assert _pipe(api, "ticket_time_metrics", f"as_of={AS_OF}", other) == []
