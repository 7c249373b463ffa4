"""Business calendars as clients write them (API bodies, CLI files) and as they are stored.

The JSON form is friendlier than the domain's: weekday names, ``"HH:MM"`` clocks with ``"24:00"``, and
a single-version shorthand.  Validation builds the domain objects, so every calendar rule lives once,
in domain/calendars.py, and its CalendarError messages come back as errors on the field at fault.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError, ValidationError

from supportlens.configuration.validation import field_error, from_domain
from supportlens.domain.calendars import (
    BusinessCalendar,
    CalendarError,
    CalendarSchedule,
    Holiday,
    OpenWindow,
    Schedule,
    holidays_from_ical,
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

_CLOCK = re.compile(r"^(?:([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?|24:00)$")
_MIDNIGHT = dt.time(0)
# Domain messages start with the attribute at fault ("OpenWindow.end must be ..."); the API spells
# Holiday.day as "date".
_ATTRIBUTE = re.compile(r"^(?:OpenWindow|Holiday|BusinessCalendar)\.(\w+)")
_API_FIELD = {"day": "date"}
_SHORTHAND = ("timezone", "windows", "holidays", "valid_from", "valid_until")
_FORBID = ConfigDict(extra="forbid")

T = TypeVar("T")


def _field_error(model: BaseModel, field: str, message: str) -> ValidationError:
    return field_error(model, field, message, "calendar")


def _domain(model: BaseModel, build: Callable[[], T], fallback: str) -> T:
    """``build()``, with a CalendarError turned into an error on the field its message names."""
    return from_domain(
        model,
        build,
        fallback,
        error=CalendarError,
        attribute=_ATTRIBUTE,
        api_field=_API_FIELD,
        kind="calendar",
    )


def parse_clock(text: str) -> dt.time:
    """A canonical ``HH:MM[:SS]`` clock as a time; ``"24:00"`` is midnight at the end of the day."""
    return _MIDNIGHT if text == "24:00" else dt.time.fromisoformat(text)


def _clock_text(value: dt.time, *, end: bool) -> str:
    if end and value == _MIDNIGHT:
        return "24:00"
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def _clock(value: object, *, end: bool) -> str:
    spelled = "HH:MM or 24:00" if end else "HH:MM"
    if not isinstance(value, str) or not (found := _CLOCK.match(value.strip())):
        raise PydanticCustomError(
            "clock", "expected a {spelled} clock time, got {got}", {"spelled": spelled, "got": repr(value)}
        )
    if found[1] is None and not end:
        raise PydanticCustomError("clock", "24:00 is only allowed as an end time")
    return _clock_text(parse_clock(found[0]), end=end)


def _weekday(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return WEEKDAYS[value]
    if isinstance(value, str) and value.strip().lower() in WEEKDAYS:
        return value.strip().lower()
    raise PydanticCustomError(
        "weekday", "expected monday..sunday or 0 (Monday)..6 (Sunday), got {got}", {"got": repr(value)}
    )


StartClock = Annotated[str, BeforeValidator(lambda value: _clock(value, end=False))]
EndClock = Annotated[str, BeforeValidator(lambda value: _clock(value, end=True))]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CalendarWindow(BaseModel):
    """Open every ``weekday`` from ``start`` to ``end`` (local time); an end at or before the start runs
    past midnight into the next day."""

    model_config = _FORBID
    weekday: Annotated[Weekday, BeforeValidator(_weekday)]
    start: StartClock
    end: EndClock

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _domain(self, self.to_domain, "end")
        return self

    def to_domain(self) -> OpenWindow:
        return OpenWindow(WEEKDAYS.index(self.weekday), parse_clock(self.start), parse_clock(self.end))


class CalendarHoliday(BaseModel):
    """Closed all of ``date``, or from ``start`` to ``end`` only."""

    model_config = _FORBID
    date: dt.date
    start: StartClock | None = None
    end: EndClock | None = None
    name: str = ""

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _domain(self, self.to_domain, "date")
        return self

    def to_domain(self) -> Holiday:
        start = None if self.start is None else parse_clock(self.start)
        end = None if self.end is None else parse_clock(self.end)
        return Holiday(self.date, start, end, self.name)

    @classmethod
    def of(cls, holiday: Holiday) -> CalendarHoliday:
        """The JSON form of a domain holiday (e.g. one read from iCal)."""
        if holiday.start is None or holiday.end is None:
            return cls(date=holiday.day, name=holiday.name)
        return cls(
            date=holiday.day,
            start=_clock_text(holiday.start, end=False),
            end=_clock_text(holiday.end, end=True),
            name=holiday.name,
        )


class CalendarVersion(BaseModel):
    """One weekly schedule in one IANA timezone, minus holidays, valid on [valid_from, valid_until]
    (inclusive local dates; open-ended when absent).  No windows means closed."""

    model_config = _FORBID
    timezone: str = Field(examples=["Europe/Berlin"])
    windows: list[CalendarWindow]
    holidays: list[CalendarHoliday] = Field(default_factory=list)
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _domain(self, lambda: self.to_domain(""), "timezone")
        return self

    def to_domain(self, name: str) -> BusinessCalendar:
        return BusinessCalendar(
            timezone=self.timezone,
            windows=tuple(window.to_domain() for window in self.windows),
            holidays=tuple(holiday.to_domain() for holiday in self.holidays),
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            name=name,
        )


class CalendarDefinition(BaseModel):
    """A named calendar: ``versions`` in order (the first whose validity contains a date governs it), or
    for a calendar that never changes the single version's fields at top level.  ``default`` makes it
    the workspace's calendar; ``groups`` are the ticket groups that use it instead of the default.

    Validation normalizes the shorthand into ``versions``, so the stored and answered form is one."""

    model_config = _FORBID
    name: Label
    default: bool = False
    groups: list[Label] = Field(default_factory=list)
    versions: list[CalendarVersion] = Field(default_factory=list)
    timezone: str | None = Field(default=None, exclude=True)
    windows: list[CalendarWindow] | None = Field(default=None, exclude=True)
    holidays: list[CalendarHoliday] | None = Field(default=None, exclude=True)
    valid_from: dt.date | None = Field(default=None, exclude=True)
    valid_until: dt.date | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        self.groups = list(dict.fromkeys(self.groups))
        given: dict[str, Any] = {
            key: getattr(self, key) for key in _SHORTHAND if getattr(self, key) is not None
        }
        if self.versions:
            if given:
                raise _field_error(
                    self, next(iter(given)), "give either versions or the single-version fields, not both"
                )
            return self
        for required in ("timezone", "windows"):
            if required not in given:
                raise _field_error(self, required, "required unless versions are given")
        # Errors of the version's own rules keep the top-level field names (timezone, valid_until).
        self.versions = [CalendarVersion.model_validate(given)]
        for key in _SHORTHAND:
            setattr(self, key, None)
        return self


def to_schedule(definition: CalendarDefinition) -> CalendarSchedule:
    """The domain schedule of a validated definition; its versions carry the calendar's name."""
    return CalendarSchedule(tuple(version.to_domain(definition.name) for version in definition.versions))


def schedule_name(schedule: Schedule) -> str:
    """The name of the calendar behind a schedule (every version carries it)."""
    return schedule.name if isinstance(schedule, BusinessCalendar) else schedule.versions[0].name


def add_ical_holidays(definition: CalendarDefinition, data: bytes) -> tuple[CalendarDefinition, int]:
    """The definition with the holidays of an iCalendar file added, and how many were new.

    Each version reads the file in its own timezone and takes the holidays on dates its validity
    covers; holidays it already has are skipped, so uploading the same file twice adds nothing.
    Raises CalendarError for an unreadable file.
    """
    added: set[Holiday] = set()
    versions: list[CalendarVersion] = []
    for version in definition.versions:
        calendar = version.to_domain(definition.name)
        known = set(calendar.holidays)
        new = [
            holiday
            for holiday in dict.fromkeys(holidays_from_ical(data, version.timezone))
            if calendar.covers(holiday.day) and holiday not in known
        ]
        added.update(new)
        holidays = [*version.holidays, *(CalendarHoliday.of(holiday) for holiday in new)]
        versions.append(version.model_copy(update={"holidays": holidays}))
    return definition.model_copy(update={"versions": versions}), len(added)
