"""The SLA engine (METRICS.md "SLA policies"): which policy applies to a ticket, and the state of each
of its targets at an evaluation time.  Pure (no I/O): the reference every other SLA implementation is
tested against.  Durations are integer milliseconds of the target's own clock: business time through
the policy's calendar, or calendar time.

Rules (METRICS.md where it speaks; where it is silent, what Zendesk or Freshdesk do, as noted):

- History.  The ticket is read as domain/timeline.py reads it: creation, status intervals, events
  after ``as_of`` unseen, events before creation acting at creation, what counts as a human reply.
- Closed is final (the timeline's rule; Zendesk never reopens a closed ticket): the SLA history ends
  at the first entry into the ``closed`` category, and no later event changes any target (events at
  that instant still count).
- Policy.  The first policy of the ordered set whose conditions match the ticket's attributes applies,
  else the default.  The attributes at a moment are the latest non-null values set by the events acting
  at or before it.  Each target takes the policy and the priority in force when it starts, so a change of
  priority (or of any field a condition reads) applies to the targets started after it (METRICS.md).  A
  priority the policy does not list takes its ``default`` targets; a target type absent there is not
  tracked.  Conditions read ``priority``, ``category``, ``channel``, ``group_id`` and ``tags`` (the
  latest full tag set an event carries; Freshdesk's tag additions and removals are not folded in) from
  the event columns, and ``customer_plan`` (or ``customer_tier``) and ``source`` from ``field_changed``
  events naming them.
- first_response starts at creation and is fulfilled by the first human reply (timeline: bots, system
  auto-replies and notes never count; an agent's first public message on its own ticket is the request).
- next_response: every later wait for a reply (timeline's reply waits: a run of customer messages from
  its first message to the next human reply) is one instance, numbered from 0 in order; the wait the
  first reply answers belongs to first_response.
- Reply targets are not paused by ``pause_categories`` (METRICS.md: the reply fulfils them), but their
  clock stops while the ticket is resolved, so a ticket solved without an answer neither breaches nor
  counts as answered, and a reopen resumes the clock.  Helpdesks that count solving as fulfilling the
  reply targets would call it met; we keep METRICS.md's rule that an unanswered ticket never meets the
  response SLA.
- resolution starts at creation; its clock runs while the status category is neither resolved nor in
  ``pause_categories``.  Entering a resolved category fulfils it; a reopen makes it active again with
  the time elapsed so far (Zendesk's "total resolution time").  requester_wait and agent_work are the
  same with the clock running only in new/open/on_hold and new/open (Zendesk's metrics of those names;
  ``pause_categories`` does not apply to them).
- State.  ``achieved``: fulfilled with elapsed <= target; ``breached``: fulfilled late; otherwise
  ``active`` while its clock runs at the evaluation time by status (a closed business calendar does not
  pause a target, as in Zendesk), else ``paused``.  The ``breached`` flag is set once elapsed exceeds the
  target, so a late target still running is active + breached.
- due_at: the instant the elapsed time reached the target, if it has (this is ``breached_at`` of a
  breached target); else, for an active target, when it will if its clock keeps running (reckoned
  from the start of the run the clock is in, so it does not move with ``as_of``), for an achieved one
  its fulfilment plus the remaining time (when it would have fallen due), and None while paused with
  time left or when the calendar never opens again.
- at_risk: active, not breached, and remaining <= ``at_risk_minutes`` or elapsed >= ``at_risk_percent``
  of the target.
- Escalations.  Each level of the target's policy fires at ``due_at + offset`` (plain time: the people
  notified are not on the calendar) for every target not achieved; a paused target with time left has no
  due time, so its levels are not scheduled yet.  Levels falling after a late fulfilment never fire.
  ``fired`` = fires_at <= as_of.  Who records an ``escalated`` event lives elsewhere: ``escalations_due``
  gives the fired levels not recorded yet, so each fires once per target instance across restarts.
"""

from __future__ import annotations

import bisect
import functools
import operator
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from supportlens.domain.calendars import CalendarError, Schedule, add_business_time, business_ms
from supportlens.domain.events import CHANGED_ATTRIBUTE, ActorType, EventType, TicketEvent
from supportlens.domain.metrics import MS_PER_MINUTE
from supportlens.domain.models import normalize_label, normalize_priority
from supportlens.domain.statuses import PAUSING_CATEGORIES, StatusCategory, StatusMap
from supportlens.domain.timeline import (
    INITIAL_STATUS,
    Conversation,
    StatusInterval,
    calendar_ms,
    conversation,
    creation_time,
    order_events,
    reply_waits,
    status_intervals,
)

