"""``/v1/support/tickets``: seed 002's ticket management API (create, read, update, resolve, close,
reopen, delete, search, comments, escalation, bulk changes, relationships, merging, history) and the
agents tickets are assigned to.

Writes need the ``tickets`` or ``admin`` scope, reads also accept ``read``; a token's fixed filters
apply to every ticket it names or lists.  Updates honour ``If-Match`` (412 when stale); answers carry
the ticket's ``ETag``.  Who acted is the token, or the agent named by an ``X-Agent-Id`` header.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from supportlens.analytics.sla_state import SlaSetup
from supportlens.api.attachments import AttachmentBodyRoute, AttachmentInfo, AttachmentUpload, decode_inline
from supportlens.api.deps import Caller, caller, runtime, ticket_reader, ticket_writer
from supportlens.api.errors import (
    ApiError,
    invalid_field,
    invalid_fields,
    problem_responses,
    repository_errors,
)
from supportlens.auth.tokens import Scope
from supportlens.domain.metrics import MS_PER_MINUTE, human_duration
from supportlens.domain.models import normalize_priority
from supportlens.domain.sla import TargetState, TargetStatus, TargetType, TicketSla
from supportlens.runtime import Runtime
from supportlens.tickets.changes import Actor
from supportlens.tickets.commands import (
    AgentBody,
    BulkRequest,
    Escalation,
    Merge,
    NewComment,
    NewTicket,
    Relationship,
    StatusNote,
    TicketChanges,
    TicketSettingsBody,
)
from supportlens.tickets.records import Agent, CommentRecord, HistoryEntry, TicketRecord, now_ms
from supportlens.tickets.repository import SortField, StaleVersion, TicketQuery, TicketSettings
from supportlens.tickets.service import FieldError

router = APIRouter(tags=["tickets"], responses=problem_responses(400, 401, 403, 404, 408, 422))

MAX_PAGE_SIZE = 200


def _admin(who: Caller = Depends(caller)) -> Caller:
    if Scope.ADMIN not in who.token.scopes:
        raise ApiError(403, "changing ticket settings and agents needs the admin scope")
    return who


def acting(who: Caller, agent_id: str | None) -> Actor:
    """The agent named by X-Agent-Id, else the token itself."""
    if agent_id and agent_id.strip():
        return Actor("agent", agent_id.strip()[:200])
    return Actor("agent", f"token:{who.token.id}", who.token.name)


AgentHeader = Annotated[
    str | None, Header(alias="X-Agent-Id", description="The agent acting (for history and replies).")
]
IfMatch = Annotated[str | None, Header(alias="If-Match", description="The ETag last read: 412 when stale.")]


@contextmanager
def ticket_errors() -> Iterator[None]:
    """Service outcomes as problem details: 404, 409, 412, 422 naming fields."""
    with repository_errors():
        try:
            yield
        except StaleVersion as exc:  # a Conflict, which repository_errors answers 409
            raise ApiError(412, str(exc)) from None
        except FieldError as exc:
            raise invalid_fields(exc.problems) from None


# Request bodies: the commands, plus files in base64 (seed 002)


class TicketBody(NewTicket):
    attachments: list[AttachmentUpload] = Field(default_factory=list, max_length=20)


class CommentBody(NewComment):
    attachments: list[AttachmentUpload] = Field(default_factory=list, max_length=20)


# Response shapes


class AssignedAgent(BaseModel):
    agent_id: str
    name: str | None = None
    email: str | None = None
    specialization: str | None = None


class TicketSlaSummary(BaseModel):
    """The ticket's targets from the SLA engine (null when its events are not evaluated yet)."""

    policy_id: str | None = None
    response_time: str | None = None
    resolution_time: str | None = None
    response_due: datetime | None = None
    resolution_due: datetime | None = None
    response_met: bool | None = None
    resolution_met: bool | None = None
    breached: bool = False
    escalated: bool = False
    escalation_level: int = 0
    escalation_reason: str | None = None


class SlaStatus(BaseModel):
    response_met: bool | None = None
    resolution_due: datetime | None = None
    time_remaining: str | None = None
    breached: bool = False


