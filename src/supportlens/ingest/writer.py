"""The single writer: one thread takes queued batches and commits them together, so a burst of
small requests becomes few transactions.  ``wait=true`` callers hold a future that resolves once
their rows are committed; queued rows are flushed on a clean shutdown.

The writer owns every derived column of the current state that depends on a workspace's status
names: ``is_resolved`` of posted snapshots and the state of tickets with events both follow the
workspace's StatusMap.  When those names change, ``restate`` recomputes the stored ``tickets`` rows
of the workspace, a page of tickets at a time, queued like batches so that it is serialized with
writes (docs/decisions.md, "Restating tickets when status names change")."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.common import resolved_flags
from supportlens.domain.calendars import CalendarChoice, default_business_hours
from supportlens.domain.events import BOOKKEEPING
from supportlens.domain.statuses import DEFAULT_STATUS_MAP, StatusMap
from supportlens.ingest.state import live_state
from supportlens.store.base import Engine, ParamType, WriteBatch, first_per_key, ticket_keys
from supportlens.store.schema import QUARANTINE, TICKET_EVENTS, TICKET_SNAPSHOTS, TICKETS

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


@dataclass(slots=True)
class _Restate:
    """A restatement of one workspace's tickets in progress: one page of tickets per turn, and the
    job goes back to the end of the queue between pages, so batches waiting behind it are
    committed meanwhile."""

    workspace_id: str
    page_tickets: int
    progress: Callable[[int], None] | None
    done: Future[int] = field(default_factory=Future)
    after: str | None = None  # the last ticket id restated (pages follow ticket id order)
    restated: int = 0


@dataclass(slots=True)
class _Delete:
    """The removal of some tickets of a workspace (retention), serialized with writes."""

    workspace_id: str
    ticket_ids: list[str]
    done: Future[None] = field(default_factory=Future)


_STOP = object()
# Tickets recomputed per page (and per transaction) when restating: bounds the memory of a page
# (its events and snapshots) whatever the size of the workspace.
RESTATE_PAGE_TICKETS = 50_000
# Reads of a restatement are part of the writer's work: generous, but never unbounded.
_RESTATE_READ_TIMEOUT = 600.0
# Seconds without a new batch after which the writer lets the engine settle (checkpoint).
_IDLE_SECONDS = 1.0
_BOOKKEEPING = pa.array(sorted(t.value for t in BOOKKEEPING))
_DEFAULT_CALENDARS = CalendarChoice.only(default_business_hours("UTC"))
# Made once: an empty table with timestamp columns costs ~0.3 ms to build, on every commit.
_NO_TICKETS = TICKETS.arrow_schema().empty_table()


# Tickets with a history a writer keeps in memory per workspace (``_Histories``); past it, it asks.
HISTORIES_LIMIT = 2_000_000


class _Histories:
    """Which tickets of each workspace have a history (an event that is not bookkeeping), known in
    memory when this process's writer is the store's only one (``Engine.sole_writer``): asking the
    store scans the activity log on every commit of snapshots (~3 ms at a million tickets), about a
    quarter of a single-ticket commit.  Read from the store on a workspace's first commit, then kept
    up to date with what each commit and deletion did; a workspace past ``limit`` is asked again."""

    def __init__(self, engine: Engine, limit: int = HISTORIES_LIMIT) -> None:
        self._engine = engine
        self._limit = limit
        self._known: dict[str, set[str] | None] = {}  # None: too many to keep, asked each time

    def among(self, workspace_id: str, ticket_ids: list[str]) -> set[str]:
        if not self._engine.sole_writer:
            return self._engine.tickets_with_events(workspace_id, ticket_ids)
        if workspace_id not in self._known:
            loaded = self._engine.tickets_with_events(workspace_id, None)
            self._known[workspace_id] = loaded if len(loaded) <= self._limit else None
        known = self._known[workspace_id]
        if known is None:
            return self._engine.tickets_with_events(workspace_id, ticket_ids)
        return known.intersection(ticket_ids)

    def committed(self, workspace_id: str, ticket_ids: set[str]) -> None:
        """These tickets' history events are committed."""
        known = self._known.get(workspace_id)
        if known is not None:
            known.update(ticket_ids)
            if len(known) > self._limit:
                self._known[workspace_id] = None

    def deleted(self, workspace_id: str, ticket_ids: list[str]) -> None:
        """These tickets are deleted, their logs with them (one still counted would only cost the
        combining path's reads: it finds no history)."""
        known = self._known.get(workspace_id)
        if known is not None:
            known.difference_update(ticket_ids)


