"""Regressions of what the API fuzzing found (issue 7): each request here once answered 500 or broke
the OpenAPI document.

* An instant whose offset carries it past year 1 or 9999 (``0001-01-01T00:00:00+14:00``,
  ``9999-12-31T23:59:59-12:00``) raised OverflowError in ``datetime.astimezone``: a 500 for the whole
  Events API request (every row of the batch lost), for every pipe's date parameters, the /v1 business
  hours and SLA routes, and Freshdesk imports.  Now such an instant is out of range like any other
  before 1970 or from 2200: the row is quarantined naming its column, the parameter is a 400/422.
* The document listed each pipe's ``format`` path parameter twice, left the pipes' and the
  quarantine's answers (four formats) and every /v0 error undocumented, promised a 422 that /v0 never
  sends (it answers 400), and declared no security scheme.
* An integer past 64 bits in free-form JSON (``POST /v1/support/tickets`` with ``custom_fields:
  {"": -9223372036854775809}``) raised in orjson when the ticket was stored: a 500.  NaN was stored as
  null.  Free-form JSON fields now refuse both with a 422 naming the field and the place in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from supportlens.ingest.freshdesk import parse_freshdesk_timestamp
from supportlens.ingest.timestamps import TimestampError, parse_query_date, parse_timestamp
from tests.reliability.fixtures_api import PUBLIC_PATHS, Served, Tenant, serve

EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "0001-01-01 00:00:00+01:00"]


@pytest.mark.parametrize("value", EDGES)
def test_instants_past_the_calendar_are_out_of_range(value: str) -> None:
    with pytest.raises(TimestampError, match="outside"):
        parse_timestamp(value)
    with pytest.raises(TimestampError, match="outside"):
        parse_query_date(value, end_of_day=False)


@pytest.mark.parametrize("value", ["01-01-0001 00:00:00 +1400", "31-12-9999 23:59:59 -1200"])
def test_freshdesk_instants_past_the_calendar_are_out_of_range(value: str) -> None:
    with pytest.raises(TimestampError, match="outside"):
        parse_freshdesk_timestamp(value)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Tenant]]:
    directory: Path = tmp_path_factory.mktemp("regressions")
    for server in serve("duckdb", directory):
        tenant = server.tenant("regressions")
        server.post(tenant, "support_tickets", [{"ticket_id": "T1", "created_at": "2026-01-05 10:00:00"}])
        yield server, tenant


@pytest.mark.parametrize("value", EDGES)
def test_a_row_with_such_an_instant_is_quarantined_and_the_batch_kept(
    served: tuple[Served, Tenant], value: str
) -> None:
    server, tenant = served
    good = {"ticket_id": "T2", "created_at": "2026-01-06 10:00:00"}
    for datasource, bad, column in (
        ("support_tickets", {"ticket_id": "T3", "created_at": value}, "created_at"),
        (
            "support_tickets",
            {"ticket_id": "T3", "created_at": "2026-01-01", "resolved_at": value},
            "resolved_at",
        ),
        ("ticket_events", {"event_id": "e1", "ticket_id": "T3", "type": "created", "at": value}, "at"),
    ):
        rows = [good, bad] if datasource == "support_tickets" else [bad]
        counts = server.post(tenant, datasource, rows)
        assert counts == {"successful_rows": len(rows) - 1, "quarantined_rows": 1}
        newest = server.client.get(
            f"/v0/quarantine/{datasource}.json?limit=1", headers=tenant.headers()
        ).json()
        assert newest["data"][0]["column_name"] == column
        assert newest["data"][0]["raw"] == orjson.dumps(bad).decode()


@pytest.mark.parametrize("value", EDGES)
def test_query_parameters_with_such_an_instant_are_client_errors(
    served: tuple[Served, Tenant], value: str
) -> None:
    server, tenant = served
    for url, params, status, named in (
        ("/v0/pipes/ticket_metrics.json", {"start_date": value}, 400, "start_date"),
        ("/v0/pipes/ticket_details.json", {"created_before": value}, 400, "created_before"),
        ("/v0/pipes/backlog.json", {"as_of": value}, 400, "as_of"),
        ("/v0/pipes/ticket_time_metrics.csv", {"as_of": value}, 400, "as_of"),
        ("/v1/business-hours/check", {"at": value}, 422, "at"),
        ("/v1/business-hours/between", {"start": value, "end": "2026-01-01"}, 422, "start"),
        ("/v1/business-hours/between", {"start": "2026-01-01", "end": value}, 422, "end"),
        ("/v1/support/tickets/T1/sla", {"as_of": value}, 422, "as_of"),
    ):
        response = server.client.get(url, params=params, headers=tenant.headers())
        assert response.status_code == status, (url, params, response.text)
        error = response.json()
        assert named in (error.get("error") or error.get("detail")), (url, error)


def test_freshdesk_exports_with_such_instants(served: tuple[Served, Tenant]) -> None:
    server, tenant = served
    url = "/v1/imports/freshdesk-activities"
    bad_metadata = {"metadata": {"start_at": "01-01-0001 00:00:00 +1400"}, "activities_data": []}
    response = server.client.post(url, content=orjson.dumps(bad_metadata), headers=tenant.headers())
    assert response.status_code == 422, response.text
    assert "metadata.start_at" in response.json()["detail"]
    activity = {
        "ticket_id": 7,
        "performed_at": "31-12-9999 23:59:59 -1200",
        "performer_type": "user",
        "performer_id": 1,
        "activity": {"new_ticket": True, "status": "Open"},
    }
    response = server.client.post(
        url, content=orjson.dumps({"activities_data": [activity]}), headers=tenant.headers()
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejected_activities"] == 1


def test_the_document_describes_what_the_api_does(served: tuple[Served, Tenant]) -> None:
    server, _ = served
    document = server.client.get("/openapi.json").json()
    assert {"HTTPBearer", "APIKeyQuery"} <= set(document["components"]["securitySchemes"])
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            parameters = [(p["name"], p["in"]) for p in operation.get("parameters", [])]
            assert len(parameters) == len(set(parameters)), (where, parameters)
            responses = operation["responses"]
            if path in PUBLIC_PATHS:
                continue
            assert operation.get("security"), where
            assert "401" in responses, where
            if path.startswith("/v0/"):
                assert "422" not in responses, where  # /v0 answers invalid requests with a 400
                assert "400" in responses or path == "/v0/pipes", where
            else:
                assert "422" in responses, where
            if path.startswith(("/v0/pipes/", "/v0/quarantine/")):
                content = responses["200"]["content"]
                assert set(content) == {
                    "application/json",
                    "text/csv",
                    "application/x-ndjson",
                    "application/vnd.apache.parquet",
                }
                formats = next(p for p in operation["parameters"] if p["name"] == "format")
                assert formats["schema"]["enum"] == ["csv", "json", "ndjson", "parquet"]


TOO_BIG = 2**64  # one past the largest integer orjson writes
TOO_SMALL = -(2**63) - 1


def test_numbers_no_store_can_keep_are_refused_by_every_free_form_field(
    served: tuple[Served, Tenant],
) -> None:
    server, tenant = served
    created = server.client.post("/v1/support/tickets", json={"title": "kept"}, headers=tenant.headers())
    assert created.status_code == 201, created.text
    ticket = created.json()["ticket"]["id"]
    raw = tenant.headers() | {"Content-Type": "application/json"}
    for method, url, body, field, place in (
        (
            "POST",
            "/v1/support/tickets",
            {"title": "t", "custom_fields": {"": TOO_SMALL}},
            "custom_fields",
            '[""]',
        ),
        ("POST", "/v1/support/tickets", {"title": "t", "metadata": {"a": [1, TOO_BIG]}}, "metadata", "a[1]"),
        ("PATCH", f"/v1/support/tickets/{ticket}", {"metadata": {"n": TOO_BIG}}, "metadata", "n"),
        ("PATCH", f"/v1/support/tickets/{ticket}", {"custom_fields": {"n": TOO_BIG}}, "custom_fields", "n"),
        (
            "POST",
            f"/v1/support/tickets/{ticket}/comments",
            {"content": "c", "author": {"type": "agent", "id": "a1"}, "metadata": {"n": TOO_BIG}},
            "metadata",
            "n",
        ),
        (
            "POST",
            f"/v1/support/tickets/{ticket}/escalate",
            {"escalation_level": 1, "reason": "r", "metadata": {"n": {"deep": TOO_BIG}}},
            "metadata",
            "n.deep",
        ),
        (
            "POST",
            f"/v1/support/tickets/{ticket}/notify",
            {"type": "email", "recipients": [{"email": "a@b.example"}], "variables": {"n": TOO_BIG}},
            "variables",
            "n",
        ),
        ("PATCH", "/v1/connections/nope", {"options": {"n": TOO_BIG}}, "options", "n"),
    ):
        response = server.client.request(method, url, json=body, headers=tenant.headers())
        assert response.status_code == 422, (url, body, response.text)
        errors = {error["field"]: error["message"] for error in response.json()["errors"]}
        assert f"{place}: integers must be within the 64-bit range" in errors.get(field, ""), (url, errors)
    nan = b'{"title": "t", "metadata": {"score": NaN}}'
    response = server.client.post("/v1/support/tickets", content=nan, headers=raw)
    assert response.status_code == 422, response.text
    assert (
        response.json()["errors"]
        == [{"field": "metadata", "message": "Value error, score: NaN and Infinity are not JSON values"}]
        or "NaN" in response.text
    )
    # Nothing refused was stored: the only ticket is the one created first.
    listed = server.client.get("/v1/support/tickets", headers=tenant.headers()).json()
    assert [t["id"] for t in listed["tickets"]] == [ticket]
