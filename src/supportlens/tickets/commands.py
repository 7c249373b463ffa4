"""What clients may ask of the ticket management API, validated (seed 002's request bodies).

Unknown fields are refused (a typo must not be silently dropped); every error names its field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from supportlens.domain.models import PRIORITY_ALIASES, PRIORITY_ORDER, normalize_label, normalize_priority
from supportlens.json_values import JsonObject

_FORBID = ConfigDict(extra="forbid")
MAX_TAGS = 50
MAX_BULK = 1000


def _priority(value: str) -> str:
    folded = normalize_priority(value)
    if folded not in PRIORITY_ORDER:
        allowed = ", ".join((*PRIORITY_ORDER, *PRIORITY_ALIASES))
        raise ValueError(f"unknown priority {value!r}; use one of {allowed}")
    return folded


def _label(value: str) -> str:
    folded = normalize_label(value)
    if folded is None:
        raise ValueError("must not be blank")
    return folded


def _email(value: str) -> str:
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value.strip()):
        raise ValueError(f"{value!r} is not an email address")
    return value.strip()


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
    return value


def _tags(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))  # first occurrence wins, order kept


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
LongText = Annotated[str, StringConstraints(max_length=100_000)]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Priority = Annotated[str, AfterValidator(_priority)]
Label = Annotated[str, StringConstraints(max_length=100), AfterValidator(_label)]
Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_tags)]


class Contact(BaseModel):
    model_config = _FORBID
    name: Text | None = None
    email: Email | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    role: Text | None = None


class Location(BaseModel):
    model_config = _FORBID
    site_id: Identifier | None = None
    address: Annotated[str, StringConstraints(max_length=1000)] | None = None
    timezone: Annotated[str, AfterValidator(_zone)] | None = None


class NewTicket(BaseModel):
    model_config = _FORBID
    title: Text
    description: LongText | None = None
    customer_id: Identifier | None = None
    contact: Contact | None = None
    category: Label | None = None
    subcategory: Label | None = None
    priority: Priority = "medium"
    severity: Label | None = None
    service_affected: Label | None = None
    location: Location | None = None
    metadata: JsonObject = Field(default_factory=dict)
    channel: Label | None = None
    tags: Tags = Field(default_factory=list)
    assigned_to: Identifier | None = Field(
        default=None, description="An agent id; else routing rules decide."
    )
    group_id: Identifier | None = Field(default=None, description="The team that owns the ticket.")
    custom_fields: JsonObject = Field(
        default_factory=dict, description="Validated against the workspace's tickets schema."
    )


class TicketChanges(BaseModel):
    """Only the fields sent change (PUT and PATCH alike, as in seed 002); ``null`` clears a field.
    ``metadata`` and ``custom_fields`` merge key by key (JSON merge patch: a null value removes the
    key).  ``customer_update`` is a reply to the customer; ``internal_notes`` an internal note."""

    model_config = _FORBID
    status: Label | None = None
    priority: Priority | None = None
    assigned_to: Identifier | None = None
    group_id: Identifier | None = None
    estimated_resolution: datetime | None = None
    internal_notes: LongText | None = None
    customer_update: LongText | None = None
    metadata: JsonObject | None = None
    custom_fields: JsonObject | None = None
    title: Text | None = None
    description: LongText | None = None
    category: Label | None = None
    subcategory: Label | None = None
    severity: Label | None = None
    service_affected: Label | None = None
    channel: Label | None = None
    customer_id: Identifier | None = None
    contact: Contact | None = None
    location: Location | None = None
    tags: Tags | None = None

    @field_validator("estimated_resolution")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone offset (or Z)")
        return value


class StatusNote(BaseModel):
    """Optional words that go with resolving, closing or reopening a ticket."""

    model_config = _FORBID
    customer_update: LongText | None = Field(default=None, description="A reply to the customer.")
    internal_notes: LongText | None = None
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


class Author(BaseModel):
    model_config = _FORBID
    type: Literal["agent", "customer", "system"]
    id: Identifier | None = None
    name: Text | None = None
    email: Email | None = None


class NewComment(BaseModel):
    model_config = _FORBID
    content: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    type: Label = "comment"
    visibility: Literal["customer", "internal"] = "customer"
    author: Author
    metadata: JsonObject = Field(default_factory=dict)


class Escalation(BaseModel):
    model_config = _FORBID
    escalation_level: int = Field(ge=1, le=10)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    notify: list[Email] = Field(default_factory=list, max_length=50)
    metadata: JsonObject = Field(default_factory=dict)
    comments: LongText | None = Field(default=None, description="An internal note that goes with it.")


class TagChange(BaseModel):
    model_config = _FORBID
    add: Tags = Field(default_factory=list)
    remove: Tags = Field(default_factory=list)


class BulkChanges(BaseModel):
    model_config = _FORBID
    status: Label | None = None
    priority: Priority | None = None
    assigned_to: Identifier | None = None
    tags: TagChange | None = None


class BulkRequest(BaseModel):
    model_config = _FORBID
    ticket_ids: Annotated[list[Identifier], Field(min_length=1, max_length=MAX_BULK)]
    changes: BulkChanges


class Relationship(BaseModel):
    model_config = _FORBID
    type: Literal["related_to"] = "related_to"
    ticket_id: Identifier


class Merge(BaseModel):
    model_config = _FORBID
    into: Identifier = Field(description="The ticket that survives (id or number).")
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


class TicketSettingsBody(BaseModel):
    model_config = _FORBID
    prefix: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,10}$")] = Field(
        description="Ticket numbers read <PREFIX>-<YEAR>-<6 digits>."
    )
    reopen_on_customer_reply: bool = True


class AgentBody(BaseModel):
    model_config = _FORBID
    name: Text
    email: Email | None = None
    specialization: Label | None = None
    teams: Annotated[list[Identifier], Field(max_length=50)] = Field(default_factory=list)
    active: bool = True
