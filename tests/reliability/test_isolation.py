"""Tenant isolation (issue 7, point 4).

* Two workspaces with overlapping ticket ids, event ids and Freshdesk ticket numbers, and different
  data.  Every route of the served OpenAPI document (read from ``app.openapi()``, so a new route is
  covered without touching this file) is called with each of one workspace's tokens, aimed at the
  other's resources (its calendar and policy ids, the shared ticket ids, its workspace id and name as
  extra parameters): no answer carries anything of the other workspace, and the other's figures (every
  pipe, every quarantine, its configuration, its stored rows) are identical before and after.
* A read token with a fixed filter sees exactly what an admin token sees in a workspace holding only
  the rows the filter selects, whatever parameters it sends (the same, other case, repeated, other
  filters, ids of filtered-out tickets, SQL-looking values, unknown names).
* A revoked token gets 401 on its very next request, on every route.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.analytics.pipes import PIPES
from supportlens.api.configuration import CALENDAR_EXAMPLES
from supportlens.api.sla import POLICY_EXAMPLES
from supportlens.auth.tokens import Scope
from supportlens.demo.activities import generate_exports
from supportlens.store.schema import TABLES
from tests.conftest import ENGINES
from tests.reliability.fixtures_api import LONG, PUBLIC_PATHS, Served, Tenant, serve, write_figures

WINDOW = {"start_date": "2026-01-01", "end_date": "2026-03-31"}
DETAILS_WINDOW = {"created_after": "2026-01-01", "created_before": "2026-03-31"}
AS_OF = "2026-04-01 00:00:00"
SHARED_TICKETS = [f"T{i}" for i in range(1, 7)]
PUBLIC = {("get", path) for path in PUBLIC_PATHS}


def _tickets(marker: str, categories: tuple[str, ...]) -> list[dict[str, Any]]:
    """The shared ticket ids with this workspace's own values (each carrying ``marker``), plus one
    ticket id of its own."""
    rows = []
    for index, ticket_id in enumerate([*SHARED_TICKETS, f"{marker}-ONLY"]):
        day = index + 2
        rows.append(
            {
                "ticket_id": ticket_id,
                "customer_id": f"{marker}-CUST-{index % 2}",
                "agent_id": f"{marker}-AGENT-{index % 2}",
                "category": categories[index % len(categories)],
                "priority": ("urgent", "high", "medium", "low")[index % 4],
                "status": ("open", "pending", "resolved", "closed")[index % 4],
                "channel": f"{marker}-channel".lower(),
                "group_id": f"{marker}-GROUP",
                "subject": f"{marker} subject {index}",
                "created_at": f"2026-02-{day:02d} 09:00:00",
                "first_response_at": f"2026-02-{day:02d} 09:{10 + index:02d}:00",
                "resolved_at": f"2026-02-{day:02d} 1{index}:00:00" if index % 4 >= 2 else None,
                "satisfaction_score": 1 + index % 5,
                "tags": [f"{marker}-tag"],
            }
        )
    return rows


def _events(marker: str, category: str) -> list[dict[str, Any]]:
    """A ticket known only by its activity log; the event ids are the same in both workspaces."""
    ticket = f"{marker}-EV"
    return [
        {
            "event_id": "e1",
            "ticket_id": ticket,
            "at": "2026-02-10T09:00:00Z",
            "type": "created",
            "actor_type": "customer",
            "status": "open",
            "priority": "high",
            "category": category,
            "customer_id": f"{marker}-CUST-EV",
        },
        {
            "event_id": "e2",
            "ticket_id": ticket,
            "at": "2026-02-10T09:30:00Z",
            "type": "reply",
            "actor_type": "agent",
            "actor_id": f"{marker}-AGENT-EV",
        },
        {
            "event_id": "e3",
            "ticket_id": ticket,
            "at": "2026-02-10T11:00:00Z",
            "type": "status_changed",
            "to": "solved",
        },
        {"event_id": "e4", "ticket_id": "T1", "at": "2026-02-02T09:05:00Z", "type": "customer_message"},
    ]


def _export(marker: str) -> bytes:
    """A Freshdesk export (the same ticket numbers in both workspaces) with one unreadable activity."""
    export = generate_exports(4, seed=11, end=datetime(2026, 2, 20, tzinfo=UTC), days=1)[0]
    export["activities_data"].append({"ticket_id": f"{marker}-FD", "activity": {"status": f"{marker} fd"}})
    return orjson.dumps(export)


ICAL = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//supportlens//tests//EN\r\nBEGIN:VEVENT\r\nUID:h1\r\n"
    "DTSTART;VALUE=DATE:20260501\r\nDTEND;VALUE=DATE:20260502\r\nSUMMARY:{marker} holiday\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


@dataclass
class Workspace:
    tenant: Tenant
    marker: str
    calendar_id: str
    policy_id: str
    # Resources of the ticket management API
    ticket_id: str
    ticket_number: str
    attachment_id: str
    rule_id: str
    connection_id: str

    @property
    def secrets(self) -> list[str]:
        """Strings found only in this workspace's data and configuration (compared case-insensitively)."""
        return [
            self.marker,
            self.tenant.id,
            self.calendar_id,
            self.policy_id,
            self.ticket_id,
            self.ticket_number,
            self.attachment_id,
            self.rule_id,
            self.connection_id,
        ]

    @property
    def customer_id(self) -> str:
        return f"{self.marker}-CUSTOMER"

    @property
    def agent_id(self) -> str:
        return f"{self.marker}-DESK-AGENT"

    @property
    def category_id(self) -> str:
        return f"{self.marker.lower()}-network"


