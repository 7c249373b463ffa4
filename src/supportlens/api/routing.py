"""``/v1/support/categories`` and ``/v1/support/routing-rules`` (seed 002, "Categories and Routing"):
support categories with their subcategories and SLA targets, and the rules that route tickets when
they are created or changed (docs/routing.md).

Writes need the admin scope, reads the read, tickets or admin scope.  Durations are accepted as the
seed writes them ("2 hours", "1 hour 30 minutes", "1.5 hours") or as whole minutes, and answered in
hours and minutes ("1 hour 30 minutes").  Replacing and deleting honour If-Match (412 when stale);
single answers carry an ETag.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Literal, Self
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)

from supportlens.api.configuration import admin
from supportlens.api.deps import Caller, runtime, ticket_reader
from supportlens.api.errors import invalid_field, problem_responses
from supportlens.api.tickets import IfMatch, ticket_errors
from supportlens.domain.metrics import MS_PER_MINUTE, human_duration
from supportlens.domain.models import normalize_label
from supportlens.runtime import Runtime
from supportlens.tickets.commands import Email, Identifier, Label, Priority, Text
from supportlens.tickets.routing import (
    Actions,
    Category,
    CategorySla,
    Conditions,
    Rule,
    Subcategory,
    SubcategoryRouting,
    checked_minutes,
    parse_duration,
)
from supportlens.tickets.routing_store import StoredCategory, StoredRule, new_rule_id

router = APIRouter(tags=["routing"], responses=problem_responses(400, 401, 403, 422))
_FORBID = ConfigDict(extra="forbid")


def _minutes(value: object) -> int:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return checked_minutes(value)
    raise ValueError("write a duration such as '2 hours' or '30 minutes', or whole minutes")


def _duration_text(minutes: int) -> str:
    return human_duration(minutes * MS_PER_MINUTE)


Duration = Annotated[
    int,
    BeforeValidator(_minutes, json_schema_input_type=str | int),
    PlainSerializer(_duration_text, return_type=str),
]


def _one_or_more(value: object) -> object:
    """One value may stand for a list of it (seed 002 writes ``"category": "network"``)."""
    return [value] if isinstance(value, str) else value


def _distinct(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Labels = Annotated[
    list[Label],
    BeforeValidator(_one_or_more, json_schema_input_type=str | list[str]),
    Field(max_length=100),
    AfterValidator(_distinct),
]
Priorities = Annotated[
    list[Priority],
    BeforeValidator(_one_or_more, json_schema_input_type=str | list[str]),
    Field(max_length=10),
    AfterValidator(_distinct),
]
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ASSIGNEE = "An agent id, or a team: 'team:<name>' or the team name of some agent (/v1/support/agents)."


# Routing rules


class RuleConditions(BaseModel):
    """Every condition given must hold; none at all matches every ticket."""

    model_config = _FORBID
    category: Labels = Field(default_factory=list)
    priority: Priorities = Field(default_factory=list, description="critical is urgent.")
    keywords: Annotated[list[Keyword], Field(max_length=100), AfterValidator(_distinct)] = Field(
        default_factory=list,
        description="Any of them, as whole words of the title or description, case-insensitively.",
    )
    customer_tier: Labels = Field(default_factory=list, description="The customer's plan (/v1/customers).")
    channel: Labels = Field(default_factory=list)


class RuleActions(BaseModel):
    model_config = _FORBID
    assign_to: Identifier | None = Field(default=None, description=ASSIGNEE)
    assignment: Literal["round_robin", "least_loaded"] = Field(
        default="round_robin", description="How a team's agent is picked (least_loaded: fewest open tickets)."
    )
    notify: Annotated[list[Email], Field(max_length=50), AfterValidator(_distinct)] = Field(
        default_factory=list
    )
    set_priority: Priority | None = None
    escalate_after: Duration | None = Field(
        default=None, description="Escalate the ticket one level when it is not resolved this long after."
    )
    auto_update_frequency: Duration | None = Field(default=None, description="Stored; not acted on.")


class RoutingRuleBody(BaseModel):
    model_config = _FORBID
    rule_name: Text
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    actions: RuleActions = Field(default_factory=RuleActions)
    active: bool = True
    stop_processing: bool = Field(default=False, description="When it applies, later rules are not tried.")


class RoutingRule(RoutingRuleBody):
    id: str
    position: int
    version: int
    created_at: datetime
    updated_at: datetime


class RoutingRuleList(BaseModel):
    data: list[RoutingRule]
    total: int


class RuleOrder(BaseModel):
    model_config = _FORBID
    ids: Annotated[list[Identifier], Field(max_length=10_000)]


_RULE_EXAMPLE = {
    "rule_name": "High Priority Network Issues",
    "conditions": {
        "category": "network",
        "priority": ["high", "critical"],
        "keywords": ["outage", "down", "offline"],
        "customer_tier": "enterprise",
    },
    "actions": {
        "assign_to": "team:network_escalation_team",
        "notify": ["network-oncall@solveforce.com", "management@solveforce.com"],
        "escalate_after": "1 hour",
        "auto_update_frequency": "30 minutes",
    },
    "active": True,
}
RULE_BODY = Body(openapi_examples={"seed": {"summary": "Seed 002", "value": _RULE_EXAMPLE}})


def _rule(body: RoutingRuleBody, rule_id: str) -> Rule:
    return Rule(
        id=rule_id,
        name=body.rule_name,
        conditions=Conditions(**{name: tuple(values) for name, values in body.conditions}),
        actions=Actions(**{**dict(body.actions), "notify": tuple(body.actions.notify)}),
        active=body.active,
        stop_processing=body.stop_processing,
    )


def _rule_out(response: Response, stored: StoredRule) -> RoutingRule:
    response.headers["ETag"] = stored.etag
    return _rule_view(stored)


def _rule_view(stored: StoredRule) -> RoutingRule:
    rule = stored.rule
    conditions = {name: list(getattr(rule.conditions, name)) for name in RuleConditions.model_fields}
    return RoutingRule(
        id=rule.id,
        rule_name=rule.name,
        conditions=RuleConditions(**conditions),
        actions=RuleActions(**{**asdict(rule.actions), "notify": list(rule.actions.notify)}),
        active=rule.active,
        stop_processing=rule.stop_processing,
        position=stored.position,
        version=stored.version,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )


def _rule_list(found: list[StoredRule]) -> RoutingRuleList:
    return RoutingRuleList(data=[_rule_view(stored) for stored in found], total=len(found))


def _check_assignee(rt: Runtime, workspace_id: str, value: str | None, loc: tuple[str | int, ...]) -> None:
    if value is not None and not rt.routing.names_assignee(workspace_id, value):
        raise invalid_field(
            ("body", *loc),
            f"no agent or team {value!r} in this workspace (a team with no agents yet: team:<name>)",
        )


@router.get("/v1/support/routing-rules", summary="The workspace's routing rules, in the order they are tried")
def list_rules(request: Request, who: Caller = Depends(ticket_reader)) -> RoutingRuleList:
    return _rule_list(runtime(request).routing.store.rules(who.workspace.id))


@router.post(
    "/v1/support/routing-rules",
    status_code=201,
    summary="Create a routing rule (tried after the existing ones)",
)
def create_rule(
    request: Request, response: Response, body: RoutingRuleBody = RULE_BODY, who: Caller = Depends(admin)
) -> RoutingRule:
    rt = runtime(request)
    _check_assignee(rt, who.workspace.id, body.actions.assign_to, ("actions", "assign_to"))
    stored = rt.routing.store.create_rule(who.workspace.id, _rule(body, new_rule_id()))
    response.headers["Location"] = f"/v1/support/routing-rules/{stored.rule.id}"
    return _rule_out(response, stored)


@router.put("/v1/support/routing-rules/order", summary="Set the order in which the rules are tried")
def set_rule_order(request: Request, body: RuleOrder, who: Caller = Depends(admin)) -> RoutingRuleList:
    try:
        ordered = runtime(request).routing.store.set_rule_order(who.workspace.id, body.ids)
    except ValueError as exc:
        raise invalid_field(("body", "ids"), str(exc)) from None
    return _rule_list(ordered)


@router.get(
    "/v1/support/routing-rules/{rule_id}", summary="One routing rule", responses=problem_responses(404)
)
def get_rule(
    request: Request, response: Response, rule_id: str, who: Caller = Depends(ticket_reader)
) -> RoutingRule:
    with ticket_errors():
        return _rule_out(response, runtime(request).routing.store.rule(who.workspace.id, rule_id))


@router.put(
    "/v1/support/routing-rules/{rule_id}",
    summary="Replace a routing rule (its position stays)",
    responses=problem_responses(404, 412),
)
def replace_rule(
    request: Request,
    response: Response,
    rule_id: str,
    body: RoutingRuleBody = RULE_BODY,
    if_match: IfMatch = None,
    who: Caller = Depends(admin),
) -> RoutingRule:
    rt = runtime(request)
    with ticket_errors():
        rt.routing.store.rule(who.workspace.id, rule_id)
        _check_assignee(rt, who.workspace.id, body.actions.assign_to, ("actions", "assign_to"))
        stored = rt.routing.store.replace_rule(who.workspace.id, _rule(body, rule_id), if_match=if_match)
    return _rule_out(response, stored)


@router.delete(
    "/v1/support/routing-rules/{rule_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a routing rule (and the escalations it still had pending)",
    responses=problem_responses(404, 412),
)
def delete_rule(
    request: Request, rule_id: str, if_match: IfMatch = None, who: Caller = Depends(admin)
) -> Response:
    with ticket_errors():
        runtime(request).routing.store.delete_rule(who.workspace.id, rule_id, if_match=if_match)
    return Response(status_code=204)


# Categories


class CategorySlaBody(BaseModel):
    """Targets of every ticket of the category, whatever its priority (calendar time)."""

    model_config = _FORBID
    response_time: Duration | None = Field(default=None, description="First response.")
    resolution_time: Duration | None = None

    @model_validator(mode="after")
    def _some(self) -> Self:
        if self.response_time is None and self.resolution_time is None:
            raise ValueError("give response_time, resolution_time or both (or no sla at all)")
        return self


class SubcategoryRoutingBody(BaseModel):
    """Like a routing rule on the category and subcategory, tried after the workspace's own rules."""

    model_config = _FORBID
    auto_assign: Identifier | None = Field(default=None, description=ASSIGNEE)
    escalation_threshold: Duration | None = Field(
        default=None, description="Escalate the ticket one level when it is not resolved this long after."
    )


