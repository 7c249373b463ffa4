"""Per-ticket time facts: the part of ``ticket_time_metrics`` that does not depend on the evaluation
time, computed by the writer whenever a ticket with events changes and stored on its ``tickets``
row (schema columns ``FACT_COLUMNS``).

Everything in a ticket's metrics is fixed once all its events are seen, except the interval of its
current status, which runs until the evaluation time.  So the writer stores, in calendar and in
business time of the ticket's calendar, the closed time per status category, the closed time of
the current status, the other statuses' time (as ready JSON fragments), first response and
resolutions, and the counters; a query adds the open interval for its ``as_of``
(``time_metrics.answer_from_facts``; ``activity.quality_from_facts`` reads the counters).

The facts hold only while nothing they were computed from has changed: ``facts_key`` records the
status names and the ticket's calendar, and ``last_event_at`` bounds the evaluation times they
serve (a query about an earlier moment must not see later events).  A query that finds a stale or
missing fact falls back to computing from the activity log (analytics/history.py); status-name and
calendar changes restate the workspace's tickets, which refreshes the facts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.common import PipeContext
from supportlens.analytics.history import from_epoch_ms, timestamp_ms
from supportlens.analytics.timeline import (
    BOOL,
    CATEGORIES,
    I64,
    DurationClock,
    EventColumns,
    TicketCalendars,
    Timelines,
    calendar_codes,
    compute_timelines,
)
from supportlens.domain.calendars import BusinessClock, CalendarChoice
from supportlens.domain.metrics import MS_PER_DAY, minutes_array
from supportlens.domain.statuses import DEFAULT_STATUS_CATEGORIES, StatusCategory, StatusMap
from supportlens.store.base import Engine, ParamType
from supportlens.store.schema import FACT_CLOCKS, FACT_COLUMNS, TICKETS

# Bumped whenever what the facts mean changes: every stored fact then reads as stale.
FACTS_VERSION = 1
_FAR_FUTURE_MS = 2**62
_CHECK_TIMEOUT_SECONDS = 300.0  # a count over the workspace's tickets, once at start


def facts_key(statuses: StatusMap, calendar_fingerprint: str) -> str:
    """What a ticket's facts were computed under: this code, the status names (the built-in ones
    too, which a release may extend), its calendar."""
    effective = {**DEFAULT_STATUS_CATEGORIES, **statuses.custom}
    names = orjson.dumps(sorted((name, category.value) for name, category in effective.items()))
    return f"{FACTS_VERSION}:{hashlib.sha256(names).hexdigest()[:12]}:{calendar_fingerprint}"


def outdated_facts(engine: Engine, workspace_id: str, statuses: StatusMap, calendars: CalendarChoice) -> int:
    """How many of the workspace's tickets hold facts computed under status names or a calendar it
    no longer has: by an earlier release (``facts_key`` names the built-in status names and this
    code's ``FACTS_VERSION``), or before a change that was not restated."""
    keys = sorted({facts_key(statuses, fingerprint) for fingerprint in calendars.fingerprints()})
    d = engine.dialect
    sql = (
        f"SELECT count(*) AS n FROM {d.table(TICKETS)} WHERE workspace_id = {d.param('ws', ParamType.STRING)}"
        f" AND facts_key IS NOT NULL AND NOT ({d.in_list('facts_key', 'keys')})"
    )
    found = engine.fetch(sql, {"ws": workspace_id, "keys": keys}, timeout=_CHECK_TIMEOUT_SECONDS)
    return int(found.rows[0][0])


def status_fragments(names: tuple[str, ...], spent_ms: I64, shown: BOOL) -> pa.ChunkedArray | pa.Array:
    """Per row, '"status":minutes' for every shown status joined by commas (null when none):
    the body of a ``minutes_in_status`` JSON object, built column-wise.  Statuses come in name
    order, not in ``names``' order (the order a batch's events happened to list them): the same
    history gives the same text however it arrived."""
    values = minutes_array(spent_ms)
    fragments = []
    for code, name in sorted(enumerate(names), key=lambda entry: entry[1]):
        key = orjson.dumps(name).decode() + ":"
        number = pc.cast(pa.array(values[:, code]), pa.string())
        entry = pc.binary_join_element_wise(key, number, "")
        fragments.append(pc.if_else(pa.array(shown[:, code]), entry, None))
    return join_present(fragments, ",", len(spent_ms))


def join_present(parts: list[Any], separator: str, rows: int) -> Any:
    """Row by row, the non-null parts joined by ``separator``; null where every part is.  (pyarrow
    26 drops the rows whose parts are all null under null_handling="skip": every row gets a last,
    empty part, and the separator it brings is cut off.)"""
    joined = pc.binary_join_element_wise(
        *parts, pa.array([""] * rows, pa.string()), separator, null_handling="skip"
    )
    cut = pc.utf8_slice_codeunits(joined, 0, -len(separator))
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), cut)


