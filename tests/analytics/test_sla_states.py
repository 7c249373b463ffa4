"""What ``sla_attainment`` reads of the targets of ticket versions, and what ``sla_at_risk`` lists of
settled ones, kept between runs (analytics/sla_memo.py, ``TargetStates``), on both engines: on
random histories and snapshots, with writes between the runs (new events, newer and older
snapshots, new tickets) and evaluation times in any order (earlier ones than a kept version's last
moment too), every answer equals the answer of a run that keeps nothing; kept versions are used,
not evaluated again."""

from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.analytics import sla_memo
from supportlens.analytics.activity import Filters
from supportlens.analytics.params import Window
from supportlens.analytics.sla_memo import NEVER, STATE_SCHEMA, TargetStates, _SeqIndex
from supportlens.analytics.sla_state import SlaGroupBy, sla_at_risk, sla_attainment
from supportlens.app import create_app
from supportlens.auth.repository import Workspace
from supportlens.auth.tokens import Scope
from supportlens.configuration.sla import SlaPolicyDefinition
from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.domain.periods import PeriodUnit
from supportlens.domain.sla import TargetStatus
from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from supportlens.store.base import QueryTimeout
from tests.analytics.test_sla_at_risk import POLICY
from tests.analytics.test_time_metrics_pipe import grouped_batches, load_grouped
from tests.conftest import make_settings
from tests.domain.test_timeline import History, at, histories
from tests.ingest.test_ticket_events import _row

_AGENTS = st.sampled_from([None, "A1", "A2"])


@st.composite
def snapshots(draw: st.DrawFn) -> dict[str, Any]:
    """A snapshot of one of four tickets (S0..S3: posted again, the newest ``updated_at`` wins)."""
    created = draw(st.integers(0, 200))
    status = draw(st.sampled_from(["open", "pending", "solved", "closed", None]))
    snapshot: dict[str, Any] = {
        "ticket_id": f"S{draw(st.integers(0, 3))}",
        "created_at": at(created).isoformat(),
        "status": status,
        "priority": draw(st.sampled_from([None, "low", "high"])),
        "agent_id": draw(_AGENTS),
        "updated_at": at(created + draw(st.integers(0, 400))).isoformat(),
    }
    if draw(st.booleans()):
        snapshot["first_response_at"] = at(created + draw(st.integers(0, 90))).isoformat()
    if status in ("solved", "closed") and draw(st.booleans()):
        snapshot["resolved_at"] = at(created + draw(st.integers(0, 500))).isoformat()
    return snapshot


Writes = tuple[list[dict[str, Any]], list[tuple[int, History]]]


def writes() -> st.SearchStrategy[Writes]:
    """What is written between two reads: snapshots (new, newer or older versions of S0..S3) and
    more events of tickets with a log (T<i>) or of new ones."""
    return st.tuples(
        st.lists(snapshots(), max_size=3), st.lists(st.tuples(st.integers(0, 7), histories()), max_size=2)
    )


def write(runtime: Runtime, workspace: Workspace, written: Writes, tag: str) -> None:
    more_snapshots, more_events = written
    if more_snapshots:
        _ingest(runtime, workspace, "support_tickets", more_snapshots)
    for index, (ticket, history) in enumerate(more_events):
        _post_events(runtime, workspace, f"T{ticket}", history, f"{tag}x{index}")


def _post_events(runtime: Runtime, workspace: Workspace, ticket_id: str, history: History, tag: str) -> None:
    """``history``'s events as more events of ``ticket_id`` (ids apart from every earlier one)."""
    rows = []
    for event in history.events:
        fields = {name: getattr(event, name) for name in TicketEvent.__slots__}
        renamed = TicketEvent(**{**fields, "ticket_id": ticket_id, "event_id": f"{tag}{event.event_id}"})
        rows.append(_row(renamed))
    _ingest(runtime, workspace, "ticket_events", rows)


def _ingest(runtime: Runtime, workspace: Workspace, datasource: str, rows: list[dict[str, Any]]) -> None:
    result = runtime.ingest.ingest(workspace.id, datasource, [RawRow(r, str(r)) for r in rows])
    result.committed.result()
    assert result.quarantined_rows == 0


