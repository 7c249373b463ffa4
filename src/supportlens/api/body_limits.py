"""A request body counted as it arrives: refused with 413 once it passes a limit (or announces more
in Content-Length), before more than that is in memory or on disk.  For bodies read by FastAPI (a
pydantic body) or by Starlette's form parser, which have no limit of their own."""

from __future__ import annotations

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.types import Message


def limited(request: Request, limit: int) -> Request:
    """The request, reading its body through a channel that answers 413 past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
        return message

    return Request(request.scope, receive)


def _too_large(limit: int) -> HTTPException:
    # Starlette's HTTPException: FastAPI passes it on while it reads a body (another error would
    # become its 400 "error parsing the body"); the error handlers answer it as problem details.
    return HTTPException(413, f"request body is larger than {limit} bytes")
