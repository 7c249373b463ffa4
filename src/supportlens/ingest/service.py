"""The one ingest path: raw payloads in, validated snapshots and quarantined rows to the writer."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.domain.models import TicketSnapshot
from supportlens.ingest.tickets import Rejection, validate_ticket
from supportlens.ingest.writer import Writer
from supportlens.store.schema import QUARANTINE, TICKETS

DATASOURCES: frozenset[str] = frozenset({"support_tickets"})


class UnknownDatasource(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row as received: the parsed value (or None when it did not parse) and its text."""

    value: Any
    text: str
    parse_error: str | None = None


def split_payload(body: bytes) -> Iterator[RawRow]:
    """One JSON object, a JSON array of objects, or NDJSON (one value per line; blank lines skipped)."""
    stripped = body.strip()
    if not stripped:
        return
    try:
        whole = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        pass
    else:
        if isinstance(whole, list):
            for item in whole:
                yield RawRow(item, orjson.dumps(item).decode())
        else:
            yield RawRow(whole, stripped.decode("utf-8", errors="replace"))
        return
    for line in stripped.split(b"\n"):
        line = line.strip()
        if not line:
            continue
        text = line.decode("utf-8", errors="replace")
        try:
            yield RawRow(orjson.loads(line), text)
        except orjson.JSONDecodeError as exc:
            yield RawRow(None, text, f"malformed JSON: {exc}")


@dataclass(frozen=True, slots=True)
class IngestResult:
    successful_rows: int
    quarantined_rows: int
    committed: Future[None]


class IngestService:
    def __init__(self, writer: Writer, *, first_sequence: int) -> None:
        self._writer = writer
        self._next_sequence = first_sequence
        self._sequence_lock = threading.Lock()

    def _next_sequences(self, count: int) -> range:
        """Arrival order: a block of increasing numbers per request, never reused."""
        with self._sequence_lock:
            start = self._next_sequence
            self._next_sequence += count
        return range(start, start + count)

    def ingest(self, workspace_id: str, datasource: str, rows: Iterable[RawRow]) -> IngestResult:
        if datasource not in DATASOURCES:
            raise UnknownDatasource(datasource)
        received_at = datetime.now(UTC)
        accepted: list[TicketSnapshot] = []
        rejected: list[tuple[RawRow, Rejection]] = []
        for raw in rows:
            if raw.parse_error is not None:
                rejected.append((raw, Rejection("", raw.parse_error)))
                continue
            outcome = validate_ticket(raw.value)
            if isinstance(outcome, Rejection):
                rejected.append((raw, outcome))
            else:
                accepted.append(outcome)
        sequences = self._next_sequences(len(accepted) + len(rejected))
        snapshots = snapshot_table(workspace_id, accepted, sequences[: len(accepted)], received_at)
        quarantine = quarantine_table(
            workspace_id, datasource, rejected, sequences[len(accepted) :], received_at
        )
        committed = self._writer.submit(snapshots, quarantine)
        return IngestResult(len(accepted), len(rejected), committed)


_TS = pa.timestamp("ms", tz="UTC")


def snapshot_table(
    workspace_id: str, tickets: list[TicketSnapshot], sequences: range, received_at: datetime
) -> pa.Table:
    count = len(tickets)
    columns: dict[str, pa.Array] = {
        "workspace_id": pa.array([workspace_id] * count, pa.string()),
        "ticket_id": pa.array([t.ticket_id for t in tickets], pa.string()),
        "customer_id": pa.array([t.customer_id for t in tickets], pa.string()),
        "agent_id": pa.array([t.agent_id for t in tickets], pa.string()),
        "category": pa.array([t.category for t in tickets], pa.string()),
        "priority": pa.array([t.priority for t in tickets], pa.string()),
        "status": pa.array([t.status for t in tickets], pa.string()),
        "created_at": pa.array([t.created_at for t in tickets], _TS),
        "first_response_at": pa.array([t.first_response_at for t in tickets], _TS),
        "resolved_at": pa.array([t.resolved_at for t in tickets], _TS),
        "satisfaction_score": pa.array([t.satisfaction_score for t in tickets], pa.int16()),
        "tags": pa.array([list(t.tags) for t in tickets], pa.list_(pa.string())),
        "updated_at": pa.array([t.updated_at for t in tickets], _TS),
        "channel": pa.array([t.channel for t in tickets], pa.string()),
        "subject": pa.array([t.subject for t in tickets], pa.string()),
        "is_resolved": pa.array([t.is_resolved for t in tickets], pa.bool_()),
        "version_at": pa.array([t.updated_at or received_at for t in tickets], _TS),
        "seq": pa.array(sequences, pa.uint64()),
        "received_at": pa.array([received_at] * count, _TS),
    }
    created = columns["created_at"]
    columns["response_ms"] = _milliseconds(created, columns["first_response_at"])
    columns["resolution_ms"] = _milliseconds(created, columns["resolved_at"])
    return pa.Table.from_pydict(columns, schema=TICKETS.arrow_schema())


def _milliseconds(start: pa.Array, end: pa.Array) -> pa.Array:
    """``end - start`` in whole milliseconds; null where either is null (METRICS.md durations)."""
    return pc.subtract(end.cast(pa.int64()), start.cast(pa.int64()))


def quarantine_table(
    workspace_id: str,
    datasource: str,
    rejected: list[tuple[RawRow, Rejection]],
    sequences: range,
    received_at: datetime,
) -> pa.Table:
    count = len(rejected)
    columns: dict[str, pa.Array] = {
        "workspace_id": pa.array([workspace_id] * count, pa.string()),
        "datasource": pa.array([datasource] * count, pa.string()),
        "received_at": pa.array([received_at] * count, _TS),
        "seq": pa.array(sequences, pa.uint64()),
        "column_name": pa.array([r.column for _, r in rejected], pa.string()),
        "error": pa.array([r.message for _, r in rejected], pa.string()),
        "raw": pa.array([raw.text for raw, _ in rejected], pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=QUARANTINE.arrow_schema())
