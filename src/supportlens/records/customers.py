"""The workspaces' customers, in the metadata SQLite file (their own table; small rows updated in
place).  Every method is scoped by workspace id; every write is checked against the workspace's
``customers`` schema (``SchemaRegistry``) and bumps the customer's version, which is its ETag.
Deleting is soft: a deleted customer is not found any more, and its id is not given out again."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from supportlens.auth.repository import Conflict, NotFound
from supportlens.records.customer_model import (
    CustomerChanges,
    CustomerContact,
    CustomerFields,
    CustomerRecord,
    NewCustomer,
    changed,
    document,
    field_of,
)
from supportlens.records.schemas import FieldError, SchemaRegistry
from supportlens.sqlite import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    workspace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL COLLATE NOCASE,
    plan TEXT,
    company TEXT COLLATE NOCASE,
    contacts TEXT NOT NULL,
    custom TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX IF NOT EXISTS customers_by_created ON customers (workspace_id, created_at, id);
CREATE INDEX IF NOT EXISTS customers_by_email ON customers (workspace_id, email);
"""
_COLUMNS = "id, workspace_id, name, email, plan, company, contacts, custom, created_at, updated_at, version"
# The q filter: a substring of the name, email or company (LIKE ignores ASCII case).
_TEXT_MATCH = "(name LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\' OR company LIKE ? ESCAPE '\\')"
_Row = tuple[str, str, str, str, str | None, str | None, str, str, str, str, int]


class PreconditionFailed(Exception):
    """The customer changed since the version the client holds (``If-Match``)."""

    def __init__(self, customer_id: str, current_version: int) -> None:
        super().__init__(
            f'customer {customer_id!r} has changed (its ETag is now "{current_version}"):'
            " read it again and retry"
        )
        self.current_version = current_version


