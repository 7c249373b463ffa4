"""Connections to helpdesks (credentials sealed by connectors/secrets.py), their sync cursors, the
log of their runs and their alerts, in the metadata SQLite file; every method is scoped by workspace.

A run holds a lease on its connection while it lasts (renewed as pages are written), so two syncs of
one connection never run at once, in this process or another (the CLI beside the server); a run
whose process died leaves a lease that expires, and the next run takes over.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from supportlens.auth.repository import Conflict, NotFound
from supportlens.connectors.base import Connection
from supportlens.connectors.secrets import SecretBox
from supportlens.sqlite import SqliteStore, add_missing_columns
from supportlens.tickets.records import from_ms, now_ms, to_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL COLLATE NOCASE,
    base_url TEXT NOT NULL,
    credentials BLOB NOT NULL,
    schedule_hours REAL NOT NULL,
    timezone TEXT NOT NULL,
    options TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    cursor TEXT,
    cursor_at INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_run_at INTEGER,
    last_success_at INTEGER,
    lease_run TEXT,
    lease_until INTEGER,
    last_pruned_at INTEGER,
    UNIQUE (workspace_id, name)
);
CREATE TABLE IF NOT EXISTS sync_runs (
    id TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    full INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    pages INTEGER NOT NULL DEFAULT 0,
    fetched INTEGER NOT NULL DEFAULT 0,
    written INTEGER NOT NULL DEFAULT 0,
    quarantined INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    errors TEXT NOT NULL DEFAULT '[]',
    removed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sync_runs_connection ON sync_runs (connection_id, started_at);
-- Every ticket a connection wrote, with the source's newest time for it: retention removes the
-- tickets whose newest time left the rolling window (connectors/retention.py).
CREATE TABLE IF NOT EXISTS synced_tickets (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    ticket_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (connection_id, ticket_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS synced_tickets_age ON synced_tickets (connection_id, updated_at);
CREATE INDEX IF NOT EXISTS synced_tickets_id ON synced_tickets (workspace_id, ticket_id, updated_at);
CREATE TABLE IF NOT EXISTS sync_alerts (
    id TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    message TEXT NOT NULL,
    delivered TEXT NOT NULL
);
"""

RETENTION = "retention"  # the trigger of a retention pass in the run log

# How long a run's lease lasts without a page written (a page renews it).
LEASE = timedelta(minutes=15)


class AlreadyRunning(Conflict):
    """Another run of the connection holds its lease."""


@dataclass(frozen=True, slots=True)
class StoredConnection:
    """A connection as the API shows it: never its credentials, only which of them are set."""

    id: str
    workspace_id: str
    kind: str
    name: str
    base_url: str
    credential_names: tuple[str, ...]
    schedule_hours: float
    timezone: str
    options: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    consecutive_failures: int = 0
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    cursor_at: datetime | None = None
    last_pruned_at: datetime | None = None
    running: bool = False

    def due(self, now: datetime) -> bool:
        return (
            self.enabled
            and not self.running
            and (self.last_run_at is None or self.last_run_at + timedelta(hours=self.schedule_hours) <= now)
        )


@dataclass(slots=True)
class RunRecord:
    id: str
    connection_id: str
    full: bool
    trigger: str  # schedule, manual, cli; retention for a retention pass
    status: str  # running, succeeded, failed
    started_at: datetime
    finished_at: datetime | None = None
    pages: int = 0
    fetched: int = 0
    written: int = 0
    quarantined: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    errors: list[str] = field(default_factory=list)
    removed: int = 0  # tickets retention removed (a ``retention`` run)


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    connection_id: str
    at: datetime
    failures: int
    message: str
    delivered: tuple[str, ...]  # event, email, webhook


_CONNECTION = (
    "id, workspace_id, kind, name, base_url, credentials, schedule_hours, timezone, options, enabled,"
    " created_at, updated_at, consecutive_failures, last_run_at, last_success_at, cursor_at, lease_until,"
    " last_pruned_at"
)
_RUN = (
    "id, connection_id, full, trigger, status, started_at, finished_at, pages, fetched, written,"
    " quarantined, requests, retries, throttled, errors, removed"
)


def _time(value: int | None) -> datetime | None:
    return None if value is None else from_ms(value)


