"""``/v1`` configuration of a workspace: business calendars, which calendar each ticket group uses, custom
status names, and business-time checks for trying a calendar out.

Writes need the admin scope, reads the read or admin scope.  Errors are problem details (api/errors.py).

Changing the status names, or which calendar a ticket follows (a calendar's definition, the default,
a group's assignment), restates the workspace's stored tickets (what counts as resolved, the
business-time facts): the response comes once the restatement is queued with the single writer,
which does it in the background, a page of tickets at a time (docs/decisions.md, "Restating tickets
when status names change").
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from supportlens.api.deps import Caller, caller, runtime
from supportlens.api.errors import ApiError, invalid_field, problem_responses, repository_errors
from supportlens.api.events import read_body
from supportlens.auth.tokens import Scope
from supportlens.configuration.calendars import (
    CalendarDefinition,
    CalendarVersion,
    add_ical_holidays,
    schedule_name,
)
from supportlens.configuration.repository import ConfigurationRepository, StoredCalendar
from supportlens.domain.calendars import CalendarError, business_seconds, is_open
from supportlens.domain.statuses import StatusCategory
from supportlens.ingest.timestamps import TimestampError, parse_timestamp

router = APIRouter(tags=["configuration"], responses=problem_responses(400, 401, 403, 422))

# Business time is computed window by window: a bounded span keeps one request cheap.
MAX_SPAN = timedelta(days=3660)
_GROUP = Query(None, description="A ticket group: its calendar instead of the workspace default.")


def reader(who: Caller = Depends(caller)) -> Caller:
    if not who.token.scopes & {Scope.READ, Scope.ADMIN}:
        raise ApiError(403, "reading the configuration needs the read or admin scope")
    return who


def admin(who: Caller = Depends(caller)) -> Caller:
    if Scope.ADMIN not in who.token.scopes:
        raise ApiError(403, "changing the configuration needs the admin scope")
    return who


class Calendar(BaseModel):
    id: str
    name: str
    default: bool
    groups: list[str]
    versions: list[CalendarVersion]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, stored: StoredCalendar) -> Calendar:
        definition = stored.definition
        return cls(
            id=stored.id,
            name=definition.name,
            default=definition.default,
            groups=definition.groups,
            versions=definition.versions,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
        )


class CalendarList(BaseModel):
    data: list[Calendar]
    total: int


class IcalImport(BaseModel):
    calendar: Calendar
    holidays_added: int


class GroupCalendar(BaseModel):
    model_config = ConfigDict(extra="forbid")
    calendar_id: str


class GroupAssignment(BaseModel):
    group_id: str
    calendar_id: str


class StatusName(BaseModel):
    name: str
    category: StatusCategory
    custom: bool


class StatusNames(BaseModel):
    categories: list[StatusCategory]
    data: list[StatusName]
    total: int


class StatusNamesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    names: dict[str, StatusCategory]


class OpenCheck(BaseModel):
    at: datetime
    open: bool
    calendar: str


class BusinessTime(BaseModel):
    start: datetime
    end: datetime
    calendar: str
    business_minutes: float
    calendar_minutes: float


# Calendars

CALENDAR_EXAMPLES = {
    "office": {
        "summary": "Office hours with a lunch break and a half-day holiday",
        "value": {
            "name": "Berlin office",
            "timezone": "Europe/Berlin",
            "groups": ["G-DE"],
            "windows": [
                {"weekday": "monday", "start": "09:00", "end": "12:00"},
                {"weekday": "monday", "start": "13:00", "end": "17:30"},
                {"weekday": "friday", "start": "09:00", "end": "15:00"},
            ],
            "holidays": [{"date": "2026-12-24", "start": "12:00", "end": "24:00", "name": "Christmas Eve"}],
        },
    }
}
CALENDAR_BODY = Body(openapi_examples=CALENDAR_EXAMPLES)  # type: ignore[arg-type]


@router.get("/v1/calendars", summary="The workspace's business calendars")
def list_calendars(request: Request, who: Caller = Depends(reader)) -> CalendarList:
    found = [Calendar.of(stored) for stored in runtime(request).configuration.calendars(who.workspace.id)]
    return CalendarList(data=found, total=len(found))


@router.post(
    "/v1/calendars", status_code=201, summary="Create a business calendar", responses=problem_responses(409)
)
def create_calendar(
    request: Request,
    response: Response,
    definition: CalendarDefinition = CALENDAR_BODY,
    who: Caller = Depends(admin),
) -> Calendar:
    rt = runtime(request)
    with rt.calendar_change(who.workspace), repository_errors():
        stored = rt.configuration.create_calendar(who.workspace.id, definition)
    response.headers["Location"] = f"/v1/calendars/{stored.id}"
    return Calendar.of(stored)


@router.get("/v1/calendars/{calendar_id}", summary="One business calendar", responses=problem_responses(404))
def get_calendar(request: Request, calendar_id: str, who: Caller = Depends(reader)) -> Calendar:
    with repository_errors():
        return Calendar.of(runtime(request).configuration.calendar(who.workspace.id, calendar_id))


@router.put(
    "/v1/calendars/{calendar_id}",
    summary="Replace a business calendar (name, versions, groups)",
    responses=problem_responses(404, 409),
)
def replace_calendar(
    request: Request,
    calendar_id: str,
    definition: CalendarDefinition = CALENDAR_BODY,
    who: Caller = Depends(admin),
) -> Calendar:
    rt = runtime(request)
    with rt.calendar_change(who.workspace), repository_errors():
        stored = rt.configuration.replace_calendar(who.workspace.id, calendar_id, definition)
    return Calendar.of(stored)


@router.delete(
    "/v1/calendars/{calendar_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a calendar (the default only when it is the last one)",
    responses=problem_responses(404, 409),
)
def delete_calendar(request: Request, calendar_id: str, who: Caller = Depends(admin)) -> Response:
    rt = runtime(request)
    with rt.calendar_change(who.workspace), repository_errors():
        rt.configuration.delete_calendar(who.workspace.id, calendar_id)
    return Response(status_code=204)


@router.post(
    "/v1/calendars/{calendar_id}/default",
    summary="Make a calendar the workspace's default",
    responses=problem_responses(404),
)
def set_default(request: Request, calendar_id: str, who: Caller = Depends(admin)) -> Calendar:
    rt = runtime(request)
    with rt.calendar_change(who.workspace), repository_errors():
        rt.configuration.set_default_calendar(who.workspace.id, calendar_id)
        stored = rt.configuration.calendar(who.workspace.id, calendar_id)
    return Calendar.of(stored)


@router.post(
    "/v1/calendars/{calendar_id}/holidays/ical",
    summary="Add the holidays of an iCalendar file (Content-Type: text/calendar)",
    description="Each calendar version takes the holidays on dates its validity covers, read in its "
    "timezone; holidays it already has are skipped. Recurring events must be exported expanded.",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/calendar": {"schema": {"type": "string"}}}}
    },
    responses=problem_responses(404, 413, 415),
)
async def import_ical(request: Request, calendar_id: str, who: Caller = Depends(admin)) -> IcalImport:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "text/calendar":
        raise ApiError(415, "send the iCalendar file as the body with 'Content-Type: text/calendar'")
    rt = runtime(request)
    body = await read_body(request, rt.settings.max_body_bytes)

    def add() -> IcalImport:
        with rt.calendar_change(who.workspace), repository_errors():
            stored = rt.configuration.calendar(who.workspace.id, calendar_id)
            try:
                definition, added = add_ical_holidays(stored.definition, body)
            except CalendarError as exc:
                raise invalid_field(("body",), str(exc)) from None
            updated = rt.configuration.replace_calendar(who.workspace.id, calendar_id, definition)
            return IcalImport(calendar=Calendar.of(updated), holidays_added=added)

    return await run_in_threadpool(add)


@router.put(
    "/v1/groups/{group_id}/calendar",
    summary="Make a ticket group use a calendar",
    responses=problem_responses(404),
)
def assign_group(
    request: Request, group_id: str, body: GroupCalendar, who: Caller = Depends(admin)
) -> GroupAssignment:
    rt = runtime(request)
    with rt.calendar_change(who.workspace), repository_errors():
        try:
            rt.configuration.assign_group(who.workspace.id, group_id, body.calendar_id)
        except ValueError as exc:
            raise invalid_field(("path", "group_id"), str(exc)) from None
    return GroupAssignment(group_id=group_id.strip(), calendar_id=body.calendar_id)


# Status names


def _status_names(configuration: ConfigurationRepository, workspace_id: str) -> StatusNames:
    data = [
        StatusName(name=name, category=category, custom=custom)
        for name, category, custom in configuration.known_status_names(workspace_id)
    ]
    return StatusNames(categories=list(StatusCategory), data=data, total=len(data))


@router.get("/v1/status-categories", summary="Status names and their categories (defaults and custom)")
def get_status_categories(request: Request, who: Caller = Depends(reader)) -> StatusNames:
    return _status_names(runtime(request).configuration, who.workspace.id)


@router.put(
    "/v1/status-categories",
    summary="Replace the workspace's custom status names",
    description=(
        "Custom names win over the defaults; names are matched trimmed and case-insensitively. "
        "When the names change, the workspace's stored tickets are restated in the background "
        "(whether each counts as resolved, its resolved_at and resolution time)."
    ),
)
def put_status_categories(
    request: Request, body: StatusNamesUpdate, who: Caller = Depends(admin)
) -> StatusNames:
    rt = runtime(request)
    try:
        # Queued, not awaited: the writer restates the tickets and logs a failure.
        rt.set_status_names(who.workspace.id, body.names)
    except ValueError as exc:
        raise invalid_field(("body", "names"), str(exc)) from None
    return _status_names(rt.configuration, who.workspace.id)


# Business time


def _instant(name: str, value: str) -> datetime:
    try:
        return parse_timestamp(value)
    except TimestampError as exc:
        raise invalid_field(("query", name), str(exc)) from None


@router.get("/v1/business-hours/check", summary="Whether the business calendar is open at an instant")
def check_open(
    request: Request,
    at: str = Query(..., description="ISO 8601 instant; without an offset it is UTC."),
    group_id: str | None = _GROUP,
    who: Caller = Depends(reader),
) -> OpenCheck:
    instant = _instant("at", at)
    schedule = runtime(request).configuration.business_calendar(
        who.workspace.id, who.workspace.timezone, group_id
    )
    return OpenCheck(at=instant, open=is_open(schedule, instant), calendar=schedule_name(schedule))


@router.get("/v1/business-hours/between", summary="Business and calendar minutes between two instants")
def between(
    request: Request,
    start: str = Query(..., description="ISO 8601 instant; without an offset it is UTC."),
    end: str = Query(..., description="ISO 8601 instant, at most ten years after start."),
    group_id: str | None = _GROUP,
    who: Caller = Depends(reader),
) -> BusinessTime:
    first, last = _instant("start", start), _instant("end", end)
    if last < first:
        raise invalid_field(("query", "end"), "must not be before start")
    if last - first > MAX_SPAN:
        raise invalid_field(("query", "end"), "must be at most ten years after start")
    schedule = runtime(request).configuration.business_calendar(
        who.workspace.id, who.workspace.timezone, group_id
    )
    return BusinessTime(
        start=first,
        end=last,
        calendar=schedule_name(schedule),
        business_minutes=business_seconds(schedule, first, last) / 60,
        calendar_minutes=(last - first).total_seconds() / 60,
    )
