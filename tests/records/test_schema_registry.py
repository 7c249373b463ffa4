"""The custom-field schema registry on a real SQLite file: which declarations it accepts (seed 001's
verbatim) and refuses (with the place inside them), and the problems it finds in documents, all of
them, at their field paths."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from supportlens.auth.repository import NotFound
from supportlens.records.schemas import (
    MAX_SCHEMA_BYTES,
    FieldError,
    SchemaDeclarationError,
    SchemaRegistry,
    check_declaration,
    relationship_note,
)

WS = "ws1"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[SchemaRegistry]:
    opened = SchemaRegistry(tmp_path / "metadata.sqlite")
    try:
        yield opened
    finally:
        opened.close()


def _fields(problems: list[FieldError]) -> list[tuple[str, str]]:
    return [(problem.field, problem.message) for problem in problems]


def test_seed_schemas_are_valid_declarations(seed_schemas: dict[str, dict[str, Any]]) -> None:
    assert set(seed_schemas) == {"tickets", "customers", "responses"}
    for definition in seed_schemas.values():
        assert check_declaration(definition) == []


def test_a_ticket_breaking_several_rules_gets_every_problem_at_its_field(
    registry: SchemaRegistry, seed_schemas: dict[str, dict[str, Any]]
) -> None:
    registry.declare(WS, "tickets", seed_schemas["tickets"])
    ticket = {"status": "pending", "priority": 5, "channel": "fax", "tags": ["vpn", 3]}

    problems = registry.validate(WS, "tickets", ticket)

    assert _fields(problems) == [  # by field
        ("channel", "'fax' is not one of ['email', 'chat', 'phone', 'web']"),
        ("priority", "5 is not of type 'string'"),
        ("priority", "5 is not one of ['low', 'medium', 'high', 'urgent']"),
        ("status", "'pending' is not one of ['open', 'in_progress', 'waiting', 'resolved', 'closed']"),
        ("subject", "'subject' is a required property"),
        ("tags[1]", "3 is not of type 'string'"),
    ]
    valid = {"subject": "VPN down", "status": "open", "priority": "high", "tags": ("vpn",), "custom": 1}
    assert registry.validate(WS, "tickets", valid) == []


def test_formats_are_checked(registry: SchemaRegistry, seed_schemas: dict[str, dict[str, Any]]) -> None:
    registry.declare(WS, "responses", seed_schemas["responses"])
    registry.declare(WS, "customers", seed_schemas["customers"])

    late = {"body": "On it", "type": "reply", "timestamp": "2024-02-30T10:00:00Z"}
    assert _fields(registry.validate(WS, "responses", late)) == [
        ("timestamp", "'2024-02-30T10:00:00Z' is not a 'date-time'")
    ]
    moment = datetime(2024, 11, 1, 14, 30, tzinfo=UTC)  # values are checked as JSON: an ISO string
    assert registry.validate(WS, "responses", {"body": "On it", "type": "reply", "timestamp": moment}) == []
    customer = {"name": "Acme", "email": "support at acme", "plan": "gold"}
    assert _fields(registry.validate(WS, "customers", customer)) == [
        ("email", "'support at acme' is not a 'email'"),
        ("plan", "'gold' is not one of ['free', 'pro', 'enterprise']"),
    ]


def test_each_unexpected_field_is_named(registry: SchemaRegistry) -> None:
    registry.declare(
        WS,
        "customers",
        {
            "type": "object",
            "properties": {"name": {"type": "string"}, "tier": {"type": "integer", "minimum": 1}},
            "patternProperties": {"^x_": {}},
            "additionalProperties": False,
        },
    )
    problems = registry.validate(
        WS, "customers", {"name": "Acme", "tier": 0, "region": "eu", "x_ok": 1, "y": 2}
    )
    assert _fields(problems) == [
        ("region", "'region' is not a declared field"),
        ("tier", "0 is less than the minimum of 1"),
        ("y", "'y' is not a declared field"),
    ]


def test_without_a_declaration_anything_goes(registry: SchemaRegistry) -> None:
    assert registry.validate(WS, "tickets", {"anything": ["at", "all"]}) == []
    with pytest.raises(NotFound):
        registry.schema(WS, "tickets")
    with pytest.raises(ValueError, match="unknown collection 'agents'"):
        registry.validate(WS, "agents", {})


def test_changes_apply_at_once_and_versions_only_grow(registry: SchemaRegistry) -> None:
    strict = {"type": "object", "required": ["region"]}
    assert registry.declare(WS, "customers", strict).version == 1
    assert _fields(registry.validate(WS, "customers", {})) == [("region", "'region' is a required property")]

    assert registry.declare(WS, "customers", {"type": "object", "required": ["tier"]}).version == 2
    assert _fields(registry.validate(WS, "customers", {})) == [("tier", "'tier' is a required property")]

    registry.remove(WS, "customers")
    assert registry.validate(WS, "customers", {}) == []
    assert registry.schemas(WS) == []
    with pytest.raises(NotFound):
        registry.remove(WS, "customers")

    again = registry.declare(WS, "customers", strict)
    assert again.version == 4  # the deletion was a change too: a cached validator is never reused
    assert again.definition == strict
    assert _fields(registry.validate(WS, "customers", {})) == [("region", "'region' is a required property")]


def test_declarations_belong_to_their_workspace(registry: SchemaRegistry) -> None:
    registry.declare(WS, "tickets", {"required": ["subject"]})
    assert registry.validate("ws2", "tickets", {}) == []
    assert [stored.collection for stored in registry.schemas(WS)] == ["tickets"]
    assert registry.schemas("ws2") == []


def test_an_unusable_declaration_names_each_bad_place() -> None:
    definition = {
        "type": "object",
        "required": "subject",
        "properties": {"status": {"type": "strin"}, "code": {"type": "string", "pattern": "("}},
    }
    assert _fields(check_declaration(definition)) == [
        ("properties.code.pattern", "'(' is not a 'regex'"),
        ("properties.status.type", _any_of_message("strin")),
        ("required", "'subject' is not of type 'array'"),
    ]


def _any_of_message(value: str) -> str:
    allowed = "['array', 'boolean', 'integer', 'null', 'number', 'object', 'string']"
    return f"'{value}' is not valid under any of the given schemas ('{value}' is not one of {allowed})"


@pytest.mark.parametrize(
    "reference",
    ["https://example.com/customer.json", "http://127.0.0.1:9/x.json#/a", "other.json", "urn:x:y"],
)
def test_references_outside_the_schema_are_refused(reference: str) -> None:
    definition = {"properties": {"owner": {"$ref": reference}}}
    [problem] = check_declaration(definition)
    assert problem.field == 'properties.owner["$ref"]'
    assert problem.message.startswith(f"{reference!r} points outside the schema")


def test_references_inside_the_schema_work(registry: SchemaRegistry) -> None:
    definition = {
        "$defs": {"plan": {"enum": ["free", "pro"]}},
        "properties": {
            "plan": {"$ref": "#/$defs/plan"},
            "backup": {"$ref": "#/$defs/plan"},
            "note": {"const": {"$ref": "https://not-a-reference.example"}},  # data, not a schema
        },
    }
    registry.declare(WS, "customers", definition)
    assert _fields(registry.validate(WS, "customers", {"plan": "pro", "backup": "gold"})) == [
        ("backup", "'gold' is not one of ['free', 'pro']")
    ]
    [problem] = check_declaration({"properties": {"plan": {"$ref": "#/$defs/missing"}}})
    assert (problem.field, problem.message) == (
        'properties.plan["$ref"]',
        "'#/$defs/missing' does not resolve inside the schema",
    )


def test_a_reference_cycle_is_a_problem_not_a_crash(registry: SchemaRegistry) -> None:
    registry.declare(WS, "tickets", {"$defs": {"loop": {"$ref": "#/$defs/loop"}}, "$ref": "#/$defs/loop"})
    [problem] = registry.validate(WS, "tickets", {"subject": "x"})
    assert (problem.field, problem.message) == (
        "",
        "the document nests too deeply to check against the tickets schema",
    )


def test_size_depth_and_dialect_are_limited() -> None:
    big = {"description": "x" * MAX_SCHEMA_BYTES}
    assert check_declaration(big)[0].message.startswith(f"the schema is {MAX_SCHEMA_BYTES + 18} bytes")
    deep: dict[str, Any] = {}
    for _ in range(70):
        deep = {"not": deep}
    assert _fields(check_declaration(deep)) == [("", "the schema nests deeper than 64 levels")]
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#"}
    assert [problem.field for problem in check_declaration(draft7)] == ['["$schema"]']
    assert check_declaration({"$schema": "https://json-schema.org/draft/2020-12/schema"}) == []
    assert _fields(check_declaration({"maximum": float("nan")})) == [
        ("", "the schema holds NaN or Infinity, which JSON does not allow")
    ]


def test_declaring_several_is_all_or_nothing(registry: SchemaRegistry, seed_schemas: dict[str, Any]) -> None:
    with pytest.raises(SchemaDeclarationError) as refused:
        registry.declare_all(WS, [("tickets", seed_schemas["tickets"]), ("customers", {"type": "thing"})])
    assert [problem.path[:2] for problem in refused.value.problems] == [(1, "type")]
    assert registry.schemas(WS) == []

    stored = registry.declare_all(WS, [(name, seed_schemas[name]) for name in ("tickets", "responses")])
    assert [(schema.collection, schema.definition) for schema in stored] == [
        ("tickets", seed_schemas["tickets"]),
        ("responses", seed_schemas["responses"]),
    ]


def test_relationship_notes() -> None:
    assert relationship_note("submitted_by", "tickets", "customers") == (
        True,
        "built in as a ticket's customer_id: nothing to store",
    )
    built_in, note = relationship_note("owned_by", "customers", "agents")
    assert not built_in
    assert note.startswith("not supported, ignored: SupportLens keeps submitted_by (tickets -> customers)")
    assert relationship_note("related_to", "tickets", "customers")[0] is False