def _load(served: Served, name: str, marker: str, categories: tuple[str, ...]) -> Workspace:
    tenant = served.tenant(name)
    headers = tenant.headers()
    assert served.post(tenant, "support_tickets", _tickets(marker, categories))["quarantined_rows"] == 0
    assert served.post(tenant, "ticket_events", _events(marker, categories[0]))["quarantined_rows"] == 0
    bad = served.post(tenant, "support_tickets", [{"ticket_id": f"{marker}-BAD", "created_at": "never"}])
    assert bad == {"successful_rows": 0, "quarantined_rows": 1}
    bad_event = served.post(tenant, "ticket_events", [{"event_id": f"{marker}-BAD", "type": "boom"}])
    assert bad_event == {"successful_rows": 0, "quarantined_rows": 1}
    imported = served.client.post(
        "/v1/imports/freshdesk-activities", content=_export(marker), headers=headers
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["rejected_activities"] == 1, imported.text
    calendar = {
        **CALENDAR_EXAMPLES["office"]["value"],
        "name": f"{marker} calendar",
        "groups": [f"{marker}-GROUP"],
    }
    created = served.client.post("/v1/calendars", json=calendar, headers=headers)
    assert created.status_code == 201, created.text
    policy = {**POLICY_EXAMPLES["network"]["value"], "name": f"{marker} policy"}
    made = served.client.post("/v1/sla-policies", json=policy, headers=headers)
    assert made.status_code == 201, made.text
    names = served.client.put(
        "/v1/status-categories", json={"names": {f"{marker} waiting": "on_hold"}}, headers=headers
    )
    assert names.status_code == 200, names.text
    ticket, attachment, rule = _desk(served, tenant, marker)
    connection = served.runtime.connections.create(
        tenant.id,
        kind="zendesk",
        name=f"{marker} zendesk",
        base_url=f"https://{marker.lower()}.zendesk.example",
        credentials={"token": f"{marker}-secret-token"},
        schedule_hours=4,
        timezone="UTC",
        options={},
    )
    served.runtime.aliases.set_alias(tenant.id, f"{marker}-alias", f"{marker}-DESK-AGENT")
    return Workspace(
        tenant,
        marker,
        created.json()["id"],
        made.json()["id"],
        ticket["id"],
        ticket["number"],
        attachment,
        rule,
        connection.id,
    )


def _desk(served: Served, tenant: Tenant, marker: str) -> tuple[dict[str, Any], str, str]:
    """The ticket management API's side of the workspace: an agent, a customer, a category, a rule,
    a schema, a ticket with a file, a comment and a related ticket; the ticket, file id and rule id."""
    headers = tenant.headers()

    def made(response: Any, status: int = 201) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    client = served.client
    agent = {"name": f"{marker} agent", "email": f"{marker.lower()}@example.com", "teams": [f"{marker}-team"]}
    made(client.put(f"/v1/support/agents/{marker}-DESK-AGENT", json=agent, headers=headers), 200)
    customer = {
        "id": f"{marker}-CUSTOMER",
        "name": f"{marker} Corp",
        "email": "it@example.com",
        "plan": "pro",
    }
    made(client.post("/v1/customers", json=customer, headers=headers))
    category = {
        "id": f"{marker.lower()}-network",
        "name": f"{marker} network",
        "sla": {"response_time": "2 hours"},
    }
    made(client.post("/v1/support/categories", json=category, headers=headers))
    rule = {"rule_name": f"{marker} rule", "conditions": {}, "actions": {"assign_to": f"{marker}-DESK-AGENT"}}
    rule_id = made(client.post("/v1/support/routing-rules", json=rule, headers=headers))["id"]
    made(client.put("/v1/schemas/customers", json={"type": "object"}, headers=headers), 200)
    body = {
        "title": f"{marker} outage",
        "customer_id": f"{marker}-CUSTOMER",
        "category": f"{marker.lower()}-network",
        "attachments": [{"filename": "log.txt", "content_type": "text/plain", "data": "aGVsbG8="}],
    }
    ticket = made(client.post("/v1/support/tickets", json=body, headers=headers))["ticket"]
    comment = {"content": f"{marker} reply", "author": {"type": "agent", "id": f"{marker}-DESK-AGENT"}}
    made(client.post(f"/v1/support/tickets/{ticket['id']}/comments", json=comment, headers=headers))
    other = made(client.post("/v1/support/tickets", json={"title": f"{marker} other"}, headers=headers))[
        "ticket"
    ]
    related = {"ticket_id": other["id"]}
    made(client.post(f"/v1/support/tickets/{ticket['id']}/relationships", json=related, headers=headers))
    files = made(client.get(f"/v1/support/tickets/{ticket['id']}/attachments", headers=headers), 200)["data"]
    return ticket, files[0]["id"], rule_id


@pytest.fixture(scope="module", params=ENGINES)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, Workspace, Workspace]]:
    directory: Path = tmp_path_factory.mktemp(f"isolation-{request.param}")
    for served in serve(str(request.param), directory):
        alpha = _load(served, "alpha", "ALPHA", ("billing", "technical"))
        bravo = _load(served, "bravo", "BRAVO", ("bravo-cat", "shipping"))
        yield served, alpha, bravo


