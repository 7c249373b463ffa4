"""``GET /v0/quarantine/<datasource>.<format>``: rows rejected at ingestion and why."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from supportlens.analytics.pipes import MAX_OFFSET
from supportlens.analytics.quarantine import quarantined_rows
from supportlens.api.deps import Caller, caller, runtime
from supportlens.api.errors import ApiError
from supportlens.api.formats import FORMATS, render
from supportlens.ingest.service import FRESHDESK_QUARANTINE, QUARANTINE_SOURCES, TICKET_EVENTS_SOURCE

router = APIRouter(tags=["events"])


@router.get(
    "/v0/quarantine/{datasource}.{format}",
    summary="Rows of a datasource that failed validation, newest first",
    response_class=Response,
)
def get_quarantine(
    request: Request,
    datasource: str,
    format: str,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    who: Caller = Depends(caller),
) -> Response:
    if format not in FORMATS:
        raise ApiError(404, f"unknown format {format!r}; use one of {', '.join(sorted(FORMATS))}")
    if datasource not in QUARANTINE_SOURCES:
        raise ApiError(404, f"datasource {datasource!r} does not exist")
    # Rejected export activities were headed for the activity log.
    appended_to = TICKET_EVENTS_SOURCE if datasource == FRESHDESK_QUARANTINE else datasource
    if not who.token.can_append(appended_to):
        raise ApiError(403, f"reading the quarantine of {datasource!r} needs the admin or append scope")
    context = runtime(request).pipe_context(who.workspace)
    return render(quarantined_rows(context, datasource, limit=limit, offset=offset), format)
