"""``/v1`` SLA policies of a workspace (tried in order; a default catches the rest, else the built-in
seed defaults) and one ticket's SLA status, shaped like seed 002's "Get SLA Status".

Writes need the admin scope, reads the read or admin scope; errors are problem details (api/errors.py).
Durations come twice: for people ("6 hours 15 minutes", whole minutes, negative once overdue) and in
minutes for machines.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from supportlens.analytics.common import conditions
from supportlens.analytics.sla_state import SlaSetup, evaluate_tickets
from supportlens.api.configuration import admin, reader
from supportlens.api.deps import Caller, runtime
from supportlens.api.errors import ApiError, invalid_field, problem_responses, repository_errors
from supportlens.auth.repository import NotFound
from supportlens.configuration.repository import ConfigurationRepository, StoredPolicy
from supportlens.configuration.sla import SlaPolicyDefinition
from supportlens.domain.metrics import MS_PER_MINUTE, human_duration, minutes
from supportlens.domain.sla import Escalation, TargetState, TargetStatus, TargetType, TicketSla
from supportlens.ingest.timestamps import TimestampError, parse_timestamp

router = APIRouter(tags=["sla"], responses=problem_responses(400, 401, 403, 422))


class SlaPolicy(SlaPolicyDefinition):
    id: str
    position: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, stored: StoredPolicy) -> SlaPolicy:
        return cls(
            id=stored.id,
            position=stored.position,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            **stored.definition.model_dump(),
        )


class SlaPolicyList(BaseModel):
    data: list[SlaPolicy]
    total: int


class PolicyOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str]


def _known_calendar(
    configuration: ConfigurationRepository, workspace_id: str, body: SlaPolicyDefinition
) -> None:
    """A policy's calendar must be one of the workspace's (422 on the field otherwise)."""
    if body.calendar_id is None:
        return
    try:
        configuration.calendar(workspace_id, body.calendar_id)
    except NotFound:
        raise invalid_field(
            ("body", "calendar_id"), f"no calendar {body.calendar_id!r} in this workspace"
        ) from None


# Policies

POLICY_EXAMPLES = {
    "network": {
        "summary": "Targets per priority, business-time resolution, two escalation levels",
        "value": {
            "name": "Enterprise network",
            "conditions": {"category": ["network"]},
            "targets": {
                "high": [
                    {"type": "first_response", "minutes": 120},
                    {"type": "resolution", "minutes": 480, "business_hours": True},
                ],
                "default": [{"type": "resolution", "minutes": 960}],
            },
            "escalations": [
                {"level": 1, "offset_minutes": -30, "actions": ["notify"]},
                {"level": 2, "offset_minutes": 0, "actions": ["reassign"]},
            ],
        },
    }
}
POLICY_BODY = Body(openapi_examples=POLICY_EXAMPLES)  # type: ignore[arg-type]


@router.get("/v1/sla-policies", summary="The workspace's SLA policies, in the order they are tried")
def list_policies(request: Request, who: Caller = Depends(reader)) -> SlaPolicyList:
    found = [SlaPolicy.of(p) for p in runtime(request).configuration.policies(who.workspace.id)]
    return SlaPolicyList(data=found, total=len(found))


@router.post(
    "/v1/sla-policies",
    status_code=201,
    summary="Create an SLA policy (tried after the existing ones)",
    responses=problem_responses(409),
)
def create_policy(
    request: Request,
    response: Response,
    definition: SlaPolicyDefinition = POLICY_BODY,
    who: Caller = Depends(admin),
) -> SlaPolicy:
    configuration = runtime(request).configuration
    _known_calendar(configuration, who.workspace.id, definition)
    with repository_errors():
        stored = configuration.create_policy(who.workspace.id, definition)
    response.headers["Location"] = f"/v1/sla-policies/{stored.id}"
    return SlaPolicy.of(stored)


@router.put("/v1/sla-policies/order", summary="Set the order in which the policies are tried")
def set_order(request: Request, body: PolicyOrder, who: Caller = Depends(admin)) -> SlaPolicyList:
    try:
        ordered = runtime(request).configuration.set_policy_order(who.workspace.id, body.ids)
    except ValueError as exc:
        raise invalid_field(("body", "ids"), str(exc)) from None
    found = [SlaPolicy.of(p) for p in ordered]
    return SlaPolicyList(data=found, total=len(found))


@router.get("/v1/sla-policies/{policy_id}", summary="One SLA policy", responses=problem_responses(404))
def get_policy(request: Request, policy_id: str, who: Caller = Depends(reader)) -> SlaPolicy:
    with repository_errors():
        return SlaPolicy.of(runtime(request).configuration.policy(who.workspace.id, policy_id))


@router.put(
    "/v1/sla-policies/{policy_id}",
    summary="Replace an SLA policy (its position stays)",
    responses=problem_responses(404, 409),
)
def replace_policy(
    request: Request,
    policy_id: str,
    definition: SlaPolicyDefinition = POLICY_BODY,
    who: Caller = Depends(admin),
) -> SlaPolicy:
    configuration = runtime(request).configuration
    with repository_errors():
        configuration.policy(who.workspace.id, policy_id)
        _known_calendar(configuration, who.workspace.id, definition)
        return SlaPolicy.of(configuration.replace_policy(who.workspace.id, policy_id, definition))


@router.delete(
    "/v1/sla-policies/{policy_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an SLA policy",
    responses=problem_responses(404),
)
def delete_policy(request: Request, policy_id: str, who: Caller = Depends(admin)) -> Response:
    with repository_errors():
        runtime(request).configuration.delete_policy(who.workspace.id, policy_id)
    return Response(status_code=204)


# One ticket's SLA


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _status(target: TargetState) -> str:
    """The seed's vocabulary: met, in_progress; plus missed (fulfilled late), overdue (running and
    breached) and paused."""
    match target.state:
        case TargetStatus.ACHIEVED:
            return "met"
        case TargetStatus.BREACHED:
            return "missed"
        case TargetStatus.PAUSED:
            return "paused"
    return "overdue" if target.breached else "in_progress"


def _target_block(target: TargetState | None, fulfilled: str) -> dict[str, Any] | None:
    if target is None:
        return None
    block: dict[str, Any] = {
        "target": human_duration(target.target_minutes * MS_PER_MINUTE),
        "target_minutes": target.target_minutes,
        "status": _status(target),
        "state": target.state.value,
        "breached": target.breached,
        "at_risk": target.at_risk,
        "business_hours": target.business_hours,
        "started_at": _iso(target.started_at),
        "due_at": _iso(target.due_at),
    }
    if target.completed_at is not None:
        block["actual"] = human_duration(target.elapsed_ms)
        block["actual_minutes"] = minutes(target.elapsed_ms)
        block[fulfilled] = _iso(target.completed_at)
    else:
        block["elapsed"] = human_duration(target.elapsed_ms)
        block["elapsed_minutes"] = minutes(target.elapsed_ms)
        block["time_remaining"] = human_duration(target.remaining_ms)
        block["remaining_minutes"] = minutes(target.remaining_ms)
    return block


def _reason(escalation: Escalation, sla: TicketSla) -> str:
    """Why a level fires, from its offset to the target's due time."""
    target = sla.target(escalation.target_type, escalation.instance)
    name = escalation.target_type.value.replace("_", " ")
    offset = (
        0
        if target is None or target.due_at is None
        else (escalation.fires_at - target.due_at) // timedelta(milliseconds=1)
    )
    if offset < 0:
        return f"Approaching SLA deadline ({name} due in {human_duration(-offset)})"
    if offset == 0:
        return f"SLA breached ({name})"
    return f"SLA overdue ({name} overdue by {human_duration(offset)})"