def _pipe_query(name: str) -> dict[str, str]:
    names = {p.name for p in PIPES[name].params}
    query = {
        k: v for k, v in {**WINDOW, **DETAILS_WINDOW, "as_of": AS_OF, "limit": "1000"}.items() if k in names
    }
    return query


def _without_statistics(body: bytes) -> Any:
    value = orjson.loads(body)
    if isinstance(value, dict):
        value.pop("statistics", None)
    return value


def _figures(served: Served, workspace: Workspace) -> dict[str, Any]:
    """Everything the workspace's admin can read about its data and configuration, and its row counts."""
    headers = workspace.tenant.headers()
    seen: dict[str, Any] = {}
    for name in sorted(PIPES):
        response = served.client.get(f"/v0/pipes/{name}.json", params=_pipe_query(name), headers=headers)
        assert response.status_code == 200, (name, response.text)
        seen[name] = _without_statistics(response.content)
    for source in ("support_tickets", "ticket_events", "freshdesk_activities"):
        response = served.client.get(f"/v0/quarantine/{source}.json", params={"limit": 1000}, headers=headers)
        seen[f"quarantine/{source}"] = _without_statistics(response.content)
    for path in (
        "/v1/calendars",
        "/v1/sla-policies",
        "/v1/status-categories",
        f"/v1/calendars/{workspace.calendar_id}",
        f"/v1/sla-policies/{workspace.policy_id}",
        f"/v1/support/tickets/T1/sla?as_of={AS_OF}",
        f"/v1/support/tickets/{workspace.marker}-EV/sla?as_of={AS_OF}",
        "/v1/business-hours/check?at=2026-02-02T10:00:00Z",
        "/v1/business-hours/between?start=2026-02-02T00:00:00Z&end=2026-02-09T00:00:00Z",
        "/v1/support/settings",
        "/v1/support/agents",
        "/v1/support/categories",
        "/v1/support/routing-rules",
        "/v1/customers",
        "/v1/schemas",
        f"/v1/support/tickets/{workspace.ticket_id}/comments",
        f"/v1/support/tickets/{workspace.ticket_id}/history",
        f"/v1/support/tickets/{workspace.ticket_id}/relationships",
        f"/v1/support/tickets/{workspace.ticket_id}/attachments",
        f"/v1/support/tickets/{workspace.ticket_id}/notifications",
        "/v1/connections",
        f"/v1/connections/{workspace.connection_id}/runs",
        f"/v1/connections/{workspace.connection_id}/alerts",
        "/v1/agent-aliases",
    ):
        response = served.client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        seen[path] = response.json()
    # Tickets by id and version (their SLA block moves with the clock).
    listed = served.client.get("/v1/support/tickets", params={"limit": 200}, headers=headers).json()
    seen["tickets"] = sorted((t["id"], t["version"], t["status"]) for t in listed["tickets"])
    download = served.client.get(f"/v1/attachments/{workspace.attachment_id}", headers=headers)
    seen["attachment"] = download.content
    engine = served.runtime.engine
    seen["rows"] = {table.name: engine.count(table, workspace.tenant.id) for table in TABLES}
    return seen


