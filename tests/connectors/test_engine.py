"""The sync engine on real stores (both engines) with a scripted source: cursors advance only after
a page is committed, a failure between pages resumes with nothing lost or doubled, two runs of one
connection never overlap, repeated failures raise an alert (webhook and SMTP on 127.0.0.1), credentials are
sealed at rest and never shown or logged, source times and agent names are normalized, and the
scheduler runs what is due."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from supportlens.auth.tokens import Scope
from supportlens.config import Settings
from supportlens.connectors.base import SourceAgent, SourcePage
from supportlens.connectors.engine import ConnectorKind, SyncEngine
from supportlens.connectors.http import RateBudget, SourceUnavailable
from supportlens.connectors.scheduler import SyncScheduler
from supportlens.connectors.store import AlreadyRunning, StoredConnection
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKET_EVENTS
from supportlens.tickets.records import now_ms
from tests.api.conftest import Api, open_api
from tests.connectors.harness import sync_engine
from tests.fakes.server import serve_app
from tests.notify.fakes import smtp_server

TOKEN = "desk-secret-token-42"


@dataclass
class Script:
    """A source of ``pages`` tickets, two per page; ``fail_after``: pages served before it breaks."""

    pages: int = 4
    fail_after: int | None = None
    asked: list[str | None] = field(default_factory=list)  # cursors the engine resumed from

    def page(self, number: int) -> SourcePage:
        tickets = [
            {
                "ticket_id": f"D{number}-{i}",
                "agent_id": "Sarah  Johnson" if i == 0 else "agent-2",
                "priority": "high",
                "status": "open",
                "created_at": f"2026-11-0{1 + number % 9}T09:00:00",  # source-local (no offset)
                "updated_at": f"2026-11-0{1 + number % 9}T10:00:00",
            }
            for i in range(2)
        ]
        events = [
            {
                "event_id": f"desk:{t['ticket_id']}:1",
                "ticket_id": t["ticket_id"],
                "at": t["created_at"],
                "type": "created",
                "actor_type": "customer",
                "status": "open",
            }
            for t in tickets
        ]
        agents = [
            SourceAgent("Sarah  Johnson", "Sarah  Johnson", "sarah@example.com"),
            SourceAgent("agent-2", "Sarah Jonson"),
        ]
        return SourcePage(
            tickets=tickets, events=events, agents=agents, fetched=2, cursor=str(number), total=self.pages * 2
        )


class ScriptedConnector:
    kind = "desk"

    def __init__(self, script: Script) -> None:
        self._script = script

    def pages(self, cursor: str | None, *, start: Any) -> Iterator[SourcePage]:
        self._script.asked.append(cursor)
        first = 0 if cursor is None else int(cursor) + 1
        for number in range(first, self._script.pages):
            if self._script.fail_after is not None and number >= self._script.fail_after:
                raise SourceUnavailable(f"GET /tickets: 503 (token {TOKEN} was sent)")
            yield self._script.page(number)


def _engine(runtime: Runtime, script: Script, settings: Settings | None = None) -> SyncEngine:
    kind = ConnectorKind(
        "desk",
        lambda connection, client: ScriptedConnector(script),
        RateBudget(10, 1.0),
        lambda connection: {"headers": {"Authorization": f"Bearer {connection.credentials['token']}"}},
    )
    return sync_engine(runtime, kind, alert_after=2, settings=settings or runtime.settings)


@pytest.fixture
def api(engine_name: str, tmp_path: Path) -> Iterator[Api]:
    yield from open_api(
        engine_name, tmp_path, sla_evaluator_interval_seconds=0, sync_check_interval_seconds=0
    )


def _connection(api: Api, **fields: Any) -> StoredConnection:
    return api.runtime.connections.create(
        api.workspace_id,
        kind="desk",
        name=fields.pop("name", "main desk"),
        base_url="http://127.0.0.1:9",
        credentials={"token": TOKEN},
        schedule_hours=fields.pop("schedule_hours", 4.0),
        timezone=fields.pop("timezone", "America/Halifax"),
        options={},
    )


def _tickets(api: Api) -> dict[str, dict[str, Any]]:
    rows = api.client.get(
        "/v0/pipes/ticket_details.json",
        params={"created_after": "2026-10-01", "limit": 1000},
        headers=api.headers(),
    ).json()["data"]
    return {row["ticket_id"]: row for row in rows}


def test_a_failure_between_pages_resumes_with_nothing_lost_or_doubled(api: Api) -> None:
    script = Script(pages=5, fail_after=3)
    engine = _engine(api.runtime, script)
    connection = _connection(api)
    failed = engine.run(api.workspace_id, connection.id)
    assert failed.status == "failed"
    assert (failed.pages, failed.written) == (3, 12)  # 3 pages of 2 tickets and 2 events
    assert api.runtime.connections.cursor(connection.id) == "2"  # the last committed page
    assert TOKEN not in " ".join(failed.errors)
    assert "[redacted]" in failed.errors[-1]
    script.fail_after = None
    resumed = engine.run(api.workspace_id, connection.id)
    assert resumed.status == "succeeded"
    assert script.asked == [None, "2"]
    assert resumed.pages == 2
    tickets = _tickets(api)
    assert len(tickets) == 10
    assert api.runtime.engine.count(TICKET_EVENTS, api.workspace_id) == 10
    # A full sync reads everything again and changes nothing.
    again = engine.run(api.workspace_id, connection.id, full=True)
    assert script.asked[-1] is None
    assert again.pages == 5
    assert _tickets(api) == tickets
    runs = api.client.get(f"/v1/connections/{connection.id}/runs", headers=api.headers()).json()
    assert [(r["status"], r["full"], r["pages"]) for r in runs["runs"]] == [
        ("succeeded", True, 5),
        ("succeeded", False, 2),
        ("failed", False, 3),
    ]


def test_times_in_the_source_timezone_and_agent_aliases(api: Api) -> None:
    script = Script(pages=1)
    engine = _engine(api.runtime, script)
    connection = _connection(api)
    api.runtime.aliases.set_alias(api.workspace_id, "sarah johnson", "agent-sarah")
    engine.run(api.workspace_id, connection.id)
    tickets = _tickets(api)
    # 09:00 in Halifax (AST, UTC-4 in November) is 13:00 UTC.
    assert tickets["D0-0"]["created_at"].startswith("2026-11-01 13:00:00")
    assert tickets["D0-0"]["agent_id"] == "agent-sarah"
    suggestions = api.client.get("/v1/agent-aliases/suggestions", headers=api.headers()).json()
    assert [(s["first"]["id"], s["second"]["id"]) for s in suggestions] == [("Sarah  Johnson", "agent-2")]
    api.client.put("/v1/agent-aliases/agent-2", json={"agent_id": "agent-sarah"}, headers=api.headers())
    assert api.client.get("/v1/agent-aliases/suggestions", headers=api.headers()).json() == []


def test_two_runs_of_one_connection_never_overlap(api: Api) -> None:
    connection = _connection(api)
    store = api.runtime.connections
    first = store.start_run(connection, full=False, trigger="cli")
    with pytest.raises(AlreadyRunning):
        store.start_run(connection, full=False, trigger="schedule")
    assert store.get(api.workspace_id, connection.id).running
    # A run whose process died leaves a lease that expires; the next run takes over.
    with store._transaction() as conn:
        conn.execute("UPDATE connections SET lease_until = 0 WHERE id = ?", (connection.id,))
    second = store.start_run(connection, full=False, trigger="schedule")
    first.status = "failed"
    store.finish_run(first)  # the dead run's late finish does not free the new run's lease
    assert store.get(api.workspace_id, connection.id).running
    second.status = "succeeded"
    store.finish_run(second)
    assert not store.get(api.workspace_id, connection.id).running


def test_repeated_failures_raise_one_alert_per_run_past_the_threshold(api: Api) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> Response:
        received.append(orjson.loads(await request.body()))
        return Response(status_code=204)

    hooks = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with serve_app(hooks) as url, smtp_server() as (inbox, port):
        settings = api.runtime.settings.model_copy(
            update={
                "sync_alert_webhook_url": f"{url}/hook",
                "sync_alert_emails": ["ops@acme.example"],
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_security": "none",
            }
        )
        script = Script(pages=2, fail_after=0)
        engine = _engine(api.runtime, script, settings)
        connection = _connection(api)
        for _ in range(3):
            assert engine.run(api.workspace_id, connection.id).status == "failed"
    assert [body["consecutive_failures"] for body in received] == [2, 3]
    assert TOKEN not in orjson.dumps(received).decode()
    assert [mail.rcpt_tos for mail in inbox.received] == [["ops@acme.example"]] * 2
    assert "main desk" in str(inbox.received[0].message["Subject"])
    assert TOKEN not in inbox.received[-1].message.get_content()
    alerts = api.client.get(f"/v1/connections/{connection.id}/alerts", headers=api.headers()).json()
    assert [(a["consecutive_failures"], a["delivered"]) for a in alerts] == [
        (3, ["event", "webhook", "email"]),
        (2, ["event", "webhook", "email"]),
    ]
    script.fail_after = None
    assert engine.run(api.workspace_id, connection.id).status == "succeeded"
    assert api.runtime.connections.get(api.workspace_id, connection.id).consecutive_failures == 0


def test_credentials_are_sealed_at_rest_and_never_shown(api: Api, tmp_path: Path) -> None:
    api.runtime.sync = _engine(api.runtime, Script(pages=1))
    body = {
        "kind": "desk",
        "name": "Acme desk",
        "base_url": "https://acme.example.com",
        "credentials": {"token": TOKEN},
        "timezone": "America/Halifax",
    }
    created = api.client.post("/v1/connections", json=body, headers=api.headers())
    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["credentials_set"] == ["token"]
    assert TOKEN not in created.text
    assert TOKEN not in api.client.get("/v1/connections", headers=api.headers()).text
    raw = (
        sqlite3.connect(api.runtime.settings.metadata_path)
        .execute("SELECT credentials FROM connections")
        .fetchone()[0]
    )
    assert TOKEN.encode() not in raw
    assert api.runtime.connections.open(api.workspace_id, shown["id"]).credentials == {"token": TOKEN}
    # Field-level errors; admin only.
    bad_zone = api.client.post(
        "/v1/connections", json={**body, "timezone": "Mars/Base"}, headers=api.headers()
    )
    assert [e["field"] for e in bad_zone.json()["errors"]] == ["timezone"]
    unknown = api.client.post("/v1/connections", json={**body, "kind": "faxdesk"}, headers=api.headers())
    assert [e["field"] for e in unknown.json()["errors"]] == ["kind"]
    assert api.client.post("/v1/connections", json=body, headers=api.headers()).status_code == 409
    assert api.client.get("/v1/connections", headers=api.headers(api.token(Scope.READ))).status_code == 403
    started = api.client.post(f"/v1/connections/{shown['id']}/sync", headers=api.headers())
    assert started.status_code == 202


def test_the_scheduler_runs_what_is_due_once(api: Api) -> None:
    script = Script(pages=1)
    api.runtime.sync = engine = _engine(api.runtime, script)
    due = _connection(api, name="hourly", schedule_hours=1.0)
    _connection(api, name="paused", schedule_hours=1.0)
    api.runtime.connections.update(api.workspace_id, "paused", enabled=False)
    scheduler = SyncScheduler(api.runtime.connections, engine)
    now = now_ms()
    assert scheduler.run_due(now) == 1  # the paused one never runs
    assert scheduler.run_due(now + timedelta(minutes=30)) == 0  # not due again yet
    assert scheduler.run_due(now + timedelta(minutes=61)) == 1
    assert len(script.asked) == 2
    # A restart keeps the schedule: the last run is stored.
    assert api.runtime.connections.get(api.workspace_id, due.id).last_run_at is not None
