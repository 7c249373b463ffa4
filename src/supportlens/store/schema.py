"""The tables, defined once.  Each engine renders them into its own DDL (``store/<engine>/``).

``SCHEMA_VERSION`` is written into the store; an engine opening a store of an older version runs
the upgrade steps in ``MIGRATIONS``, and refuses one written by a newer version.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum

import pyarrow as pa


class ColumnType(Enum):
    STRING = "string"
    LABEL = "label"  # low-cardinality string (category, priority, status, channel)
    TIMESTAMP = "timestamp"  # UTC, millisecond precision
    SMALL_INT = "small_int"
    SEQUENCE = "sequence"  # unsigned 64-bit
    STRING_LIST = "string_list"
    DURATION = "duration"  # signed 64-bit milliseconds
    BOOLEAN = "boolean"
    COUNT = "count"  # unsigned 32-bit


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    # Columns whose values identify a row's current state; engines use them for ordering and
    # deduplication.  Never changed by a later snapshot.
    key: tuple[str, ...]
    # Replaced by newer rows with the same key (current state) rather than appended (a log).
    current_state: bool = False

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def arrow_schema(self) -> pa.Schema:
        return _arrow_schema(self.columns)


@functools.cache
def _arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """Built once per table: the writer asks for a few on every commit."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable) for c in columns])


ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.STRING: pa.string(),
    ColumnType.LABEL: pa.string(),
    ColumnType.TIMESTAMP: pa.timestamp("ms", tz="UTC"),
    ColumnType.SMALL_INT: pa.int16(),
    ColumnType.SEQUENCE: pa.uint64(),
    ColumnType.STRING_LIST: pa.list_(pa.string()),
    ColumnType.DURATION: pa.int64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.COUNT: pa.uint32(),
}

_S, _L, _T = ColumnType.STRING, ColumnType.LABEL, ColumnType.TIMESTAMP

_TICKET_COLUMNS: tuple[Column, ...] = (
    Column("workspace_id", _S),
    Column("ticket_id", _S),
    Column("customer_id", _S, nullable=True),
    Column("agent_id", _S, nullable=True),
    Column("category", _L, nullable=True),
    Column("priority", _L, nullable=True),
    Column("status", _L, nullable=True),
    Column("created_at", _T),
    Column("first_response_at", _T, nullable=True),
    Column("resolved_at", _T, nullable=True),
    Column("satisfaction_score", ColumnType.SMALL_INT, nullable=True),
    Column("tags", ColumnType.STRING_LIST),
    Column("updated_at", _T, nullable=True),
    Column("channel", _L, nullable=True),
    Column("subject", _S, nullable=True),
    # Derived at ingestion (METRICS.md definitions) so that queries scan ready values.
    Column("response_ms", ColumnType.DURATION, nullable=True),  # first_response_at - created_at
    Column("resolution_ms", ColumnType.DURATION, nullable=True),  # resolved_at - created_at
    Column("is_resolved", ColumnType.BOOLEAN),  # status resolved or closed
    # updated_at, or the arrival time when a snapshot has none: newest version_at wins, then seq.
    Column("version_at", _T),
    Column("seq", ColumnType.SEQUENCE),
    Column("received_at", _T),
    # Last, as schema version 4 added it: the team that owns the ticket (picks its calendar).
    Column("group_id", _S, nullable=True),
)

# Per-ticket time facts (analytics/facts.py), kept by the writer on the current state of tickets with
# events (null on the others): valid while ``facts_key`` matches the workspace's status names and the
# ticket's calendar, for evaluation times from ``last_event_at`` on.  Durations by clock: calendar
# time and business time of the ticket's calendar.
FACT_CLOCKS: tuple[str, ...] = ("calendar", "business")
_FACT_CATEGORIES = ("new", "open", "pending", "on_hold", "solved", "closed")  # StatusCategory values
_D, _B, _N = ColumnType.DURATION, ColumnType.BOOLEAN, ColumnType.COUNT
FACT_COLUMNS: tuple[Column, ...] = (
    Column("last_event_at", _T, nullable=True),  # set exactly on the tickets that have events
    Column("facts_key", _S, nullable=True),
    Column("timeline_created_at", _T, nullable=True),
    Column("timeline_status", _L, nullable=True),  # the current status by the events
    Column("status_since", _T, nullable=True),  # when it began
    Column("reopens", _N, nullable=True),
    Column("agent_replies", _N, nullable=True),
    Column("one_touch", _B, nullable=True),
    Column("first_contact_resolution", _B, nullable=True),
    Column("ongoing", _B, nullable=True),
    Column("created_outside_business_hours", _B, nullable=True),
    *(
        column
        for clock in FACT_CLOCKS
        for column in (
            Column(f"{clock}_first_response_ms", _D, nullable=True),
            Column(f"{clock}_first_resolution_ms", _D, nullable=True),
            Column(f"{clock}_full_resolution_ms", _D, nullable=True),
            # Closed intervals only: the current one runs until the evaluation time.
            *(Column(f"{clock}_in_{category}_ms", _D, nullable=True) for category in _FACT_CATEGORIES),
            Column(f"{clock}_in_current_status_ms", _D, nullable=True),  # its earlier visits
            Column(f"{clock}_other_statuses", _S, nullable=True),  # '"name":minutes,...' JSON fragment
        )
    ),
)