class SubcategoryBody(BaseModel):
    model_config = _FORBID
    id: Label
    name: Text
    routing_rules: SubcategoryRoutingBody | None = None


def _distinct_subcategories(subcategories: list[SubcategoryBody]) -> list[SubcategoryBody]:
    ids = [sub.id for sub in subcategories]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"subcategory ids must differ; listed twice: {twice}")
    return subcategories


class CategoryBody(BaseModel):
    model_config = _FORBID
    id: Label = Field(description="Tickets name it in their category (lower-case).")
    name: Text
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    sla: CategorySlaBody | None = Field(default=None, description="Kept as an SLA policy of its own.")
    subcategories: Annotated[
        list[SubcategoryBody], Field(max_length=200), AfterValidator(_distinct_subcategories)
    ] = Field(default_factory=list)


class CategoryOut(CategoryBody):
    sla_policy_id: str | None = Field(description="The SLA policy that carries the category's targets.")
    version: int
    created_at: datetime
    updated_at: datetime


class CategoryList(BaseModel):
    categories: list[CategoryOut]


_CATEGORY_EXAMPLE = {
    "id": "network",
    "name": "Network & Connectivity",
    "description": "Internet, MPLS, SD-WAN, and network infrastructure issues",
    "sla": {"response_time": "2 hours", "resolution_time": "8 hours"},
    "subcategories": [
        {
            "id": "connectivity",
            "name": "Connectivity Issues",
            "routing_rules": {"auto_assign": "team:network_team", "escalation_threshold": "4 hours"},
        }
    ],
}
CATEGORY_BODY = Body(openapi_examples={"seed": {"summary": "Seed 002", "value": _CATEGORY_EXAMPLE}})


