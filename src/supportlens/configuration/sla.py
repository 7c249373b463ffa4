"""SLA policies as clients write them (API bodies) and as they are stored.

Validation builds the domain objects (domain/sla.py), so every SLA rule lives once, there, and its
SlaError messages come back as errors on the field at fault (configuration/validation.py).  The JSON
form names the pausing statuses ``pause_statuses`` (status categories) where the domain says
``pause_categories``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from supportlens.configuration.calendars import Label
from supportlens.configuration.validation import from_domain
from supportlens.domain.sla import (
    Conditions,
    EscalationLevel,
    SlaError,
    SlaPolicy,
    Target,
    TargetType,
)
from supportlens.domain.statuses import PAUSING_CATEGORIES, StatusCategory

# Domain messages start with the attribute at fault ("Target.minutes must be ...").
_ATTRIBUTE = re.compile(r"^(?:Target|EscalationLevel|Conditions|SlaPolicy)\.(\w+)")
_API_FIELD = {"pause_categories": "pause_statuses"}
_FORBID = ConfigDict(extra="forbid")
TargetKind = Literal["first_response", "next_response", "resolution", "requester_wait", "agent_work"]
BUILTIN_POLICY_ID = "builtin"
T = TypeVar("T")


def _domain(model: BaseModel, build: Callable[[], T], fallback: str) -> T:
    """``build()``, with an SlaError turned into an error on the field its message names."""
    return from_domain(
        model,
        build,
        fallback,
        error=SlaError,
        attribute=_ATTRIBUTE,
        api_field=_API_FIELD,
        kind="sla",
    )


class SlaTargetDefinition(BaseModel):
    """``minutes`` of business time (the policy's calendar) or of calendar time."""

    model_config = _FORBID
    type: TargetKind
    minutes: int
    business_hours: bool = False

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _domain(self, self.to_domain, "minutes")
        return self

    def to_domain(self) -> Target:
        return Target(TargetType(self.type), self.minutes, self.business_hours)


class SlaEscalationDefinition(BaseModel):
    """Fires ``offset_minutes`` after a target's due time (negative: before it; 0: at the breach)."""

    model_config = _FORBID
    level: int
    offset_minutes: int
    actions: list[str]

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _domain(self, self.to_domain, "actions")
        return self

    def to_domain(self) -> EscalationLevel:
        return EscalationLevel(self.level, self.offset_minutes, tuple(self.actions))


class SlaConditionsDefinition(BaseModel):
    """Each field absent or empty: any value.  A ticket matches when each given field holds its value
    (``tags``: any of them); labels compare case-insensitively, priorities fold (critical = urgent)."""

    model_config = _FORBID
    priority: list[str] | None = None
    category: list[str] | None = None
    channel: list[str] | None = None
    tags: list[str] | None = None
    group_id: list[str] | None = None
    customer_plan: list[str] | None = None
    source: list[str] | None = None

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _domain(self, self.to_domain, "priority")
        return self

    def to_domain(self) -> Conditions:
        given = {name: frozenset(values) for name, values in self if values}
        return Conditions(**given)


class SlaPolicyDefinition(BaseModel):
    """A named policy: ``targets`` per priority (``"default"`` for every priority not listed), the
    conditions a ticket must meet (the workspace's policies are tried in order), and ``default: true``
    to make it the policy of every ticket no other policy matches."""

    model_config = _FORBID
    name: Label
    conditions: SlaConditionsDefinition = Field(default_factory=SlaConditionsDefinition)
    targets: dict[str, list[SlaTargetDefinition]]
    pause_statuses: list[StatusCategory] = Field(
        default_factory=lambda: sorted(PAUSING_CATEGORIES),
        description="Status categories that stop the resolution clock.",
    )
    at_risk_percent: int = 80
    at_risk_minutes: int | None = None
    escalations: list[SlaEscalationDefinition] = Field(default_factory=list)
    calendar_id: str | None = None
    default: bool = False

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _domain(self, lambda: self.to_domain("new"), "targets")
        return self

    def to_domain(self, policy_id: str) -> SlaPolicy:
        return SlaPolicy(
            id=policy_id,
            name=self.name,
            targets={
                priority: tuple(target.to_domain() for target in targets)
                for priority, targets in self.targets.items()
            },
            conditions=self.conditions.to_domain(),
            pause_categories=frozenset(self.pause_statuses),
            at_risk_percent=self.at_risk_percent,
            at_risk_minutes=self.at_risk_minutes,
            escalations=tuple(level.to_domain() for level in self.escalations),
            calendar_id=self.calendar_id,
        )


def _seed_targets(response: int, resolution: int) -> list[dict[str, object]]:
    return [
        {"type": "first_response", "minutes": response},
        {"type": "next_response", "minutes": response},
        {"type": "resolution", "minutes": resolution},
    ]


# Seed 000's simple SLA defaults (METRICS.md "The seed's simple SLA endpoints"), in calendar time.
BUILTIN_DEFINITION = SlaPolicyDefinition.model_validate(
    {
        "name": "Built-in default",
        "default": True,
        "targets": {
            "urgent": _seed_targets(30, 240),
            "high": _seed_targets(30, 240),
            "medium": _seed_targets(60, 480),
            "low": _seed_targets(120, 1440),
            "default": _seed_targets(60, 480),
        },
    }
)


def builtin_policy() -> SlaPolicy:
    """The policy of a workspace that has no default policy of its own."""
    return BUILTIN_DEFINITION.to_domain(BUILTIN_POLICY_ID)
