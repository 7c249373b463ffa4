"""What the SLA evaluator's last pass over each workspace left for the next one, kept in the small
SQLite file beside the store so that a restart does not cost a full pass (workers/sla_evaluator.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from supportlens.sqlite import SqliteStore, add_missing_columns

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sla_evaluator_passes (
    workspace_id TEXT PRIMARY KEY,
    setup TEXT NOT NULL,     -- digest of the policies, calendars and status names it ran under
    began TEXT NOT NULL,     -- ISO 8601, UTC
    pending TEXT NOT NULL    -- JSON object: ticket id -> its first instant to come (epoch µs)
);
"""
# Added after files were made without it (NULL in their rows).
_ADDED = {"settled": "TEXT"}  # ISO 8601, UTC: Pass.settled


@dataclass(frozen=True, slots=True)
class Pass:
    """Under which setup a pass ran, when it began, and which tickets it left with a breach or an
    escalation level still to come, each with the first such instant (epoch microseconds).
    ``settled``: every write received before it was committed when the pass read the store (None:
    not known, from an earlier release)."""

    setup: str
    began: datetime
    pending: Mapping[str, int]
    settled: datetime | None = None


class PassStore(SqliteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)
        add_missing_columns(self._conn, "sla_evaluator_passes", _ADDED)

    def load(self, workspace_id: str) -> Pass | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT setup, began, pending, settled FROM sla_evaluator_passes WHERE workspace_id = ?",
                (workspace_id,),
            ).fetchone()
        if row is None:
            return None
        settled = None if row[3] is None else datetime.fromisoformat(row[3])
        pending = orjson.loads(row[2])
        if isinstance(pending, list):  # an earlier release kept only the ids: look at each again
            pending = dict.fromkeys(pending, 0)
        return Pass(row[0], datetime.fromisoformat(row[1]), pending, settled)

    def save(self, workspace_id: str, finished: Pass) -> None:
        pending = orjson.dumps(dict(sorted(finished.pending.items()))).decode()
        settled = None if finished.settled is None else finished.settled.isoformat()
        with self._lock:
            self._conn.execute(
                "INSERT INTO sla_evaluator_passes (workspace_id, setup, began, pending, settled)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id) DO UPDATE SET setup = excluded.setup,"
                " began = excluded.began, pending = excluded.pending, settled = excluded.settled",
                (workspace_id, finished.setup, finished.began.isoformat(), pending, settled),
            )