def _category(body: CategoryBody) -> Category:
    sla = body.sla
    return Category(
        id=body.id,
        name=body.name,
        description=body.description,
        sla=None if sla is None else CategorySla(sla.response_time, sla.resolution_time),
        subcategories=tuple(
            Subcategory(
                sub.id,
                sub.name,
                None
                if sub.routing_rules is None
                else SubcategoryRouting(
                    sub.routing_rules.auto_assign, sub.routing_rules.escalation_threshold
                ),
            )
            for sub in body.subcategories
        ),
    )


def _category_view(stored: StoredCategory) -> CategoryOut:
    category, sla = stored.category, stored.category.sla
    return CategoryOut(
        id=category.id,
        name=category.name,
        description=category.description,
        sla=None
        if sla is None
        else CategorySlaBody(response_time=sla.response_minutes, resolution_time=sla.resolution_minutes),
        subcategories=[
            SubcategoryBody(
                id=sub.id,
                name=sub.name,
                routing_rules=None
                if sub.routing is None
                else SubcategoryRoutingBody(
                    auto_assign=sub.routing.auto_assign, escalation_threshold=sub.routing.escalation_threshold
                ),
            )
            for sub in category.subcategories
        ],
        sla_policy_id=stored.sla_policy_id,
        version=stored.version,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )


def _category_out(response: Response, stored: StoredCategory) -> CategoryOut:
    response.headers["ETag"] = stored.etag
    return _category_view(stored)


def _check_subcategories(rt: Runtime, workspace_id: str, body: CategoryBody) -> None:
    for index, sub in enumerate(body.subcategories):
        if sub.routing_rules is not None:
            loc = ("subcategories", index, "routing_rules", "auto_assign")
            _check_assignee(rt, workspace_id, sub.routing_rules.auto_assign, loc)


def _category_id(value: str) -> str:
    """Category ids are labels: ``Network`` names ``network``."""
    return normalize_label(value) or value


@router.get("/v1/support/categories", summary="The workspace's support categories, by id")
def list_categories(request: Request, who: Caller = Depends(ticket_reader)) -> CategoryList:
    found = runtime(request).categories.store.categories(who.workspace.id)
    return CategoryList(categories=[_category_view(stored) for stored in found])


@router.post(
    "/v1/support/categories",
    status_code=201,
    summary="Create a support category (its sla becomes an SLA policy tried first)",
    responses=problem_responses(409),
)
def create_category(
    request: Request, response: Response, body: CategoryBody = CATEGORY_BODY, who: Caller = Depends(admin)
) -> CategoryOut:
    rt = runtime(request)
    _check_subcategories(rt, who.workspace.id, body)
    with ticket_errors():
        stored = rt.categories.create(who.workspace.id, _category(body))
    response.headers["Location"] = f"/v1/support/categories/{quote(stored.category.id, safe='')}"
    return _category_out(response, stored)


@router.get(
    "/v1/support/categories/{category_id}", summary="One support category", responses=problem_responses(404)
)
def get_category(
    request: Request, response: Response, category_id: str, who: Caller = Depends(ticket_reader)
) -> CategoryOut:
    with ticket_errors():
        stored = runtime(request).categories.store.category(who.workspace.id, _category_id(category_id))
    return _category_out(response, stored)


@router.put(
    "/v1/support/categories/{category_id}",
    summary="Replace a support category (and its SLA policy)",
    responses=problem_responses(404, 409, 412),
)
def replace_category(
    request: Request,
    response: Response,
    category_id: str,
    body: CategoryBody = CATEGORY_BODY,
    if_match: IfMatch = None,
    who: Caller = Depends(admin),
) -> CategoryOut:
    rt = runtime(request)
    if body.id != _category_id(category_id):
        raise invalid_field(
            ("body", "id"), f"must be the category's id in the path ({_category_id(category_id)!r})"
        )
    with ticket_errors():
        rt.categories.store.category(who.workspace.id, body.id)
        _check_subcategories(rt, who.workspace.id, body)
        stored = rt.categories.replace(who.workspace.id, _category(body), if_match=if_match)
    return _category_out(response, stored)


@router.delete(
    "/v1/support/categories/{category_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a support category (and its SLA policy)",
    responses=problem_responses(404, 412),
)
def delete_category(
    request: Request, category_id: str, if_match: IfMatch = None, who: Caller = Depends(admin)
) -> Response:
    with ticket_errors():
        runtime(request).categories.delete(who.workspace.id, _category_id(category_id), if_match=if_match)
    return Response(status_code=204)
