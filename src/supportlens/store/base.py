"""The engine interface: everything above ``store/`` talks to storage through these two classes.

``Dialect`` renders the few SQL fragments that differ between engines, so that every metric query
is written once (``analytics/``).  ``Engine`` owns connections, DDL, writes and query execution.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from supportlens.domain.events import HISTORY_FILTER
from supportlens.store.schema import (
    MIGRATIONS,
    QUARANTINE,
    SCHEMA_VERSION,
    TABLES,
    TICKET_EVENTS,
    TICKET_SNAPSHOTS,
    TICKETS,
    AddColumn,
    CreateTable,
    Restate,
    SchemaError,
    Table,
)


def _all(table: Table) -> str:
    """Every column in schema order (an upgraded store may hold them in another order)."""
    return ", ".join(table.column_names)


# The writer's own reads are part of committing a batch: generous, but never unbounded.
_WRITER_READ_TIMEOUT = 600.0


class ParamType(Enum):
    STRING = "string"
    TIMESTAMP = "timestamp"
    FLOAT = "float"
    INT = "int"


class Dialect(ABC):
    """SQL fragments whose spelling differs between engines."""

    @abstractmethod
    def param(self, name: str, kind: ParamType) -> str:
        """Placeholder for a bound parameter."""

    @abstractmethod
    def table(self, table: Table) -> str:
        """How to read a table; current-state tables read only the newest row per key."""

    @abstractmethod
    def count_if(self, condition: str) -> str: ...

    @abstractmethod
    def quantiles(self, expression: str, levels: tuple[float, ...]) -> str:
        """Linearly interpolated quantiles (R-7, Excel PERCENTILE.INC), skipping nulls, as one
        list value computed in one pass (null, or NaNs, when there is nothing)."""

    @abstractmethod
    def utc_quarter_hour(self, column: str) -> str:
        """The start of the UTC quarter hour holding ``column``, as a timestamp."""

    @abstractmethod
    def in_list(self, column: str, name: str) -> str:
        """``column`` is one of the strings of the list parameter ``name`` (a set lookup)."""

    @abstractmethod
    def row_hash(self, expressions: Sequence[str]) -> str:
        """A 64-bit hash of the values of ``expressions`` (a null hashes unlike any value)."""

    @abstractmethod
    def hash_halves(self, hashed: str) -> tuple[str, str]:
        """The high and low 32 bits of the hash ``hashed``, as BIGINTs: summed per group, a
        fingerprint of the group's rows that any change of a row changes (but with odds of
        2^-64)."""


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """One unit of work for the writer.

    - ``snapshots`` (TICKETS schema) are appended to the snapshot log and applied to the current
      state, except for tickets in ``derived``;
    - ``events`` (TICKET_EVENTS schema) are appended to the activity log; the writer has already
      dropped ids the store holds;
    - ``derived`` (TICKETS schema) is the current state of tickets with events, recomputed from
      all their events and snapshots: it replaces their rows whatever their versions;
    - ``quarantine`` rows are kept as they are;
    - ``removed`` (``TICKET_KEYS``: workspace_id, ticket_id) are tickets with events whose newest
      news is their deletion: their current state is removed (their logs stay), and their
      snapshots in this batch are only logged.
    """

    snapshots: pa.Table
    events: pa.Table
    derived: pa.Table
    quarantine: pa.Table
    removed: pa.Table = field(default_factory=lambda: ticket_keys("", []))


TICKET_KEYS = pa.schema(
    [pa.field("workspace_id", pa.string(), False), pa.field("ticket_id", pa.string(), False)]
)


def ticket_keys(workspace_id: str, ticket_ids: list[str]) -> pa.Table:
    """Keys of one workspace's tickets (``WriteBatch.removed``)."""
    return pa.table(
        {
            "workspace_id": pa.array([workspace_id] * len(ticket_ids), pa.string()),
            "ticket_id": pa.array(ticket_ids, pa.string()),
        },
        schema=TICKET_KEYS,
    )