def _escalation_block(sla: TicketSla) -> dict[str, Any]:
    """The highest level fired so far (0: none), when and why it first fired, and the next one due."""
    fired = [e for e in sla.escalations if e.fired]
    coming = [e for e in sla.escalations if not e.fired]  # in firing order
    block: dict[str, Any] = {
        "current_level": 0,
        "escalated_at": None,
        "escalation_reason": None,
        "next_escalation": None,
    }
    if fired:
        top = max(e.level for e in fired)
        first = next(e for e in fired if e.level == top)
        block.update(
            current_level=top, escalated_at=_iso(first.fires_at), escalation_reason=_reason(first, sla)
        )
    if coming:
        following = coming[0]
        block["next_escalation"] = {
            "level": following.level,
            "at": _iso(following.fires_at),
            "target_type": following.target_type.value,
            "actions": list(following.actions),
        }
    return block


def _target_json(target: TargetState) -> dict[str, Any]:
    values = dataclasses.asdict(target)
    for name, value in values.items():
        if isinstance(value, datetime):
            values[name] = _iso(value)
    values["type"] = target.type.value
    values["state"] = target.state.value
    return values


@router.get(
    "/v1/support/tickets/{ticket_id}/sla",
    summary="One ticket's SLA status: response and resolution targets, next responses, escalation",
    description="Evaluated from the ticket's activity log, or for a ticket without one from its "
    "stored timestamps (creation, first response, resolution or last update).",
    responses=problem_responses(404, 408),
)
def ticket_sla_status(
    request: Request,
    ticket_id: str,
    as_of: str | None = Query(
        None, description="ISO 8601 evaluation instant (no offset: UTC); default: now."
    ),
    who: Caller = Depends(reader),
) -> dict[str, Any]:
    moment = datetime.now(UTC)
    if as_of is not None:
        try:
            moment = parse_timestamp(as_of)
        except TimestampError as exc:
            raise invalid_field(("query", "as_of"), str(exc)) from None
    context = runtime(request).pipe_context(who.workspace, who.token.fixed_filters)
    where = conditions(context)
    where.equals("ticket_id", ticket_id)
    setup = SlaSetup.of(context)
    found = evaluate_tickets(context, where, as_of=moment, setup=setup)
    if not found:
        raise ApiError(404, f"no ticket {ticket_id!r} in this workspace")
    ticket, sla = found[0].ticket, found[0].sla
    return {
        "sla_status": {
            "ticket_id": sla.ticket_id,
            "priority": ticket["priority"],
            "category": ticket["category"],
            "as_of": _iso(moment),
            "evaluated_from": "events" if found[0].has_events else "snapshot",
            "policy": {"id": sla.policy_id, "name": setup.policy_name(sla.policy_id)},
            "response_time": _target_block(sla.target(TargetType.FIRST_RESPONSE), "responded_at"),
            "resolution_time": _target_block(sla.target(TargetType.RESOLUTION), "resolved_at"),
            "next_responses": [
                _target_block(t, "responded_at") for t in sla.targets if t.type is TargetType.NEXT_RESPONSE
            ],
            "escalation": _escalation_block(sla),
            "targets": [_target_json(t) for t in sla.targets],
        }
    }