def compute_facts(
    columns: EventColumns,
    *,
    statuses: StatusMap,
    calendars: CalendarChoice,
    calendar_of: I64,
    calendar_time: Timelines,
) -> dict[str, Any]:
    """The facts of every ticket of ``columns`` (its whole activity log), by ticket index:
    ``calendar_of`` is each ticket's calendar (index into ``calendars.schedules``),
    ``calendar_time`` the timelines in calendar time with ``closed_only``."""
    n = columns.tickets
    low = int(columns.at_ms.min()) - MS_PER_DAY
    high = int(columns.at_ms.max()) + MS_PER_DAY
    used, compact = np.unique(calendar_of, return_inverse=True)
    clocks = [
        BusinessClock(calendars.schedules[int(i)], from_epoch_ms(low), from_epoch_ms(high)) for i in used
    ]
    business_clock = TicketCalendars(clocks, compact.astype(np.int64))
    business = compute_timelines(
        columns, as_of_ms=_FAR_FUTURE_MS, statuses=statuses, clock=business_clock, closed_only=True
    )
    everyone = np.arange(n, dtype=np.int64)
    created = calendar_time.created_ms
    opening = business_clock.cumulative(created + 1, everyone) - business_clock.cumulative(created, everyone)
    fingerprints = calendars.fingerprints()
    keys = np.array([facts_key(statuses, fingerprints[int(i)]) for i in used], dtype=object)[compact]
    last_event = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last_event, columns.ticket, columns.at_ms)
    names = calendar_time.status_names
    out: dict[str, Any] = {
        "last_event_at": _timestamps(last_event),
        "facts_key": pa.array(keys, pa.string()),
        "timeline_created_at": _timestamps(created),
        "timeline_status": pa.array(np.array(names, dtype=object)[calendar_time.status], pa.string()),
        "status_since": _timestamps(calendar_time.current_start_ms),
        "reopens": pa.array(calendar_time.reopens, pa.uint32()),
        "agent_replies": pa.array(calendar_time.agent_replies, pa.uint32()),
        "one_touch": pa.array(calendar_time.one_touch),
        "first_contact_resolution": pa.array(calendar_time.first_contact_resolution),
        "ongoing": pa.array(calendar_time.ongoing),
        "created_outside_business_hours": pa.array(opening == 0),
    }
    for clock, timelines in zip(FACT_CLOCKS, (calendar_time, business), strict=True):
        current = timelines.status
        rows = np.arange(n)
        out[f"{clock}_first_response_ms"] = _masked(timelines.first_response_ms, timelines.has_first_response)
        out[f"{clock}_first_resolution_ms"] = _masked(
            timelines.first_resolution_ms, timelines.has_first_resolution
        )
        out[f"{clock}_full_resolution_ms"] = _masked(
            timelines.full_resolution_ms, timelines.has_full_resolution
        )
        for code, category in enumerate(CATEGORIES):
            out[f"{clock}_in_{category.value}_ms"] = pa.array(timelines.in_category_ms[:, code])
        out[f"{clock}_in_current_status_ms"] = pa.array(timelines.in_status_ms[rows, current])
        others = timelines.in_status_ms != 0
        others[rows, current] = False
        out[f"{clock}_other_statuses"] = status_fragments(names, timelines.in_status_ms, others)
    assert set(out) == {c.name for c in FACT_COLUMNS}
    return out