class ConnectionStore(SqliteStore):
    def __init__(self, path: Path, box: SecretBox) -> None:
        super().__init__(path, _SCHEMA)
        add_missing_columns(self._conn, "connections", {"last_pruned_at": "INTEGER"})
        add_missing_columns(self._conn, "sync_runs", {"removed": "INTEGER NOT NULL DEFAULT 0"})
        self._box = box

    # Connections

    def _connection(self, row: Sequence[Any], now: datetime) -> StoredConnection:
        credentials = orjson.loads(self._box.unseal(row[5]))
        lease_until = _time(row[16])
        return StoredConnection(
            id=row[0],
            workspace_id=row[1],
            kind=row[2],
            name=row[3],
            base_url=row[4],
            credential_names=tuple(sorted(credentials)),
            schedule_hours=row[6],
            timezone=row[7],
            options=orjson.loads(row[8]),
            enabled=bool(row[9]),
            created_at=from_ms(row[10]),
            updated_at=from_ms(row[11]),
            consecutive_failures=row[12],
            last_run_at=_time(row[13]),
            last_success_at=_time(row[14]),
            cursor_at=_time(row[15]),
            last_pruned_at=_time(row[17]),
            running=lease_until is not None and lease_until > now,
        )

    def create(
        self,
        workspace_id: str,
        *,
        kind: str,
        name: str,
        base_url: str,
        credentials: Mapping[str, str],
        schedule_hours: float,
        timezone: str,
        options: Mapping[str, Any],
        enabled: bool = True,
    ) -> StoredConnection:
        at = now_ms()
        connection_id = f"conn_{secrets.token_hex(8)}"
        with self._transaction() as conn:
            exists = conn.execute(
                "SELECT 1 FROM connections WHERE workspace_id = ? AND name = ?", (workspace_id, name)
            ).fetchone()
            if exists:
                raise Conflict(f"a connection named {name!r} already exists in this workspace")
            conn.execute(
                "INSERT INTO connections (id, workspace_id, kind, name, base_url, credentials,"
                " schedule_hours, timezone, options, enabled, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    connection_id,
                    workspace_id,
                    kind,
                    name,
                    base_url,
                    self._box.seal(orjson.dumps(dict(credentials))),
                    schedule_hours,
                    timezone,
                    orjson.dumps(dict(options)).decode(),
                    int(enabled),
                    to_ms(at),
                    to_ms(at),
                ),
            )
        return self.get(workspace_id, connection_id)

    def get(self, workspace_id: str, connection_id: str) -> StoredConnection:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_CONNECTION} FROM connections WHERE workspace_id = ? AND (id = ? OR name = ?)",
                (workspace_id, connection_id, connection_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"no connection {connection_id!r} in this workspace")
        return self._connection(row, now_ms())

    def connections(self, workspace_id: str | None = None) -> list[StoredConnection]:
        """The workspace's connections by name (every workspace's when None: the scheduler)."""
        where, params = ("workspace_id = ?", (workspace_id,)) if workspace_id else ("1", ())
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_CONNECTION} FROM connections WHERE {where} ORDER BY workspace_id, name", params
            ).fetchall()
        now = now_ms()
        return [self._connection(row, now) for row in rows]

    def update(
        self,
        workspace_id: str,
        connection_id: str,
        *,
        credentials: Mapping[str, str] | None = None,
        **changes: Any,
    ) -> StoredConnection:
        """Changes the given fields (base_url, schedule_hours, timezone, options, enabled, name) and,
        when given, replaces the credentials."""
        current = self.get(workspace_id, connection_id)
        assignments: dict[str, Any] = {}
        for name in ("base_url", "schedule_hours", "timezone", "enabled", "name"):
            if name in changes:
                assignments[name] = int(changes[name]) if name == "enabled" else changes[name]
        if "options" in changes:
            assignments["options"] = orjson.dumps(changes["options"]).decode()
        if credentials is not None:
            assignments["credentials"] = self._box.seal(orjson.dumps(dict(credentials)))
        assignments["updated_at"] = to_ms(now_ms())
        columns = ", ".join(f"{name} = ?" for name in assignments)
        with self._lock:
            self._conn.execute(
                f"UPDATE connections SET {columns} WHERE id = ?", (*assignments.values(), current.id)
            )
        return self.get(workspace_id, current.id)

    def delete(self, workspace_id: str, connection_id: str) -> None:
        current = self.get(workspace_id, connection_id)
        with self._lock:
            self._conn.execute("DELETE FROM connections WHERE id = ?", (current.id,))

    def open(self, workspace_id: str, connection_id: str) -> Connection:
        """The connection with its credentials in clear, for a run."""
        with self._lock:
            row = self._conn.execute(
                "SELECT id, workspace_id, kind, base_url, credentials, timezone, options FROM connections"
                " WHERE workspace_id = ? AND (id = ? OR name = ?)",
                (workspace_id, connection_id, connection_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"no connection {connection_id!r} in this workspace")
        return Connection(
            id=row[0],
            workspace_id=row[1],
            kind=row[2],
            base_url=row[3],
            credentials=orjson.loads(self._box.unseal(row[4])),
            timezone=row[5],
            options=orjson.loads(row[6]),
        )

    # Cursors

    def cursor(self, connection_id: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT cursor FROM connections WHERE id = ?", (connection_id,)
            ).fetchone()
        return None if row is None else row[0]

    def keep_page(
        self, run: RunRecord, workspace_id: str, cursor: str | None, seen: Mapping[str, datetime]
    ) -> None:
        """After a committed page: the tickets it wrote with the source's newest time for each
        (never moved back), and its cursor when it has one; renews the run's lease."""
        at = now_ms()
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO synced_tickets (connection_id, ticket_id, workspace_id, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (connection_id, ticket_id)"
                " DO UPDATE SET updated_at = max(updated_at, excluded.updated_at)",
                [(run.connection_id, ticket, workspace_id, to_ms(when)) for ticket, when in seen.items()],
            )
            conn.execute(
                "UPDATE connections SET cursor = coalesce(?, cursor),"
                " cursor_at = CASE WHEN ? IS NULL THEN cursor_at ELSE ? END, lease_until = ?"
                " WHERE id = ? AND lease_run = ?",
                (cursor, cursor, to_ms(at), to_ms(at + LEASE), run.connection_id, run.id),
            )

    # Retention

    def expired(self, connection: StoredConnection, before: datetime, *, limit: int) -> list[str]:
        """Up to ``limit`` tickets the connection wrote whose newest source time is before
        ``before``, unless another connection of the workspace wrote the same id since."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.ticket_id FROM synced_tickets s WHERE s.connection_id = ? AND s.updated_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM synced_tickets o WHERE o.workspace_id = s.workspace_id"
                " AND o.ticket_id = s.ticket_id AND o.connection_id <> s.connection_id"
                " AND o.updated_at >= ?) ORDER BY s.updated_at LIMIT ?",
                (connection.id, to_ms(before), to_ms(before), limit),
            ).fetchall()
        return [row[0] for row in rows]

    def forget(self, run: RunRecord, ticket_ids: Sequence[str]) -> None:
        """These tickets are gone from the store: no longer the connection's; renews the lease."""
        at = now_ms()
        with self._transaction() as conn:
            conn.executemany(
                "DELETE FROM synced_tickets WHERE connection_id = ? AND ticket_id = ?",
                [(run.connection_id, ticket) for ticket in ticket_ids],
            )
            conn.execute(
                "UPDATE connections SET lease_until = ? WHERE id = ? AND lease_run = ?",
                (to_ms(at + LEASE), run.connection_id, run.id),
            )

    # Runs

    def start_run(self, connection: StoredConnection, *, full: bool, trigger: str) -> RunRecord:
        """A new sync run holding the connection's lease (AlreadyRunning while another holds it).
        A full run starts from no cursor."""
        return self._leased_run(
            connection,
            full=full,
            trigger=trigger,
            also=", last_run_at = :at" + (", cursor = NULL, cursor_at = NULL" if full else ""),
        )

    def start_retention(self, connection: StoredConnection) -> RunRecord:
        """A retention pass holding the connection's lease, so that it never overlaps a sync."""
        return self._leased_run(connection, full=False, trigger=RETENTION, also="")

    def _leased_run(self, connection: StoredConnection, *, full: bool, trigger: str, also: str) -> RunRecord:
        at = now_ms()
        run = RunRecord(f"run_{secrets.token_hex(8)}", connection.id, full, trigger, "running", at)
        with self._transaction() as conn:
            taken = conn.execute(
                f"UPDATE connections SET lease_run = :run, lease_until = :until{also}"
                " WHERE id = :id AND (lease_until IS NULL OR lease_until <= :at)",
                {"run": run.id, "until": to_ms(at + LEASE), "at": to_ms(at), "id": connection.id},
            ).rowcount
            if not taken:
                raise AlreadyRunning(f"connection {connection.name!r} is already syncing")
            conn.execute(
                "INSERT INTO sync_runs (id, connection_id, workspace_id, full, trigger, status, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run.id, connection.id, connection.workspace_id, int(full), trigger, run.status, to_ms(at)),
            )
        return run

    def finish_run(self, run: RunRecord) -> int:
        """Stores the run's outcome and frees the lease; the connection's consecutive failures."""
        succeeded = run.status == "succeeded"
        with self._transaction() as conn:
            at = self._log_outcome(conn, run)
            conn.execute(
                "UPDATE connections SET lease_run = NULL, lease_until = NULL,"
                " consecutive_failures = CASE WHEN ? THEN 0 ELSE consecutive_failures + 1 END,"
                " last_success_at = CASE WHEN ? THEN ? ELSE last_success_at END"
                " WHERE id = ? AND lease_run = ?",
                (succeeded, succeeded, to_ms(at), run.connection_id, run.id),
            )
            failures: int = conn.execute(
                "SELECT consecutive_failures FROM connections WHERE id = ?", (run.connection_id,)
            ).fetchone()[0]
        return failures

    def finish_retention(self, run: RunRecord) -> None:
        """Stores the pass's outcome and frees the lease; a successful pass is the connection's
        last (failures of retention are logged, not counted as failed syncs)."""
        succeeded = run.status == "succeeded"
        with self._transaction() as conn:
            at = self._log_outcome(conn, run)
            conn.execute(
                "UPDATE connections SET lease_run = NULL, lease_until = NULL,"
                " last_pruned_at = CASE WHEN ? THEN ? ELSE last_pruned_at END WHERE id = ? AND lease_run = ?",
                (succeeded, to_ms(at), run.connection_id, run.id),
            )

    @staticmethod
    def _log_outcome(conn: sqlite3.Connection, run: RunRecord) -> datetime:
        at = now_ms()
        run.finished_at = at
        conn.execute(
            "UPDATE sync_runs SET status = ?, finished_at = ?, pages = ?, fetched = ?, written = ?,"
            " quarantined = ?, requests = ?, retries = ?, throttled = ?, errors = ?, removed = ?"
            " WHERE id = ?",
            (
                run.status,
                to_ms(at),
                run.pages,
                run.fetched,
                run.written,
                run.quarantined,
                run.requests,
                run.retries,
                run.throttled,
                orjson.dumps(run.errors[-50:]).decode(),
                run.removed,
                run.id,
            ),
        )
        return at

    def runs(
        self, workspace_id: str, connection_id: str, *, page: int, limit: int
    ) -> tuple[list[RunRecord], int]:
        """The connection's runs, newest first."""
        current = self.get(workspace_id, connection_id)
        with self._lock:
            total = self._conn.execute(
                "SELECT count(*) FROM sync_runs WHERE connection_id = ?", (current.id,)
            ).fetchone()[0]
            rows = self._conn.execute(
                f"SELECT {_RUN} FROM sync_runs WHERE connection_id = ? ORDER BY started_at DESC, id"
                " LIMIT ? OFFSET ?",
                (current.id, limit, (page - 1) * limit),
            ).fetchall()
        return [
            RunRecord(
                id=row[0],
                connection_id=row[1],
                full=bool(row[2]),
                trigger=row[3],
                status=row[4],
                started_at=from_ms(row[5]),
                finished_at=_time(row[6]),
                pages=row[7],
                fetched=row[8],
                written=row[9],
                quarantined=row[10],
                requests=row[11],
                retries=row[12],
                throttled=row[13],
                errors=orjson.loads(row[14]),
                removed=row[15],
            )
            for row in rows
        ], total

    # Alerts

    def add_alert(
        self, connection: StoredConnection, failures: int, message: str, delivered: Sequence[str]
    ) -> Alert:
        alert = Alert(
            f"alert_{secrets.token_hex(8)}", connection.id, now_ms(), failures, message, tuple(delivered)
        )
        with self._lock:
            self._conn.execute(
                "INSERT INTO sync_alerts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    alert.id,
                    connection.id,
                    connection.workspace_id,
                    to_ms(alert.at),
                    failures,
                    message,
                    orjson.dumps(list(delivered)).decode(),
                ),
            )
        return alert

    def alerts(self, workspace_id: str, connection_id: str) -> list[Alert]:
        current = self.get(workspace_id, connection_id)
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, connection_id, at, failures, message, delivered FROM sync_alerts"
                " WHERE connection_id = ? ORDER BY at DESC",
                (current.id,),
            ).fetchall()
        return [Alert(r[0], r[1], from_ms(r[2]), r[3], r[4], tuple(orjson.loads(r[5]))) for r in rows]
