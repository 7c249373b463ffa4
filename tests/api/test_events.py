"""The Events API: formats, validation and quarantine, durability, limits and auth."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import orjson
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from supportlens.app import create_app
from supportlens.auth.tokens import Scope
from supportlens.store.schema import TICKET_SNAPSHOTS
from tests.api.conftest import Api, open_api
from tests.conftest import make_settings

SEED_EVENT = b"""{
  "ticket_id": "T12345",
  "customer_id": "C789",
  "agent_id": "A123",
  "category": "billing",
  "priority": "high",
  "status": "resolved",
  "created_at": "2023-06-15 09:30:00",
  "first_response_at": "2023-06-15 09:45:00",
  "resolved_at": "2023-06-15 11:30:00",
  "satisfaction_score": 4,
  "tags": ["invoice", "payment"]
}"""

WINDOW = "start_date=2023-01-01&end_date=2023-12-31"


def post(api: Api, body: bytes, *, wait: bool = True, **headers: str) -> tuple[int, dict[str, object]]:
    response = api.client.post(
        f"/v0/events?name=support_tickets&wait={'true' if wait else 'false'}",
        content=body,
        headers={**api.headers(), **headers},
    )
    return response.status_code, response.json()


def test_seed_example_is_accepted_verbatim(api: Api) -> None:
    assert post(api, SEED_EVENT) == (200, {"successful_rows": 1, "quarantined_rows": 0})
    data = api.client.get(f"/v0/pipes/ticket_details.json?{WINDOW}", headers=api.headers()).json()["data"]
    assert data[0]["ticket_id"] == "T12345"
    assert data[0]["response_time_minutes"] == 15.0
    assert data[0]["resolution_time_minutes"] == 120.0
    assert data[0]["tags"] == ["invoice", "payment"]


def test_bad_rows_are_quarantined_and_the_rest_accepted(api: Api) -> None:
    lines = [
        b'{"ticket_id": "ok1", "created_at": "2023-06-15T09:30:00Z"}',
        b'{"created_at": "2023-06-15 09:30:00"}',
        b'{"ticket_id": "t2", "created_at": "yesterday"}',
        b'{"ticket_id": "t3", "created_at": "2023-06-15 09:30:00", "satisfaction_score": "4"}',
        b'{"ticket_id": "t4", "created_at": "2023-06-15 09:30:00", "satisfaction_score": 9}',
        b'{"ticket_id": "t5", "created_at": "2023-06-15 09:30:00", "resolved_at": "2023-06-15 09:00:00"}',
        b'{"ticket_id": "t6", "created_at": "2023-06-15 09:30:00", "tags": "a,b"}',
        b'{"ticket_id": "t7", "created_at": "2023-06-15 09:30:00"',
        b"[1, 2]",
        b'{"ticket_id": "ok2", "created_at": 1686821400000, "priority": "CRITICAL"}',
    ]
    assert post(api, b"\n".join(lines)) == (200, {"successful_rows": 2, "quarantined_rows": 8})
    body = api.client.get("/v0/quarantine/support_tickets.json", headers=api.headers()).json()
    assert body["rows"] == 8
    by_raw = {row["raw"]: (row["column_name"], row["error"]) for row in body["data"]}
    assert by_raw[lines[1].decode()] == ("ticket_id", "is required")
    assert by_raw[lines[2].decode()][0] == "created_at"
    assert by_raw[lines[3].decode()] == ("satisfaction_score", "expected a number, got str")
    assert "outside the scale" in by_raw[lines[4].decode()][1]
    assert by_raw[lines[5].decode()] == ("resolved_at", "is before created_at")
    assert by_raw[lines[6].decode()][0] == "tags"
    assert by_raw[lines[7].decode()][1].startswith("malformed JSON")
    assert by_raw[lines[8].decode()] == ("", "expected a JSON object, got list")
    for fmt in ("csv", "ndjson", "parquet"):
        response = api.client.get(f"/v0/quarantine/support_tickets.{fmt}", headers=api.headers())
        assert response.status_code == 200
    table = pq.read_table(
        io.BytesIO(api.client.get("/v0/quarantine/support_tickets.parquet", headers=api.headers()).content)
    )
    assert table.num_rows == 8
    details = api.client.get(f"/v0/pipes/ticket_details.json?{WINDOW}&priority=urgent", headers=api.headers())
    assert [row["ticket_id"] for row in details.json()["data"]] == ["ok2"]


def test_gzip_json_array_and_reposting(api: Api) -> None:
    first = {
        "ticket_id": "T1",
        "created_at": "2023-06-15 09:30:00",
        "status": "open",
        "updated_at": "2023-06-15 10:00:00",
    }
    newer = {
        **first,
        "status": "Resolved",
        "resolved_at": "2023-06-15 12:00:00",
        "updated_at": "2023-06-15 12:00:00",
    }
    older = {**first, "status": "pending", "updated_at": "2023-06-15 11:00:00"}
    body = gzip.compress(orjson.dumps([first, newer]))
    assert post(api, body, **{"Content-Encoding": "gzip"})[0] == 200
    assert post(api, orjson.dumps(older))[0] == 200  # arrives late, is older: must not win
    data = api.client.get(f"/v0/pipes/ticket_metrics.json?{WINDOW}", headers=api.headers()).json()["data"][0]
    assert (data["total_tickets"], data["resolved_tickets"], data["avg_resolution_time_minutes"]) == (
        1,
        1,
        150.0,
    )


def test_limits_and_errors(api: Api) -> None:
    assert api.client.post("/v0/events?name=support_tickets", content=SEED_EVENT).status_code == 401
    bad = api.client.post(
        "/v0/events?name=support_tickets", content=SEED_EVENT, headers=api.headers("sl_nope")
    )
    assert bad.status_code == 401
    assert "error" in bad.json()
    unknown = api.client.post("/v0/events?name=nope", content=SEED_EVENT, headers=api.headers())
    assert unknown.status_code == 404
    reader = api.token(Scope.READ)
    assert (
        api.client.post(
            "/v0/events?name=support_tickets", content=SEED_EVENT, headers=api.headers(reader)
        ).status_code
        == 403
    )
    broken_gzip = post(api, b"not gzip", **{"Content-Encoding": "gzip"})
    assert broken_gzip[0] == 400


def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    for api in open_api("duckdb", tmp_path, max_body_bytes=1000):
        assert post(api, b'{"ticket_id": "x", "created_at": "2023-01-01"}' + b" " * 1000)[0] == 413
        bomb = gzip.compress(b"\n".join([SEED_EVENT.replace(b"\n", b"")] * 100))
        assert post(api, bomb, **{"Content-Encoding": "gzip"})[0] == 413


def test_queued_rows_reach_disk_on_clean_shutdown(engine_name: str, tmp_path: Path) -> None:
    settings = make_settings(engine_name, tmp_path)
    lines = b"\n".join(
        orjson.dumps({"ticket_id": f"Q{i}", "created_at": "2023-06-15 09:30:00"}) for i in range(5000)
    )
    with TestClient(create_app(settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        workspace = runtime.metadata.create_workspace("w")
        _, admin = runtime.metadata.create_token(workspace.id, "a", {Scope.ADMIN})
        for _ in range(4):
            response = client.post(
                "/v0/events?name=support_tickets", content=lines, headers={"Authorization": f"Bearer {admin}"}
            )
            assert response.status_code == 202
    with TestClient(create_app(settings)) as client:
        query = client.get(f"/v0/pipes/ticket_metrics.json?{WINDOW}&token={admin}")
        assert query.json()["data"][0]["total_tickets"] == 5000
        # Every posting is kept in the snapshot log; the current state holds each ticket once.
        assert client.app.state.runtime.engine.count(TICKET_SNAPSHOTS, workspace.id) == 20000  # type: ignore[attr-defined]
