"""Settled SLA targets of tickets with events, kept between pipe runs.

The SLA pipes evaluate tickets with an activity log one by one with the reference (``domain/sla.py``),
about 150 microseconds each, and read their events first: at 20,000 such tickets, most of a 6 s
``sla_attainment``.  Most of them are long settled: every target completed (achieved or breached).
Such a ticket's targets no longer depend on the evaluation time, as long as that time is at or after
its last event (the same events are seen; completed targets end at their completion, and their due
times follow from it): ``domain/sla.py::_state``.  So they are kept, and reused while

- the ticket is unchanged: the same ``seq`` on its current-state row, which every new event or
  snapshot of the ticket raises (the writer keeps the highest);
- the workspace's SLA setup is the same: its policies, calendars (with each group's) and status
  names, by a fingerprint of their values;
- the evaluation time is at or after the ticket's last event.

Anything else (a running target, an older ``as_of``) is evaluated as before.  Entries are bounded
(``max_tickets``; the oldest go first) and live only in this process."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

from supportlens.domain.calendars import CalendarChoice
from supportlens.domain.sla import PolicySet, TargetState, TargetStatus
from supportlens.domain.statuses import StatusMap

_COMPLETED = frozenset({TargetStatus.ACHIEVED, TargetStatus.BREACHED})


def setup_fingerprint(policies: PolicySet, calendars: CalendarChoice, statuses: StatusMap) -> str:
    """What the evaluation of a ticket depends on besides its events, as one value."""
    described = repr((policies, calendars, sorted(statuses.custom.items())))
    return hashlib.sha256(described.encode()).hexdigest()


def settled(targets: Sequence[TargetState]) -> bool:
    """Every target completed: the evaluation no longer depends on the time (after the last event)."""
    return all(target.state in _COMPLETED for target in targets)


class SettledTargets:
    def __init__(self, max_tickets: int = 500_000) -> None:
        self._max = max_tickets
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[int, str, tuple[TargetState, ...]]] = OrderedDict()

    def get(self, workspace_id: str, ticket_id: str, seq: int, setup: str) -> tuple[TargetState, ...] | None:
        """The kept targets of the ticket if it and the setup are unchanged (the caller checks that
        the evaluation time is at or after the ticket's last event)."""
        with self._lock:
            found = self._entries.get((workspace_id, ticket_id))
        if found is None or found[0] != seq or found[1] != setup:
            return None
        return found[2]

    def keep(
        self, workspace_id: str, ticket_id: str, seq: int, setup: str, targets: Sequence[TargetState]
    ) -> None:
        """Keeps the targets if they are settled (see the module rules)."""
        if not settled(targets):
            return
        key = (workspace_id, ticket_id)
        with self._lock:
            self._entries[key] = (seq, setup, tuple(targets))
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
