"""``/v1`` configuration through the in-process ASGI client: calendars, group calendars, iCal holidays,
status names and business-time checks, with problem details for every error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from supportlens.auth.tokens import Scope
from supportlens.configuration.repository import MAX_STATUS_NAME_LENGTH, MAX_STATUS_NAMES
from tests.api.conftest import Api, open_api

PROBLEM = "application/problem+json"
WEEKDAYS = [
    {"weekday": day, "start": "09:00", "end": "17:00"}
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
]
BERLIN: dict[str, Any] = {"name": "Berlin office", "timezone": "Europe/Berlin", "windows": WEEKDAYS}
ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    "BEGIN:VEVENT\r\nUID:1\r\nDTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261227\r\n"
    "SUMMARY:Christmas\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """Configuration does not depend on the analytics engine: DuckDB only (the status test runs both)."""
    yield from open_api("duckdb", tmp_path)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def field_errors(response: httpx.Response) -> dict[str, str]:
    body = problem(response, 422)
    return {error["field"]: error["message"] for error in body["errors"]}


def create(api: Api, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    response = api.client.post("/v1/calendars", json=body, headers=api.headers(token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/calendars/{created['id']}"
    return created


def test_calendar_crud(api: Api) -> None:
    created = create(api, BERLIN)
    assert created["name"] == "Berlin office"
    assert created["default"] is True  # the first calendar
    assert created["versions"][0]["timezone"] == "Europe/Berlin"
    assert created["versions"][0]["windows"][0] == {"weekday": "monday", "start": "09:00", "end": "17:00"}
    url = f"/v1/calendars/{created['id']}"
    assert api.client.get(url, headers=api.headers()).json() == created

    listed = api.client.get("/v1/calendars", headers=api.headers()).json()
    assert listed == {"data": [created], "total": 1}

    changed = {**BERLIN, "name": "Berlin", "windows": WEEKDAYS[:1], "groups": ["G1"]}
    replaced = api.client.put(url, json=changed, headers=api.headers()).json()
    assert (replaced["name"], replaced["groups"], replaced["default"]) == ("Berlin", ["G1"], True)
    assert len(replaced["versions"][0]["windows"]) == 1
    assert replaced["created_at"] == created["created_at"]

    duplicate = api.client.post("/v1/calendars", json={**BERLIN, "name": "BERLIN"}, headers=api.headers())
    assert "already exists" in problem(duplicate, 409)["detail"]

    assert api.client.delete(url, headers=api.headers()).status_code == 204
    problem(api.client.get(url, headers=api.headers()), 404)
    problem(api.client.delete(url, headers=api.headers()), 404)
    assert api.client.get("/v1/calendars", headers=api.headers()).json() == {"data": [], "total": 0}


def test_default_switching_and_group_calendars(api: Api) -> None:
    berlin = create(api, BERLIN)
    night = create(
        api,
        {
            "name": "Night shift",
            "timezone": "UTC",
            "windows": [{"weekday": d, "start": "22:00", "end": "06:00"} for d in range(7)],
        },
    )
    assert night["default"] is False

    def check(at: str, group: str | None = None) -> dict[str, Any]:
        params = {"at": at} | ({"group_id": group} if group else {})
        response = api.client.get("/v1/business-hours/check", params=params, headers=api.headers())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    # Monday 2026-01-05 23:00 UTC: midnight in Berlin, the middle of the night shift.
    assert check("2026-01-05T23:00:00Z") == {
        "at": "2026-01-05T23:00:00Z",
        "open": False,
        "calendar": "Berlin office",
    }
    assert check("2026-01-05T10:00:00+01:00")["open"] is True

    # The default can only be switched, never left empty: deleting it is refused while others exist.
    problem(api.client.delete(f"/v1/calendars/{berlin['id']}", headers=api.headers()), 409)
    switched = api.client.post(f"/v1/calendars/{night['id']}/default", headers=api.headers())
    assert switched.status_code == 200
    assert switched.json()["default"] is True
    assert api.client.get(f"/v1/calendars/{berlin['id']}", headers=api.headers()).json()["default"] is False
    assert check("2026-01-05T23:00:00Z") == {
        "at": "2026-01-05T23:00:00Z",
        "open": True,
        "calendar": "Night shift",
    }

    # A group with its own calendar; other groups keep the default.
    assigned = api.client.put(
        "/v1/groups/G-DE/calendar", json={"calendar_id": berlin["id"]}, headers=api.headers()
    )
    assert assigned.json() == {"group_id": "G-DE", "calendar_id": berlin["id"]}
    assert check("2026-01-05T23:00:00Z", "G-DE")["calendar"] == "Berlin office"
    assert check("2026-01-05T23:00:00Z", "G-other")["calendar"] == "Night shift"
    assert api.client.get(f"/v1/calendars/{berlin['id']}", headers=api.headers()).json()["groups"] == ["G-DE"]
    problem(
        api.client.put("/v1/groups/G-DE/calendar", json={"calendar_id": "nope"}, headers=api.headers()), 404
    )
    blank = api.client.put(
        "/v1/groups/%20/calendar", json={"calendar_id": berlin["id"]}, headers=api.headers()
    )
    assert "blank" in field_errors(blank)["group_id"]
    assert "calendar_id" in field_errors(
        api.client.put("/v1/groups/G-DE/calendar", json={}, headers=api.headers())
    )


def test_business_minutes_between(api: Api) -> None:
    def between(**params: str) -> httpx.Response:
        response: httpx.Response = api.client.get(
            "/v1/business-hours/between", params=params, headers=api.headers()
        )
        return response

    # No calendar yet: Monday to Friday 09:00-17:00 in the workspace's timezone (UTC).
    week = between(start="2026-01-05", end="2026-01-12").json()
    assert week == {
        "start": "2026-01-05T00:00:00Z",
        "end": "2026-01-12T00:00:00Z",
        "calendar": "Default business hours",
        "business_minutes": 5 * 8 * 60,
        "calendar_minutes": 7 * 24 * 60,
    }
    create(
        api,
        {
            **BERLIN,
            "holidays": [{"date": "2026-01-06", "start": "12:00", "end": "24:00", "name": "Half day"}],
        },
    )
    # Berlin is UTC+1 in January: Monday 08:00-16:00 UTC open, Tuesday only 08:00-11:00 UTC.
    two_days = between(start="2026-01-05T00:00:00Z", end="2026-01-07T00:00:00Z").json()
    assert (two_days["calendar"], two_days["business_minutes"]) == ("Berlin office", (8 + 3) * 60)
    assert field_errors(between(start="2026-01-07", end="2026-01-05")) == {"end": "must not be before start"}
    assert "ten years" in field_errors(between(start="2000-01-01", end="2030-01-01"))["end"]
    assert "start" in field_errors(between(start="yesterday", end="2030-01-01"))
    assert "end" in field_errors(between(start="2026-01-05"))


def test_ical_upload(api: Api) -> None:
    created = create(api, BERLIN)
    url = f"/v1/calendars/{created['id']}/holidays/ical"
    calendar_headers = api.headers() | {"Content-Type": "text/calendar; charset=utf-8"}
    response = api.client.post(url, content=ICS, headers=calendar_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["holidays_added"] == 2
    assert [h["date"] for h in body["calendar"]["versions"][0]["holidays"]] == ["2026-12-25", "2026-12-26"]
    assert api.client.get(f"/v1/calendars/{created['id']}", headers=api.headers()).json() == body["calendar"]
    christmas = api.client.get(
        "/v1/business-hours/check", params={"at": "2026-12-25T10:00:00Z"}, headers=api.headers()
    )
    assert christmas.json()["open"] is False

    again = api.client.post(url, content=ICS, headers=calendar_headers).json()
    assert again["holidays_added"] == 0

    assert "body" in field_errors(api.client.post(url, content="not a calendar", headers=calendar_headers))
    problem(api.client.post(url, content=ICS, headers=api.headers()), 415)
    problem(api.client.post("/v1/calendars/nope/holidays/ical", content=ICS, headers=calendar_headers), 404)


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (
            {"windows": [*WEEKDAYS, {"weekday": "funday", "start": "09:00", "end": "17:00"}]},
            "versions[0].windows[5].weekday",
            "monday",
        ),
        (
            {"windows": [WEEKDAYS[0], {"weekday": 1, "start": "09:00", "end": "17:61"}]},
            "versions[0].windows[1].end",
            "HH:MM",
        ),
        ({"timezone": "Europe/Atlantis"}, "versions[0].timezone", "unknown timezone"),
        (
            {"valid_from": "2026-06-01", "valid_until": "2026-01-01"},
            "versions[0].valid_until",
            "before valid_from",
        ),
        (
            {"holidays": [{"date": "2026-12-24", "start": "14:00", "end": "12:00"}]},
            "versions[0].holidays[0].end",
            "after",
        ),
    ],
)
def test_invalid_calendars_are_422_problem_details_naming_the_field(
    api: Api, change: dict[str, Any], field: str, says: str
) -> None:
    existing = create(api, BERLIN)
    version = {key: value for key, value in BERLIN.items() if key != "name"} | change
    body = {"name": "x", "versions": [version]}
    response = api.client.post("/v1/calendars", json=body, headers=api.headers())
    found = field_errors(response)
    assert says in found[field], found
    assert field in response.json()["detail"]
    # The shorthand names the fields as they were sent.
    shorthand = api.client.post("/v1/calendars", json={**BERLIN, **change}, headers=api.headers())
    assert field.removeprefix("versions[0].") in field_errors(shorthand)
    # A PUT validates the same way, and the refused body changes nothing.
    url = f"/v1/calendars/{existing['id']}"
    assert field in field_errors(api.client.put(url, json=body, headers=api.headers()))
    assert api.client.get("/v1/calendars", headers=api.headers()).json()["data"] == [existing]


def test_malformed_bodies_are_problem_details(api: Api) -> None:
    headers = api.headers() | {"Content-Type": "application/json"}
    assert "body" in field_errors(api.client.post("/v1/calendars", content=b"{not json", headers=headers))
    assert "body" in field_errors(api.client.post("/v1/calendars", content=b"[1, 2]", headers=headers))
    assert "name" in field_errors(
        api.client.post("/v1/calendars", json={"timezone": "UTC", "windows": []}, headers=headers)
    )
    problem(api.client.get("/v1/no-such-resource", headers=headers), 404)
    problem(api.client.get("/v1/calendars"), 401)


def test_workspaces_do_not_see_each_other(api: Api) -> None:
    mine = create(api, BERLIN)
    other = api.runtime.metadata.create_workspace("beta")
    _, theirs = api.runtime.metadata.create_token(other.id, "admin", {Scope.ADMIN})
    url = f"/v1/calendars/{mine['id']}"
    problem(api.client.get(url, headers=api.headers(theirs)), 404)
    problem(api.client.put(url, json=BERLIN, headers=api.headers(theirs)), 404)
    problem(api.client.delete(url, headers=api.headers(theirs)), 404)
    problem(api.client.post(f"{url}/default", headers=api.headers(theirs)), 404)
    problem(
        api.client.put(
            "/v1/groups/G1/calendar", json={"calendar_id": mine["id"]}, headers=api.headers(theirs)
        ),
        404,
    )
    assert api.client.get("/v1/calendars", headers=api.headers(theirs)).json()["total"] == 0
    # The same name is free in another workspace.
    assert create(api, BERLIN, theirs)["default"] is True
    assert api.client.get(url, headers=api.headers()).json() == mine


def test_scopes(api: Api) -> None:
    reader = api.token(Scope.READ)
    appender = api.token(Scope.APPEND)
    created = create(api, BERLIN)
    url = f"/v1/calendars/{created['id']}"
    assert api.client.get(url, headers=api.headers(reader)).status_code == 200
    assert api.client.get("/v1/status-categories", headers=api.headers(reader)).status_code == 200
    assert (
        api.client.get("/v1/business-hours/check?at=2026-01-05", headers=api.headers(reader)).status_code
        == 200
    )
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/v1/calendars", {**BERLIN, "name": "other"}),
        ("PUT", url, BERLIN),
        ("DELETE", url, None),
        ("POST", f"{url}/default", None),
        ("PUT", "/v1/groups/G1/calendar", {"calendar_id": created["id"]}),
        ("PUT", "/v1/status-categories", {"names": {}}),
    ]
    for method, path, body in writes:
        response = api.client.request(method, path, json=body, headers=api.headers(reader))
        assert "admin" in problem(response, 403)["detail"], (method, path)
    problem(api.client.get(url, headers=api.headers(appender)), 403)
    assert api.client.get(url, headers=api.headers()).json() == created  # nothing changed


def test_status_categories_round_trip(api: Api) -> None:
    listed = api.client.get("/v1/status-categories", headers=api.headers()).json()
    assert listed["categories"] == ["new", "open", "pending", "on_hold", "solved", "closed"]
    assert {"name": "waiting for customer", "category": "pending", "custom": False} in listed["data"]
    assert not any(entry["custom"] for entry in listed["data"])

    update = {"names": {"Waiting on Vendor": "on_hold", "Resolved": "closed"}}
    answered = api.client.put("/v1/status-categories", json=update, headers=api.headers()).json()
    assert answered == api.client.get("/v1/status-categories", headers=api.headers()).json()
    assert {"name": "waiting on vendor", "category": "on_hold", "custom": True} in answered["data"]
    assert {"name": "resolved", "category": "closed", "custom": True} in answered[
        "data"
    ]  # overrides the default
    assert answered["total"] == listed["total"] + 1

    bad = api.client.put(
        "/v1/status-categories", json={"names": {"Waiting on Vendor": "parked"}}, headers=api.headers()
    )
    assert "on_hold" in field_errors(bad)['names["Waiting on Vendor"]']
    clash = api.client.put(
        "/v1/status-categories",
        json={"names": {"Parked": "pending", "parked": "open"}},
        headers=api.headers(),
    )
    assert "twice" in field_errors(clash)["names"]
    assert "names" in field_errors(api.client.put("/v1/status-categories", json={}, headers=api.headers()))
    for names, problem in (
        ({f"status {n}": "open" for n in range(MAX_STATUS_NAMES + 1)}, "at most 1000 status names"),
        ({"x" * (MAX_STATUS_NAME_LENGTH + 1): "open"}, "at most 100 characters"),
        ({"on\u0000hold": "on_hold"}, "control character"),
        ({"on\nhold": "on_hold"}, "control character"),
    ):
        refused = api.client.put("/v1/status-categories", json={"names": names}, headers=api.headers())
        assert problem in field_errors(refused)["names"]
    # Refused updates changed nothing.
    assert api.client.get("/v1/status-categories", headers=api.headers()).json() == answered


@pytest.fixture
def both_engines(engine_name: str, tmp_path: Path) -> Iterator[Api]:
    yield from open_api(engine_name, tmp_path)


def test_custom_status_names_change_ticket_time_metrics(both_engines: Api) -> None:
    api = both_engines
    events = [
        {
            "event_id": "e1",
            "ticket_id": "T1",
            "at": "2026-01-05T10:00:00Z",
            "type": "created",
            "actor_type": "customer",
            "status": "Open",
        },
        {
            "event_id": "e2",
            "ticket_id": "T1",
            "at": "2026-01-05T10:30:00Z",
            "type": "status_changed",
            "actor_type": "agent",
            "to": "Waiting on Vendor",
        },
    ]
    posted = api.client.post(
        "/v0/events?name=ticket_events&wait=true",
        content=b"\n".join(orjson.dumps(event) for event in events),
        headers=api.headers(),
    )
    assert posted.json() == {"successful_rows": 2, "quarantined_rows": 0}

    def metrics() -> dict[str, Any]:
        response = api.client.get(
            "/v0/pipes/ticket_time_metrics.json",
            params={"ticket_id": "T1", "as_of": "2026-01-05T11:30:00Z"},
            headers=api.headers(),
        )
        assert response.status_code == 200, response.text
        (row,) = response.json()["data"]
        return dict(row)

    before = metrics()
    assert (before["status_category"], before["on_hold_minutes"]) == ("open", 0)  # unmapped: work in progress
    assert before["agent_work_minutes"] == 90

    put = api.client.put(
        "/v1/status-categories", json={"names": {"Waiting on Vendor": "on_hold"}}, headers=api.headers()
    )
    assert put.status_code == 200
    after = metrics()
    assert (after["status_category"], after["on_hold_minutes"], after["agent_work_minutes"]) == (
        "on_hold",
        60,
        30,
    )
