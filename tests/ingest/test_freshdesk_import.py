"""Freshdesk activity exports through the whole path on both engines: several daily files, the
same or overlapping files again (no change), ``as_of=export_end``, the API route and the
seed-shaped report."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
from typer.testing import CliRunner

from supportlens.cli import app as cli_app
from supportlens.domain.events import TicketEvent
from supportlens.domain.metrics import minutes
from supportlens.domain.timeline import ticket_time_metrics
from supportlens.ingest.freshdesk import parse_export
from supportlens.ingest.imports import import_freshdesk_export
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKET_EVENTS, TICKETS

END = datetime(2024, 4, 21, 10, 0, tzinfo=UTC)


def export_files() -> list[bytes]:
    from supportlens.demo.activities import generate_exports

    return [orjson.dumps(export) for export in generate_exports(60, seed=7, end=END, days=3)]


def _import(runtime: Runtime, workspace_id: str, files: list[bytes]) -> None:
    requesters: dict[str, frozenset[str]] = {}
    for index, data in enumerate(files):
        summary, known = import_freshdesk_export(
            runtime.ingest,
            runtime.engine,
            workspace_id,
            data,
            file_name=f"day{index}.json",
            requesters=requesters,
        )
        requesters = dict(known)
        runtime.record_import(workspace_id, summary)


def test_daily_files_match_the_reference_and_reimports_change_nothing(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("w")
    files = export_files()
    _import(runtime, workspace.id, files)
    events = runtime.engine.count(TICKET_EVENTS, workspace.id)
    tickets = runtime.engine.count(TICKETS, workspace.id)
    before = runtime.run_pipe("ticket_time_metrics", workspace, {"as_of": "export_end", "limit": "1000"}).rows
    _import(runtime, workspace.id, files)  # identical files again
    _import(runtime, workspace.id, files[1:2])  # an overlapping one
    assert runtime.engine.count(TICKET_EVENTS, workspace.id) == events
    assert runtime.engine.count(TICKETS, workspace.id) == tickets
    after = runtime.run_pipe("ticket_time_metrics", workspace, {"as_of": "export_end", "limit": "1000"}).rows
    assert after == before

    # The reference over the same events, at the newest export's end_at.
    by_ticket: dict[str, list[TicketEvent]] = defaultdict(list)
    requesters: dict[str, frozenset[str]] = {}
    end_at = None
    for data in files:
        export = parse_export(data, requesters=requesters)
        requesters = dict(export.requesters)
        end_at = export.end_at
        for event in export.events:
            by_ticket[event.ticket_id].append(event)
    assert end_at is not None
    rows = {row["ticket_id"]: row for row in after}
    assert set(rows) == set(by_ticket)
    for ticket_id, history in by_ticket.items():
        unique = list({e.event_id: e for e in reversed(history)}.values())[::-1]  # first arrival wins
        expected = ticket_time_metrics(
            unique, as_of=end_at, statuses=runtime.pipe_context(workspace).statuses
        )
        row = rows[ticket_id]
        assert row["status"] == expected.status
        assert row["first_response_minutes"] == minutes(expected.first_response_ms)
        assert row["full_resolution_minutes"] == minutes(expected.full_resolution_ms)
        assert row["reopens"] == expected.reopens
        in_status = {s: m for s, m in orjson.loads(row["minutes_in_status"]).items() if m}
        assert in_status == {s: minutes(ms) for s, ms in expected.time_in_status_ms.items() if ms}


def test_cli_import_and_seed_report(tmp_path: Path, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("SUPPORTLENS_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(cli_app, ["workspace", "create", "w"]).exit_code == 0
    paths = []
    for index, data in enumerate(export_files()):
        path = tmp_path / f"day{index}.json"
        path.write_bytes(data)
        paths.append(str(path))
    imported = runner.invoke(cli_app, ["import", "freshdesk-activities", *paths, "--workspace", "w"])
    assert imported.exit_code == 0, imported.output
    assert "activities ->" in imported.output
    report = runner.invoke(cli_app, ["report", "time-in-status", "--workspace", "w", "--as-of", "export_end"])
    assert report.exit_code == 0, report.output
    lines = report.output.strip().splitlines()
    assert lines[0] == (
        "ticket_id,time_spent_open,time_spent_waiting_on_customer,time_spent_waiting_for_response,"
        "time_till_resolution,time_to_first_response"
    )
    assert len(lines) > 10
    missing = runner.invoke(cli_app, ["import", "freshdesk-activities", "--workspace", "w"])
    assert missing.exit_code != 0
