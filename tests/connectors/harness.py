"""What every connector test builds: a sync engine on a real runtime that knows one connector and
reads its fake server on a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from supportlens.auth.repository import Workspace
from supportlens.connectors.alerts import SyncAlerts
from supportlens.connectors.engine import ConnectorKind, SyncEngine
from supportlens.connectors.store import RunRecord
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKET_EVENTS, TICKET_SNAPSHOTS, TICKETS, Table
from supportlens.tickets.records import now_ms
from tests.fakes.clock import FakeClock
from tests.fakes.server import serve_app


def sync_engine(
    runtime: Runtime, kind: ConnectorKind, *, alert_after: int = 3, **overrides: Any
) -> SyncEngine:
    """A sync engine on the runtime's stores that knows ``kind`` only (alerts by the settings)."""
    return SyncEngine(
        runtime.connections,
        runtime.ingest,
        {kind.kind: kind},
        runtime.aliases,
        retention_days=365,
        alert_after=alert_after,
        alert=SyncAlerts(runtime.connections, overrides.pop("settings", runtime.settings)),
        client_overrides=overrides,
    )


def engine_on(
    runtime: Runtime, kind: ConnectorKind, clock: FakeClock, *, timeout_seconds: float
) -> SyncEngine:
    return sync_engine(runtime, kind, sleep=clock.sleep, clock=clock.time, timeout_seconds=timeout_seconds)


@dataclass
class SyncTarget:
    """A workspace a connector test syncs into from a fake account served on 127.0.0.1 (read on a
    fake clock), and what the pipes then say per ticket."""

    runtime: Runtime
    workspace: Workspace
    engine: SyncEngine
    account: Any  # the connector's fake account (its test narrows the type)
    url: str
    clock: FakeClock

    def connection_of(
        self, kind: str, name: str, credentials: dict[str, str], options: dict[str, Any]
    ) -> str:
        """A connection of this workspace to the fake account (every 4 hours, times in UTC)."""
        connection = self.runtime.connections.create(
            self.workspace.id,
            kind=kind,
            name=name,
            base_url=self.url,
            credentials=credentials,
            schedule_hours=4.0,
            timezone="UTC",
            options=options,
        )
        return connection.id

    def sync(self, connection_id: str, *, full: bool = False) -> RunRecord:
        return self.engine.run(self.workspace.id, connection_id, full=full)

    def events(self) -> int:
        return self.runtime.engine.count(TICKET_EVENTS, self.workspace.id)

    def crash_between_pages(self, connection_id: str, *, after_pages: int, committed_pages: int) -> str:
        """A sync the account breaks off (503) after ``after_pages`` pages, of which
        ``committed_pages`` were committed; the cursor it kept (the account works again after)."""
        self.account.pages.outage_after = after_pages
        crashed = self.sync(connection_id)
        assert crashed.status == "failed"
        assert crashed.pages == committed_pages
        assert "503" in crashed.errors[-1]
        self.account.pages.outage_after = None
        return self.runtime.connections.cursor(connection_id) or "{}"

    def assert_a_clean_sync_writes_as_many(self, table: Table, connect: Callable[[], str]) -> None:
        """Everything once: a clean sync of the same account into another workspace writes as many
        rows of ``table``."""
        written = self.runtime.engine.count(table, self.workspace.id)
        self.workspace = self.runtime.metadata.create_workspace("clean")
        assert self.sync(connect()).status == "succeeded"
        assert self.runtime.engine.count(table, self.workspace.id) == written

    def by_ticket(self, pipe: str, query: dict[str, str]) -> dict[str, dict[str, Any]]:
        """The pipe's rows by ticket id; one row per ticket (a doubled ticket fails here)."""
        rows = self.runtime.run_pipe(pipe, self.workspace, {**query, "limit": "10000"}).rows
        found = {row["ticket_id"]: row for row in rows}
        assert len(found) == len(rows), f"{pipe}: a ticket appears twice"
        return found

    def details(self) -> dict[str, dict[str, Any]]:
        return self.by_ticket("ticket_details", {"created_after": "2000-01-01"})

    def only_quarantined(self) -> dict[str, Any]:
        """The one row the workspace has in quarantine (DuckDB): datasource, column_name, error, raw."""
        (kept,) = self.runtime.engine.fetch_arrow(
            "SELECT datasource, column_name, error, raw FROM quarantine WHERE workspace_id = $ws",
            {"ws": self.workspace.id},
            timeout=10,
        ).to_pylist()
        return dict(kept)

    def assert_retention_covers_the_sync(self, connection_id: str) -> None:
        """Every ticket the sync wrote is known to retention: nothing has left the window today,
        and ten years on a pass removes them all, events and snapshots with them."""
        retention, workspace_id = self.runtime.retention, self.workspace.id
        listed = len(self.details())
        assert listed
        assert retention.prune(workspace_id, connection_id).removed == 0
        later = retention.prune(workspace_id, connection_id, now=now_ms() + timedelta(days=3650))
        assert later.status == "succeeded", later.errors
        assert later.removed >= listed
        assert self.details() == {}
        for table in (TICKETS, TICKET_SNAPSHOTS, TICKET_EVENTS):
            assert self.runtime.engine.count(table, workspace_id) == 0, table.name


T = TypeVar("T", bound=SyncTarget)
R = TypeVar("R")


def without_retries(requests: list[R]) -> list[R]:
    """The requests less each one identical to the one right before it: a request retried (after a
    timeout on a loaded machine, or a 5xx) repeats itself; a connector never asks for the same page
    twice in a row otherwise.  Page counts are made on these."""
    return [request for index, request in enumerate(requests) if index == 0 or request != requests[index - 1]]


@contextmanager
def serving(
    runtime: Runtime, kind: ConnectorKind, account: Any, make: Callable[..., T], *, timeout_seconds: float
) -> Iterator[T]:
    """``account`` (a fake with ``app()`` and a ``clock``) served on 127.0.0.1 on a fake clock, and
    ``make(runtime=, workspace=, engine=, account=, url=, clock=)`` around it."""
    clock = FakeClock()
    account.clock = clock.time
    engine = engine_on(runtime, kind, clock, timeout_seconds=timeout_seconds)
    with serve_app(account.app()) as url:
        workspace = runtime.metadata.create_workspace("acme")
        yield make(runtime=runtime, workspace=workspace, engine=engine, account=account, url=url, clock=clock)
