"""The ticket management records: tickets (the documents people work on), their comments, history
(which is also the outbox of their activity-log events), relationships, agents and per-workspace
ticket settings.

They live in their own SQLite file beside the analytics store: rows updated in place under
optimistic concurrency, searched through indexes and an FTS5 index of titles and descriptions.
Everything analytics needs reaches the analytics store as ticket events through the ingest service
(tickets/service.py); this file is never read by a pipe.  Every method is scoped by workspace id.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from supportlens.auth.repository import Conflict, NotFound
from supportlens.sqlite import SqliteStore
from supportlens.tickets.records import (
    Agent,
    CommentRecord,
    HistoryEntry,
    TicketRecord,
    from_ms,
    to_ms,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ticket_settings (
    workspace_id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL,
    reopen_on_customer_reply INTEGER NOT NULL
);
-- Live (not deleted) tickets per workspace, kept with every create and delete: the total of an
-- unfiltered search, and the base of the search's choice of plan.
CREATE TABLE IF NOT EXISTS ticket_counts (
    workspace_id TEXT PRIMARY KEY,
    live INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ticket_numbers (
    workspace_id TEXT NOT NULL,
    year INTEGER NOT NULL,
    last INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, year)
);
CREATE TABLE IF NOT EXISTS tickets (
    row_id INTEGER PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    number TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    status TEXT NOT NULL,
    priority TEXT,
    severity TEXT,
    category TEXT,
    subcategory TEXT,
    customer_id TEXT,
    assigned_to TEXT,
    group_id TEXT,
    channel TEXT,
    tags TEXT NOT NULL,
    document TEXT NOT NULL,
    escalation_level INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    first_response_at INTEGER,
    resolved_at INTEGER,
    closed_at INTEGER,
    deleted_at INTEGER,
    merged_into TEXT,
    version INTEGER NOT NULL,
    UNIQUE (workspace_id, id),
    UNIQUE (workspace_id, number)
);
-- Searches see live tickets only: partial indexes, so that a count needs no table row.  Each index
-- leads with one filter and covers the usual companions, so a combination is counted in the index.
CREATE INDEX IF NOT EXISTS tickets_live_created ON tickets
    (workspace_id, created_at, status, priority, category, assigned_to, customer_id) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS tickets_live_updated ON tickets (workspace_id, updated_at)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS tickets_live_status ON tickets
    (workspace_id, status, priority, category, assigned_to, channel, created_at) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS tickets_live_customer ON tickets (workspace_id, customer_id, created_at)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS tickets_live_assignee ON tickets (workspace_id, assigned_to, status, created_at)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS tickets_live_category ON tickets
    (workspace_id, category, created_at, priority, status) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS tickets_live_priority ON tickets (workspace_id, priority, created_at, status)
    WHERE deleted_at IS NULL;
-- A ticket's tags, with copies of the attributes searches combine them with (rewritten with every
-- change), so that a tag search narrows down within this table before reading any ticket.
CREATE TABLE IF NOT EXISTS ticket_tags (
    workspace_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    priority TEXT,
    category TEXT,
    assigned_to TEXT,
    customer_id TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, tag, row_id)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS ticket_text USING fts5(title, description);
CREATE TABLE IF NOT EXISTS ticket_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    type TEXT NOT NULL,
    actor_type TEXT,
    actor_id TEXT,
    details TEXT NOT NULL,
    event TEXT,
    delivered INTEGER NOT NULL,
    UNIQUE (workspace_id, event_id)
);
CREATE INDEX IF NOT EXISTS ticket_history_ticket ON ticket_history (workspace_id, ticket_id, seq);
CREATE INDEX IF NOT EXISTS ticket_history_outbox ON ticket_history (seq) WHERE delivered = 0;
CREATE TABLE IF NOT EXISTS ticket_comments (
    workspace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    content TEXT NOT NULL,
    type TEXT NOT NULL,
    visibility TEXT NOT NULL,
    author_type TEXT NOT NULL,
    author_id TEXT,
    author_name TEXT,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX IF NOT EXISTS ticket_comments_ticket ON ticket_comments (workspace_id, ticket_id, created_at);
CREATE TABLE IF NOT EXISTS ticket_relationships (
    workspace_id TEXT NOT NULL,
    type TEXT NOT NULL,
    source_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, type, source_id, target_id)
);
CREATE INDEX IF NOT EXISTS ticket_relationships_target ON ticket_relationships (workspace_id, target_id);
CREATE TABLE IF NOT EXISTS agents (
    workspace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT,
    specialization TEXT,
    teams TEXT NOT NULL,
    active INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
"""

