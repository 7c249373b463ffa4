"""Support categories and routing rules (seed 002, "Categories and Routing"): what they are, which
tickets a rule matches, which fields a rule reads, and whom a team assignment picks.  Pure: no I/O.

A rule's conditions all hold for a ticket when each given one does: ``category``, ``priority``,
``customer_tier`` and ``channel`` list the accepted values, ``keywords`` match any of them as whole
words of the title or description, case-insensitively.  No condition at all matches every ticket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from supportlens.domain.models import normalize_label
from supportlens.tickets.records import Agent, TicketRecord

Assignment = Literal["round_robin", "least_loaded"]
TEAM_PREFIX = "team:"
# Longer than any SLA or escalation anyone sets, short enough that due times stay far from overflow.
MAX_DURATION_MINUTES = 366 * 24 * 60

_UNITS = {
    "w": 7 * 24 * 60,
    "week": 7 * 24 * 60,
    "weeks": 7 * 24 * 60,
    "d": 24 * 60,
    "day": 24 * 60,
    "days": 24 * 60,
    "h": 60,
    "hr": 60,
    "hrs": 60,
    "hour": 60,
    "hours": 60,
    "m": 1,
    "min": 1,
    "mins": 1,
    "minute": 1,
    "minutes": 1,
}
_SEPARATOR = re.compile(r"\s*(?:,|\band\b)\s*")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?\s*[a-z]+\s*)+")  # unambiguous: no backtracking blow-up
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")


def parse_duration(text: str) -> int:
    """Whole minutes from a duration as the seed writes it: "2 hours", "30 minutes",
    "1 hour 30 minutes", "1.5 hours", "1 day" (ValueError saying what is wrong otherwise)."""
    if len(text) > 100:
        raise ValueError("a duration is at most 100 characters")
    written = _SEPARATOR.sub(" ", text.strip().lower())
    example = "write it like '2 hours', '30 minutes', '1 hour 30 minutes' or '1.5 hours'"
    if _DURATION.fullmatch(written) is None:
        raise ValueError(f"{text!r} is not a duration; {example}")
    total = Fraction(0)
    for number, unit in _DURATION_PART.findall(written):
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r} in {text!r}; use minutes, hours, days or weeks")
        total += Fraction(number) * _UNITS[unit]
    if total.denominator != 1:
        raise ValueError(f"{text!r} is not a whole number of minutes")
    return checked_minutes(int(total))


def checked_minutes(minutes: int) -> int:
    """A duration in whole minutes, within bounds (ValueError otherwise)."""
    if not 1 <= minutes <= MAX_DURATION_MINUTES:
        raise ValueError(f"a duration must be between 1 minute and 366 days, not {minutes} minutes")
    return minutes


@dataclass(frozen=True, slots=True)
class Conditions:
    """Each empty field accepts any value.  Values are as stored: labels lower-case, priorities
    folded (critical = urgent), keywords as written."""

    category: tuple[str, ...] = ()
    subcategory: tuple[str, ...] = ()  # only a subcategory's own rule uses it
    priority: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    customer_tier: tuple[str, ...] = ()  # the customer's plan
    channel: tuple[str, ...] = ()

    @property
    def reads(self) -> frozenset[str]:
        """The ticket fields these conditions look at: a change to one of them routes again."""
        fields = {
            "category": ("category",),
            "subcategory": ("subcategory",),
            "priority": ("priority",),
            "keywords": ("title", "description"),
            "customer_tier": ("customer_id",),
            "channel": ("channel",),
        }
        return frozenset(f for name, read in fields.items() if getattr(self, name) for f in read)

    @property
    def needs_plan(self) -> bool:
        return bool(self.customer_tier)

    def matches(self, ticket: TicketRecord, plan: str | None) -> bool:
        """``plan``: the ticket's customer's plan (None: no customer, or no plan known)."""
        given = (
            (self.category, ticket.category),
            (self.subcategory, ticket.subcategory),
            (self.priority, ticket.priority),
            (self.customer_tier, normalize_label(plan)),
            (self.channel, ticket.channel),
        )
        if any(accepted and value not in accepted for accepted, value in given):
            return False
        return not self.keywords or mentions(self.keywords, ticket.title, ticket.description or "")


def mentions(keywords: Sequence[str], *texts: str) -> bool:
    """Whether any keyword occurs in the texts as whole words, case-insensitively."""
    pattern = "|".join(re.escape(keyword) for keyword in keywords)
    found = re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", re.IGNORECASE)
    return any(found.search(text) for text in texts)


@dataclass(frozen=True, slots=True)
class Actions:
    assign_to: str | None = None  # an agent id, a team (team:<name>) or an agent's team name
    assignment: Assignment = "round_robin"  # how a team's agent is picked
    notify: tuple[str, ...] = ()  # email addresses
    set_priority: str | None = None
    escalate_after: int | None = None  # minutes without resolution before the ticket is escalated
    auto_update_frequency: int | None = None  # minutes; stored, not acted on


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    conditions: Conditions
    actions: Actions
    active: bool = True
    stop_processing: bool = False  # when it applies, later rules are not tried


def worth_trying(rule: Rule, *, created: bool, changed: frozenset[str]) -> bool:
    """Every active rule is tried on a new ticket; on a change, only those whose conditions read a
    changed field (so a rule without conditions applies once, at creation)."""
    return rule.active and (created or bool(rule.conditions.reads & changed))


@dataclass(frozen=True, slots=True)
class AssignTarget:
    """Exactly one of an agent or a team."""

    agent_id: str | None = None
    team: str | None = None


def assign_target(value: str, agents: Sequence[Agent]) -> AssignTarget | None:
    """What ``assign_to`` names among the workspace's agents: ``team:<name>`` is a team, else an agent
    id, else a team some agent is in; None when it names nothing."""
    if value.startswith(TEAM_PREFIX):
        return AssignTarget(team=value.removeprefix(TEAM_PREFIX).strip())
    if any(agent.id == value for agent in agents):
        return AssignTarget(agent_id=value)
    if any(value in agent.teams for agent in agents):
        return AssignTarget(team=value)
    return None


def team_members(team: str, agents: Sequence[Agent]) -> list[str]:
    """Ids of the team's active agents, in id order."""
    return sorted(agent.id for agent in agents if agent.active and team in agent.teams)


