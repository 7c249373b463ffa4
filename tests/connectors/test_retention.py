"""Retention on real stores (both engines): a pass removes exactly the synced tickets whose newest
source time left the connection's window (state, snapshots and events), keeps everything else (the
Events API's tickets, another connection's recent copy of the same id), never overlaps a sync, is
logged in the run log, runs when due, and a connection's own window and ticket id prefix apply."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from supportlens.connectors.base import SourcePage
from supportlens.connectors.engine import ConnectorKind, SyncEngine, newest_times
from supportlens.connectors.http import RateBudget
from supportlens.connectors.retention import Retention
from supportlens.connectors.secrets import SecretBox
from supportlens.connectors.store import AlreadyRunning, ConnectionStore
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKET_EVENTS, TICKET_SNAPSHOTS, TICKETS
from supportlens.tickets.records import now_ms
from tests.api.conftest import Api, open_api
from tests.connectors.harness import sync_engine

NOW = now_ms()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


@dataclass
class Desk:
    """A source whose tickets were last updated ``age`` days ago, one page per ticket."""

    ages: dict[str, float]  # ticket id -> days since its last update
    read_from: list[datetime] = field(default_factory=list)

    def pages(self, cursor: str | None, *, start: datetime) -> Iterator[SourcePage]:
        self.read_from.append(start)
        for ticket_id, age in self.ages.items():
            updated = NOW - timedelta(days=age)
            created = updated - timedelta(days=2)
            yield SourcePage(
                tickets=[
                    {
                        "ticket_id": ticket_id,
                        "status": "resolved",
                        "priority": "normal",
                        "created_at": _iso(created),
                        "resolved_at": _iso(updated),
                        "updated_at": _iso(updated),
                    }
                ],
                events=[
                    {
                        "event_id": f"desk:{ticket_id}:created",
                        "ticket_id": ticket_id,
                        "at": _iso(created),
                        "type": "created",
                        "actor_type": "customer",
                        "status": "open",
                    },
                    {
                        "event_id": f"desk:{ticket_id}:resolved",
                        "ticket_id": ticket_id,
                        "at": _iso(updated),
                        "type": "status_changed",
                        "actor_type": "agent",
                        "actor_id": "a1",
                        "field": "status",
                        "from_value": "open",
                        "to_value": "resolved",
                    },
                ],
                fetched=1,
                cursor=ticket_id,
            )


class Connectors:
    """Each connection's desk, by connection name: the engine builds the connector per run."""

    def __init__(self) -> None:
        self.desks: dict[str, Desk] = {}

    def engine(self, runtime: Runtime) -> SyncEngine:
        def factory(connection: Any, client: Any) -> Desk:
            return self.desks[runtime.connections.get(connection.workspace_id, connection.id).name]

        return sync_engine(runtime, ConnectorKind("desk", factory, RateBudget(10, 1.0), lambda c: {}))


@pytest.fixture
def api(engine_name: str, tmp_path: Path) -> Iterator[Api]:
    yield from open_api(
        engine_name, tmp_path, sla_evaluator_interval_seconds=0, sync_check_interval_seconds=0
    )


def _connect(api: Api, connectors: Connectors, name: str, ages: dict[str, float], **options: Any) -> str:
    connectors.desks[name] = Desk(ages)
    return api.runtime.connections.create(
        api.workspace_id,
        kind="desk",
        name=name,
        base_url="http://127.0.0.1:9",
        credentials={"token": "t0ken"},
        schedule_hours=4.0,
        timezone="UTC",
        options=options,
    ).id


def _ids(api: Api, table: Any) -> set[str]:
    rows = api.runtime.engine.fetch(
        f"SELECT DISTINCT ticket_id FROM {api.runtime.engine.dialect.table(table)}"
        f" WHERE workspace_id = '{api.workspace_id}'",
        {},
        timeout=30,
    ).rows
    return {row[0] for row in rows}


def _listed(api: Api) -> set[str]:
    rows = api.client.get(
        "/v0/pipes/ticket_details.json",
        params={"created_after": "2000-01-01", "limit": 1000},
        headers=api.headers(),
    ).json()["data"]
    return {row["ticket_id"] for row in rows}