# Values for the parameters of any route, aimed at the other workspace's resources.
def _path_values(victim: Workspace) -> dict[str, list[str]]:
    return {
        "calendar_id": [victim.calendar_id],
        "policy_id": [victim.policy_id],
        "ticket_id": ["T1", f"{victim.marker}-ONLY", f"{victim.marker}-EV", victim.ticket_id],
        "group_id": [f"{victim.marker}-GROUP"],
        "datasource": ["support_tickets", "ticket_events", "freshdesk_activities"],
        "format": ["json", "csv"],
        "ticket_ref": [victim.ticket_id, victim.ticket_number, "T1"],
        "other_ref": [victim.ticket_id],
        "agent_id": [victim.agent_id],
        "attachment_id": [victim.attachment_id],
        "customer_id": [victim.customer_id],
        "collection": ["customers"],
        "rule_id": [victim.rule_id],
        "category_id": [victim.category_id],
        "connection_id": [victim.connection_id, f"{victim.marker} zendesk"],
        "alias": [f"{victim.marker}-alias"],
    }


def _query_values(victim: Workspace) -> dict[str, str]:
    marker = victim.marker
    return {
        "name": "support_tickets",
        "wait": "true",
        "at": "2026-02-02T10:00:00Z",
        "start": "2026-02-02T00:00:00Z",
        "end": "2026-02-09T00:00:00Z",
        "as_of": AS_OF,
        "ticket_id": f"{marker}-ONLY",
        "customer_id": f"{marker}-CUST-0",
        "agent_id": f"{marker}-AGENT-0",
        "group_id": f"{marker}-GROUP",
        "channel": f"{marker}-channel".lower(),
        "file_name": "attack.json",
        **WINDOW,
        **DETAILS_WINDOW,
    }


