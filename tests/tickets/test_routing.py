"""Routing rules without HTTP: durations, conditions, turns, and what the router hands the ticket
service (tickets/routing.py, tickets/routing_service.py)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from supportlens.runtime import Runtime
from supportlens.tickets.records import Agent, TicketRecord
from supportlens.tickets.routing import (
    Actions,
    Conditions,
    Rule,
    assign_target,
    least_loaded,
    next_in_turn,
    parse_duration,
    worth_trying,
)
from supportlens.tickets.routing_store import new_rule_id
from supportlens.workers.periodic import Periodic

AT = datetime(2024, 11, 1, 15, 0, tzinfo=UTC)


def _ticket(**fields: object) -> TicketRecord:
    values: dict[str, object] = {
        "id": "ticket_1",
        "number": "ACME-2024-000001",
        "workspace_id": "ws",
        "title": "Network is down in the SF office",
        "status": "open",
        "created_at": AT,
        "updated_at": AT,
        "version": 1,
        "priority": "high",
        "category": "network",
    }
    values.update(fields)
    return TicketRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("2 hours", 120),
        ("30 minutes", 30),
        ("1 hour 30 minutes", 90),
        ("1.5 hours", 90),
        ("1 hour, 15 minutes", 75),
        ("1 day and 2 hours", 1560),
        ("45m", 45),
        ("  4 HOURS ", 240),
    ],
)
def test_durations_as_the_seed_writes_them(text: str, minutes: int) -> None:
    assert parse_duration(text) == minutes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2 hourz", "unknown unit 'hourz'"),
        ("soon", "is not a duration"),
        ("", "is not a duration"),
        ("0.5 minutes", "whole number of minutes"),
        ("0 hours", "between 1 minute and 366 days"),
        ("400 days", "between 1 minute and 366 days"),
        ("1 hour" * 30, "at most 100 characters"),
    ],
)
def test_bad_durations_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_keywords_match_whole_words_of_title_or_description_in_any_case() -> None:
    outage = Conditions(keywords=("outage", "down"))
    assert outage.matches(_ticket(title="Total OUTAGE since 2pm"), None)
    assert outage.matches(_ticket(title="Help", description="The link is down."), None)
    assert not outage.matches(_ticket(title="Slow download of the update"), None)
    phrase = Conditions(keywords=("not working",))
    assert phrase.matches(_ticket(title="VPN not working"), None)


def test_every_given_condition_must_hold_and_none_matches_all() -> None:
    assert Conditions().matches(_ticket(category=None, priority=None), None)
    rule = Conditions(category=("network",), priority=("high", "urgent"), customer_tier=("enterprise",))
    assert rule.matches(_ticket(), "Enterprise")
    assert not rule.matches(_ticket(), "starter")
    assert not rule.matches(_ticket(), None)
    assert not rule.matches(_ticket(priority="low"), "enterprise")
    assert not Conditions(channel=("email",)).matches(_ticket(channel="phone"), None)


def test_a_change_routes_again_only_through_rules_that_read_a_changed_field() -> None:
    by_category = Rule("r1", "r1", Conditions(category=("billing",)), Actions(assign_to="a1"))
    by_words = Rule("r2", "r2", Conditions(keywords=("refund",)), Actions(assign_to="a1"))
    everything = Rule("r3", "r3", Conditions(), Actions(assign_to="a1"))
    inactive = replace(everything, active=False)
    assert [
        r.id
        for r in (by_category, by_words, everything)
        if worth_trying(r, created=True, changed=frozenset())
    ] == [
        "r1",
        "r2",
        "r3",
    ]
    assert not worth_trying(inactive, created=True, changed=frozenset())
    assert worth_trying(by_category, created=False, changed=frozenset({"category"}))
    assert not worth_trying(by_category, created=False, changed=frozenset({"status"}))
    assert worth_trying(by_words, created=False, changed=frozenset({"description"}))
    assert not worth_trying(everything, created=False, changed=frozenset({"category"}))


def test_assign_to_names_an_agent_or_a_team() -> None:
    agents = [Agent("a1", "Ann", teams=("network",)), Agent("a2", "Bob", teams=("voice",))]
    assert assign_target("a1", agents).agent_id == "a1"  # type: ignore[union-attr]
    assert assign_target("voice", agents).team == "voice"  # type: ignore[union-attr]
    assert assign_target("team:future", agents).team == "future"  # type: ignore[union-attr]
    assert assign_target("nobody", agents) is None


def test_turns_go_round_and_survive_members_coming_and_going() -> None:
    members = ["a1", "a2", "a3"]
    assert next_in_turn(members, None) == "a1"
    assert next_in_turn(members, "a1") == "a2"
    assert next_in_turn(members, "a3") == "a1"
    assert next_in_turn(["a1", "a3"], "a2") == "a3"  # a2 left: a3 is next all the same


def test_least_loaded_breaks_ties_by_agent_id() -> None:
    assert least_loaded({"a2": 1, "a1": 3, "a3": 0}) == "a3"
    assert least_loaded({"a3": 1, "a2": 1, "a1": 2}) == "a2"


def test_the_router_hands_over_every_address_to_notify_once(runtime: Runtime) -> None:
    """What ``TicketService`` passes to its notifier after storing the ticket."""
    workspace = runtime.metadata.create_workspace("acme")
    store = runtime.routing.store
    first = Rule(
        new_rule_id(), "on call", Conditions(keywords=("down",)), Actions(notify=("oncall@example.com",))
    )
    second = Rule(
        new_rule_id(),
        "managers",
        Conditions(category=("network",)),
        Actions(notify=("boss@example.com", "oncall@example.com")),
    )
    unrelated = Rule(
        new_rule_id(), "voice", Conditions(category=("voice",)), Actions(notify=("voice@example.com",))
    )
    for rule in (first, second, unrelated):
        store.create_rule(workspace.id, rule)

    routed = runtime.routing(_ticket(workspace_id=workspace.id), created=True, changed=frozenset())

    assert routed.notify == ["oncall@example.com", "boss@example.com"]
    assert [details["rule_name"] for _, details in routed.applied] == ["on call", "managers"]
    assert routed.applied[1][1]["actions"] == {"notify": ["boss@example.com", "oncall@example.com"]}


def test_the_periodic_worker_runs_its_task_with_the_time() -> None:
    seen: list[datetime] = []
    ran = threading.Event()

    def task(now: datetime) -> int:
        seen.append(now)
        ran.set()
        return 0

    worker = Periodic("test", task, interval=0.01)
    worker.start()
    assert ran.wait(timeout=10)
    worker.stop()
    assert seen[0].tzinfo is UTC


def test_a_periodic_worker_with_no_interval_starts_no_thread() -> None:
    worker = Periodic("off", lambda now: pytest.fail("ran"), interval=0)
    worker.start()
    assert worker._thread is None
    worker.stop()
