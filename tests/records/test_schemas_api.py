"""Custom-field schemas over HTTP on both engines: seed 001's declarations accepted verbatim, one by
one and as the whole template, unusable ones refused with the place inside them, and who may do what."""

from __future__ import annotations

import copy
from typing import Any

from supportlens.auth.tokens import Scope
from tests.api.conftest import Api


def _errors(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [(error["field"], error["message"]) for error in response.json()["errors"]]


def test_seed_schemas_are_declared_verbatim(api: Api, seed_schemas: dict[str, dict[str, Any]]) -> None:
    for collection, definition in seed_schemas.items():
        declared = api.client.put(f"/v1/schemas/{collection}", json=definition, headers=api.headers())
        assert declared.status_code == 200, declared.text
        assert (declared.json()["collection"], declared.json()["json_schema"]) == (collection, definition)
        assert declared.json()["version"] == 1

    listed = api.client.get("/v1/schemas", headers=api.headers(api.token(Scope.READ))).json()
    assert listed["total"] == 3
    assert [(item["collection"], item["json_schema"]) for item in listed["data"]] == [
        ("customers", seed_schemas["customers"]),
        ("responses", seed_schemas["responses"]),
        ("tickets", seed_schemas["tickets"]),
    ]

    replaced = api.client.put("/v1/schemas/tickets", json={"type": "object"}, headers=api.headers())
    assert replaced.json()["version"] == 2
    read = api.client.get("/v1/schemas/tickets", headers=api.headers()).json()
    assert (read["json_schema"], read["version"]) == ({"type": "object"}, 2)

    assert api.client.delete("/v1/schemas/tickets", headers=api.headers()).status_code == 204
    assert api.client.get("/v1/schemas/tickets", headers=api.headers()).status_code == 404
    assert api.client.delete("/v1/schemas/tickets", headers=api.headers()).status_code == 404
    assert api.client.get("/v1/schemas", headers=api.headers()).json()["total"] == 2


def test_the_whole_template_is_imported(api: Api, template: dict[str, Any]) -> None:
    imported = api.client.post("/v1/imports/schema-template", json=template, headers=api.headers())
    assert imported.status_code == 200, imported.text
    body = imported.json()
    assert [(item["collection"], item["json_schema"]) for item in body["collections"]] == [
        (collection["id"], collection["json_schema"]) for collection in template["collections"]
    ]
    assert [(note["type"], note["built_in"]) for note in body["relationships"]] == [
        ("submitted_by", True),
        ("has_response", True),
        ("related_to", True),
    ]
    assert body["relationships"][0]["note"] == "built in as a ticket's customer_id: nothing to store"
    assert api.runtime.schemas.validate(api.workspace_id, "responses", {"type": "reply"})[0].field == "body"

    unknown = template | {"relationships": [{"type": "owned_by", "source": "customers", "target": "agents"}]}
    notes = api.client.post("/v1/imports/schema-template", json=unknown, headers=api.headers()).json()[
        "relationships"
    ]
    assert [(note["type"], note["built_in"]) for note in notes] == [("owned_by", False)]
    assert notes[0]["note"].startswith("not supported, ignored")


def test_an_import_is_all_or_nothing(api: Api, template: dict[str, Any]) -> None:
    unknown = copy.deepcopy(template)
    unknown["collections"][1]["id"] = "agents"
    unknown["collections"][2]["id"] = "tickets"
    assert _errors(api.client.post("/v1/imports/schema-template", json=unknown, headers=api.headers())) == [
        ("collections[1].id", "unknown collection 'agents'; one of tickets, customers, responses"),
        ("collections[2].id", "'tickets' is declared twice"),
    ]

    broken = copy.deepcopy(template)
    broken["collections"][2]["json_schema"]["properties"]["timestamp"]["type"] = "datetime"
    broken["collections"][0]["json_schema"]["required"] = "subject"
    problems = _errors(api.client.post("/v1/imports/schema-template", json=broken, headers=api.headers()))
    assert [field for field, _ in problems] == [
        "collections[0].json_schema.required",
        "collections[2].json_schema.properties.timestamp.type",
    ]
    assert problems[0][1] == "'subject' is not of type 'array'"
    assert api.client.get("/v1/schemas", headers=api.headers()).json()["total"] == 0


def test_unusable_declarations_are_refused(api: Api) -> None:
    def put(definition: Any) -> Any:
        return api.client.put("/v1/schemas/customers", json=definition, headers=api.headers())

    assert _errors(put({"properties": {"plan": {"enum": "free"}, "tier": {"minimum": "one"}}})) == [
        ("properties.plan.enum", "'free' is not of type 'array'"),
        ("properties.tier.minimum", "'one' is not of type 'number'"),
    ]
    remote = _errors(put({"properties": {"owner": {"$ref": "https://schemas.example/owner.json"}}}))
    assert remote == [
        (
            'properties.owner["$ref"]',
            "'https://schemas.example/owner.json' points outside the schema: only references inside it"
            " ('#/$defs/...', '#anchor') are allowed, schemas are never fetched",
        )
    ]
    too_big = _errors(put({"description": "x" * 70_000}))
    assert too_big[0][0] == "body"
    assert too_big[0][1].startswith("the schema is 70018 bytes; at most 65536 are accepted")
    assert _errors(put(["not", "an", "object"]))[0][0] == "body"
    unknown = _errors(api.client.put("/v1/schemas/agents", json={}, headers=api.headers()))
    assert unknown == [("collection", "Input should be 'tickets', 'customers' or 'responses'")]
    assert api.client.get("/v1/schemas", headers=api.headers()).json()["total"] == 0


def test_scopes_and_workspaces(api: Api, seed_schemas: dict[str, dict[str, Any]]) -> None:
    reader = api.token(Scope.READ)
    appender = api.token(Scope.APPEND)
    definition = seed_schemas["customers"]
    assert api.client.put("/v1/schemas/customers", json=definition).status_code == 401
    assert (
        api.client.put("/v1/schemas/customers", json=definition, headers=api.headers(reader)).status_code
        == 403
    )
    assert api.client.get("/v1/schemas", headers=api.headers(appender)).status_code == 403
    assert api.client.put("/v1/schemas/customers", json=definition, headers=api.headers()).status_code == 200
    assert api.client.delete("/v1/schemas/customers", headers=api.headers(reader)).status_code == 403
    assert api.client.get("/v1/schemas/customers", headers=api.headers(reader)).status_code == 200

    other = api.runtime.metadata.create_workspace("globex")
    _, outsider = api.runtime.metadata.create_token(other.id, "admin", {Scope.ADMIN})
    assert api.client.get("/v1/schemas/customers", headers=api.headers(outsider)).status_code == 404
    customer = {"name": "Globex", "email": "it@globex.example", "plan": "gold"}
    assert api.client.post("/v1/customers", json=customer, headers=api.headers(outsider)).status_code == 201
    assert api.client.post("/v1/customers", json=customer, headers=api.headers()).status_code == 422
