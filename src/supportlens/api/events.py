"""``POST /v0/events``: the Events API (one JSON object, a JSON array or NDJSON; gzip allowed)."""

from __future__ import annotations

import asyncio
import zlib

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from supportlens.api.deps import Caller, caller, runtime
from supportlens.api.errors import ApiError
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


@router.post(
    "/v0/events",
    summary="Append rows to a datasource",
    responses={
        200: {"description": "Rows committed (wait=true)"},
        202: {"description": "Rows queued; written shortly and on shutdown"},
        413: {"description": "Body over the size limit"},
        429: {"description": "Write queue full; retry"},
    },
)
async def post_events(
    request: Request,
    name: str = Query(..., description="Datasource name, e.g. support_tickets"),
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
        result = await run_in_threadpool(ingest)
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
