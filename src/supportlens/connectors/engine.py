"""Running a sync: one connection, from its kept cursor (or from the start of the rolling window for
a first or full sync), page by page through the one ingest path, with a log of the run and an alert
after too many consecutive failures.  The scheduler (connectors/scheduler.py), the API and the CLI all
call ``SyncEngine.run``.

Normalization happens here, for every connector alike (seed 004): source times without an offset are
read in the connection's timezone and stored in UTC; ticket ids take the connection's prefix, if any;
agent ids, names and emails go through the workspace's alias table; the agents seen are remembered
for duplicate suggestions.  Every committed page records the tickets it wrote with their newest
source time, which retention (connectors/retention.py) reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from supportlens.connectors.aliases import AliasStore, canonical
from supportlens.connectors.base import Connection, ConnectorFactory, SourcePage
from supportlens.connectors.http import RateBudget, SourceClient
from supportlens.connectors.options import retention_days, ticket_id_prefix
from supportlens.connectors.store import ConnectionStore, RunRecord, StoredConnection
from supportlens.connectors.sync import SyncCounts, write_pages
from supportlens.ingest.service import IngestService
from supportlens.ingest.timestamps import TimestampError, parse_timestamp
from supportlens.tickets.records import now_ms

log = logging.getLogger(__name__)

_TICKET_TIMES = ("created_at", "first_response_at", "resolved_at", "updated_at")
_AGENT_FIELDS = ("agent_id",)


@dataclass(frozen=True, slots=True)
class ConnectorKind:
    """A helpdesk API: how to build its connector and client, and the budget it is read under."""

    kind: str
    factory: ConnectorFactory
    budget: RateBudget
    client_options: Callable[[Connection], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Progress:
    pages: int
    fetched: int
    written: int
    total: int | None  # records the source says the run will read, when it says


class UnknownKind(LookupError):
    pass


def _local_to_utc(value: Any, zone: ZoneInfo) -> Any:
    """An ISO time without an offset, read in ``zone``, as UTC with an offset; anything else as is."""
    if not isinstance(value, str) or len(value) < 16:
        return value
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        return value
    return parsed.replace(tzinfo=zone).astimezone(ZoneInfo("UTC")).isoformat()


class SyncEngine:
    def __init__(
        self,
        store: ConnectionStore,
        ingest: IngestService,
        kinds: Mapping[str, ConnectorKind],
        aliases: AliasStore,
        *,
        retention_days: int,  # unless the connection's options say otherwise
        alert_after: int,
        alert: Callable[[StoredConnection, int, str], list[str]],
        client_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self._store = store
        self._ingest = ingest
        self._kinds = kinds
        self._aliases = aliases
        self._retention_days = retention_days
        self._alert_after = alert_after
        self._alert = alert
        # SourceClient arguments every run gets (tests: a fake clock and sleep).
        self._client_overrides = dict(client_overrides or {})

    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def run(
        self,
        workspace_id: str,
        connection_ref: str,
        *,
        full: bool = False,
        trigger: str = "manual",
        progress: Callable[[Progress], None] | None = None,
    ) -> RunRecord:
        """One sync of the connection (AlreadyRunning while another holds it).  Its outcome, also
        kept in the run log: a failure is a ``failed`` run with its errors, never an exception."""
        stored = self._store.get(workspace_id, connection_ref)
        kind = self._kinds.get(stored.kind)
        if kind is None:
            raise UnknownKind(f"no connector for {stored.kind!r}; known: {', '.join(self.kinds())}")
        run = self._store.start_run(stored, full=full, trigger=trigger)
        counts = SyncCounts()
        connection = self._store.open(workspace_id, stored.id)
        client = SourceClient(
            connection.base_url,
            budget=kind.budget,
            **{**kind.client_options(connection), **self._client_overrides},
        )
        try:
            connector = kind.factory(connection, client)
            cursor = None if full else self._store.cursor(stored.id)
            window = retention_days(connection.options, default=self._retention_days)
            pages = connector.pages(cursor, start=now_ms() - timedelta(days=window))
            write_pages(
                self._ingest,
                workspace_id,
                self._normalized(connection, pages, counts, progress),
                source=stored.kind,
                committed=lambda page: self._store.keep_page(
                    run, workspace_id, page.cursor, newest_times(page)
                ),
                counts=counts,
            )
            run.status = "succeeded"
        except Exception as exc:  # any failure is the run's outcome, logged and counted
            run.status = "failed"
            run.errors.append(_scrubbed(f"{type(exc).__name__}: {exc}", connection))
            log.warning("sync of connection %s failed: %s", stored.id, run.errors[-1])
        finally:
            client.close()
        run.pages, run.fetched, run.written, run.quarantined = (
            counts.pages,
            counts.fetched,
            counts.written,
            counts.quarantined,
        )
        run.requests, run.retries, run.throttled = (
            client.stats.requests,
            client.stats.retries,
            client.stats.throttled,
        )
        run.errors = [*[_scrubbed(e, connection) for e in client.stats.errors], *run.errors]
        failures = self._store.finish_run(run)
        if run.status == "failed" and failures >= self._alert_after:
            message = f"{failures} consecutive failed syncs of {stored.name!r}; last: {run.errors[-1]}"
            self._alert(stored, failures, message)
        return run

    def _normalized(
        self,
        connection: Connection,
        pages: Iterator[SourcePage],
        counts: SyncCounts,
        progress: Callable[[Progress], None] | None,
    ) -> Iterator[SourcePage]:
        zone = ZoneInfo(connection.timezone)
        mapping = self._aliases.aliases(connection.workspace_id)
        prefix = ticket_id_prefix(connection.options)
        for page in pages:
            if prefix:
                for row in (*page.tickets, *page.events):
                    if row.get("ticket_id") is not None:
                        row["ticket_id"] = f"{prefix}{row['ticket_id']}"
            for ticket in page.tickets:
                for name in _TICKET_TIMES:
                    if name in ticket:
                        ticket[name] = _local_to_utc(ticket[name], zone)
                for name in _AGENT_FIELDS:
                    if ticket.get(name) is not None:
                        ticket[name] = canonical(mapping, str(ticket[name]))
            for event in page.events:
                event["at"] = _local_to_utc(event.get("at"), zone)
                if event.get("actor_type") == "agent" and event.get("actor_id") is not None:
                    event["actor_id"] = canonical(mapping, str(event["actor_id"]))
                if event.get("agent_id") is not None:
                    event["agent_id"] = canonical(mapping, str(event["agent_id"]))
            if page.agents:
                self._aliases.remember(connection.workspace_id, connection.kind, page.agents)
            yield page
            if progress is not None:
                progress(Progress(counts.pages, counts.fetched, counts.written, page.total))


def newest_times(page: SourcePage) -> dict[str, datetime]:
    """Each ticket the page wrote, with the newest source time it carries (its update time, else
    any of its times or its events'); a ticket with no readable time counts as updated now."""
    newest: dict[str, datetime] = {}
    rows = [(t, _TICKET_TIMES) for t in page.tickets] + [(e, ("at",)) for e in page.events]
    for row, names in rows:
        ticket = row.get("ticket_id")
        if ticket is None:
            continue
        times = [_instant(row.get(name)) for name in names]
        known = [t for t in times if t is not None]
        when = max(known) if known else now_ms()
        key = str(ticket)
        newest[key] = max(newest.get(key, when), when)
    return newest


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except TimestampError:
        return None


def _scrubbed(text: str, connection: Connection) -> str:
    """``text`` without any credential of the connection in it."""
    for secret in connection.credentials.values():
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), "[redacted]")
    return text