def test_a_pass_removes_exactly_what_left_the_window(api: Api) -> None:
    connectors = Connectors()
    engine = connectors.engine(api.runtime)
    retention = api.runtime.retention
    old = _connect(api, connectors, "old desk", {"T-old": 400, "T-edge": 366, "T-new": 10, "T-shared": 500})
    # Another connection wrote T-shared recently (its own copy): the old desk's window must not take it.
    other = _connect(api, connectors, "other desk", {"T-shared": 3})
    for connection in (old, other):
        assert engine.run(api.workspace_id, connection).status == "succeeded"
    # A ticket of the Events API, as old as any: retention never touches what no connection wrote.
    posted = api.client.post(
        "/v0/events?name=support_tickets&wait=true",
        json={"ticket_id": "API-1", "status": "open", "created_at": _iso(NOW - timedelta(days=900))},
        headers=api.headers(),
    )
    assert posted.status_code == 200, posted.text
    everything = {"T-old", "T-edge", "T-new", "T-shared", "API-1"}
    assert _listed(api) == everything

    run = retention.prune(api.workspace_id, old, now=NOW)
    assert (run.status, run.trigger, run.removed) == ("succeeded", "retention", 2)
    kept = everything - {"T-old", "T-edge"}
    assert _listed(api) == kept
    assert _ids(api, TICKETS) == _ids(api, TICKET_SNAPSHOTS) == kept
    assert _ids(api, TICKET_EVENTS) == kept - {"API-1"}  # posted as a snapshot: no events
    # Logged with the syncs, and nothing left to do: a second pass removes nothing.
    runs = api.client.get(f"/v1/connections/{old}/runs", headers=api.headers()).json()["runs"]
    assert (runs[0]["trigger"], runs[0]["removed"], runs[0]["status"]) == ("retention", 2, "succeeded")
    listed = api.client.get(f"/v1/connections/{old}", headers=api.headers()).json()
    assert listed["last_pruned_at"] is not None
    assert retention.prune(api.workspace_id, old, now=NOW).removed == 0
    # Once the other connection's copy ages out too, both go.
    later = NOW + timedelta(days=400)
    assert retention.prune(api.workspace_id, old, now=later).removed == 2  # T-new, T-shared
    assert retention.prune(api.workspace_id, other, now=later).removed == 1
    assert _listed(api) == {"API-1"}
    # A synced ticket removed and updated again at the source comes back with the next sync.
    connectors.desks["old desk"].ages = {"T-new": 1}
    assert engine.run(api.workspace_id, old).status == "succeeded"
    assert _listed(api) == {"API-1", "T-new"}


def test_a_pass_never_overlaps_a_sync_and_runs_when_due(api: Api) -> None:
    connectors = Connectors()
    engine = connectors.engine(api.runtime)
    store = api.runtime.connections
    connection = _connect(api, connectors, "desk", {"T-1": 400, "T-2": 1})
    engine.run(api.workspace_id, connection)
    retention = Retention(store, api.runtime.ingest, retention_days=365, interval_hours=24)
    syncing = store.start_run(store.get(api.workspace_id, connection), full=False, trigger="cli")
    with pytest.raises(AlreadyRunning):
        retention.prune(api.workspace_id, connection, now=NOW)
    assert retention.run_due(NOW) == 0  # skipped while syncing, tried again next time
    assert _listed(api) == {"T-1", "T-2"}
    syncing.status = "succeeded"
    store.finish_run(syncing)
    assert retention.run_due(NOW) == 1
    assert retention.run_due(NOW + timedelta(hours=23)) == 0  # not due: nothing looked at
    runs, _ = store.runs(api.workspace_id, connection, page=1, limit=10)
    assert [r.trigger for r in runs].count("retention") == 1
    assert retention.run_due(NOW + timedelta(hours=25)) == 0  # due, ran, nothing more to remove
    runs, _ = store.runs(api.workspace_id, connection, page=1, limit=10)
    assert [r.trigger for r in runs].count("retention") == 2
    # A retention pass is no sync: the sync schedule and the failure count are untouched.
    stored = store.get(api.workspace_id, connection)
    assert stored.last_run_at == syncing.started_at
    assert stored.consecutive_failures == 0