class TicketUrls(BaseModel):
    self: str
    sla: str
    comments: str
    history: str
    attachments: str


class TicketOut(BaseModel):
    id: str
    number: str
    title: str
    description: str | None
    status: str
    priority: str | None
    severity: str | None
    category: str | None
    subcategory: str | None
    created_at: datetime
    updated_at: datetime
    customer_id: str | None
    assigned_to: AssignedAgent | None
    group_id: str | None
    channel: str | None
    tags: list[str]
    contact: dict[str, Any] | None
    service_affected: str | None
    location: dict[str, Any] | None
    metadata: dict[str, Any]
    custom_fields: dict[str, Any]
    estimated_resolution: datetime | None
    escalation_level: int
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    merged_into: str | None
    version: int
    sla: TicketSlaSummary | None = None
    sla_status: SlaStatus | None = None
    urls: TicketUrls


class TicketEnvelope(BaseModel):
    ticket: TicketOut


class Pagination(BaseModel):
    total: int
    page: int
    limit: int
    pages: int


class TicketPage(BaseModel):
    tickets: list[TicketOut]
    pagination: Pagination


class Author(BaseModel):
    type: str
    id: str | None
    name: str | None


class CommentOut(BaseModel):
    id: str
    ticket_id: str
    content: str
    type: str
    visibility: str
    created_at: datetime
    author: Author
    metadata: dict[str, Any]
    attachments: list[AttachmentInfo] = Field(default_factory=list)


class CommentEnvelope(BaseModel):
    comment: CommentOut


class CommentPage(BaseModel):
    comments: list[CommentOut]
    pagination: Pagination


class HistoryItem(BaseModel):
    event_id: str
    type: str
    at: datetime
    actor: Author
    details: dict[str, Any]


class HistoryPage(BaseModel):
    ticket_id: str
    history: list[HistoryItem]
    pagination: Pagination


class BulkItem(BaseModel):
    ticket_id: str
    outcome: Literal["applied", "unchanged", "rejected"]
    error: str | None = None
    ticket: TicketOut | None = None


class BulkResult(BaseModel):
    applied: int
    unchanged: int
    rejected: int
    results: list[BulkItem]


class RelationshipsOut(BaseModel):
    ticket_id: str
    submitted_by: str | None = Field(description="The customer who submitted the ticket.")
    has_response: list[str] = Field(description="Ids of the ticket's comments, oldest first.")
    related_to: list[str]
    merged_into: str | None
    merged_from: list[str]


class MergeResult(BaseModel):
    merged: TicketOut
    into: TicketOut


class AgentOut(BaseModel):
    id: str
    name: str
    email: str | None
    specialization: str | None
    teams: list[str]
    active: bool


class AgentList(BaseModel):
    data: list[AgentOut]
    total: int


# Serialization


def _urls(request: Request, ticket_id: str) -> TicketUrls:
    base = str(request.base_url).rstrip("/") + f"/v1/support/tickets/{ticket_id}"
    return TicketUrls(
        self=base,
        sla=f"{base}/sla",
        comments=f"{base}/comments",
        history=f"{base}/history",
        attachments=f"{base}/attachments",
    )


def _assigned(agent_id: str | None, agents: dict[str, Agent]) -> AssignedAgent | None:
    if agent_id is None:
        return None
    known = agents.get(agent_id)
    if known is None:
        return AssignedAgent(agent_id=agent_id)
    return AssignedAgent(
        agent_id=agent_id, name=known.name, email=known.email, specialization=known.specialization
    )


def _minutes_text(target: TargetState | None) -> str | None:
    return None if target is None else human_duration(target.target_minutes * MS_PER_MINUTE)


def _met(target: TargetState | None) -> bool | None:
    if target is None or target.completed_at is None:
        return None
    return target.state is TargetStatus.ACHIEVED


