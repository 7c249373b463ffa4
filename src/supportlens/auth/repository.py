"""Workspaces and tokens, kept in a small SQLite file beside the analytics store.

They are few, small and updated in place (revocation), which suits a transactional row store
rather than an analytics engine; see docs/decisions.md."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from supportlens.auth.tokens import Scope, Token, hash_secret, new_secret, normalize_filter
from supportlens.domain.periods import zone
from supportlens.sqlite import SqliteStore

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    datasources TEXT,
    pipes TEXT,
    fixed_filters TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Workspace:
    id: str
    name: str
    timezone: str
    created_at: datetime


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _names(values: frozenset[str] | None) -> str | None:
    return None if values is None else json.dumps(sorted(values))


class MetadataRepository(SqliteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    # Workspaces

    def create_workspace(self, name: str, *, timezone: str = "UTC") -> Workspace:
        if not _NAME.match(name):
            raise ValueError(
                "a workspace name is 1-64 letters, digits, '.', '_' or '-', starting alphanumeric"
            )
        zone(timezone)
        workspace = Workspace(uuid.uuid4().hex, name, timezone, datetime.now(UTC))
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO workspaces VALUES (?, ?, ?, ?)",
                    (workspace.id, name, timezone, workspace.created_at.isoformat()),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"workspace {name!r} already exists") from None
        return workspace

    def _workspace(self, row: tuple[str, str, str, str] | None, label: str) -> Workspace:
        if row is None:
            raise NotFound(f"no workspace {label!r}")
        return Workspace(row[0], row[1], row[2], datetime.fromisoformat(row[3]))

    def workspace(self, workspace_id: str) -> Workspace:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, name, timezone, created_at FROM workspaces WHERE id = ?", (workspace_id,)
            ).fetchone()
        return self._workspace(row, workspace_id)

    def workspace_by_name(self, name: str) -> Workspace:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, name, timezone, created_at FROM workspaces WHERE name = ?", (name,)
            ).fetchone()
        return self._workspace(row, name)

    def workspaces(self) -> list[Workspace]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, name, timezone, created_at FROM workspaces ORDER BY name"
            ).fetchall()
        return [self._workspace(row, "") for row in rows]

    def set_timezone(self, workspace_id: str, timezone: str) -> None:
        zone(timezone)
        with self._lock:
            self._conn.execute("UPDATE workspaces SET timezone = ? WHERE id = ?", (timezone, workspace_id))

    # Tokens

    def create_token(
        self,
        workspace_id: str,
        name: str,
        scopes: set[Scope],
        *,
        datasources: frozenset[str] | None = None,
        pipes: frozenset[str] | None = None,
        fixed_filters: dict[str, str] | None = None,
    ) -> tuple[Token, str]:
        """A new token and its secret; the secret is not stored and cannot be shown again."""
        if not scopes:
            raise ValueError("a token needs at least one scope (admin, append, read, tickets)")
        filters = dict(normalize_filter(c, v) for c, v in (fixed_filters or {}).items())
        self.workspace(workspace_id)
        secret = new_secret()
        token = Token(
            id=uuid.uuid4().hex[:12],
            workspace_id=workspace_id,
            name=name,
            scopes=frozenset(scopes),
            datasources=datasources,
            pipes=pipes,
            fixed_filters=filters,
            created_at=datetime.now(UTC),
        )
        with self._lock:
            self._conn.execute(
                "INSERT INTO tokens (id, workspace_id, name, secret_hash, scopes, datasources, pipes,"
                " fixed_filters, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token.id,
                    workspace_id,
                    name,
                    hash_secret(secret),
                    json.dumps(sorted(s.value for s in scopes)),
                    _names(datasources),
                    _names(pipes),
                    json.dumps(filters, sort_keys=True),
                    _now(),
                ),
            )
        return token, secret

    _TOKEN_COLUMNS = (
        "id, workspace_id, name, scopes, datasources, pipes, fixed_filters, created_at, revoked_at"
    )

    @staticmethod
    def _token(row: tuple[str, ...]) -> Token:
        return Token(
            id=row[0],
            workspace_id=row[1],
            name=row[2],
            scopes=frozenset(Scope(s) for s in json.loads(row[3])),
            datasources=None if row[4] is None else frozenset(json.loads(row[4])),
            pipes=None if row[5] is None else frozenset(json.loads(row[5])),
            fixed_filters=json.loads(row[6]),
            created_at=datetime.fromisoformat(row[7]),
            revoked_at=None if row[8] is None else datetime.fromisoformat(row[8]),
        )

    def authenticate(self, secret: str) -> Token | None:
        """The live token with this secret, or None (unknown or revoked)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {self._TOKEN_COLUMNS} FROM tokens WHERE secret_hash = ? AND revoked_at IS NULL",
                (hash_secret(secret),),
            ).fetchone()
        return None if row is None else self._token(row)

    def tokens(self, workspace_id: str) -> list[Token]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {self._TOKEN_COLUMNS} FROM tokens WHERE workspace_id = ? ORDER BY created_at",
                (workspace_id,),
            ).fetchall()
        return [self._token(row) for row in rows]

    def revoke(self, workspace_id: str, token_id: str) -> None:
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND workspace_id = ? AND revoked_at IS NULL",
                (_now(), token_id, workspace_id),
            )
        if cursor.rowcount == 0:
            raise NotFound(f"no live token {token_id!r} in this workspace")
