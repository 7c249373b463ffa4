"""``POST /v1/imports/freshdesk-activities``: a Freshdesk ticket-activity export (seed 003)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from supportlens.api.deps import Caller, caller, runtime
from supportlens.api.errors import ApiError
from supportlens.api.events import read_body
from supportlens.ingest.freshdesk import FreshdeskFormatError
from supportlens.ingest.imports import ImportSummary, import_freshdesk_export
from supportlens.ingest.service import TICKET_EVENTS_SOURCE

router = APIRouter(tags=["imports"])


@router.post(
    "/v1/imports/freshdesk-activities",
    summary="Import a Freshdesk ticket-activity export (JSON with metadata and activities_data)",
    responses={
        200: {"description": "Imported and committed; counts of activities, events and rejections"},
        413: {"description": "File over the import size limit"},
        422: {"description": "Not a Freshdesk activities export"},
    },
)
async def import_freshdesk_activities(
    request: Request,
    file_name: str = Query("upload.json", description="Name recorded with the import."),
    who: Caller = Depends(caller),
) -> dict[str, object]:
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
    return {**asdict(summary), "count_matches": summary.count_matches}
