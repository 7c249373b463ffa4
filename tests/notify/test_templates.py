"""Templates fill the seed's variables over the ticket's fields; what cannot render names its field."""

from __future__ import annotations

from typing import Any

import pytest

from supportlens.notify.records import Channel, InvalidField
from supportlens.notify.templates import MAX_SMS_CHARS, TEMPLATE_NAMES, render, ticket_variables
from tests.notify.conftest import SEED_TICKET

SEED_VARIABLES = {
    "customer_name": "John Smith",
    "ticket_number": "SF-2024-001234",
    "status": "In Progress",
    "expected_resolution": "2024-11-01T20:00:00Z",
    "next_update": "2024-11-01T18:00:00Z",
}


def variables(**overrides: Any) -> dict[str, Any]:
    return {**ticket_variables(SEED_TICKET), **overrides}


def test_the_ticket_fields_are_variables_under_the_names_templates_use() -> None:
    found = ticket_variables(SEED_TICKET)
    assert found["ticket_id"] == "ticket_abc123def456"
    assert found["ticket_number"] == "SF-2024-001234"
    assert found["status"] == "in_progress"
    assert found["customer_name"] == "John Smith"
    assert found["customer_email"] == "john.smith@example.com"
    assert found["created_at"] == "2024-11-01T14:30:00Z"
    assert "resolved_at" not in found  # no value: left out, so a template using it says so


def test_status_update_with_the_seed_variables() -> None:
    rendered = render("status_update", Channel.EMAIL, variables(**SEED_VARIABLES))
    assert rendered.subject == (
        "Update on ticket SF-2024-001234: Network connectivity issues in San Francisco office"
    )
    assert rendered.body.startswith("Hello John Smith,\n")
    assert "is now In Progress." in rendered.body  # the request's variable wins over the ticket's status
    assert "Expected resolution: 2024-11-01T20:00:00Z" in rendered.body
    assert "Next update: 2024-11-01T18:00:00Z" in rendered.body


def test_optional_variables_are_left_out_when_not_given() -> None:
    rendered = render("status_update", Channel.EMAIL, variables())
    assert "is now in_progress." in rendered.body
    assert "Expected resolution" not in rendered.body
    assert "Next update" not in rendered.body


@pytest.mark.parametrize("name", [n for n in TEMPLATE_NAMES if n != "custom"])
@pytest.mark.parametrize("channel", list(Channel))
def test_every_built_in_renders_from_the_ticket_alone(name: str, channel: Channel) -> None:
    rendered = render(name, channel, variables())
    assert "SF-2024-001234" in rendered.body
    assert (rendered.subject is None) == (channel is Channel.SMS)


def test_a_variable_nobody_gave_is_a_problem_naming_it() -> None:
    anonymous = {key: value for key, value in variables().items() if key != "customer_name"}
    with pytest.raises(InvalidField) as problem:
        render("status_update", Channel.EMAIL, anonymous)
    assert problem.value.loc == ("variables", "customer_name")
    assert "customer_name" in problem.value.message


def test_an_unknown_template_is_a_problem_naming_template() -> None:
    with pytest.raises(InvalidField) as problem:
        render("weekly_digest", Channel.EMAIL, variables())
    assert problem.value.loc == ("template",)
    assert "status_update" in problem.value.message  # lists the known ones


def test_custom_sends_the_request_text_with_variables_filled_in() -> None:
    rendered = render(
        "custom",
        Channel.EMAIL,
        variables(eta="8PM"),
        subject="Ticket #{{ ticket_number }}:\r\n update",
        message="Hi {{ customer_name }}, {{ eta }} is the ETA.",
    )
    assert rendered.subject == "Ticket #SF-2024-001234: update"  # one header line
    assert rendered.body == "Hi John Smith, 8PM is the ETA.\n"


def test_custom_without_a_subject_names_the_ticket() -> None:
    rendered = render("custom", Channel.EMAIL, variables(), message="Hello")
    assert rendered.subject == "Ticket SF-2024-001234: Network connectivity issues in San Francisco office"


def test_custom_without_a_message_is_a_problem_naming_message() -> None:
    with pytest.raises(InvalidField) as problem:
        render("custom", Channel.SMS, variables())
    assert problem.value.loc == ("message",)


def test_a_missing_variable_in_the_request_text_names_the_variable() -> None:
    with pytest.raises(InvalidField) as problem:
        render("custom", Channel.SMS, variables(), message="ETA {{ eta }}")
    assert problem.value.loc == ("variables", "eta")


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ("{{ ticket_number.__class__.__mro__ }}", "unsafe"),
        ("{{ 'x' * 10000000 }}", "exceed"),
        ("{{ 9 ** 9 ** 9 }}", "not allowed"),
        ("{{ 1 / 0 }}", "division by zero"),
        ("{% for x in %}", "invalid template"),
        ("{{ title.no_such_attribute }}", "no attribute"),
    ],
)
def test_the_sandbox_refuses_what_a_template_must_not_do(message: str, says: str) -> None:
    with pytest.raises(InvalidField) as problem:
        render("custom", Channel.EMAIL, variables(), message=message)
    assert problem.value.loc == ("message",)
    assert says in problem.value.message


def test_a_bad_subject_names_subject() -> None:
    with pytest.raises(InvalidField) as problem:
        render("status_update", Channel.EMAIL, variables(), subject="{{ oops")
    assert problem.value.loc == ("subject",)


def test_an_sms_longer_than_providers_take_names_message() -> None:
    with pytest.raises(InvalidField) as problem:
        render("custom", Channel.SMS, variables(), message="x" * (MAX_SMS_CHARS + 1))
    assert problem.value.loc == ("message",)


def test_comments_are_listed_at_the_end_of_an_email_but_not_an_sms() -> None:
    comments = [
        {
            "author_name": "Sarah Johnson",
            "created_at": "2024-11-01T15:15:00Z",
            "content": "Equipment replaced.",
        }
    ]
    email = render("status_update", Channel.EMAIL, variables(), comments=comments)
    assert email.body.endswith("Comments:\n\nSarah Johnson (2024-11-01T15:15:00Z):\nEquipment replaced.\n")
    sms = render("status_update", Channel.SMS, variables(), comments=comments)
    assert "Equipment replaced" not in sms.body
