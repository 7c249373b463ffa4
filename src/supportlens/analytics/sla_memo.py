"""SLA evaluations kept between pipe runs: of each ticket with events (``KeptEvaluations``), and what
``sla_attainment`` reads of every ticket version's targets (``TargetStates``, below).

The SLA pipes evaluate tickets with an activity log one by one with the reference (``domain/sla.py``),
about 150 microseconds each, and read their events first: at 20,000 such tickets, most of a 6 s
``sla_attainment``.  Once the evaluation time is at or after a ticket's last event, evaluating it
again at a later (or earlier such) time only lets the clock of its active targets run on: completed
and paused targets stay as they are, and ``domain.sla.advanced`` moves an active one to the new time
exactly.  So each evaluation is kept with its time, and reused, advanced, while

- the ticket is unchanged: the same ``seq`` on its current-state row, which every new event or
  snapshot of the ticket raises (the writer keeps the highest);
- the workspace's SLA setup is the same: its policies, calendars (with each group's) and status
  names, by a fingerprint of their values;
- the evaluation time is at or after the ticket's last event.

Anything else (an older ``as_of``, a changed ticket) is evaluated as before.  Entries are bounded
(``max_tickets``; the oldest go first) and live only in this process."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.domain.calendars import CalendarChoice
from supportlens.domain.sla import PolicySet, TargetState, TargetStatus, TargetType
from supportlens.domain.statuses import StatusMap


def setup_fingerprint(policies: PolicySet, calendars: CalendarChoice, statuses: StatusMap) -> str:
    """What the evaluation of a ticket depends on besides its events, as one value: the same in
    every process (saved states are checked against it, analytics/sla_memo_files.py)."""
    described = repr(_canonical((policies, calendars, statuses.custom)))
    return hashlib.sha256(described.encode()).hexdigest()


def _canonical(value: object) -> object:
    """``value`` with its sets and mappings in sorted order: the order of a set (its ``repr``)
    follows the process's string hashing, which differs from one process to the next."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        shown = (f for f in dataclasses.fields(value) if f.repr)
        return (type(value).__name__, *((f.name, _canonical(getattr(value, f.name))) for f in shown))
    if isinstance(value, Enum):
        return repr(value)
    if isinstance(value, set | frozenset):
        return ("set", *sorted(repr(_canonical(item)) for item in value))
    if isinstance(value, Mapping):
        return ("map", *sorted((repr(_canonical(k)), _canonical(v)) for k, v in value.items()))
    if isinstance(value, tuple | list):
        return tuple(_canonical(item) for item in value)
    return repr(value)


class _Turns:
    """Large evaluations of a workspace one at a time: a second one waits for the first, then finds
    most of what it needs kept (two requests, or a request and the start-up preparation, would
    otherwise both evaluate everything, each at half the speed).  Reentrant for the thread that
    holds the turn; waited for in steps, so that a time limit's stop (raised in the waiting
    thread, ``runtime.within_time_limit``) lands between them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: dict[str, threading.RLock] = {}

    @contextmanager
    def turn(self, workspace_id: str) -> Iterator[None]:
        with self._lock:
            turn = self._turns.setdefault(workspace_id, threading.RLock())
        taken = False
        try:
            while not taken:
                taken = turn.acquire(timeout=_WAIT_STEP_SECONDS)
            yield
        finally:
            if taken:
                turn.release()


_WAIT_STEP_SECONDS = 0.05


class KeptEvaluation(NamedTuple):
    """A ticket's targets evaluated at ``evaluated_at``, and since when it is in its status then
    (what ``domain.sla.advanced`` needs)."""

    targets: tuple[TargetState, ...]
    evaluated_at: datetime
    status_since: datetime


class KeptEvaluations:
    def __init__(self, max_tickets: int = 500_000) -> None:
        self._max = max_tickets
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[int, str, KeptEvaluation]] = OrderedDict()
        self._turns = _Turns()

    def evaluating(self, workspace_id: str) -> AbstractContextManager[None]:
        """Held while evaluating many of the workspace's tickets (``_Turns``)."""
        return self._turns.turn(workspace_id)

    def get(self, workspace_id: str, ticket_id: str, seq: int, setup: str) -> KeptEvaluation | None:
        """The kept evaluation of the ticket if it and the setup are unchanged (the caller checks
        that the evaluation time is at or after the ticket's last event)."""
        with self._lock:
            found = self._entries.get((workspace_id, ticket_id))
        if found is None or found[0] != seq or found[1] != setup:
            return None
        return found[2]

    def keep(
        self,
        workspace_id: str,
        ticket_id: str,
        seq: int,
        setup: str,
        targets: Sequence[TargetState],
        *,
        evaluated_at: datetime,
        status_since: datetime,
    ) -> None:
        """Keeps an evaluation made at or after the ticket's last event (the caller's to check)."""
        key = (workspace_id, ticket_id)
        with self._lock:
            self._entries[key] = (seq, setup, KeptEvaluation(tuple(targets), evaluated_at, status_since))
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


