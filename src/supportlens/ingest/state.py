"""The current state of tickets that have events: their activity log folded together with their
newest snapshot (METRICS.md: "a ticket's current state follows from its events"; snapshots and
events of one ticket combine without double counting).

Rules (docs/decisions.md, "Tickets fed by events and snapshots"):
- created_at is the earliest known: the snapshot's, the ``created`` event, else the first event;
- an attribute (status, priority, assignee, category, ...) takes the newest information: the
  latest event that set it, unless the snapshot (by its version time) is newer or the events
  never set it;
- first_response_at is the earliest known response: the snapshot's or the first human reply;
- resolved_at is set only while the status is resolved: the last entry into a resolved category
  when the status came from events, the snapshot's resolved_at when it came from the snapshot;
- satisfaction: the latest ``rated`` event or the snapshot's score, whichever is newer;
- a ticket whose ``deleted`` event is its newest news (no later event, no newer snapshot) has no
  current state: it leaves every pipe, while its events and snapshots stay in the logs.  A later
  event or snapshot (a helpdesk restoring it) brings it back.

Each row also carries the ticket's time facts (analytics/facts.py), computed from the same
timelines plus business time in the ticket's calendar (its group's, else the default).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.facts import compute_facts
from supportlens.analytics.history import epoch_ms, from_epoch_ms
from supportlens.analytics.timeline import (
    CalendarClock,
    calendar_codes,
    compute_timelines,
    epoch_ms_column,
    event_columns,
)
from supportlens.domain.calendars import CalendarChoice
from supportlens.domain.events import EventType
from supportlens.domain.statuses import StatusMap
from supportlens.domain.timeline import INITIAL_STATUS
from supportlens.store.schema import TICKET_SNAPSHOTS, TICKETS

_FAR_FUTURE_MS = 2**62
_STATE_COLUMNS = TICKET_SNAPSHOTS.column_names  # the tickets row without the facts
_ATTRIBUTES = ("customer_id", "agent_id", "group_id", "category", "priority", "status", "channel", "subject")


def live_state(
    workspace_id: str, events: pa.Table, snapshots: pa.Table, statuses: StatusMap, calendars: CalendarChoice
) -> tuple[pa.Table, list[str]]:
    """``derive_state`` of the tickets that are not deleted, and the ids of those that are."""
    deleted = deleted_tickets(events, snapshots)
    if deleted:
        events = events.filter(
            pc.invert(pc.is_in(events.column("ticket_id"), pa.array(deleted, pa.string())))
        )
    if events.num_rows == 0:
        return TICKETS.arrow_schema().empty_table(), deleted
    return derive_state(workspace_id, events, snapshots, statuses, calendars), deleted


def deleted_tickets(events: pa.Table, snapshots: pa.Table) -> list[str]:
    """The tickets of ``events`` (their history) whose latest ``deleted`` event is at or after
    every other event of theirs and every snapshot's version time, sorted."""
    is_deleted = pc.equal(events.column("type"), EventType.DELETED.value)
    if not pc.any(is_deleted).as_py():
        return []
    at = epoch_ms_column(events.column("occurred_at"))
    deleted_mask = np.asarray(is_deleted.to_numpy(zero_copy_only=False), dtype=bool)
    ids = events.column("ticket_id").to_pylist()
    deleted_at: dict[str, int] = {}
    other_at: dict[str, int] = {}
    for ticket_id, when, deletion in zip(ids, at.tolist(), deleted_mask.tolist(), strict=True):
        target = deleted_at if deletion else other_at
        target[ticket_id] = max(target.get(ticket_id, when), when)
    if snapshots.num_rows:
        versions = epoch_ms_column(snapshots.column("version_at")).tolist()
        for ticket_id, when in zip(snapshots.column("ticket_id").to_pylist(), versions, strict=True):
            if ticket_id in deleted_at:
                other_at[ticket_id] = max(other_at.get(ticket_id, when), when)
    return sorted(t for t, when in deleted_at.items() if when >= other_at.get(t, when))


