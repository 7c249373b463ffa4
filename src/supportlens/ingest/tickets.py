"""Validation of ``support_tickets`` rows: raw JSON value in, canonical snapshot or rejection out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from supportlens.domain.models import (
    SATISFACTION_MAX,
    SATISFACTION_MIN,
    TicketSnapshot,
    normalize_label,
    normalize_priority,
)
from supportlens.ingest.timestamps import TimestampError, parse_timestamp

MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 10_000
MAX_TAGS = 100


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a row went to quarantine: the column at fault (``""`` for the row as a whole) and a message."""

    column: str
    message: str


class Invalid(Exception):
    """A field failed validation; carries the rejection (column and message)."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.rejection = Rejection(column, message)


def identifier(row: dict[str, Any], column: str, *, required: bool = False) -> str | None:
    value = row.get(column)
    if value is None:
        if required:
            raise Invalid(column, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(column, f"expected a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        if required:
            raise Invalid(column, "must not be empty")
        return None
    if len(text) > MAX_ID_LENGTH:
        raise Invalid(column, f"longer than {MAX_ID_LENGTH} characters")
    return text


def optional_text(row: dict[str, Any], column: str) -> str | None:
    value = row.get(column)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(column, f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT_LENGTH:
        raise Invalid(column, f"longer than {MAX_TEXT_LENGTH} characters")
    return value


def label(row: dict[str, Any], column: str) -> str | None:
    return normalize_label(optional_text(row, column))


def timestamp(row: dict[str, Any], column: str, *, required: bool = False) -> datetime | None:
    value = row.get(column)
    if value is None or value == "":
        if required:
            raise Invalid(column, "is required")
        return None
    try:
        return parse_timestamp(value)
    except TimestampError as exc:
        raise Invalid(column, str(exc)) from None


def _satisfaction(row: dict[str, Any]) -> int | None:
    value = row.get("satisfaction_score")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("satisfaction_score", f"expected a number, got {type(value).__name__}")
    if value != value or int(value) != value:
        raise Invalid("satisfaction_score", f"expected a whole number, got {value!r}")
    score = int(value)
    if not SATISFACTION_MIN <= score <= SATISFACTION_MAX:
        raise Invalid(
            "satisfaction_score", f"{score} is outside the scale {SATISFACTION_MIN}..{SATISFACTION_MAX}"
        )
    return score


def tag_list(row: dict[str, Any], column: str = "tags") -> tuple[str, ...]:
    value = row.get(column)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise Invalid(column, f"expected an array of strings, got {type(value).__name__}")
    if len(value) > MAX_TAGS:
        raise Invalid(column, f"more than {MAX_TAGS} tags")
    for tag in value:
        if not isinstance(tag, str):
            raise Invalid(column, f"expected an array of strings, found {type(tag).__name__}")
        if len(tag) > MAX_ID_LENGTH:
            raise Invalid(column, f"a tag is longer than {MAX_ID_LENGTH} characters")
    return tuple(value)


def _not_before_created(created: datetime, row: dict[str, Any], column: str) -> datetime | None:
    moment = timestamp(row, column)
    if moment is not None and moment < created:
        raise Invalid(column, "is before created_at")
    return moment


def validate_ticket(row: object) -> TicketSnapshot | Rejection:
    """Check one posted row.  Unknown fields are ignored, like Tinybird's Events API does."""
    if not isinstance(row, dict):
        return Rejection("", f"expected a JSON object, got {type(row).__name__}")
    try:
        ticket_id = identifier(row, "ticket_id", required=True)
        created = timestamp(row, "created_at", required=True)
        assert ticket_id is not None
        assert created is not None
        return TicketSnapshot(
            ticket_id=ticket_id,
            created_at=created,
            customer_id=identifier(row, "customer_id"),
            agent_id=identifier(row, "agent_id"),
            category=label(row, "category"),
            priority=normalize_priority(optional_text(row, "priority")),
            status=label(row, "status"),
            first_response_at=_not_before_created(created, row, "first_response_at"),
            resolved_at=_not_before_created(created, row, "resolved_at"),
            satisfaction_score=_satisfaction(row),
            tags=tag_list(row),
            updated_at=timestamp(row, "updated_at"),
            channel=label(row, "channel"),
            subject=optional_text(row, "subject"),
            group_id=identifier(row, "group_id"),
        )
    except Invalid as invalid:
        return invalid.rejection
