"""A customer: seed 001's fields (name, email, plan, company), seed 002's contacts (name, email, phone,
role) and the workspace's custom fields; as clients write it, as a partial change, and as stored.

The workspace's ``customers`` schema sees a customer as seed 001 does, one flat document:
``{name, email, plan, company, ...custom}`` (``document``); its problems point back at the fields
clients wrote (``field_of``: a custom field ``tier`` is ``custom.tier``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from supportlens.json_values import storable_json
from supportlens.records.formats import MAX_EMAIL_LENGTH, is_email
from supportlens.records.schemas import FieldPath

# The customer's own fields in the schema's document; custom fields may not reuse these names.
DOCUMENT_FIELDS = ("name", "email", "plan", "company")
RESERVED_FIELDS = frozenset({*DOCUMENT_FIELDS, "id", "contacts", "custom", "created_at", "updated_at"})
MAX_CONTACTS = 100
MAX_CUSTOM_BYTES = 32 * 1024
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


def _email(text: str) -> str:
    if not is_email(text):
        raise ValueError(f"{text!r} is not an email address")
    return text


def _custom(fields: dict[str, Any]) -> dict[str, Any]:
    reserved = sorted(RESERVED_FIELDS.intersection(fields))
    if reserved:
        raise ValueError(f"{', '.join(reserved)}: built-in fields, set at the top level, not in custom")
    storable_json(fields)
    size = len(json.dumps(fields, separators=(",", ":")).encode())
    if size > MAX_CUSTOM_BYTES:
        raise ValueError(f"custom fields take {size} bytes; at most {MAX_CUSTOM_BYTES} are accepted")
    return fields


Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_EMAIL_LENGTH),
    AfterValidator(_email),
]
CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
CustomFields = Annotated[dict[str, Any], AfterValidator(_custom)]


class CustomerContact(BaseModel):
    """A person to reach at the customer (seed 002's ticket ``contact``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Label | None = None
    email: Email | None = None
    phone: Phone | None = None
    role: Label | None = None

    @model_validator(mode="after")
    def _reachable(self) -> CustomerContact:
        if self.name is None and self.email is None:
            raise ValueError("a contact needs a name or an email")
        return self


class CustomerFields(BaseModel):
    """A whole customer, as PUT replaces it."""

    model_config = ConfigDict(extra="forbid")
    name: Label
    email: Email
    plan: Label | None = Field(None, description="The customer's tier, which SLA and routing rules match.")
    company: Label | None = None
    contacts: list[CustomerContact] = Field(default_factory=list, max_length=MAX_CONTACTS)
    custom: CustomFields = Field(
        default_factory=dict, description="Fields the workspace's customers schema declares."
    )


class NewCustomer(CustomerFields):
    """A customer to create: the client may choose its id (``cust_1234567890``)."""

    id: CustomerId | None = Field(None, description="Generated as cust_<random> when left out.")


class CustomerChanges(BaseModel):
    """A PATCH: only the fields given change; ``custom`` is merged key by key, a null removing a key."""

    model_config = ConfigDict(extra="forbid")
    name: Label | None = None
    email: Email | None = None
    plan: Label | None = None  # null clears it
    company: Label | None = None
    contacts: list[CustomerContact] | None = Field(None, max_length=MAX_CONTACTS)
    custom: dict[str, Any] | None = None

    @field_validator("name", "email", "contacts", "custom")
    @classmethod
    def _not_null(cls, value: object) -> object:
        """A customer always has these: null cannot clear them (leaving them out keeps them)."""
        if value is None:
            raise ValueError("may not be null; leave the field out to keep its value")
        return value


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: str
    workspace_id: str
    name: str
    email: str
    plan: str | None
    company: str | None
    contacts: tuple[CustomerContact, ...]
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int  # grows by one with every change: the ETag

    def fields(self) -> CustomerFields:
        return CustomerFields(
            name=self.name,
            email=self.email,
            plan=self.plan,
            company=self.company,
            contacts=list(self.contacts),
            custom=self.custom,
        )


def changed(current: CustomerFields, changes: CustomerChanges) -> CustomerFields:
    """``current`` with the PATCH applied (ValidationError when the merged custom fields are not valid)."""
    given = changes.model_dump(exclude_unset=True)
    merged = current.model_dump() | {key: value for key, value in given.items() if key != "custom"}
    custom = current.custom | given.get("custom", {})
    merged["custom"] = {key: value for key, value in custom.items() if value is not None}
    return CustomerFields.model_validate(merged)


def document(fields: CustomerFields) -> dict[str, Any]:
    """The customer as the workspace's customers schema sees it (seed 001): absent values left out."""
    own = {name: getattr(fields, name) for name in DOCUMENT_FIELDS if getattr(fields, name) is not None}
    return own | fields.custom


def field_of(path: FieldPath) -> FieldPath:
    """Where a problem at ``path`` of the schema's document is in the customer clients write."""
    if not path or path[0] in DOCUMENT_FIELDS:
        return path
    return ("custom", *path)
