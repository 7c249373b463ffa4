"""The string formats custom-field schemas check (``"format": "email"``, ``"date-time"``), and the
email check customers use, so that a customer's email and a schema's email format agree."""

from __future__ import annotations

import re
from datetime import datetime

from jsonschema import FormatChecker

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
# One @, no spaces, a dot in the domain: what a support desk can mail, without a DNS lookup.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
# RFC 3339 section 5.6: a full date, "T" (or "t", or a space as the RFC allows), a full time and an offset.
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def is_email(text: str) -> bool:
    return len(text) <= MAX_EMAIL_LENGTH and _EMAIL.match(text) is not None


def is_date_time(text: str) -> bool:
    if _DATE_TIME.match(text) is None:
        return False
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:  # a day or hour that does not exist, such as 2024-02-30 or 25:00
        return False
    return True


def format_checker() -> FormatChecker:
    """jsonschema's checkers, with ours for email and date-time (jsonschema checks date-time only
    when an optional package is installed, and its email check is a bare "contains @")."""
    checker = FormatChecker()
    checker.checks("email")(lambda value: not isinstance(value, str) or is_email(value))
    checker.checks("date-time")(lambda value: not isinstance(value, str) or is_date_time(value))
    return checker