# Ticket attributes kept in columns (searched and sorted); the rest of a record is its document.
_COLUMNS = (
    "id",
    "number",
    "title",
    "description",
    "status",
    "priority",
    "severity",
    "category",
    "subcategory",
    "customer_id",
    "assigned_to",
    "group_id",
    "channel",
    "escalation_level",
    "merged_into",
    "version",
)
_TIMES = ("created_at", "updated_at", "first_response_at", "resolved_at", "closed_at", "deleted_at")
_DOCUMENT = tuple(
    f.name for f in fields(TicketRecord) if f.name not in {*_COLUMNS, *_TIMES, "workspace_id", "tags"}
)
_SELECT = ", ".join(("workspace_id", *_COLUMNS, *_TIMES, "tags", "document"))

_TAG_COPIES = ("status", "priority", "category", "assigned_to")
SortField = Literal["created_at", "updated_at", "priority", "status", "number", "escalation_level"]
_MMAP_BYTES = 1 << 30
_CACHE_KIB = 64 * 1024
# A page in creation order is read along the creation index, skipping what does not match, when
# about this many index entries at most are expected before the page is full.
_ORDERED_SCAN_ROWS = 100_000
# The query planner's statistics are refreshed once the table grew by this factor since the last time.
_REANALYZE_GROWTH = 1.5
# Priorities sort by urgency, not by name.
_PRIORITY_RANK = (
    "CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END"
)
_WORD = re.compile(r"\w+", re.UNICODE)


class StaleVersion(Conflict):
    """The record changed since the version the caller read (If-Match)."""


@dataclass(frozen=True, slots=True)
class TicketSettings:
    prefix: str
    reopen_on_customer_reply: bool = True


@dataclass(frozen=True, slots=True)
class TicketQuery:
    """A search: every given filter must hold; lists match any of their values."""

    customer_id: str | None = None
    status: Sequence[str] = ()
    priority: Sequence[str] = ()
    category: Sequence[str] = ()
    assigned_to: Sequence[str] = ()
    group_id: Sequence[str] = ()
    channel: Sequence[str] = ()
    tags: Sequence[str] = ()  # any of them
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    text: str | None = None  # words of the title or description, each as a prefix
    sort: SortField = "created_at"
    descending: bool = True
    page: int = 1
    limit: int = 25


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _time(value: datetime | None) -> int | None:
    return None if value is None else to_ms(value)


