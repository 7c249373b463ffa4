"""SLA policies as JSON: conversion to the domain policy, the built-in seed defaults, every mistake
reported on the field at fault (the domain's own rules included), and the repository (order, one
default, the policy set and the calendars an evaluation needs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from supportlens.auth.repository import Conflict, NotFound
from supportlens.configuration.calendars import CalendarDefinition
from supportlens.configuration.repository import ConfigurationRepository
from supportlens.configuration.sla import BUILTIN_POLICY_ID, SlaPolicyDefinition, builtin_policy
from supportlens.domain.calendars import BusinessCalendar, CalendarSchedule
from supportlens.domain.sla import Conditions, EscalationLevel, Target, TargetType
from supportlens.domain.statuses import StatusCategory
from supportlens.paths import field_path

FR, NR, RES = TargetType.FIRST_RESPONSE, TargetType.NEXT_RESPONSE, TargetType.RESOLUTION
POLICY: dict[str, Any] = {
    "name": "Enterprise",
    "conditions": {"priority": ["Critical", "high"], "category": ["Network"], "tags": []},
    "targets": {
        "high": [
            {"type": "first_response", "minutes": 120},
            {"type": "resolution", "minutes": 480, "business_hours": True},
        ],
        "default": [{"type": "first_response", "minutes": 240}],
    },
    "pause_statuses": ["pending"],
    "at_risk_minutes": 30,
    "escalations": [
        {"level": 2, "offset_minutes": 0, "actions": ["reassign"]},
        {"level": 1, "offset_minutes": -30, "actions": ["notify"]},
    ],
}


def errors(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        SlaPolicyDefinition.model_validate(body)
    return {field_path(err["loc"]): err["msg"] for err in caught.value.errors()}


def test_definition_builds_the_domain_policy() -> None:
    policy = SlaPolicyDefinition.model_validate(POLICY).to_domain("p1")
    assert policy.id == "p1"
    assert policy.name == "Enterprise"
    assert policy.conditions == Conditions(
        priority=frozenset({"urgent", "high"}), category=frozenset({"network"})
    )
    assert policy.conditions.tags is None  # an empty list: any tags
    assert policy.target(RES, "high") == Target(RES, 480, True)
    assert policy.target(FR, "low") == Target(FR, 240)
    assert policy.target(NR, "high") is None
    assert policy.pause_categories == frozenset({StatusCategory.PENDING})
    assert (policy.at_risk_percent, policy.at_risk_minutes) == (80, 30)
    assert policy.escalations == (EscalationLevel(1, -30, ("notify",)), EscalationLevel(2, 0, ("reassign",)))
    default = SlaPolicyDefinition.model_validate({"name": "d", "targets": {"default": []}})
    assert default.to_domain("d").pause_categories == frozenset(
        {StatusCategory.PENDING, StatusCategory.ON_HOLD}
    )
    # The stored form reads back as the same definition.
    parsed = SlaPolicyDefinition.model_validate(POLICY)
    assert SlaPolicyDefinition.model_validate_json(parsed.model_dump_json()) == parsed


def test_builtin_policy_is_the_seed_defaults_in_calendar_time() -> None:
    policy = builtin_policy()
    assert policy.id == BUILTIN_POLICY_ID
    expected = {"urgent": (30, 240), "high": (30, 240), "medium": (60, 480), "low": (120, 1440)}
    for priority, (response, resolution) in {**expected, "default": (60, 480), None: (60, 480)}.items():
        assert policy.target(FR, priority) == Target(FR, response)
        assert policy.target(NR, priority) == Target(NR, response)
        assert policy.target(RES, priority) == Target(RES, resolution)
    assert policy.target(FR, "critical") is not None  # any unknown priority takes the default targets


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"targets": {"high": [{"type": "resolution", "minutes": 0}]}},
            "targets.high[0].minutes",
            "at least 1",
        ),
        (
            {"targets": {"default": [{"type": "sla", "minutes": 5}]}},
            "targets.default[0].type",
            "first_response",
        ),
        ({"targets": {"high": []}}, "targets", "'default' entry"),
        (
            {
                "targets": {
                    "default": [{"type": "resolution", "minutes": 5}, {"type": "resolution", "minutes": 6}]
                }
            },
            "targets",
            "once",
        ),
        ({"targets": {"urgent": [], "critical": [], "default": []}}, "targets", "listed twice"),
        ({"at_risk_percent": 0}, "at_risk_percent", "1 to 100"),
        ({"at_risk_minutes": -1}, "at_risk_minutes", "at least 0"),
        ({"pause_statuses": ["waiting"]}, "pause_statuses[0]", "'pending'"),
        (
            {"escalations": [{"level": 1, "offset_minutes": 0, "actions": []}]},
            "escalations[0].actions",
            "at least",
        ),
        (
            {"escalations": [{"level": 0, "offset_minutes": 0, "actions": ["a"]}]},
            "escalations[0].level",
            "at least 1",
        ),
        (
            {"escalations": [{"level": 1, "offset_minutes": 0, "actions": ["a"]}] * 2},
            "escalations",
            "once",
        ),
        ({"conditions": {"plan": ["gold"]}}, "conditions.plan", "Extra inputs"),
        ({"name": " "}, "name", "at least 1 character"),
    ],
)
def test_mistakes_are_reported_on_the_field(change: dict[str, Any], field: str, message: str) -> None:
    found = errors({**POLICY, **change})
    assert field in found, found
    assert message in found[field]


@pytest.fixture
def repository(tmp_path: Path) -> ConfigurationRepository:
    return ConfigurationRepository(tmp_path / "metadata.sqlite")


def definition(name: str, **changes: Any) -> SlaPolicyDefinition:
    return SlaPolicyDefinition.model_validate({**POLICY, "name": name, **changes})


def test_repository_policies(repository: ConfigurationRepository) -> None:
    assert repository.policies("w1") == []
    first = repository.create_policy("w1", definition("A"))
    second = repository.create_policy("w1", definition("B", default=True))
    third = repository.create_policy("w1", definition("C"))
    assert [(p.name, p.position, p.definition.default) for p in repository.policies("w1")] == [
        ("A", 0, False),
        ("B", 1, True),
        ("C", 2, False),
    ]
    with pytest.raises(Conflict):
        repository.create_policy("w1", definition("a"))  # names are unique case-insensitively
    repository.create_policy("w2", definition("A"))  # per workspace
    with pytest.raises(NotFound):
        repository.policy("w2", first.id)

    policies = repository.policy_set("w1")
    assert [p.id for p in policies.policies] == [first.id, third.id]
    assert policies.default.id == second.id
    # Unchanged policies: the same set, with the policy choices it has made already.
    assert repository.policy_set("w1") is policies

    ordered = repository.set_policy_order("w1", [third.id, second.id, first.id])
    assert [p.name for p in ordered] == ["C", "B", "A"]
    assert [p.id for p in repository.policy_set("w1").policies] == [third.id, first.id]
    assert repository.policy_set("w1") is not policies
    for wrong in (
        [third.id, second.id],
        [third.id, second.id, first.id, first.id],
        ["x", first.id, second.id],
    ):
        with pytest.raises(ValueError, match="listed once"):
            repository.set_policy_order("w1", wrong)

    # Making another policy the default takes the flag; replacing keeps the position.
    replaced = repository.replace_policy("w1", third.id, definition("C2", default=True, at_risk_percent=50))
    assert (replaced.name, replaced.position, replaced.definition.at_risk_percent) == ("C2", 0, 50)
    assert replaced.created_at == third.created_at
    assert [p.name for p in repository.policies("w1") if p.definition.default] == ["C2"]
    with pytest.raises(Conflict):
        repository.replace_policy("w1", third.id, definition("A"))

    # Without a default policy the built-in one catches the rest.
    repository.delete_policy("w1", third.id)
    assert repository.policy_set("w1").default.id == BUILTIN_POLICY_ID
    with pytest.raises(NotFound):
        repository.delete_policy("w1", third.id)
    assert repository.policy_set("empty").default == builtin_policy()


def test_calendar_schedules(repository: ConfigurationRepository) -> None:
    assert repository.calendar_choice("w1", "Europe/Paris").by_id().keys() == {None}
    fallback = repository.calendar_choice("w1", "Europe/Paris").by_id()[None]
    assert isinstance(fallback, BusinessCalendar)
    assert fallback.timezone == "Europe/Paris"
    windows = [{"weekday": "monday", "start": "09:00", "end": "17:00"}]
    office = repository.create_calendar(
        "w1", CalendarDefinition.model_validate({"name": "Office", "timezone": "UTC", "windows": windows})
    )
    night = repository.create_calendar(
        "w1",
        CalendarDefinition.model_validate({"name": "Night", "timezone": "Asia/Tokyo", "windows": windows}),
    )
    schedules = repository.calendar_choice("w1", "Europe/Paris").by_id()
    assert schedules.keys() == {None, office.id, night.id}
    assert schedules[None] == schedules[office.id]  # the first calendar is the default
    assert isinstance(schedules[night.id], CalendarSchedule)
    assert schedules[night.id].versions[0].timezone == "Asia/Tokyo"