# Target states by ticket version ------------------------------------------------------------------
#
# ``sla_attainment`` counts every target of every ticket in its window by state: at a million
# tickets, evaluating them all took seconds a request, though between two requests only the tickets
# written meanwhile change.  What it reads of a target (STATE_SCHEMA) no longer changes once the
# evaluation time is at or after the ticket's last event or timestamp (``domain/sla.py::_state``:
# which targets started and when they completed come from events; a running target is active or
# paused by the status it is in), so those columns are kept per ticket version: ``seq`` of its
# current-state row, which every change of the ticket raises.  A request takes the kept targets of
# the versions it selects, if each version's last moment is at or before its evaluation time, and
# evaluates the rest.

# What is kept of a target (all that ``sla_attainment`` reads), besides ``row``: its type and state
# as their index in TargetType and TargetStatus, the policy and priority dictionary-encoded.  A
# million tickets' targets take a sixth of the memory of the strings, and are counted by code.
_LABEL = pa.dictionary(pa.int32(), pa.string())
STATE_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("type", pa.int8()),
        ("policy_id", _LABEL),
        ("priority", _LABEL),
        ("state", pa.int8()),
    ]
)
# A version's ``valid_from_ms`` when it is not to be kept.
NEVER = np.iinfo(np.int64).max
_TYPES = pa.array([kind.value for kind in TargetType], pa.string())
_STATES = pa.array([state.value for state in TargetStatus], pa.string())

# ``sla_at_risk`` lists the active targets that are at risk or breached of the unresolved tickets:
# at a million tickets 65,000, evaluated on every run.  At evaluation times at or after a ticket's
# last moment, an active target stays active and its elapsed time only grows, so once it is listed
# it stays listed, and its due time and start do not move; a target that is not active never becomes
# so.  A ticket version evaluated at such a time with every active target listed ("settled") lists
# the same targets in the same order at every later time: those are kept (LISTED_SCHEMA: what the
# order reads), usable from the evaluation time on.  A run evaluates only the versions not kept
# (at a million tickets ~1,100 unsettled ones), then the tickets of its page, for the values that do
# move (remaining time, breached or at risk).
LISTED_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("type", pa.int8()),
        ("instance", pa.int64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("due_at", pa.timestamp("us", tz="UTC")),
    ]
)


def encoded_listed(targets: pa.Table) -> pa.Table:
    """Targets as ``domain.sla_snapshots.TARGET_SCHEMA`` has them, as LISTED_SCHEMA."""
    return pa.table(
        [
            targets.column("row"),
            pc.index_in(targets.column("type"), value_set=_TYPES).cast(pa.int8()),
            targets.column("instance"),
            targets.column("started_at"),
            targets.column("due_at"),
        ],
        schema=LISTED_SCHEMA,
    )


