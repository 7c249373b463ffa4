"""Custom fields per workspace: a workspace may declare a JSON Schema (Draft 2020-12) for each collection
of seed 001's records model (tickets, customers, responses), and every write of that collection is
checked against it (``SchemaRegistry.validate``), all problems at once with their field paths.

Declarations are checked before they are stored: valid against the 2020-12 meta-schema, at most
``MAX_SCHEMA_BYTES`` and ``MAX_SCHEMA_DEPTH`` deep, and with every ``$ref`` inside the schema itself:
nothing is ever fetched.  They live in the metadata SQLite file; a deleted declaration keeps its row
(without a schema) so that versions only grow and a cached validator can never be taken for a newer one.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from pydantic_core import to_jsonable_python
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from supportlens.auth.repository import NotFound
from supportlens.paths import field_path
from supportlens.records.formats import format_checker
from supportlens.sqlite import SqliteStore

Collection = Literal["tickets", "customers", "responses"]
COLLECTIONS: tuple[Collection, ...] = get_args(Collection)
FieldPath = tuple[str | int, ...]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
MAX_SCHEMA_BYTES = 64 * 1024
MAX_SCHEMA_DEPTH = 64  # far beyond any form of custom fields; keeps checking well inside Python's stack
MAX_MESSAGE_LENGTH = 300  # a message quotes the bad value: a long one is cut

# The relationships of seed 001's template, which SupportLens keeps in its own records.
BUILT_IN_RELATIONSHIPS: dict[str, tuple[Collection, Collection, str]] = {
    "submitted_by": ("tickets", "customers", "a ticket's customer_id"),
    "has_response": ("tickets", "responses", "a ticket's comments"),
    "related_to": ("tickets", "tickets", "the links between tickets"),
}


def relationship_note(kind: str, source: str, target: str) -> tuple[bool, str]:
    """Whether a declared relationship (seed 001's template) is one SupportLens keeps, and what
    becomes of the declaration: relationships are never stored as declarations."""
    built_in = BUILT_IN_RELATIONSHIPS.get(kind)
    if built_in is not None and built_in[:2] == (source, target):
        return True, f"built in as {built_in[2]}: nothing to store"
    known = ", ".join(f"{name} ({ends[0]} -> {ends[1]})" for name, ends in BUILT_IN_RELATIONSHIPS.items())
    return False, f"not supported, ignored: SupportLens keeps {known}"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS custom_field_schemas (
    workspace_id TEXT NOT NULL,
    collection TEXT NOT NULL,
    definition TEXT,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (workspace_id, collection)
);
"""
_META_VALIDATOR = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)
_FORMATS = format_checker()
_REFERENCES = ("$ref", "$dynamicRef")
# Keywords whose children are named subschemas, and keywords whose values are data, not schemas.
_NAMED_SUBSCHEMAS = frozenset({"properties", "patternProperties", "$defs", "dependentSchemas"})
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem of a document or a declaration: where (``("custom", "plan")``, ``("tags", 0)``;
    ``()`` is the whole document) and what is wrong."""

    path: FieldPath
    message: str

    @property
    def field(self) -> str:
        """The path as clients write it: ``custom.plan``, ``tags[0]``, ``names["On hold"]``."""
        return field_path(self.path)


class SchemaDeclarationError(ValueError):
    """A declaration that is not a usable schema; ``problems`` are paths inside the declaration (with
    the declaration's index first when several were declared together)."""

    def __init__(self, problems: list[FieldError]) -> None:
        super().__init__("; ".join(f"{problem.field or 'schema'}: {problem.message}" for problem in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class StoredSchema:
    workspace_id: str
    collection: Collection
    definition: dict[str, Any]
    version: int  # grows by one with each change (declaring or deleting) of this collection's schema
    created_at: datetime
    updated_at: datetime


def _in_order(problems: list[FieldError]) -> list[FieldError]:
    """By path (array indexes in number order), so that answers do not depend on keyword order."""
    return sorted(problems, key=lambda problem: [(isinstance(part, str), part) for part in problem.path])


def _short(message: str) -> str:
    if len(message) <= MAX_MESSAGE_LENGTH:
        return message
    return message[: MAX_MESSAGE_LENGTH - 1] + "…"


def _depth(value: object) -> int:
    deepest = 0
    pending: deque[tuple[object, int]] = deque([(value, 1)])
    while pending:
        node, depth = pending.popleft()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        pending.extend((child, depth + 1) for child in children)
    return deepest


def _references(definition: Mapping[str, Any]) -> Iterator[tuple[FieldPath, str]]:
    """Every ``$ref`` / ``$dynamicRef`` of the schema with its path; data keywords (enum, const,
    default, examples) are not looked into, property names (under ``properties``, ...) may be anything."""
    pending: deque[tuple[FieldPath, object, bool]] = deque([((), definition, False)])
    while pending:
        path, node, named = pending.popleft()
        if isinstance(node, list):
            pending.extend(((*path, index), item, False) for index, item in enumerate(node))
        elif isinstance(node, dict):
            for key, value in node.items():
                if not named and key in _REFERENCES and isinstance(value, str):
                    yield (*path, key), value
                elif named or key not in _DATA_KEYWORDS:
                    pending.append(((*path, key), value, not named and key in _NAMED_SUBSCHEMAS))


def _reference_problems(definition: Mapping[str, Any]) -> list[FieldError]:
    resolver = Registry().resolver_with_root(DRAFT202012.create_resource(definition))
    problems = []
    for path, reference in _references(definition):
        if not reference.startswith("#"):
            problems.append(
                FieldError(
                    path,
                    f"{reference!r} points outside the schema: only references inside it "
                    "('#/$defs/...', '#anchor') are allowed, schemas are never fetched",
                )
            )
            continue
        try:
            resolver.lookup(reference)
        except Unresolvable:
            problems.append(FieldError(path, f"{reference!r} does not resolve inside the schema"))
    return problems


def _declaration_message(error: ValidationError) -> str:
    """The meta-schema's message, with the closest reason when it only says "not valid under any"."""
    if error.context:
        return _short(f"{error.message} ({best_match(error.context).message})")
    return _short(error.message)


def check_declaration(definition: Mapping[str, Any]) -> list[FieldError]:
    """Every reason the declaration cannot be used as a custom-field schema (none: it can)."""
    try:
        text = json.dumps(definition, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        return [FieldError((), "the schema holds NaN or Infinity, which JSON does not allow")]
    size = len(text.encode())
    if size > MAX_SCHEMA_BYTES:
        return [FieldError((), f"the schema is {size} bytes; at most {MAX_SCHEMA_BYTES} are accepted")]
    if _depth(definition) > MAX_SCHEMA_DEPTH:
        return [FieldError((), f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels")]
    dialect = definition.get("$schema")
    if dialect is not None and (not isinstance(dialect, str) or dialect.rstrip("#") != DIALECT):
        return [FieldError(("$schema",), f"only JSON Schema Draft 2020-12 ({DIALECT!r}) is supported")]
    problems = [
        FieldError(tuple(error.absolute_path), _declaration_message(error))
        for error in _META_VALIDATOR.iter_errors(definition)
    ]
    return _in_order(problems or _reference_problems(definition))


def _required_field(error: ValidationError) -> str | None:
    """The property a ``required`` error is about (jsonschema names it only in the message)."""
    if not isinstance(error.instance, dict):
        return None
    for name in error.validator_value:
        if name not in error.instance and error.message.startswith(repr(name)):
            return str(name)
    return None


def _unexpected_fields(error: ValidationError) -> list[str]:
    """The properties an ``additionalProperties: false`` error is about."""
    if not isinstance(error.instance, dict):
        return []
    declared = error.schema.get("properties", {})
    patterns = error.schema.get("patternProperties", {})
    return [
        name
        for name in error.instance
        if name not in declared and not any(re.search(pattern, name) for pattern in patterns)
    ]


def _document_problems(error: ValidationError) -> list[FieldError]:
    """One validation error as problems at the fields they concern: a missing property at its own
    path, each unexpected property at its own."""
    path = tuple(error.absolute_path)
    if error.validator == "required" and (missing := _required_field(error)) is not None:
        return [FieldError((*path, missing), error.message)]
    if error.validator == "additionalProperties" and error.validator_value is False:
        unexpected = _unexpected_fields(error)
        if unexpected:
            return [FieldError((*path, name), f"{name!r} is not a declared field") for name in unexpected]
    return [FieldError(path, _short(error.message))]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SchemaRegistry(SqliteStore):
    """The workspaces' custom-field schemas, and the validation of documents against them.  Compiled
    validators are cached per workspace and collection with the version they were compiled from."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)
        self._validators: dict[tuple[str, str], tuple[int, Draft202012Validator]] = {}

    @staticmethod
    def _load(row: tuple[str, str, str, int, str, str]) -> StoredSchema:
        workspace_id, collection, definition, version, created_at, updated_at = row
        return StoredSchema(
            workspace_id,
            collection,  # type: ignore[arg-type]  # only COLLECTIONS are ever stored
            json.loads(definition),
            version,
            datetime.fromisoformat(created_at),
            datetime.fromisoformat(updated_at),
        )

    def _select(self, workspace_id: str, collection: str) -> StoredSchema | None:
        row = self._conn.execute(
            "SELECT workspace_id, collection, definition, version, created_at, updated_at"
            " FROM custom_field_schemas"
            " WHERE workspace_id = ? AND collection = ? AND definition IS NOT NULL",
            (workspace_id, collection),
        ).fetchone()
        return None if row is None else self._load(row)

    def _store(self, workspace_id: str, collection: Collection, definition: Mapping[str, Any]) -> None:
        now = _now()
        self._conn.execute(
            "INSERT INTO custom_field_schemas VALUES (?, ?, ?, 1, ?, ?)"
            " ON CONFLICT (workspace_id, collection) DO UPDATE SET definition = excluded.definition,"
            " version = version + 1, updated_at = excluded.updated_at,"
            " created_at = CASE WHEN definition IS NULL THEN excluded.created_at ELSE created_at END",
            (workspace_id, collection, json.dumps(definition), now, now),
        )

    def declare(
        self, workspace_id: str, collection: Collection, definition: Mapping[str, Any]
    ) -> StoredSchema:
        """Declare (or replace) the collection's schema; ``SchemaDeclarationError`` when it is not usable."""
        return self.declare_all(workspace_id, [(collection, definition)], numbered=False)[0]

    def declare_all(
        self,
        workspace_id: str,
        declarations: Sequence[tuple[Collection, Mapping[str, Any]]],
        *,
        numbered: bool = True,
    ) -> list[StoredSchema]:
        """Declare several schemas at once: all of them, or none when one is not usable (the
        problems' paths then start with the declaration's index, unless ``numbered`` is false)."""
        problems = [
            FieldError((index, *problem.path) if numbered else problem.path, problem.message)
            for index, (_, definition) in enumerate(declarations)
            for problem in check_declaration(definition)
        ]
        if problems:
            raise SchemaDeclarationError(problems)
        with self._transaction():
            for collection, definition in declarations:
                self._store(workspace_id, collection, definition)
        with self._lock:
            stored = [self._select(workspace_id, collection) for collection, _ in declarations]
        return [schema for schema in stored if schema is not None]

    def schema(self, workspace_id: str, collection: Collection) -> StoredSchema:
        with self._lock:
            found = self._select(workspace_id, collection)
        if found is None:
            raise NotFound(f"no schema is declared for {collection} in this workspace")
        return found

    def schemas(self, workspace_id: str) -> list[StoredSchema]:
        """The workspace's declared schemas, by collection name."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT workspace_id, collection, definition, version, created_at, updated_at"
                " FROM custom_field_schemas WHERE workspace_id = ? AND definition IS NOT NULL"
                " ORDER BY collection",
                (workspace_id,),
            ).fetchall()
        return [self._load(row) for row in rows]

    def remove(self, workspace_id: str, collection: Collection) -> None:
        """Drop the collection's schema: its writes are checked by the models alone again."""
        with self._lock:
            removed = self._conn.execute(
                "UPDATE custom_field_schemas SET definition = NULL, version = version + 1, updated_at = ?"
                " WHERE workspace_id = ? AND collection = ? AND definition IS NOT NULL",
                (_now(), workspace_id, collection),
            ).rowcount
        if not removed:
            raise NotFound(f"no schema is declared for {collection} in this workspace")

    def _validator(self, workspace_id: str, collection: str) -> Draft202012Validator | None:
        key = (workspace_id, collection)
        with self._lock:
            row = self._conn.execute(
                "SELECT version, definition IS NULL FROM custom_field_schemas"
                " WHERE workspace_id = ? AND collection = ?",
                key,
            ).fetchone()
            if row is None or row[1]:
                return None
            cached = self._validators.get(key)
            if cached is not None and cached[0] == row[0]:
                return cached[1]
            stored = self._select(workspace_id, collection)
            if stored is None:  # unreachable under the lock; keeps the types honest
                return None
            # An empty registry: references resolve inside the schema or not at all, never remotely.
            validator = Draft202012Validator(stored.definition, registry=Registry(), format_checker=_FORMATS)
            self._validators[key] = (stored.version, validator)
            return validator

    def validate(self, workspace_id: str, collection: str, document: Mapping[str, Any]) -> list[FieldError]:
        """Every problem of ``document`` under the workspace's schema for ``collection`` (none when it
        declares none).  Values are checked as JSON: datetimes as ISO strings, tuples as arrays."""
        if collection not in COLLECTIONS:
            raise ValueError(f"unknown collection {collection!r}; one of {', '.join(COLLECTIONS)}")
        validator = self._validator(workspace_id, collection)
        if validator is None:
            return []
        try:
            errors = list(validator.iter_errors(to_jsonable_python(dict(document))))
        except RecursionError:
            return [FieldError((), f"the document nests too deeply to check against the {collection} schema")]
        except Unresolvable as exc:
            return [FieldError((), f"the {collection} schema has a reference that does not resolve: {exc}")]
        return _in_order([problem for error in errors for problem in _document_problems(error)])