def _sla_summary(record: TicketRecord, sla: TicketSla | None) -> TicketSlaSummary | None:
    if sla is None:
        return None
    response, resolution = sla.target(TargetType.FIRST_RESPONSE), sla.target(TargetType.RESOLUTION)
    return TicketSlaSummary(
        policy_id=sla.policy_id,
        response_time=_minutes_text(response),
        resolution_time=_minutes_text(resolution),
        response_due=None if response is None else response.due_at,
        resolution_due=None if resolution is None else resolution.due_at,
        response_met=_met(response),
        resolution_met=_met(resolution),
        breached=any(t.breached for t in sla.targets),
        escalated=record.escalation_level > 0,
        escalation_level=record.escalation_level,
        escalation_reason=record.escalation_reason,
    )


def _sla_status(sla: TicketSla | None) -> SlaStatus | None:
    """Seed 002's search-result summary: response met, resolution due, time remaining."""
    if sla is None:
        return None
    response, resolution = sla.target(TargetType.FIRST_RESPONSE), sla.target(TargetType.RESOLUTION)
    running = resolution is not None and resolution.completed_at is None
    return SlaStatus(
        response_met=_met(response),
        resolution_due=None if resolution is None else resolution.due_at,
        time_remaining=human_duration(resolution.remaining_ms) if running and resolution else None,
        breached=any(t.breached for t in sla.targets),
    )


def _slas(rt: Runtime, who: Caller, records: Sequence[TicketRecord]) -> dict[str, TicketSla]:
    """The tickets' SLA now, by the SLA engine with the workspace's policies and calendars."""
    if not records:
        return {}
    setup = SlaSetup.of(rt.pipe_context(who.workspace))
    return rt.tickets.slas(who.workspace.id, records, setup, as_of=now_ms())  # stored times are in ms


def _tickets_out(
    request: Request, who: Caller, records: Sequence[TicketRecord], *, summary: bool
) -> list[TicketOut]:
    rt = runtime(request)
    agent_ids = sorted({r.assigned_to for r in records if r.assigned_to})
    agents = {a.id: a for a in rt.tickets.repository.agents(who.workspace.id, agent_ids)}
    slas = _slas(rt, who, records)
    out = []
    for record in records:
        sla = slas.get(record.id)
        out.append(
            TicketOut(
                id=record.id,
                number=record.number,
                title=record.title,
                description=record.description,
                status=record.status,
                priority=record.priority,
                severity=record.severity,
                category=record.category,
                subcategory=record.subcategory,
                created_at=record.created_at,
                updated_at=record.updated_at,
                customer_id=record.customer_id,
                assigned_to=_assigned(record.assigned_to, agents),
                group_id=record.group_id,
                channel=record.channel,
                tags=list(record.tags),
                contact=record.contact,
                service_affected=record.service_affected,
                location=record.location,
                metadata=record.metadata,
                custom_fields=record.custom_fields,
                estimated_resolution=record.estimated_resolution,
                escalation_level=record.escalation_level,
                first_response_at=record.first_response_at,
                resolved_at=record.resolved_at,
                closed_at=record.closed_at,
                merged_into=record.merged_into,
                version=record.version,
                sla=None if summary else _sla_summary(record, sla),
                sla_status=_sla_status(sla) if summary else None,
                urls=_urls(request, record.id),
            )
        )
    return out


def _envelope(request: Request, response: Response, who: Caller, record: TicketRecord) -> TicketEnvelope:
    response.headers["ETag"] = record.etag
    return TicketEnvelope(ticket=_tickets_out(request, who, [record], summary=False)[0])