def _bodies(attacker: Workspace, victim: Workspace) -> dict[tuple[str, str], dict[str, Any]]:
    mine = attacker.marker
    return {
        ("post", "/v0/events"): {
            "content": b"\n".join(orjson.dumps(t) for t in _tickets(mine, ("billing",)))
        },
        ("post", "/v1/calendars"): {
            "json": {
                **CALENDAR_EXAMPLES["office"]["value"],
                "name": f"{mine} second",
                "groups": [f"{victim.marker}-GROUP"],
            }
        },
        ("put", "/v1/calendars/{calendar_id}"): {
            "json": {**CALENDAR_EXAMPLES["office"]["value"], "name": f"{mine} takeover"}
        },
        ("post", "/v1/calendars/{calendar_id}/holidays/ical"): {
            "content": ICAL.format(marker=mine).encode(),
            "headers": {"Content-Type": "text/calendar"},
        },
        ("put", "/v1/groups/{group_id}/calendar"): {"json": {"calendar_id": victim.calendar_id}},
        ("put", "/v1/status-categories"): {
            "json": {"names": {f"{mine} waiting": "pending", f"{victim.marker} waiting": "solved"}}
        },
        ("post", "/v1/sla-policies"): {
            "json": {
                **POLICY_EXAMPLES["network"]["value"],
                "name": f"{mine} second",
                "calendar_id": victim.calendar_id,
            }
        },
        ("put", "/v1/sla-policies/order"): {"json": {"ids": [victim.policy_id, attacker.policy_id]}},
        ("put", "/v1/sla-policies/{policy_id}"): {
            "json": {**POLICY_EXAMPLES["network"]["value"], "name": f"{mine} takeover"}
        },
        ("post", "/v1/imports/freshdesk-activities"): {"content": _export(mine)},
        # The ticket management API: the attacker's own values, aimed at the victim's resources.
        ("post", "/v1/support/tickets"): {
            "json": {"title": f"{mine} new", "customer_id": attacker.customer_id}
        },
        ("post", "/v1/support/tickets/search"): {"json": {"filters": {"customer_id": victim.customer_id}}},
        ("put", "/v1/support/tickets/{ticket_ref}"): {
            "json": {"status": "closed", "title": f"{mine} takeover"}
        },
        ("patch", "/v1/support/tickets/{ticket_ref}"): {"json": {"priority": "low", "tags": [mine]}},
        ("post", "/v1/support/tickets/{ticket_ref}/comments"): {
            "json": {"content": f"{mine} comment", "author": {"type": "customer"}}
        },
        ("post", "/v1/support/tickets/{ticket_ref}/escalate"): {
            "json": {"escalation_level": 9, "reason": f"{mine} escalation"}
        },
        ("post", "/v1/support/tickets/bulk"): {
            "json": {"ticket_ids": [victim.ticket_id, victim.ticket_number], "changes": {"status": "closed"}}
        },
        ("post", "/v1/support/tickets/{ticket_ref}/relationships"): {
            "json": {"ticket_id": attacker.ticket_id}
        },
        ("post", "/v1/support/tickets/{ticket_ref}/merge"): {"json": {"into": attacker.ticket_id}},
        ("post", "/v1/support/tickets/{ticket_ref}/notify"): {
            "json": {"type": "email", "recipients": [{"email": "x@example.com"}], "message": f"{mine} hi"}
        },
        ("post", "/v1/support/tickets/{ticket_id}/attachments"): {
            "files": {"file": ("note.txt", f"{mine} file".encode(), "text/plain")}
        },
        ("put", "/v1/support/settings"): {"json": {"prefix": mine[:4]}},
        ("put", "/v1/support/agents/{agent_id}"): {"json": {"name": f"{mine} agent"}},
        ("post", "/v1/customers"): {
            "json": {"id": f"{mine}-CUSTOMER-2", "name": mine, "email": "a@example.com"}
        },
        ("put", "/v1/customers/{customer_id}"): {"json": {"name": mine, "email": "a@example.com"}},
        ("patch", "/v1/customers/{customer_id}"): {"json": {"name": mine}},
        ("put", "/v1/schemas/{collection}"): {
            "json": {"type": "object", "properties": {"plan": {"type": "string"}}}
        },
        ("post", "/v1/imports/schema-template"): {
            "json": {"collections": [{"id": "customers", "json_schema": {"type": "object"}}]}
        },
        ("post", "/v1/support/routing-rules"): {
            "json": {"rule_name": f"{mine} second", "conditions": {}, "actions": {"set_priority": "high"}}
        },
        ("put", "/v1/support/routing-rules/order"): {"json": {"ids": [victim.rule_id, attacker.rule_id]}},
        ("put", "/v1/support/routing-rules/{rule_id}"): {
            "json": {"rule_name": f"{mine} takeover", "conditions": {}, "actions": {"set_priority": "low"}}
        },
        ("post", "/v1/support/categories"): {"json": {"id": f"{mine.lower()}-second", "name": mine}},
        ("put", "/v1/support/categories/{category_id}"): {"json": {"id": victim.category_id, "name": mine}},
        ("post", "/v1/connections"): {
            "json": {
                "kind": "zendesk",
                "name": f"{mine} second",
                "base_url": "https://attacker.example",
                "credentials": {"token": "attacker-token"},
            }
        },
        ("patch", "/v1/connections/{connection_id}"): {"json": {"schedule_hours": 1}},
        ("put", "/v1/agent-aliases/{alias}"): {"json": {"agent_id": f"{mine}-DESK-AGENT"}},
    }


_PATH_PARAM = re.compile(r"\{([^}]+)\}")


