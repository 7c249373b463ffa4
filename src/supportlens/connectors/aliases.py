"""Agent-name standardization (seed 004): the same person appears under several names, emails and
ids across helpdesks ("Sarah J.", "sarah.johnson@acme.com", HubSpot owner 41629779).  A workspace
keeps an alias table mapping each of them to one canonical agent id; syncs apply it to every row
they write.  Agents seen by syncs are remembered, and likely duplicates among them are suggested by
fuzzy name matching (rapidfuzz), for a person to confirm: nothing is merged on a guess.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from rapidfuzz import fuzz

from supportlens.auth.repository import NotFound
from supportlens.connectors.base import SourceAgent
from supportlens.sqlite import SqliteStore
from supportlens.tickets.records import now_ms, to_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_aliases (
    workspace_id TEXT NOT NULL,
    alias TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    PRIMARY KEY (workspace_id, alias)
);
CREATE TABLE IF NOT EXISTS seen_agents (
    workspace_id TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT,
    email TEXT,
    is_bot INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, source, id)
);
"""

# Names at least this similar (rapidfuzz token_sort_ratio, 0-100) are suggested as one person.
SIMILAR = 85.0


def alias_key(value: str) -> str:
    """An alias as it is matched: trimmed, case- and accent-insensitive, inner spaces collapsed."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode() or value
    return " ".join(folded.lower().split())


@dataclass(frozen=True, slots=True)
class SeenAgent:
    source: str
    id: str
    name: str | None
    email: str | None
    is_bot: bool


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Two agents that look like one person, and how alike their names are (0-100)."""

    first: SeenAgent
    second: SeenAgent
    score: float


class AliasStore(SqliteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def aliases(self, workspace_id: str) -> dict[str, str]:
        """alias key -> canonical agent id."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT alias, agent_id FROM agent_aliases WHERE workspace_id = ? ORDER BY alias",
                (workspace_id,),
            ).fetchall()
        return dict(rows)

    def set_alias(self, workspace_id: str, alias: str, agent_id: str) -> None:
        key = alias_key(alias)
        if not key or not agent_id.strip():
            raise ValueError("an alias and an agent id must not be blank")
        with self._lock:
            self._conn.execute(
                "INSERT INTO agent_aliases VALUES (?, ?, ?) ON CONFLICT (workspace_id, alias)"
                " DO UPDATE SET agent_id = excluded.agent_id",
                (workspace_id, key, agent_id.strip()),
            )

    def remove_alias(self, workspace_id: str, alias: str) -> None:
        with self._lock:
            removed = self._conn.execute(
                "DELETE FROM agent_aliases WHERE workspace_id = ? AND alias = ?",
                (workspace_id, alias_key(alias)),
            ).rowcount
        if not removed:
            raise NotFound(f"no alias {alias!r} in this workspace")

    def remember(self, workspace_id: str, source: str, agents: Iterable[SourceAgent]) -> None:
        at = to_ms(now_ms())
        with self._lock:
            self._conn.executemany(
                "INSERT INTO seen_agents VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, source, id)"
                " DO UPDATE SET name = excluded.name, email = excluded.email, is_bot = excluded.is_bot,"
                " last_seen = excluded.last_seen",
                [(workspace_id, source, a.id, a.name, a.email, int(a.is_bot), at) for a in agents],
            )

    def seen(self, workspace_id: str) -> list[SeenAgent]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT source, id, name, email, is_bot FROM seen_agents WHERE workspace_id = ?"
                " ORDER BY source, id",
                (workspace_id,),
            ).fetchall()
        return [SeenAgent(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def suggestions(self, workspace_id: str) -> list[Suggestion]:
        """Pairs of seen people (bots left out) with alike names or the same email that the alias
        table does not already map to one agent; most alike first."""
        people = [a for a in self.seen(workspace_id) if not a.is_bot]
        mapping = self.aliases(workspace_id)
        found = []
        for first, second in combinations(people, 2):
            if canonical(mapping, first.id) == canonical(mapping, second.id):
                continue
            same_email = bool(
                first.email and second.email and alias_key(first.email) == alias_key(second.email)
            )
            score = (
                100.0
                if same_email
                else fuzz.token_sort_ratio(alias_key(first.name or ""), alias_key(second.name or ""))
                if first.name and second.name
                else 0.0
            )
            if score >= SIMILAR:
                found.append(Suggestion(first, second, score))
        return sorted(found, key=lambda s: (-s.score, s.first.id, s.second.id))


def canonical(mapping: Mapping[str, str], value: str | None) -> str | None:
    """The canonical agent id of an id, name or email (itself when no alias names it)."""
    if value is None:
        return None
    return mapping.get(alias_key(value), value)
