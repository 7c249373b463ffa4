"""What ``sla_attainment`` and ``sla_at_risk`` keep, saved when the runtime closes and taken up when
it opens again (analytics/sla_memo_files.py), on both engines: the restarted runtime answers from the
saved versions (a marked saved state shows in its answer; saved listings are used only within the
times they were kept for) and, with writes after the restart, exactly as a run that keeps nothing;
saved files are ignored when the store was put back from an older copy, when the code changed, when
the two files of a workspace are from different saves, or when they cannot be read."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from supportlens.analytics.sla_memo import LISTED_SCHEMA, TargetStates
from supportlens.analytics.sla_memo_files import load_target_states, save_target_states
from supportlens.analytics.sla_state import SlaGroupBy
from supportlens.auth.repository import Workspace
from supportlens.config import Settings
from supportlens.configuration.sla import SlaPolicyDefinition
from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.domain.sla import TargetStatus
from supportlens.runtime import Runtime
from tests.analytics.test_sla_at_risk import POLICY
from tests.analytics.test_sla_states import _at_risk, _attainment, _filters, _ingest, _post_events
from tests.conftest import make_settings
from tests.domain.test_timeline import History, at


def at_ms(minute: int) -> int:
    return int(at(minute).timestamp() * 1000)


_RISK_MS = at_ms(10)  # when the first response targets of the tickets opened at 0 come at risk


_OPENED = {
    "created_at": at(0).isoformat(),
    "updated_at": at(0).isoformat(),
    "status": "open",
    "agent_id": "A1",
}


def _created_log(ticket_id: str) -> History:
    return History([TicketEvent("c", ticket_id, at(0), EventType.CREATED, ActorType.CUSTOMER)], 0)


def _filled(settings: Settings) -> Workspace:
    """A workspace with a policy, snapshot tickets and a ticket with a log; its SLA states kept
    and saved by closing the runtime."""
    runtime = Runtime.open(settings)
    try:
        existing = {known.name: known for known in runtime.metadata.workspaces()}
        workspace = existing.get("acme") or runtime.metadata.create_workspace("acme")
        runtime.configuration.create_policy(workspace.id, SlaPolicyDefinition.model_validate(POLICY))
        tickets = [{**_OPENED, "ticket_id": f"S{n}"} for n in range(3)]
        _ingest(runtime, workspace, "support_tickets", tickets)
        _post_events(runtime, workspace, "T1", _created_log("T1"), "first")
        _attainment(runtime, workspace, _filters(at(100), None), SlaGroupBy.AGENT, kept=True)
        assert len(runtime.sla_states._kept[workspace.id].seqs) == 4
        # Five minutes in, no target is at risk yet: each version's listing is kept until the
        # first response target could be (at risk after 10 of its 20 minutes).
        _at_risk(runtime, workspace, _filters(at(5), None), kept=True, limit=100, offset=0)
        assert set(runtime.at_risk_states._kept[workspace.id].valid_until_ms) == {_RISK_MS - 1}
    finally:
        runtime.close()
    return workspace


def _restarted(engine_name: str, tmp_path: Path) -> tuple[Settings, Workspace, Runtime]:
    """``_filled``'s store, opened again: what it saved is taken up at open, before any run."""
    settings = make_settings(engine_name, tmp_path)
    workspace = _filled(settings)
    return settings, workspace, Runtime.open(settings)