def _requests(
    document: dict[str, Any], attacker: Workspace, victim: Workspace
) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(method, documented path, URL, httpx arguments) for every operation, once per value of its
    path parameters (e.g. each datasource), every documented query parameter set, plus parameters
    naming the other workspace."""
    path_values = _path_values(victim)
    query_values = _query_values(victim)
    bodies = _bodies(attacker, victim)
    smuggled = {"workspace_id": victim.tenant.id, "workspace": victim.tenant.name, "ws": victim.tenant.id}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            names = _PATH_PARAM.findall(path)
            combos: list[dict[str, str]] = [{}]
            for name in names:
                assert name in path_values, (
                    f"no value for path parameter {name!r} of {method} {path}: add one"
                )
                combos = [{**c, name: v} for c in combos for v in path_values[name]]
            query: dict[str, str] = dict(smuggled)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["name"] in query_values:
                    query[parameter["name"]] = query_values[parameter["name"]]
                elif parameter["in"] == "query" and parameter.get("required"):
                    raise AssertionError(
                        f"no value for query parameter {parameter['name']!r} of {method} {path}"
                    )
            if "requestBody" in operation and operation["requestBody"].get("required"):
                assert (method, path) in bodies, f"no body for {method} {path}: add one"
            for combo in combos:
                url = _PATH_PARAM.sub(lambda m, c=combo: c[m.group(1)], path)  # type: ignore[misc]
                names_sent = (
                    [("name", n) for n in ("support_tickets", "ticket_events")]
                    if path == "/v0/events"
                    else [None]
                )
                for override in names_sent:
                    arguments = dict(bodies.get((method, path), {}))
                    sent = dict(query)
                    if override is not None:
                        sent[override[0]] = override[1]
                        if override[1] == "ticket_events":
                            arguments["content"] = b"\n".join(
                                orjson.dumps(e) for e in _events(attacker.marker, "billing")
                            )
                    arguments["params"] = sent
                    yield method, path, url, arguments


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _assert_nothing_of(victim: Workspace, text: str, where: str, sent: list[str]) -> None:
    """No secret of ``victim`` in ``text``, once the values the request itself sent (which an error
    message may quote back) are taken out."""
    for value in sorted(sent, key=len, reverse=True):
        if value:
            text = text.replace(value, "")
    folded = text.lower()
    for secret in victim.secrets:
        assert secret.lower() not in folded, (
            f"{where} answered {secret!r} of the other workspace: {text[:300]}"
        )


@pytest.mark.parametrize("direction", ["alpha->bravo", "bravo->alpha"])
def test_no_route_reaches_the_other_workspace(
    pair: tuple[Served, Workspace, Workspace], direction: str
) -> None:
    served, alpha, bravo = pair
    attacker, victim = (alpha, bravo) if direction == "alpha->bravo" else (bravo, alpha)
    document = served.app.openapi()
    before = _figures(served, victim)
    calls = 0
    statuses: dict[str, dict[str, int]] = {}
    for scope in ("read", "append", "admin"):
        token = attacker.tenant.tokens[scope]
        for method, path, url, arguments in _requests(document, attacker, victim):
            headers = {**arguments.pop("headers", {}), "Authorization": f"Bearer {token}"}
            response = served.client.request(method.upper(), url, headers=headers, **arguments)
            calls += 1
            where = f"{scope} {method.upper()} {url}"
            assert response.status_code < 500, (where, response.text[:500])
            sent = [
                *url.split("/"),
                *[str(v) for v in arguments["params"].values()],
                *_strings(arguments.get("json")),
            ]
            _assert_nothing_of(victim, response.text, where, sent)
            counts = statuses.setdefault(f"{method.upper()} {path}", {})
            counts[str(response.status_code)] = counts.get(str(response.status_code), 0) + 1
            # The other workspace's resources do not exist for this token.
            if response.status_code < 300 and method in {"put", "delete"} and "{" in path:
                assert victim.calendar_id not in url, where
                assert victim.policy_id not in url, where
    covered = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item}
    assert set(statuses) == covered
    # Nothing of the other workspace was read, counted or changed.
    assert _figures(served, victim) == before
    # And the attacker's own answers count only its own tickets (the shared ids once, with its values).
    details = served.client.get(
        "/v0/pipes/ticket_details.json",
        params={**DETAILS_WINDOW, "ticket_id": "T1"},
        headers=attacker.tenant.headers(),
    ).json()["data"]
    assert [row["customer_id"] for row in details] == [f"{attacker.marker}-CUST-0"]
    if LONG:
        write_figures(
            f"isolation-{served.runtime.engine.name}-{direction.replace('->', '-to-')}",
            {"requests": calls, "operations": sorted(statuses), "statuses": statuses},
        )


# Fixed filters


@dataclass
class Filtered:
    served: Served
    token: str  # read token of "full" with the fixed filter category=billing
    full: Tenant
    oracle: Tenant  # holds only the rows the filter selects


FULL_TICKETS = _tickets("FULL", ("billing", "technical", "Billing"))
EVENTS_BILLING = _events("EVB", "billing")
EVENTS_TECHNICAL = [
    {**e, "event_id": f"t{e['event_id']}", "ticket_id": e["ticket_id"].replace("EVB", "EVT")}
    for e in _events("EVT", "technical")
]


@pytest.fixture(scope="module")
def filtered(pair: tuple[Served, Workspace, Workspace]) -> Filtered:
    served = pair[0]
    full = served.tenant("full")
    oracle = served.tenant("oracle")
    served.post(full, "support_tickets", FULL_TICKETS)
    served.post(full, "ticket_events", EVENTS_BILLING + EVENTS_TECHNICAL)
    billing = [t for t in FULL_TICKETS if t["category"].lower() == "billing"]
    assert 0 < len(billing) < len(FULL_TICKETS)
    served.post(oracle, "support_tickets", billing)
    # T1's customer message belongs to a billing ticket: the oracle keeps it.
    served.post(oracle, "ticket_events", EVENTS_BILLING)
    _, token = served.token(full, Scope.READ, fixed_filters={"category": "billing"})
    return Filtered(served, token, full, oracle)


TECHNICAL_TICKETS = [*sorted(t["ticket_id"] for t in FULL_TICKETS if t["category"] == "technical"), "EVT-EV"]
# Every parameter name but ``as_of``: the evaluation instant, not a filter; left empty it means
# "now", which is not the same instant for the two answers compared (ongoing minutes would differ).
FILTER_NAMES = sorted(
    ({p.name for pipe in PIPES.values() for p in pipe.params} - {"as_of"})
    | {"fixed_category", "filters", "category[]", "Category", "workspace_id", "token"}
)
FILTER_VALUES = [
    "technical",
    "TECHNICAL",
    " technical ",
    "billing",
    "Billing",
    "",
    "%",
    "*",
    "' OR '1'='1",
    "billing' OR category='technical",
    "category",
    "none",
    *TECHNICAL_TICKETS,
    "FULL-CUST-1",
    "FULL-AGENT-1",
]


def _same(filtered: Filtered, pipe: str, fmt: str, params: list[tuple[str, str]]) -> None:
    """The filtered token's answer equals the admin's answer in the workspace holding only billing."""
    served = filtered.served
    url = f"/v0/pipes/{pipe}.{fmt}"
    got = served.client.get(url, params=params, headers={"Authorization": f"Bearer {filtered.token}"})
    want = served.client.get(url, params=params, headers=filtered.oracle.headers())
    assert got.status_code == want.status_code, (pipe, params, got.text[:300], want.text[:300])
    assert got.status_code < 500
    if got.status_code == 200 and fmt == "json":
        assert _without_statistics(got.content) == _without_statistics(want.content), (pipe, params)
        for row in got.json()["data"]:
            assert str(row.get("category", "billing")).lower() in {"billing", "none"}, (pipe, params, row)
            assert row.get("ticket_id") not in TECHNICAL_TICKETS, (pipe, params, row)
    elif got.status_code == 200:
        assert got.content == want.content, (pipe, params)


@pytest.mark.parametrize("pipe", sorted(PIPES))
def test_fixed_filter_cannot_be_widened_by_known_attempts(filtered: Filtered, pipe: str) -> None:
    base = list(_pipe_query(pipe).items())
    attempts: list[list[tuple[str, str]]] = [
        [],
        [("category", "technical")],
        [("category", "TECHNICAL")],
        [("category", " Technical ")],
        [("category", "billing"), ("category", "technical")],
        [("category", "technical"), ("category", "billing")],
        [("category", "")],
        [("Category", "technical")],
        [("fixed_category", "technical")],
        [("category", "billing' OR category='technical")],
        [("group_by", "category")],
        [("group_by", "category"), ("category", "technical")],
        *[[("ticket_id", ticket)] for ticket in TECHNICAL_TICKETS],
        [("customer_id", "FULL-CUST-1")],
        [("token", filtered.full.admin)],
        [("workspace_id", filtered.full.id)],
    ]
    for attempt in attempts:
        _same(filtered, pipe, "json", base + attempt)
    _same(filtered, pipe, "csv", [*base, ("category", "technical")])


def _not_now(param: tuple[str, str]) -> bool:
    """A blank ``end_date`` means "now", like ``as_of``: not the same instant for the two answers
    compared (the window's end they echo differs by the milliseconds between them)."""
    name, value = param
    return not (name == "end_date" and not value.strip())


@settings(max_examples=300 if LONG else 40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    pipe=st.sampled_from(sorted(PIPES)),
    params=st.lists(
        st.tuples(
            st.sampled_from(FILTER_NAMES), st.sampled_from(FILTER_VALUES) | st.text(max_size=12)
        ).filter(_not_now),
        max_size=5,
    ),
)
def test_fixed_filter_cannot_be_widened_by_any_parameters(
    filtered: Filtered, pipe: str, params: list[tuple[str, str]]
) -> None:
    _same(filtered, pipe, "json", list(_pipe_query(pipe).items()) + params)


@pytest.mark.parametrize("pipe", sorted(PIPES))
def test_kept_answers_never_cross_workspaces_or_fixed_filters(
    pair: tuple[Served, Workspace, Workspace], filtered: Filtered, pipe: str
) -> None:
    """Requests that accept older answers (``Cache-Control: max-age``) get one kept for their own
    workspace and fixed filters only.  Each token first asks exactly (its answer is kept under its
    key), all of them the same query; then each accepts an hour-old answer and must get its own,
    equal to what the admin of a workspace holding just its rows gets."""
    served, alpha, bravo = pair
    url, params = f"/v0/pipes/{pipe}.json", _pipe_query(pipe)
    askers = [
        (alpha.tenant.headers(), alpha.tenant.headers()),
        (bravo.tenant.headers(), bravo.tenant.headers()),
        (filtered.full.headers(), filtered.full.headers()),
        ({"Authorization": f"Bearer {filtered.token}"}, filtered.oracle.headers()),
    ]
    for asker, _ in askers:
        assert served.client.get(url, params=params, headers=asker).status_code == 200
    for asker, exact in askers:
        kept = served.client.get(url, params=params, headers={**asker, "Cache-Control": "max-age=3600"})
        want = served.client.get(url, params=params, headers=exact)
        assert kept.status_code == want.status_code == 200, (pipe, kept.text[:300])
        assert "age" in kept.headers
        assert _without_statistics(kept.content) == _without_statistics(want.content), pipe


def test_fixed_filter_applies_to_the_ticket_sla_route(filtered: Filtered) -> None:
    served = filtered.served
    headers = {"Authorization": f"Bearer {filtered.token}"}
    for ticket in TECHNICAL_TICKETS:
        response = served.client.get(
            f"/v1/support/tickets/{ticket}/sla", params={"as_of": AS_OF}, headers=headers
        )
        assert response.status_code == 404, (ticket, response.text)
    billing = next(t["ticket_id"] for t in FULL_TICKETS if t["category"] == "billing")
    response = served.client.get(
        f"/v1/support/tickets/{billing}/sla", params={"as_of": AS_OF}, headers=headers
    )
    assert response.status_code == 200, response.text
    # The filtered token may not read the quarantine (raw rows of any category) at all.
    assert served.client.get("/v0/quarantine/support_tickets.json", headers=headers).status_code == 403


# Revocation


@pytest.mark.parametrize("scope", [Scope.ADMIN, Scope.READ, Scope.APPEND])
def test_revoked_token_is_refused_on_its_next_request_everywhere(
    pair: tuple[Served, Workspace, Workspace], scope: Scope
) -> None:
    served, alpha, _bravo = pair
    document = served.app.openapi()
    token_id, secret = served.token(alpha.tenant, scope)
    works = served.client.get("/v0/pipes", headers={"Authorization": f"Bearer {secret}"})
    assert works.status_code == 200
    served.runtime.metadata.revoke(alpha.tenant.id, token_id)
    refused = 0
    for method, path, url, arguments in _requests(document, alpha, alpha):
        if (method, path) in PUBLIC:
            continue
        for where in ("header", "query"):
            call = dict(arguments)
            headers = dict(call.pop("headers", {}))
            params = dict(call.pop("params", {}))
            if where == "header":
                headers["Authorization"] = f"Bearer {secret}"
            else:
                params["token"] = secret
            response = served.client.request(method.upper(), url, headers=headers, params=params, **call)
            assert response.status_code == 401, (
                scope,
                where,
                method,
                url,
                response.status_code,
                response.text[:300],
            )
            refused += 1
    assert refused > 2 * len(PIPES)
