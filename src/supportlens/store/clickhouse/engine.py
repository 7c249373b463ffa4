"""ClickHouse engine through clickhouse-connect: a server or cluster (``clickhouse://``) or embedded
chDB (``chdb:///path``), which clickhouse-connect opens when the ``chdb`` package is installed."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from supportlens.domain.models import RESOLVED_STATUSES
from supportlens.store.base import (
    Dialect,
    Engine,
    ParamType,
    Query,
    QueryResult,
    QueryTimeout,
    WriteBatch,
    newest_per_ticket,
    query_timeout,
)
from supportlens.store.schema import (
    TICKET_EVENTS,
    TICKET_SNAPSHOTS,
    TICKET_TABLES,
    TICKETS,
    AddColumn,
    Backfill,
    ColumnType,
    Table,
)

_TYPES: dict[ColumnType, str] = {
    ColumnType.STRING: "String",
    ColumnType.LABEL: "LowCardinality(String)",
    ColumnType.TIMESTAMP: "DateTime64(3, 'UTC')",
    ColumnType.SMALL_INT: "Int16",
    ColumnType.SEQUENCE: "UInt64",
    ColumnType.STRING_LIST: "Array(String)",
    ColumnType.DURATION: "Int64",
    ColumnType.BOOLEAN: "Bool",
    ColumnType.COUNT: "UInt32",
}

_PARAM_TYPES: dict[ParamType, str] = {
    ParamType.STRING: "String",
    ParamType.TIMESTAMP: "DateTime64(3, 'UTC')",
    ParamType.FLOAT: "Float64",
    ParamType.INT: "Int64",
}

# As DateTime64(3), like the stored times: a DateTime reaches Arrow as bare uint32 seconds.
_TIMEOUT_CODE = 159  # TIMEOUT_EXCEEDED

_RESOLVED = ", ".join(f"'{status}'" for status in sorted(RESOLVED_STATUSES))
_BACKFILL: dict[Backfill, str] = {
    Backfill.RESPONSE_MS: "toUnixTimestamp64Milli(first_response_at) - toUnixTimestamp64Milli(created_at)",
    Backfill.RESOLUTION_MS: "toUnixTimestamp64Milli(resolved_at) - toUnixTimestamp64Milli(created_at)",
    Backfill.IS_RESOLVED: f"coalesce(status IN ({_RESOLVED}), false)",
}


def _column_type(nullable: bool, kind: ColumnType) -> str:
    base = _TYPES[kind]
    if not nullable or kind is ColumnType.STRING_LIST:
        return base
    if base.startswith("LowCardinality("):
        return f"LowCardinality(Nullable({base[len('LowCardinality(') : -1]}))"
    return f"Nullable({base})"


class ClickHouseDialect(Dialect):
    def param(self, name: str, kind: ParamType) -> str:
        return f"{{{name}:{_PARAM_TYPES[kind]}}}"

    def table(self, table: Table) -> str:
        return f"{table.name} FINAL" if table.current_state else table.name

    def count_if(self, condition: str) -> str:
        return f"countIf({condition})"

    def quantiles(self, expression: str, levels: tuple[float, ...]) -> str:
        return f"quantilesExactInclusive({', '.join(map(str, levels))})({expression})"

    def utc_quarter_hour(self, column: str) -> str:
        return f"toDateTime64(toStartOfFifteenMinutes({column}, 'UTC'), 3, 'UTC')"

    def in_list(self, column: str, name: str) -> str:
        return f"{column} IN {{{name}:Array(String)}}"

    def row_hash(self, expressions: Sequence[str]) -> str:
        # A tuple: cityHash64 of a null argument is null, of a tuple holding one is not.
        return f"cityHash64(tuple({', '.join(expressions)}))"

    def hash_halves(self, hashed: str) -> tuple[str, str]:
        return f"toInt64(bitShiftRight({hashed}, 32))", f"toInt64(bitAnd({hashed}, 4294967295))"


class ClickHouseEngine(Engine):
    name = "clickhouse"

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = ClickHouseDialect()
        self._client: Client | None = None
        self._embedded = url.startswith("chdb:")
        # Embedded chDB runs one query at a time per process; a server takes concurrent queries.
        self._lock: AbstractContextManager[Any] = threading.Lock() if self._embedded else nullcontext()

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("the ClickHouse store is not open")
        return self._client

    def _connect(self) -> None:
        if self._embedded:
            self._client = clickhouse_connect.get_client(dsn=self.url)
            return
        parts = urlsplit(self.url)
        database = parts.path.lstrip("/") or "default"
        self._client = clickhouse_connect.get_client(
            host=parts.hostname or "localhost",
            port=parts.port or 8123,
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=database,
            secure=parts.scheme == "clickhouses",
            autogenerate_session_id=False,  # the client is shared by many threads
        )

    def _command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.client.command(sql, parameters=params)

    def _schema_version(self) -> int | None:
        with self._lock:
            exists = self.client.query("EXISTS TABLE schema_version").result_rows
            if not exists or not exists[0][0]:
                return None
            row = self.client.query("SELECT max(version), count() FROM schema_version").result_rows
        return int(row[0][0]) if row and row[0][1] else None

    def _set_schema_version(self, version: int) -> None:
        self._command(
            "CREATE TABLE IF NOT EXISTS schema_version (version UInt32, applied_at DateTime64(3, 'UTC'))"
            " ENGINE = MergeTree ORDER BY version"
        )
        self._command(f"INSERT INTO schema_version VALUES ({int(version)}, now64(3))")

    def _create_table(self, table: Table) -> None:
        columns = ", ".join(f"{c.name} {_column_type(c.nullable, c.type)}" for c in table.columns)
        if table.current_state:
            # Keys that never change; the newest version_at survives merges (ties: the last insert,
            # and the writer inserts in arrival order), read with FINAL.
            engine = f"ReplacingMergeTree(version_at) ORDER BY ({', '.join(table.key)})"
        else:
            engine = f"MergeTree PARTITION BY toYYYYMM(received_at) ORDER BY ({', '.join(table.key)})"
        self._command(f"CREATE TABLE IF NOT EXISTS {table.name} ({columns}) ENGINE = {engine}")

    def _add_column(self, step: AddColumn) -> None:
        table, column = step.table, step.column
        names = table.column_names
        position = names.index(column.name)
        after = f" AFTER {names[position - 1]}" if position else " FIRST"
        kind = _column_type(column.nullable, column.type)
        self._command(f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS {column.name} {kind}{after}")
        if step.backfill is Backfill.UNKNOWN:
            return  # a Nullable column starts NULL
        self._command(
            f"ALTER TABLE {table.name} UPDATE {column.name} = {_BACKFILL[step.backfill]} WHERE 1"
            " SETTINGS mutations_sync = 2"
        )

    def close(self) -> None:
        if self._client is not None:
            with self._lock:
                self._client.close()
            self._client = None

    def write(self, batch: WriteBatch) -> None:
        # Tickets with events take their state from ``derived``, which is inserted last so that
        # it wins over any row of equal version (ReplacingMergeTree keeps the last insert).
        derived_keys = set(zip(*(batch.derived.column(k).to_pylist() for k in TICKETS.key), strict=True))
        removed_keys = set(zip(*(batch.removed.column(k).to_pylist() for k in TICKETS.key), strict=True))
        with self._lock:
            if batch.snapshots.num_rows:
                self.client.insert_arrow(TICKET_SNAPSHOTS.name, batch.snapshots)
                newest = _newest_per_ticket(batch.snapshots, skip=derived_keys | removed_keys)
                if newest.num_rows:
                    self.client.insert_arrow(TICKETS.name, newest)
            if batch.events.num_rows:
                self.client.insert_arrow(TICKET_EVENTS.name, batch.events)
            if batch.derived.num_rows:
                self.client.insert_arrow(TICKETS.name, batch.derived)
            if batch.quarantine.num_rows:
                self.client.insert_arrow("quarantine", batch.quarantine)
        for workspace_id in sorted({workspace for workspace, _ in removed_keys}):
            self._delete(TICKETS, workspace_id, sorted(t for w, t in removed_keys if w == workspace_id))

    def delete_tickets(self, workspace_id: str, ticket_ids: list[str]) -> None:
        # Lightweight deletes: rows are masked at once and dropped by later merges.  ClickHouse has
        # no transaction over three tables; a failure part-way leaves the rest to a retried call
        # (retention forgets a ticket only once this returns).
        for table in TICKET_TABLES:
            self._delete(table, workspace_id, ticket_ids)

    def _delete(self, table: Table, workspace_id: str, ticket_ids: list[str]) -> None:
        self._command(
            f"DELETE FROM {table.name} WHERE workspace_id = {{ws:String}}"
            " AND ticket_id IN {ids:Array(String)}",
            {"ws": workspace_id, "ids": ticket_ids},
        )

    def settle(self) -> None:
        """Nothing to do: ClickHouse merges parts in the background."""

    def fetch_arrow(self, sql: str, params: dict[str, Any], *, timeout: float) -> pa.Table:
        with self._lock:
            return self._query_arrow(sql, params, timeout)

    def fetch_arrows(self, queries: Sequence[Query], *, timeout: float) -> list[pa.Table]:
        # Embedded chDB: the lock keeps the writer out until the last query ends.  A ClickHouse
        # server has no snapshot across queries: a write may land between them there.
        with self._lock:
            return [self._query_arrow(sql, params, timeout) for sql, params in queries]

    def _query_arrow(self, sql: str, params: dict[str, Any], timeout: float) -> pa.Table:
        timeout = query_timeout(timeout)
        try:
            return self.client.query_arrow(
                sql, parameters=params, settings={"max_execution_time": max(1, round(timeout))}
            )
        except DatabaseError as exc:
            if f"Code: {_TIMEOUT_CODE}" in str(exc) or "TIMEOUT_EXCEEDED" in str(exc):
                raise QueryTimeout(f"query stopped after the {timeout:g} s time limit") from exc
            raise

    def fetch(self, sql: str, params: dict[str, Any], *, timeout: float) -> QueryResult:
        timeout = query_timeout(timeout)
        started = time.perf_counter()
        try:
            with self._lock:
                result = self.client.query(
                    sql, parameters=params, settings={"max_execution_time": max(1, round(timeout))}
                )
        except DatabaseError as exc:
            if f"Code: {_TIMEOUT_CODE}" in str(exc) or "TIMEOUT_EXCEEDED" in str(exc):
                raise QueryTimeout(f"query stopped after the {timeout:g} s time limit") from exc
            raise
        return QueryResult(
            list(result.column_names),
            [tuple(row) for row in result.result_rows],
            time.perf_counter() - started,
        )


def _newest_per_ticket(snapshots: pa.Table, *, skip: set[tuple[Any, ...]]) -> pa.Table:
    """Within one insert ClickHouse keeps an arbitrary row among equal versions, so the batch is
    reduced to its newest snapshot per ticket (by version_at, then arrival order) first; tickets
    in ``skip`` are left out."""
    newest = newest_per_ticket(snapshots)
    if not skip:
        return newest
    keys = zip(*(newest.column(k).to_pylist() for k in TICKETS.key), strict=True)
    return newest.filter(pa.array([key not in skip for key in keys], pa.bool_()))
