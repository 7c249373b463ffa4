"""``GET /v0/quarantine/<datasource>.<format>``: rows rejected at ingestion and why."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from supportlens.analytics.pipes import MAX_OFFSET
from supportlens.analytics.quarantine import COLUMNS, quarantined_rows
from supportlens.api.deps import Caller, caller, runtime
from supportlens.api.errors import ApiError
from supportlens.api.formats import FORMATS, render, result_responses
from supportlens.api.pipes import FORMAT
from supportlens.ingest.service import FRESHDESK_QUARANTINE, QUARANTINE_SOURCES, TICKET_EVENTS_SOURCE

router = APIRouter(tags=["events"])


@router.get(
    "/v0/quarantine/{datasource}.{format}",
    summary="Rows of a datasource that failed validation, newest first",
    description="Each row: when it arrived, the column at fault (empty when the row as a whole is "
    "unusable: not JSON, not an object), the reason, and `raw`, the row as received: an NDJSON line "
    "exactly as sent without its surrounding whitespace (bytes that are not UTF-8 read as U+FFFD), an "
    "element of a JSON array as compact JSON, a lone JSON object as sent; for `freshdesk_activities`, "
    "the activity as compact JSON. Needs the admin or append scope.",
    response_class=Response,
    responses=result_responses(COLUMNS),
)
def get_quarantine(
    request: Request,
    datasource: str = Path(json_schema_extra={"enum": sorted(QUARANTINE_SOURCES)}),
    format: str = FORMAT,
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