def page_of(total: int, page: int, limit: int) -> Pagination:
    return Pagination(total=total, page=page, limit=limit, pages=(total + limit - 1) // limit)


def _comment_out(comment: CommentRecord, attachments: list[AttachmentInfo] | None = None) -> CommentOut:
    return CommentOut(
        id=comment.id,
        ticket_id=comment.ticket_id,
        content=comment.content,
        type=comment.type,
        visibility=comment.visibility,
        created_at=comment.created_at,
        author=Author(type=comment.author_type, id=comment.author_id, name=comment.author_name),
        metadata=comment.metadata,
        attachments=attachments or [],
    )


def _comments_out(request: Request, who: Caller, comments: Sequence[CommentRecord]) -> list[CommentOut]:
    files = runtime(request).attachments.list_for_comments(who.workspace.id, [c.id for c in comments])
    return [_comment_out(c, [AttachmentInfo.of(a, request) for a in files.get(c.id, [])]) for c in comments]


def _history_item(entry: HistoryEntry) -> HistoryItem:
    return HistoryItem(
        event_id=entry.event_id,
        type=entry.type,
        at=entry.at,
        actor=Author(type=entry.actor_type or "system", id=entry.actor_id, name=None),
        details=entry.details,
    )


# Search


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str | None = None
    status: str | list[str] | None = None
    priority: str | list[str] | None = None
    category: str | list[str] | None = None
    assigned_to: str | list[str] | None = None
    group_id: str | list[str] | None = None
    channel: str | list[str] | None = None
    tags: list[str] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    q: str | None = Field(default=None, max_length=500, description="Words of the title or description.")


class SearchSort(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: SortField = "created_at"
    order: Literal["asc", "desc"] = "desc"


class SearchPagination(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: int = Field(default=1, ge=1, le=1_000_000)
    limit: int = Field(default=25, ge=1, le=MAX_PAGE_SIZE)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filters: SearchFilters = Field(default_factory=SearchFilters)
    sort: SearchSort = Field(default_factory=SearchSort)
    pagination: SearchPagination = Field(default_factory=SearchPagination)


def _listed(value: str | list[str] | None, *, fold: bool = True) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else list(value or [])
    split = [part.strip() for item in values for part in item.split(",") if part.strip()]
    return tuple(part.lower() if fold else part for part in split)


def _aware(moment: datetime | None) -> datetime | None:
    """No offset means UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _query(body: SearchRequest) -> TicketQuery:
    filters = body.filters

    return TicketQuery(
        customer_id=filters.customer_id,
        status=_listed(filters.status),
        priority=tuple(p for p in (normalize_priority(v) for v in _listed(filters.priority)) if p),
        category=_listed(filters.category),
        assigned_to=_listed(filters.assigned_to, fold=False),
        group_id=_listed(filters.group_id, fold=False),
        channel=_listed(filters.channel),
        tags=tuple(filters.tags or ()),
        created_after=_aware(filters.created_after),
        created_before=_aware(filters.created_before),
        updated_after=_aware(filters.updated_after),
        text=filters.q,
        sort=body.sort.field,
        descending=body.sort.order == "desc",
        page=body.pagination.page,
        limit=body.pagination.limit,
    )


def _search(request: Request, who: Caller, body: SearchRequest) -> TicketPage:
    rt = runtime(request)
    query = _query(body)
    records, total = rt.tickets.search(who.workspace.id, query, fixed_filters=who.token.fixed_filters)
    return TicketPage(
        tickets=_tickets_out(request, who, records, summary=True),
        pagination=page_of(total, query.page, query.limit),
    )


def search_query(
    customer_id: str | None = Query(None),
    status: list[str] | None = Query(None, description="One or more (repeat or comma-separate)."),
    priority: list[str] | None = Query(None),
    category: list[str] | None = Query(None),
    assigned_to: list[str] | None = Query(None, description="Agent ids."),
    group_id: list[str] | None = Query(None),
    channel: list[str] | None = Query(None),
    tags: list[str] | None = Query(None, description="Any of these tags."),
    created_after: datetime | None = Query(None),
    created_before: datetime | None = Query(None),
    updated_after: datetime | None = Query(None),
    q: str | None = Query(None, max_length=500, description="Words of the title or description."),
    sort: SortField = Query("created_at"),
    order: Literal["asc", "desc"] = Query("desc"),
    page: int = Query(1, ge=1, le=1_000_000),
    limit: int = Query(25, ge=1, le=MAX_PAGE_SIZE),
) -> SearchRequest:
    return SearchRequest(
        filters=SearchFilters(
            customer_id=customer_id,
            status=status,
            priority=priority,
            category=category,
            assigned_to=assigned_to,
            group_id=group_id,
            channel=channel,
            tags=tags,
            created_after=created_after,
            created_before=created_before,
            updated_after=updated_after,
            q=q,
        ),
        sort=SearchSort(field=sort, order=order),
        pagination=SearchPagination(page=page, limit=limit),
    )


@router.get("/v1/support/tickets", summary="List and filter tickets (seed 002's customer tickets query)")
def list_tickets(
    request: Request, body: SearchRequest = Depends(search_query), who: Caller = Depends(ticket_reader)
) -> TicketPage:
    return _search(request, who, body)


@router.get(
    "/v1/support/tickets/search", summary="Search tickets with query parameters (as GET /v1/support/tickets)"
)
def search_tickets_get(
    request: Request, body: SearchRequest = Depends(search_query), who: Caller = Depends(ticket_reader)
) -> TicketPage:
    return _search(request, who, body)


@router.post(
    "/v1/support/tickets/search", summary="Advanced search: seed 002's filters, sort and pagination body"
)
def search_tickets(request: Request, body: SearchRequest, who: Caller = Depends(ticket_reader)) -> TicketPage:
    return _search(request, who, body)


# Tickets

_TICKET_EXAMPLE = {
    "title": "Network connectivity issues in San Francisco office",
    "description": "Users in our SF office are experiencing intermittent connectivity issues.",
    "customer_id": "cust_1234567890",
    "contact": {"name": "John Smith", "email": "john.smith@example.com", "phone": "+1-555-123-4567"},
    "category": "network",
    "subcategory": "connectivity",
    "priority": "high",
    "severity": "business_impacting",
    "service_affected": "mpls_network",
    "location": {"site_id": "site_sf_001", "timezone": "America/Los_Angeles"},
    "metadata": {"affected_users": 25},
}


def create_ticket(
    request: Request,
    response: Response,
    body: TicketBody = Body(openapi_examples={"seed": {"summary": "Seed 002", "value": _TICKET_EXAMPLE}}),
    agent_id: AgentHeader = None,
    who: Caller = Depends(ticket_writer),
) -> TicketEnvelope:
    rt = runtime(request)
    files = decode_inline(body.attachments, max_bytes=rt.attachments.max_bytes)
    with ticket_errors():
        record = rt.tickets.create(who.workspace.id, body, actor=acting(who, agent_id), files=files)
    response.headers["Location"] = f"/v1/support/tickets/{record.id}"
    return _envelope(request, response, who, record)


# Declared here, after the search routes, so that /search is not taken for a ticket reference;
# its body may carry files, hence the larger body limit of AttachmentBodyRoute.
router.add_api_route(
    "/v1/support/tickets",
    create_ticket,
    methods=["POST"],
    status_code=201,
    summary="Create a ticket (routed by the workspace's rules; SLA due times from the SLA engine)",
    responses=problem_responses(409, 413),
    route_class_override=AttachmentBodyRoute,
)


@router.get("/v1/support/tickets/{ticket_ref}", summary="One ticket, by id or number")
def get_ticket(
    request: Request, response: Response, ticket_ref: str, who: Caller = Depends(ticket_reader)
) -> TicketEnvelope:
    with ticket_errors():
        record = runtime(request).tickets.get(
            who.workspace.id, ticket_ref, fixed_filters=who.token.fixed_filters
        )
    return _envelope(request, response, who, record)


def _update(
    request: Request,
    response: Response,
    ticket_ref: str,
    body: TicketChanges,
    who: Caller,
    agent_id: str | None,
    if_match: str | None,
) -> TicketEnvelope:
    with ticket_errors():
        record = runtime(request).tickets.update(
            who.workspace.id,
            ticket_ref,
            body,
            actor=acting(who, agent_id),
            if_match=if_match,
            fixed_filters=who.token.fixed_filters,
        )
    return _envelope(request, response, who, record)


_UPDATE_DOC = {
    "summary": "Change a ticket: only the fields sent change",
    "responses": problem_responses(409, 412),
}


@router.put("/v1/support/tickets/{ticket_ref}", **_UPDATE_DOC)  # type: ignore[arg-type]
def put_ticket(
    request: Request,
    response: Response,
    ticket_ref: str,
    body: TicketChanges,
    agent_id: AgentHeader = None,
    if_match: IfMatch = None,
    who: Caller = Depends(ticket_writer),
) -> TicketEnvelope:
    return _update(request, response, ticket_ref, body, who, agent_id, if_match)


@router.patch("/v1/support/tickets/{ticket_ref}", **_UPDATE_DOC)  # type: ignore[arg-type]
def patch_ticket(
    request: Request,
    response: Response,
    ticket_ref: str,
    body: TicketChanges,
    agent_id: AgentHeader = None,
    if_match: IfMatch = None,
    who: Caller = Depends(ticket_writer),
) -> TicketEnvelope:
    return _update(request, response, ticket_ref, body, who, agent_id, if_match)


def _transition(target: str, summary: str) -> None:
    def handler(
        request: Request,
        response: Response,
        ticket_ref: str,
        body: StatusNote | None = None,
        agent_id: AgentHeader = None,
        if_match: IfMatch = None,
        who: Caller = Depends(ticket_writer),
    ) -> TicketEnvelope:
        with ticket_errors():
            record = runtime(request).tickets.set_status(
                who.workspace.id,
                ticket_ref,
                target,
                body or StatusNote(),
                actor=acting(who, agent_id),
                if_match=if_match,
                fixed_filters=who.token.fixed_filters,
            )
        return _envelope(request, response, who, record)

    verb = {"resolved": "resolve", "closed": "close", "open": "reopen"}[target]
    handler.__name__ = f"{verb}_ticket"
    router.post(
        f"/v1/support/tickets/{{ticket_ref}}/{verb}", summary=summary, responses=problem_responses(409, 412)
    )(handler)


_transition("resolved", "Resolve a ticket (409 when it already is)")
_transition("closed", "Close a ticket (409 when it already is)")
_transition("open", "Reopen a resolved or closed ticket (409 otherwise)")


@router.delete(
    "/v1/support/tickets/{ticket_ref}",
    status_code=204,
    summary="Soft-delete a ticket: gone from every list; its number is never reused",
    responses=problem_responses(412),
)
def delete_ticket(
    request: Request,
    ticket_ref: str,
    agent_id: AgentHeader = None,
    if_match: IfMatch = None,
    who: Caller = Depends(ticket_writer),
) -> Response:
    with ticket_errors():
        runtime(request).tickets.delete(
            who.workspace.id,
            ticket_ref,
            actor=acting(who, agent_id),
            if_match=if_match,
            fixed_filters=who.token.fixed_filters,
        )
    return Response(status_code=204)


# Comments


def add_comment(
    request: Request, ticket_ref: str, body: CommentBody, who: Caller = Depends(ticket_writer)
) -> CommentEnvelope:
    rt = runtime(request)
    files = decode_inline(body.attachments, max_bytes=rt.attachments.max_bytes)
    with ticket_errors():
        _, comment = rt.tickets.comment(
            who.workspace.id, ticket_ref, body, files=files, fixed_filters=who.token.fixed_filters
        )
    return CommentEnvelope(comment=_comments_out(request, who, [comment])[0])


router.add_api_route(
    "/v1/support/tickets/{ticket_ref}/comments",
    add_comment,
    methods=["POST"],
    status_code=201,
    summary="Add a comment: an agent's customer-visible comment is a reply; internal ones are notes",
    responses=problem_responses(413),
    route_class_override=AttachmentBodyRoute,
)


@router.get("/v1/support/tickets/{ticket_ref}/comments", summary="A ticket's comments, oldest first")
def list_comments(
    request: Request,
    ticket_ref: str,
    visibility: Literal["customer", "internal"] | None = Query(None),
    page: int = Query(1, ge=1, le=1_000_000),
    limit: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
    who: Caller = Depends(ticket_reader),
) -> CommentPage:
    with ticket_errors():
        comments, total = runtime(request).tickets.comments(
            who.workspace.id,
            ticket_ref,
            visibility=visibility,
            page=page,
            limit=limit,
            fixed_filters=who.token.fixed_filters,
        )
    return CommentPage(comments=_comments_out(request, who, comments), pagination=page_of(total, page, limit))


# Escalation, bulk, relationships, merging, history


@router.post(
    "/v1/support/tickets/{ticket_ref}/escalate",
    summary="Raise a ticket's escalation level, record why and notify",
    responses=problem_responses(409),
)
def escalate_ticket(
    request: Request,
    response: Response,
    ticket_ref: str,
    body: Escalation,
    agent_id: AgentHeader = None,
    who: Caller = Depends(ticket_writer),
) -> TicketEnvelope:
    with ticket_errors():
        record = runtime(request).tickets.escalate(
            who.workspace.id,
            ticket_ref,
            body,
            actor=acting(who, agent_id),
            fixed_filters=who.token.fixed_filters,
        )
    return _envelope(request, response, who, record)


@router.post(
    "/v1/support/tickets/bulk",
    summary="Change status, priority, assignee or tags of up to 1,000 tickets, each on its own",
)
def bulk_change(
    request: Request, body: BulkRequest, agent_id: AgentHeader = None, who: Caller = Depends(ticket_writer)
) -> BulkResult:
    outcomes = runtime(request).tickets.bulk(
        who.workspace.id, body, actor=acting(who, agent_id), fixed_filters=who.token.fixed_filters
    )
    changed = [o.ticket for o in outcomes if o.ticket is not None and o.outcome == "applied"]
    shown = {t.id: t for t in _tickets_out(request, who, changed, summary=True)}
    results = [
        BulkItem(ticket_id=o.ticket_id, outcome=o.outcome, error=o.error, ticket=shown.get(o.ticket_id))  # type: ignore[arg-type]
        for o in outcomes
    ]
    counts = {
        kind: sum(1 for o in outcomes if o.outcome == kind) for kind in ("applied", "unchanged", "rejected")
    }
    return BulkResult(**counts, results=results)


@router.get(
    "/v1/support/tickets/{ticket_ref}/relationships", summary="submitted_by, has_response, related_to, merges"
)
def relationships(
    request: Request, ticket_ref: str, who: Caller = Depends(ticket_reader)
) -> RelationshipsOut:
    rt = runtime(request)
    with ticket_errors():
        ticket = rt.tickets.get(who.workspace.id, ticket_ref, fixed_filters=who.token.fixed_filters)
    links = rt.tickets.repository.relationships(who.workspace.id, ticket.id)
    comments, _ = rt.tickets.repository.comments(
        who.workspace.id, ticket.id, visibility=None, page=1, limit=10_000
    )
    return RelationshipsOut(
        ticket_id=ticket.id,
        submitted_by=ticket.customer_id,
        has_response=[c.id for c in comments],
        related_to=[t if s == ticket.id else s for kind, s, t, _ in links if kind == "related_to"],
        merged_into=ticket.merged_into,
        merged_from=[s for kind, s, t, _ in links if kind == "merged_into" and t == ticket.id],
    )


@router.post(
    "/v1/support/tickets/{ticket_ref}/relationships",
    status_code=201,
    summary="Relate two tickets (related_to, both ways)",
    responses=problem_responses(409),
)
def relate(
    request: Request,
    ticket_ref: str,
    body: Relationship,
    agent_id: AgentHeader = None,
    who: Caller = Depends(ticket_writer),
) -> RelationshipsOut:
    with ticket_errors():
        runtime(request).tickets.relate(
            who.workspace.id,
            ticket_ref,
            body.ticket_id,
            actor=acting(who, agent_id),
            fixed_filters=who.token.fixed_filters,
        )
    return relationships(request, ticket_ref, who)


@router.delete(
    "/v1/support/tickets/{ticket_ref}/relationships/{other_ref}",
    status_code=204,
    summary="Remove a related_to relationship",
)
def unrelate(
    request: Request, ticket_ref: str, other_ref: str, who: Caller = Depends(ticket_writer)
) -> Response:
    with ticket_errors():
        if not runtime(request).tickets.unrelate(
            who.workspace.id, ticket_ref, other_ref, fixed_filters=who.token.fixed_filters
        ):
            raise ApiError(404, f"tickets {ticket_ref!r} and {other_ref!r} are not related")
    return Response(status_code=204)


@router.post(
    "/v1/support/tickets/{ticket_ref}/merge",
    summary="Merge this (duplicate) ticket into another: it is closed and points at the survivor",
    responses=problem_responses(409),
)
def merge(
    request: Request,
    ticket_ref: str,
    body: Merge,
    agent_id: AgentHeader = None,
    who: Caller = Depends(ticket_writer),
) -> MergeResult:
    with ticket_errors():
        merged, into = runtime(request).tickets.merge(
            who.workspace.id,
            ticket_ref,
            body,
            actor=acting(who, agent_id),
            fixed_filters=who.token.fixed_filters,
        )
    shown = _tickets_out(request, who, [merged, into], summary=False)
    return MergeResult(merged=shown[0], into=shown[1])


@router.get(
    "/v1/support/tickets/{ticket_ref}/history", summary="Every event of the ticket with actor and time"
)
def history(
    request: Request,
    ticket_ref: str,
    page: int = Query(1, ge=1, le=1_000_000),
    limit: int = Query(100, ge=1, le=1000),
    who: Caller = Depends(ticket_reader),
) -> HistoryPage:
    rt = runtime(request)
    with ticket_errors():
        ticket = rt.tickets.get(who.workspace.id, ticket_ref, fixed_filters=who.token.fixed_filters)
        entries, total = rt.tickets.history(who.workspace.id, ticket.id, page=page, limit=limit)
    return HistoryPage(
        ticket_id=ticket.id,
        history=[_history_item(e) for e in entries],
        pagination=page_of(total, page, limit),
    )


# Settings and agents


@router.get("/v1/support/settings", summary="Ticket numbering prefix and reopening rule")
def get_settings(request: Request, who: Caller = Depends(ticket_reader)) -> TicketSettingsBody:
    rt = runtime(request)
    found = rt.tickets.repository.settings(who.workspace.id, rt.tickets.settings_prefix(who.workspace.id))
    return TicketSettingsBody(prefix=found.prefix, reopen_on_customer_reply=found.reopen_on_customer_reply)


@router.put("/v1/support/settings", summary="Set the ticket numbering prefix and reopening rule")
def put_settings(
    request: Request, body: TicketSettingsBody, who: Caller = Depends(_admin)
) -> TicketSettingsBody:
    runtime(request).tickets.repository.set_settings(
        who.workspace.id, TicketSettings(body.prefix, body.reopen_on_customer_reply)
    )
    return body


def _agent_out(agent: Agent) -> AgentOut:
    return AgentOut(
        id=agent.id,
        name=agent.name,
        email=agent.email,
        specialization=agent.specialization,
        teams=list(agent.teams),
        active=agent.active,
    )


@router.get("/v1/support/agents", summary="The workspace's agents")
def list_agents(request: Request, who: Caller = Depends(ticket_reader)) -> AgentList:
    agents = runtime(request).tickets.repository.agents(who.workspace.id)
    return AgentList(data=[_agent_out(a) for a in agents], total=len(agents))


@router.put("/v1/support/agents/{agent_id}", summary="Create or replace an agent (teams: for team routing)")
def put_agent(request: Request, agent_id: str, body: AgentBody, who: Caller = Depends(_admin)) -> AgentOut:
    if not agent_id.strip() or len(agent_id) > 200:
        raise invalid_field(("path", "agent_id"), "must be 1-200 characters")
    agent = Agent(agent_id, body.name, body.email, body.specialization, tuple(body.teams), body.active)
    runtime(request).tickets.repository.put_agent(who.workspace.id, agent)
    return _agent_out(agent)


@router.delete("/v1/support/agents/{agent_id}", status_code=204, summary="Remove an agent")
def delete_agent(request: Request, agent_id: str, who: Caller = Depends(_admin)) -> Response:
    with repository_errors():
        runtime(request).tickets.repository.delete_agent(who.workspace.id, agent_id)
    return Response(status_code=204)
