"""``POST /v0/events``: the Events API (one JSON object, a JSON array or NDJSON; gzip allowed)."""

from __future__ import annotations

import asyncio
import zlib

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from supportlens.api.deps import Caller, caller, ingest_limiter, runtime
from supportlens.api.errors import ApiError, error_responses
from supportlens.ingest.service import DATASOURCES, IngestResult
from supportlens.ingest.writer import QueueFull

router = APIRouter(tags=["events"])


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in {"gzip", "x-gzip"}:
        decompressor = zlib.decompressobj(wbits=31)
        try:
            body = decompressor.decompress(body, limit + 1)
        except zlib.error as exc:
            raise ApiError(400, f"body is not valid gzip: {exc}") from None
        if len(body) > limit or decompressor.unconsumed_tail:
            raise ApiError(413, f"decompressed body is larger than {limit} bytes")
    elif encoding not in {"", "identity"}:
        raise ApiError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    return body


class IngestCounts(BaseModel):
    """Rows of the request that were accepted, and rows kept in quarantine with their reason."""

    successful_rows: int
    quarantined_rows: int


# Any body is taken: each JSON value (an array's elements, an NDJSON line) is a row, and a row that
# is not a valid record of the datasource (not even JSON) is quarantined, not refused.
EXAMPLE_TICKET = {
    "ticket_id": "T12345",
    "customer_id": "C789",
    "category": "billing",
    "priority": "high",
    "status": "resolved",
    "created_at": "2026-06-15 09:30:00",
    "first_response_at": "2026-06-15 09:45:00",
    "resolved_at": "2026-06-15 11:30:00",
    "satisfaction_score": 4,
    "tags": ["invoice"],
}
_BODY = {
    "requestBody": {
        "required": False,
        "description": "One JSON object, a JSON array of objects, or NDJSON (one object per line); "
        "gzip with 'Content-Encoding: gzip'. Rows that fail validation are quarantined "
        "(GET /v0/quarantine/<datasource>.json), not refused.",
        "content": {
            "application/json": {"schema": {}, "example": EXAMPLE_TICKET},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/v0/events",
    summary="Append rows to a datasource",
    response_model=None,
    openapi_extra=_BODY,
    responses={
        200: {"model": IngestCounts, "description": "Rows committed (wait=true)"},
        202: {"model": IngestCounts, "description": "Rows queued; written shortly and on shutdown"},
        **error_responses(400, 401, 403, 404, 413, 415, 429, 503),
    },
)
async def post_events(
    request: Request,
    name: str = Query(..., description="Datasource name", json_schema_extra={"enum": sorted(DATASOURCES)}),
    wait: bool = Query(False, description="Answer only once the rows are durably committed"),
    who: Caller = Depends(caller),
) -> JSONResponse:
    rt = runtime(request)
    if name not in DATASOURCES:
        raise ApiError(404, f"datasource {name!r} does not exist; known: {', '.join(sorted(DATASOURCES))}")
    if not who.token.can_append(name):
        raise ApiError(403, f"this token cannot append to {name!r}")
    body = await read_body(request, rt.settings.max_body_bytes)

    def ingest() -> IngestResult:
        return rt.ingest.ingest_payload(who.workspace.id, name, body)

    try:
        result = await to_thread.run_sync(ingest, limiter=ingest_limiter(request))
    except QueueFull as exc:
        raise ApiError(429, str(exc), headers={"Retry-After": "1"}) from None
    payload = {"successful_rows": result.successful_rows, "quarantined_rows": result.quarantined_rows}
    if wait:
        try:
            await asyncio.wrap_future(result.committed)
        except Exception as exc:  # the store refused the write: nothing was committed
            raise ApiError(503, f"the rows could not be written, retry: {exc}") from None
        return JSONResponse(payload, status_code=200)
    return JSONResponse(payload, status_code=202)