class TicketRepository(SqliteStore):
    def __init__(self, path: Path, *, ordered_scan_rows: int = _ORDERED_SCAN_ROWS) -> None:
        super().__init__(path, _SCHEMA)
        self._ordered_scan_rows = ordered_scan_rows
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # Searches read index pages all over the file: map it, and keep more pages than the default.
        self._conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
        self._conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        self._analyzed_rows = 0
        self._rows = 0
        self._analyze()

    def _analyze(self) -> None:
        """Statistics for the query planner, from a sample (fast at any size): without them SQLite
        may pick the status index for a one-customer search and read a tenth of the table."""
        with self._lock:
            self._conn.execute("PRAGMA analysis_limit=1000")
            self._conn.execute("ANALYZE")
            self._rows = self._analyzed_rows = (
                self._conn.execute("SELECT max(row_id) FROM tickets").fetchone()[0] or 0
            )

    # Settings and numbers

    def settings(self, workspace_id: str, default_prefix: str) -> TicketSettings:
        with self._lock:
            row = self._conn.execute(
                "SELECT prefix, reopen_on_customer_reply FROM ticket_settings WHERE workspace_id = ?",
                (workspace_id,),
            ).fetchone()
        return TicketSettings(default_prefix) if row is None else TicketSettings(row[0], bool(row[1]))

    def set_settings(self, workspace_id: str, settings: TicketSettings) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO ticket_settings VALUES (?, ?, ?) ON CONFLICT (workspace_id) DO UPDATE SET"
                " prefix = excluded.prefix, reopen_on_customer_reply = excluded.reopen_on_customer_reply",
                (workspace_id, settings.prefix, int(settings.reopen_on_customer_reply)),
            )

    @staticmethod
    def _next_number(conn: sqlite3.Connection, workspace_id: str, year: int) -> int:
        """The next serial of the workspace's year: kept apart from tickets, so that a deleted or
        merged ticket's number is never given again."""
        row = conn.execute(
            "INSERT INTO ticket_numbers VALUES (?, ?, 1) ON CONFLICT (workspace_id, year)"
            " DO UPDATE SET last = last + 1 RETURNING last",
            (workspace_id, year),
        ).fetchone()
        serial: int = row[0]
        return serial

    # Tickets

    def reserve_number(self, workspace_id: str, year: int, prefix: str) -> str:
        """The next ticket number, ``<PREFIX>-<YEAR>-<6 digits>`` (more digits past 999,999)."""
        with self._transaction() as conn:
            return f"{prefix}-{year}-{self._next_number(conn, workspace_id, year):06d}"

    def create(self, tickets: Sequence[tuple[TicketRecord, Sequence[HistoryEntry]]]) -> None:
        """Stores new tickets, each with its history, in one transaction."""
        with self._transaction() as conn:
            for workspace_id in {record.workspace_id for record, _ in tickets}:
                added = sum(1 for record, _ in tickets if record.workspace_id == workspace_id)
                self._count(conn, workspace_id, added)
            for record, history in tickets:
                values = self._row(record)
                placeholders = ", ".join("?" * len(values))
                cursor = conn.execute(f"INSERT INTO tickets ({_SELECT}) VALUES ({placeholders})", values)
                self._index(conn, record, cursor.lastrowid or 0, fresh=True)
                self._append(conn, record.workspace_id, history)
        self._rows += len(tickets)
        if self._rows > max(1000, self._analyzed_rows * _REANALYZE_GROWTH):
            self._analyze()

    def save(
        self,
        record: TicketRecord,
        history: Sequence[HistoryEntry],
        *,
        comment: CommentRecord | None = None,
    ) -> TicketRecord:
        """Stores ``record`` as the next version of the one at ``record.version`` (StaleVersion when
        another change came first), with its history and the comment that caused it, if any."""
        saved = replace(record, version=record.version + 1)
        values = self._row(saved)
        assignments = ", ".join(f"{name} = ?" for name in _SELECT.split(", "))
        with self._transaction() as conn:
            before = conn.execute(
                "SELECT row_id, deleted_at IS NULL FROM tickets"
                " WHERE workspace_id = ? AND id = ? AND version = ?",
                (record.workspace_id, record.id, record.version),
            ).fetchone()
            if before is None:
                raise StaleVersion(f"ticket {record.id!r} changed since version {record.version}")
            row_id, was_live = before
            conn.execute(f"UPDATE tickets SET {assignments} WHERE row_id = ?", (*values, row_id))
            if was_live and saved.deleted_at is not None:
                self._count(conn, record.workspace_id, -1)
            self._index(conn, saved, row_id, fresh=False)
            if comment is not None:
                conn.execute(
                    "INSERT INTO ticket_comments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.workspace_id,
                        comment.id,
                        comment.ticket_id,
                        comment.content,
                        comment.type,
                        comment.visibility,
                        comment.author_type,
                        comment.author_id,
                        comment.author_name,
                        _json(comment.metadata),
                        to_ms(comment.created_at),
                    ),
                )
            self._append(conn, record.workspace_id, history)
        return saved

    @staticmethod
    def _live(conn: sqlite3.Connection, workspace_id: str) -> int:
        """The workspace's live tickets (counted once, then kept by ``_count``)."""
        row = conn.execute(
            "SELECT live FROM ticket_counts WHERE workspace_id = ?", (workspace_id,)
        ).fetchone()
        if row is not None:
            live: int = row[0]
            return live
        live = conn.execute(
            "SELECT count(*) FROM tickets WHERE workspace_id = ? AND deleted_at IS NULL", (workspace_id,)
        ).fetchone()[0]
        conn.execute("INSERT INTO ticket_counts VALUES (?, ?)", (workspace_id, live))
        return live

    def _count(self, conn: sqlite3.Connection, workspace_id: str, change: int) -> None:
        self._live(conn, workspace_id)  # before this change's rows are in
        conn.execute(
            "UPDATE ticket_counts SET live = live + ? WHERE workspace_id = ?", (change, workspace_id)
        )

    @staticmethod
    def _row(record: TicketRecord) -> tuple[Any, ...]:
        document = {name: getattr(record, name) for name in _DOCUMENT}
        if record.estimated_resolution is not None:
            document["estimated_resolution"] = to_ms(record.estimated_resolution)
        return (
            record.workspace_id,
            *(getattr(record, name) for name in _COLUMNS),
            *(_time(getattr(record, name)) for name in _TIMES),
            _json(list(record.tags)),
            _json(document),
        )

    @staticmethod
    def _index(conn: sqlite3.Connection, record: TicketRecord, row_id: int, *, fresh: bool) -> None:
        """Tags and text of the record's current version."""
        if not fresh:
            conn.execute(
                "DELETE FROM ticket_tags WHERE workspace_id = ? AND row_id = ?", (record.workspace_id, row_id)
            )
            conn.execute("DELETE FROM ticket_text WHERE rowid = ?", (row_id,))
        copies = (record.status, record.priority, record.category, record.assigned_to, record.customer_id)
        conn.executemany(
            "INSERT OR IGNORE INTO ticket_tags VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(record.workspace_id, tag, row_id, *copies, to_ms(record.created_at)) for tag in record.tags],
        )
        conn.execute(
            "INSERT INTO ticket_text (rowid, title, description) VALUES (?, ?, ?)",
            (row_id, record.title, record.description or ""),
        )

    @staticmethod
    def _record(row: Sequence[Any]) -> TicketRecord:
        values: dict[str, Any] = {"workspace_id": row[0]}
        values.update(zip(_COLUMNS, row[1 : 1 + len(_COLUMNS)], strict=True))
        start = 1 + len(_COLUMNS)
        for name, value in zip(_TIMES, row[start : start + len(_TIMES)], strict=True):
            values[name] = None if value is None else from_ms(value)
        values["tags"] = tuple(orjson.loads(row[-2]))
        document = orjson.loads(row[-1])
        if document.get("estimated_resolution") is not None:
            document["estimated_resolution"] = from_ms(document["estimated_resolution"])
        values.update(document)
        return TicketRecord(**values)

    def get(self, workspace_id: str, ref: str, *, fixed: Mapping[str, str] | None = None) -> TicketRecord:
        """A live ticket by id or number (NotFound if absent, deleted or outside ``fixed``)."""
        where, params = _fixed_clauses(fixed or {})
        column = "number" if _looks_like_number(ref) else "id"
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_SELECT} FROM tickets WHERE workspace_id = ? AND {column} = ?"
                f" AND deleted_at IS NULL{where}",
                (workspace_id, ref, *params),
            ).fetchone()
        if row is None:
            raise NotFound(f"no ticket {ref!r} in this workspace")
        return self._record(row)

    def search(
        self, workspace_id: str, query: TicketQuery, *, fixed: Mapping[str, str] | None = None
    ) -> tuple[list[TicketRecord], int]:
        """One page of the live tickets that match, and how many match in all."""
        clauses = ["t.workspace_id = ?", "t.deleted_at IS NULL"]
        params: list[Any] = [workspace_id]
        if query.customer_id is not None:
            clauses.append("t.customer_id = ?")
            params.append(query.customer_id)
        for column in ("status", "priority", "category", "assigned_to", "group_id", "channel"):
            values = getattr(query, column)
            if values:
                clauses.append(f"t.{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        for column, operator, moment in (
            ("created_at", ">=", query.created_after),
            ("created_at", "<", query.created_before),
            ("updated_at", ">=", query.updated_after),
        ):
            if moment is not None:
                clauses.append(f"t.{column} {operator} ?")
                params.append(to_ms(moment))
        if query.tags:
            # The same filters again inside, on the tag table's copies: only matching rows come out.
            inner = ["workspace_id = ?", f"tag IN ({', '.join('?' * len(query.tags))})"]
            inner_params: list[Any] = [workspace_id, *query.tags]
            for column in _TAG_COPIES:
                values = getattr(query, column)
                if values:
                    inner.append(f"{column} IN ({', '.join('?' * len(values))})")
                    inner_params.extend(values)
            if query.customer_id is not None:
                inner.append("customer_id = ?")
                inner_params.append(query.customer_id)
            if query.created_after is not None:
                inner.append("created_at >= ?")
                inner_params.append(to_ms(query.created_after))
            clauses.append(f"t.row_id IN (SELECT row_id FROM ticket_tags WHERE {' AND '.join(inner)})")
            params.extend(inner_params)
        if query.text:
            words = _WORD.findall(query.text)
            if words:
                clauses.append("t.row_id IN (SELECT rowid FROM ticket_text WHERE ticket_text MATCH ?)")
                params.append(" ".join(f'"{word}"*' for word in words))
        fixed_where, fixed_params = _fixed_clauses(fixed or {}, alias="t.")
        filtered = len(clauses) > 2 or bool(fixed_where)
        where = " AND ".join(clauses) + fixed_where
        params.extend(fixed_params)
        order_by = (
            _PRIORITY_RANK.replace("priority", "t.priority")
            if query.sort == "priority"
            else f"t.{query.sort}"
        )
        direction = "DESC" if query.descending else "ASC"
        offset = (query.page - 1) * query.limit
        with self._lock:
            live = self._live(self._conn, workspace_id)
            total = (
                self._conn.execute(f"SELECT count(*) FROM tickets t WHERE {where}", params).fetchone()[0]
                if filtered
                else live
            )
            # Many matches (a broad word, a common tag) sorted by creation: walking the creation index
            # finds a page after a few entries, where fetching every match and sorting them costs
            # hundreds of milliseconds.  Few matches: fetch them by their own index and sort.
            walk = (
                query.sort == "created_at"
                and total > 0
                and (offset + query.limit) * live <= total * self._ordered_scan_rows
            )
            source = "tickets t INDEXED BY tickets_live_created" if walk else "tickets t"
            rows = self._conn.execute(
                f"SELECT {', '.join('t.' + c for c in _SELECT.split(', '))} FROM {source} WHERE {where}"
                f" ORDER BY {order_by} {direction}, t.row_id {direction} LIMIT ? OFFSET ?",
                (*params, query.limit, offset),
            ).fetchall()
        return [self._record(row) for row in rows], total

    def open_load(
        self, workspace_id: str, agent_ids: Sequence[str], open_statuses: Sequence[str]
    ) -> dict[str, int]:
        """Live tickets per agent among ``agent_ids`` whose status is one of ``open_statuses``."""
        if not agent_ids:
            return {}
        with self._lock:
            rows = self._conn.execute(
                "SELECT assigned_to, count(*) FROM tickets WHERE workspace_id = ? AND deleted_at IS NULL"
                f" AND assigned_to IN ({', '.join('?' * len(agent_ids))})"
                f" AND status IN ({', '.join('?' * len(open_statuses))}) GROUP BY assigned_to",
                (workspace_id, *agent_ids, *open_statuses),
            ).fetchall()
        counts = dict.fromkeys(agent_ids, 0)
        counts.update(dict(rows))
        return counts

    # History (and the outbox of activity-log events)

    @staticmethod
    def _append(conn: sqlite3.Connection, workspace_id: str, history: Sequence[HistoryEntry]) -> None:
        conn.executemany(
            "INSERT INTO ticket_history (workspace_id, ticket_id, event_id, at, type, actor_type, actor_id,"
            " details, event, delivered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    workspace_id,
                    entry.ticket_id,
                    entry.event_id,
                    to_ms(entry.at),
                    entry.type,
                    entry.actor_type,
                    entry.actor_id,
                    _json(entry.details),
                    None if entry.event is None else _json(entry.event),
                    int(entry.event is None),
                )
                for entry in history
            ],
        )

    def record(self, workspace_id: str, history: Sequence[HistoryEntry]) -> None:
        """History entries that change no ticket field (a notification sent, a rule matched)."""
        with self._transaction() as conn:
            self._append(conn, workspace_id, history)

    @staticmethod
    def _entry(row: Sequence[Any]) -> HistoryEntry:
        return HistoryEntry(
            event_id=row[0],
            ticket_id=row[1],
            at=from_ms(row[2]),
            type=row[3],
            actor_type=row[4],
            actor_id=row[5],
            details=orjson.loads(row[6]),
            event=None if row[7] is None else orjson.loads(row[7]),
        )

    _ENTRY = "event_id, ticket_id, at, type, actor_type, actor_id, details, event"

    def history(
        self, workspace_id: str, ticket_id: str, *, page: int, limit: int
    ) -> tuple[list[HistoryEntry], int]:
        with self._lock:
            total = self._conn.execute(
                "SELECT count(*) FROM ticket_history WHERE workspace_id = ? AND ticket_id = ?",
                (workspace_id, ticket_id),
            ).fetchone()[0]
            rows = self._conn.execute(
                f"SELECT {self._ENTRY} FROM ticket_history WHERE workspace_id = ? AND ticket_id = ?"
                " ORDER BY seq LIMIT ? OFFSET ?",
                (workspace_id, ticket_id, limit, (page - 1) * limit),
            ).fetchall()
        return [self._entry(row) for row in rows], total

    def events_of(self, workspace_id: str, ticket_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The activity-log events of these tickets' histories (as the Events API takes them), in order."""
        if not ticket_ids:
            return {}
        with self._lock:
            rows = self._conn.execute(
                "SELECT ticket_id, event FROM ticket_history WHERE workspace_id = ?"
                f" AND ticket_id IN ({', '.join('?' * len(ticket_ids))}) AND event IS NOT NULL ORDER BY seq",
                (workspace_id, *ticket_ids),
            ).fetchall()
        found: dict[str, list[dict[str, Any]]] = {}
        for ticket_id, event in rows:
            found.setdefault(ticket_id, []).append(orjson.loads(event))
        return found

    def undelivered(self, limit: int) -> list[tuple[str, HistoryEntry]]:
        """Events not yet acknowledged by the activity log, oldest first, with their workspace."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT workspace_id, {self._ENTRY} FROM ticket_history"
                " WHERE delivered = 0 ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [(row[0], self._entry(row[1:])) for row in rows]

    def mark_delivered(self, workspace_id: str, event_ids: Sequence[str]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE ticket_history SET delivered = 1 WHERE workspace_id = ? AND event_id = ?",
                [(workspace_id, event_id) for event_id in event_ids],
            )

    # Comments

    _COMMENT = (
        "id, ticket_id, content, type, visibility, author_type, author_id, author_name, created_at, metadata"
    )

    def comments(
        self, workspace_id: str, ticket_id: str, *, visibility: str | None, page: int, limit: int
    ) -> tuple[list[CommentRecord], int]:
        where = "workspace_id = ? AND ticket_id = ?" + (" AND visibility = ?" if visibility else "")
        params: tuple[Any, ...] = (workspace_id, ticket_id, *((visibility,) if visibility else ()))
        with self._lock:
            total = self._conn.execute(
                f"SELECT count(*) FROM ticket_comments WHERE {where}", params
            ).fetchone()[0]
            rows = self._conn.execute(
                f"SELECT {self._COMMENT} FROM ticket_comments WHERE {where}"
                " ORDER BY created_at, id LIMIT ? OFFSET ?",
                (*params, limit, (page - 1) * limit),
            ).fetchall()
        return [
            CommentRecord(
                id=row[0],
                ticket_id=row[1],
                content=row[2],
                type=row[3],
                visibility=row[4],
                author_type=row[5],
                author_id=row[6],
                author_name=row[7],
                created_at=from_ms(row[8]),
                metadata=orjson.loads(row[9]),
            )
            for row in rows
        ], total

    # Relationships

    def relate(self, workspace_id: str, kind: str, source_id: str, target_id: str, at: datetime) -> bool:
        """False when the relationship already existed."""
        with self._lock:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO ticket_relationships VALUES (?, ?, ?, ?, ?)",
                (workspace_id, kind, source_id, target_id, to_ms(at)),
            )
        return cursor.rowcount == 1

    def unrelate(self, workspace_id: str, kind: str, source_id: str, target_id: str) -> bool:
        with self._lock:
            cursor = self._conn.execute(
                "DELETE FROM ticket_relationships"
                " WHERE workspace_id = ? AND type = ? AND source_id = ? AND target_id = ?",
                (workspace_id, kind, source_id, target_id),
            )
        return cursor.rowcount == 1

    def relationships(self, workspace_id: str, ticket_id: str) -> list[tuple[str, str, str, datetime]]:
        """(type, source, target, since) of every relationship the ticket is part of."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT type, source_id, target_id, created_at FROM ticket_relationships"
                " WHERE workspace_id = ? AND (source_id = ? OR target_id = ?) ORDER BY created_at",
                (workspace_id, ticket_id, ticket_id),
            ).fetchall()
        return [(kind, source, target, from_ms(at)) for kind, source, target, at in rows]

    # Agents

    def put_agent(self, workspace_id: str, agent: Agent) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO agents VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, id) DO UPDATE SET"
                " name = excluded.name, email = excluded.email, specialization = excluded.specialization,"
                " teams = excluded.teams, active = excluded.active",
                (
                    workspace_id,
                    agent.id,
                    agent.name,
                    agent.email,
                    agent.specialization,
                    _json(list(agent.teams)),
                    int(agent.active),
                ),
            )

    def delete_agent(self, workspace_id: str, agent_id: str) -> None:
        with self._lock:
            cursor = self._conn.execute(
                "DELETE FROM agents WHERE workspace_id = ? AND id = ?", (workspace_id, agent_id)
            )
        if cursor.rowcount == 0:
            raise NotFound(f"no agent {agent_id!r} in this workspace")

    def agents(self, workspace_id: str, ids: Sequence[str] | None = None) -> list[Agent]:
        """The workspace's agents by id (only ``ids`` when given)."""
        where, params = "workspace_id = ?", [workspace_id]
        if ids is not None:
            if not ids:
                return []
            where += f" AND id IN ({', '.join('?' * len(ids))})"
            params.extend(ids)
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, name, email, specialization, teams, active"
                f" FROM agents WHERE {where} ORDER BY id",
                params,
            ).fetchall()
        return [Agent(r[0], r[1], r[2], r[3], tuple(orjson.loads(r[4])), bool(r[5])) for r in rows]


# A token's fixed filters name analytics columns; these are the record columns they mean.
_FIXED_COLUMNS = {
    "ticket_id": "id",
    "customer_id": "customer_id",
    "agent_id": "assigned_to",
    "group_id": "group_id",
    "category": "category",
    "priority": "priority",
    "status": "status",
    "channel": "channel",
}


def _fixed_clauses(fixed: Mapping[str, str], alias: str = "") -> tuple[str, list[str]]:
    clauses = "".join(f" AND {alias}{_FIXED_COLUMNS[column]} = ?" for column in fixed)
    return clauses, list(fixed.values())


def default_ticket_prefix(workspace_name: str) -> str:
    """Ticket numbers of a workspace start with up to four letters or digits of its name."""
    letters = "".join(c for c in workspace_name.upper() if c.isascii() and c.isalnum())
    return letters[:4] or "SL"


_NUMBER = re.compile(r"^[A-Z0-9]{1,10}-\d{4}-\d{6,}$")


def _looks_like_number(ref: str) -> bool:
    return _NUMBER.match(ref) is not None