def next_in_turn(members: Sequence[str], last: str | None) -> str:
    """Round robin: the first member after the one picked last (in id order), wrapping around; members
    who joined or left since do not disturb the turn of the others."""
    ordered = sorted(members)
    if last is None:
        return ordered[0]
    return next((member for member in ordered if member > last), ordered[0])


def least_loaded(loads: Mapping[str, int]) -> str:
    """The agent with the fewest open tickets; ties go to the lowest id."""
    return min(loads, key=lambda agent_id: (loads[agent_id], agent_id))


@dataclass(frozen=True, slots=True)
class SubcategoryRouting:
    """A subcategory's own routing: assign to an agent or a team, escalate when not resolved in time."""

    auto_assign: str | None = None
    escalation_threshold: int | None = None  # minutes


@dataclass(frozen=True, slots=True)
class Subcategory:
    id: str
    name: str
    routing: SubcategoryRouting | None = None


@dataclass(frozen=True, slots=True)
class CategorySla:
    """Targets of every ticket of the category, whatever its priority (minutes of calendar time)."""

    response_minutes: int | None = None
    resolution_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    description: str | None = None
    sla: CategorySla | None = None
    subcategories: tuple[Subcategory, ...] = ()

    def rules(self) -> list[Rule]:
        """Each routed subcategory as a rule on the category and subcategory (tried after the
        workspace's own rules, round robin for a team)."""
        return [
            Rule(
                id=f"subcategory:{self.id}/{sub.id}",
                name=f"subcategory {self.id}/{sub.id}",
                conditions=Conditions(category=(self.id,), subcategory=(sub.id,)),
                actions=Actions(
                    assign_to=sub.routing.auto_assign, escalate_after=sub.routing.escalation_threshold
                ),
            )
            for sub in self.subcategories
            if sub.routing is not None
            and (sub.routing.auto_assign is not None or sub.routing.escalation_threshold is not None)
        ]


def if_match_holds(etag: str, if_match: str | None) -> bool:
    """Whether an If-Match header (absent, ``*`` or a list of tags, weak or not) accepts ``etag``."""
    if if_match is None or if_match.strip() == "*":
        return True
    return etag in (tag.strip().removeprefix("W/") for tag in if_match.split(","))
