"""The ``calendar`` and ``statuses`` commands, in process: they read and write the same configuration
the API serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from supportlens import cli as cli_module
from supportlens.auth.repository import MetadataRepository
from supportlens.cli import app
from supportlens.configuration.repository import ConfigurationRepository
from supportlens.domain.statuses import StatusCategory

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    "BEGIN:VEVENT\r\nUID:1\r\nDTSTART;VALUE=DATE:20260101\r\nDTEND;VALUE=DATE:20260102\r\n"
    "SUMMARY:New Year\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SUPPORTLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    # The CLI's console may have been created (and sized) by an earlier import in this process.
    monkeypatch.setattr(cli_module.console, "width", 200)
    runner = CliRunner()
    assert runner.invoke(app, ["workspace", "create", "acme", "--timezone", "Europe/Berlin"]).exit_code == 0
    return runner


def acme(data_dir: Path) -> str:
    metadata = MetadataRepository(data_dir / "metadata.sqlite")
    try:
        return metadata.workspace_by_name("acme").id
    finally:
        metadata.close()


def configuration(data_dir: Path) -> ConfigurationRepository:
    return ConfigurationRepository(data_dir / "metadata.sqlite")


def test_calendar_commands(cli: CliRunner, tmp_path: Path) -> None:
    definition = tmp_path / "support.json"
    windows = [{"weekday": day, "start": "09:00", "end": "17:00"} for day in range(5)]
    definition.write_text(json.dumps({"name": "Support", "timezone": "Europe/Berlin", "windows": windows}))
    added = cli.invoke(app, ["calendar", "add", "-w", "acme", str(definition)])
    assert added.exit_code == 0, added.output
    assert "default" in added.output
    repo = configuration(tmp_path)
    (stored,) = repo.calendars(acme(tmp_path))
    repo.close()
    assert stored.id in added.output

    listed = cli.invoke(app, ["calendar", "list", "-w", "acme"])
    assert stored.id in listed.output
    assert "Europe/Berlin" in listed.output

    ics = tmp_path / "holidays.ics"
    ics.write_text(ICS)
    imported = cli.invoke(app, ["calendar", "import-ical", stored.id, str(ics), "-w", "acme"])
    assert imported.exit_code == 0, imported.output
    assert "1 holidays added" in imported.output
    shown = json.loads(cli.invoke(app, ["calendar", "show", stored.id, "-w", "acme"]).stdout)
    assert shown["id"] == stored.id
    assert shown["versions"][0]["holidays"] == [
        {"date": "2026-01-01", "start": None, "end": None, "name": "New Year"}
    ]

    # Friday 2026-01-02 09:30 in Berlin is open; New Year's Day is a holiday.
    assert (
        "open"
        in cli.invoke(app, ["calendar", "check", "-w", "acme", "--at", "2026-01-02T09:30:00+01:00"]).output
    )
    closed = cli.invoke(app, ["calendar", "check", "-w", "acme", "--at", "2026-01-01T10:00:00+01:00"])
    assert "closed" in closed.output
    assert "Support" in closed.output
    assert cli.invoke(app, ["calendar", "default", stored.id, "-w", "acme"]).exit_code == 0


def test_calendar_errors_are_clean_messages(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {"name": "x", "timezone": "UTC", "windows": [{"weekday": "funday", "start": "9", "end": "17:00"}]}
        )
    )
    result = cli.invoke(app, ["calendar", "add", "-w", "acme", str(bad)])
    assert result.exit_code == 1
    assert "windows[0].weekday" in result.stderr
    assert "windows[0].start" in result.stderr
    assert "Traceback" not in result.output
    missing = cli.invoke(app, ["calendar", "show", "nope", "-w", "acme"])
    assert missing.exit_code == 1
    assert "no calendar 'nope'" in missing.stderr
    assert cli.invoke(app, ["calendar", "list", "-w", "nobody"]).exit_code == 1
    assert "--at" in cli.invoke(app, ["calendar", "check", "-w", "acme", "--at", "soon"]).stderr


def test_statuses_commands(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(
        app, ["statuses", "set", "-w", "acme", "Waiting on Vendor=on_hold", "Parked = pending"]
    )
    assert result.exit_code == 0, result.output
    repo = configuration(tmp_path)
    assert repo.status_names(acme(tmp_path)) == {
        "waiting on vendor": StatusCategory.ON_HOLD,
        "parked": StatusCategory.PENDING,
    }
    repo.close()
    listed = cli.invoke(app, ["statuses", "list", "-w", "acme"]).output
    assert "waiting on vendor" in listed
    assert "waiting for customer" in listed  # the defaults too
    refused = cli.invoke(app, ["statuses", "set", "-w", "acme", "Parked=later"])
    assert refused.exit_code == 1
    assert "on_hold" in refused.stderr
    assert cli.invoke(app, ["statuses", "set", "-w", "acme", "no separator"]).exit_code == 1
