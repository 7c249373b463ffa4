"""The configuration repository: calendars with exactly one default per workspace, group assignments,
status names and activity imports, all scoped by workspace and kept across reopening."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from supportlens.auth.repository import Conflict, NotFound
from supportlens.configuration.calendars import CalendarDefinition
from supportlens.configuration.repository import ConfigurationRepository, ImportRecord
from supportlens.domain.calendars import CalendarSchedule, business_time, default_business_hours
from supportlens.domain.statuses import StatusCategory

A, B = "workspace-a", "workspace-b"
MONDAY = datetime(2026, 1, 5, tzinfo=UTC)


def definition(name: str, *, start: str = "09:00", end: str = "17:00", **extra: Any) -> CalendarDefinition:
    windows = [{"weekday": day, "start": start, "end": end} for day in range(5)]
    return CalendarDefinition.model_validate({"name": name, "timezone": "UTC", "windows": windows, **extra})


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[ConfigurationRepository]:
    opened = ConfigurationRepository(tmp_path / "metadata.sqlite")
    try:
        yield opened
    finally:
        opened.close()


def monday_hours(repo: ConfigurationRepository, workspace: str, group: str | None = None) -> timedelta:
    schedule = repo.business_calendar(workspace, "UTC", group)
    return business_time(schedule, MONDAY, MONDAY + timedelta(days=1))


def defaults(repo: ConfigurationRepository, workspace: str) -> list[str]:
    return [c.name for c in repo.calendars(workspace) if c.definition.default]


def test_the_first_calendar_is_the_default_and_exactly_one_stays_default(
    repo: ConfigurationRepository,
) -> None:
    first = repo.create_calendar(A, definition("early", start="07:00", end="15:00"))
    second = repo.create_calendar(A, definition("late", start="12:00", end="20:00"))
    assert first.definition.default
    assert not second.definition.default
    assert defaults(repo, A) == ["early"]

    repo.set_default_calendar(A, second.id)
    assert defaults(repo, A) == ["late"]
    third = repo.create_calendar(A, definition("night", start="22:00", end="06:00", default=True))
    assert defaults(repo, A) == ["night"]
    assert [c.name for c in repo.calendars(A)] == ["early", "late", "night"]
    assert repo.calendar(A, third.id).definition.versions[0].windows[0].end == "06:00"


def test_business_calendar_resolution(repo: ConfigurationRepository) -> None:
    assert repo.business_calendar(A, "Europe/Berlin") == default_business_hours("Europe/Berlin")
    assert monday_hours(repo, A) == timedelta(hours=8)  # 09:00-17:00 by default

    team = repo.create_calendar(A, definition("team", start="08:00", end="12:00"))
    vip = repo.create_calendar(A, definition("vip", start="00:00", end="24:00", groups=["G-VIP"]))
    schedule = repo.business_calendar(A, "UTC")
    assert isinstance(schedule, CalendarSchedule)
    assert schedule.versions[0].name == "team"
    assert monday_hours(repo, A) == timedelta(hours=4)
    assert monday_hours(repo, A, "G-VIP") == timedelta(hours=24)
    assert monday_hours(repo, A, "unassigned group") == timedelta(hours=4)

    # A group uses one calendar: assigning it elsewhere moves it.
    repo.assign_group(A, "G-VIP", team.id)
    assert monday_hours(repo, A, "G-VIP") == timedelta(hours=4)
    assert repo.calendar(A, vip.id).definition.groups == []
    assert repo.calendar(A, team.id).definition.groups == ["G-VIP"]
    # Another workspace sees none of it.
    assert monday_hours(repo, B, "G-VIP") == timedelta(hours=8)


def test_replace_changes_name_versions_and_groups_but_never_drops_the_default(
    repo: ConfigurationRepository,
) -> None:
    stored = repo.create_calendar(A, definition("team", groups=["G1", "G2"]))
    replaced = repo.replace_calendar(A, stored.id, definition("support", start="10:00", groups=["G2", "G3"]))
    assert replaced.id == stored.id
    assert replaced.name == "support"
    assert replaced.definition.default  # default: false in a PUT leaves the flag alone
    assert replaced.definition.groups == ["G2", "G3"]
    assert replaced.created_at == stored.created_at
    assert replaced.updated_at >= stored.updated_at
    assert monday_hours(repo, A, "G1") == timedelta(hours=7)  # G1 fell back to the default: itself
    other = repo.create_calendar(A, definition("other"))
    with pytest.raises(Conflict):
        repo.replace_calendar(A, other.id, definition("SUPPORT"))


def test_names_are_unique_per_workspace_ignoring_case(repo: ConfigurationRepository) -> None:
    repo.create_calendar(A, definition("Support"))
    with pytest.raises(Conflict):
        repo.create_calendar(A, definition("support"))
    repo.create_calendar(B, definition("support"))


def test_another_workspace_cannot_reach_a_calendar(repo: ConfigurationRepository) -> None:
    stored = repo.create_calendar(A, definition("team"))
    with pytest.raises(NotFound):
        repo.calendar(B, stored.id)
    with pytest.raises(NotFound):
        repo.replace_calendar(B, stored.id, definition("mine"))
    with pytest.raises(NotFound):
        repo.delete_calendar(B, stored.id)
    with pytest.raises(NotFound):
        repo.set_default_calendar(B, stored.id)
    with pytest.raises(NotFound):
        repo.assign_group(B, "G1", stored.id)
    assert repo.calendars(B) == []
    assert repo.calendar(A, stored.id).name == "team"


def test_delete(repo: ConfigurationRepository) -> None:
    default = repo.create_calendar(A, definition("default", groups=["G1"]))
    other = repo.create_calendar(A, definition("other", start="10:00", groups=["G2"]))
    with pytest.raises(Conflict, match="default"):
        repo.delete_calendar(A, default.id)
    repo.delete_calendar(A, other.id)
    assert monday_hours(repo, A, "G2") == timedelta(hours=8)  # its group falls back to the default
    with pytest.raises(NotFound):
        repo.calendar(A, other.id)
    repo.assign_group(A, "G2", default.id)  # the group is free again
    repo.delete_calendar(A, default.id)  # the last calendar may go
    assert repo.calendars(A) == []
    assert repo.business_calendar(A, "Asia/Tokyo") == default_business_hours("Asia/Tokyo")


def test_status_names_replace_all_and_win_over_the_defaults(repo: ConfigurationRepository) -> None:
    assert repo.status_names(A) == {}
    assert repo.status_map(A).category("Waiting on Vendor") == StatusCategory.OPEN  # unmapped
    repo.set_status_names(A, {"  Waiting on Vendor ": StatusCategory.ON_HOLD, "Open": StatusCategory.NEW})
    assert repo.status_names(A) == {"waiting on vendor": StatusCategory.ON_HOLD, "open": StatusCategory.NEW}
    statuses = repo.status_map(A)
    assert statuses.category("WAITING ON VENDOR") == StatusCategory.ON_HOLD
    assert statuses.category("open") == StatusCategory.NEW
    assert statuses.category("closed") == StatusCategory.CLOSED  # defaults still apply
    assert ("waiting on vendor", StatusCategory.ON_HOLD, True) in repo.known_status_names(A)
    assert ("closed", StatusCategory.CLOSED, False) in repo.known_status_names(A)
    assert repo.status_map(B).category("open") == StatusCategory.OPEN

    repo.set_status_names(A, {"Parked": StatusCategory.PENDING})
    assert repo.status_names(A) == {"parked": StatusCategory.PENDING}
    with pytest.raises(ValueError, match="blank"):
        repo.set_status_names(A, {" ": StatusCategory.OPEN})
    with pytest.raises(ValueError, match="twice"):
        repo.set_status_names(A, {"Parked": StatusCategory.PENDING, "parked ": StatusCategory.OPEN})
    assert repo.status_names(A) == {"parked": StatusCategory.PENDING}  # a refused change changes nothing


def test_imports_and_the_latest_export_end(repo: ConfigurationRepository) -> None:
    assert repo.latest_export_end(A) is None
    day = datetime(2026, 3, 1, tzinfo=UTC)
    older = ImportRecord("freshdesk-activities", "a.json", day, day + timedelta(days=1), 10, 25, 1, 0)
    # A later window written with an offset, imported first: max() compares instants, not text.
    newer_end = datetime(2026, 3, 3, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    newer = ImportRecord("freshdesk-activities", "b.json", day, newer_end, None, 3, 0, 2)
    no_window = ImportRecord("freshdesk-activities", "c.json", None, None, None, 0, 0, 0)
    for record in (newer, older, no_window):
        repo.record_import(A, record)
    assert repo.latest_export_end(A) == newer_end
    assert repo.latest_export_end(B) is None
    assert {record.file_name for record in repo.imports(A)} == {"a.json", "b.json", "c.json"}
    assert next(r for r in repo.imports(A) if r.id == older.id) == older
    assert repo.imports(B) == []


def test_everything_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "metadata.sqlite"
    first = ConfigurationRepository(path)
    stored = first.create_calendar(
        A,
        definition(
            "team", holidays=[{"date": "2026-12-24", "start": "12:00", "end": "24:00", "name": "Eve"}]
        ),
    )
    first.set_status_names(A, {"Parked": StatusCategory.PENDING})
    first.close()
    again = ConfigurationRepository(path)
    try:
        loaded = again.calendar(A, stored.id)
        assert loaded == stored
        holiday = again.business_calendar(A, "UTC").versions[0].holidays[0]  # type: ignore[union-attr]
        assert (holiday.day, holiday.start, holiday.end) == (date(2026, 12, 24), time(12), time(0))
        assert again.status_names(A) == {"parked": StatusCategory.PENDING}
    finally:
        again.close()
