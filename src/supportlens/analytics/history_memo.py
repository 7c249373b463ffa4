"""Activity logs read and folded into event columns, kept between pipe runs.

Every history pipe (``backlog``, ``time_in_status``, ``reply_times``…) reads the events of the
tickets it chose and folds them into ``timeline.EventColumns`` before computing timelines for its
evaluation time: at 20,000 tickets with logs, about 80 ms of a 130-185 ms run, the same on every
run while no log changes.  What those columns hold is set by which versions of which tickets were
chosen: every new event of a ticket raises the ``seq`` of its current-state row (the writer keeps
the highest), and a ticket without a log (``last_event_at`` null) has no events to read.  So the
folded log is kept under the workspace and the sorted ``seq``s of the chosen tickets with a log,
and reused by any run choosing exactly those versions (whatever its filters or evaluation time).
A kept log also keeps its timelines in calendar time without the current status intervals, for
runs after its last event (``closed``, at most two status maps; ``history._calendar_timelines``).
Entries are bounded by their events (``max_events``; the oldest go first) and live only in this
process."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from supportlens.analytics.timeline import EventColumns, Timelines
from supportlens.domain.statuses import StatusCategory


@dataclass(frozen=True, slots=True)
class FoldedLog:
    """The chosen tickets' log: its columns (None without events), the ticket id of each column
    ticket index, and its earliest and latest event time (what clocks must span).  ``closed``:
    its timelines in calendar time without the current status intervals, per status categories
    (``timeline.status_categories``), for runs after its last event (``timeline.running_to``)."""

    columns: EventColumns | None
    ticket_ids: list[str]
    span: pa.Array
    closed: dict[tuple[StatusCategory, ...], Timelines] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return 0 if self.columns is None else len(self.columns.at_ms)


def log_key(workspace_id: str, logged_seqs: npt.NDArray[np.int64]) -> str:
    """What a folded log is kept under: the workspace and the versions of its tickets."""
    versions = np.sort(logged_seqs.astype(np.int64))
    return f"{workspace_id}:{len(versions)}:{hashlib.sha256(versions.tobytes()).hexdigest()}"


class FoldedLogs:
    def __init__(self, max_events: int = 5_000_000) -> None:
        self._max = max_events
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, FoldedLog] = OrderedDict()
        self._events = 0

    def get(self, key: str) -> FoldedLog | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def keep(self, key: str, log: FoldedLog) -> None:
        if log.events > self._max:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = log
            self._events += log.events
            while self._events > self._max:
                _, dropped = self._entries.popitem(last=False)
                self._events -= dropped.events