class Writer:
    def __init__(
        self,
        engine: Engine,
        *,
        batch_rows: int,
        queue_rows: int,
        statuses: Callable[[str], StatusMap] = lambda _: DEFAULT_STATUS_MAP,
        calendars: Callable[[str], CalendarChoice] = lambda _: _DEFAULT_CALENDARS,
    ) -> None:
        self._engine = engine
        self._statuses = statuses  # a workspace's status names decide what "resolved" is
        self._calendars = calendars  # and its calendars the business-time facts of its tickets
        self._batch_rows = batch_rows
        self._queue_rows = queue_rows
        self._queue: queue.Queue[_Batch | _Restate | _Delete | object] = queue.Queue()
        self._pending_rows = 0
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._histories = _Histories(engine)  # used by the writer thread only

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

    def restate(
        self,
        workspace_id: str,
        *,
        progress: Callable[[int], None] | None = None,
        page_tickets: int = RESTATE_PAGE_TICKETS,
    ) -> Future[int]:
        """Queue the recomputation of every stored ticket of the workspace from its current status
        names; the future resolves to the number of tickets looked at once all are done.
        ``progress`` is called (on the writer thread) with that number after each page."""
        if self._thread is None:
            raise RuntimeError("the writer is not running")
        job = _Restate(workspace_id, max(1, page_tickets), progress)
        self._queue.put(job)
        return job.done

    def delete(self, workspace_id: str, ticket_ids: list[str]) -> Future[None]:
        """Queue the removal of these tickets (their state, snapshots and events); the future
        resolves once it is committed.  Rows queued before it are written first."""
        if self._thread is None:
            raise RuntimeError("the writer is not running")
        job = _Delete(workspace_id, list(ticket_ids))
        self._queue.put(job)
        return job.done

    def _run(self) -> None:
        stopping = False
        unsettled = False  # written since the engine last settled its storage
        held: _Restate | _Delete | None = None  # met while gathering a group; handled right after it
        while not stopping:
            if held is not None:
                first: object = held
                held = None
            else:
                try:
                    first = self._queue.get(timeout=_IDLE_SECONDS if unsettled else None)
                except queue.Empty:
                    # Idle after writing: let the engine compact what it holds in its log now,
                    # rather than during the next burst or with queries reading uncompacted rows.
                    self._settle()
                    unsettled = False
                    continue
            if first is _STOP:
                break
            unsettled = True
            if isinstance(first, _Restate | _Delete):
                self._job(first)
                continue
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
                if isinstance(item, _Restate | _Delete):
                    held = item
                    break
                assert isinstance(item, _Batch)
                group.append(item)
                rows += item.rows
            self._commit(group)
        # Drain anything that raced in behind the stop marker, restatements included (a page
        # that is not the last queues the rest of its job again, so this runs them to the end).
        leftovers: list[_Batch] = []
        while True:
            if held is not None:
                item, held = held, None
            else:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if isinstance(item, _Batch):
                leftovers.append(item)
            elif isinstance(item, _Restate | _Delete):
                if leftovers:
                    self._commit(leftovers)
                    leftovers = []
                self._job(item)
        if leftovers:
            self._commit(leftovers)

    def _prepare(
        self, snapshots: pa.Table, events: pa.Table, quarantine: pa.Table
    ) -> tuple[WriteBatch, dict[str, set[str]]]:
        """Drop events already stored (or repeated in the batch: the first arrival wins), set
        ``is_resolved`` of the snapshots from their workspace's status names, and recompute the
        state of every ticket that has events (METRICS.md: events and snapshots of one ticket
        combine).  The single writer makes read-then-write safe.  Also the tickets each workspace's
        new history events are of."""
        lived_by_workspace: dict[str, set[str]] = {}
        new_events: list[pa.Table] = []
        derived: list[pa.Table] = []
        removed: list[pa.Table] = []
        workspaces = set(snapshots.column("workspace_id").to_pylist()) | set(
            events.column("workspace_id").to_pylist()
        )
        maps = {workspace_id: self._statuses(workspace_id) for workspace_id in workspaces}
        snapshots = _resolved_by_workspace(snapshots, maps)
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
            lived_by_workspace[workspace_id] = set(lived.column("ticket_id").to_pylist())
            affected = set(lived_by_workspace[workspace_id])
            posted_ids = sorted(set(posted.column("ticket_id").to_pylist()) - affected)
            if posted_ids:
                affected |= self._histories.among(workspace_id, posted_ids)
            if affected:
                ids = sorted(affected)
                history = pa.concat_tables(
                    [self._engine.events_of(workspace_id, ids).cast(lived.schema), lived]
                )
                in_batch = posted.filter(pc.is_in(posted.column("ticket_id"), pa.array(ids)))
                versions = pa.concat_tables(
                    [self._engine.snapshots_of(workspace_id, ids).cast(posted.schema), in_batch]
                )
                live, deleted = live_state(
                    workspace_id, history, versions, maps[workspace_id], self._calendars(workspace_id)
                )
                derived.append(live)
                removed.append(ticket_keys(workspace_id, deleted))
            new_events.append(mine)
        batch = WriteBatch(
            snapshots=snapshots,
            events=pa.concat_tables(new_events) if new_events else events,
            derived=pa.concat_tables(derived) if derived else _NO_TICKETS,
            quarantine=quarantine,
            removed=pa.concat_tables(removed) if removed else ticket_keys("", []),
        )
        return batch, lived_by_workspace

    def _job(self, job: _Restate | _Delete) -> None:
        if isinstance(job, _Restate):
            self._restate_page(job)
            return
        try:
            self._engine.delete_tickets(job.workspace_id, job.ticket_ids)
            self._histories.deleted(job.workspace_id, job.ticket_ids)
        except Exception as exc:
            log.exception("deleting %d tickets of workspace %s failed", len(job.ticket_ids), job.workspace_id)
            job.done.set_exception(exc)
        else:
            job.done.set_result(None)

    def _restate_page(self, job: _Restate) -> None:
        """Restate the next page of the job's tickets in one transaction; queue the job again when
        tickets remain, else resolve its future."""
        try:
            looked_at = self._restate_next(job)
            if job.progress is not None and looked_at:
                job.progress(job.restated)
        except Exception as exc:
            log.exception("restating the tickets of workspace %s failed", job.workspace_id)
            job.done.set_exception(exc)
            return
        if looked_at < job.page_tickets:
            job.done.set_result(job.restated)
        else:
            self._queue.put(job)

    def _restate_next(self, job: _Restate) -> int:
        """The stored rows of the next ``page_tickets`` tickets (by id), recomputed with the
        workspace's current status names: a ticket with events from all its events and snapshots
        (``derive_state``, as on every write that touches it); a snapshot-only ticket keeps its
        stored row with ``is_resolved`` taken from the status map (its resolved_at and
        resolution_ms are what the client sent, whatever the status).  Rows are written through
        ``WriteBatch.derived``, which replaces them whatever their versions; a snapshot-only row
        whose flag did not change is not written again.  Returns how many tickets the page held."""
        workspace_id = job.workspace_id
        stored = self._stored_tickets(workspace_id, job.after, job.page_tickets)
        if stored.num_rows == 0:
            return 0
        statuses = self._statuses(workspace_id)
        ids = stored.column("ticket_id").to_pylist()
        fed = sorted(self._engine.tickets_with_events(workspace_id, ids))
        parts: list[pa.Table] = []
        deleted: list[str] = []
        if fed:
            history = self._engine.events_of(workspace_id, fed).cast(TICKET_EVENTS.arrow_schema())
            versions = self._engine.snapshots_of(workspace_id, fed).cast(TICKET_SNAPSHOTS.arrow_schema())
            live, deleted = live_state(
                workspace_id, history, versions, statuses, self._calendars(workspace_id)
            )
            parts.append(live)
        if len(fed) < len(ids):
            only = stored.filter(pc.invert(pc.is_in(stored.column("ticket_id"), pa.array(fed, pa.string()))))
            flags = resolved_flags(only.column("status"), statuses)
            changed = pc.not_equal(flags, only.column("is_resolved"))
            position = only.schema.get_field_index("is_resolved")
            parts.append(
                only.set_column(position, TICKETS.arrow_schema().field(position), flags).filter(changed)
            )
        derived = pa.concat_tables(parts)
        if derived.num_rows or deleted:
            self._engine.write(
                WriteBatch(
                    snapshots=TICKET_SNAPSHOTS.arrow_schema().empty_table(),
                    events=TICKET_EVENTS.arrow_schema().empty_table(),
                    derived=derived,
                    quarantine=QUARANTINE.arrow_schema().empty_table(),
                    removed=ticket_keys(workspace_id, deleted),
                )
            )
        job.after = ids[-1]
        job.restated += len(ids)
        return len(ids)

    def _stored_tickets(self, workspace_id: str, after: str | None, limit: int) -> pa.Table:
        """Up to ``limit`` current-state rows of the workspace with ids after ``after``, by id
        (keyset pages: nothing but the page is held, and tickets added meanwhile are no trouble)."""
        d = self._engine.dialect
        params: dict[str, object] = {"ws": workspace_id}
        condition = f"workspace_id = {d.param('ws', ParamType.STRING)}"
        if after is not None:
            condition += f" AND ticket_id > {d.param('after', ParamType.STRING)}"
            params["after"] = after
        sql = (
            f"SELECT {', '.join(TICKETS.column_names)} FROM {d.table(TICKETS)} WHERE {condition}"
            f" ORDER BY ticket_id LIMIT {int(limit)}"
        )
        table = self._engine.fetch_arrow(sql, params, timeout=_RESTATE_READ_TIMEOUT)
        return table.cast(TICKETS.arrow_schema())

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
            prepared, lived = self._prepare(snapshots, events, quarantine)
            self._engine.write(prepared)
            for workspace_id, ticket_ids in lived.items():
                self._histories.committed(workspace_id, ticket_ids)
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


def _resolved_by_workspace(snapshots: pa.Table, maps: dict[str, StatusMap]) -> pa.Table:
    """The snapshots with ``is_resolved`` from their own workspace's status names."""
    if snapshots.num_rows == 0:
        return snapshots
    status = snapshots.column("status")
    flags: pa.ChunkedArray | None = None
    for workspace_id in sorted(pc.unique(snapshots.column("workspace_id")).to_pylist()):
        mine = resolved_flags(status, maps[workspace_id])
        if flags is None:  # the usual case: one workspace per batch
            flags = mine
        else:
            flags = pc.if_else(pc.equal(snapshots.column("workspace_id"), workspace_id), mine, flags)
    position = snapshots.schema.get_field_index("is_resolved")
    return snapshots.set_column(position, snapshots.schema.field(position), flags)


def _first_arrivals(events: pa.Table) -> pa.Table:
    """One row per event id: the first to arrive (lowest sequence number)."""
    return first_per_key(events, ["event_id"], [("seq", "ascending")])