def derive_state(
    workspace_id: str, events: pa.Table, snapshots: pa.Table, statuses: StatusMap, calendars: CalendarChoice
) -> pa.Table:
    """Current-state rows (TICKETS schema, facts included) for every ticket in ``events`` (one
    workspace's full activity log of those tickets); ``snapshots`` holds their snapshots, in any
    number; ``calendars`` are the workspace's, for the business-time facts."""
    columns, ticket_ids, order = event_columns(events)
    ordered = events.take(pa.array(order))
    timelines = compute_timelines(
        columns, as_of_ms=_FAR_FUTURE_MS, statuses=statuses, clock=CalendarClock(), closed_only=True
    )
    n = columns.tickets
    last_row = np.full(n, -1, dtype=np.int64)
    last_row[columns.ticket] = np.arange(len(columns.ticket))
    set_at: dict[str, np.ndarray] = {}
    set_row: dict[str, np.ndarray] = {}
    for name in (*_ATTRIBUTES, "score"):
        present = np.asarray(ordered.column(name).is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        rows = np.flatnonzero(present)
        chosen = np.full(n, -1, dtype=np.int64)
        chosen[columns.ticket[rows]] = rows  # the latest row that set it wins
        set_row[name] = chosen
        set_at[name] = np.where(chosen >= 0, columns.at_ms[np.maximum(chosen, 0)], -1)
    values = {name: ordered.column(name).to_pylist() for name in (*_ATTRIBUTES, "score")}
    last_seq = _group_max(columns.ticket, n, ordered.column("seq").cast(pa.int64()).to_numpy())
    last_received = _group_max(columns.ticket, n, epoch_ms_column(ordered.column("received_at")))
    created_tags = _created_tags(ordered, columns.ticket)
    newest = _newest_snapshots(snapshots)

    out: dict[str, list[Any]] = {name: [] for name in _STATE_COLUMNS}
    for index, ticket_id in enumerate(ticket_ids):
        snapshot = newest.get(ticket_id)
        snapshot_ms = epoch_ms(snapshot["version_at"]) if snapshot else None
        state: dict[str, Any] = {}
        source: dict[str, str] = {}
        for name in _ATTRIBUTES:
            row = int(set_row[name][index])
            from_events = row >= 0 and (
                snapshot is None or snapshot[name] is None or int(set_at[name][index]) >= (snapshot_ms or 0)
            )
            state[name] = values[name][row] if from_events else (snapshot[name] if snapshot else None)
            source[name] = "events" if from_events else "snapshot"
        if state["status"] is None:
            state["status"] = INITIAL_STATUS  # as in the timeline: a ticket starts "new"
        created_ms = int(timelines.created_ms[index])
        created_at = from_epoch_ms(created_ms)
        if snapshot is not None and snapshot["created_at"] < created_at:
            created_at = snapshot["created_at"]
        first_response = (
            from_epoch_ms(int(timelines.first_response_at_ms[index]))
            if timelines.has_first_response[index]
            else None
        )
        if snapshot is not None and snapshot["first_response_at"] is not None:
            first_response = min(filter(None, (first_response, snapshot["first_response_at"])))
        resolved = statuses.is_resolved(state["status"])
        resolved_at: datetime | None = None
        if resolved:
            by_events = (
                from_epoch_ms(int(timelines.resolved_at_ms[index]))
                if timelines.has_full_resolution[index]
                else None
            )
            by_snapshot: datetime | None = snapshot["resolved_at"] if snapshot else None
            if source["status"] == "events":
                resolved_at = by_events or by_snapshot
            else:
                resolved_at = by_snapshot or by_events
        score_row = int(set_row["score"][index])
        score = values["score"][score_row] if score_row >= 0 else None
        rated_later = score is not None and int(set_at["score"][index]) >= (snapshot_ms or 0)
        if snapshot is not None and snapshot["satisfaction_score"] is not None and not rated_later:
            score = snapshot["satisfaction_score"]
        last_event = from_epoch_ms(int(columns.at_ms[last_row[index]]))
        version = max(last_event, snapshot["version_at"]) if snapshot else last_event
        seq = int(last_seq[index])
        row_values = {
            **state,
            "workspace_id": workspace_id,
            "ticket_id": ticket_id,
            "created_at": created_at,
            "first_response_at": first_response,
            "resolved_at": resolved_at,
            "satisfaction_score": score,
            "tags": list(snapshot["tags"]) if snapshot else created_tags.get(index, []),
            "updated_at": max(filter(None, (last_event, snapshot["updated_at"] if snapshot else None))),
            "response_ms": _between(created_at, first_response),
            "resolution_ms": _between(created_at, resolved_at),
            "is_resolved": resolved,
            "version_at": version,
            "seq": max(seq, snapshot["seq"]) if snapshot else seq,
            "received_at": from_epoch_ms(int(last_received[index])),
        }
        for name in _STATE_COLUMNS:
            out[name].append(row_values[name])
    rows = pa.Table.from_pydict(out, schema=TICKET_SNAPSHOTS.arrow_schema())
    facts = compute_facts(
        columns,
        statuses=statuses,
        calendars=calendars,
        calendar_of=calendar_codes(calendars, rows.column("group_id")),
        calendar_time=timelines,
    )
    return pa.Table.from_pydict(
        {**{name: rows.column(name) for name in _STATE_COLUMNS}, **facts}, schema=TICKETS.arrow_schema()
    )


def _group_max(ticket: np.ndarray, tickets: int, values: np.ndarray) -> np.ndarray:
    out = np.full(tickets, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(out, ticket, values.astype(np.int64))
    return out


def _created_tags(ordered: pa.Table, ticket: np.ndarray) -> dict[int, list[str]]:
    created = np.flatnonzero(
        np.asarray(pc.equal(ordered.column("type"), "created").to_numpy(zero_copy_only=False))
    )
    tags = ordered.column("tags")
    found: dict[int, list[str]] = {}
    for row in created[::-1]:  # the first created event wins
        found[int(ticket[row])] = tags[int(row)].as_py() or []
    return found


def _newest_snapshots(snapshots: pa.Table) -> dict[str, dict[str, Any]]:
    ordered = snapshots.sort_by([("version_at", "ascending"), ("seq", "ascending")])
    return {row["ticket_id"]: row for row in ordered.to_pylist()}  # later rows overwrite earlier


def _between(start: datetime, end: datetime | None) -> int | None:
    return None if end is None else epoch_ms(end) - epoch_ms(start)
