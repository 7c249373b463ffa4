"""``/v1/schemas``: the JSON Schemas (Draft 2020-12) a workspace declares for the custom fields of its
tickets, customers and responses (comments), one per collection, or all at once from seed 001's
template document (``POST /v1/imports/schema-template``).  Every write of a collection is checked
against its schema (records/schemas.py).

Writes need the admin scope, reads the read or admin scope; errors are problem details (api/errors.py),
a declaration that is not a usable schema a 422 naming each bad place inside it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from supportlens.api.configuration import admin, reader
from supportlens.api.deps import Caller, runtime
from supportlens.api.errors import invalid_fields, problem_responses, repository_errors
from supportlens.records.schemas import (
    COLLECTIONS,
    Collection,
    FieldError,
    FieldPath,
    SchemaDeclarationError,
    StoredSchema,
    relationship_note,
)

router = APIRouter(tags=["schemas"], responses=problem_responses(400, 401, 403, 422))

ONE_SCHEMA = "/v1/schemas/{collection}"
# Not /v1/schemas/import: that path is one collection's, and "import" is no collection.
TEMPLATE_IMPORT = "/v1/imports/schema-template"


def document_errors(problems: Sequence[FieldError], prefix: FieldPath = ("body",)) -> RequestValidationError:
    """A 422 listing every problem, each at ``prefix`` + its path (``body.custom.tier``)."""
    return invalid_fields([(problem.path, problem.message) for problem in problems], prefix)


class CollectionSchema(BaseModel):
    collection: Collection
    json_schema: dict[str, Any]
    version: int = Field(description="Grows by one with each change of this collection's schema.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, stored: StoredSchema) -> CollectionSchema:
        return cls(
            collection=stored.collection,
            json_schema=stored.definition,
            version=stored.version,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
        )


class CollectionSchemaList(BaseModel):
    data: list[CollectionSchema]
    total: int


class TemplateCollection(BaseModel):
    """One collection of seed 001's template; its name, description, icon and color are not kept."""

    id: str = Field(description="tickets, customers or responses")
    name: str | None = None
    description: str | None = None
    icon: str | None = None
    color: str | None = None
    json_schema: dict[str, Any]


class TemplateRelationship(BaseModel):
    type: str
    source: str
    target: str
    description: str | None = None


class SchemaTemplate(BaseModel):
    """Seed 001's template document, verbatim."""

    collections: list[TemplateCollection] = Field(min_length=1, max_length=len(COLLECTIONS))
    relationships: list[TemplateRelationship] = Field(default_factory=list, max_length=100)


class RelationshipNote(BaseModel):
    type: str
    source: str
    target: str
    built_in: bool
    note: str


class SchemaImport(BaseModel):
    collections: list[CollectionSchema]
    relationships: list[RelationshipNote]


CUSTOMERS_SCHEMA = {
    "type": "object",
    "required": ["name", "email"],
    "properties": {
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "plan": {"type": "string", "enum": ["free", "pro", "enterprise"]},
        "company": {"type": "string"},
    },
}
SCHEMA_BODY = Body(
    openapi_examples={"customers": {"summary": "Seed 001's customers schema", "value": CUSTOMERS_SCHEMA}},  # type: ignore[dict-item]
    description="A JSON Schema (Draft 2020-12); references may only point inside it.",
)
TEMPLATE_BODY = Body(
    openapi_examples={  # type: ignore[dict-item]
        "seed": {
            "summary": "Seed 001's template (one collection shown)",
            "value": {
                "collections": [{"id": "customers", "name": "Customers", "json_schema": CUSTOMERS_SCHEMA}],
                "relationships": [{"type": "submitted_by", "source": "tickets", "target": "customers"}],
            },
        }
    }
)


@router.get("/v1/schemas", summary="The workspace's custom-field schemas")
def list_schemas(request: Request, who: Caller = Depends(reader)) -> CollectionSchemaList:
    found = [CollectionSchema.of(stored) for stored in runtime(request).schemas.schemas(who.workspace.id)]
    return CollectionSchemaList(data=found, total=len(found))


@router.get(
    ONE_SCHEMA,
    summary="One collection's custom-field schema",
    responses=problem_responses(404),
)
def get_schema(request: Request, collection: Collection, who: Caller = Depends(reader)) -> CollectionSchema:
    with repository_errors():
        return CollectionSchema.of(runtime(request).schemas.schema(who.workspace.id, collection))


@router.put(ONE_SCHEMA, summary="Declare (or replace) a collection's custom-field schema")
def put_schema(
    request: Request,
    collection: Collection,
    definition: dict[str, Any] = SCHEMA_BODY,
    who: Caller = Depends(admin),
) -> CollectionSchema:
    try:
        stored = runtime(request).schemas.declare(who.workspace.id, collection, definition)
    except SchemaDeclarationError as exc:
        raise document_errors(exc.problems) from None
    return CollectionSchema.of(stored)


@router.delete(
    ONE_SCHEMA,
    status_code=204,
    response_class=Response,
    summary="Drop a collection's custom-field schema",
    responses=problem_responses(404),
)
def delete_schema(request: Request, collection: Collection, who: Caller = Depends(admin)) -> Response:
    with repository_errors():
        runtime(request).schemas.remove(who.workspace.id, collection)
    return Response(status_code=204)


def _collection_problems(collections: Sequence[TemplateCollection]) -> list[FieldError]:
    problems = []
    seen: set[str] = set()
    for index, item in enumerate(collections):
        if item.id not in COLLECTIONS:
            message = f"unknown collection {item.id!r}; one of {', '.join(COLLECTIONS)}"
            problems.append(FieldError(("collections", index, "id"), message))
        elif item.id in seen:
            problems.append(FieldError(("collections", index, "id"), f"{item.id!r} is declared twice"))
        seen.add(item.id)
    return problems


def _in_template(problem: FieldError) -> FieldError:
    """A problem of the i-th declaration at its place in the template: ``collections[i].json_schema...``."""
    index, *path = problem.path
    return FieldError(("collections", index, "json_schema", *path), problem.message)


@router.post(
    TEMPLATE_IMPORT,
    summary="Declare the schemas of seed 001's template document (all or none)",
    description="Relationships are built in (submitted_by, has_response, related_to): declarations "
    "of them are accepted and answered with a note, never stored.",
)
def import_template(
    request: Request, template: SchemaTemplate = TEMPLATE_BODY, who: Caller = Depends(admin)
) -> SchemaImport:
    problems = _collection_problems(template.collections)
    if problems:
        raise document_errors(problems)
    # Each id is one of COLLECTIONS (checked above).
    declarations = [(cast(Collection, item.id), item.json_schema) for item in template.collections]
    try:
        stored = runtime(request).schemas.declare_all(who.workspace.id, declarations)
    except SchemaDeclarationError as exc:
        raise document_errors([_in_template(problem) for problem in exc.problems]) from None
    notes = []
    for relationship in template.relationships:
        built_in, note = relationship_note(relationship.type, relationship.source, relationship.target)
        notes.append(
            RelationshipNote(
                type=relationship.type,
                source=relationship.source,
                target=relationship.target,
                built_in=built_in,
                note=note,
            )
        )
    return SchemaImport(collections=[CollectionSchema.of(schema) for schema in stored], relationships=notes)