def test_a_connections_own_window_and_ticket_id_prefix(api: Api) -> None:
    connectors = Connectors()
    engine = connectors.engine(api.runtime)
    connection = _connect(
        api, connectors, "zendesk", {"1": 40, "2": 5}, retention_days=30, ticket_id_prefix="zd-"
    )
    assert engine.run(api.workspace_id, connection).status == "succeeded"
    # A first sync reads the connection's window back, not the workspace default.
    read_from = connectors.desks["zendesk"].read_from[0]
    assert abs(read_from - (now_ms() - timedelta(days=30))) < timedelta(minutes=1)
    assert _listed(api) == {"zd-1", "zd-2"}
    assert _ids(api, TICKET_EVENTS) == {"zd-1", "zd-2"}
    run = api.runtime.retention.prune(api.workspace_id, connection, now=NOW)
    assert run.removed == 1
    assert _listed(api) == {"zd-2"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retention_days": 0}, "retention_days"),
        ({"retention_days": "365"}, "retention_days"),
        ({"retention_days": True}, "retention_days"),
        ({"ticket_id_prefix": 7}, "ticket_id_prefix"),
        ({"ticket_id_prefix": "x" * 33}, "ticket_id_prefix"),
    ],
)
def test_shared_options_are_checked_when_set(api: Api, options: dict[str, Any], message: str) -> None:
    body = {"kind": "zendesk", "name": "zd", "base_url": "https://acme.zendesk.com"}
    created = api.client.post(
        "/v1/connections",
        json={**body, "credentials": {"token": "t"}, "options": options},
        headers=api.headers(),
    )
    assert created.status_code == 422
    problem = created.json()
    assert message in str(problem)
    ok = api.client.post(
        "/v1/connections", json={**body, "credentials": {"token": "t"}}, headers=api.headers()
    )
    assert ok.status_code == 201
    changed = api.client.patch(
        f"/v1/connections/{ok.json()['id']}", json={"options": options}, headers=api.headers()
    )
    assert changed.status_code == 422
    assert message in str(changed.json())


def test_newest_time_of_a_page_per_ticket() -> None:
    page = SourcePage(
        tickets=[
            {
                "ticket_id": "A",
                "created_at": "2026-01-01T00:00:00+00:00",
                "updated_at": "2026-03-01T10:00:00Z",
            },
            {"ticket_id": "B", "created_at": "not a time"},
        ],
        events=[
            {"ticket_id": "A", "at": "2026-02-01T00:00:00+00:00"},
            {"ticket_id": "C", "at": "2026-04-01T08:00:00-04:00"},
            {"ticket_id": None, "at": "2026-04-01T00:00:00Z"},
        ],
    )
    before = now_ms()
    newest = newest_times(page)
    assert newest["A"] == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert newest["C"] == datetime(2026, 4, 1, 12, tzinfo=UTC)
    assert newest["B"] >= before  # no readable time: counted as updated now, so kept
    assert set(newest) == {"A", "B", "C"}


def test_a_store_from_before_retention_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "metadata.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """CREATE TABLE connections (id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, kind TEXT NOT NULL,
        name TEXT NOT NULL, base_url TEXT NOT NULL, credentials BLOB NOT NULL, schedule_hours REAL NOT NULL,
        timezone TEXT NOT NULL, options TEXT NOT NULL, enabled INTEGER NOT NULL, created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL, cursor TEXT, cursor_at INTEGER,
        consecutive_failures INTEGER NOT NULL DEFAULT 0, last_run_at INTEGER, last_success_at INTEGER,
        lease_run TEXT, lease_until INTEGER, UNIQUE (workspace_id, name));
        CREATE TABLE sync_runs (id TEXT PRIMARY KEY, connection_id TEXT NOT NULL, workspace_id TEXT NOT NULL,
        full INTEGER NOT NULL, trigger TEXT NOT NULL, status TEXT NOT NULL, started_at INTEGER NOT NULL,
        finished_at INTEGER, pages INTEGER NOT NULL DEFAULT 0, fetched INTEGER NOT NULL DEFAULT 0,
        written INTEGER NOT NULL DEFAULT 0, quarantined INTEGER NOT NULL DEFAULT 0,
        requests INTEGER NOT NULL DEFAULT 0, retries INTEGER NOT NULL DEFAULT 0,
        throttled INTEGER NOT NULL DEFAULT 0, errors TEXT NOT NULL DEFAULT '[]');"""
    )
    conn.close()
    store = ConnectionStore(path, SecretBox(Fernet.generate_key()))
    connection = store.create(
        "ws",
        kind="desk",
        name="d",
        base_url="http://x",
        credentials={},
        schedule_hours=1,
        timezone="UTC",
        options={},
    )
    run = store.start_retention(connection)
    run.status, run.removed = "succeeded", 3
    store.finish_retention(run)
    runs, _ = store.runs("ws", connection.id, page=1, limit=5)
    assert (runs[0].trigger, runs[0].removed) == ("retention", 3)
    assert store.get("ws", connection.id).last_pruned_at is not None
    store.close()
