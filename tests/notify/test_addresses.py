"""Recipient addresses: E.164 phone numbers from what people type, email addresses the SMTP envelope takes."""

from __future__ import annotations

import pytest

from supportlens.notify.addresses import display_name, email_address, phone_number


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("+1-555-123-4567", "+15551234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (555) 123.4567", "+15551234567"),
    ],
)
def test_phone_numbers_lose_their_separators(typed: str, e164: str) -> None:
    assert phone_number(typed) == e164


@pytest.mark.parametrize(
    "typed", ["555-123-4567", "+0 555 1234567", "+1-555", "+1555123456789012", "+1-555-CALL-NOW", ""]
)
def test_phone_numbers_outside_e164_are_refused(typed: str) -> None:
    with pytest.raises(ValueError, match="international form"):
        phone_number(typed)


@pytest.mark.parametrize(
    "typed", ["john.smith@example.com", " it-team@example.com ", "o'neil+tickets@mail.example.org"]
)
def test_email_addresses_are_kept_trimmed(typed: str) -> None:
    assert email_address(typed) == typed.strip()


@pytest.mark.parametrize(
    "typed",
    [
        "john",
        "john@",
        "@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a b@example.com",
        "a@example.com\r\nBcc: x@evil.test",
        "John <john@example.com>",
        "a@-example.com",
        "x" * 250 + "@e.com",
    ],
)
def test_what_is_not_an_email_address_is_refused(typed: str) -> None:
    with pytest.raises(ValueError, match="not an email address"):
        email_address(typed)


def test_a_name_cannot_smuggle_a_header() -> None:
    assert display_name(" John Smith ") == "John Smith"
    with pytest.raises(ValueError, match="control characters"):
        display_name("John\r\nBcc: x@evil.test")
