"""The pipes over HTTP: output formats, typed parameters, scopes, grants and fixed filters."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qsl

import orjson
import pyarrow.parquet as pq
import pytest

from supportlens.analytics.pipes import PIPES
from supportlens.auth.tokens import Scope
from tests.api.conftest import Api

WINDOW = "start_date=2023-01-01&end_date=2023-12-31"
# A fixed evaluation time, so that repeated calls of history-based pipes agree.
FIXED = f"{WINDOW}&as_of=2024-01-01"
TICKETS = [
    {
        "ticket_id": "T1",
        "customer_id": "C789",
        "agent_id": "A1",
        "category": "billing",
        "priority": "high",
        "status": "resolved",
        "created_at": "2023-06-15 09:30:00",
        "first_response_at": "2023-06-15 09:45:00",
        "resolved_at": "2023-06-15 11:30:00",
        "satisfaction_score": 4,
        "tags": ["invoice"],
    },
    {
        "ticket_id": "T2",
        "customer_id": "C1",
        "agent_id": "A2",
        "category": "technical",
        "priority": "low",
        "status": "open",
        "created_at": "2023-06-16 09:30:00",
    },
    {
        "ticket_id": "T3",
        "customer_id": "C789",
        "agent_id": "A2",
        "category": "Technical",
        "priority": "urgent",
        "status": "closed",
        "created_at": "2023-07-01 00:00:00",
        "first_response_at": "2023-07-01 00:10:00",
        "resolved_at": "2023-07-01 01:00:00",
    },
]


HISTORY = [
    {
        "event_id": "h1",
        "ticket_id": "T4",
        "at": "2023-07-02T09:00:00Z",
        "type": "created",
        "actor_type": "customer",
        "status": "open",
        "priority": "high",
        "category": "billing",
        "agent_id": "A1",
        "channel": "email",
        "group_id": "G-EU",
    },
    {
        "event_id": "h2",
        "ticket_id": "T4",
        "at": "2023-07-02T09:30:00Z",
        "type": "reply",
        "actor_type": "agent",
    },
    {
        "event_id": "h3",
        "ticket_id": "T4",
        "at": "2023-07-02T10:00:00Z",
        "type": "status_changed",
        "to": "pending",
    },
    {"event_id": "h4", "ticket_id": "T4", "at": "2023-07-03T10:00:00Z", "type": "customer_message"},
    {
        "event_id": "h5",
        "ticket_id": "T4",
        "at": "2023-07-03T10:00:00Z",
        "type": "status_changed",
        "to": "open",
    },
    {
        "event_id": "h6",
        "ticket_id": "T4",
        "at": "2023-07-03T11:00:00Z",
        "type": "reply",
        "actor_type": "agent",
    },
    {
        "event_id": "h7",
        "ticket_id": "T4",
        "at": "2023-07-03T12:00:00Z",
        "type": "status_changed",
        "to": "solved",
    },
    {"event_id": "h8", "ticket_id": "T4", "at": "2023-07-03T12:05:00Z", "type": "rated", "score": 4},
]


@pytest.fixture
def loaded(api: Api) -> Api:
    body = b"\n".join(orjson.dumps(t) for t in TICKETS)
    response = api.client.post(
        "/v0/events?name=support_tickets&wait=true", content=body, headers=api.headers()
    )
    assert response.json() == {"successful_rows": 3, "quarantined_rows": 0}
    return api


@pytest.fixture
def with_history(loaded: Api) -> Api:
    """Plus one ticket with an activity log, so that the history-based pipes have rows too."""
    events = b"\n".join(orjson.dumps(e) for e in HISTORY)
    response = loaded.client.post(
        "/v0/events?name=ticket_events&wait=true", content=events, headers=loaded.headers()
    )
    assert response.json() == {"successful_rows": len(HISTORY), "quarantined_rows": 0}
    return loaded


@pytest.mark.parametrize("pipe", sorted(PIPES))
def test_every_format(with_history: Api, pipe: str) -> None:
    loaded = with_history
    as_json = loaded.client.get(f"/v0/pipes/{pipe}.json?{FIXED}", headers=loaded.headers())
    assert as_json.status_code == 200
    body = as_json.json()
    assert set(body) >= {"meta", "data", "rows", "statistics"}
    assert [m["name"] for m in body["meta"]] == [name for name, _ in PIPES[pipe].columns]
    assert body["rows"] == len(body["data"]) > 0
    assert set(body["statistics"]) == {"elapsed", "rows_read", "bytes_read"}
    as_csv = loaded.client.get(f"/v0/pipes/{pipe}.csv?{FIXED}", headers=loaded.headers())
    records = list(csv.reader(io.StringIO(as_csv.text)))
    assert records[0] == [m["name"] for m in body["meta"]]
    assert len(records) == body["rows"] + 1
    as_ndjson = loaded.client.get(f"/v0/pipes/{pipe}.ndjson?{FIXED}", headers=loaded.headers())
    assert [orjson.loads(line) for line in as_ndjson.text.splitlines()] == body["data"]
    as_parquet = loaded.client.get(f"/v0/pipes/{pipe}.parquet?{FIXED}", headers=loaded.headers())
    assert pq.read_table(io.BytesIO(as_parquet.content)).to_pylist() == body["data"]


def test_seed_semantics(loaded: Api) -> None:
    sla = loaded.client.get(f"/v0/pipes/sla_performance.json?{WINDOW}", headers=loaded.headers()).json()[
        "data"
    ]
    assert [row["priority"] for row in sla] == ["urgent", "high", "low"]
    low = sla[2]
    assert (low["met_response_sla"], low["response_sla_percentage"]) == (0, 0.0)  # unanswered never meets
    metrics = loaded.client.get(f"/v0/pipes/ticket_metrics.json?{WINDOW}", headers=loaded.headers()).json()[
        "data"
    ][0]
    assert metrics["avg_satisfaction_score"] == 4.0  # unrated tickets are left out, not zeros
    assert metrics["avg_first_response_time_minutes"] == 12.5
    assert (metrics["resolved_tickets"], metrics["open_tickets"]) == (2, 1)
    categories = loaded.client.get(
        f"/v0/pipes/category_analysis.json?{WINDOW}", headers=loaded.headers()
    ).json()
    assert categories["data"][0] == {
        "category": "technical",
        "ticket_count": 2,
        "percentage_of_total": 66.67,
        "avg_resolution_time_minutes": 60.0,
        "avg_response_time_minutes": 10.0,
        "avg_satisfaction_score": None,
    }
    details = loaded.client.get(
        "/v0/pipes/ticket_details.json?limit=1&offset=1", headers=loaded.headers()
    ).json()
    assert details["rows_before_limit_at_least"] == 3
    assert [row["ticket_id"] for row in details["data"]] == ["T2"]
    month = loaded.client.get(
        f"/v0/pipes/time_trends.json?{WINDOW}&time_interval=yyyy-MM", headers=loaded.headers()
    )
    periods = month.json()["data"]
    assert [p["time_period"] for p in periods][:7] == [f"2023-{m:02d}" for m in range(1, 8)]
    assert [p["ticket_count"] for p in periods][:7] == [0, 0, 0, 0, 0, 2, 1]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("ticket_details.json?limit=abc", "limit"),
        ("ticket_details.json?limit=0", "limit"),
        ("ticket_details.json?limit=10001", "limit"),
        ("ticket_details.json?offset=-1", "offset"),
        ("ticket_details.json?open_at=soon", "open_at"),
        ("ticket_details.json?age_min_days=1", "age_min_days"),
        ("ticket_details.json?open_at=2023-06-01&age_min_days=3&age_max_days=3", "age_max_days"),
        ("ticket_details.json?open_at=2023-06-01&age_max_days=0", "age_max_days"),
        ("ticket_details.json?created_weekday=8", "created_weekday"),
        ("ticket_details.json?created_weekday=monday", "created_weekday"),
        ("ticket_details.json?created_hour=24", "created_hour"),
        ("ticket_details.json?in_status_category=waiting", "in_status_category"),
        ("ticket_details.json?timezone=Mars/Olympus_Mons", "timezone"),
        ("ticket_metrics.json?start_date=yesterday", "start_date"),
        ("ticket_metrics.json?start_date=2023-02-30", "start_date"),
        ("ticket_metrics.json?start_date=2023-05-01&end_date=2023-04-01", "start_date"),
        ("time_trends.json?time_interval=fortnight", "time_interval"),
        ("time_trends.json?time_interval=MM-dd", "time_interval"),
        ("sla_performance.json?high_priority_response_sla=-5", "high_priority_response_sla"),
        ("sla_performance.json?high_priority_response_sla=soon", "high_priority_response_sla"),
        ("sla_performance.json?low_priority_resolution_sla=1e300", "low_priority_resolution_sla"),
        ("agent_performance.json?default_response_sla=inf", "default_response_sla"),
        ("time_trends.json?timezone=Mars/Olympus_Mons", "timezone"),
        ("arrivals.json?timezone=localtime", "timezone"),
        ("backlog.json?timezone=%2B02:00", "timezone"),
        ("csat.json?group_by=everything", "group_by"),
        ("backlog.json?group_by=agent", "group_by"),
        ("ticket_metrics.json?business_hours=sometimes", "business_hours"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(api: Api, query: str, parameter: str) -> None:
    response = api.client.get(f"/v0/pipes/{query}", headers=api.headers())
    assert response.status_code == 400
    assert f"'{parameter}'" in response.json()["error"]


def test_empty_parameter_means_not_given(loaded: Api) -> None:
    response = loaded.client.get(
        f"/v0/pipes/ticket_details.json?limit=&category=&{WINDOW}", headers=loaded.headers()
    )
    assert response.json()["rows"] == 3


def test_unknown_pipe_and_format_are_404(api: Api) -> None:
    assert api.client.get("/v0/pipes/nope.json", headers=api.headers()).status_code == 404
    assert api.client.get("/v0/pipes/ticket_metrics.xml", headers=api.headers()).status_code == 404


def test_scopes_grants_and_fixed_filters(loaded: Api) -> None:
    appender = loaded.token(Scope.APPEND)
    assert (
        loaded.client.get("/v0/pipes/ticket_metrics.json", headers=loaded.headers(appender)).status_code
        == 403
    )
    only_metrics = loaded.token(Scope.READ, pipes=frozenset({"ticket_metrics"}))
    assert loaded.client.get(f"/v0/pipes/ticket_metrics.json?token={only_metrics}").status_code == 200
    assert loaded.client.get(f"/v0/pipes/agent_performance.json?token={only_metrics}").status_code == 403
    customer = loaded.token(Scope.READ, fixed_filters={"customer_id": "C789"})
    metrics = loaded.client.get(f"/v0/pipes/ticket_metrics.json?{WINDOW}", headers=loaded.headers(customer))
    assert metrics.json()["data"][0]["total_tickets"] == 2
    widened = loaded.client.get(
        f"/v0/pipes/ticket_metrics.json?{WINDOW}&customer_id=C1", headers=loaded.headers(customer)
    )
    assert widened.json()["data"][0]["total_tickets"] == 0
    details = loaded.client.get(
        "/v0/pipes/ticket_details.json?ticket_id=T2", headers=loaded.headers(customer)
    )
    assert details.json()["rows"] == 0


def test_revoked_token_stops_at_once(loaded: Api) -> None:
    reader = loaded.token(Scope.READ)
    assert (
        loaded.client.get("/v0/pipes/ticket_metrics.json", headers=loaded.headers(reader)).status_code == 200
    )
    token = loaded.runtime.metadata.authenticate(reader)
    assert token is not None
    loaded.runtime.metadata.revoke(loaded.workspace_id, token.id)
    assert (
        loaded.client.get("/v0/pipes/ticket_metrics.json", headers=loaded.headers(reader)).status_code == 401
    )


def test_workspaces_are_isolated(loaded: Api) -> None:
    other = loaded.runtime.metadata.create_workspace("other")
    _, secret = loaded.runtime.metadata.create_token(other.id, "admin", {Scope.ADMIN})
    metrics = loaded.client.get(f"/v0/pipes/ticket_metrics.json?{WINDOW}", headers=loaded.headers(secret))
    assert metrics.json()["data"][0]["total_tickets"] == 0
    quarantine = loaded.client.get("/v0/quarantine/support_tickets.json", headers=loaded.headers(secret))
    assert quarantine.json()["rows"] == 0


def test_openapi_documents_every_pipe(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    for name, pipe in PIPES.items():
        operation = schema["paths"][f"/v0/pipes/{name}.{{format}}"]["get"]
        documented = {p["name"] for p in operation["parameters"]}
        assert documented >= {p.name for p in pipe.params}


@pytest.mark.parametrize("pipe", sorted(PIPES))
def test_every_pipe_answers_an_empty_selection(with_history: Api, pipe: str) -> None:
    """A filter that matches nothing, and a workspace with no tickets: an answer, never an error."""
    api = with_history
    nothing = api.client.get(f"/v0/pipes/{pipe}.json", params={"agent_id": "nobody"}, headers=api.headers())
    assert nothing.status_code == 200, nothing.text
    empty = api.runtime.metadata.create_workspace("empty")
    _, secret = api.runtime.metadata.create_token(empty.id, "reader", {Scope.READ})
    for fmt in ("json", "csv", "ndjson", "parquet"):
        answer = api.client.get(f"/v0/pipes/{pipe}.{fmt}", headers=api.headers(secret))
        assert answer.status_code == 200, answer.text


DASHBOARD_FILTERS = ("category", "priority", "agent_id", "channel", "group_id")


@pytest.mark.parametrize("pipe", sorted(PIPES))
def test_every_pipe_takes_every_dashboard_filter(with_history: Api, pipe: str) -> None:
    """The five filters of the dashboard apply to every pipe: T4, the one email ticket of group
    G-EU, is all a filter on either leaves (case-insensitive channel), and a value nobody has leaves
    nothing."""
    api = with_history
    assert {p.name for p in PIPES[pipe].params} >= set(DASHBOARD_FILTERS)

    def read(**filters: str) -> int:
        query = {**dict(parse_qsl(FIXED)), **filters}
        response = api.client.get(f"/v0/pipes/{pipe}.json", params=query, headers=api.headers())
        assert response.status_code == 200, response.text
        return int(response.json()["statistics"]["rows_read"])

    for name in DASHBOARD_FILTERS:
        assert read(**{name: "nobody"}) == 0, name
    if pipe != "sla_at_risk":  # reads the unresolved tickets only; T4 is solved
        assert read(channel="EMAIL") == read(group_id="G-EU") == 1


def test_arrivals_per_weekday_and_hour(loaded: Api) -> None:
    def cells(extra: str = "") -> dict[tuple[int, int], int]:
        response = loaded.client.get(f"/v0/pipes/arrivals.json?{WINDOW}{extra}", headers=loaded.headers())
        body = response.json()
        assert [(m["name"], m["type"]) for m in body["meta"]] == [
            ("weekday", "UInt8"),
            ("weekday_name", "String"),
            ("hour", "UInt8"),
            ("tickets", "UInt64"),
        ]
        rows = body["data"]
        assert [(r["weekday"], r["hour"]) for r in rows] == [(d, h) for d in range(1, 8) for h in range(24)]
        assert rows[0]["weekday_name"] == "Monday"
        assert rows[-1]["weekday_name"] == "Sunday"
        return {(r["weekday"], r["hour"]): r["tickets"] for r in rows if r["tickets"]}

    # T1 Thursday 09:30, T2 Friday 09:30, T3 Saturday 00:00 (UTC, the workspace's timezone).
    assert cells() == {(4, 9): 1, (5, 9): 1, (6, 0): 1}
    # New York in summer is UTC-4: T3 arrived on Friday evening.
    assert cells("&timezone=america/new_york") == {(4, 5): 1, (5, 5): 1, (5, 20): 1}
    assert cells("&timezone=Asia/Kolkata&category=technical") == {(5, 15): 1, (6, 5): 1}


def test_timezone_moves_time_trends_periods(loaded: Api) -> None:
    def days(extra: str) -> dict[str, int]:
        url = f"/v0/pipes/time_trends.json?start_date=2023-06-30&end_date=2023-07-01{extra}"
        rows = loaded.client.get(url, headers=loaded.headers()).json()["data"]
        return {r["time_period"]: r["ticket_count"] for r in rows}

    assert days("") == {"2023-06-30 00:00:00": 0, "2023-07-01 00:00:00": 1}
    # Dates without an offset stay UTC: the window is the same, its days are New York's.
    assert days("&timezone=America/New_York") == {
        "2023-06-29 00:00:00": 0,
        "2023-06-30 00:00:00": 1,
        "2023-07-01 00:00:00": 0,
    }


def test_business_hours_on_the_seed_pipes(loaded: Api) -> None:
    """Without calendars, business hours are Monday to Friday 09:00-17:00 of the workspace (UTC):
    T1 (Thursday 09:30, answered in 15 minutes, resolved in 2 hours) counts in full, T3 (Saturday)
    not at all."""

    def first(pipe: str, extra: str = "") -> dict[str, object]:
        url = f"/v0/pipes/{pipe}.json?{WINDOW}&business_hours=true{extra}"
        data: list[dict[str, object]] = loaded.client.get(url, headers=loaded.headers()).json()["data"]
        return data[0]

    metrics = first("ticket_metrics")
    assert (metrics["avg_first_response_time_minutes"], metrics["avg_resolution_time_minutes"]) == (7.5, 60.0)
    assert (metrics["median_first_response_time_minutes"], metrics["p90_resolution_time_minutes"]) == (
        7.5,
        108.0,
    )
    trend = first("time_trends", "&time_interval=year")
    assert (trend["avg_response_time_minutes"], trend["p90_response_time_minutes"]) == (7.5, 13.5)
    technical = first("category_analysis")
    assert (technical["category"], technical["avg_resolution_time_minutes"]) == ("technical", 0.0)
    agent = first("agent_performance", "&agent_id=A2&urgent_priority_response_sla=0")
    assert (agent["avg_response_time_minutes"], agent["met_response_sla"]) == (0.0, 1)
    calendar = loaded.client.get(
        f"/v0/pipes/agent_performance.json?{WINDOW}&agent_id=A2&urgent_priority_response_sla=0",
        headers=loaded.headers(),
    ).json()["data"][0]
    assert (calendar["avg_response_time_minutes"], calendar["met_response_sla"]) == (10.0, 0)


def test_sla_attainment_without_grouping(with_history: Api) -> None:
    def rows(group_by: str) -> list[dict[str, object]]:
        url = f"/v0/pipes/sla_attainment.json?{FIXED}&group_by={group_by}"
        data: list[dict[str, object]] = with_history.client.get(url, headers=with_history.headers()).json()[
            "data"
        ]
        return data

    by_type = rows("target_type")
    assert by_type
    assert rows("none") == [{**row, "group": None} for row in by_type]