def test_saved_states_are_taken_up_and_answers_stay_exact(engine_name: str, tmp_path: Path) -> None:
    settings, workspace, runtime = _restarted(engine_name, tmp_path)
    try:
        saved = runtime.sla_states._kept[workspace.id]
        assert len(saved.seqs) == 4
        filters = _filters(at(100), None)
        # Used as they are: a mark put on the saved states shows in the answer.
        achieved = list(TargetStatus).index(TargetStatus.ACHIEVED)
        runtime.sla_states._kept[workspace.id] = dataclasses.replace(
            saved,
            targets=saved.targets.set_column(
                3, "state", pa.array([achieved] * saved.target_count, pa.int8())
            ),
        )
        marked = _attainment(runtime, workspace, filters, SlaGroupBy.AGENT, kept=True)
        assert sum(row["achieved"] for row in marked) == saved.target_count > 0
        runtime.sla_states._kept[workspace.id] = saved
        assert _attainment(runtime, workspace, filters, SlaGroupBy.AGENT, kept=True) == _attainment(
            runtime, workspace, filters, SlaGroupBy.AGENT, kept=False
        )
        # Writes after the restart: new versions are evaluated, the saved ones still serve.
        answered = {
            **_OPENED,
            "ticket_id": "S1",
            "first_response_at": at(10).isoformat(),
            "updated_at": at(10).isoformat(),
        }
        _ingest(
            runtime,
            workspace,
            "support_tickets",
            [answered, {**_OPENED, "ticket_id": "S9", "priority": "high"}],
        )
        for by in SlaGroupBy:
            assert _attainment(runtime, workspace, filters, by, kept=True) == _attainment(
                runtime, workspace, filters, by, kept=False
            )
        # Kept in parts with their own dictionaries (the saved ones, the new ones): saved as one.
        priorities = runtime.sla_states._kept[workspace.id].targets.column("priority")
        assert len({tuple(chunk.dictionary.to_pylist()) for chunk in priorities.chunks}) > 1
    finally:
        runtime.close()
    # Saved again at close, new versions included.
    states = TargetStates()
    assert load_target_states(states, settings.kept_sla_states_path, last_seq=10**9) == 1
    assert len(states._kept[workspace.id].seqs) == 6


def test_saved_at_risk_listings_are_taken_up_and_used_only_while_they_hold(
    engine_name: str, tmp_path: Path
) -> None:
    settings, workspace, runtime = _restarted(engine_name, tmp_path)
    try:
        saved = runtime.at_risk_states._kept[workspace.id]
        assert len(saved.seqs) == 4
        assert set(saved.valid_from_ms) == {at_ms(5)}
        assert set(saved.valid_until_ms) == {_RISK_MS - 1}
        # Used within the times they hold for (no version evaluated again, so nothing new kept),
        # and not after: every answer is exact.
        for minute in (5, 9, 10, 30, 100):
            runtime.at_risk_states._kept[workspace.id] = saved
            assert _at_risk_either_way(runtime, workspace, at(minute))
            assert (runtime.at_risk_states._kept[workspace.id] is saved) == (minute < 10)
        listed, _ = _at_risk(runtime, workspace, _filters(at(100), None), kept=True, limit=100, offset=0)
        assert len(listed) == 8  # first response and resolution of each ticket, all past due or at risk
        # Writes after the restart: new versions are evaluated, the saved ones still serve.
        _ingest(runtime, workspace, "support_tickets", [{**_OPENED, "ticket_id": "S9", "priority": "high"}])
        runtime.at_risk_states._kept[workspace.id] = saved
        assert _at_risk_either_way(runtime, workspace, at(7))
    finally:
        runtime.close()
    # Saved again at close: what the runs after the restart kept, new version included.
    states = TargetStates(schema=LISTED_SCHEMA)
    assert load_target_states(states, settings.kept_at_risk_path, last_seq=10**9) == 1
    assert len(states._kept[workspace.id].seqs) == 5


def _at_risk_either_way(runtime: Runtime, workspace: Workspace, as_of: datetime) -> bool:
    """The whole list and a page of ``sla_at_risk`` at ``as_of`` are the same from the kept
    listings as from evaluating every ticket."""
    filters = _filters(as_of, None)
    return all(
        _at_risk(runtime, workspace, filters, kept=True, limit=limit, offset=offset)
        == _at_risk(runtime, workspace, filters, kept=False, limit=limit, offset=offset)
        for limit, offset in ((100, 0), (2, 1))
    )


