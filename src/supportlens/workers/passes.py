"""What the SLA evaluator's last pass over each workspace left for the next one, kept in the small
SQLite file beside the store so that a restart does not cost a full pass (workers/sla_evaluator.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from supportlens.sqlite import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sla_evaluator_passes (
    workspace_id TEXT PRIMARY KEY,
    setup TEXT NOT NULL,     -- digest of the policies, calendars and status names it ran under
    began TEXT NOT NULL,     -- ISO 8601, UTC
    pending TEXT NOT NULL    -- JSON array of ticket ids
);
"""


@dataclass(frozen=True, slots=True)
class Pass:
    """Under which setup a pass ran, when it began, and which tickets it left with a running target
    or an escalation level still to come."""

    setup: str
    began: datetime
    pending: frozenset[str]


class PassStore(SqliteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def load(self, workspace_id: str) -> Pass | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT setup, began, pending FROM sla_evaluator_passes WHERE workspace_id = ?",
                (workspace_id,),
            ).fetchone()
        if row is None:
            return None
        return Pass(row[0], datetime.fromisoformat(row[1]), frozenset(orjson.loads(row[2])))

    def save(self, workspace_id: str, finished: Pass) -> None:
        pending = orjson.dumps(sorted(finished.pending)).decode()
        with self._lock:
            self._conn.execute(
                "INSERT INTO sla_evaluator_passes VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id) DO UPDATE"
                " SET setup = excluded.setup, began = excluded.began, pending = excluded.pending",
                (workspace_id, finished.setup, finished.began.isoformat(), pending),
            )
