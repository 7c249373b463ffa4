"""Where support categories, routing rules, round-robin turns and escalation timers are kept: the
metadata SQLite file (its own connection and tables), updated in place.  Every method is scoped by
workspace id except ``due_timers``, which the background escalation pass runs over all of them.

Writes of categories and rules honour If-Match (``StaleVersion`` when it names another version)."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from supportlens.auth.repository import Conflict, NotFound
from supportlens.sqlite import SqliteStore
from supportlens.tickets.records import from_ms, now_ms, to_ms
from supportlens.tickets.repository import StaleVersion
from supportlens.tickets.routing import (
    Actions,
    Category,
    CategorySla,
    Conditions,
    Rule,
    Subcategory,
    SubcategoryRouting,
    if_match_holds,
    next_in_turn,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS support_categories (
    workspace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    definition TEXT NOT NULL,
    sla_policy_id TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE TABLE IF NOT EXISTS routing_rules (
    workspace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    definition TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE TABLE IF NOT EXISTS routing_turns (
    workspace_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    team TEXT NOT NULL,
    last_agent_id TEXT NOT NULL,
    PRIMARY KEY (workspace_id, rule_id, team)
);
CREATE TABLE IF NOT EXISTS routing_timers (
    workspace_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    minutes INTEGER NOT NULL,
    notify TEXT NOT NULL,
    PRIMARY KEY (workspace_id, ticket_id, rule_id)
);
CREATE INDEX IF NOT EXISTS routing_timers_due ON routing_timers (due_at);
"""


@dataclass(frozen=True, slots=True)
class StoredRule:
    rule: Rule
    position: int  # a workspace's rules are tried in this order
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def etag(self) -> str:
        return f'"{self.rule.id}.{self.version}"'


@dataclass(frozen=True, slots=True)
class StoredCategory:
    category: Category
    sla_policy_id: str | None  # the SLA policy that carries the category's targets
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def etag(self) -> str:
        """Category ids are any label: percent-encoded, the tag stays ASCII (a header value)."""
        return f'"{quote(self.category.id, safe="")}.{self.version}"'


@dataclass(frozen=True, slots=True)
class Timer:
    """Escalate the ticket at ``due_at`` unless it is resolved by then (a rule's escalate_after)."""

    workspace_id: str
    ticket_id: str
    rule_id: str
    rule_name: str
    due_at: datetime
    minutes: int
    notify: tuple[str, ...]


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _rule_json(rule: Rule) -> str:
    return _json({name: value for name, value in asdict(rule).items() if name != "id"})


def _rule(rule_id: str, text: str) -> Rule:
    data = orjson.loads(text)
    actions = data["actions"]
    return Rule(
        id=rule_id,
        name=data["name"],
        conditions=Conditions(**{name: tuple(values) for name, values in data["conditions"].items()}),
        actions=Actions(**{**actions, "notify": tuple(actions["notify"])}),
        active=data["active"],
        stop_processing=data["stop_processing"],
    )


def _category_json(category: Category) -> str:
    return _json({name: value for name, value in asdict(category).items() if name != "id"})


def _category(category_id: str, text: str) -> Category:
    data = orjson.loads(text)
    return Category(
        id=category_id,
        name=data["name"],
        description=data["description"],
        sla=None if data["sla"] is None else CategorySla(**data["sla"]),
        subcategories=tuple(
            Subcategory(
                sub["id"],
                sub["name"],
                None if sub["routing"] is None else SubcategoryRouting(**sub["routing"]),
            )
            for sub in data["subcategories"]
        ),
    )


_RULE = "id, position, definition, version, created_at, updated_at"
_CATEGORY = "id, definition, sla_policy_id, version, created_at, updated_at"


def _stored_rule(row: Sequence[Any]) -> StoredRule:
    return StoredRule(_rule(row[0], row[2]), row[1], row[3], from_ms(row[4]), from_ms(row[5]))


def _stored_category(row: Sequence[Any]) -> StoredCategory:
    return StoredCategory(_category(row[0], row[1]), row[2], row[3], from_ms(row[4]), from_ms(row[5]))


def check_version(current: StoredRule | StoredCategory, if_match: str | None) -> None:
    """StaleVersion when If-Match names another version than the current one."""
    if if_match_holds(current.etag, if_match):
        return
    what = (
        f"routing rule {current.rule.id!r}"
        if isinstance(current, StoredRule)
        else f"category {current.category.id!r}"
    )
    raise StaleVersion(f"{what} is at version {current.version} ({current.etag}); If-Match was {if_match}")


def new_rule_id() -> str:
    return f"rule_{secrets.token_hex(6)}"


