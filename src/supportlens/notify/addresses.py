"""Recipient addresses as the providers need them: email addresses and E.164 phone numbers."""

from __future__ import annotations

import re
from email.headerregistry import Address

# The WHATWG HTML "valid e-mail address" (what browsers accept in <input type=email>): an addr-spec
# without quoting or comments, so it is safe in an SMTP envelope and a header as it is.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def email_address(raw: str) -> str:
    """``raw`` trimmed, or ValueError when it is not an email address."""
    address = raw.strip()
    if len(address) > _MAX_EMAIL_LENGTH or not _EMAIL.match(address):
        raise ValueError(f"not an email address: {raw!r}")
    try:
        Address(addr_spec=address)  # what the email package will need to write it (no '..', no leading '.')
    except ValueError:
        raise ValueError(f"not an email address: {raw!r}") from None
    return address


def phone_number(raw: str) -> str:
    """``raw`` in E.164 form (``+15551234567`` from ``+1-555-123-4567``), or ValueError."""
    number = _PHONE_SEPARATORS.sub("", raw)
    if not _E164.match(number):
        raise ValueError(
            f"not a phone number in international form: {raw!r} (expected '+' then 7 to 15 digits)"
        )
    return number


def display_name(raw: str) -> str:
    """A recipient's name for a header: ValueError on control characters (header injection)."""
    if _CONTROL.search(raw):
        raise ValueError("a name cannot contain control characters such as line breaks")
    return raw.strip()
