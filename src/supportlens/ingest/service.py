"""The one ingest path: raw payloads in, validated snapshots and quarantined rows to the writer
(which derives what depends on the workspace's status names, see ingest/writer.py)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.domain.events import TicketEvent
from supportlens.domain.models import RESOLVED_STATUSES, SNAPSHOT_FIELDS, TicketSnapshot
from supportlens.ingest.events import events_table, stamped_events, validate_event
from supportlens.ingest.tickets import Rejection, validate_ticket
from supportlens.ingest.vectorized import FastValidator
from supportlens.ingest.writer import Writer
from supportlens.store.schema import QUARANTINE, TICKET_SNAPSHOTS, TICKETS

SUPPORT_TICKETS = "support_tickets"
TICKET_EVENTS_SOURCE = "ticket_events"
DATASOURCES: frozenset[str] = frozenset({SUPPORT_TICKETS, TICKET_EVENTS_SOURCE})
# Activities of Freshdesk exports that could not be read are kept under this name.
FRESHDESK_QUARANTINE = "freshdesk_activities"
# Records a helpdesk connector read but could not turn into tickets or events.
CONNECTOR_QUARANTINE = "connector_records"
QUARANTINE_SOURCES: frozenset[str] = DATASOURCES | {FRESHDESK_QUARANTINE, CONNECTOR_QUARANTINE}


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


@dataclass(slots=True)
class _Batch:
    """Outcomes of one request, by position (arrival order within the request)."""

    datasource: str
    accepted: list[tuple[int, TicketSnapshot]] = field(default_factory=list)
    events: list[tuple[int, TicketEvent]] = field(default_factory=list)
    rejected: list[tuple[int, str, Rejection]] = field(default_factory=list)
    bulk_accepted: pa.Table | None = None
    event_columns: pa.Table | None = None  # events made by SupportLens itself, as columns

    def validate(self, position: int, value: Any, text: Callable[[], str]) -> None:
        outcome = validate_ticket(value) if self.datasource == SUPPORT_TICKETS else validate_event(value)
        if isinstance(outcome, Rejection):
            self.rejected.append((position, text(), outcome))
        elif isinstance(outcome, TicketEvent):
            self.events.append((position, outcome))
        else:
            self.accepted.append((position, outcome))


# Below this many JSON objects a request is validated row by row: the bulk validator's fixed cost
# (staging the lines, one DuckDB statement) is about 15 ms, what 700 rows cost one by one.
BULK_MIN_LINES = 1000


class IngestService:
    """Validates rows (in bulk where it can, row by row where it must), stamps them with the
    workspace, arrival order and time, and hands them to the single writer."""

    def __init__(self, writer: Writer, *, first_sequence: int, sole_writer: bool = False) -> None:
        """``sole_writer``: every write of the store comes through this service (see
        ``settled_before``)."""
        self._writer = writer
        self._next_sequence = first_sequence
        self._sequence_lock = threading.Lock()
        self._bulk = FastValidator()
        self._sole_writer = sole_writer
        # Arrival time of each submission not yet committed (or failed), by submission number.
        self._unsettled: dict[int, datetime] = {}
        self._submissions = itertools.count()
        self._unsettled_lock = threading.Lock()

    def close(self) -> None:
        self._bulk.close()

    def settled_before(self) -> datetime | None:
        """An instant (whole milliseconds, as arrival times are stored) such that every write
        received before it is committed, or failed: the arrival of the oldest write still on its
        way, else now; None when other processes may write to the store too (nothing here knows
        their writes).  A reader that reads after asking sees every write received before it."""
        if not self._sole_writer:
            return None
        with self._unsettled_lock:
            oldest = min(self._unsettled.values(), default=datetime.now(UTC))
        return oldest.replace(microsecond=oldest.microsecond // 1000 * 1000)

    def _reserve_sequences(self, count: int) -> int:
        """Arrival order: a block of increasing numbers per request, never reused."""
        with self._sequence_lock:
            start = self._next_sequence
            self._next_sequence += count
        return start

    def ingest_payload(self, workspace_id: str, datasource: str, body: bytes) -> IngestResult:
        """An HTTP body or a file: one JSON value (an object, or an array of objects), or NDJSON."""
        stripped = body.strip()
        if datasource == SUPPORT_TICKETS:
            try:
                orjson.loads(stripped)
            except orjson.JSONDecodeError:
                return self.ingest_lines(workspace_id, datasource, stripped.split(b"\n"))
        return self.ingest(workspace_id, datasource, split_payload(stripped))

    def ingest_lines(self, workspace_id: str, datasource: str, lines: list[bytes]) -> IngestResult:
        """NDJSON lines (blank ones skipped): from ``BULK_MIN_LINES`` JSON objects on, they go
        through the bulk validator, and whatever it is not certain about through the per-row one."""
        if datasource != SUPPORT_TICKETS:
            raise UnknownDatasource(datasource)
        batch = _Batch(datasource)
        parsed: dict[int, Any] = {}
        texts: dict[int, bytes] = {}
        bulk_lines: list[bytes] = []
        bulk_positions: list[int] = []
        bulk_key_counts: list[int] = []
        for line in lines:
            if not line.strip():
                continue
            position = len(texts)
            texts[position] = line
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                batch.rejected.append((position, _decode(line), Rejection("", f"malformed JSON: {exc}")))
                continue
            parsed[position] = value
            if isinstance(value, dict):
                bulk_lines.append(line)
                bulk_positions.append(position)
                bulk_key_counts.append(len(value))
        if len(bulk_lines) < BULK_MIN_LINES:
            unsure = list(parsed)
        else:
            unsure = [p for p in parsed if not isinstance(parsed[p], dict)]
            batch.bulk_accepted, left = self._bulk.validate(bulk_lines, bulk_positions, bulk_key_counts)
            unsure.extend(left)
        for position in unsure:
            batch.validate(position, parsed[position], lambda p=position: _decode(texts[p]))  # type: ignore[misc]
        return self._submit(workspace_id, datasource, batch, len(texts))

    def ingest(
        self, workspace_id: str, datasource: str, rows: Iterable[RawRow], *, source: str = "events_api"
    ) -> IngestResult:
        """Rows already split (JSON arrays, CSV records, generated data): validated one by one.
        ``source`` names where events came from (kept on each event)."""
        _check(datasource)
        batch = _Batch(datasource)
        count = 0
        for position, raw in enumerate(rows):
            count += 1
            if raw.parse_error is not None:
                batch.rejected.append((position, raw.text, Rejection("", raw.parse_error)))
            else:
                batch.validate(position, raw.value, lambda raw=raw: raw.text)  # type: ignore[misc]
        return self._submit(workspace_id, datasource, batch, count, source=source)

    def ingest_events(
        self,
        workspace_id: str,
        events: list[TicketEvent],
        rejected: list[tuple[str, Rejection]],
        *,
        source: str,
        quarantine_as: str,
    ) -> IngestResult:
        """Events already read by an importer (e.g. a Freshdesk export), with the rows it could
        not read, which are kept in quarantine under ``quarantine_as``."""
        batch = _Batch(TICKET_EVENTS_SOURCE)
        batch.events = list(enumerate(events))
        batch.rejected = [(len(events) + i, raw, why) for i, (raw, why) in enumerate(rejected)]
        return self._submit(workspace_id, quarantine_as, batch, len(events) + len(rejected), source=source)

    def ingest_event_columns(self, workspace_id: str, events: pa.Table, *, source: str) -> IngestResult:
        """Events SupportLens makes itself (the SLA evaluator's findings), already valid, as columns
        of the activity log's event fields (``ingest.events.stamped_events``): many at once without
        an object per event."""
        batch = _Batch(TICKET_EVENTS_SOURCE, event_columns=events)
        return self._submit(workspace_id, TICKET_EVENTS_SOURCE, batch, events.num_rows, source=source)

    def delete_tickets(self, workspace_id: str, ticket_ids: list[str]) -> Future[None]:
        """Removes these tickets of the workspace (retention); resolves once committed."""
        return self._writer.delete(workspace_id, ticket_ids)

    def _submit(
        self, workspace_id: str, datasource: str, batch: _Batch, count: int, *, source: str = "events_api"
    ) -> IngestResult:
        with self._unsettled_lock:  # stamped and registered at once (settled_before)
            received_at = datetime.now(UTC)
            submission = next(self._submissions)
            self._unsettled[submission] = received_at
        try:
            result = self._stamp_and_queue(workspace_id, datasource, batch, count, received_at, source)
        except BaseException:  # refused (a full queue): nothing is on its way
            self._settle(submission)
            raise
        result.committed.add_done_callback(lambda _: self._settle(submission))
        return result

    def _settle(self, submission: int) -> None:
        with self._unsettled_lock:
            del self._unsettled[submission]

    def _stamp_and_queue(
        self,
        workspace_id: str,
        datasource: str,
        batch: _Batch,
        count: int,
        received_at: datetime,
        source: str,
    ) -> IngestResult:
        first = self._reserve_sequences(count)
        canonical = [canonical_table(batch.accepted)]
        if batch.bulk_accepted is not None:
            canonical.append(batch.bulk_accepted.cast(CANONICAL_SCHEMA))
        tickets = pa.concat_tables(canonical)
        snapshots = snapshot_table(workspace_id, tickets, first, received_at)
        if batch.event_columns is None:
            events = events_table(workspace_id, batch.events, first, received_at, source)
        else:
            sequences = range(first, first + batch.event_columns.num_rows)
            events = stamped_events(workspace_id, batch.event_columns, sequences, received_at, source)
        quarantine = quarantine_table(workspace_id, datasource, batch.rejected, first, received_at)
        committed = self._writer.submit(snapshots, events, quarantine)
        return IngestResult(snapshots.num_rows + events.num_rows, quarantine.num_rows, committed)


def _check(datasource: str) -> None:
    if datasource not in DATASOURCES:
        raise UnknownDatasource(datasource)


def _decode(line: bytes) -> str:
    return line.strip().decode("utf-8", errors="replace")


_TS = pa.timestamp("ms", tz="UTC")
_CANONICAL_COLUMNS = SNAPSHOT_FIELDS
# The validated fields of a posting, plus its position in the request.
CANONICAL_SCHEMA = pa.schema(
    [pa.field("position", pa.int64())] + [TICKETS.arrow_schema().field(name) for name in _CANONICAL_COLUMNS]
)


def canonical_table(accepted: list[tuple[int, TicketSnapshot]]) -> pa.Table:
    tickets = [t for _, t in accepted]
    columns: dict[str, list[Any]] = {"position": [p for p, _ in accepted]}
    for name in _CANONICAL_COLUMNS:
        columns[name] = [getattr(t, name) for t in tickets]
    columns["tags"] = [list(t.tags) for t in tickets]
    return pa.Table.from_pydict(columns, schema=CANONICAL_SCHEMA)


def snapshot_table(
    workspace_id: str, tickets: pa.Table, first_sequence: int, received_at: datetime
) -> pa.Table:
    """Canonical rows stamped for storage, in arrival order, with the derived columns.
    ``is_resolved`` here follows the default status names only: the writer sets it from the
    workspace's own names (``Writer._prepare``) before anything is stored."""
    tickets = tickets.sort_by("position")
    count = tickets.num_rows
    received = pa.scalar(received_at, _TS)
    created = tickets.column("created_at")
    columns: dict[str, Any] = {name: tickets.column(name) for name in _CANONICAL_COLUMNS}
    columns["workspace_id"] = pa.array([workspace_id] * count, pa.string())
    columns["is_resolved"] = pc.fill_null(
        pc.is_in(tickets.column("status"), pa.array(sorted(RESOLVED_STATUSES))), False
    )
    columns["response_ms"] = _milliseconds(created, tickets.column("first_response_at"))
    columns["resolution_ms"] = _milliseconds(created, tickets.column("resolved_at"))
    columns["version_at"] = pc.fill_null(tickets.column("updated_at"), received)
    columns["seq"] = pc.add(tickets.column("position"), first_sequence).cast(pa.uint64())
    columns["received_at"] = pa.array([received_at] * count, _TS)
    return pa.Table.from_pydict(columns, schema=TICKET_SNAPSHOTS.arrow_schema())


def _milliseconds(start: pa.ChunkedArray, end: pa.ChunkedArray) -> pa.ChunkedArray:
    """``end - start`` in whole milliseconds; null where either is null (METRICS.md durations)."""
    return pc.subtract(end.cast(pa.int64()), start.cast(pa.int64()))


def quarantine_table(
    workspace_id: str,
    datasource: str,
    rejected: list[tuple[int, str, Rejection]],
    first_sequence: int,
    received_at: datetime,
) -> pa.Table:
    rejected = sorted(rejected, key=lambda item: item[0])
    count = len(rejected)
    columns: dict[str, pa.Array] = {
        "workspace_id": pa.array([workspace_id] * count, pa.string()),
        "datasource": pa.array([datasource] * count, pa.string()),
        "received_at": pa.array([received_at] * count, _TS),
        "seq": pa.array([first_sequence + p for p, _, _ in rejected], pa.uint64()),
        "column_name": pa.array([r.column for _, _, r in rejected], pa.string()),
        "error": pa.array([r.message for _, _, r in rejected], pa.string()),
        "raw": pa.array([text for _, text, _ in rejected], pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=QUARANTINE.arrow_schema())