TICKETS = Table(
    "tickets", _TICKET_COLUMNS + FACT_COLUMNS, key=("workspace_id", "ticket_id"), current_state=True
)
TICKET_SNAPSHOTS = Table("ticket_snapshots", _TICKET_COLUMNS, key=("workspace_id", "ticket_id"))
QUARANTINE = Table(
    "quarantine",
    (
        Column("workspace_id", _S),
        Column("datasource", _L),
        Column("received_at", _T),
        Column("seq", ColumnType.SEQUENCE),
        Column("column_name", _S),
        Column("error", _S),
        Column("raw", _S),
    ),
    key=("workspace_id", "datasource", "received_at", "seq"),
)

# The activity log (METRICS.md ticket event): append-only, one row per event_id and workspace.
TICKET_EVENTS = Table(
    "ticket_events",
    (
        Column("workspace_id", _S),
        Column("ticket_id", _S),
        Column("occurred_at", _T),  # the event's ``at`` (AT is an SQL keyword)
        Column("event_id", _S),
        Column("type", _L),
        Column("actor_type", _L, nullable=True),
        Column("actor_id", _S, nullable=True),
        Column("field", _S, nullable=True),
        Column("from_value", _S, nullable=True),
        Column("to_value", _S, nullable=True),
        Column("score", ColumnType.SMALL_INT, nullable=True),
        Column("customer_id", _S, nullable=True),
        Column("agent_id", _S, nullable=True),
        Column("group_id", _S, nullable=True),
        Column("category", _L, nullable=True),
        Column("priority", _L, nullable=True),
        Column("status", _L, nullable=True),
        Column("channel", _L, nullable=True),
        Column("subject", _S, nullable=True),
        Column("tags", ColumnType.STRING_LIST),
        Column("source", _L),  # events_api, freshdesk, ...
        Column("seq", ColumnType.SEQUENCE),
        Column("received_at", _T),
    ),
    # Read per ticket in time order; event ids never change, so they complete the key.
    key=("workspace_id", "ticket_id", "occurred_at", "event_id"),
)

TABLES: tuple[Table, ...] = (TICKETS, TICKET_SNAPSHOTS, QUARANTINE, TICKET_EVENTS)
# The tables whose rows belong to one ticket (``ticket_id``).
TICKET_TABLES: tuple[Table, ...] = (TICKETS, TICKET_SNAPSHOTS, TICKET_EVENTS)


class Backfill(Enum):
    """How an added column is computed for the rows a store already holds (engines render these)."""

    RESPONSE_MS = "response_ms"  # first_response_at - created_at, in ms
    RESOLUTION_MS = "resolution_ms"  # resolved_at - created_at, in ms
    IS_RESOLVED = "is_resolved"  # status in RESOLVED_STATUSES
    UNKNOWN = "unknown"  # NULL: the stored rows never said


@dataclass(frozen=True, slots=True)
class AddColumn:
    table: Table
    column: Column
    backfill: Backfill


def _derived_columns(table: Table) -> tuple[AddColumn, ...]:
    by_name = {column.name: column for column in table.columns}
    derived = (Backfill.RESPONSE_MS, Backfill.RESOLUTION_MS, Backfill.IS_RESOLVED)
    return tuple(AddColumn(table, by_name[backfill.value], backfill) for backfill in derived)


def _unknown_column(table: Table, name: str) -> AddColumn:
    column = next(c for c in table.columns if c.name == name)
    return AddColumn(table, column, Backfill.UNKNOWN)


@dataclass(frozen=True, slots=True)
class CreateTable:
    table: Table


@dataclass(frozen=True, slots=True)
class Restate:
    """Every workspace's tickets must be restated by the writer (their derived columns recomputed
    from their events) before the store serves queries: the engine cannot do that in SQL."""


SCHEMA_VERSION = 6

# The steps that bring a store from version N-1 to N, by N.
MIGRATIONS: dict[int, tuple[AddColumn | CreateTable | Restate, ...]] = {
    2: _derived_columns(TICKETS) + _derived_columns(TICKET_SNAPSHOTS),
    3: (CreateTable(TICKET_EVENTS),),
    # Tickets fed by events get their group when restated (docs/decisions.md, "Groups").
    4: (_unknown_column(TICKETS, "group_id"), _unknown_column(TICKET_SNAPSHOTS, "group_id")),
    5: (*(_unknown_column(TICKETS, column.name) for column in FACT_COLUMNS), Restate()),
    # Deleted tickets leave the current state (ingest/state.py): restating removes those stored.
    6: (Restate(),),
}


class SchemaError(RuntimeError):
    """The store cannot be used by this version of SupportLens."""