def first_per_key(table: pa.Table, keys: list[str], order: list[tuple[str, str]]) -> pa.Table:
    """The first row of each key (non-null key columns) by ``order``, with the rows sorted by key:
    one sort and a comparison of neighbours, no Python loop over the rows."""
    if table.num_rows <= 1:
        return table
    ordered = table.sort_by([(key, "ascending") for key in keys] + order)
    changed: pa.Array | None = None
    for key in keys:
        column = ordered.column(key).combine_chunks()
        differs = pc.not_equal(column[1:], column[:-1])
        changed = differs if changed is None else pc.or_(changed, differs)
    assert changed is not None
    return ordered.filter(pa.concat_arrays([pa.array([True]), changed]))


def newest_per_ticket(snapshots: pa.Table) -> pa.Table:
    """The newest of a batch's snapshots of each ticket: latest ``version_at``, then latest
    arrival (``seq``)."""
    return first_per_key(snapshots, list(TICKETS.key), [("version_at", "descending"), ("seq", "descending")])


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    elapsed: float

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class QueryTimeout(RuntimeError):
    """A query ran past the configured time limit and was stopped."""


# The deadline (time.monotonic) shared by every query of the work in progress on this thread, set
# by ``time_limit``: a request running several queries gets one time limit, not one per query.
_DEADLINE: ContextVar[float | None] = ContextVar("supportlens_query_deadline", default=None)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Queries run inside the block share one time limit of ``seconds`` (``query_timeout``)."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def query_timeout(timeout: float) -> float:
    """How long a query may run: its own ``timeout``, or less when the enclosing ``time_limit``
    ends sooner.  Raises ``QueryTimeout`` when that limit has already passed."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise QueryTimeout("query stopped at the time limit")
    return min(timeout, remaining)


# A read query and its bound parameters.
Query = tuple[str, dict[str, Any]]


class Engine(ABC):
    """A storage engine.  Writes come from one writer thread; reads may come from many threads."""

    name: str
    dialect: Dialect
    # Set by an upgrade that needs the writer to restate every workspace's tickets (schema.Restate).
    needs_restate: bool = False
    # Whether this process's writer is the store's only one (a DuckDB file is locked by the process
    # that opened it; a ClickHouse server may take writes from other processes too).
    sole_writer: bool = False

    def open(self) -> None:
        """Connect, create missing tables and upgrade an older schema."""
        self._connect()
        version = self._schema_version()
        if version is None:
            for table in TABLES:
                self._create_table(table)
            self._set_schema_version(SCHEMA_VERSION)
        elif version > SCHEMA_VERSION:
            raise SchemaError(
                f"the store was written by a newer SupportLens (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade SupportLens instead of opening it with this version"
            )
        elif version < SCHEMA_VERSION:
            self._upgrade(version)

    def _upgrade(self, from_version: int) -> None:
        """Run the migration steps of every version after ``from_version``, in order."""
        for version in range(from_version + 1, SCHEMA_VERSION + 1):
            if version not in MIGRATIONS:
                raise SchemaError(f"no upgrade path from schema {version - 1} to {version}")
            for step in MIGRATIONS[version]:
                if isinstance(step, CreateTable):
                    self._create_table(step.table)
                elif isinstance(step, Restate):
                    self.needs_restate = True
                else:
                    self._add_column(step)
            self._set_schema_version(version)

    @abstractmethod
    def _add_column(self, step: AddColumn) -> None:
        """Add a column and compute it for the rows already stored."""

    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _schema_version(self) -> int | None: ...

    @abstractmethod
    def _set_schema_version(self, version: int) -> None: ...

    @abstractmethod
    def _create_table(self, table: Table) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def write(self, batch: WriteBatch) -> None:
        """Durably apply one batch (see ``WriteBatch``) in one unit of work; a newer snapshot never
        loses to an older one."""

    @abstractmethod
    def delete_tickets(self, workspace_id: str, ticket_ids: list[str]) -> None:
        """Remove these tickets of the workspace for good, in one unit of work: their current
        state, their snapshots and their events (quarantined rows stay: they are what was refused,
        not tickets).  Retention (connectors/retention.py) is the only caller."""

    @abstractmethod
    def settle(self) -> None:
        """Called by the writer when writes pause: compact recent writes if the engine benefits
        (DuckDB checkpoints its write-ahead log)."""

    @abstractmethod
    def fetch(self, sql: str, params: dict[str, Any], *, timeout: float) -> QueryResult:
        """Run a read query under a time limit; raise ``QueryTimeout`` past it."""

    @abstractmethod
    def fetch_arrow(self, sql: str, params: dict[str, Any], *, timeout: float) -> pa.Table:
        """``fetch`` for large results, as an Arrow table (timestamps as UTC)."""

    @abstractmethod
    def fetch_arrows(self, queries: Sequence[Query], *, timeout: float) -> list[pa.Table]:
        """``fetch_arrow`` of each query, all reading one state of the store: no write lands
        between them (two narrow reads of one answer instead of one wide read)."""

    # Reads the writer needs to keep event-fed tickets current; ids are one workspace's.
    def existing_event_ids(self, workspace_id: str, event_ids: list[str]) -> set[str]:
        table = self._by_ids(TICKET_EVENTS, "event_id", workspace_id, event_ids, "DISTINCT event_id")
        return set(table.column("event_id").to_pylist())

    def tickets_with_events(self, workspace_id: str, ticket_ids: list[str] | None) -> set[str]:
        """Tickets with a history (bookkeeping events such as SLA breaches are not history), among
        ``ticket_ids`` or (None) all the workspace's."""
        table = self._by_ids(
            TICKET_EVENTS, "ticket_id", workspace_id, ticket_ids, "DISTINCT ticket_id", HISTORY_FILTER
        )
        return set(table.column("ticket_id").to_pylist())

    def ticket_customers(self, workspace_id: str, ticket_ids: list[str]) -> dict[str, str]:
        """The customer of each of these tickets that has one."""
        table = self._by_ids(TICKETS, "ticket_id", workspace_id, ticket_ids, "ticket_id, customer_id")
        pairs = zip(
            table.column("ticket_id").to_pylist(), table.column("customer_id").to_pylist(), strict=True
        )
        return {ticket: customer for ticket, customer in pairs if customer is not None}

    def events_of(self, workspace_id: str, ticket_ids: list[str]) -> pa.Table:
        """The history of these tickets: their events, bookkeeping ones left out."""
        return self._by_ids(
            TICKET_EVENTS, "ticket_id", workspace_id, ticket_ids, _all(TICKET_EVENTS), HISTORY_FILTER
        )

    def snapshots_of(self, workspace_id: str, ticket_ids: list[str]) -> pa.Table:
        return self._by_ids(TICKET_SNAPSHOTS, "ticket_id", workspace_id, ticket_ids, _all(TICKET_SNAPSHOTS))

    def _by_ids(
        self,
        table: Table,
        column: str,
        workspace_id: str,
        ids: list[str] | None,
        select: str,
        condition: str = "true",
    ) -> pa.Table:
        """``select`` of the rows of ``table`` whose ``column`` is one of ``ids`` (None: every row)."""
        d = self.dialect
        among = "true" if ids is None else d.in_list(column, "ids")
        sql = (
            f"SELECT {select} FROM {d.table(table)} WHERE workspace_id = {d.param('ws', ParamType.STRING)}"
            f" AND {among} AND {condition}"
        )
        params: dict[str, Any] = {"ws": workspace_id} if ids is None else {"ws": workspace_id, "ids": ids}
        return self.fetch_arrow(sql, params, timeout=_WRITER_READ_TIMEOUT)

    def max_sequence(self) -> int:
        """Highest arrival sequence number stored, so a restarted server keeps counting up."""
        logs = (TICKET_SNAPSHOTS, TICKET_EVENTS, QUARANTINE)
        highest = ", ".join(f"coalesce((SELECT max(seq) FROM {t.name}), 0)" for t in logs)
        row = self.fetch(f"SELECT greatest({highest}) AS seq", {}, timeout=_WRITER_READ_TIMEOUT).rows[0]
        return int(row[0] or 0)

    def count(self, table: Table, workspace_id: str, *, timeout: float = 30.0) -> int:
        sql = (
            f"SELECT count(*) AS n FROM {self.dialect.table(table)} "
            f"WHERE workspace_id = {self.dialect.param('ws', ParamType.STRING)}"
        )
        return int(self.fetch(sql, {"ws": workspace_id}, timeout=timeout).rows[0][0])
