"""``/v1`` attachments: a ticket's files, sent inside JSON bodies in base64 (as the seed does, for
ticket create and comments: ``decode_inline``) or uploaded as multipart, listed per ticket and
downloaded at ``/v1/attachments/{id}`` with a token of the attachment's workspace.

Files larger than ``attachment_max_bytes`` answer 413; a file whose content is not what its
declared type says answers 422 naming the field (tickets/attachment_checks.py).  Errors are
problem details (api/errors.py).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from supportlens.api.body_limits import limited
from supportlens.api.deps import Caller, runtime, ticket_reader, ticket_writer
from supportlens.api.errors import ApiError, invalid_field, problem_responses, repository_errors
from supportlens.config import Settings
from supportlens.paths import field_path
from supportlens.tickets.attachment_checks import (
    AttachmentRejected,
    AttachmentTooLarge,
    CheckedFile,
    checked_file,
)
from supportlens.tickets.attachments import Attachment

router = APIRouter(tags=["attachments"], responses=problem_responses(401, 403, 404, 422))

# Room for a multipart body's boundaries and part headers around the file.
_MULTIPART_OVERHEAD = 64 * 1024


class AttachmentUpload(BaseModel):
    """A file inside a JSON body (ticket create, comments), as the seed sends it."""

    filename: str = Field(min_length=1, max_length=1024, examples=["network_diagnostics.pdf"])
    content_type: str = Field(min_length=1, max_length=255, examples=["application/pdf"])
    size: int | None = Field(
        None, ge=0, description="The file's size in bytes; when given, the data must decode to exactly it."
    )
    data: str = Field(min_length=1, description="The file's bytes in base64 (line breaks allowed).")


class AttachmentInfo(BaseModel):
    id: str
    ticket_id: str
    comment_id: str | None
    filename: str
    content_type: str
    size: int
    sha256: str
    download_url: str
    created_at: datetime

    @classmethod
    def of(cls, attachment: Attachment, request: Request) -> AttachmentInfo:
        return cls(
            id=attachment.id,
            ticket_id=attachment.ticket_id,
            comment_id=attachment.comment_id,
            filename=attachment.filename,
            content_type=attachment.content_type,
            size=attachment.size,
            sha256=attachment.sha256,
            download_url=str(request.url_for("download_attachment", attachment_id=attachment.id)),
            created_at=attachment.created_at,
        )


class AttachmentList(BaseModel):
    data: list[AttachmentInfo]
    total: int


@contextmanager
def attachment_errors(location: tuple[str | int, ...]) -> Iterator[None]:
    """A refused file as the client sees it: 413 past the size limit, else a 422 naming the field
    under ``location`` (``("body", "attachments", 0)`` names ``attachments[0].content_type``)."""
    try:
        yield
    except AttachmentTooLarge as exc:
        raise ApiError(413, f"{field_path((*location[1:], exc.field))}: {exc.message}") from None
    except AttachmentRejected as exc:
        raise invalid_field((*location, exc.field), exc.message) from None


def decode_inline(
    uploads: Sequence[AttachmentUpload],
    *,
    max_bytes: int,
    location: tuple[str | int, ...] = ("body", "attachments"),
) -> list[CheckedFile]:
    """The files of a JSON body, decoded and checked before anything is stored (so a bad file
    refuses the whole request): 422 naming ``attachments[i].<field>``, 413 past ``max_bytes``.
    Store them with ``runtime.attachments.put`` once the ticket (or comment) exists."""
    files = []
    for index, upload in enumerate(uploads):
        with attachment_errors((*location, index)):
            data = _base64(upload.data)
            if upload.size is not None and upload.size != len(data):
                raise AttachmentRejected("size", f"the data decodes to {len(data)} bytes, not {upload.size}")
            files.append(checked_file(upload.filename, upload.content_type, data, max_bytes=max_bytes))
    return files


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except ValueError as exc:  # binascii.Error, or a character outside ASCII
        raise AttachmentRejected("data", f"not valid base64: {exc}") from None


def json_body_limit(settings: Settings) -> int:
    """A JSON body that may carry attachments: the usual limit, plus one largest file in base64."""
    return settings.max_body_bytes + 4 * math.ceil(settings.attachment_max_bytes / 3)


class AttachmentBodyRoute(APIRoute):
    """For routes whose JSON body may carry base64 attachments (ticket create, comments): the body
    is read up to ``json_body_limit`` and refused with 413 beyond it, as it arrives.  Use it as
    ``APIRouter(route_class=AttachmentBodyRoute)`` or ``add_api_route(..., route_class_override=...)``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_limited(request: Request) -> Response:
            return await handle(limited(request, json_body_limit(runtime(request).settings)))

        return handle_limited


_BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/v1/attachments/{attachment_id}",
    name="download_attachment",
    summary="Download an attachment",
    description="The file as uploaded, with its declared type (text as UTF-8), for download "
    "(Content-Disposition: attachment).  Its ETag is its SHA-256: If-None-Match answers 304.",
    response_class=Response,
    responses={
        200: {
            "description": "The file",
            "content": {"*/*": _BINARY},
            "headers": {
                "ETag": {"description": "The file's SHA-256, quoted", "schema": {"type": "string"}},
                "Content-Disposition": {
                    "description": "attachment, with the file name",
                    "schema": {"type": "string"},
                },
            },
        },
        304: {"description": "The caller's copy (If-None-Match) is current"},
    },
)
def download_attachment(
    request: Request, attachment_id: str, who: Caller = Depends(ticket_reader)
) -> Response:
    rt = runtime(request)
    with repository_errors():
        attachment = rt.attachments.get(who.workspace.id, attachment_id)
        # A token held to some tickets (fixed filters) sees only their files.
        rt.tickets.get(who.workspace.id, attachment.ticket_id, fixed_filters=who.token.fixed_filters)
    etag = f'"{attachment.sha256}"'
    if _current(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return FileResponse(
        rt.attachments.content_path(attachment),
        media_type=attachment.content_type,
        filename=attachment.filename,
        headers={
            "ETag": etag,
            # Served as data, never as a page of this origin: no sniffing, no scripts.
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


def _current(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


@router.get(
    "/v1/support/tickets/{ticket_id}/attachments",
    summary="List a ticket's attachments",
    description="Every file of the ticket, its comments' included, oldest first.",
)
def list_attachments(
    request: Request, ticket_id: str, who: Caller = Depends(ticket_reader)
) -> AttachmentList:
    rt = runtime(request)
    with repository_errors():
        ticket = rt.tickets.get(who.workspace.id, ticket_id, fixed_filters=who.token.fixed_filters)
    attachments = rt.attachments.list_for_ticket(who.workspace.id, ticket.id)
    return AttachmentList(data=[AttachmentInfo.of(a, request) for a in attachments], total=len(attachments))


@router.post(
    "/v1/support/tickets/{ticket_id}/attachments",
    status_code=201,
    summary="Upload an attachment (multipart/form-data, field 'file')",
    description="The part's Content-Type is the file's declared type (application/octet-stream when "
    "absent) and must match its content.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": _BINARY["schema"]},
                    }
                }
            },
        }
    },
    responses=problem_responses(400, 413, 415, 422),
)
async def upload_attachment(
    request: Request, ticket_id: str, who: Caller = Depends(ticket_writer)
) -> AttachmentInfo:
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(415, "send the file as multipart/form-data, in the field 'file'")
    rt = runtime(request)
    workspace_id = who.workspace.id

    def find_ticket() -> str:
        with repository_errors():
            return rt.tickets.get(workspace_id, ticket_id, fixed_filters=who.token.fixed_filters).id

    found_id = await run_in_threadpool(find_ticket)  # before reading a file that may go nowhere
    max_bytes = rt.attachments.max_bytes
    async with limited(request, max_bytes + _MULTIPART_OVERHEAD).form(max_files=1) as form:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise invalid_field(
                ("body", "file"), "send the file as a file part (with a filename) named 'file'"
            )
        data = await part.read()

    def store() -> Attachment:
        with attachment_errors(("body", "file")):
            file = checked_file(
                part.filename or "",
                part.content_type or "application/octet-stream",
                data,
                max_bytes=max_bytes,
            )
        return rt.attachments.put(workspace_id, found_id, file)

    return AttachmentInfo.of(await run_in_threadpool(store), request)
