"""``/v1/connections``: helpdesk connections (HubSpot, LiveChat, Freshdesk, Zendesk) of a workspace,
their syncs, run log and alerts; ``/v1/agent-aliases``: agent-name standardization.

Credentials are write-only: answers list which credentials are set, never their values.  Everything
here needs the admin scope.  A sync started through the API runs in the background (202); its run
appears in ``/runs`` at once and says how it went when it ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from supportlens.api.configuration import admin
from supportlens.api.deps import Caller, runtime
from supportlens.api.errors import ApiError, invalid_field, problem_responses, repository_errors
from supportlens.api.tickets import MAX_PAGE_SIZE, Pagination, page_of
from supportlens.connectors.aliases import Suggestion
from supportlens.connectors.options import shared_options
from supportlens.connectors.store import Alert, RunRecord, StoredConnection
from supportlens.json_values import JsonObject

router = APIRouter(tags=["connections"], responses=problem_responses(400, 401, 403, 404, 422))


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as America/Halifax)") from None
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Url = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^https?://[^\s]+$", max_length=500)]
Zone = Annotated[str, AfterValidator(_zone)]
Credentials = Annotated[dict[str, Annotated[str, StringConstraints(max_length=4000)]], Field(max_length=10)]


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True)]
    name: Name
    base_url: Url = Field(
        description="The API's base URL (e.g. https://api.hubapi.com, https://acme.zendesk.com)."
    )
    credentials: Credentials = Field(
        description='e.g. {"token": "..."}; stored encrypted, never shown again.'
    )
    schedule_hours: float = Field(default=4.0, gt=0, le=24 * 31, description="Sync every this many hours.")
    timezone: Zone = Field(default="UTC", description="Of source times without an offset.")
    options: JsonObject = Field(
        default_factory=dict,
        description="Status and priority maps, pipelines, ... (each connector's page); for every kind:"
        " retention_days (rolling window) and ticket_id_prefix (before every ticket id; set it before"
        " the first sync).",
    )
    enabled: bool = True


class ConnectionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    base_url: Url | None = None
    credentials: Credentials | None = None
    schedule_hours: float | None = Field(default=None, gt=0, le=24 * 31)
    timezone: Zone | None = None
    options: JsonObject | None = None
    enabled: bool | None = None


class ConnectionOut(BaseModel):
    id: str
    kind: str
    name: str
    base_url: str
    credentials_set: list[str]
    schedule_hours: float
    timezone: str
    options: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    consecutive_failures: int
    last_run_at: datetime | None
    last_success_at: datetime | None
    synced_until: datetime | None = Field(description="When the kept cursor was last advanced.")
    last_pruned_at: datetime | None = Field(description="When retention last went over its tickets.")
    running: bool

    @classmethod
    def of(cls, stored: StoredConnection) -> ConnectionOut:
        return cls(
            id=stored.id,
            kind=stored.kind,
            name=stored.name,
            base_url=stored.base_url,
            credentials_set=list(stored.credential_names),
            schedule_hours=stored.schedule_hours,
            timezone=stored.timezone,
            options=stored.options,
            enabled=stored.enabled,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            consecutive_failures=stored.consecutive_failures,
            last_run_at=stored.last_run_at,
            last_success_at=stored.last_success_at,
            synced_until=stored.cursor_at,
            last_pruned_at=stored.last_pruned_at,
            running=stored.running,
        )


class ConnectionList(BaseModel):
    data: list[ConnectionOut]
    total: int


class RunOut(BaseModel):
    id: str
    full: bool
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    pages: int
    fetched: int
    written: int
    quarantined: int
    requests: int
    retries: int
    throttled: int
    errors: list[str]
    removed: int = Field(description="Tickets removed by a retention pass (trigger retention).")

    @classmethod
    def of(cls, run: RunRecord) -> RunOut:
        return cls(
            id=run.id,
            full=run.full,
            trigger=run.trigger,
            status=run.status,
            started_at=run.started_at,
            finished_at=run.finished_at,
            pages=run.pages,
            fetched=run.fetched,
            written=run.written,
            quarantined=run.quarantined,
            requests=run.requests,
            retries=run.retries,
            throttled=run.throttled,
            errors=run.errors,
            removed=run.removed,
        )


class RunPage(BaseModel):
    runs: list[RunOut]
    pagination: Pagination


class SyncStarted(BaseModel):
    connection_id: str
    full: bool
    status: str = "started"


class AlertOut(BaseModel):
    id: str
    at: datetime
    consecutive_failures: int
    message: str
    delivered: list[str]

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        return cls(
            id=alert.id,
            at=alert.at,
            consecutive_failures=alert.failures,
            message=alert.message,
            delivered=list(alert.delivered),
        )


def _checked_options(options: dict[str, Any] | None) -> None:
    """The options every connector shares are checked when set (the others when a sync reads them)."""
    if options is None:
        return
    try:
        shared_options(options)
    except ValueError as exc:
        raise invalid_field(("body", "options"), str(exc)) from None


def _known_kind(request: Request, kind: str) -> None:
    known = runtime(request).sync.kinds()
    if kind not in known:
        raise invalid_field(
            ("body", "kind"), f"unknown kind {kind!r}; use one of {', '.join(known) or '(none)'}"
        )


@router.post(
    "/v1/connections", status_code=201, summary="Connect a helpdesk account", responses=problem_responses(409)
)
def create_connection(
    request: Request, body: ConnectionCreate, who: Caller = Depends(admin)
) -> ConnectionOut:
    _known_kind(request, body.kind)
    _checked_options(body.options)
    with repository_errors():
        stored = runtime(request).connections.create(
            who.workspace.id,
            kind=body.kind,
            name=body.name,
            base_url=body.base_url,
            credentials=body.credentials,
            schedule_hours=body.schedule_hours,
            timezone=body.timezone,
            options=body.options,
            enabled=body.enabled,
        )
    return ConnectionOut.of(stored)


@router.get("/v1/connections", summary="The workspace's helpdesk connections")
def list_connections(request: Request, who: Caller = Depends(admin)) -> ConnectionList:
    found = runtime(request).connections.connections(who.workspace.id)
    return ConnectionList(data=[ConnectionOut.of(c) for c in found], total=len(found))


@router.get("/v1/connections/{connection_id}", summary="One connection (by id or name)")
def get_connection(request: Request, connection_id: str, who: Caller = Depends(admin)) -> ConnectionOut:
    with repository_errors():
        return ConnectionOut.of(runtime(request).connections.get(who.workspace.id, connection_id))


@router.patch("/v1/connections/{connection_id}", summary="Change a connection (credentials: replaced)")
def change_connection(
    request: Request, connection_id: str, body: ConnectionChange, who: Caller = Depends(admin)
) -> ConnectionOut:
    _checked_options(body.options)
    changes = body.model_dump(exclude_unset=True, exclude={"credentials"})
    with repository_errors():
        stored = runtime(request).connections.update(
            who.workspace.id, connection_id, credentials=body.credentials, **changes
        )
    return ConnectionOut.of(stored)


@router.delete("/v1/connections/{connection_id}", status_code=204, summary="Remove a connection and its log")
def delete_connection(request: Request, connection_id: str, who: Caller = Depends(admin)) -> Response:
    with repository_errors():
        runtime(request).connections.delete(who.workspace.id, connection_id)
    return Response(status_code=204)


@router.post(
    "/v1/connections/{connection_id}/sync",
    status_code=202,
    summary="Sync now, in the background (full=true: backfill the whole rolling window)",
    responses=problem_responses(409),
)
def start_sync(
    request: Request,
    connection_id: str,
    full: bool = Query(False, description="Read everything again instead of continuing from the cursor."),
    who: Caller = Depends(admin),
) -> SyncStarted:
    rt = runtime(request)
    with repository_errors():
        stored = rt.connections.get(who.workspace.id, connection_id)
    if stored.running:
        raise ApiError(409, f"connection {stored.name!r} is already syncing")
    workspace_id = who.workspace.id

    rt.background.submit(rt.sync.run, workspace_id, stored.id, full=full, trigger="manual")
    return SyncStarted(connection_id=stored.id, full=full)


@router.get("/v1/connections/{connection_id}/runs", summary="The connection's sync runs, newest first")
def list_runs(
    request: Request,
    connection_id: str,
    page: int = Query(1, ge=1, le=1_000_000),
    limit: int = Query(20, ge=1, le=MAX_PAGE_SIZE),
    who: Caller = Depends(admin),
) -> RunPage:
    with repository_errors():
        runs, total = runtime(request).connections.runs(
            who.workspace.id, connection_id, page=page, limit=limit
        )
    return RunPage(runs=[RunOut.of(r) for r in runs], pagination=page_of(total, page, limit))


@router.get("/v1/connections/{connection_id}/alerts", summary="Alerts about repeated sync failures")
def list_alerts(request: Request, connection_id: str, who: Caller = Depends(admin)) -> list[AlertOut]:
    with repository_errors():
        return [AlertOut.of(a) for a in runtime(request).connections.alerts(who.workspace.id, connection_id)]


# Agent aliases


class AliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class SeenAgentOut(BaseModel):
    source: str
    id: str
    name: str | None
    email: str | None


class SuggestionOut(BaseModel):
    first: SeenAgentOut
    second: SeenAgentOut
    score: float = Field(description="How alike the names are, 0-100 (100: the same email).")

    @classmethod
    def of(cls, suggestion: Suggestion) -> SuggestionOut:
        def agent(seen: Any) -> SeenAgentOut:
            return SeenAgentOut(source=seen.source, id=seen.id, name=seen.name, email=seen.email)

        return cls(first=agent(suggestion.first), second=agent(suggestion.second), score=suggestion.score)


@router.get("/v1/agent-aliases", summary="The alias table: each name, email or id and its canonical agent")
def list_aliases(request: Request, who: Caller = Depends(admin)) -> dict[str, str]:
    return runtime(request).aliases.aliases(who.workspace.id)


@router.put("/v1/agent-aliases/{alias}", summary="Map a name, email or id to a canonical agent id")
def put_alias(request: Request, alias: str, body: AliasBody, who: Caller = Depends(admin)) -> dict[str, str]:
    try:
        runtime(request).aliases.set_alias(who.workspace.id, alias, body.agent_id)
    except ValueError as exc:
        raise invalid_field(("path", "alias"), str(exc)) from None
    return runtime(request).aliases.aliases(who.workspace.id)


@router.delete("/v1/agent-aliases/{alias}", status_code=204, summary="Remove an alias")
def delete_alias(request: Request, alias: str, who: Caller = Depends(admin)) -> Response:
    with repository_errors():
        runtime(request).aliases.remove_alias(who.workspace.id, alias)
    return Response(status_code=204)


@router.get(
    "/v1/agent-aliases/suggestions",
    summary="Agents seen by syncs that look like one person (alike names, same email), to confirm",
)
def alias_suggestions(request: Request, who: Caller = Depends(admin)) -> list[SuggestionOut]:
    return [SuggestionOut.of(s) for s in runtime(request).aliases.suggestions(who.workspace.id)]