def _masked(values: I64, has: BOOL) -> pa.Array:
    return pa.array(values, pa.int64(), mask=~has)


def _timestamps(ms: I64) -> pa.Array:
    return pa.array(ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC"))


def facts_serve(context: PipeContext, tickets: pa.Table, as_of_ms: int) -> bool:
    """Whether the stored facts of the chosen tickets (``tickets`` holds their ``group_id``,
    ``last_event_at`` and ``facts_key``) give exactly what their activity log would at ``as_of``:
    every ticket with events has facts computed under the workspace's current status names and
    its own current calendar, and none has an event after ``as_of``."""
    last_event, logged = timestamp_ms(tickets, "last_event_at")
    if not logged.any():
        return True
    if bool((last_event[logged] > as_of_ms).any()):
        return False
    choice = context.calendar_choice()
    expected = [facts_key(context.statuses, fingerprint) for fingerprint in choice.fingerprints()]
    # Calendars with equal keys are interchangeable: compare each row's key class.
    key_class = {key: expected.index(key) for key in expected}
    want = np.array([key_class[key] for key in expected], dtype=np.int64)[
        calendar_codes(choice, tickets.column("group_id"))
    ]
    encoded = pc.dictionary_encode(tickets.column("facts_key")).combine_chunks()
    found = np.array(
        [*(key_class.get(key, -1) for key in encoded.dictionary.to_pylist()), -1], dtype=np.int64
    )
    stored = found[encoded.indices.fill_null(len(found) - 1).to_numpy(zero_copy_only=False)]
    return bool((stored[logged] == want[logged]).all())


@dataclass(frozen=True, slots=True)
class CurrentIntervals:
    """Each ticket row's current status interval, from ``status_since`` to the evaluation time:
    its length by the answer's clock, and the status (codes into ``status_names``) and category
    (index into CATEGORIES) it is in.  Meaningless on rows without facts."""

    open_ms: I64
    status_names: list[str]
    status_codes: I64
    category: I64


def current_intervals(
    context: PipeContext, tickets: pa.Table, logged: BOOL, as_of_ms: int, clock: DurationClock
) -> CurrentIntervals:
    rows = np.arange(tickets.num_rows, dtype=np.int64)
    since, _ = timestamp_ms(tickets, "status_since")
    since = np.where(logged, since, as_of_ms)  # the others' values never reach the clock
    open_ms = clock.cumulative(np.maximum(as_of_ms, since), rows) - clock.cumulative(since, rows)
    encoded = pc.dictionary_encode(tickets.column("timeline_status")).combine_chunks()
    names = encoded.dictionary.to_pylist()
    codes = np.asarray(encoded.indices.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    index = {category: position for position, category in enumerate(CATEGORIES)}
    category_of = [index[context.statuses.category(name) or StatusCategory.OPEN] for name in names]
    current = np.array([*category_of, 0], dtype=np.int64)[codes] if names else codes
    return CurrentIntervals(open_ms, names, codes, current)


def category_totals(tickets: pa.Table, clock_name: str, current: CurrentIntervals) -> I64:
    """Milliseconds per ticket row (rows) and status category (columns, CATEGORIES order): the
    stored closed time by ``clock_name`` plus the current interval in its category."""
    totals = np.zeros((tickets.num_rows, len(CATEGORIES)), dtype=np.int64)
    for code, category in enumerate(CATEGORIES):
        column = tickets.column(f"{clock_name}_in_{category.value}_ms").fill_null(0)
        stored = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64)
        totals[:, code] = stored + np.where(current.category == code, current.open_ms, 0)
    return totals
