"""``/v1/customers``: the workspace's customers (seed 001's name, email, plan, company), their contacts
and custom fields, checked against the workspace's customers schema (``/v1/schemas/customers``).

Writes need the admin scope, reads the read or admin scope; a token whose fixed filters name a
customer sees only that customer.  Updates and deletes take ``If-Match`` with the ETag a read gave
(optional; a stale one answers 412).  Errors are problem details (api/errors.py)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from pydantic import BaseModel

from supportlens.api.configuration import admin, reader
from supportlens.api.deps import Caller, runtime
from supportlens.api.errors import ApiError, problem_responses, repository_errors
from supportlens.api.schemas import document_errors
from supportlens.records.customer_model import (
    CustomerChanges,
    CustomerContact,
    CustomerFields,
    CustomerRecord,
    NewCustomer,
)
from supportlens.records.customers import CustomerQuery, InvalidCustomer, PreconditionFailed

router = APIRouter(tags=["customers"], responses=problem_responses(400, 401, 403, 422))

MAX_LIMIT = 100
MAX_PAGE = 1_000_000
_STRONG_ETAG = re.compile(r'^"([0-9]{1,18})"$')
ETAG_HEADER = {"ETag": {"description": "The customer's version, for If-Match.", "schema": {"type": "string"}}}
_IF_MATCH = Header(
    None,
    alias="If-Match",
    description='The ETag of the customer as last read (e.g. "3"); a stale one answers 412.',
)


class Customer(BaseModel):
    id: str
    name: str
    email: str
    plan: str | None
    company: str | None
    contacts: list[CustomerContact]
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, record: CustomerRecord) -> Customer:
        return cls(
            id=record.id,
            name=record.name,
            email=record.email,
            plan=record.plan,
            company=record.company,
            contacts=list(record.contacts),
            custom=record.custom,
            created_at=record.created_at,
            updated_at=record.updated_at,
            version=record.version,
        )


class Pagination(BaseModel):
    total: int
    page: int
    limit: int
    pages: int


class CustomerList(BaseModel):
    data: list[Customer]
    pagination: Pagination


def _etag(version: int) -> str:
    return f'"{version}"'


def _expected_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions an ``If-Match`` accepts: None for any (absent or ``*``).  Weak or malformed
    tags match nothing (If-Match compares strongly), so they answer 412."""
    if if_match is None or if_match.strip() == "*":
        return None
    tags = (_STRONG_ETAG.match(tag.strip()) for tag in if_match.split(","))
    return frozenset(int(tag.group(1)) for tag in tags if tag is not None)


def _fixed_customer(who: Caller) -> str | None:
    return who.token.fixed_filters.get("customer_id")


def _visible(who: Caller, customer_id: str) -> None:
    """A token fixed to one customer finds no other."""
    fixed = _fixed_customer(who)
    if fixed is not None and fixed != customer_id:
        raise ApiError(404, f"no customer {customer_id!r} in this workspace")


@contextmanager
def _customer_errors() -> Iterator[None]:
    with repository_errors():
        try:
            yield
        except PreconditionFailed as exc:
            raise ApiError(412, str(exc), headers={"ETag": _etag(exc.current_version)}) from None
        except InvalidCustomer as exc:
            raise document_errors(exc.problems) from None


def _answer(response: Response, record: CustomerRecord) -> Customer:
    response.headers["ETag"] = _etag(record.version)
    return Customer.of(record)


CUSTOMER_EXAMPLES = {
    "seed": {
        "summary": "A customer with a contact and a custom field",
        "value": {
            "id": "cust_1234567890",
            "name": "Acme Corp",
            "email": "support@acme.example",
            "plan": "enterprise",
            "company": "Acme Corporation",
            "contacts": [
                {
                    "name": "John Smith",
                    "email": "john.smith@example.com",
                    "phone": "+1-555-123-4567",
                    "role": "IT Manager",
                }
            ],
            "custom": {"region": "us-west"},
        },
    }
}


@router.post(
    "/v1/customers",
    status_code=201,
    summary="Create a customer",
    responses={201: {"headers": ETAG_HEADER}, **problem_responses(409)},
)
def create_customer(
    request: Request,
    response: Response,
    new: NewCustomer = Body(openapi_examples=CUSTOMER_EXAMPLES),  # type: ignore[arg-type]
    who: Caller = Depends(admin),
) -> Customer:
    fixed = _fixed_customer(who)
    if fixed is not None and new.id != fixed:
        raise ApiError(403, f"this token may only write customer {fixed!r}")
    with _customer_errors():
        record = runtime(request).customers.create(who.workspace.id, new)
    response.headers["Location"] = f"/v1/customers/{record.id}"
    return _answer(response, record)


@router.get("/v1/customers", summary="The workspace's customers, oldest first, a page at a time")
def list_customers(
    request: Request,
    q: str | None = Query(None, max_length=200, description="Part of the name, email or company."),
    plan: str | None = Query(None, max_length=200),
    company: str | None = Query(None, max_length=200, description="The whole company name, any case."),
    email: str | None = Query(None, max_length=254, description="The whole email address, any case."),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    limit: int = Query(20, ge=1, le=MAX_LIMIT),
    who: Caller = Depends(reader),
) -> CustomerList:
    query = CustomerQuery(text=q, plan=plan, company=company, email=email, customer_id=_fixed_customer(who))
    found = runtime(request).customers.search(who.workspace.id, query, page=page, limit=limit)
    pagination = Pagination(total=found.total, page=page, limit=limit, pages=math.ceil(found.total / limit))
    return CustomerList(data=[Customer.of(record) for record in found.customers], pagination=pagination)


@router.get(
    "/v1/customers/{customer_id}",
    summary="One customer",
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(404)},
)
def get_customer(
    request: Request, response: Response, customer_id: str, who: Caller = Depends(reader)
) -> Customer:
    _visible(who, customer_id)
    with _customer_errors():
        return _answer(response, runtime(request).customers.get(who.workspace.id, customer_id))


@router.put(
    "/v1/customers/{customer_id}",
    summary="Replace a customer",
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(404, 412)},
)
def replace_customer(
    request: Request,
    response: Response,
    customer_id: str,
    fields: CustomerFields,
    if_match: str | None = _IF_MATCH,
    who: Caller = Depends(admin),
) -> Customer:
    _visible(who, customer_id)
    with _customer_errors():
        record = runtime(request).customers.replace(
            who.workspace.id, customer_id, fields, expected_versions=_expected_versions(if_match)
        )
    return _answer(response, record)


@router.patch(
    "/v1/customers/{customer_id}",
    summary="Change some of a customer's fields (custom fields merge; null removes one)",
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(404, 412)},
)
def update_customer(
    request: Request,
    response: Response,
    customer_id: str,
    changes: CustomerChanges,
    if_match: str | None = _IF_MATCH,
    who: Caller = Depends(admin),
) -> Customer:
    _visible(who, customer_id)
    with _customer_errors():
        record = runtime(request).customers.update(
            who.workspace.id, customer_id, changes, expected_versions=_expected_versions(if_match)
        )
    return _answer(response, record)


@router.delete(
    "/v1/customers/{customer_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a customer (its id is not given out again)",
    responses=problem_responses(404, 412),
)
def delete_customer(
    request: Request, customer_id: str, if_match: str | None = _IF_MATCH, who: Caller = Depends(admin)
) -> Response:
    _visible(who, customer_id)
    with _customer_errors():
        runtime(request).customers.delete(
            who.workspace.id, customer_id, expected_versions=_expected_versions(if_match)
        )
    return Response(status_code=204)
