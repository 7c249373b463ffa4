"""``POST /v1/imports/freshdesk-activities``: a Freshdesk ticket-activity export (seed 003)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from supportlens.api.deps import Caller, caller, runtime
from supportlens.api.errors import ApiError, problem_responses
from supportlens.api.events import read_body
from supportlens.ingest.freshdesk import FreshdeskFormatError
from supportlens.ingest.imports import ImportSummary, import_freshdesk_export
from supportlens.ingest.service import TICKET_EVENTS_SOURCE

router = APIRouter(tags=["imports"])


class ImportResult(BaseModel):
    """Imported and committed: counts of activities, events and rejections (quarantined)."""

    file_name: str
    start_at: datetime | None
    end_at: datetime | None
    declared_activities: int | None
    activities: int
    imported_activities: int
    ignored_activities: int
    rejected_activities: int
    events: int
    count_matches: bool


_EXPORT = {
    "type": "object",
    "description": "A Freshdesk ticket-activity export; activities that cannot be read are quarantined "
    "(GET /v0/quarantine/freshdesk_activities.json), a file that is not an export is a 422.",
    "properties": {
        "metadata": {
            "type": ["object", "null"],
            "properties": {
                "start_at": {"type": ["string", "null"], "examples": ["01-06-2023 00:00:00 +0000"]},
                "end_at": {"type": ["string", "null"], "examples": ["30-06-2023 23:59:59 +0000"]},
                "activities_count": {"type": ["integer", "null"], "minimum": 0},
            },
        },
        "activities_data": {
            "type": "array",
            "items": {"description": "One activity (quarantined if unreadable)"},
        },
    },
    "required": ["activities_data"],
}


@router.post(
    "/v1/imports/freshdesk-activities",
    summary="Import a Freshdesk ticket-activity export (JSON with metadata and activities_data)",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _EXPORT}}}},
    responses=problem_responses(400, 401, 403, 413, 415, 422),
)
async def import_freshdesk_activities(
    request: Request,
    file_name: str = Query("upload.json", description="Name recorded with the import."),
    who: Caller = Depends(caller),
) -> ImportResult:
    rt = runtime(request)
    if not who.token.can_append(TICKET_EVENTS_SOURCE):
        raise ApiError(403, f"this token cannot append to {TICKET_EVENTS_SOURCE!r}")
    body = await read_body(request, rt.settings.max_import_bytes)

    def run() -> ImportSummary:
        summary, _ = import_freshdesk_export(
            rt.ingest, rt.engine, who.workspace.id, body, file_name=file_name
        )
        rt.record_import(who.workspace.id, summary)
        return summary

    try:
        summary = await run_in_threadpool(run)
    except FreshdeskFormatError as exc:
        raise ApiError(422, f"not a Freshdesk activities export: {exc}") from None
    return ImportResult(**asdict(summary), count_matches=summary.count_matches)
