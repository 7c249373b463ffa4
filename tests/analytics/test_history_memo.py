"""Activity logs kept folded between runs (analytics/history_memo.py), on both engines: on random
histories, with writes between runs (more events of tickets with a log, new tickets, snapshots)
and any evaluation time, every history pipe answers what a run that keeps nothing answers, also at
a later time from the same kept log (and the timelines kept with it); a kept log is used, and a new
event makes it stale."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.analytics.pipes import PIPES
from supportlens.auth.repository import Workspace
from supportlens.domain.events import EventType
from supportlens.runtime import Runtime
from tests.analytics.test_sla_states import Writes, _post_events, write, writes
from tests.analytics.test_time_metrics_pipe import grouped_batches, load_grouped
from tests.domain.test_timeline import History, at, event

# The pipes that read activity logs, with parameters that take each of their paths.
HISTORY_QUERIES: list[tuple[str, dict[str, str]]] = [
    ("time_in_status", {}),
    ("time_in_status", {"group_by": "category", "business_hours": "true"}),
    ("reply_times", {"group_by": "agent"}),
    ("backlog", {"group_by": "status"}),
    ("ticket_time_metrics", {"business_hours": "true"}),
    ("resolution_quality", {}),
]


def _answers(runtime: Runtime, workspace: Workspace, minute: int, *, kept: bool) -> list[Any]:
    context = runtime.pipe_context(workspace)
    if not kept:
        context = dataclasses.replace(context, folded_logs=None)
    window = {
        "start_date": at(-60).isoformat(),
        "end_date": at(3000).isoformat(),
        "as_of": at(minute).isoformat(),
    }
    return [list(PIPES[name].run(context, {**window, **query}).rows) for name, query in HISTORY_QUERIES]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    grouped_batches(),
    st.lists(st.tuples(st.integers(0, 900), writes()), min_size=1, max_size=3),
)
def test_kept_logs_give_the_answers_of_reading_them_again(
    runtime: Runtime,
    batch: list[tuple[History, str | None]],
    reads: list[tuple[int, Writes]],
) -> None:
    workspace, _, _ = load_grouped(runtime, batch)
    for number, (minute, written) in enumerate(reads):
        kept = _answers(runtime, workspace, minute, kept=True)
        assert kept == _answers(runtime, workspace, minute, kept=False), (number, minute)
        assert kept == _answers(runtime, workspace, minute, kept=True), (number, minute)  # from the kept logs
        # Later, from the same kept logs (and their timelines, when after every event).
        later = minute + 1 + number * 97
        assert _answers(runtime, workspace, later, kept=True) == _answers(
            runtime, workspace, later, kept=False
        )
        write(runtime, workspace, written, f"r{number}")


def test_a_kept_log_is_used_and_a_new_event_makes_it_stale(runtime: Runtime) -> None:
    workspace, _, _ = load_grouped(runtime, [(_one_event_history(), None)])
    first = _answers(runtime, workspace, 500, kept=True)
    logs = runtime.folded_logs._entries
    assert len(logs) == 1
    # The kept log is what the next run reads: emptied, the ticket's time in status is gone.
    key, log = next(iter(logs.items()))
    assert len(log.closed) == 1  # its timelines without the current intervals, kept for later runs
    logs[key] = dataclasses.replace(log, columns=None, ticket_ids=[])
    assert _answers(runtime, workspace, 500, kept=True)[0] == []
    logs[key] = log
    assert _answers(runtime, workspace, 500, kept=True) == first
    # A new event is a new version of the ticket: its log is read again.
    _post_events(runtime, workspace, "T0", _one_event_history(status="solved", minute=100), "later")
    after = _answers(runtime, workspace, 500, kept=True)
    assert after == _answers(runtime, workspace, 500, kept=False)
    assert after != first


def _one_event_history(status: str = "open", minute: int = 0) -> History:
    kind = EventType.CREATED if minute == 0 else EventType.STATUS_CHANGED
    return History([event(0, minute, kind, status=status)], 0)
