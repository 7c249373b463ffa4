"""The SLA targets of many snapshot-only tickets at once (``domain.sla.evaluate_snapshot`` for a whole
column of tickets): the same values, target by target, computed with numpy instead of Python per
ticket.  Pure (no I/O); tested against the reference (tests/analytics/test_sla_snapshots_vectorized.py).

A snapshot's history is tiny: ``new`` from creation, at most one status change, at most one agent
reply, so each target has at most two status intervals and no next_response instance.  Tickets are
grouped by what the reference decides once per ticket from few distinct values: the attributes their
policy conditions read (so the policy and its targets, ``PolicySet.choice``) and their calendar (the
group's, through ``calendars_for``, then the policy's calendar by ``domain.sla``'s rule).  Then every
rule of ``domain.sla._state`` is applied to arrays.

Instants are integer microseconds since the epoch, as exact as the reference's datetimes (``as_of`` is
often not a whole millisecond).  Calendar time is ``timeline.calendar_ms`` (rounded milliseconds, the
same float arithmetic); business time is read from a ``BusinessClock``'s open intervals, in
microseconds, so that ``business_ms`` (whole milliseconds, rounded down) and ``add_business_time``
(None past ten years or when the calendar never opens again) are matched exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.domain.calendars import BusinessClock, Schedule, open_time_before
from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.domain.metrics import MS_PER_MINUTE
from supportlens.domain.sla import (
    REPLY_RUNS_IN,
    RUNS_IN,
    PolicySet,
    SlaError,
    SlaPolicy,
    Target,
    TargetStatus,
    TargetType,
    TicketAttributes,
    policy_schedule,
    ticket_attributes,
)
from supportlens.domain.statuses import StatusCategory, StatusMap
from supportlens.domain.timeline import INITIAL_STATUS

Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# The targets a snapshot can have, in the order ``evaluate_snapshot`` lists them.
SNAPSHOT_TARGETS = (
    TargetType.FIRST_RESPONSE,
    TargetType.RESOLUTION,
    TargetType.REQUESTER_WAIT,
    TargetType.AGENT_WORK,
)
_CATEGORIES = tuple(StatusCategory)
_CLOSED = _CATEGORIES.index(StatusCategory.CLOSED)
_RESOLVED = np.array([category.is_resolved for category in _CATEGORIES])
# The reference's clocks: a reply target's, and the status-driven ones (resolution's less the
# policy's pause categories).
_RUNS_IN: Mapping[TargetType, frozenset[StatusCategory]] = {
    TargetType.FIRST_RESPONSE: REPLY_RUNS_IN,
    **RUNS_IN,
}
_US_PER_MS = 1000
_US_PER_DAY = 86_400_000_000
_HORIZON_US = 3653 * _US_PER_DAY  # add_business_time gives up after ten years
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TS = pa.timestamp("us", tz="UTC")
_NONE = np.iinfo(np.int64).min  # a missing instant inside the arrays

# The columns of ``evaluate_snapshots``'s answer (one row per ticket and target).
TARGET_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),  # the ticket's row in the input
        ("type", pa.string()),
        ("instance", pa.int64()),
        ("policy_id", pa.string()),
        ("priority", pa.string()),
        ("target_minutes", pa.int64()),
        ("business_hours", pa.bool_()),
        ("started_at", _TS),
        ("due_at", _TS),
        ("state", pa.string()),
        ("breached", pa.bool_()),
        ("achieved_at", _TS),
        ("breached_at", _TS),
        ("completed_at", _TS),
        ("elapsed_ms", pa.int64()),
        ("remaining_ms", pa.int64()),
        ("at_risk", pa.bool_()),
    ]
)

# What ``evaluate_snapshots`` reads of each ticket.
SNAPSHOT_COLUMNS = (
    "created_at",  # the customer's creation (never null)
    "replied_at",  # the agent's reply, or null
    "status_at",  # when the ticket changed into ``status`` (null with it)
    "status",  # null: no change
    "priority",
    "category",
    "channel",
    "group_id",
    "tags",  # list of strings, or null
)


def micros(column: pa.ChunkedArray | pa.Array) -> tuple[Int64Array, BoolArray]:
    """A timestamp column as epoch microseconds (0 where null) and its validity."""
    as_us = pc.cast(pc.cast(column, pa.timestamp("us")), pa.int64())
    valid = np.asarray(pc.is_valid(as_us).to_numpy(zero_copy_only=False), dtype=bool)
    values = np.asarray(pc.fill_null(as_us, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    return values, valid


def to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[Int64Array, list[object]]:
    """Dictionary codes of a column (-1 for null) and the distinct values."""
    encoded = pc.dictionary_encode(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    indices = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return indices, encoded.dictionary.to_pylist()


def _calendar_ms(a: Int64Array, b: Int64Array) -> Int64Array:
    """``timeline.calendar_ms`` of each pair: the same float arithmetic (round half to even)."""
    seconds = (b - a).astype(np.float64) / 1e6
    return np.maximum(0, np.rint(seconds * 1000)).astype(np.int64)


class _UsClock:
    """A ``BusinessClock``'s open intervals, read in microseconds: B(t), business ms, and adds."""

    def __init__(self, schedule: Schedule, low_us: int, high_us: int) -> None:
        clock = BusinessClock(
            schedule,
            _EPOCH + timedelta(microseconds=low_us),
            _EPOCH + timedelta(microseconds=high_us),
        )
        starts, ends, before = clock.intervals()
        self.high_us = clock.end_ms * _US_PER_MS
        self.starts = starts * _US_PER_MS
        self.ends = ends * _US_PER_MS
        self.before = before * _US_PER_MS
        self.after = self.before + (self.ends - self.starts)
        self.total = int(self.after[-1]) if self.after.size else 0

    def cumulative(self, t: Int64Array) -> Int64Array:
        return open_time_before(self.starts, self.ends, self.before, t)

    def ms(self, a: Int64Array, b: Int64Array) -> Int64Array:
        """``calendars.business_ms`` of each pair (open microseconds in [a, b), in whole ms)."""
        result: Int64Array = np.where(b > a, (self.cumulative(b) - self.cumulative(a)) // _US_PER_MS, 0)
        return result

    def add(self, t: Int64Array, ms: Int64Array) -> tuple[Int64Array, BoolArray]:
        """``add_business_time`` of each (t, ms > 0) pair, and whether the span held the answer."""
        goal = self.cumulative(t) + ms * _US_PER_MS
        found = goal <= self.total
        if not self.starts.size:
            return np.zeros(t.shape, dtype=np.int64), np.zeros(t.shape, dtype=bool)
        index = np.minimum(np.searchsorted(self.after, goal, side="left"), self.starts.size - 1)
        result: Int64Array = self.starts[index] + goal - self.before[index]
        return result, found


class _Clocks:
    """The business clocks of the schedules in use, over the tickets' span (a day to spare), widened
    on demand for due times that fall later."""

    def __init__(self, low_us: int, high_us: int) -> None:
        self._low = low_us - _US_PER_DAY
        self._high = high_us + _US_PER_DAY
        self._clocks: dict[int, list[_UsClock]] = {}
        self._schedules: dict[int, Schedule] = {}

    def _first(self, schedule: Schedule) -> _UsClock:
        key = id(schedule)
        if key not in self._clocks:
            self._schedules[key] = schedule
            self._clocks[key] = [_UsClock(schedule, self._low, self._high)]
        return self._clocks[key][0]

    def ms(self, schedule: Schedule, a: Int64Array, b: Int64Array) -> Int64Array:
        return self._first(schedule).ms(a, b)

    def add(self, schedule: Schedule, t: Int64Array, ms: Int64Array) -> Int64Array:
        """When ``ms`` (> 0) of business time have passed after each ``t``; _NONE where the calendar
        does not get there within ten years (add_business_time's CalendarError)."""
        self._first(schedule)
        clocks = self._clocks[id(schedule)]
        result = np.full(t.shape, _NONE, dtype=np.int64)
        todo = np.ones(t.shape, dtype=bool)
        extra = 30 * _US_PER_DAY
        level = 0
        while todo.any():
            if level == len(clocks):
                if clocks[-1].high_us >= self._high + _HORIZON_US:
                    break  # nothing within ten years of any of them
                high = min(self._high + extra, self._high + _HORIZON_US + _US_PER_DAY)
                clocks.append(_UsClock(schedule, self._low, high))
                extra *= 8
            found, ok = clocks[level].add(t[todo], ms[todo])
            where = np.flatnonzero(todo)
            result[where[ok]] = found[ok]
            todo[where[ok]] = False
            level += 1
        late = (result != _NONE) & (result - t > _HORIZON_US)
        result[late] = _NONE
        return result


@dataclass(frozen=True, slots=True)
class _Choice:
    """The policy and targets of one group of tickets (same attributes, calendar and visibility)."""

    policy: SlaPolicy
    priority: str | None
    targets: Mapping[TargetType, Target]
    calendars: Mapping[str | None, Schedule]


# Kept across runs: a workspace's tickets share some thousands of attribute sets, and folding each
# through the reference's event path took a tenth of an evaluation of a million tickets.
@functools.lru_cache(maxsize=1 << 16)
def _attributes(
    priority: str | None,
    category: str | None,
    channel: str | None,
    group_id: str | None,
    tags: tuple[str, ...] | None,
    seen: bool,
) -> TicketAttributes:
    """What the reference's conditions read of a snapshot's created event (none before it is seen)."""
    if not seen:
        return TicketAttributes()
    created = TicketEvent(
        event_id="snapshot",
        ticket_id="snapshot",
        at=_EPOCH,
        type=EventType.CREATED,
        actor_type=ActorType.CUSTOMER,
        group_id=group_id,
        category=category,
        priority=priority,
        channel=channel,
        tags=tags or None,
    )
    return ticket_attributes([created], _EPOCH)


def _groups(keys: list[Int64Array]) -> tuple[Int64Array, Int64Array]:
    """The first row of each distinct combination of codes, and each row's combination."""
    combined = np.zeros(keys[0].shape, dtype=np.int64)
    radix = 1
    for codes in keys:
        size = int(codes.max()) + 2 if codes.size else 1
        if radix * size >= 2**62:
            _, first_row, group = np.unique(
                np.stack(keys, axis=1), axis=0, return_index=True, return_inverse=True
            )
            return first_row, group.reshape(-1)
        combined += (codes + 1) * radix
        radix *= size
    _, first_row, group = np.unique(combined, return_index=True, return_inverse=True)
    return first_row, group.reshape(-1)


def evaluate_snapshots(
    tickets: pa.Table,
    *,
    policies: PolicySet,
    calendars_for: Callable[[str | None], Mapping[str | None, Schedule]],
    statuses: StatusMap,
    as_of: datetime,
    in_order: bool = True,
) -> pa.Table:
    """``evaluate_snapshot`` of every row of ``tickets`` (``SNAPSHOT_COLUMNS``: the created event's
    time and attributes, the reply, the status change) at ``as_of``: its targets (not escalations) as
    ``TARGET_SCHEMA`` rows, by ticket row then in the reference's order (``in_order=False``: in no
    particular order, which saves sorting them).  ``calendars_for(group_id)`` gives a ticket's
    calendars as ``evaluate_snapshot`` takes them."""
    if not isinstance(as_of, datetime) or as_of.utcoffset() is None:
        raise SlaError(f"as_of must be a timezone-aware datetime, got {as_of!r}")
    n = tickets.num_rows
    if n == 0:
        return TARGET_SCHEMA.empty_table()
    now = to_us(as_of)
    created, created_valid = micros(tickets.column("created_at"))
    if not created_valid.all():
        raise SlaError("created_at must not be null")
    replied, replied_valid = micros(tickets.column("replied_at"))
    status_at, status_at_valid = micros(tickets.column("status_at"))

    # Statuses: the category of each distinct name; the change counts once seen, unless it repeats new.
    status_code, status_names = _codes(tickets.column("status"))
    categories = []
    for name in [*status_names, INITIAL_STATUS]:
        category = statuses.category(name)  # type: ignore[arg-type]
        if category is None:
            raise SlaError(f"status: a status name must not be blank, got {name!r}")
        categories.append(_CATEGORIES.index(category))
    category_of = np.array(categories, dtype=np.int64)
    new_category = int(category_of[-1])
    not_new = np.array([name != INITIAL_STATUS for name in status_names] + [False], dtype=bool)
    has_status = (status_code >= 0) & status_at_valid
    changes = has_status & (status_at <= now) & not_new[status_code]
    changed_at = np.maximum(status_at, created)
    first = changes & (changed_at > created)  # a ``new`` interval before the change
    start2 = np.where(changes, changed_at, created)
    category2 = np.where(changes, category_of[status_code], new_category)
    end2 = np.maximum(now, start2)
    # Closed is final: the history ends at the first entry into closed.
    closed_first = first & (new_category == _CLOSED)
    second = ~closed_first
    end1 = np.where(closed_first, created, changed_at)
    end2 = np.where(category2 == _CLOSED, start2, end2)
    horizon = np.where(closed_first, created, end2)
    current = np.where(closed_first, new_category, category2)
    # The reply, once seen (and before the horizon); the resolved run the history ends in.
    reply = np.maximum(replied, created)
    has_reply = replied_valid & (replied <= now) & (reply <= horizon)
    resolved1 = first & bool(_RESOLVED[new_category])
    since_valid = np.where(closed_first, resolved1, _RESOLVED[category2])
    since = np.where(closed_first | (first & resolved1), created, start2)

    # Groups: the attributes conditions read (once seen), the group's calendars.
    seen = created <= now
    keys = [_codes(tickets.column(name))[0] for name in ("priority", "category", "channel", "group_id")]
    tags = tickets.column("tags").cast(pa.list_(pa.string()))
    joined = pc.binary_join(tags, "\x1f")
    keys.append(_codes(joined)[0])
    keys.append(
        np.asarray(
            pc.fill_null(pc.list_value_length(tags), -1).to_numpy(zero_copy_only=False), dtype=np.int64
        )
    )
    keys.append(seen.astype(np.int64))
    first_row, group = _groups(keys)
    choices: list[_Choice] = []
    firsts = tickets.select(["priority", "category", "channel", "group_id", "tags"])
    for index, row in zip(first_row, firsts.take(pa.array(first_row, pa.int64())).to_pylist(), strict=True):
        tags = tuple(row["tags"]) if row["tags"] else None
        attributes = _attributes(
            row["priority"], row["category"], row["channel"], row["group_id"], tags, bool(seen[index])
        )
        policy, targets = policies.choice(attributes)
        choices.append(_Choice(policy, attributes.priority, targets, calendars_for(row["group_id"])))  # type: ignore[arg-type]

    low = min(int(created.min()), now)
    high = max(int(created.max()), now)
    clocks = _Clocks(low, high)
    parts: list[dict[str, object]] = []
    for kind in SNAPSHOT_TARGETS:
        parts.append(
            _targets_of(
                kind,
                choices,
                group,
                clocks,
                now=now,
                created=created,
                first=first,
                second=second,
                end1=end1,
                start2=start2,
                end2=end2,
                category1=new_category,
                category2=category2,
                current=current,
                horizon=horizon,
                completed=reply if kind is TargetType.FIRST_RESPONSE else since,
                completed_valid=has_reply if kind is TargetType.FIRST_RESPONSE else since_valid,
            )
        )
    return _assemble(parts, in_order)


def _targets_of(
    kind: TargetType,
    choices: list[_Choice],
    group: Int64Array,
    clocks: _Clocks,
    *,
    now: int,
    created: Int64Array,
    first: BoolArray,
    second: BoolArray,
    end1: Int64Array,
    start2: Int64Array,
    end2: Int64Array,
    category1: int,
    category2: Int64Array,
    current: Int64Array,
    horizon: Int64Array,
    completed: Int64Array,
    completed_valid: BoolArray,
) -> dict[str, object]:
    """One target type of every ticket that has it (``domain.sla._state`` on arrays)."""
    g = len(choices)
    has = np.zeros(g, dtype=bool)
    minutes = np.zeros(g, dtype=np.int64)
    business = np.zeros(g, dtype=bool)
    runs_table = np.zeros((g, len(_CATEGORIES)), dtype=bool)
    at_risk_minutes = np.full(g, -1, dtype=np.int64)
    at_risk_percent = np.zeros(g, dtype=np.int64)
    schedules: list[Schedule | None] = []
    for index, choice in enumerate(choices):
        target = choice.targets.get(kind)
        schedules.append(None)
        if target is None:
            continue
        has[index] = True
        minutes[index] = target.minutes
        business[index] = target.business_hours
        runs_in = _RUNS_IN[kind]
        if kind is TargetType.RESOLUTION:
            runs_in = runs_in - choice.policy.pause_categories
        runs_table[index] = [category in runs_in for category in _CATEGORIES]
        if choice.policy.at_risk_minutes is not None:
            at_risk_minutes[index] = choice.policy.at_risk_minutes
        at_risk_percent[index] = choice.policy.at_risk_percent
        if target.business_hours:
            schedules[index] = policy_schedule(choice.calendars, choice.policy)
    rows = np.flatnonzero(has[group])
    grp = group[rows]
    c, end_done = created[rows], completed[rows]
    done = completed_valid[rows]
    end = np.where(done, end_done, horizon[rows])
    target_ms = minutes[grp] * MS_PER_MINUTE
    # The (at most two) runs of the clock: [a, b) where the category lets it run, cut at the end.
    a1, b1 = c, np.minimum(end1[rows], end)
    run1 = first[rows] & runs_table[grp, category1] & (a1 < b1)
    a2, b2 = np.maximum(start2[rows], c), np.minimum(end2[rows], end)
    run2 = second[rows] & runs_table[grp, category2[rows]] & (a2 < b2)
    spent1 = np.zeros(rows.size, dtype=np.int64)
    spent2 = np.zeros(rows.size, dtype=np.int64)
    calendar = ~business[grp]
    c1, c2 = calendar & run1, calendar & run2
    spent1[c1] = _calendar_ms(a1[c1], b1[c1])
    spent2[c2] = _calendar_ms(a2[c2], b2[c2])
    by_schedule: dict[int, tuple[Schedule, BoolArray]] = {}
    for index, schedule in enumerate(schedules):
        if schedule is not None:
            key = id(schedule)
            member = grp == index
            if key in by_schedule:
                by_schedule[key] = (schedule, by_schedule[key][1] | member)
            else:
                by_schedule[key] = (schedule, member)
    for schedule, member in by_schedule.values():
        m1, m2 = member & run1, member & run2
        spent1[m1] = clocks.ms(schedule, a1[m1], b1[m1])
        spent2[m2] = clocks.ms(schedule, a2[m2], b2[m2])
    elapsed = spent1 + spent2
    remaining = target_ms - elapsed
    breached = elapsed > target_ms
    # When the elapsed time reached the target, in the run where it did.
    in1 = run1 & (target_ms <= spent1)
    in2 = ~in1 & run2 & (spent1 < target_ms) & (target_ms <= elapsed)
    reach_from = np.where(in1, a1, a2)
    reach_ms = np.where(in1, target_ms, target_ms - spent1)
    reached_valid = in1 | in2
    state = np.where(
        done,
        np.where(breached, 3, 2),
        np.where(runs_table[grp, current[rows]], 0, 1),
    )  # index into _STATES
    # An active target's due time is reckoned from the start of the run its clock is in, as the
    # reach is (``domain.sla._measured``), not from the horizon plus whole remaining milliseconds.
    last_start, last_end = np.where(run2, a2, a1), np.where(run2, b2, b1)
    from_run = (state == 0) & (run1 | run2) & (last_end == end)
    before = np.where(run2, spent1, 0)
    due_from = np.where(done, end_done, np.where(from_run, last_start, horizon[rows]))
    needs_due = ~reached_valid & (state != 1)
    due_start = np.where(reached_valid, reach_from, due_from)
    due_ms = np.where(reached_valid, reach_ms, np.where(from_run, target_ms - before, remaining))
    wanted = reached_valid | needs_due
    due = np.full(rows.size, _NONE, dtype=np.int64)
    cal = wanted & calendar
    due[cal] = due_start[cal] + due_ms[cal] * _US_PER_MS
    for schedule, member in by_schedule.values():
        m = member & wanted
        if m.any():
            due[m] = clocks.add(schedule, due_start[m], due_ms[m])
    arm = at_risk_minutes[grp]
    at_risk = (
        (state == 0)
        & ~breached
        & (
            ((arm >= 0) & (remaining <= arm * MS_PER_MINUTE))
            | (elapsed * 100 >= at_risk_percent[grp] * target_ms)
        )
    )
    reached = np.where(reached_valid, due, _NONE)
    return {
        "row": rows,
        "order": np.full(rows.size, SNAPSHOT_TARGETS.index(kind), dtype=np.int64),
        "type": kind.value,
        "group": grp,
        "choices": choices,
        "target_minutes": minutes[grp],
        "business_hours": business[grp],
        "started_at": c,
        "due_at": due,
        "state": state,
        "breached": breached,
        "achieved_at": np.where(state == 2, end_done, _NONE),
        "breached_at": np.where(breached, reached, _NONE),
        "completed_at": np.where(done, end_done, _NONE),
        "elapsed_ms": elapsed,
        "remaining_ms": remaining,
        "at_risk": at_risk,
    }


_STATES = (TargetStatus.ACTIVE, TargetStatus.PAUSED, TargetStatus.ACHIEVED, TargetStatus.BREACHED)


def _times(values: Int64Array) -> pa.Array:
    return pa.array(values, pa.int64(), mask=values == _NONE).cast(_TS)


def _assemble(parts: list[dict[str, object]], in_order: bool) -> pa.Table:
    """The targets of every type, by ticket row then type order when ``in_order``."""

    def joined(name: str) -> npt.NDArray[np.generic]:
        return np.concatenate([np.asarray(part[name]) for part in parts])

    rows, order = joined("row"), joined("order")
    ordering: npt.NDArray[np.intp] | slice = np.lexsort((order, rows)) if in_order else slice(None)
    choices: list[_Choice] = parts[0]["choices"]  # type: ignore[assignment]
    group = joined("group")[ordering]
    policy_ids = pa.array([choice.policy.id for choice in choices], pa.string())
    priorities = pa.array([choice.priority for choice in choices], pa.string())
    kinds = pa.array([kind.value for kind in SNAPSHOT_TARGETS], pa.string())
    states = pa.array([state.value for state in _STATES], pa.string())
    take = pa.array(group, pa.int64())
    columns = {
        "row": pa.array(rows[ordering], pa.int64()),
        "type": kinds.take(pa.array(order[ordering], pa.int64())),
        "instance": pa.array(np.zeros(rows.size, dtype=np.int64), pa.int64()),
        "policy_id": policy_ids.take(take),
        "priority": priorities.take(take),
        "target_minutes": pa.array(joined("target_minutes")[ordering], pa.int64()),
        "business_hours": pa.array(joined("business_hours")[ordering], pa.bool_()),
        "started_at": _times(joined("started_at")[ordering]),  # type: ignore[arg-type]
        "due_at": _times(joined("due_at")[ordering]),  # type: ignore[arg-type]
        "state": states.take(pa.array(joined("state")[ordering], pa.int64())),
        "breached": pa.array(joined("breached")[ordering], pa.bool_()),
        "achieved_at": _times(joined("achieved_at")[ordering]),  # type: ignore[arg-type]
        "breached_at": _times(joined("breached_at")[ordering]),  # type: ignore[arg-type]
        "completed_at": _times(joined("completed_at")[ordering]),  # type: ignore[arg-type]
        "elapsed_ms": pa.array(joined("elapsed_ms")[ordering], pa.int64()),
        "remaining_ms": pa.array(joined("remaining_ms")[ordering], pa.int64()),
        "at_risk": pa.array(joined("at_risk")[ordering], pa.bool_()),
    }
    return pa.Table.from_pydict(columns, schema=TARGET_SCHEMA)
