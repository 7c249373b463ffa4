"""Calendar definitions as JSON: the shorthand normalizes to versions, every mistake is reported on
the field at fault (the domain's own rules included), and iCal holidays land in the versions whose
validity covers them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from supportlens.configuration.calendars import CalendarDefinition, add_ical_holidays, to_schedule
from supportlens.domain.calendars import BusinessCalendar, Holiday, OpenWindow, business_time
from supportlens.paths import field_path

NINE_TO_FIVE = [{"weekday": "monday", "start": "09:00", "end": "17:00"}]


def errors(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        CalendarDefinition.model_validate(body)
    return {field_path(err["loc"]): err["msg"] for err in caught.value.errors()}


def test_the_shorthand_and_the_versions_form_are_one_calendar() -> None:
    short = CalendarDefinition.model_validate(
        {
            "name": "Support",
            "timezone": "Europe/Berlin",
            "windows": [{"weekday": 0, "start": "09:00", "end": "17:30"}],
            "holidays": [{"date": "2026-01-01", "name": "New Year"}],
            "valid_from": "2026-01-01",
        }
    )
    versions = CalendarDefinition.model_validate(
        {
            "name": "Support",
            "versions": [
                {
                    "timezone": "Europe/Berlin",
                    "windows": [{"weekday": "Monday", "start": "09:00", "end": "17:30"}],
                    "holidays": [{"date": "2026-01-01", "name": "New Year"}],
                    "valid_from": "2026-01-01",
                }
            ],
        }
    )
    assert short == versions
    dumped = short.model_dump(mode="json")
    assert set(dumped) == {"name", "default", "groups", "versions"}
    assert dumped["versions"][0]["windows"] == [{"weekday": "monday", "start": "09:00", "end": "17:30"}]
    assert CalendarDefinition.model_validate_json(short.model_dump_json()) == short
    assert to_schedule(short).versions == (
        BusinessCalendar(
            "Europe/Berlin",
            (OpenWindow(0, time(9), time(17, 30)),),
            (Holiday(date(2026, 1, 1), name="New Year"),),
            valid_from=date(2026, 1, 1),
            name="Support",
        ),
    )


def test_clock_spellings() -> None:
    calendar = CalendarDefinition.model_validate(
        {
            "name": "Night",
            "timezone": "UTC",
            "windows": [
                {"weekday": "friday", "start": "22:00", "end": "06:00"},  # past midnight
                {"weekday": "sunday", "start": "00:00", "end": "00:00"},  # the whole day
                {"weekday": "saturday", "start": "12:00:30", "end": "24:00"},
            ],
        }
    )
    windows = calendar.versions[0].windows
    assert [(w.start, w.end) for w in windows] == [
        ("22:00", "06:00"),
        ("00:00", "24:00"),
        ("12:00:30", "24:00"),
    ]
    friday_night = datetime(2026, 1, 9, 22, tzinfo=UTC)
    assert business_time(to_schedule(calendar), friday_night, friday_night + timedelta(hours=9)) == timedelta(
        hours=8
    )


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (
            {"windows": [{"weekday": "funday", "start": "09:00", "end": "17:00"}]},
            "windows[0].weekday",
            "monday",
        ),
        ({"windows": [{"weekday": 7, "start": "09:00", "end": "17:00"}]}, "windows[0].weekday", "0 (Monday)"),
        ({"windows": [{"weekday": 1, "start": "9", "end": "17:00"}]}, "windows[0].start", "HH:MM"),
        ({"windows": [{"weekday": 1, "start": "09:00", "end": "17:60"}]}, "windows[0].end", "HH:MM"),
        ({"windows": [{"weekday": 1, "start": "24:00", "end": "06:00"}]}, "windows[0].start", "end time"),
        ({"windows": [{"weekday": 1, "start": "09:00", "end": "09:00"}]}, "windows[0].end", "zero-length"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown timezone"),
        ({"valid_from": "2026-06-01", "valid_until": "2026-01-01"}, "valid_until", "before valid_from"),
        (
            {"holidays": [{"date": "2026-12-24", "start": "13:00", "end": "12:00"}]},
            "holidays[0].end",
            "after",
        ),
        ({"holidays": [{"date": "2026-12-24", "end": "12:00"}]}, "holidays[0].start", "both"),
        ({"holidays": [{"date": "2026-02-30"}]}, "holidays[0].date", "date"),
        ({"weekdays": ["monday"]}, "weekdays", "Extra inputs"),
    ],
)
def test_errors_name_the_field(body: dict[str, Any], field: str, says: str) -> None:
    found = errors({"name": "x", "timezone": "UTC", "windows": NINE_TO_FIVE, **body})
    assert field in found, found
    assert says in found[field]
    # The same mistake inside versions is reported under versions[0].
    version = {"timezone": "UTC", "windows": NINE_TO_FIVE, **body}
    assert f"versions[0].{field}" in errors({"name": "x", "versions": [version]})


def test_one_form_only() -> None:
    assert "required" in errors({"name": "x"})["timezone"]
    assert "required" in errors({"name": "x", "timezone": "UTC"})["windows"]
    both = {"name": "x", "timezone": "UTC", "versions": [{"timezone": "UTC", "windows": NINE_TO_FIVE}]}
    assert "not both" in errors(both)["timezone"]
    assert "versions[0].windows" in errors({"name": "x", "versions": [{"timezone": "UTC"}]})
    assert "name" in errors({"name": "  ", "timezone": "UTC", "windows": NINE_TO_FIVE})


ICS = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:1\r
DTSTART;VALUE=DATE:20261225\r
DTEND;VALUE=DATE:20261227\r
SUMMARY:Christmas\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:2\r
DTSTART:20271231T120000Z\r
DTEND:20271231T170000Z\r
SUMMARY:New Year's Eve afternoon\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_ical_holidays_go_to_the_versions_covering_them() -> None:
    calendar = CalendarDefinition.model_validate(
        {
            "name": "Support",
            "versions": [
                {"timezone": "UTC", "windows": NINE_TO_FIVE, "valid_until": "2026-12-31"},
                {"timezone": "Europe/Berlin", "windows": NINE_TO_FIVE, "valid_from": "2027-01-01"},
            ],
        }
    )
    updated, added = add_ical_holidays(calendar, ICS)
    assert added == 3
    first, second = updated.versions
    assert [(h.date, h.start, h.end, h.name) for h in first.holidays] == [
        (date(2026, 12, 25), None, None, "Christmas"),
        (date(2026, 12, 26), None, None, "Christmas"),
    ]
    # Read in the version's own timezone: 12:00-17:00 UTC is 13:00-18:00 in Berlin.
    assert [(h.date, h.start, h.end) for h in second.holidays] == [(date(2027, 12, 31), "13:00", "18:00")]
    again, added_again = add_ical_holidays(updated, ICS)
    assert added_again == 0
    assert again == updated
    assert calendar.versions[0].holidays == []  # the input is not changed
