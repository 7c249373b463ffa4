"""The SLA engine against a brute-force oracle that steps minute by minute through random histories
(the timeline's: reopens, ties, events out of order, evaluation inside the history) with random
priorities, policies, targets, pause categories and calendars; then hand-written cases: the seed's
"Get SLA Status" example, policy choice, priority changes, pauses, reopens, escalations, at-risk,
business hours and validation."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.domain.calendars import (
    ALWAYS_OPEN,
    BusinessCalendar,
    OpenWindow,
    Schedule,
    default_business_hours,
    is_open,
)
from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.domain.models import normalize_priority
from supportlens.domain.sla import (
    Attainment,
    Conditions,
    EscalationLevel,
    PolicySet,
    SlaError,
    SlaPolicy,
    Target,
    TargetState,
    TargetStatus,
    TargetType,
    TicketSla,
    advanced,
    attainment,
    escalations_due,
    evaluate,
    ticket_attributes,
)
from supportlens.domain.statuses import DEFAULT_STATUS_MAP, StatusCategory
from supportlens.domain.timeline import ticket_time_metrics
from tests.domain.test_timeline import History, at, histories

T0 = at(0)
MINUTE = 60_000
WEEK = 7 * 1440
FR, NR, RES = TargetType.FIRST_RESPONSE, TargetType.NEXT_RESPONSE, TargetType.RESOLUTION
RW, AW = TargetType.REQUESTER_WAIT, TargetType.AGENT_WORK
_C = StatusCategory
UNRESOLVED = frozenset({_C.NEW, _C.OPEN, _C.PENDING, _C.ON_HOLD})
# The categories each status-driven target counts (the module's rules, restated for the oracle).
RUNS_IN = {
    RES: UNRESOLVED,
    RW: frozenset({_C.NEW, _C.OPEN, _C.ON_HOLD}),
    AW: frozenset({_C.NEW, _C.OPEN}),
}
ESCALATIONS = (
    EscalationLevel(1, -30, ("notify",)),
    EscalationLevel(2, 0, ("reassign",)),
    EscalationLevel(3, 60, ("raise_priority",)),
)

SPLIT_HOURS = BusinessCalendar(
    "UTC",
    tuple(
        OpenWindow(day, start, end)
        for day in range(6)
        for start, end in [(time(8), time(8, 50)), (time(9, 10), time(11)), (time(13), time(18, 30))]
    ),
    name="split",
)
CALENDARS: dict[str, Schedule] = {
    "24x7": ALWAYS_OPEN,
    "business": default_business_hours("UTC"),
    "split": SPLIT_HOURS,
}


@functools.cache
def _open_week(name: str) -> tuple[bool, ...]:
    """Whether each minute of the week starting at T0 is open (UTC calendars repeat weekly)."""
    calendar = CALENDARS[name]
    return tuple(is_open(calendar, T0 + timedelta(minutes=m)) for m in range(WEEK))


# --- the random cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    history: History  # its events include the priority changes
    policies: PolicySet
    calendar: str
    shift: int  # minutes the whole history is moved, to land anywhere in the calendar's week

    def open_at(self, minute: int) -> bool:
        return _open_week(self.calendar)[(minute + self.shift) % WEEK]

    def moved(self, moment: datetime) -> datetime:
        return moment + timedelta(minutes=self.shift)

    def exact_minute(self, moment: datetime) -> int:
        """Minutes after the (moved) T0; instants the engine reports must be whole minutes."""
        offset = moment - self.moved(T0)
        assert offset % timedelta(minutes=1) == timedelta(0), moment
        return offset // timedelta(minutes=1)

    def minute(self, moment: datetime | None) -> int | None:
        return None if moment is None else self.exact_minute(moment)


@st.composite
def target_sets(draw: st.DrawFn) -> tuple[Target, ...]:
    return tuple(
        Target(kind, draw(st.one_of(st.integers(1, 90), st.integers(1, 600))), draw(st.booleans()))
        for kind in TargetType
        if draw(st.integers(0, 4))  # each type tracked four times out of five
    )


@st.composite
def sla_policies(draw: st.DrawFn, policy_id: str) -> SlaPolicy:
    pauses = draw(st.frozensets(st.sampled_from(sorted(UNRESOLVED))))
    return SlaPolicy(
        id=policy_id,
        name=policy_id,
        targets={"default": draw(target_sets()), "high": draw(target_sets())},
        pause_categories=pauses,
        at_risk_percent=draw(st.integers(1, 100)),
        at_risk_minutes=draw(st.one_of(st.none(), st.integers(0, 120))),
        escalations=ESCALATIONS,
    )


PRIORITIES = [None, "low", "High", "urgent", "critical"]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    history = draw(histories())
    events = list(history.events)
    created = next(i for i, e in enumerate(events) if e.type is EventType.CREATED)
    events[created] = dataclasses.replace(events[created], priority=draw(st.sampled_from(PRIORITIES)))
    for n in range(draw(st.integers(0, 3))):
        change = TicketEvent(
            event_id=f"p{n}",
            ticket_id="T1",
            at=at(draw(st.integers(0, 400))),
            type=EventType.PRIORITY_CHANGED,
            priority=draw(st.sampled_from(PRIORITIES[1:])),
        )
        events.insert(draw(st.integers(0, len(events))), change)
    # More conversation than the timeline's histories have, so that replies and waits are common.
    for n in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from([EventType.REPLY, EventType.CUSTOMER_MESSAGE]))
        actor = ActorType.AGENT if kind is EventType.REPLY else ActorType.CUSTOMER
        message = TicketEvent(f"c{n}", "T1", at(draw(st.integers(0, 400))), kind, actor)
        events.insert(draw(st.integers(0, len(events))), message)
    urgent = dataclasses.replace(
        draw(sla_policies("vip")), conditions=Conditions(priority=frozenset({"URGENT"}))
    )
    return Case(
        History(events, history.as_of),
        PolicySet((urgent,), draw(sla_policies("std"))),
        draw(st.sampled_from(sorted(CALENDARS))),
        draw(st.integers(0, WEEK - 1)),
    )


# --- the oracle ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    policy_id: str
    priority: str | None
    started: int
    state: TargetStatus
    breached: bool
    elapsed: int
    due: int | None
    achieved: int | None
    breached_at: int | None
    completed: int | None
    at_risk: bool
    escalations: tuple[tuple[int, int, bool], ...]  # (level, fires at, fired)


def _m(moment: datetime) -> int:
    return (moment - T0) // timedelta(minutes=1)


def oracle(case: Case) -> dict[tuple[TargetType, int], Expected]:
    """Every target, decided one minute at a time from the definitions."""
    history = case.history
    events = list(enumerate(history.events))
    created = min(_m(e.at) for _, e in events if e.type is EventType.CREATED)
    seen = [(i, e) for i, e in events if _m(e.at) <= history.as_of]

    def latest(moment: int, value: str) -> str | None:
        """The last non-null ``value`` set by a seen event acting at or before ``moment`` (by its
        time, then arrival; events before creation act at creation)."""
        found = [(_m(e.at), i, getattr(e, value)) for i, e in seen if getattr(e, value) is not None]
        found = [item for item in found if max(item[0], created) <= moment]
        return max(found)[2] if found else None

    def category(minute: int) -> StatusCategory:
        found = DEFAULT_STATUS_MAP.category(latest(minute, "status") or "new")
        assert found is not None
        return found

    end = max(history.as_of, created)
    horizon = next((m for m in range(created, end) if category(m) is _C.CLOSED), end)
    final = category(horizon)
    ordered = sorted(seen, key=lambda item: (_m(item[1].at), item[0]))
    replies = [max(_m(e.at), created) for _, e in ordered if e.is_agent_reply]
    by_agent = any(e.type is EventType.CREATED and e.actor_type is ActorType.AGENT for _, e in events)
    if by_agent:
        replies = replies[1:]
    replies = [m for m in replies if m <= horizon]
    messages = [max(_m(e.at), created) for _, e in ordered if e.type is EventType.CUSTOMER_MESSAGE]
    messages = [m for m in messages if m <= horizon]

    # Waits for a reply: (start, index of the answering reply or None).
    waits: list[tuple[int, int | None]] = []
    waiting = None if by_agent else created
    for m, is_reply, index in sorted(
        [(m, 0, -1) for m in messages] + [(m, 1, i) for i, m in enumerate(replies)]
    ):
        if is_reply and waiting is not None:
            waits.append((waiting, index))
            waiting = None
        elif not is_reply and waiting is None:
            waiting = m
    if waiting is not None:
        waits.append((waiting, None))
    later = [(s, i) for s, i in waits if (i is not None and i > 0) or (i is None and replies)]

    resolved_since = None
    if final.is_resolved:
        unresolved = [m for m in range(created, horizon) if not category(m).is_resolved]
        resolved_since = unresolved[-1] + 1 if unresolved else created

    starts: list[tuple[TargetType, int, int, int | None]] = [
        (FR, 0, created, replies[0] if replies else None)
    ]
    starts += [(NR, n, s, None if i is None else replies[i]) for n, (s, i) in enumerate(later)]
    starts += [(kind, 0, created, resolved_since) for kind in (RES, RW, AW)]

    expected: dict[tuple[TargetType, int], Expected] = {}
    for kind, instance, start, completed in starts:
        priority = normalize_priority(latest(start, "priority"))
        policy = case.policies.policies[0] if priority == "urgent" else case.policies.default
        target = next(
            (
                t
                for t in policy.targets.get(priority or "default", policy.targets["default"])
                if t.type is kind
            ),
            None,
        )
        if target is None:
            continue
        runs_in = RUNS_IN.get(kind, UNRESOLVED)
        if kind is RES:
            runs_in = runs_in - policy.pause_categories
        business = target.business_hours
        elapsed, reached = 0, None
        for m in range(start, horizon if completed is None else completed):
            if category(m) in runs_in and (not business or case.open_at(m)):
                elapsed += 1
                if elapsed == target.minutes:
                    reached = m + 1
        breached = elapsed > target.minutes
        if completed is not None:
            state = TargetStatus.BREACHED if breached else TargetStatus.ACHIEVED
        else:
            state = TargetStatus.ACTIVE if final in runs_in else TargetStatus.PAUSED
        remaining = target.minutes - elapsed
        due = reached
        if due is None and state is not TargetStatus.PAUSED:
            due = start_of = completed if completed is not None else horizon
            counted = 0
            while counted < remaining:
                if not business or case.open_at(due):
                    counted += 1
                due += 1
            assert due >= start_of
        at_risk = (
            state is TargetStatus.ACTIVE
            and not breached
            and (
                (policy.at_risk_minutes is not None and remaining <= policy.at_risk_minutes)
                or elapsed * 100 >= policy.at_risk_percent * target.minutes
            )
        )
        escalations: tuple[tuple[int, int, bool], ...] = ()
        if state is not TargetStatus.ACHIEVED and due is not None:
            escalations = tuple(
                (level.level, due + level.offset_minutes, due + level.offset_minutes <= history.as_of)
                for level in policy.escalations
                if completed is None or due + level.offset_minutes <= completed
            )
        expected[(kind, instance)] = Expected(
            policy.id,
            priority,
            start,
            state,
            breached,
            elapsed,
            due,
            completed if state is TargetStatus.ACHIEVED else None,
            reached if breached else None,
            completed,
            at_risk,
            escalations,
        )
    return expected


def _evaluate(case: Case) -> TicketSla:
    events = [dataclasses.replace(e, at=case.moved(e.at)) for e in case.history.events]
    return evaluate(
        events,
        policies=case.policies,
        calendars={None: CALENDARS[case.calendar]},
        statuses=DEFAULT_STATUS_MAP,
        as_of=case.moved(at(case.history.as_of)),
    )


@settings(max_examples=400, deadline=None)
@given(cases())
def test_targets_match_minute_by_minute_oracle(case: Case) -> None:
    sla = _evaluate(case)
    expected = oracle(case)
    got = {}
    for t in sla.targets:
        assert t.elapsed_ms % MINUTE == 0
        assert t.remaining_ms == t.target_minutes * MINUTE - t.elapsed_ms
        escalations = tuple(
            (e.level, case.exact_minute(e.fires_at), e.fired)
            for e in sla.escalations
            if (e.target_type, e.instance) == (t.type, t.instance)
        )
        got[(t.type, t.instance)] = Expected(
            t.policy_id,
            t.priority,
            case.exact_minute(t.started_at),
            t.state,
            t.breached,
            t.elapsed_ms // MINUTE,
            case.minute(t.due_at),
            case.minute(t.achieved_at),
            case.minute(t.breached_at),
            case.minute(t.completed_at),
            t.at_risk,
            tuple(sorted(escalations)),
        )
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(cases(), st.integers(0, 3 * 1440), st.integers(0, 3 * 1440), st.integers(0, 59_999_999))
def test_an_evaluation_advanced_to_a_later_or_earlier_time_equals_evaluating_then(
    case: Case, first: int, second: int, micros: int
) -> None:
    """Targets evaluated at or after the last event, advanced to another such time (sub-millisecond
    instants too), are the targets evaluated at that time."""
    events = [dataclasses.replace(e, at=case.moved(e.at)) for e in case.history.events]
    last = max(e.at for e in events)
    kept_at = last + timedelta(minutes=first, microseconds=micros)
    asked_at = last + timedelta(minutes=second, microseconds=micros // 7)
    calendars = {None: CALENDARS[case.calendar]}

    def at_time(moment: datetime) -> TicketSla:
        return evaluate(
            events, policies=case.policies, calendars=calendars, statuses=DEFAULT_STATUS_MAP, as_of=moment
        )

    kept = at_time(kept_at)
    assert kept.status_since is not None
    policies = {p.id: p for p in (*case.policies.policies, case.policies.default)}
    moved = tuple(
        advanced(
            target,
            status_since=kept.status_since,
            evaluated_at=kept_at,
            policy=policies[target.policy_id],
            calendars=calendars,
            as_of=asked_at,
        )
        for target in kept.targets
    )
    assert moved == at_time(asked_at).targets


@settings(max_examples=100, deadline=None)
@given(histories())
def test_first_response_agrees_with_the_timeline(history: History) -> None:
    """Same creation, same first human reply: the SLA's first response is the timeline's."""
    policy = SlaPolicy(id="p", name="p", targets={"default": (Target(FR, 60),)})
    as_of = at(history.as_of)
    sla = evaluate(
        history.events, policies=PolicySet((), policy), calendars={}, statuses=DEFAULT_STATUS_MAP, as_of=as_of
    )
    metrics = ticket_time_metrics(history.events, as_of=as_of, statuses=DEFAULT_STATUS_MAP)
    first = sla.target(FR)
    assert first is not None
    assert first.started_at == metrics.created_at
    closed = metrics.time_in_category_ms.get(_C.CLOSED, 0) > 0 or not metrics.ongoing
    if first.completed_at is not None:
        assert (first.completed_at - first.started_at) // timedelta(
            milliseconds=1
        ) == metrics.first_response_ms
    elif not closed:  # a reply after the first close does not count for the SLA
        assert metrics.first_response_ms is None


# --- hand-written cases --------------------------------------------------------------------------------

SEED_START = datetime(2024, 11, 1, 14, 30, tzinfo=UTC)


def _ev(n: int, minutes: float, kind: EventType, **fields: object) -> TicketEvent:
    moment = SEED_START + timedelta(minutes=minutes)
    return TicketEvent(event_id=f"e{n}", ticket_id="T1", at=moment, type=kind, **fields)  # type: ignore[arg-type]


def _policy(policy_id: str = "std", **overrides: object) -> SlaPolicy:
    fields: dict[str, object] = {
        "id": policy_id,
        "name": policy_id.title(),
        "targets": {"default": (Target(FR, 120), Target(NR, 60), Target(RES, 480))},
        "escalations": ESCALATIONS,
    }
    fields.update(overrides)
    return SlaPolicy(**fields)  # type: ignore[arg-type]


def _sla(
    events: list[TicketEvent],
    minutes: float,
    *,
    policies: PolicySet | None = None,
    calendars: dict[str | None, Schedule] | None = None,
) -> TicketSla:
    return evaluate(
        events,
        policies=policies or PolicySet((), _policy()),
        calendars={None: ALWAYS_OPEN} if calendars is None else calendars,
        statuses=DEFAULT_STATUS_MAP,
        as_of=SEED_START + timedelta(minutes=minutes),
    )


def _target(sla: TicketSla, kind: TargetType, instance: int = 0) -> TargetState:
    found = sla.target(kind, instance)
    assert found is not None, (kind, instance)
    return found


def _when(minutes: float) -> datetime:
    return SEED_START + timedelta(minutes=minutes)


def test_seed_get_sla_status_example() -> None:
    """Response target 2 h met after 45 min; resolution 8 h with 6 h 15 min elapsed: 1 h 45 min left."""
    events = [
        _ev(0, 0, EventType.CREATED, actor_type=ActorType.CUSTOMER, priority="high", category="network"),
        _ev(1, 45, EventType.REPLY, actor_type=ActorType.AGENT),
    ]
    sla = _sla(events, 6 * 60 + 15)  # 2024-11-01T20:45Z
    response, resolution = sla.target(FR), sla.target(RES)
    assert response is not None
    assert resolution is not None
    assert response.state is TargetStatus.ACHIEVED
    assert response.elapsed_ms == 45 * MINUTE
    assert response.achieved_at == datetime(2024, 11, 1, 15, 15, tzinfo=UTC)
    assert response.due_at == datetime(2024, 11, 1, 16, 30, tzinfo=UTC)
    assert resolution.state is TargetStatus.ACTIVE
    assert resolution.elapsed_ms == (6 * 60 + 15) * MINUTE
    assert resolution.remaining_ms == (60 + 45) * MINUTE
    assert resolution.due_at == datetime(2024, 11, 1, 22, 30, tzinfo=UTC)
    assert not resolution.breached
    assert sla.target(NR) is None  # the customer has not written again
    # L1 half an hour before the due time, L2 at the breach, L3 an hour after; none fired yet.
    assert [(e.level, e.fires_at, e.fired) for e in sla.escalations] == [
        (1, datetime(2024, 11, 1, 22, 0, tzinfo=UTC), False),
        (2, datetime(2024, 11, 1, 22, 30, tzinfo=UTC), False),
        (3, datetime(2024, 11, 1, 23, 30, tzinfo=UTC), False),
    ]


def test_escalations_fire_once_across_restarts() -> None:
    events = [_ev(0, 0, EventType.CREATED, actor_type=ActorType.CUSTOMER)]
    # Nobody answers: first response (2 h) is due at 16:30, resolution (8 h) at 22:30.
    at_1610 = _sla(events, 100)
    assert [(e.level, e.target_type) for e in at_1610.escalations if e.fired] == [(1, FR)]
    recorded = {e.key for e in escalations_due(at_1610, set())}
    assert recorded == {(1, FR, 0)}
    at_1745 = _sla(events, 195)  # 75 min after the first-response breach
    fired = escalations_due(at_1745, recorded)
    assert [(e.level, e.target_type, e.actions) for e in fired] == [
        (2, FR, ("reassign",)),
        (3, FR, ("raise_priority",)),
    ]
    recorded |= {e.key for e in fired}
    assert escalations_due(_sla(events, 196), recorded) == []
    first = _target(at_1745, FR)
    assert first.state is TargetStatus.ACTIVE
    assert first.breached
    assert first.breached_at == _when(120)
    assert first.remaining_ms == -75 * MINUTE
    # A late reply ends it: levels after the reply never fire; an achieved target never escalates.
    late = [*events, _ev(1, 150, EventType.REPLY, actor_type=ActorType.AGENT)]
    sla = _sla(late, 300)
    assert [(e.level, e.fired) for e in sla.escalations if e.target_type is FR] == [(1, True), (2, True)]
    assert _target(sla, FR).state is TargetStatus.BREACHED
    on_time = [*events, _ev(1, 100, EventType.REPLY, actor_type=ActorType.AGENT)]
    assert [e for e in _sla(on_time, 300).escalations if e.target_type is FR] == []


def test_policy_order_conditions_and_default() -> None:
    vip = _policy(
        "vip", conditions=Conditions(customer_plan=frozenset({"Enterprise"}), tags=frozenset({"VIP", "x"}))
    )
    network = _policy(
        "network", conditions=Conditions(category=frozenset({"NETWORK"}), channel=frozenset({"email"}))
    )
    group = _policy("group", conditions=Conditions(group_id=frozenset({"G1"})))
    policies = PolicySet((vip, network, group), _policy("std"))

    def chosen(**fields: object) -> str:
        created = _ev(0, 0, EventType.CREATED, actor_type=ActorType.CUSTOMER, **fields)
        plan = _ev(1, 0, EventType.FIELD_CHANGED, field="Customer_Plan", to_value="enterprise")
        return _sla([created, plan], 10, policies=policies).policy_id

    assert chosen(category="Network", channel="Email", tags=("vip",)) == "vip"  # first match wins
    assert chosen(category="network", channel="email", tags=("other",)) == "network"
    assert chosen(category="network", channel="chat") == "std"
    assert chosen(group_id="G1") == "group"
    assert chosen(group_id="g1") == "std"  # identifiers are exact
    assert chosen() == "std"
    attributes = ticket_attributes(
        [_ev(0, 0, EventType.CREATED, priority="Critical", tags=("A", " b "))], _when(0)
    )
    assert attributes.priority == "urgent"
    assert attributes.tags == frozenset({"a", "b"})


def test_priority_change_applies_to_targets_started_after_it() -> None:
    """Created low (first response 120 min); raised to urgent at 30, which moves the ticket to the
    urgent policy: the next wait (customer writes at 60) gets its 15-minute target, while first
    response and resolution keep the low ones they started with."""
    urgent = _policy(
        "urgent",
        conditions=Conditions(priority=frozenset({"urgent"})),
        targets={"default": (Target(FR, 10), Target(NR, 15), Target(RES, 60))},
    )
    standard = _policy(
        "std",
        targets={
            "default": (Target(FR, 120), Target(NR, 60), Target(RES, 480)),
            "low": (Target(FR, 240), Target(NR, 120), Target(RES, 960)),
        },
    )
    events = [
        _ev(0, 0, EventType.CREATED, actor_type=ActorType.CUSTOMER, priority="low"),
        _ev(1, 20, EventType.REPLY, actor_type=ActorType.AGENT),
        _ev(2, 30, EventType.PRIORITY_CHANGED, priority="critical"),
        _ev(3, 60, EventType.CUSTOMER_MESSAGE, actor_type=ActorType.CUSTOMER),
    ]
    sla = _sla(events, 80, policies=PolicySet((urgent,), standard))
    assert sla.policy_id == "urgent"
    first, resolution, wait = sla.target(FR), sla.target(RES), sla.target(NR)
    assert first is not None
    assert resolution is not None
    assert wait is not None
    assert (first.policy_id, first.priority, first.target_minutes) == ("std", "low", 240)
    assert (resolution.policy_id, resolution.target_minutes) == ("std", 960)
    assert (wait.policy_id, wait.priority, wait.target_minutes) == ("urgent", "urgent", 15)
    assert wait.started_at == _when(60)
    assert wait.state is TargetStatus.ACTIVE
    assert wait.breached
    assert wait.breached_at == _when(75)
    assert wait.elapsed_ms == 20 * MINUTE


def _paused_and_resumed() -> list[TicketEvent]:
    """Resolution runs 0-60, pauses while waiting for the customer (60-180), runs again from 180."""
    return [
        _ev(0, 0, EventType.CREATED, actor_type=ActorType.CUSTOMER, status="open"),
        _ev(1, 30, EventType.REPLY, actor_type=ActorType.AGENT),
        _ev(2, 60, EventType.STATUS_CHANGED, status="Waiting for Customer"),
        _ev(3, 180, EventType.CUSTOMER_MESSAGE, actor_type=ActorType.CUSTOMER),
        _ev(4, 180, EventType.STATUS_CHANGED, status="open"),
    ]


def test_pause_and_resume() -> None:
    """Resolution runs 0-60, pauses while waiting for the customer (60-180), runs again from 180."""
    events = _paused_and_resumed()
    paused = _target(_sla(events, 120), RES)
    assert paused.state is TargetStatus.PAUSED
    assert paused.elapsed_ms == 60 * MINUTE
    assert paused.due_at is None
    assert not paused.at_risk
    resumed = _sla(events, 200)
    resolution = _target(resumed, RES)
    assert resolution.state is TargetStatus.ACTIVE
    assert resolution.elapsed_ms == 80 * MINUTE
    assert resolution.due_at == _when(200 + 400)
    # The customer's message starts a next-response wait; pending never paused the reply targets.
    wait = _target(resumed, NR)
    assert wait.started_at == _when(180)
    assert wait.elapsed_ms == 20 * MINUTE
    # A policy that pauses nothing counts the pending time too.
    nothing = PolicySet((), _policy(pause_categories=frozenset()))
    assert _target(_sla(events, 200, policies=nothing), RES).elapsed_ms == 200 * MINUTE


def test_an_active_targets_due_time_does_not_move_with_the_evaluation_times_fraction() -> None:
    """Clocks count whole milliseconds; an active target's due time is reckoned from the start of
    the run its clock is in, so evaluations a fraction of a millisecond apart agree, also after a
    pause (resolution: 60 min run, paused 60-180, runs again from 180; 480 min in all)."""
    events = _paused_and_resumed()
    for fraction_us in (0, 1, 499, 500, 501, 999):
        minutes = 200 + fraction_us / 60_000_000
        resolution = _target(_sla(events, minutes), RES)
        assert resolution.due_at == _when(180 + 420), fraction_us
        first = _target(_sla(events[:1], 10 + fraction_us / 60_000_000), FR)
        assert first.due_at == _when(120), fraction_us


def test_reopen_resumes_and_closed_is_final() -> None:
    events = [
        _ev(0, 0, EventType.CREATED, actor_type=ActorType.CUSTOMER, status="open"),
        _ev(1, 100, EventType.STATUS_CHANGED, status="solved"),
        _ev(2, 200, EventType.STATUS_CHANGED, status="open"),
        _ev(3, 300, EventType.STATUS_CHANGED, status="closed"),
        _ev(4, 400, EventType.STATUS_CHANGED, status="open"),
        _ev(5, 410, EventType.REPLY, actor_type=ActorType.AGENT),
    ]
    solved = _target(_sla(events, 150), RES)
    assert solved.state is TargetStatus.ACHIEVED
    assert solved.achieved_at == _when(100)
    reopened = _target(_sla(events, 250), RES)
    assert reopened.state is TargetStatus.ACTIVE
    assert reopened.elapsed_ms == 150 * MINUTE
    assert reopened.achieved_at is None
    closed = _sla(events, 500)
    resolution = _target(closed, RES)
    assert resolution.state is TargetStatus.ACHIEVED
    assert resolution.achieved_at == _when(300)
    assert resolution.elapsed_ms == 200 * MINUTE
    # Unanswered when closed: the first response stopped while resolved and stays unfulfilled
    # (a reply after the close changes nothing); 100 min open before the solve, 100 after the reopen.
    first = _target(closed, FR)
    assert first.state is TargetStatus.PAUSED
    assert first.completed_at is None
    assert first.breached
    assert first.elapsed_ms == 200 * MINUTE


def test_solved_without_reply_neither_breaches_nor_counts_as_answered() -> None:
    events = [
        _ev(0, 0, EventType.CREATED, actor_type=ActorType.CUSTOMER),
        _ev(1, 30, EventType.STATUS_CHANGED, status="resolved"),
    ]
    sla = _sla(events, 24 * 60)
    first = _target(sla, FR)
    assert first.state is TargetStatus.PAUSED
    assert not first.breached
    assert first.elapsed_ms == 30 * MINUTE
    assert first.due_at is None
    assert [e for e in sla.escalations if e.target_type is FR] == []
    assert attainment(sla.targets) == {RES: Attainment(achieved=1)}


def test_at_risk_by_percent_and_by_minutes() -> None:
    events = [_ev(0, 0, EventType.CREATED, actor_type=ActorType.CUSTOMER)]
    # Default 80 %: first response (120 min) is at risk from 96 minutes on.
    assert not _target(_sla(events, 95), FR).at_risk
    assert _target(_sla(events, 96), FR).at_risk
    assert not _target(_sla(events, 121), FR).at_risk  # breached, not at risk
    by_minutes = PolicySet((), _policy(at_risk_percent=100, at_risk_minutes=30))
    assert not _target(_sla(events, 89, policies=by_minutes), FR).at_risk
    assert _target(_sla(events, 90, policies=by_minutes), FR).at_risk


def test_business_hours_due_over_the_weekend_and_calendar_lookup() -> None:
    """A Friday 16:00 ticket with a 2-business-hour first response is due Monday 10:00."""
    friday = datetime(2024, 3, 8, 16, 0, tzinfo=UTC)
    events = [TicketEvent("e0", "T1", friday, EventType.CREATED, ActorType.CUSTOMER)]
    policy = _policy(targets={"default": (Target(FR, 120, business_hours=True),)}, calendar_id="eu")
    calendars: dict[str | None, Schedule] = {"eu": default_business_hours("UTC"), None: ALWAYS_OPEN}
    sla = evaluate(
        events,
        policies=PolicySet((), policy),
        calendars=calendars,
        statuses=DEFAULT_STATUS_MAP,
        as_of=friday + timedelta(days=1),
    )
    first = _target(sla, FR)
    assert first.state is TargetStatus.ACTIVE  # a closed calendar does not pause
    assert first.elapsed_ms == 60 * MINUTE
    assert first.due_at == datetime(2024, 3, 11, 10, 0, tzinfo=UTC)
    # An unknown calendar id falls back to the default (None) calendar; no calendar at all is an error.
    fallback = evaluate(
        events,
        policies=PolicySet((), dataclasses.replace(policy, calendar_id="missing")),
        calendars={None: default_business_hours("UTC")},
        statuses=DEFAULT_STATUS_MAP,
        as_of=friday + timedelta(days=1),
    )
    assert fallback.targets == sla.targets
    with pytest.raises(SlaError, match="calendars"):
        evaluate(
            events, policies=PolicySet((), policy), calendars={}, statuses=DEFAULT_STATUS_MAP, as_of=friday
        )


def test_agent_created_ticket_and_next_responses() -> None:
    """An agent's first public message on its own ticket is the request; each later customer wait
    is one next-response instance."""
    events = [
        _ev(0, 0, EventType.CREATED, actor_type=ActorType.AGENT),
        _ev(1, 5, EventType.REPLY, actor_type=ActorType.AGENT),  # the request
        _ev(2, 10, EventType.CUSTOMER_MESSAGE, actor_type=ActorType.CUSTOMER),
        _ev(3, 40, EventType.REPLY, actor_type=ActorType.AGENT),  # the first response
        _ev(4, 50, EventType.CUSTOMER_MESSAGE, actor_type=ActorType.CUSTOMER),
        _ev(5, 55, EventType.CUSTOMER_MESSAGE, actor_type=ActorType.CUSTOMER),
        _ev(6, 80, EventType.REPLY, actor_type=ActorType.BOT),
        _ev(7, 130, EventType.REPLY, actor_type=ActorType.AGENT),
        _ev(8, 140, EventType.CUSTOMER_MESSAGE, actor_type=ActorType.CUSTOMER),
    ]
    sla = _sla(events, 150)
    assert _target(sla, FR).completed_at == _when(40)
    first_wait, second_wait = _target(sla, NR, 0), _target(sla, NR, 1)
    assert (first_wait.started_at, first_wait.completed_at) == (_when(50), _when(130))
    assert first_wait.state is TargetStatus.BREACHED
    assert first_wait.breached_at == _when(110)
    assert second_wait.state is TargetStatus.ACTIVE
    assert second_wait.elapsed_ms == 10 * MINUTE
    assert sla.target(NR, 2) is None
    counts = attainment([*sla.targets, *sla.targets])
    assert counts[FR] == Attainment(achieved=2)
    assert counts[NR] == Attainment(breached=2)
    assert counts[NR].rate == 0.0
    assert counts[FR].rate == 1.0
    assert Attainment().rate is None


def test_requester_wait_and_agent_work_targets() -> None:
    events = [
        _ev(0, 0, EventType.CREATED, actor_type=ActorType.CUSTOMER, status="open"),
        _ev(1, 30, EventType.STATUS_CHANGED, status="on_hold"),
        _ev(2, 90, EventType.STATUS_CHANGED, status="pending"),
        _ev(3, 120, EventType.STATUS_CHANGED, status="open"),
    ]
    policy = _policy(targets={"default": (Target(RW, 600), Target(AW, 600))})
    sla = _sla(events, 150, policies=PolicySet((), policy))
    assert _target(sla, RW).elapsed_ms == 120 * MINUTE  # open + on hold
    assert _target(sla, AW).elapsed_ms == 60 * MINUTE  # open only


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Target(FR, 0), "Target.minutes"),
        (lambda: Target(FR, True), "Target.minutes"),
        (lambda: Target("later", 10), "Target.type"),  # type: ignore[arg-type]
        (lambda: Target(FR, 10, business_hours="yes"), "Target.business_hours"),  # type: ignore[arg-type]
        (lambda: EscalationLevel(0, 0, ("notify",)), "EscalationLevel.level"),
        (lambda: EscalationLevel(1, 0, ()), "EscalationLevel.actions"),
        (lambda: EscalationLevel(1, 0, "notify"), "EscalationLevel.actions"),  # type: ignore[arg-type]
        (lambda: EscalationLevel(1, 1.5, ("notify",)), "EscalationLevel.offset_minutes"),  # type: ignore[arg-type]
        (lambda: Conditions(category=frozenset({3})), "Conditions.category"),  # type: ignore[arg-type]
        (lambda: _policy(id=" "), "SlaPolicy.id"),
        (lambda: _policy(targets={"high": (Target(FR, 10),)}), "SlaPolicy.targets"),
        (lambda: _policy(targets={"default": (), "urgent": (), "Critical": ()}), "SlaPolicy.targets"),
        (lambda: _policy(targets={"default": (Target(FR, 10), Target(FR, 20))}), "SlaPolicy.targets"),
        (lambda: _policy(pause_categories=frozenset({"waiting"})), "SlaPolicy.pause_categories"),
        (lambda: _policy(at_risk_percent=0), "SlaPolicy.at_risk_percent"),
        (lambda: _policy(at_risk_minutes=-1), "SlaPolicy.at_risk_minutes"),
        (lambda: _policy(escalations=ESCALATIONS + ESCALATIONS[:1]), "SlaPolicy.escalations"),
        (lambda: _policy(calendar_id=""), "SlaPolicy.calendar_id"),
        (lambda: PolicySet((_policy("a"),), _policy("a")), "PolicySet"),
        (lambda: _sla([], 0), "events"),
        (
            lambda: evaluate(
                [_ev(0, 0, EventType.CREATED)],
                policies=PolicySet((), _policy()),
                calendars={},
                statuses=DEFAULT_STATUS_MAP,
                as_of=datetime(2024, 11, 1),
            ),
            "as_of",
        ),
    ],
)
def test_validation_errors_name_the_field(build: object, message: str) -> None:
    with pytest.raises(SlaError, match=message):
        build()  # type: ignore[operator]


def test_definitions_normalize() -> None:
    policy = _policy(
        targets={"DEFAULT": [Target("resolution", 30)], "Critical": (Target(FR, 5),)},  # type: ignore[arg-type,dict-item]
        pause_categories=frozenset({"pending"}),  # type: ignore[arg-type]
        escalations=(ESCALATIONS[2], ESCALATIONS[0]),
    )
    assert dict(policy.targets) == {"default": (Target(RES, 30),), "urgent": (Target(FR, 5),)}
    assert policy.pause_categories == frozenset({_C.PENDING})
    assert [level.level for level in policy.escalations] == [1, 3]
    assert policy.target(FR, "urgent") == Target(FR, 5)
    assert policy.target(FR, "low") is None  # the default entry has no first-response target
    assert Conditions(priority=frozenset()).priority is None
    assert Conditions(channel=frozenset({" Email "})).channel == frozenset({"email"})
