"""The single writer: one thread takes queued batches and commits them together, so a burst of
small requests becomes few transactions.  ``wait=true`` callers hold a future that resolves once
their rows are committed; queued rows are flushed on a clean shutdown."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from supportlens.domain.events import BOOKKEEPING
from supportlens.domain.statuses import DEFAULT_STATUS_MAP, StatusMap
from supportlens.ingest.state import derive_state
from supportlens.store.base import Engine, WriteBatch
from supportlens.store.schema import TICKETS

log = logging.getLogger(__name__)


class QueueFull(RuntimeError):
    """More rows are waiting to be written than the configured limit; the client should retry."""


@dataclass(slots=True)
class _Batch:
    snapshots: pa.Table
    events: pa.Table
    quarantine: pa.Table
    done: Future[None] = field(default_factory=Future)

    @property
    def rows(self) -> int:
        return int(self.snapshots.num_rows) + int(self.events.num_rows) + int(self.quarantine.num_rows)


_STOP = object()
# Seconds without a new batch after which the writer lets the engine settle (checkpoint).
_IDLE_SECONDS = 1.0
_BOOKKEEPING = pa.array(sorted(t.value for t in BOOKKEEPING))


class Writer:
    def __init__(
        self,
        engine: Engine,
        *,
        batch_rows: int,
        queue_rows: int,
        statuses: Callable[[str], StatusMap] = lambda _: DEFAULT_STATUS_MAP,
    ) -> None:
        self._engine = engine
        self._statuses = statuses  # a workspace's status names decide what "resolved" is
        self._batch_rows = batch_rows
        self._queue_rows = queue_rows
        self._queue: queue.Queue[_Batch | object] = queue.Queue()
        self._pending_rows = 0
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="supportlens-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write everything queued, then stop."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join()
        self._thread = None

    def submit(self, snapshots: pa.Table, events: pa.Table, quarantine: pa.Table) -> Future[None]:
        """Queue rows: snapshots (TICKETS schema), events (TICKET_EVENTS) and quarantined rows."""
        if self._thread is None:
            raise RuntimeError("the writer is not running")
        batch = _Batch(snapshots, events, quarantine)
        with self._pending_lock:
            if self._pending_rows and self._pending_rows + batch.rows > self._queue_rows:
                raise QueueFull(f"{self._pending_rows} rows are waiting to be written; retry shortly")
            self._pending_rows += batch.rows
        self._queue.put(batch)
        return batch.done

    def _run(self) -> None:
        stopping = False
        unsettled = False  # written since the engine last settled its storage
        while not stopping:
            try:
                first = self._queue.get(timeout=_IDLE_SECONDS if unsettled else None)
            except queue.Empty:
                # Idle after writing: let the engine compact what it holds in its log now, rather
                # than during the next burst or with queries reading uncompacted rows meanwhile.
                self._settle()
                unsettled = False
                continue
            if first is _STOP:
                break
            assert isinstance(first, _Batch)
            group = [first]
            rows = first.rows
            # Take whatever else is already queued, up to the batch size.
            while rows < self._batch_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, _Batch)
                group.append(item)
                rows += item.rows
            self._commit(group)
            unsettled = True
        # Drain anything that raced in behind the stop marker.
        leftovers: list[_Batch] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Batch):
                leftovers.append(item)
        if leftovers:
            self._commit(leftovers)

    def _prepare(self, snapshots: pa.Table, events: pa.Table, quarantine: pa.Table) -> WriteBatch:
        """Drop events already stored (or repeated in the batch: the first arrival wins) and
        recompute the state of every ticket that has events (METRICS.md: events and snapshots of
        one ticket combine).  The single writer makes read-then-write safe."""
        new_events: list[pa.Table] = []
        derived: list[pa.Table] = []
        workspaces = set(snapshots.column("workspace_id").to_pylist()) | set(
            events.column("workspace_id").to_pylist()
        )
        for workspace_id in sorted(workspaces):
            mine = events.filter(pc.equal(events.column("workspace_id"), workspace_id))
            mine = _first_arrivals(mine)
            if mine.num_rows:
                stored = self._engine.existing_event_ids(workspace_id, mine.column("event_id").to_pylist())
                if stored:
                    mine = mine.filter(pc.invert(pc.is_in(mine.column("event_id"), pa.array(sorted(stored)))))
            posted = snapshots.filter(pc.equal(snapshots.column("workspace_id"), workspace_id))
            # Bookkeeping events (SLA findings) are logged but are no part of a ticket's history.
            lived = mine.filter(pc.invert(pc.is_in(mine.column("type"), _BOOKKEEPING)))
            affected = set(lived.column("ticket_id").to_pylist())
            posted_ids = sorted(set(posted.column("ticket_id").to_pylist()) - affected)
            if posted_ids:
                affected |= self._engine.tickets_with_events(workspace_id, posted_ids)
            if affected:
                ids = sorted(affected)
                history = pa.concat_tables(
                    [self._engine.events_of(workspace_id, ids).cast(lived.schema), lived]
                )
                in_batch = posted.filter(pc.is_in(posted.column("ticket_id"), pa.array(ids)))
                versions = pa.concat_tables(
                    [self._engine.snapshots_of(workspace_id, ids).cast(posted.schema), in_batch]
                )
                derived.append(derive_state(workspace_id, history, versions, self._statuses(workspace_id)))
            new_events.append(mine)
        return WriteBatch(
            snapshots=snapshots,
            events=pa.concat_tables(new_events) if new_events else events,
            derived=pa.concat_tables(derived) if derived else TICKETS.arrow_schema().empty_table(),
            quarantine=quarantine,
        )

    def _settle(self) -> None:
        try:
            self._engine.settle()
        except Exception:  # a failed checkpoint loses nothing: the log still holds the rows
            log.exception("settling the store after writes failed")

    def _commit(self, group: list[_Batch]) -> None:
        try:
            snapshots = pa.concat_tables([b.snapshots for b in group])
            events = pa.concat_tables([b.events for b in group])
            quarantine = pa.concat_tables([b.quarantine for b in group])
            self._engine.write(self._prepare(snapshots, events, quarantine))
        except Exception as exc:
            log.exception("writing %d queued batches failed", len(group))
            for batch in group:
                batch.done.set_exception(exc)
        else:
            for batch in group:
                batch.done.set_result(None)
        finally:
            with self._pending_lock:
                self._pending_rows -= sum(b.rows for b in group)


def _first_arrivals(events: pa.Table) -> pa.Table:
    """One row per event id: the first to arrive (lowest sequence number)."""
    if events.num_rows == 0:
        return events
    ordered = events.sort_by([("event_id", "ascending"), ("seq", "ascending")])
    ids = ordered.column("event_id").combine_chunks()
    first = pc.not_equal(ids[1:], ids[:-1])
    keep = pa.concat_arrays([pa.array([True]), first])
    return ordered.filter(keep)
