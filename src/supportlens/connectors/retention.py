"""Retention (seed 004's rolling window): each connection keeps the tickets the source updated within
its window (``retention_days``, default ``SUPPORTLENS_RETENTION_DAYS``, 365), the same tickets a full
sync would read again; older ones are removed from the store with their snapshots and events.

Only tickets a connection wrote are ever removed (the ledger of committed pages, ``synced_tickets``),
never data from the Events API, file imports or the ticket API, and never a ticket id another
connection of the workspace wrote within the window.  A pass holds the connection's lease, so it never
overlaps a sync of it, and is logged in the connection's run log (trigger ``retention``, ``removed``).
Tickets leave the store before the ledger forgets them, so a pass that stops half-way is finished by
the next one.  The server's scheduler runs a pass per connection every ``retention_interval_hours``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from supportlens.connectors.options import retention_days
from supportlens.connectors.store import AlreadyRunning, ConnectionStore, RunRecord, StoredConnection
from supportlens.ingest.service import IngestService
from supportlens.tickets.records import now_ms

log = logging.getLogger(__name__)

# Tickets removed per unit of work: bounds one delete's id list and lets syncs' pages interleave.
PRUNE_BATCH = 5_000
_DELETE_TIMEOUT = 600.0


class Retention:
    def __init__(
        self,
        store: ConnectionStore,
        ingest: IngestService,
        *,
        retention_days: int,
        interval_hours: float,
        batch: int = PRUNE_BATCH,
    ) -> None:
        self._store = store
        self._ingest = ingest
        self._default_days = retention_days
        self._interval = timedelta(hours=interval_hours)
        self._batch = batch

    def window(self, connection: StoredConnection) -> timedelta:
        return timedelta(days=retention_days(connection.options, default=self._default_days))

    def prune(
        self,
        workspace_id: str,
        connection_ref: str,
        *,
        now: datetime | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> RunRecord:
        """One pass over the connection (AlreadyRunning while a sync or another pass holds it):
        removes its tickets whose newest source time is older than the window before ``now``.  A
        failure is a ``failed`` run with its error, never an exception."""
        connection = self._store.get(workspace_id, connection_ref)
        run = self._store.start_retention(connection)
        try:
            cutoff = (now or now_ms()) - self.window(connection)
            while expired := self._store.expired(connection, cutoff, limit=self._batch):
                self._ingest.delete_tickets(workspace_id, expired).result(timeout=_DELETE_TIMEOUT)
                self._store.forget(run, expired)
                run.removed += len(expired)
                if progress is not None:
                    progress(run.removed)
            run.status = "succeeded"
        except Exception as exc:  # the pass's outcome, logged; the next pass resumes
            run.status = "failed"
            run.errors.append(f"{type(exc).__name__}: {exc}")
            log.warning("retention of connection %s failed: %s", connection.id, run.errors[-1])
        self._store.finish_retention(run)
        return run

    def run_due(self, now: datetime) -> int:
        """A pass over every connection (enabled or not: a paused connection's data still ages)
        whose last successful pass is ``interval_hours`` old; how many tickets were removed."""
        removed = 0
        for connection in self._store.connections():
            if connection.last_pruned_at is not None and connection.last_pruned_at + self._interval > now:
                continue
            try:
                removed += self.prune(connection.workspace_id, connection.id, now=now).removed
            except AlreadyRunning:
                continue  # syncing: the next pass
        return removed