DEFAULT_TARGETS = "default"  # the targets key of every priority a policy does not list


class SlaError(ValueError):
    """An invalid SLA definition or evaluation input; the message names the field."""


class TargetType(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"
    REQUESTER_WAIT = "requester_wait"
    AGENT_WORK = "agent_work"


class TargetStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ACHIEVED = "achieved"
    BREACHED = "breached"


_C = StatusCategory
# The categories whose time each status-driven target counts (before pause_categories for resolution).
RUNS_IN: Mapping[TargetType, frozenset[StatusCategory]] = MappingProxyType(
    {
        TargetType.RESOLUTION: frozenset({_C.NEW, _C.OPEN, _C.PENDING, _C.ON_HOLD}),
        TargetType.REQUESTER_WAIT: frozenset({_C.NEW, _C.OPEN, _C.ON_HOLD}),
        TargetType.AGENT_WORK: frozenset({_C.NEW, _C.OPEN}),
    }
)
# The categories whose time a reply target counts (its clock stops only while resolved).
REPLY_RUNS_IN = frozenset({_C.NEW, _C.OPEN, _C.PENDING, _C.ON_HOLD})

# The conditions with an event column (a change event naming one sets it too).
_COLUMN_CONDITIONS = ("priority", "group_id", "category", "channel")
_condition_columns = operator.attrgetter(*_COLUMN_CONDITIONS)  # an event's values of them, as a tuple
# Custom fields (``field_changed`` events) read for the conditions that have no event column.
_FIELD_CONDITIONS: Mapping[str, str] = MappingProxyType(
    {"customer_plan": "customer_plan", "customer_tier": "customer_plan", "source": "source"}
)


# --- definitions -------------------------------------------------------------------------------------


def _whole(value: object, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SlaError(f"{name} must be a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise SlaError(f"{name} must be at least {minimum}, got {value}")
    return value


def _name(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SlaError(f"{name} must be a non-blank string, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Target:
    """``minutes`` of business time (the policy's calendar) or of calendar time."""

    type: TargetType
    minutes: int
    business_hours: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "type", TargetType(self.type))
        except ValueError as exc:
            raise SlaError(f"Target.type must be one of {[t.value for t in TargetType]}") from exc
        _whole(self.minutes, "Target.minutes", 1)
        if not isinstance(self.business_hours, bool):
            raise SlaError(f"Target.business_hours must be a bool, got {self.business_hours!r}")


@dataclass(frozen=True, slots=True)
class EscalationLevel:
    """Fires ``offset_minutes`` after the due time (-30: half an hour before it; 0: at the breach)."""

    level: int
    offset_minutes: int
    actions: tuple[str, ...]

    def __post_init__(self) -> None:
        _whole(self.level, "EscalationLevel.level", 1)
        _whole(self.offset_minutes, "EscalationLevel.offset_minutes")
        if isinstance(self.actions, str):
            raise SlaError("EscalationLevel.actions must be a sequence of action names, not one string")
        actions = tuple(self.actions)
        if not actions:
            raise SlaError("EscalationLevel.actions must name at least one action")
        for action in actions:
            _name(action, "EscalationLevel.actions")
        object.__setattr__(self, "actions", actions)


@dataclass(frozen=True, slots=True)
class TicketAttributes:
    """What policy conditions read, normalized as conditions are: labels lower-cased, priority folded
    (critical = urgent), identifiers as given."""

    priority: str | None = None
    category: str | None = None
    channel: str | None = None
    tags: frozenset[str] = frozenset()
    group_id: str | None = None
    customer_plan: str | None = None
    source: str | None = None


_LABEL_CONDITIONS = ("category", "channel", "customer_plan", "source")


@dataclass(frozen=True, slots=True)
class Conditions:
    """Every field is optional (None or empty: any value); a ticket matches when each set field holds
    its value (``tags``: any of them).  Labels compare case-insensitively, group ids exactly."""

    priority: frozenset[str] | None = None
    category: frozenset[str] | None = None
    channel: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    group_id: frozenset[str] | None = None
    customer_plan: frozenset[str] | None = None
    source: frozenset[str] | None = None

    def __post_init__(self) -> None:
        for name in ("priority", "tags", "group_id", *_LABEL_CONDITIONS):
            values: object = getattr(self, name)
            if values is None:
                continue
            if isinstance(values, str):
                values = (values,)
            if not isinstance(values, Iterable):
                raise SlaError(f"Conditions.{name} must be a set of strings, got {values!r}")
            normalized: set[str] = set()
            for value in values:
                if not isinstance(value, str):
                    raise SlaError(f"Conditions.{name} must hold strings, got {value!r}")
                folded = _normalized(name, value)
                if folded is not None:
                    normalized.add(folded)
            object.__setattr__(self, name, frozenset(normalized) or None)

    def matches(self, ticket: TicketAttributes) -> bool:
        for name in ("priority", "group_id", *_LABEL_CONDITIONS):
            wanted: frozenset[str] | None = getattr(self, name)
            if wanted is not None and getattr(ticket, name) not in wanted:
                return False
        return self.tags is None or not self.tags.isdisjoint(ticket.tags)


def _normalized(name: str, value: str | None) -> str | None:
    if name == "priority":
        return normalize_priority(value)
    if name == "group_id":
        return None if value is None else value.strip() or None
    return normalize_label(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaPolicy:
    """Targets per priority (``"default"`` for every priority not listed), in the ticket's
    ``calendar_id`` business calendar where a target says so."""

    id: str
    name: str
    targets: Mapping[str, tuple[Target, ...]]
    conditions: Conditions = field(default_factory=Conditions)
    pause_categories: frozenset[StatusCategory] = PAUSING_CATEGORIES
    at_risk_percent: int = 80
    at_risk_minutes: int | None = None
    escalations: tuple[EscalationLevel, ...] = ()
    calendar_id: str | None = None

    def __post_init__(self) -> None:
        _name(self.id, "SlaPolicy.id")
        if not isinstance(self.name, str):
            raise SlaError(f"SlaPolicy.name must be a string, got {self.name!r}")
        if not isinstance(self.conditions, Conditions):
            raise SlaError(f"SlaPolicy.conditions must be Conditions, got {self.conditions!r}")
        object.__setattr__(self, "targets", MappingProxyType(_targets(self.targets)))
        try:
            pauses = frozenset(StatusCategory(category) for category in self.pause_categories)
        except (TypeError, ValueError) as exc:
            raise SlaError(
                f"SlaPolicy.pause_categories must hold status categories, got {self.pause_categories!r}"
            ) from exc
        object.__setattr__(self, "pause_categories", pauses)
        if not 1 <= _whole(self.at_risk_percent, "SlaPolicy.at_risk_percent") <= 100:
            raise SlaError(f"SlaPolicy.at_risk_percent must be 1 to 100, got {self.at_risk_percent}")
        if self.at_risk_minutes is not None:
            _whole(self.at_risk_minutes, "SlaPolicy.at_risk_minutes", 0)
        levels = tuple(self.escalations)
        for level in levels:
            if not isinstance(level, EscalationLevel):
                raise SlaError(f"SlaPolicy.escalations must hold EscalationLevel values, got {level!r}")
        if len({level.level for level in levels}) != len(levels):
            raise SlaError("SlaPolicy.escalations: each level number may appear once")
        object.__setattr__(self, "escalations", tuple(sorted(levels, key=lambda level: level.level)))
        if self.calendar_id is not None:
            _name(self.calendar_id, "SlaPolicy.calendar_id")

    def __hash__(self) -> int:  # the generated hash would fail on the targets mapping
        return hash((self.id, tuple(self.targets.items()), self.conditions, self.escalations))

    def target(self, kind: TargetType, priority: str | None) -> Target | None:
        """The target of ``kind`` for a ticket of ``priority`` (normalized), if the policy has one."""
        found = self.targets.get(priority or DEFAULT_TARGETS)
        if found is None:
            found = self.targets[DEFAULT_TARGETS]
        return next((target for target in found if target.type is kind), None)


def _targets(targets: object) -> dict[str, tuple[Target, ...]]:
    if not isinstance(targets, Mapping):
        raise SlaError(f"SlaPolicy.targets must map priorities to targets, got {targets!r}")
    result: dict[str, tuple[Target, ...]] = {}
    for key, values in targets.items():
        if not isinstance(key, str):
            raise SlaError(f"SlaPolicy.targets: priorities must be strings, got {key!r}")
        priority = DEFAULT_TARGETS if key.strip().lower() == DEFAULT_TARGETS else normalize_priority(key)
        if priority is None:
            raise SlaError("SlaPolicy.targets: a priority must not be blank")
        if priority in result:
            raise SlaError(f"SlaPolicy.targets: priority {priority!r} is listed twice (aliases fold)")
        found = (values,) if isinstance(values, Target) else tuple(values)
        for target in found:
            if not isinstance(target, Target):
                raise SlaError(f"SlaPolicy.targets[{key!r}] must hold Target values, got {target!r}")
        if len({target.type for target in found}) != len(found):
            raise SlaError(f"SlaPolicy.targets[{key!r}]: each target type may appear once")
        result[priority] = found
    if DEFAULT_TARGETS not in result:
        raise SlaError(f"SlaPolicy.targets needs a {DEFAULT_TARGETS!r} entry for unlisted priorities")
    return result


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Ordered policies: the first that matches applies; ``default`` catches the rest (its own
    conditions are not consulted)."""

    policies: tuple[SlaPolicy, ...]
    default: SlaPolicy
    # Attributes -> the policy and its targets by type for their priority: tickets share a few
    # attribute sets, so each is matched once per policy set rather than per target.
    _chosen: dict[TicketAttributes, tuple[SlaPolicy, Mapping[TargetType, Target]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        policies = tuple(self.policies)
        for policy in (*policies, self.default):
            if not isinstance(policy, SlaPolicy):
                raise SlaError(f"PolicySet.policies and default must be SlaPolicy values, got {policy!r}")
        ids = [policy.id for policy in (*policies, self.default)]
        if len(set(ids)) != len(ids):
            raise SlaError(f"PolicySet: policy ids must be unique, got {ids}")
        object.__setattr__(self, "policies", policies)

    def policy_for(self, ticket: TicketAttributes) -> SlaPolicy:
        return self.choice(ticket)[0]

    def choice(self, ticket: TicketAttributes) -> tuple[SlaPolicy, Mapping[TargetType, Target]]:
        """The policy for ``ticket`` and its targets (by type) for the ticket's priority."""
        found = self._chosen.get(ticket)
        if found is None:
            policy = next((p for p in self.policies if p.conditions.matches(ticket)), self.default)
            targets = {
                kind: target
                for kind in TargetType
                if (target := policy.target(kind, ticket.priority)) is not None
            }
            found = self._chosen[ticket] = (policy, MappingProxyType(targets))
        return found


# --- results -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetState:
    """One target instance at the evaluation time (see the module rules)."""

    type: TargetType
    instance: int
    policy_id: str
    priority: str | None  # in force when the target started
    target_minutes: int
    business_hours: bool
    started_at: datetime
    due_at: datetime | None
    state: TargetStatus
    breached: bool
    achieved_at: datetime | None
    breached_at: datetime | None
    completed_at: datetime | None  # fulfilled, on time or late
    elapsed_ms: int
    remaining_ms: int  # negative once breached
    at_risk: bool


@dataclass(frozen=True, slots=True)
class Escalation:
    level: int
    target_type: TargetType
    instance: int
    fires_at: datetime
    fired: bool
    actions: tuple[str, ...]

    @property
    def key(self) -> tuple[int, TargetType, int]:
        """What makes an escalation fire once: its level on one target instance."""
        return (self.level, self.target_type, self.instance)


@dataclass(frozen=True, slots=True)
class TicketSla:
    ticket_id: str
    policy_id: str  # the policy in force at the evaluation time (for targets starting now)
    targets: tuple[TargetState, ...]
    escalations: tuple[Escalation, ...]
    # Since when the ticket is in the status it is in at the evaluation time (``advanced`` reads it).
    status_since: datetime | None = None

    def target(self, kind: TargetType, instance: int = 0) -> TargetState | None:
        return next((t for t in self.targets if t.type is kind and t.instance == instance), None)


@dataclass(frozen=True, slots=True)
class Attainment:
    achieved: int = 0
    breached: int = 0

    @property
    def rate(self) -> float | None:
        """Achieved ÷ completed targets (METRICS.md SLA attainment); None when none completed."""
        completed = self.achieved + self.breached
        return self.achieved / completed if completed else None


# --- evaluation --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Clock:
    """Business time through ``schedule``, or calendar time when it is None."""

    schedule: Schedule | None

    def ms(self, a: datetime, b: datetime) -> int:
        return calendar_ms(a, b) if self.schedule is None else business_ms(self.schedule, a, b)

    def add(self, t: datetime, ms: int) -> datetime | None:
        """When ``ms`` of this clock have passed after ``t``; None if the calendar never gets there."""
        if self.schedule is None:
            return t + timedelta(milliseconds=ms)
        try:
            return add_business_time(self.schedule, t, timedelta(milliseconds=ms))
        except CalendarError:
            return None


@dataclass(frozen=True, slots=True)
class _History:
    """The ticket as the SLA sees it: seen events, status intervals up to the horizon (``as_of`` or
    the first close), and the human replies and customer messages before the horizon."""

    ticket_id: str
    created_at: datetime
    seen: list[TicketEvent]
    intervals: list[StatusInterval]
    horizon: datetime
    talk: Conversation

    @property
    def replies(self) -> list[datetime]:
        return self.talk.replies

    @property
    def current(self) -> StatusCategory:
        return self.intervals[-1].category


def _history(events: Sequence[TicketEvent], statuses: StatusMap, as_of: datetime) -> _History:
    ordered = order_events(events)
    created_at = creation_time(ordered)
    return _bounded(
        ordered[0].ticket_id,
        created_at,
        [e for e in ordered if e.at <= as_of],
        status_intervals(ordered, statuses, as_of, created_at),
        conversation(ordered, created_at, as_of),  # the timeline's rules
    )


def _bounded(
    ticket_id: str,
    created_at: datetime,
    seen: list[TicketEvent],
    intervals: list[StatusInterval],
    talk: Conversation,
) -> _History:
    """The history the SLA sees from the timeline's reading: up to the first close, if any."""
    for index, interval in enumerate(intervals):
        if interval.category is StatusCategory.CLOSED:  # closed is final
            closed = StatusInterval(
                interval.status, interval.category, interval.start, interval.start, interval.ongoing
            )
            intervals = [*intervals[:index], closed]
            break
    horizon = intervals[-1].end
    return _History(
        ticket_id=ticket_id,
        created_at=created_at,
        seen=seen,
        intervals=intervals,
        horizon=horizon,
        talk=Conversation(
            created_at,
            talk.created_by_agent,
            [at for at in talk.replies if at <= horizon],
            [at for at in talk.messages if at <= horizon],
        ),
    )


def _values_set(event: TicketEvent) -> tuple[tuple[str, str], ...]:
    """The condition fields ``event`` sets, normalized: its columns (a null one takes a change
    event's ``to_value`` when the change names that field), and the custom fields it changes."""
    return _condition_values(event.type, event.field, event.to_value, _condition_columns(event))


@functools.lru_cache(maxsize=4096)  # events repeat a few combinations: normalize each once
def _condition_values(
    kind: EventType, changed_field: str | None, to_value: str | None, columns: tuple[str | None, ...]
) -> tuple[tuple[str, str], ...]:
    changed = None
    if to_value is not None:
        changed = (
            normalize_label(changed_field) if kind is EventType.FIELD_CHANGED else CHANGED_ATTRIBUTE.get(kind)
        )
    found = []
    for name, column in zip(_COLUMN_CONDITIONS, columns, strict=True):
        value = to_value if column is None and changed == name else column
        if value is not None and (folded := _normalized(name, value)) is not None:
            found.append((name, folded))
    if changed is not None and kind is EventType.FIELD_CHANGED and changed in _FIELD_CONDITIONS:
        name = _FIELD_CONDITIONS[changed]
        if (folded := _normalized(name, to_value)) is not None:
            found.append((name, folded))
    return tuple(found)


class _AttributeTimeline:
    """A ticket's attributes as they stood after each of its events (``seen``, in time order, so
    acting times, at or creation, never decrease): folded once per ticket, then read at any moment
    by a binary search instead of a fold per question."""

    def __init__(self, seen: list[TicketEvent], created_at: datetime) -> None:
        self._times: list[datetime] = []
        self._states: list[TicketAttributes] = [TicketAttributes()]
        values: dict[str, str] = {}
        tags: tuple[str, ...] | None = None
        for event in seen:
            changed = False
            for name, value in _values_set(event):
                if values.get(name) != value:
                    values[name] = value
                    changed = True
            if event.tags is not None and event.tags != tags:
                tags = event.tags
                changed = True
            self._times.append(max(event.at, created_at))
            self._states.append(_attributes(tuple(values.items()), tags) if changed else self._states[-1])

    def at(self, moment: datetime) -> TicketAttributes:
        """The attributes set by the events acting at or before ``moment``."""
        return self._states[bisect.bisect_right(self._times, moment)]


@functools.lru_cache(maxsize=4096)  # tickets share a few attribute sets: fold each once
def _attributes(values: tuple[tuple[str, str], ...], tags: tuple[str, ...] | None) -> TicketAttributes:
    folded = frozenset(t for t in (normalize_label(tag) for tag in tags or ()) if t is not None)
    return TicketAttributes(tags=folded, **dict(values))


def ticket_attributes(events: Sequence[TicketEvent], at: datetime) -> TicketAttributes:
    """The ticket's attributes in force at ``at`` (what its policy conditions read)."""
    if not events:
        raise SlaError("events: a ticket needs at least one event")
    ordered = order_events(events)
    return _AttributeTimeline([e for e in ordered if e.at <= at], creation_time(ordered)).at(at)


def policy_schedule(calendars: Mapping[str | None, Schedule], policy: SlaPolicy) -> Schedule:
    """The calendar of a policy's business-hours targets: its own, else the ticket's default."""
    found = calendars.get(policy.calendar_id)
    if found is None:
        found = calendars.get(None)
    if found is None:
        raise SlaError(
            f"calendars: no calendar {policy.calendar_id!r} (policy {policy.id!r}) "
            "and no default (None) calendar"
        )
    return found


def _runs(
    intervals: list[StatusInterval], start: datetime, end: datetime, runs_in: AbstractSet[StatusCategory]
) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) during which the status category lets the clock run."""
    runs: list[tuple[datetime, datetime]] = []
    for interval in intervals:
        if interval.category in runs_in:
            a, b = max(interval.start, start), min(interval.end, end)
            if a < b:
                runs.append((a, b))
    return runs


def _progress(
    runs: list[tuple[datetime, datetime]], clock: _Clock, target_ms: int
) -> tuple[int, datetime | None, int]:
    """Elapsed clock time over ``runs``, the instant it reached ``target_ms`` (None if it has not),
    and the time elapsed before the last run."""
    elapsed, reached, before_last = 0, None, 0
    for a, b in runs:
        spent = clock.ms(a, b)
        if elapsed < target_ms <= elapsed + spent:
            reached = clock.add(a, target_ms - elapsed)
        before_last = elapsed
        elapsed += spent
    return elapsed, reached, before_last


class _Started(NamedTuple):  # a tuple, cheaper to build than a dataclass
    """A target instance that has started, with its policy and priority from that moment."""

    type: TargetType
    instance: int
    started_at: datetime
    completed_at: datetime | None  # fulfilled (reply, or entry into a resolved category)
    policy: SlaPolicy
    priority: str | None
    target: Target


def _state(
    started: _Started,
    history: _History,
    calendars: Mapping[str | None, Schedule],
) -> TargetState:
    policy, target = started.policy, started.target
    clock = _Clock(policy_schedule(calendars, policy) if target.business_hours else None)
    if started.type in RUNS_IN:
        runs_in = RUNS_IN[started.type]
        if started.type is TargetType.RESOLUTION:
            runs_in = runs_in - policy.pause_categories
    else:
        runs_in = REPLY_RUNS_IN
    end = started.completed_at if started.completed_at is not None else history.horizon
    target_ms = target.minutes * MS_PER_MINUTE
    runs = _runs(history.intervals, started.started_at, end, runs_in)
    elapsed, reached, before_last = _progress(runs, clock, target_ms)
    if started.completed_at is not None:
        state = TargetStatus.BREACHED if elapsed > target_ms else TargetStatus.ACHIEVED
    elif history.current in runs_in:
        state = TargetStatus.ACTIVE
    else:
        state = TargetStatus.PAUSED
    return _measured(
        _Identity(
            started.type,
            started.instance,
            started.priority,
            target.minutes,
            target.business_hours,
            started.started_at,
            state,
            started.completed_at,
        ),
        policy,
        clock,
        elapsed=elapsed,
        reached=reached,
        horizon=history.horizon,
        last_run=(runs[-1][0], before_last) if runs and runs[-1][1] == end else None,
    )


class _Identity(NamedTuple):
    """What a target is, whatever its clock says (``_measured``)."""

    type: TargetType
    instance: int
    priority: str | None
    target_minutes: int
    business_hours: bool
    started_at: datetime
    state: TargetStatus
    completed_at: datetime | None


def _measured(
    kept: _Identity | TargetState,
    policy: SlaPolicy,
    clock: _Clock,
    *,
    elapsed: int,
    reached: datetime | None,
    horizon: datetime,
    last_run: tuple[datetime, int] | None,
) -> TargetState:
    """The target ``kept`` is (type, instance, start, completion, state: ``_Identity``'s fields)
    under ``policy``, with what its clock says: ``elapsed`` up to its completion or the horizon,
    when it reached its target (None if it has not), and the start of the run its clock is in at
    the horizon with the time elapsed before it (None if it is in none)."""
    target_ms = kept.target_minutes * MS_PER_MINUTE
    remaining = target_ms - elapsed
    breached = elapsed > target_ms
    due_at = reached
    if reached is None and kept.state is not TargetStatus.PAUSED:
        if kept.state is TargetStatus.ACTIVE and last_run is not None:
            # Reckoned from the start of its run, as ``_progress`` will find it: the clock counts
            # whole milliseconds, so the horizon plus the remaining time moves with its fraction.
            since, before = last_run
            due_at = clock.add(since, target_ms - before)
        else:
            due_at = clock.add(kept.completed_at or horizon, remaining)
    at_risk = (
        kept.state is TargetStatus.ACTIVE
        and not breached
        and (
            (policy.at_risk_minutes is not None and remaining <= policy.at_risk_minutes * MS_PER_MINUTE)
            or elapsed * 100 >= policy.at_risk_percent * target_ms
        )
    )
    return TargetState(
        type=kept.type,
        instance=kept.instance,
        policy_id=policy.id,
        priority=kept.priority,
        target_minutes=kept.target_minutes,
        business_hours=kept.business_hours,
        started_at=kept.started_at,
        due_at=due_at,
        state=kept.state,
        breached=breached,
        achieved_at=kept.completed_at if kept.state is TargetStatus.ACHIEVED else None,
        breached_at=reached if breached else None,
        completed_at=kept.completed_at,
        elapsed_ms=elapsed,
        remaining_ms=remaining,
        at_risk=at_risk,
    )


def advanced(
    state: TargetState,
    *,
    status_since: datetime,
    evaluated_at: datetime,
    policy: SlaPolicy,
    calendars: Mapping[str | None, Schedule],
    as_of: datetime,
) -> TargetState:
    """A target of a ticket evaluated at ``evaluated_at``, as ``evaluate`` gives it at ``as_of``
    instead, both at or after the ticket's last event (``TicketSla.status_since`` is when it
    entered its status).  Nothing happened in between but time: a completed or paused target is
    as it was; an active one's last run (from the later of its start and ``status_since``) went on
    to ``as_of``, the earlier runs being closed."""
    if state.state is not TargetStatus.ACTIVE:
        return state
    clock = _Clock(policy_schedule(calendars, policy) if state.business_hours else None)
    since = max(status_since, state.started_at)
    target_ms = state.target_minutes * MS_PER_MINUTE
    closed = state.elapsed_ms - _spent(clock, since, evaluated_at)
    elapsed = closed + _spent(clock, since, as_of)
    if target_ms <= closed:  # reached in a closed run: as it was
        reached = state.due_at
    elif target_ms <= elapsed:  # reached in the last run, as ``_progress`` finds it
        reached = clock.add(since, target_ms - closed)
    else:
        reached = None
    return _measured(
        state, policy, clock, elapsed=elapsed, reached=reached, horizon=as_of, last_run=(since, closed)
    )


def _spent(clock: _Clock, start: datetime, end: datetime) -> int:
    """The clock time of a run from ``start`` to ``end``; none when it is empty (``_runs``)."""
    return clock.ms(start, end) if start < end else 0


def _resolved_since(history: _History) -> datetime | None:
    """When the ticket entered the resolved run it is in at the horizon; None if it is unresolved."""
    since = None
    for interval in reversed(history.intervals):
        if not interval.category.is_resolved:
            break
        since = interval.start
    return since


def _escalations(state: TargetState, policy: SlaPolicy, as_of: datetime) -> list[Escalation]:
    if state.state is TargetStatus.ACHIEVED or state.due_at is None:
        return []
    escalations = []
    for level in policy.escalations:
        fires_at = state.due_at + timedelta(minutes=level.offset_minutes)
        if state.completed_at is not None and fires_at > state.completed_at:
            continue  # fulfilled (late) before this level came due
        escalations.append(
            Escalation(level.level, state.type, state.instance, fires_at, fires_at <= as_of, level.actions)
        )
    return escalations


def evaluate(
    events: Sequence[TicketEvent],
    *,
    policies: PolicySet,
    calendars: Mapping[str | None, Schedule],
    statuses: StatusMap,
    as_of: datetime,
) -> TicketSla:
    """Every SLA target of one ticket at ``as_of`` (see the module rules).  ``calendars`` maps a
    policy's ``calendar_id`` to its business calendar, None to the workspace default; it is needed
    only for business-hours targets."""
    if not events:
        raise SlaError("events: a ticket needs at least one event")
    _check_as_of(as_of)
    return _assess(_history(events, statuses, as_of), policies, calendars, as_of)


def evaluate_snapshot(
    created: TicketEvent,
    replied_at: datetime | None,
    status: tuple[datetime, str] | None,
    *,
    policies: PolicySet,
    calendars: Mapping[str | None, Schedule],
    statuses: StatusMap,
    as_of: datetime,
) -> TicketSla:
    """``evaluate`` of the three events a stored snapshot tells (analytics/sla_state.py): ``created``,
    a customer's ``created`` event; an agent's reply at ``replied_at``; a change into ``status[1]`` at
    ``status[0]`` (the last two optional).  They are read as the timeline reads them, directly rather
    than by its generic pass: the same answer (tests/analytics/test_sla_snapshot.py) for less, which
    matters as snapshot-only tickets are often most of a workspace."""
    if created.type is not EventType.CREATED or created.actor_type is not ActorType.CUSTOMER:
        raise SlaError(f"created must be a customer's created event, got {created!r}")
    _check_as_of(as_of)
    created_at = created.at
    # status_intervals: ``new`` from creation, then the status from the change (at creation when
    # earlier) unless it is not seen yet or repeats ``new``.
    current, start, intervals = INITIAL_STATUS, created_at, []
    if status is not None and status[0] <= as_of and status[1] != INITIAL_STATUS:
        changed_at = max(status[0], created_at)
        if changed_at > start:
            intervals.append(StatusInterval(current, _category(statuses, current), start, changed_at, False))
        current, start = status[1], changed_at
    category = _category(statuses, current)
    end = max(as_of, start)
    intervals.append(StatusInterval(current, category, start, end, category is not StatusCategory.CLOSED))
    # conversation: the customer's request, answered by the reply once it is seen.
    replies = [max(replied_at, created_at)] if replied_at is not None and replied_at <= as_of else []
    seen = [created] if created_at <= as_of else []
    talk = Conversation(created_at, False, replies, [])
    history = _bounded(created.ticket_id, created_at, seen, intervals, talk)
    return _assess(history, policies, calendars, as_of)


def _check_as_of(as_of: datetime) -> None:
    if not isinstance(as_of, datetime) or as_of.utcoffset() is None:
        raise SlaError(f"as_of must be a timezone-aware datetime, got {as_of!r}")


def _category(statuses: StatusMap, status: str) -> StatusCategory:
    category = statuses.category(status)
    assert category is not None  # as in the timeline: status names are never blank here
    return category


def _assess(
    history: _History, policies: PolicySet, calendars: Mapping[str | None, Schedule], as_of: datetime
) -> TicketSla:
    """Every target of the ticket whose SLA history is ``history`` (``evaluate``)."""
    created_at = history.created_at
    attributes_over_time = _AttributeTimeline(history.seen, created_at)

    def started(kind: TargetType, instance: int, at: datetime, completed: datetime | None) -> _Started | None:
        attributes = attributes_over_time.at(at)
        policy, targets = policies.choice(attributes)
        target = targets.get(kind)
        if target is None:
            return None
        return _Started(kind, instance, at, completed, policy, attributes.priority, target)

    begun: list[_Started | None] = [
        started(TargetType.FIRST_RESPONSE, 0, created_at, history.replies[0] if history.replies else None)
    ]
    waits = reply_waits(history.talk)
    later = [(at, i) for at, i in waits if (i is not None and i > 0) or (i is None and history.replies)]
    for instance, (at, answer) in enumerate(later):
        completed = None if answer is None else history.replies[answer]
        begun.append(started(TargetType.NEXT_RESPONSE, instance, at, completed))
    resolved_at = _resolved_since(history)
    for kind in (TargetType.RESOLUTION, TargetType.REQUESTER_WAIT, TargetType.AGENT_WORK):
        begun.append(started(kind, 0, created_at, resolved_at))

    targets: list[TargetState] = []
    escalations: list[Escalation] = []
    for item in begun:
        if item is None:
            continue
        state = _state(item, history, calendars)
        targets.append(state)
        escalations.extend(_escalations(state, item.policy, as_of))
    escalations.sort(key=lambda e: (e.fires_at, e.level, e.target_type, e.instance))
    current = policies.policy_for(attributes_over_time.at(max(as_of, created_at)))
    return TicketSla(
        history.ticket_id, current.id, tuple(targets), tuple(escalations), history.intervals[-1].start
    )


def escalations_due(
    sla: TicketSla, previous_fired: AbstractSet[tuple[int, TargetType, int]]
) -> list[Escalation]:
    """The fired escalations not recorded yet (``previous_fired`` holds the keys already recorded),
    in firing order: a caller that records each returned one fires every level once per target
    instance, whenever and however often it evaluates."""
    return [e for e in sla.escalations if e.fired and e.key not in previous_fired]


def attainment(targets: Iterable[TargetState]) -> dict[TargetType, Attainment]:
    """Achieved and breached (completed) targets per target type; running targets do not count yet."""
    counts: dict[TargetType, list[int]] = {}
    for target in targets:
        if target.state is TargetStatus.ACHIEVED:
            counts.setdefault(target.type, [0, 0])[0] += 1
        elif target.state is TargetStatus.BREACHED:
            counts.setdefault(target.type, [0, 0])[1] += 1
    return {kind: Attainment(achieved, breached) for kind, (achieved, breached) in counts.items()}