def encoded_states(targets: pa.Table) -> pa.Table:
    """Targets as ``domain.sla_snapshots.TARGET_SCHEMA`` has them, as STATE_SCHEMA."""

    def label(name: str) -> pa.ChunkedArray:
        return pc.dictionary_encode(targets.column(name)).cast(_LABEL)

    return pa.table(
        [
            targets.column("row"),
            pc.index_in(targets.column("type"), value_set=_TYPES).cast(pa.int8()),
            label("policy_id"),
            label("priority"),
            pc.index_in(targets.column("state"), value_set=_STATES).cast(pa.int8()),
        ],
        schema=STATE_SCHEMA,
    )


@dataclass(frozen=True, slots=True)
class KeptVersions:
    """Kept ticket versions of one workspace under one setup: ``seqs`` sorted, each version's
    targets ``targets[first[i]:first[i] + counts[i]]``, usable at evaluation times from
    ``valid_from_ms`` and before ``valid_until_ms``.  Versions added later have their targets
    appended, wherever their ``seq`` falls (``_merged``): ``targets`` may then hold rows of replaced
    versions and many chunks, until ``compacted``."""

    setup: str
    seqs: npt.NDArray[np.int64]
    valid_from_ms: npt.NDArray[np.int64]
    valid_until_ms: npt.NDArray[np.int64]
    first: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    targets: pa.Table  # the kept columns (the store's schema without ``row``)

    @property
    def target_count(self) -> int:
        return int(self.targets.num_rows)

    def compacted(self) -> KeptVersions:
        """The same versions with their targets in their order, one after the other, in one chunk."""
        return _rebuilt(self.setup, [self], np.arange(len(self.seqs)))

    @classmethod
    def of_columns(
        cls,
        setup: str,
        seqs: pa.ChunkedArray,
        valid_from_ms: pa.ChunkedArray,
        valid_until_ms: pa.ChunkedArray,
        starts: pa.ChunkedArray,
        targets: pa.Table,
        *,
        last_seq: int,
    ) -> KeptVersions | None:
        """Versions read back (``starts`` without the final end; ``targets``: the kept columns), or
        None when one is past the store's highest ``seq`` (it may name another version now);
        ValueError if they do not fit together."""

        def ints(column: pa.ChunkedArray) -> npt.NDArray[np.int64]:
            return np.asarray(column.to_numpy(), dtype=np.int64)

        first = ints(starts)
        counts = np.diff(np.append(first, targets.num_rows)).astype(np.int64)
        kept = cls(setup, ints(seqs), ints(valid_from_ms), ints(valid_until_ms), first, counts, targets)
        lengths = {len(kept.seqs), len(kept.valid_from_ms), len(kept.valid_until_ms), len(first)}
        if not (len(lengths) == 1 and (counts >= 0).all() and (not len(first) or first[0] == 0)):
            raise ValueError("saved versions and targets do not fit together")
        if len(kept.seqs) and (np.diff(kept.seqs) <= 0).any():
            raise ValueError("saved versions are not in order")
        if len(kept.seqs) and int(kept.seqs[-1]) > last_seq:
            return None
        return kept


