"""Customers over HTTP on both engines: create, read, replace, change and delete with ETags, paging
and filters, the workspace's customers schema on every write, and who may see and write what."""

from __future__ import annotations

from typing import Any

import httpx

from supportlens.auth.tokens import Scope
from tests.api.conftest import Api

ACME = {
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
}


def _create(api: Api, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    return api.client.post("/v1/customers", json=body, headers=api.headers(token))


def _errors(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [(error["field"], error["message"]) for error in response.json()["errors"]]


def test_create_read_replace_change_delete(api: Api) -> None:
    created = _create(api, ACME)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/customers/cust_1234567890"
    assert created.headers["etag"] == '"1"'
    body = created.json()
    assert {key: body[key] for key in ACME} == ACME
    assert body["version"] == 1

    read = api.client.get("/v1/customers/cust_1234567890", headers=api.headers())
    assert read.status_code == 200
    assert read.json() == body
    assert read.headers["etag"] == '"1"'

    replacement = {"name": "Acme Inc", "email": "help@acme.example", "custom": {"tier": 2}}
    replaced = api.client.put("/v1/customers/cust_1234567890", json=replacement, headers=api.headers())
    assert replaced.status_code == 200, replaced.text
    assert replaced.headers["etag"] == '"2"'
    assert {
        key: replaced.json()[key] for key in ("name", "email", "plan", "company", "contacts", "custom")
    } == {
        "name": "Acme Inc",
        "email": "help@acme.example",
        "plan": None,
        "company": None,
        "contacts": [],
        "custom": {"tier": 2},
    }

    changes = {"plan": "pro", "custom": {"region": "eu", "tier": None}}
    changed = api.client.patch("/v1/customers/cust_1234567890", json=changes, headers=api.headers())
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"3"'
    assert (changed.json()["name"], changed.json()["plan"], changed.json()["custom"]) == (
        "Acme Inc",
        "pro",
        {"region": "eu"},
    )
    assert api.runtime.customers.plan_of(api.workspace_id, "cust_1234567890") == "pro"

    deleted = api.client.delete("/v1/customers/cust_1234567890", headers=api.headers())
    assert deleted.status_code == 204
    assert api.client.get("/v1/customers/cust_1234567890", headers=api.headers()).status_code == 404
    assert api.client.get("/v1/customers", headers=api.headers()).json()["pagination"]["total"] == 0
    assert api.client.delete("/v1/customers/cust_1234567890", headers=api.headers()).status_code == 404
    assert api.runtime.customers.plan_of(api.workspace_id, "cust_1234567890") is None
    reused = _create(api, ACME)
    assert reused.status_code == 409
    assert "not reused" in reused.json()["detail"]


def test_ids_are_generated_or_unique(api: Api) -> None:
    generated = _create(api, {"name": "Globex", "email": "it@globex.example"})
    assert generated.status_code == 201
    assert generated.json()["id"].startswith("cust_")
    assert _create(api, ACME).status_code == 201
    duplicate = _create(api, {**ACME, "name": "Someone else"})
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"
    assert _errors(_create(api, {**ACME, "id": "no spaces allowed"}))[0][0] == "id"


def test_the_models_own_checks_name_each_field(api: Api) -> None:
    body = {
        "name": "  ",
        "email": "not-an-email",
        "contacts": [{"phone": "+1-555"}],
        "custom": {"plan": "gold", "name": "x"},
        "unknown": 1,
    }
    assert _errors(_create(api, body)) == [
        ("name", "String should have at least 1 character"),
        ("email", "Value error, 'not-an-email' is not an email address"),
        ("contacts[0]", "Value error, a contact needs a name or an email"),
        ("custom", "Value error, name, plan: built-in fields, set at the top level, not in custom"),
        ("unknown", "Extra inputs are not permitted"),
    ]
    lone_surrogate = b'{"name": "Acme", "email": "a@b.example", "plan": "\\ud800"}'  # valid JSON
    headers = api.headers() | {"Content-Type": "application/json"}
    assert _errors(api.client.post("/v1/customers", content=lone_surrogate, headers=headers)) == [
        ("plan", "Input should be a valid string, unable to parse raw data as a unicode string")
    ]
    not_json = b'{"name": "Acme", "email": "a@b.example", "custom": {"score": NaN}}'
    assert _errors(api.client.post("/v1/customers", content=not_json, headers=headers)) == [
        ("custom", "Value error, score: NaN and Infinity are not JSON values")
    ]
    too_big = b'{"name": "Acme", "email": "a@b.example", "custom": {"ids": [1, 18446744073709551616]}}'
    assert _errors(api.client.post("/v1/customers", content=too_big, headers=headers)) == [
        (
            "custom",
            "Value error, ids[1]: integers must be within the 64-bit range"
            " (-9223372036854775808 to 18446744073709551615)",
        )
    ]
    assert _create(api, ACME).status_code == 201
    nulled = api.client.patch("/v1/customers/cust_1234567890", json={"name": None}, headers=api.headers())
    assert _errors(nulled) == [
        ("name", "Value error, may not be null; leave the field out to keep its value")
    ]


def test_every_write_follows_the_workspace_schema(api: Api, seed_schemas: dict[str, dict[str, Any]]) -> None:
    schema = seed_schemas["customers"] | {
        "properties": seed_schemas["customers"]["properties"] | {"tier": {"type": "integer", "minimum": 1}}
    }
    assert api.client.put("/v1/schemas/customers", json=schema, headers=api.headers()).status_code == 200

    refused = _create(api, {**ACME, "plan": "gold", "custom": {"tier": 0, "region": "us-west"}})
    assert _errors(refused) == [
        ("plan", "'gold' is not one of ['free', 'pro', 'enterprise']"),
        ("custom.tier", "0 is less than the minimum of 1"),
    ]
    assert "plan: 'gold' is not one of" in refused.json()["detail"]

    assert _create(api, {**ACME, "custom": {"tier": 3}}).status_code == 201
    patched = api.client.patch("/v1/customers/cust_1234567890", json={"plan": "gold"}, headers=api.headers())
    assert _errors(patched) == [("plan", "'gold' is not one of ['free', 'pro', 'enterprise']")]
    replaced = api.client.put(
        "/v1/customers/cust_1234567890",
        json={"name": "Acme", "email": "a@acme.example", "custom": {"tier": "three"}},
        headers=api.headers(),
    )
    assert _errors(replaced) == [("custom.tier", "'three' is not of type 'integer'")]
    assert api.runtime.customers.get(api.workspace_id, "cust_1234567890").custom == {"tier": 3}


def test_pages_and_filters(api: Api) -> None:
    for number in range(25):
        plan = "pro" if number % 5 == 0 else "free"
        company = "Initech" if number < 3 else f"Company {number}"
        body = {"id": f"c{number:02}", "name": f"Customer {number}", "email": f"c{number}@example.com"}
        assert _create(api, body | {"plan": plan, "company": company}).status_code == 201

    def listed(**params: Any) -> dict[str, Any]:
        response = api.client.get("/v1/customers", params=params, headers=api.headers())
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    last = listed(page=3, limit=10)
    assert last["pagination"] == {"total": 25, "page": 3, "limit": 10, "pages": 3}
    assert [customer["id"] for customer in last["data"]] == ["c20", "c21", "c22", "c23", "c24"]
    assert listed(page=4, limit=10)["data"] == []
    assert listed()["pagination"] == {"total": 25, "page": 1, "limit": 20, "pages": 2}

    assert [c["id"] for c in listed(plan="pro")["data"]] == ["c00", "c05", "c10", "c15", "c20"]
    assert [c["id"] for c in listed(company="initech")["data"]] == ["c00", "c01", "c02"]
    assert [c["id"] for c in listed(email="C7@Example.com")["data"]] == ["c07"]
    assert [c["id"] for c in listed(q="TOMER 1")["data"]] == ["c01"] + [f"c{n}" for n in range(10, 20)]
    assert [c["id"] for c in listed(q="company 2", plan="pro")["data"]] == ["c20"]
    assert listed(q="100%_")["pagination"]["total"] == 0  # LIKE wildcards are taken literally
    assert api.client.get("/v1/customers?limit=101", headers=api.headers()).status_code == 422
    assert api.client.get("/v1/customers?page=0", headers=api.headers()).status_code == 422


def test_if_match(api: Api) -> None:
    assert _create(api, ACME).status_code == 201
    url = "/v1/customers/cust_1234567890"

    def patch(if_match: str | None) -> httpx.Response:
        headers = api.headers() | ({"If-Match": if_match} if if_match is not None else {})
        return api.client.patch(url, json={"company": "Acme"}, headers=headers)

    assert patch('"1"').headers["etag"] == '"2"'
    stale = patch('"1"')
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.headers["etag"] == '"2"'
    assert "has changed" in stale.json()["detail"]
    assert patch('W/"2"').status_code == 412  # If-Match compares strongly
    assert patch("2").status_code == 412
    assert patch('"7", "2"').status_code == 200
    assert patch("*").status_code == 200
    assert patch(None).headers["etag"] == '"5"'
    replaced = api.client.put(url, json=ACME | {"id": None}, headers=api.headers() | {"If-Match": '"4"'})
    assert replaced.status_code == 422  # PUT takes no id
    stale_put = api.client.put(
        url, json={"name": "A", "email": "a@acme.example"}, headers=api.headers() | {"If-Match": '"4"'}
    )
    assert stale_put.status_code == 412
    stale_delete = api.client.delete(url, headers=api.headers() | {"If-Match": '"4"'})
    assert stale_delete.status_code == 412
    assert api.client.delete(url, headers=api.headers() | {"If-Match": '"5"'}).status_code == 204


def test_scopes_and_workspaces(api: Api) -> None:
    assert _create(api, ACME).status_code == 201
    url = "/v1/customers/cust_1234567890"
    reader = api.token(Scope.READ)
    appender = api.token(Scope.APPEND)

    assert api.client.get(url).status_code == 401
    assert api.client.get(url, headers=api.headers("sl_not-a-token")).status_code == 401
    assert api.client.get(url, headers=api.headers(reader)).status_code == 200
    assert api.client.get("/v1/customers", headers=api.headers(appender)).status_code == 403
    assert _create(api, {"name": "B", "email": "b@b.example"}, reader).status_code == 403
    assert api.client.patch(url, json={"plan": "x"}, headers=api.headers(reader)).status_code == 403
    assert api.client.delete(url, headers=api.headers(reader)).status_code == 403

    other = api.runtime.metadata.create_workspace("globex")
    _, outsider = api.runtime.metadata.create_token(other.id, "admin", {Scope.ADMIN})
    assert api.client.get(url, headers=api.headers(outsider)).status_code == 404
    assert api.client.get("/v1/customers", headers=api.headers(outsider)).json()["data"] == []
    assert api.client.patch(url, json={"plan": "x"}, headers=api.headers(outsider)).status_code == 404
    assert api.client.delete(url, headers=api.headers(outsider)).status_code == 404
    assert _create(api, ACME, outsider).status_code == 201  # ids are unique per workspace
    assert api.runtime.customers.get(api.workspace_id, "cust_1234567890").name == "Acme Corp"


def test_a_token_fixed_to_a_customer_sees_only_that_customer(api: Api) -> None:
    assert _create(api, ACME).status_code == 201
    assert _create(api, {"id": "cust_other", "name": "Other", "email": "o@other.example"}).status_code == 201
    fixed = api.token(Scope.READ, fixed_filters={"customer_id": "cust_1234567890"})

    listed = api.client.get("/v1/customers", headers=api.headers(fixed)).json()
    assert [customer["id"] for customer in listed["data"]] == ["cust_1234567890"]
    assert api.client.get("/v1/customers/cust_other", headers=api.headers(fixed)).status_code == 404
    assert api.client.get("/v1/customers/cust_1234567890", headers=api.headers(fixed)).status_code == 200