def _attainment(
    runtime: Runtime, workspace: Workspace, filters: Filters, by: SlaGroupBy, *, kept: bool
) -> Any:
    context = runtime.pipe_context(workspace)
    if not kept:
        context = dataclasses.replace(context, sla_states=None)
    return list(sla_attainment(context, filters, by=by, unit=PeriodUnit.DAY).rows)


def _at_risk(
    runtime: Runtime, workspace: Workspace, filters: Filters, *, kept: bool, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int | None]:
    context = runtime.pipe_context(workspace)
    if not kept:
        context = dataclasses.replace(context, at_risk_states=None)
    answer = sla_at_risk(context, filters, limit=limit, offset=offset)
    return list(answer.rows), answer.rows_before_limit


def _filters(as_of: datetime, agent_id: str | None) -> Filters:
    return Filters(Window(at(-60), at(3000)), agent_id, None, None, None, None, as_of)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    grouped_batches(),
    st.lists(snapshots(), max_size=5),
    st.lists(
        st.tuples(
            st.integers(0, 900),
            st.sampled_from(list(SlaGroupBy)),
            _AGENTS,
            writes(),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_kept_states_give_the_answers_of_a_fresh_evaluation(
    runtime: Runtime,
    batch: list[tuple[History, str | None]],
    first_snapshots: list[dict[str, Any]],
    reads: list[tuple[int, SlaGroupBy, str | None, Writes]],
) -> None:
    workspace, _, _ = load_grouped(runtime, batch)
    runtime.configuration.create_policy(workspace.id, SlaPolicyDefinition.model_validate(POLICY))
    if first_snapshots:
        _ingest(runtime, workspace, "support_tickets", first_snapshots)
    for number, (minute, by, agent, written) in enumerate(reads):
        filters = _filters(at(minute), agent)
        kept = _attainment(runtime, workspace, filters, by, kept=True)
        assert kept == _attainment(runtime, workspace, filters, by, kept=False), (number, minute)
        for limit, offset in ((100_000, 0), (3, 1)):
            listed = _at_risk(runtime, workspace, filters, kept=True, limit=limit, offset=offset)
            assert listed == _at_risk(runtime, workspace, filters, kept=False, limit=limit, offset=offset), (
                number,
                minute,
                limit,
            )
        write(runtime, workspace, written, f"r{number}")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    grouped_batches(),
    st.lists(snapshots(), max_size=5),
    st.integers(0, 300),
    st.lists(st.integers(0, 12), min_size=1, max_size=10),
)
def test_kept_listings_follow_the_clock(
    runtime: Runtime,
    batch: list[tuple[History, str | None]],
    first_snapshots: list[dict[str, Any]],
    first_minute: int,
    steps: list[int],
) -> None:
    """Read again and again minutes apart with nothing written, the targets of kept versions become
    at risk, then breached, between reads: every listing equals a fresh evaluation's."""
    workspace, _, _ = load_grouped(runtime, batch)
    runtime.configuration.create_policy(workspace.id, SlaPolicyDefinition.model_validate(POLICY))
    if first_snapshots:
        _ingest(runtime, workspace, "support_tickets", first_snapshots)
    minute = first_minute
    for step in [0, *steps]:
        minute += step
        filters = _filters(at(minute), None)
        listed = _at_risk(runtime, workspace, filters, kept=True, limit=100_000, offset=0)
        assert listed == _at_risk(runtime, workspace, filters, kept=False, limit=100_000, offset=0), minute


def test_a_kept_listing_takes_in_targets_as_they_come_at_risk_and_breach(runtime: Runtime) -> None:
    """One open ticket without a reply, read as its targets cross their limits (first response:
    20 minutes, at risk from 10; resolution: 120, at risk from 60): each read lists what a fresh
    evaluation lists, though the first read kept the ticket's version."""
    workspace = runtime.metadata.create_workspace("listing")
    runtime.configuration.create_policy(workspace.id, SlaPolicyDefinition.model_validate(POLICY))
    _ingest(
        runtime,
        workspace,
        "support_tickets",
        [
            {
                "ticket_id": "S",
                "created_at": at(0).isoformat(),
                "status": "open",
                "updated_at": at(0).isoformat(),
            }
        ],
    )
    expected = {
        2: [],
        11: [("first_response", False, True)],
        21: [("first_response", True, False)],
        61: [("first_response", True, False), ("resolution", False, True)],
        125: [("first_response", True, False), ("resolution", True, False)],
    }
    for minute, listing in expected.items():
        filters = _filters(at(minute), None)
        rows, count = _at_risk(runtime, workspace, filters, kept=True, limit=100_000, offset=0)
        assert [(r["target_type"], r["breached"], r["at_risk"]) for r in rows] == listing, minute
        assert (rows, count) == _at_risk(runtime, workspace, filters, kept=False, limit=100_000, offset=0)
    assert len(runtime.at_risk_states._kept[workspace.id].seqs) == 1


def test_kept_versions_are_used_and_a_new_version_is_evaluated(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("acme")
    runtime.configuration.create_policy(workspace.id, SlaPolicyDefinition.model_validate(POLICY))
    opened = {
        "ticket_id": "S1",
        "created_at": at(0).isoformat(),
        "updated_at": at(0).isoformat(),
        "status": "open",
        "agent_id": "A1",
    }
    _ingest(runtime, workspace, "support_tickets", [opened, {**opened, "ticket_id": "S2"}])
    filters = _filters(at(100), None)
    first = _attainment(runtime, workspace, filters, SlaGroupBy.AGENT, kept=True)
    kept = runtime.sla_states._kept[workspace.id]
    assert len(kept.seqs) == 2
    # A second run evaluates nothing: the kept states are marked, and they are what it counts.
    achieved = list(TargetStatus).index(TargetStatus.ACHIEVED)
    runtime.sla_states._kept[workspace.id] = dataclasses.replace(
        kept, targets=kept.targets.set_column(3, "state", pa.array([achieved] * kept.target_count, pa.int8()))
    )
    marked = _attainment(runtime, workspace, filters, SlaGroupBy.AGENT, kept=True)
    assert sum(r["achieved"] for r in marked) == kept.target_count
    assert sum(r["achieved"] for r in first) == 0
    runtime.sla_states._kept[workspace.id] = kept
    # A reply to S1 is a new version of it: evaluated, kept beside the old one; S2 still kept.
    answered = {**opened, "first_response_at": at(10).isoformat(), "updated_at": at(10).isoformat()}
    _ingest(runtime, workspace, "support_tickets", [answered])
    after = _attainment(runtime, workspace, filters, SlaGroupBy.AGENT, kept=True)
    assert after == _attainment(runtime, workspace, filters, SlaGroupBy.AGENT, kept=False) != first
    assert len(runtime.sla_states._kept[workspace.id].seqs) == 3
    # An evaluation time before a version's last moment does not use it.
    early = _filters(at(5), None)
    assert _attainment(runtime, workspace, early, SlaGroupBy.AGENT, kept=True) == _attainment(
        runtime, workspace, early, SlaGroupBy.AGENT, kept=False
    )
    # Another policy: nothing kept under the old one is used.
    strict = {
        "name": "Strict",
        "default": True,
        "targets": {"default": [{"type": "resolution", "minutes": 5}]},
    }
    runtime.configuration.create_policy(workspace.id, SlaPolicyDefinition.model_validate(strict))
    assert _attainment(runtime, workspace, filters, SlaGroupBy.AGENT, kept=True) == _attainment(
        runtime, workspace, filters, SlaGroupBy.AGENT, kept=False
    )


def _states(rows: list[int], kinds: list[int]) -> pa.Table:
    label = pa.nulls(len(rows), pa.string()).dictionary_encode()
    state = pa.array([0] * len(rows), pa.int8())
    return pa.table(
        [pa.array(rows, pa.int64()), pa.array(kinds, pa.int8()), label, label, state], schema=STATE_SCHEMA
    )


def test_versions_merge_in_order_and_the_bound_keeps_the_ones_in_use() -> None:
    states = TargetStates(max_targets=4)
    seqs = np.array([30, 10, 20], dtype=np.int64)
    # Version 20 has no target; 30 is usable at no time: not kept.
    states.keep(
        "w",
        "setup",
        seqs,
        np.array([NEVER, 0, 0], dtype=np.int64),
        _states([0, 1, 1], [1, 2, 3]),
        in_use=np.array([], dtype=np.int64),
    )
    found, targets = states.find("w", "setup", np.array([20, 10, 99, 30], dtype=np.int64), 0)
    assert found.tolist() == [True, True, False, False]
    assert list(zip(targets.column("row").to_pylist(), targets.column("type").to_pylist(), strict=True)) == [
        (1, 2),
        (1, 3),
    ]
    assert not states.find("w", "other setup", seqs, 0)[0].any()
    assert not states.find("w", "setup", seqs, -1)[0].any()  # before the versions' last moment
    # Older and newer versions merge in order; past the bound only the versions in use and the
    # new ones stay.
    states.keep(
        "w",
        "setup",
        np.array([5, 40], dtype=np.int64),
        np.array([0, 0], dtype=np.int64),
        _states([0, 1, 1], [4, 5, 6]),
        in_use=np.array([20], dtype=np.int64),
    )
    kept = states._kept["w"]
    assert kept.seqs.tolist() == [5, 20, 40]
    assert kept.targets.column("type").to_pylist() == [4, 5, 6]


_KEEP = st.lists(  # one keep: versions (seq, usable from, usable until, number of targets)
    st.tuples(
        st.integers(1, 80),
        st.sampled_from([0, 5, NEVER]),
        st.sampled_from([10, 20, NEVER]),
        st.integers(0, 3),
    ),
    max_size=6,
    unique_by=lambda version: version[0],
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_KEEP, min_size=1, max_size=45),
    st.lists(st.integers(0, 85), max_size=30),
    st.integers(0, 25),
    st.sampled_from([sla_memo._MAX_CHUNKS, 2]),
    st.sampled_from([sla_memo._TAIL_SHARE, 4.0]),
)
def test_kept_versions_are_found_as_kept_in_any_order_of_keeps(
    keeps: list[list[tuple[int, int, int, int]]],
    asked: list[int],
    as_of: int,
    max_chunks: int,
    tail_share: float,
) -> None:
    """Against a plain model, however the versions of successive keeps interleave (older or newer
    than the kept ones, again with a longer use), and past the chunk count that puts them together
    (the tail alone, or all compacted; a low bound and a large tail share take both ways often): a
    version is kept once, replaced only by one usable longer, and found with its own targets."""
    with (
        patch.object(sla_memo, "_MAX_CHUNKS", max_chunks),
        patch.object(sla_memo, "_TAIL_SHARE", tail_share),
    ):
        _check_keeps_against_a_model(keeps, asked, as_of)


@pytest.mark.parametrize("tail_share", [sla_memo._TAIL_SHARE, 4.0])
def test_kept_targets_put_together_either_way_stay_with_their_versions(tail_share: float) -> None:
    """Forty keeps of one version each, in no order, with the chunks put together every other keep:
    the tail alone while it is small beside the first chunk, else all compacted."""
    keeps = [[((step * 37) % 80 + 1, 0, NEVER, 1 + step % 3)] for step in range(40)]
    with patch.object(sla_memo, "_MAX_CHUNKS", 2), patch.object(sla_memo, "_TAIL_SHARE", tail_share):
        _check_keeps_against_a_model(keeps, list(range(82)), 5)


def _check_keeps_against_a_model(
    keeps: list[list[tuple[int, int, int, int]]], asked: list[int], as_of: int
) -> None:
    states = TargetStates()
    model: dict[int, tuple[int, int, list[tuple[int, int]]]] = {}
    for keep in keeps:
        seqs = np.array([seq for seq, *_ in keep], dtype=np.int64)
        rows = [row for row, (_, _, _, count) in enumerate(keep) for _ in range(count)]
        kinds = [seq % 100 for seq, _, _, count in keep for _ in range(count)]
        marks = [index for _, _, _, count in keep for index in range(count)]
        targets = _states(rows, kinds).set_column(4, "state", pa.array(marks, pa.int8()))
        states.keep(
            "w",
            "setup",
            seqs,
            np.array([start for _, start, _, _ in keep], dtype=np.int64),
            targets,
            in_use=np.array([], dtype=np.int64),
            valid_until_ms=np.array([until for _, _, until, _ in keep], dtype=np.int64),
        )
        for seq, start, until, count in keep:
            if start == NEVER:
                continue
            if seq not in model or until > model[seq][1]:
                model[seq] = (start, until, [(seq % 100, index) for index in range(count)])
        wanted = np.array(asked, dtype=np.int64)
        found, taken = states.find("w", "setup", wanted, as_of)
        usable = [seq in model and model[seq][0] <= as_of < model[seq][1] for seq in asked]
        assert found.tolist() == usable
        expected = [
            (row, *target) for row, seq in enumerate(asked) if usable[row] for target in model[seq][2]
        ]
        got = zip(*(taken.column(name).to_pylist() for name in ("row", "type", "state")), strict=True)
        assert list(got) == expected
    assert states._kept["w"].targets.column(0).num_chunks <= sla_memo._MAX_CHUNKS + 1


@given(
    st.sets(st.integers(0, 200), max_size=120),
    st.lists(st.integers(-5, 205), max_size=60),
    st.integers(1_000, 10**12),
)
def test_kept_versions_are_found_by_number_dense_or_sparse(
    numbers: set[int], wanted: list[int], far: int
) -> None:
    """Where each wanted number is among the kept ones (-1: not kept), with or without a table
    indexed by the number (numbers far apart)."""
    for chosen in (numbers, numbers | {far}):
        seqs = np.array(sorted(chosen), dtype=np.int64)
        asked = np.array([*wanted, far], dtype=np.int64)
        position = {seq: index for index, seq in enumerate(seqs.tolist())}
        assert _SeqIndex(seqs).positions(asked).tolist() == [position.get(n, -1) for n in asked.tolist()]


def test_the_server_prepares_the_sla_pipes_then_warms_the_others_at_start(
    engine_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Started, the server runs the SLA pipes once on each workspace in the background: the first
    request finds their evaluations kept.  Then it runs every other pipe once, and is ready."""
    settings = make_settings(engine_name, tmp_path)
    runtime = Runtime.open(settings)
    try:
        workspace = runtime.metadata.create_workspace("acme")
        yesterday = datetime.now(UTC) - timedelta(days=1)  # in the pipes' default window
        opened = {"ticket_id": "S1", "created_at": yesterday.isoformat(), "status": "open"}
        _ingest(runtime, workspace, "support_tickets", [opened])
        created = TicketEvent("e1", "T1", yesterday, EventType.CREATED, ActorType.CUSTOMER)
        _ingest(runtime, workspace, "ticket_events", [_row(created)])
    finally:
        runtime.close()
    app = create_app(settings)
    with caplog.at_level(logging.INFO, logger="supportlens.runtime"), TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert app.state.warming_pipes.result() == 1
        started: Runtime = app.state.runtime
        assert len(started.sla_states._kept[workspace.id].seqs) == 2
        assert {key for _, key in started.sla_memo._entries} == {"T1"}
        assert f"SLA pipes of workspace {workspace.name} ready in" in caplog.text
        # Then every other pipe, once: time_trends keeps its periods; the server is ready after.
        assert "other pipes of 1 workspaces warmed in" in caplog.text
        assert started.kept_periods._groups > 0
        assert client.get("/ready").json() == {"ready": True}


def test_a_request_waits_for_the_preparation_without_holding_an_admission_slot(
    engine_name: str, tmp_path: Path
) -> None:
    """While the preparation of a workspace's SLA pipes waits for its turn, a request to one of them
    waits for the preparation before it is admitted: with a single admission slot, another pipe
    is answered meanwhile, and the SLA request once the preparation is over."""
    settings = make_settings(engine_name, tmp_path, query_concurrency=1, query_queue_seconds=2)
    app = create_app(settings)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with TestClient(app) as client, ThreadPoolExecutor(1) as pool:
        started: Runtime = app.state.runtime
        workspace = started.metadata.create_workspace("acme")
        _, secret = started.metadata.create_token(workspace.id, "admin", {Scope.ADMIN})
        headers = {"Authorization": f"Bearer {secret}"}
        rows = [
            {"ticket_id": f"S{n}", "created_at": yesterday.isoformat(), "status": "open"} for n in range(3)
        ]
        _ingest(started, workspace, "support_tickets", rows)
        with started.sla_states.evaluating(workspace.id):  # the preparation's run waits for this turn
            preparing = started.warm_pipes()
            assert started.sla_preparation("ticket_details", workspace.id) is None
            preparation = started.sla_preparation("sla_attainment", workspace.id)
            waiting = pool.submit(client.get, "/v0/pipes/sla_attainment.json", headers=headers)
            deadline = time.monotonic() + 10
            while not preparation._done_callbacks:  # type: ignore[union-attr]  # the request awaits it
                assert time.monotonic() < deadline, "the request did not wait for the preparation"
                time.sleep(0.01)
            other = client.get("/v0/pipes/ticket_details.json", headers=headers)
            assert other.status_code == 200, other.text
            assert not waiting.done()
        assert preparing.result(timeout=60) == 1
        assert started.sla_preparation("sla_attainment", workspace.id) is None
        answer = waiting.result(timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"] == list(started.run_pipe("sla_attainment", workspace, {}).rows)


def test_a_large_evaluation_waits_for_the_one_under_way(engine_name: str, tmp_path: Path) -> None:
    """While a large evaluation of a workspace holds its turn, another large one waits for it (to
    find what the first kept), and a time limit still stops a waiting one."""
    runtime = Runtime.open(make_settings(engine_name, tmp_path, query_timeout_seconds=0.5))
    try:
        workspace = runtime.metadata.create_workspace("acme")
        yesterday = datetime.now(UTC) - timedelta(days=1)
        rows = [
            {"ticket_id": f"S{n}", "created_at": yesterday.isoformat(), "status": "open"} for n in range(3)
        ]
        _ingest(runtime, workspace, "support_tickets", rows)
        with ThreadPoolExecutor(2) as pool:
            with runtime.sla_states.evaluating(workspace.id):  # the turn, held by this thread
                started = time.monotonic()
                limited = pool.submit(runtime.run_pipe, "sla_attainment", workspace, {})
                waiting = pool.submit(_default_attainment, runtime, workspace)
                with pytest.raises(QueryTimeout):
                    limited.result(timeout=10)
                assert time.monotonic() - started < 0.5 + 2.0  # stopped while it waited
                assert not waiting.done()  # still waiting for the turn
            answers = [waiting.result(timeout=60)]
        fresh = dataclasses.replace(runtime.pipe_context(workspace), sla_states=None)
        assert answers == [
            list(sla_attainment(fresh, _default_filters(), by=SlaGroupBy.NONE, unit=PeriodUnit.DAY).rows)
        ]
        assert len(runtime.sla_states._kept[workspace.id].seqs) == 3
    finally:
        runtime.close()


def _default_filters() -> Filters:
    now = datetime.now(UTC)
    return Filters(Window(now - timedelta(days=7), now), None, None, None, None, None, now)


def _default_attainment(runtime: Runtime, workspace: Workspace) -> list[dict[str, Any]]:
    context = runtime.pipe_context(workspace)
    return list(sla_attainment(context, _default_filters(), by=SlaGroupBy.NONE, unit=PeriodUnit.DAY).rows)


def test_the_preparation_stops_when_the_server_closes(runtime: Runtime) -> None:
    """Closing does not wait for a preparation that only saves time: none is run once it began."""
    workspace = runtime.metadata.create_workspace("acme")
    yesterday = datetime.now(UTC) - timedelta(days=1)
    _ingest(runtime, workspace, "support_tickets", [{"ticket_id": "S1", "created_at": yesterday.isoformat()}])
    runtime.closing.set()
    assert runtime.warm_pipes().result() == 0
    assert workspace.id not in runtime.sla_states._kept
