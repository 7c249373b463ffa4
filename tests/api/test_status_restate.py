"""PUT /v1/status-categories restates the workspace's stored tickets in the background: the
response is the one it always was, and the tickets follow the new names shortly after."""

from __future__ import annotations

import time
from typing import Any

import orjson

from supportlens.runtime import Runtime
from tests.api.conftest import Api
from tests.ingest.test_restate import AFTER, BEFORE, EVENTS, SNAPSHOTS, derived, stored

WINDOW = "start_date=2024-01-01&end_date=2024-12-31"


def _post(api: Api, datasource: str, rows: list[dict[str, Any]]) -> None:
    response = api.client.post(
        f"/v0/events?name={datasource}&wait=true",
        content=b"\n".join(orjson.dumps(row) for row in rows),
        headers=api.headers(),
    )
    assert response.json()["quarantined_rows"] == 0, response.text


def _resolved(api: Api) -> int:
    response = api.client.get(f"/v0/pipes/ticket_metrics.json?{WINDOW}", headers=api.headers())
    return int(response.json()["data"][0]["resolved_tickets"])


def _eventually(runtime: Runtime, workspace_id: str, expected: dict[str, tuple[Any, ...]]) -> None:
    deadline = time.monotonic() + 30
    while derived(stored(runtime, workspace_id)) != expected:
        assert time.monotonic() < deadline, derived(stored(runtime, workspace_id))
        time.sleep(0.05)


def _put(api: Api, names: dict[str, str]) -> dict[str, Any]:
    response = api.client.put("/v1/status-categories", json={"names": names}, headers=api.headers())
    assert response.status_code == 200, response.text
    answered: dict[str, Any] = response.json()
    assert answered == api.client.get("/v1/status-categories", headers=api.headers()).json()
    return answered


def test_new_status_names_restate_stored_tickets(api: Api) -> None:
    _post(api, "ticket_events", EVENTS)
    _post(api, "support_tickets", SNAPSHOTS)
    before = stored(api.runtime, api.workspace_id)
    assert derived(before) == BEFORE
    assert _resolved(api) == 1

    answered = _put(api, {"Shipped": "solved"})
    assert {"name": "shipped", "category": "solved", "custom": True} in answered["data"]
    _eventually(api.runtime, api.workspace_id, AFTER)
    assert _resolved(api) == 3
    after = stored(api.runtime, api.workspace_id)

    # The same names again queue nothing; an explicit second restatement changes nothing either.
    assert _put(api, {"Shipped": "solved"}) == answered
    assert api.runtime.writer.restate(api.workspace_id).result() == 4
    assert stored(api.runtime, api.workspace_id) == after

    # Removing the name restates the tickets back.
    _put(api, {})
    _eventually(api.runtime, api.workspace_id, BEFORE)
    assert stored(api.runtime, api.workspace_id) == before
    assert _resolved(api) == 1


def test_refused_names_restate_nothing(api: Api) -> None:
    _post(api, "support_tickets", SNAPSHOTS)
    before = stored(api.runtime, api.workspace_id)
    response = api.client.put(
        "/v1/status-categories",
        json={"names": {"Shipped": "solved", "shipped": "open"}},
        headers=api.headers(),
    )
    assert response.status_code == 422
    assert api.runtime.writer.restate(api.workspace_id).result() == 3
    assert stored(api.runtime, api.workspace_id) == before