def test_states_saved_past_the_store_are_ignored(engine_name: str, tmp_path: Path) -> None:
    """Saved states that name a version past the store's highest sequence number (a store put
    back from an older copy: the number may name another version now) are not taken up."""
    settings = make_settings(engine_name, tmp_path)
    workspace = _filled(settings)
    runtime = Runtime.open(settings)
    try:
        last_seq = runtime.engine.max_sequence()
        assert int(runtime.sla_states._kept[workspace.id].seqs[-1]) == last_seq
    finally:
        runtime.close()
    directory = settings.kept_sla_states_path
    # Opened and closed with nothing evaluated: the files are not written again.
    written = {path: path.stat().st_mtime_ns for path in directory.iterdir()}
    Runtime.open(settings).close()
    assert {path: path.stat().st_mtime_ns for path in directory.iterdir()} == written
    assert load_target_states(TargetStates(), directory, last_seq=last_seq - 1) == 0
    assert load_target_states(TargetStates(), directory, last_seq=last_seq) == 1


def test_files_of_other_code_or_other_saves_or_unreadable_are_ignored(
    engine_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(engine_name, tmp_path)
    workspace = _filled(settings)
    directory = settings.kept_sla_states_path
    versions = directory / f"{workspace.id}.versions.arrow"
    targets = directory / f"{workspace.id}.targets.arrow"

    def loaded() -> bool:
        return load_target_states(TargetStates(), directory, last_seq=10**9) == 1

    assert loaded()
    kept = versions.read_bytes(), targets.read_bytes()
    # Another release's files (another code fingerprint).
    table = ipc.open_file(pa.BufferReader(kept[0])).read_all()
    other_code = table.replace_schema_metadata({**table.schema.metadata, b"code": b"another release"})
    with pa.OSFile(str(versions), "wb") as sink, ipc.new_file(sink, other_code.schema) as writer:
        writer.write_table(other_code)
    assert not loaded()
    # The versions of one save with the targets of another.
    versions.write_bytes(kept[0])
    save_target_states(_reloaded(directory), directory)
    versions.write_bytes(kept[0])
    assert not loaded()
    # A file cut short: ignored with a warning, and the runtime opens.
    targets.write_bytes(kept[1][: len(kept[1]) // 2])
    with caplog.at_level(logging.WARNING, logger="supportlens.analytics.sla_memo_files"):
        assert not loaded()
        runtime = Runtime.open(settings)
        runtime.close()
    assert f"ignoring unreadable saved SLA states of workspace {workspace.id}" in caplog.text


_FINGERPRINT = """
from supportlens.analytics.sla_memo import setup_fingerprint
from supportlens.configuration.sla import builtin_policy
from supportlens.domain.calendars import CalendarChoice, default_business_hours
from supportlens.domain.sla import PolicySet
from supportlens.domain.statuses import StatusCategory, StatusMap

statuses = StatusMap({"waiting on us": StatusCategory.OPEN, "parked": StatusCategory.ON_HOLD, "done": StatusCategory.SOLVED})
print(setup_fingerprint(PolicySet((), builtin_policy()), CalendarChoice.only(default_business_hours("Europe/Berlin")), statuses))
"""


def test_the_setup_fingerprint_is_the_same_in_every_process() -> None:
    """Saved states are checked against it: it must not follow a process's string hashing (the
    order of the sets in the policies, such as the pausing status categories)."""
    prints = set()
    for seed in ("1", "2", "3", "4", "5", "6"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _FINGERPRINT], env=env, capture_output=True, text=True, check=True
        )
        prints.add(done.stdout.strip())
    assert len(prints) == 1


def _reloaded(directory: Path) -> TargetStates:
    """Loaded, and counted as not saved: saved again, they make a new generation."""
    states = TargetStates()
    load_target_states(states, directory, last_seq=10**9)
    states._saved.clear()
    return states
