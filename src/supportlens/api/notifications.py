"""``/v1/support/tickets/{ticket}/notify`` and ``.../notifications``: emailing or texting about a
ticket, and what became of each notification (docs/notifications.md).

Sending needs the tickets or admin scope, listing the read, tickets or admin scope."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from supportlens.api.deps import Caller, runtime, ticket_reader, ticket_writer
from supportlens.api.errors import ApiError, invalid_fields, problem_responses
from supportlens.api.tickets import (
    MAX_PAGE_SIZE,
    Pagination,
    page_of,
    ticket_errors,
)
from supportlens.json_values import JsonObject
from supportlens.notify.records import Channel, Notification, NotificationStatus, Outcome, Recipient
from supportlens.notify.service import (
    MAX_RECIPIENTS,
    ChannelNotConfigured,
    InvalidNotification,
    NotificationRequest,
)
from supportlens.notify.templates import CUSTOM, TEMPLATE_NAMES
from supportlens.runtime import Runtime
from supportlens.tickets.records import CommentRecord, TicketRecord

router = APIRouter(tags=["notifications"], responses=problem_responses(400, 401, 403, 404, 408, 422))

MAX_COMMENTS = 20  # the latest ones, when a notification includes the ticket's comments


class NotifyRecipient(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(None, max_length=320, description="For type email.")
    phone: str | None = Field(None, max_length=40, description="For type sms: '+' and the country code.")
    name: str | None = Field(None, max_length=200)
    role: str | None = Field(None, max_length=100, examples=["primary_contact"])


class NotifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Channel
    recipients: list[NotifyRecipient] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    template: str = Field(
        CUSTOM, max_length=100, description=f"One of {', '.join(TEMPLATE_NAMES)}; custom sends 'message'."
    )
    subject: str | None = Field(None, max_length=1000, description="Email only; replaces the template's.")
    message: str | None = Field(None, max_length=10_000, description="The text of the custom template.")
    variables: JsonObject = Field(
        default_factory=dict, description="Template variables; the ticket's fields are the defaults."
    )
    include_comments: bool = Field(
        False, description=f"Email only: list the ticket's {MAX_COMMENTS} latest comments."
    )
    comment_filter: Literal["customer_visible", "all"] = "customer_visible"


class RecipientOut(BaseModel):
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    role: str | None = None
    status: NotificationStatus
    provider_message_id: str | None = None
    error: str | None = None


class AttemptOut(BaseModel):
    number: int
    at: datetime
    outcome: Outcome
    error: str | None = None


class NotificationOut(BaseModel):
    id: str
    ticket_id: str
    type: Channel
    template: str
    recipients: list[RecipientOut]
    subject: str | None
    body: str
    status: NotificationStatus
    attempts: list[AttemptOut]
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="When the next retry is due (pending only).")
    created_at: datetime
    sent_at: datetime | None


class NotificationEnvelope(BaseModel):
    notification: NotificationOut


class NotificationPage(BaseModel):
    notifications: list[NotificationOut]
    pagination: Pagination


_EMAIL_EXAMPLE = {
    "type": "email",
    "recipients": [
        {"email": "john.smith@example.com", "name": "John Smith", "role": "primary_contact"},
        {"email": "it-team@example.com", "name": "IT Team", "role": "notification_list"},
    ],
    "template": "status_update",
    "subject": "Update on Network Connectivity Issue - Ticket #{{ ticket_number }}",
    "variables": {
        "customer_name": "John Smith",
        "status": "In Progress",
        "expected_resolution": "2024-11-01T20:00:00Z",
        "next_update": "2024-11-01T18:00:00Z",
    },
    "include_comments": True,
    "comment_filter": "customer_visible",
}
_SMS_EXAMPLE = {
    "type": "sms",
    "recipients": [{"phone": "+1-555-123-4567", "name": "John Smith"}],
    "message": "Update: Network issue #{{ ticket_number }} - Equipment replaced, testing in progress.",
}


@router.post(
    "/v1/support/tickets/{ticket_ref}/notify",
    status_code=201,
    summary="Email or text about a ticket (201: sent or failed for good; 202: a retry is scheduled)",
    responses={
        202: {"model": NotificationEnvelope, "description": "Accepted: the provider failed, a retry is due"},
        **problem_responses(409),
    },
)
def notify(
    request: Request,
    response: Response,
    ticket_ref: str,
    body: NotifyRequest = Body(
        openapi_examples={
            "email": {"summary": "Seed 002's email", "value": _EMAIL_EXAMPLE},
            "sms": {"summary": "Seed 002's SMS", "value": _SMS_EXAMPLE},
        }
    ),
    who: Caller = Depends(ticket_writer),
) -> NotificationEnvelope:
    rt = runtime(request)
    with ticket_errors():
        ticket = rt.tickets.get(who.workspace.id, ticket_ref, fixed_filters=who.token.fixed_filters)
    comments = _latest_comments(rt, who, ticket, body.comment_filter) if body.include_comments else []
    try:
        sent = rt.notifications.send(who.workspace.id, asdict(ticket), _request(body), comments)
    except ChannelNotConfigured as exc:
        raise ApiError(409, str(exc)) from None
    except InvalidNotification as exc:
        raise invalid_fields([(problem.loc, problem.message) for problem in exc.problems]) from None
    if sent.status is NotificationStatus.PENDING:
        response.status_code = 202
    return NotificationEnvelope(notification=_out(sent))


@router.get(
    "/v1/support/tickets/{ticket_ref}/notifications",
    summary="A ticket's notifications with every attempt, newest first",
)
def list_notifications(
    request: Request,
    ticket_ref: str,
    page: int = Query(1, ge=1, le=1_000_000),
    limit: int = Query(25, ge=1, le=MAX_PAGE_SIZE),
    who: Caller = Depends(ticket_reader),
) -> NotificationPage:
    rt = runtime(request)
    with ticket_errors():
        ticket = rt.tickets.get(who.workspace.id, ticket_ref, fixed_filters=who.token.fixed_filters)
    found = rt.notifications.of_ticket(who.workspace.id, ticket.id, page=page, limit=limit)
    return NotificationPage(
        notifications=[_out(n) for n in found.notifications], pagination=page_of(found.total, page, limit)
    )


def _request(body: NotifyRequest) -> NotificationRequest:
    return NotificationRequest(
        channel=body.type,
        recipients=[
            Recipient((r.email if body.type is Channel.EMAIL else r.phone) or "", r.name, r.role)
            for r in body.recipients
        ],
        template=body.template,
        subject=body.subject,
        message=body.message,
        variables=body.variables,
        include_comments=body.include_comments,
        comment_filter=body.comment_filter,
    )


def _latest_comments(
    rt: Runtime, who: Caller, ticket: TicketRecord, comment_filter: str
) -> list[dict[str, Any]]:
    """The ticket's latest ``MAX_COMMENTS`` comments, oldest first (as the listing pages them)."""
    visibility = "customer" if comment_filter == "customer_visible" else None

    def page(number: int) -> tuple[list[CommentRecord], int]:
        return rt.tickets.comments(
            who.workspace.id, ticket.id, visibility=visibility, page=number, limit=MAX_COMMENTS
        )

    found, total = page(1)
    if total > MAX_COMMENTS:  # the last page, and the one before when the last is short
        last = -(-total // MAX_COMMENTS)
        found = page(last - 1)[0] + page(last)[0]
    return [
        {
            "author_name": c.author_name,
            "created_at": c.created_at,
            "content": c.content,
            "visibility": c.visibility,
        }
        for c in found[-MAX_COMMENTS:]
    ]


def _out(notification: Notification) -> NotificationOut:
    email = notification.channel is Channel.EMAIL
    return NotificationOut(
        id=notification.id,
        ticket_id=notification.ticket_id,
        type=notification.channel,
        template=notification.template,
        recipients=[
            RecipientOut(
                email=d.recipient.address if email else None,
                phone=None if email else d.recipient.address,
                name=d.recipient.name,
                role=d.recipient.role,
                status=d.status,
                provider_message_id=d.provider_message_id,
                error=d.error,
            )
            for d in notification.deliveries
        ],
        subject=notification.subject,
        body=notification.body,
        status=notification.status,
        attempts=[
            AttemptOut(number=a.number, at=a.at, outcome=a.outcome, error=a.error)
            for a in notification.attempts
        ],
        last_error=notification.last_error,
        next_attempt_at=notification.next_attempt_at,
        created_at=notification.created_at,
        sent_at=notification.sent_at,
    )