class TargetStates:
    """Columns of the targets of ticket versions (``schema``, after ``row``; by default STATE_SCHEMA,
    what ``sla_attainment`` reads), per workspace, for the latest setup seen.  Bounded by
    ``max_targets``: past it, only the versions the latest request used stay."""

    def __init__(self, max_targets: int = 8_000_000, schema: pa.Schema = STATE_SCHEMA) -> None:
        self._max = max_targets
        self._schema = schema
        self._lock = threading.Lock()
        self._kept: dict[str, KeptVersions] = {}
        self._saved: dict[str, KeptVersions] = {}  # what the files hold: not written again
        self._indexes: dict[str, tuple[KeptVersions, _SeqIndex]] = {}
        self._turns = _Turns()

    @property
    def schema(self) -> pa.Schema:
        """``row``, then the kept columns."""
        return self._schema

    def evaluating(self, workspace_id: str) -> AbstractContextManager[None]:
        """Held while evaluating most of a selection of the workspace's tickets (``_Turns``)."""
        return self._turns.turn(workspace_id)

    def unsaved_versions(self) -> dict[str, KeptVersions]:
        """What is kept and not saved as it is (analytics/sla_memo_files.py), by workspace."""
        with self._lock:
            return {ws: kept for ws, kept in self._kept.items() if self._saved.get(ws) is not kept}

    def saved(self, workspace_id: str, versions: KeptVersions) -> None:
        """``versions`` of the workspace are saved (taken up from a save, or written)."""
        with self._lock:
            self._saved[workspace_id] = versions

    def take_up(self, workspace_id: str, versions: KeptVersions) -> None:
        """Keeps saved versions, unless the workspace already has some (they are as recent)."""
        with self._lock:
            if workspace_id not in self._kept:
                self._kept[workspace_id] = self._saved[workspace_id] = versions

    def find(
        self,
        workspace_id: str,
        setup: str,
        seqs: npt.NDArray[np.int64],
        as_of_ms: int,
        *,
        columns: Sequence[str] | None = None,
    ) -> tuple[npt.NDArray[np.bool_], pa.Table]:
        """Which of the ticket versions ``seqs`` have kept targets usable at ``as_of_ms``, and those
        targets (``schema``, or ``row`` and ``columns`` of it: ``row`` is the index into ``seqs`` of
        their ticket).  Taking only the columns a request reads saves most of the copying."""
        with self._lock:
            kept = self._kept.get(workspace_id)
        if kept is None or kept.setup != setup or not len(kept.seqs) or not len(seqs):
            empty = self._schema.empty_table()
            return np.zeros(len(seqs), dtype=bool), empty if columns is None else empty.select(
                ["row", *columns]
            )
        at = self._index(workspace_id, kept).positions(seqs)
        present = at >= 0
        at = np.where(present, at, 0)
        found = present & (kept.valid_from_ms[at] <= as_of_ms) & (as_of_ms < kept.valid_until_ms[at])
        rows = np.flatnonzero(found)
        versions = at[rows]
        first, counts = kept.first[versions], kept.counts[versions]
        chosen = kept.targets if columns is None else kept.targets.select(list(columns))
        targets = chosen.take(pa.array(_ranges(first, counts), pa.int64()))
        row = pa.array(np.repeat(rows, counts), pa.int64())
        return found, targets.add_column(0, "row", row)

    def _index(self, workspace_id: str, kept: KeptVersions) -> _SeqIndex:
        """The index of the workspace's kept versions, built once for each set of them."""
        with self._lock:
            cached = self._indexes.get(workspace_id)
        if cached is not None and cached[0] is kept:
            return cached[1]
        index = _SeqIndex(kept.seqs)
        with self._lock:
            self._indexes[workspace_id] = (kept, index)
        return index

    def keep(
        self,
        workspace_id: str,
        setup: str,
        seqs: npt.NDArray[np.int64],
        valid_from_ms: npt.NDArray[np.int64],
        targets: pa.Table,
        *,
        in_use: npt.NDArray[np.int64],
        valid_until_ms: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Keeps the targets (``schema``: ``row`` is an index into ``seqs``) of the ticket versions
        ``seqs``, each usable at evaluation times from ``valid_from_ms`` (NEVER: not kept) and before
        ``valid_until_ms`` (by default, ever after).  ``in_use``: the versions the request took from
        here, which stay when the bound is hit."""
        until = np.full(len(seqs), NEVER, dtype=np.int64) if valid_until_ms is None else valid_until_ms
        chosen = valid_from_ms < NEVER
        fresh = _versions(setup, seqs, (valid_from_ms, until), targets.select(self._schema.names), chosen)
        with self._lock:
            kept = self._kept.get(workspace_id)
            if kept is not None and kept.setup == setup:
                fresh = _merged(kept, fresh)
                if fresh.target_count > self._max:
                    fresh = _only(fresh, np.concatenate([in_use, seqs]))
            self._kept[workspace_id] = fresh


class _SeqIndex:
    """Where each of some sorted ``seq``s is among them.  A request looks up a million versions:
    binary search took ~35 ms; when the numbers are dense (as the store hands them out), one table
    indexed by the number itself takes a few."""

    def __init__(self, seqs: npt.NDArray[np.int64]) -> None:
        self._seqs = seqs
        self._first = int(seqs[0]) if len(seqs) else 0
        span = int(seqs[-1]) - self._first + 1 if len(seqs) else 0
        self._table: npt.NDArray[np.signedinteger[Any]] | None = None
        if span <= _DENSE_SPAN * len(seqs):
            # Positions in 32 bits while they fit: half the memory.
            kind = np.int32 if len(seqs) < 2**31 else np.int64
            self._table = np.full(span, -1, dtype=kind)
            self._table[seqs - self._first] = np.arange(len(seqs), dtype=kind)

    def positions(self, wanted: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Each wanted number's position among the seqs, -1 where it is not one."""
        if not len(self._seqs):
            return np.full(len(wanted), -1, dtype=np.int64)
        if self._table is None:
            at = np.minimum(np.searchsorted(self._seqs, wanted), len(self._seqs) - 1)
            return np.where(self._seqs[at] == wanted, at, -1)
        offset = wanted - self._first
        inside = (offset >= 0) & (offset < len(self._table))
        return np.where(inside, self._table[np.where(inside, offset, 0)].astype(np.int64), -1)


# A table per number is used while the numbers span at most this many times their count.
_DENSE_SPAN = 4


def _ranges(first: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The indexes first[0] .. first[0] + counts[0] - 1, then those of the next range, and so on."""
    ends = np.cumsum(counts)
    return np.repeat(first - (ends - counts), counts) + np.arange(int(ends[-1]) if len(ends) else 0)


def _versions(
    setup: str,
    seqs: npt.NDArray[np.int64],
    valid: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    targets: pa.Table,
    chosen: npt.NDArray[np.bool_],
) -> KeptVersions:
    """The ``chosen`` ticket versions with their ``valid`` times (from, until) and their targets
    (``row``: index into ``seqs``; the other columns are kept)."""
    rows = np.flatnonzero(chosen)
    order = np.argsort(seqs[rows], kind="stable")
    entry_of_row = np.full(len(seqs), -1, dtype=np.int64)
    entry_of_row[rows[order]] = np.arange(len(rows))
    entry = entry_of_row[np.asarray(targets.column("row").to_numpy(), dtype=np.int64)]
    taken = np.flatnonzero(entry >= 0)
    taken = taken[np.argsort(entry[taken], kind="stable")]
    counts = np.bincount(entry[taken], minlength=len(rows)).astype(np.int64)
    return KeptVersions(
        setup,
        seqs[rows][order],
        valid[0][rows][order],
        valid[1][rows][order],
        np.cumsum(counts) - counts,
        counts,
        targets.drop_columns(["row"]).take(pa.array(taken, pa.int64())),
    )


def _rebuilt(
    setup: str,
    parts: Sequence[KeptVersions],
    index: npt.NDArray[np.int64],
) -> KeptVersions:
    """The versions at ``index`` of ``parts`` taken together, in that order, their targets in that
    order too (compacted)."""
    seqs = np.concatenate([part.seqs for part in parts])
    offsets = np.cumsum([0, *(part.target_count for part in parts)])
    first = np.concatenate([part.first + offset for part, offset in zip(parts, offsets, strict=False)])
    counts = np.concatenate([part.counts for part in parts])[index]
    table = pa.concat_tables([part.targets for part in parts])
    return KeptVersions(
        setup,
        seqs[index],
        np.concatenate([part.valid_from_ms for part in parts])[index],
        np.concatenate([part.valid_until_ms for part in parts])[index],
        np.cumsum(counts) - counts,
        counts,
        table.take(pa.array(_ranges(first[index], counts), pa.int64())).combine_chunks(),
    )


def _merged(kept: KeptVersions, fresh: KeptVersions) -> KeptVersions:
    """Both sets of versions, in order.  A version in both stays as kept (they are equal), unless
    the fresh one is usable longer (an evaluation at a later time of targets not yet listed).  The
    fresh versions (a few, usually) go in among the kept ones and their targets after the kept
    targets, without moving those: a request's ticket versions are not always newer than every kept
    one (two runs at once keep in either order), and rebuilding a million versions' targets cost
    more than the rest of an ``sla_attainment`` run.  Compacted once the targets have many chunks."""
    if len(kept.seqs) and len(fresh.seqs):
        at = np.minimum(np.searchsorted(kept.seqs, fresh.seqs), len(kept.seqs) - 1)
        both = kept.seqs[at] == fresh.seqs
        longer = both & (fresh.valid_until_ms > kept.valid_until_ms[at])
        if longer.any():  # their targets stay in the table, unnamed, until compacted
            gone = at[longer]
            kept = KeptVersions(
                kept.setup,
                np.delete(kept.seqs, gone),
                np.delete(kept.valid_from_ms, gone),
                np.delete(kept.valid_until_ms, gone),
                np.delete(kept.first, gone),
                np.delete(kept.counts, gone),
                kept.targets,
            )
        fresh = _rebuilt(fresh.setup, [fresh], np.flatnonzero(~both | longer))
    if not len(fresh.seqs):
        return kept
    where = np.searchsorted(kept.seqs, fresh.seqs)
    merged = KeptVersions(
        kept.setup,
        np.insert(kept.seqs, where, fresh.seqs),
        np.insert(kept.valid_from_ms, where, fresh.valid_from_ms),
        np.insert(kept.valid_until_ms, where, fresh.valid_until_ms),
        np.insert(kept.first, where, fresh.first + kept.target_count),
        np.insert(kept.counts, where, fresh.counts),
        pa.concat_tables([kept.targets, fresh.targets]),
    )
    return _settled(merged) if _chunks(merged.targets) > _MAX_CHUNKS else merged


# Chunks of kept targets beyond which they are put together: a take over more chunks slows down.
_MAX_CHUNKS = 32
# The targets after the first chunk (appended since the last compaction, or left by replaced
# versions) are put together on their own while they are at most this share of that chunk's rows.
_TAIL_SHARE = 1 / 8


def _settled(kept: KeptVersions) -> KeptVersions:
    """``kept`` with its targets in few chunks.  Compacting a million versions' targets takes
    ~100-200 ms, every ``_MAX_CHUNKS`` keeps: one run in ~30 of ``sla_attainment`` then took three
    times as long, and every request waiting for it too.  The targets appended since (a few per
    keep) are put into one chunk after the first instead, for the cost of copying them; the whole
    is compacted when they, with the targets of replaced versions, have grown past ``_TAIL_SHARE``
    of the first chunk."""
    head = len(kept.targets.column(0).chunk(0))
    replaced = kept.target_count - int(kept.counts.sum())
    if kept.target_count - head + replaced > _TAIL_SHARE * head:
        return kept.compacted()
    tail = kept.targets.slice(head).combine_chunks()
    return dataclasses.replace(kept, targets=pa.concat_tables([kept.targets.slice(0, head), tail]))


def _chunks(table: pa.Table) -> int:
    return int(table.column(0).num_chunks)


def _only(kept: KeptVersions, seqs: npt.NDArray[np.int64]) -> KeptVersions:
    return _rebuilt(kept.setup, [kept], np.flatnonzero(np.isin(kept.seqs, seqs)))
