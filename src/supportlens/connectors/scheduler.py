"""The server's sync scheduler: every few seconds (``sync_check_interval_seconds``) it runs each
connection whose schedule has come (``schedule_hours`` after its last run), one after the other in
one thread, so that a slow source never starts a second sync of itself.  What is due follows from
the stored last run, so a restart picks up where the schedule stands; a run the CLI holds is
skipped (its lease), not waited for."""

from __future__ import annotations

import logging
from datetime import datetime

from supportlens.connectors.engine import SyncEngine
from supportlens.connectors.store import AlreadyRunning, ConnectionStore

log = logging.getLogger(__name__)


class SyncScheduler:
    def __init__(self, store: ConnectionStore, engine: SyncEngine) -> None:
        self._store = store
        self._engine = engine

    def run_due(self, now: datetime) -> int:
        """Runs every due connection once; how many ran."""
        ran = 0
        for connection in self._store.connections():
            if not connection.due(now):
                continue
            try:
                self._engine.run(connection.workspace_id, connection.id, trigger="schedule")
            except AlreadyRunning:
                continue
            ran += 1
        return ran