class RoutingStore(SqliteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    # Rules

    def _get_rule(self, conn: sqlite3.Connection, workspace_id: str, rule_id: str) -> StoredRule:
        row = conn.execute(
            f"SELECT {_RULE} FROM routing_rules WHERE workspace_id = ? AND id = ?", (workspace_id, rule_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"no routing rule {rule_id!r} in this workspace")
        return _stored_rule(row)

    def create_rule(self, workspace_id: str, rule: Rule) -> StoredRule:
        """Store a new rule, tried after the workspace's others."""
        at = to_ms(now_ms())
        with self._transaction() as conn:
            (position,) = conn.execute(
                "SELECT coalesce(max(position), -1) + 1 FROM routing_rules WHERE workspace_id = ?",
                (workspace_id,),
            ).fetchone()
            conn.execute(
                "INSERT INTO routing_rules VALUES (?, ?, ?, ?, 1, ?, ?)",
                (workspace_id, rule.id, position, _rule_json(rule), at, at),
            )
            return self._get_rule(conn, workspace_id, rule.id)

    def rule(self, workspace_id: str, rule_id: str) -> StoredRule:
        with self._lock:
            return self._get_rule(self._conn, workspace_id, rule_id)

    def rules(self, workspace_id: str) -> list[StoredRule]:
        """The workspace's rules in the order they are tried."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_RULE} FROM routing_rules WHERE workspace_id = ? ORDER BY position, id",
                (workspace_id,),
            ).fetchall()
        return [_stored_rule(row) for row in rows]

    def replace_rule(self, workspace_id: str, rule: Rule, *, if_match: str | None = None) -> StoredRule:
        """Replace everything but the position."""
        with self._transaction() as conn:
            check_version(self._get_rule(conn, workspace_id, rule.id), if_match)
            conn.execute(
                "UPDATE routing_rules SET definition = ?, version = version + 1, updated_at = ?"
                " WHERE workspace_id = ? AND id = ?",
                (_rule_json(rule), to_ms(now_ms()), workspace_id, rule.id),
            )
            return self._get_rule(conn, workspace_id, rule.id)

    def delete_rule(self, workspace_id: str, rule_id: str, *, if_match: str | None = None) -> None:
        """Delete a rule with its round-robin turns and the escalations it still had pending."""
        with self._transaction() as conn:
            check_version(self._get_rule(conn, workspace_id, rule_id), if_match)
            conn.execute(
                "DELETE FROM routing_rules WHERE workspace_id = ? AND id = ?", (workspace_id, rule_id)
            )
            self._forget_rules(conn, workspace_id, [rule_id])

    @staticmethod
    def _forget_rules(conn: sqlite3.Connection, workspace_id: str, rule_ids: Sequence[str]) -> None:
        """Drop the round-robin turns and pending escalations of rules that are gone."""
        for table in ("routing_turns", "routing_timers"):
            conn.executemany(
                f"DELETE FROM {table} WHERE workspace_id = ? AND rule_id = ?",
                [(workspace_id, rule_id) for rule_id in rule_ids],
            )

    def set_rule_order(self, workspace_id: str, ids: Sequence[str]) -> list[StoredRule]:
        """Try the rules in the order of ``ids``, which must list each of the workspace's rules once
        (ValueError otherwise, naming what is wrong)."""
        with self._transaction() as conn:
            known = {
                rule_id
                for (rule_id,) in conn.execute(
                    "SELECT id FROM routing_rules WHERE workspace_id = ?", (workspace_id,)
                )
            }
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            unknown = [i for i in ids if i not in known]
            missing = sorted(known - set(ids))
            for problem, found in (("listed twice", duplicates), ("unknown", unknown), ("missing", missing)):
                if found:
                    raise ValueError(f"every rule of the workspace must be listed once; {problem}: {found}")
            conn.executemany(
                "UPDATE routing_rules SET position = ? WHERE workspace_id = ? AND id = ?",
                [(position, workspace_id, rule_id) for position, rule_id in enumerate(ids)],
            )
        return self.rules(workspace_id)

    # Categories

    def _get_category(self, conn: sqlite3.Connection, workspace_id: str, category_id: str) -> StoredCategory:
        row = conn.execute(
            f"SELECT {_CATEGORY} FROM support_categories WHERE workspace_id = ? AND id = ?",
            (workspace_id, category_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"no category {category_id!r} in this workspace")
        return _stored_category(row)

    def create_category(self, workspace_id: str, category: Category) -> StoredCategory:
        """Conflict when the workspace has a category with that id."""
        at = to_ms(now_ms())
        with self._transaction() as conn:
            try:
                conn.execute(
                    "INSERT INTO support_categories VALUES (?, ?, ?, NULL, 1, ?, ?)",
                    (workspace_id, category.id, _category_json(category), at, at),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"a category {category.id!r} already exists in this workspace") from None
            return self._get_category(conn, workspace_id, category.id)

    def category(self, workspace_id: str, category_id: str) -> StoredCategory:
        with self._lock:
            return self._get_category(self._conn, workspace_id, category_id)

    def categories(self, workspace_id: str) -> list[StoredCategory]:
        """The workspace's categories by id."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_CATEGORY} FROM support_categories WHERE workspace_id = ? ORDER BY id",
                (workspace_id,),
            ).fetchall()
        return [_stored_category(row) for row in rows]

    def replace_category(
        self, workspace_id: str, category: Category, sla_policy_id: str | None, *, if_match: str | None = None
    ) -> StoredCategory:
        with self._transaction() as conn:
            check_version(self._get_category(conn, workspace_id, category.id), if_match)
            conn.execute(
                "UPDATE support_categories SET definition = ?, sla_policy_id = ?, version = version + 1,"
                " updated_at = ? WHERE workspace_id = ? AND id = ?",
                (_category_json(category), sla_policy_id, to_ms(now_ms()), workspace_id, category.id),
            )
            return self._get_category(conn, workspace_id, category.id)

    def set_category_policy(
        self, workspace_id: str, category_id: str, sla_policy_id: str | None
    ) -> StoredCategory:
        """Record which SLA policy carries the category's targets (not a new version of it)."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE support_categories SET sla_policy_id = ? WHERE workspace_id = ? AND id = ?",
                (sla_policy_id, workspace_id, category_id),
            )
            return self._get_category(conn, workspace_id, category_id)

    def delete_category(
        self, workspace_id: str, category_id: str, *, if_match: str | None = None
    ) -> StoredCategory:
        """Delete a category with its subcategories' turns and pending escalations; returns it as it was."""
        with self._transaction() as conn:
            current = self._get_category(conn, workspace_id, category_id)
            check_version(current, if_match)
            conn.execute(
                "DELETE FROM support_categories WHERE workspace_id = ? AND id = ?",
                (workspace_id, category_id),
            )
            self._forget_rules(conn, workspace_id, [rule.id for rule in current.category.rules()])
        return current

    # Round-robin turns

    def take_turn(self, workspace_id: str, rule_id: str, team: str, members: Sequence[str]) -> str:
        """The team member whose turn it is under this rule, remembered for the next ticket."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT last_agent_id FROM routing_turns WHERE workspace_id = ? AND rule_id = ? AND team = ?",
                (workspace_id, rule_id, team),
            ).fetchone()
            chosen = next_in_turn(members, None if row is None else row[0])
            conn.execute(
                "INSERT INTO routing_turns VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id, rule_id, team)"
                " DO UPDATE SET last_agent_id = excluded.last_agent_id",
                (workspace_id, rule_id, team, chosen),
            )
        return chosen

    # Escalation timers

    def add_timer(self, timer: Timer) -> Timer:
        """Start the timer unless the rule already has one running on the ticket (the earlier one
        stays: the ticket has been waiting since then); returns the running one."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO routing_timers VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    timer.workspace_id,
                    timer.ticket_id,
                    timer.rule_id,
                    timer.rule_name,
                    to_ms(timer.due_at),
                    timer.minutes,
                    _json(list(timer.notify)),
                ),
            )
            row = conn.execute(
                "SELECT due_at FROM routing_timers WHERE workspace_id = ? AND ticket_id = ? AND rule_id = ?",
                (timer.workspace_id, timer.ticket_id, timer.rule_id),
            ).fetchone()
        return replace(timer, due_at=from_ms(row[0]))

    def due_timers(self, now: datetime, limit: int) -> list[Timer]:
        """Timers of every workspace due at ``now``, earliest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT workspace_id, ticket_id, rule_id, rule_name, due_at, minutes, notify"
                " FROM routing_timers WHERE due_at <= ?"
                " ORDER BY due_at, workspace_id, ticket_id, rule_id LIMIT ?",
                (to_ms(now), limit),
            ).fetchall()
        return [
            Timer(row[0], row[1], row[2], row[3], from_ms(row[4]), row[5], tuple(orjson.loads(row[6])))
            for row in rows
        ]

    def drop_timer(self, timer: Timer) -> None:
        with self._lock:
            self._conn.execute(
                "DELETE FROM routing_timers WHERE workspace_id = ? AND ticket_id = ? AND rule_id = ?",
                (timer.workspace_id, timer.ticket_id, timer.rule_id),
            )