class InvalidCustomer(ValueError):
    """A customer its workspace's customers schema rejects; ``problems`` are paths of the customer
    as clients write it (``custom.tier``)."""

    def __init__(self, problems: list[FieldError]) -> None:
        super().__init__("; ".join(f"{problem.field}: {problem.message}" for problem in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class CustomerQuery:
    """Which customers to list: ``text`` is a case-insensitive substring of name, email or company;
    the others match whole values (email and company ignoring case); ``customer_id`` narrows to one."""

    text: str | None = None
    plan: str | None = None
    company: str | None = None
    email: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerPage:
    customers: list[CustomerRecord]
    total: int  # customers matching the query, over all pages


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")  # fixed width: sorts as it reads


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _load(row: _Row) -> CustomerRecord:
    customer_id, workspace_id, name, email, plan, company, contacts, custom, created, updated, version = row
    return CustomerRecord(
        id=customer_id,
        workspace_id=workspace_id,
        name=name,
        email=email,
        plan=plan,
        company=company,
        contacts=tuple(CustomerContact.model_validate(contact) for contact in json.loads(contacts)),
        custom=json.loads(custom),
        created_at=datetime.fromisoformat(created),
        updated_at=datetime.fromisoformat(updated),
        version=version,
    )


def _stored(fields: CustomerFields) -> tuple[str, str, str | None, str | None, str, str]:
    contacts = json.dumps([contact.model_dump(exclude_none=True) for contact in fields.contacts])
    return fields.name, fields.email, fields.plan, fields.company, contacts, json.dumps(fields.custom)


class CustomerRepository(SqliteStore):
    def __init__(self, path: Path, schemas: SchemaRegistry) -> None:
        super().__init__(path, _SCHEMA)
        self._schemas = schemas

    def _checked(self, workspace_id: str, fields: CustomerFields) -> CustomerFields:
        problems = self._schemas.validate(workspace_id, "customers", document(fields))
        if problems:
            raise InvalidCustomer([FieldError(field_of(p.path), p.message) for p in problems])
        return fields

    @staticmethod
    def _select(conn: sqlite3.Connection, workspace_id: str, customer_id: str) -> CustomerRecord:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM customers WHERE workspace_id = ? AND id = ? AND deleted_at IS NULL",
            (workspace_id, customer_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"no customer {customer_id!r} in this workspace")
        return _load(row)

    @staticmethod
    def _current(
        conn: sqlite3.Connection, workspace_id: str, customer_id: str, expected: Collection[int] | None
    ) -> CustomerRecord:
        """The customer, when it is still at one of the ``expected`` versions (any, when None)."""
        current = CustomerRepository._select(conn, workspace_id, customer_id)
        if expected is not None and current.version not in expected:
            raise PreconditionFailed(customer_id, current.version)
        return current

    def create(self, workspace_id: str, new: NewCustomer) -> CustomerRecord:
        """Store a new customer (``Conflict`` when its id is taken, also by a deleted customer)."""
        fields = self._checked(workspace_id, new)
        customer_id = new.id or f"cust_{secrets.token_hex(8)}"
        now = _now()
        with self._transaction() as conn:
            try:
                conn.execute(
                    "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, NULL)",
                    (workspace_id, customer_id, *_stored(fields), now, now),
                )
            except sqlite3.IntegrityError:
                raise Conflict(
                    f"customer id {customer_id!r} is taken in this workspace (ids of deleted customers"
                    " are not reused)"
                ) from None
            return self._select(conn, workspace_id, customer_id)

    def get(self, workspace_id: str, customer_id: str) -> CustomerRecord:
        with self._lock:
            return self._select(self._conn, workspace_id, customer_id)

    def plan_of(self, workspace_id: str, customer_id: str) -> str | None:
        """The customer's plan (its tier, for SLA and routing conditions); None when the customer has
        none or is not one of the workspace's customers."""
        with self._lock:
            row = self._conn.execute(
                "SELECT plan FROM customers WHERE workspace_id = ? AND id = ? AND deleted_at IS NULL",
                (workspace_id, customer_id),
            ).fetchone()
        return None if row is None else row[0]

    def search(self, workspace_id: str, query: CustomerQuery, *, page: int, limit: int) -> CustomerPage:
        """One page (from 1) of the matching customers, oldest first, and how many match in all."""
        clauses = ["workspace_id = ?", "deleted_at IS NULL"]
        params: list[str | int] = [workspace_id]
        if query.text:
            clauses.append(_TEXT_MATCH)
            params += [_like(query.text)] * 3
        for column, value in (
            ("plan", query.plan),
            ("company", query.company),
            ("email", query.email),
            ("id", query.customer_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = " AND ".join(clauses)
        with self._lock:
            (total,) = self._conn.execute(f"SELECT count(*) FROM customers WHERE {where}", params).fetchone()
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM customers WHERE {where} ORDER BY created_at, id LIMIT ? OFFSET ?",
                [*params, limit, (page - 1) * limit],
            ).fetchall()
        return CustomerPage([_load(row) for row in rows], total)

    def _write(
        self, conn: sqlite3.Connection, current: CustomerRecord, fields: CustomerFields
    ) -> CustomerRecord:
        conn.execute(
            "UPDATE customers SET name = ?, email = ?, plan = ?, company = ?, contacts = ?, custom = ?,"
            " version = version + 1, updated_at = ? WHERE workspace_id = ? AND id = ?",
            (*_stored(fields), _now(), current.workspace_id, current.id),
        )
        return self._select(conn, current.workspace_id, current.id)

    def replace(
        self,
        workspace_id: str,
        customer_id: str,
        fields: CustomerFields,
        *,
        expected_versions: Collection[int] | None = None,
    ) -> CustomerRecord:
        """Replace the whole customer (``PreconditionFailed`` when it is no longer at an expected version)."""
        self._checked(workspace_id, fields)
        with self._transaction() as conn:
            current = self._current(conn, workspace_id, customer_id, expected_versions)
            return self._write(conn, current, fields)

    def update(
        self,
        workspace_id: str,
        customer_id: str,
        changes: CustomerChanges,
        *,
        expected_versions: Collection[int] | None = None,
    ) -> CustomerRecord:
        """Change the fields ``changes`` gives, merging custom fields (see ``CustomerChanges``)."""
        with self._transaction() as conn:
            current = self._current(conn, workspace_id, customer_id, expected_versions)
            try:
                fields = changed(current.fields(), changes)
            except ValidationError as exc:
                raise InvalidCustomer(
                    [FieldError(tuple(error["loc"]), error["msg"]) for error in exc.errors()]
                ) from None
            return self._write(conn, current, self._checked(workspace_id, fields))

    def delete(
        self, workspace_id: str, customer_id: str, *, expected_versions: Collection[int] | None = None
    ) -> None:
        with self._transaction() as conn:
            current = self._current(conn, workspace_id, customer_id, expected_versions)
            conn.execute(
                "UPDATE customers SET deleted_at = ?, version = version + 1"
                " WHERE workspace_id = ? AND id = ?",
                (_now(), workspace_id, current.id),
            )
