"""API fuzzing (issue 7, point 1): schemathesis generates requests for every operation of the served
OpenAPI document, valid and invalid, with a valid token of each scope, an invalid token and none, and
sends them through the ASGI interface to an app on a real DuckDB store.  No answer may be a 5xx, and
every answer must match the document: its status code listed, its content type listed, its body valid
against the documented schema, its documented headers present.

Short form (``make test``): a few examples per operation.  Long form (``SUPPORTLENS_RELIABILITY=long``,
``make reliability``): at least 5,000 generated requests, and the figures (requests per operation and
per token, statuses, failures) in build/reliability/fuzz.json."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from supportlens.api.configuration import CALENDAR_EXAMPLES
from supportlens.api.sla import POLICY_EXAMPLES
from supportlens.app import create_app
from tests.conftest import make_settings
from tests.reliability.fixtures_api import LONG, PUBLIC_PATHS, Served, Tenant, serve, write_figures


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_context: Any, value: Any) -> bytes:
    """The NDJSON body of the Events API is sent as the generated text; other values as JSON (the
    standard encoder: it writes integers past 64 bits, which clients may send and orjson refuses)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


# The document as served (/openapi.json): building the app opens nothing.
DOCUMENT = create_app(make_settings("duckdb", Path("unused"))).openapi()
# Every phase (schema examples, the coverage phase's boundary values and unexpected methods, random
# fuzzing) for the admin token; the short form fuzzes the other tokens without the coverage phase.
schema = schemathesis.openapi.from_dict(DOCUMENT)
random_only = (
    schema
    if LONG
    else schemathesis.openapi.from_dict(
        DOCUMENT, config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
    )
)
# Values that exist in the store (filled in by the fixture): generated path and query parameters are
# swapped for one of them at random, so that the fuzzing also reaches existing resources and rows.
KNOWN: dict[str, list[str]] = {
    "ticket_id": ["T1", "T4", "T100"],
    "customer_id": ["C1"],
    "agent_id": ["A1"],
    "category": ["billing"],
    "group_id": ["G-DE"],
}


# Parameters that take an instant also get instants: any date-time of the calendar with any offset
# (near year 1 or 9999 an offset leaves what Python can represent), and edge spellings.
INSTANTS = {"at", "start", "end", "as_of", "start_date", "end_date", "created_after", "created_before"}
EDGE_INSTANTS = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "1969-12-31T23:59:59Z",
    "2200-01-01",
]
instants = st.one_of(
    st.sampled_from(EDGE_INSTANTS),
    st.builds(
        lambda moment, offset: moment.isoformat() + offset,
        st.datetimes(),
        st.sampled_from(["", "Z", "+14:00", "-12:00", "+05:30"]),
    ),
)


def _known(values: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any] | None]:
    if not isinstance(values, dict):
        return st.just(values)
    choices = {
        name: st.sampled_from([value, *KNOWN[name]]) for name, value in values.items() if KNOWN.get(name)
    }
    for name, value in values.items():
        if name in INSTANTS:
            choices[name] = st.just(value) | instants
    return st.fixed_dictionaries(choices).map(lambda chosen: {**values, **chosen})


for _schema in {id(s): s for s in (schema, random_only)}.values():
    _schema.hook("flatmap_path_parameters")(lambda _context, values: _known(values))
    _schema.hook("flatmap_query")(lambda _context, values: _known(values))

OPERATIONS = sorted(f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item)

EXAMPLES_PER_OPERATION = 50 if LONG else 5
MIN_LONG_REQUESTS = 5_000
TOKENS = ("admin", "read", "append", "invalid", "missing")
PUBLIC = {f"GET {path}" for path in PUBLIC_PATHS}

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]

SENT: Counter[str] = Counter()
BY_TOKEN: Counter[str] = Counter()
STATUSES: dict[str, Counter[int]] = defaultdict(Counter)
FAILURES: list[dict[str, Any]] = []
STARTED = time.monotonic()

TICKETS = [
    {
        "ticket_id": f"T{i}",
        "customer_id": f"C{i % 3}",
        "agent_id": f"A{i % 2}",
        "category": ("billing", "technical")[i % 2],
        "priority": ("low", "medium", "high", "urgent")[i % 4],
        "status": ("open", "pending", "resolved", "closed")[i % 4],
        "created_at": f"2026-01-{i + 1:02d} 09:00:00",
        "first_response_at": f"2026-01-{i + 1:02d} 09:30:00" if i % 3 else None,
        "resolved_at": f"2026-01-{i + 1:02d} 15:00:00" if i % 4 >= 2 else None,
        "satisfaction_score": (i % 5) + 1 if i % 2 else None,
        "tags": ["vip"] if i % 5 == 0 else [],
    }
    for i in range(12)
]
EVENTS = [
    {
        "event_id": "e1",
        "ticket_id": "T100",
        "at": "2026-01-05T09:00:00Z",
        "type": "created",
        "actor_type": "customer",
        "status": "open",
        "priority": "high",
    },
    {
        "event_id": "e2",
        "ticket_id": "T100",
        "at": "2026-01-05T09:40:00Z",
        "type": "reply",
        "actor_type": "agent",
        "actor_id": "A1",
    },
    {
        "event_id": "e3",
        "ticket_id": "T100",
        "at": "2026-01-06T08:00:00Z",
        "type": "status_changed",
        "to": "resolved",
    },
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Tenant]]:
    with_data = tmp_path_factory.mktemp("fuzz")
    for server in serve("duckdb", with_data):
        tenant = server.tenant("fuzz")
        assert server.post(tenant, "support_tickets", TICKETS)["successful_rows"] == len(TICKETS)
        assert server.post(tenant, "ticket_events", EVENTS)["successful_rows"] == len(EVENTS)
        for path, example, key in (
            ("/v1/calendars", CALENDAR_EXAMPLES, "calendar_id"),
            ("/v1/sla-policies", POLICY_EXAMPLES, "policy_id"),
        ):
            for value in example.values():
                created = server.client.post(path, json=value["value"], headers=tenant.headers())
                assert created.status_code == 201, created.text
                KNOWN.setdefault(key, []).append(created.json()["id"])
        yield server, tenant
    if LONG:
        _write_figures()


def _write_figures() -> None:
    """build/reliability/fuzz.json (the long form)."""
    write_figures(
        "fuzz",
        {
            "requests": sum(SENT.values()),
            "operations_documented": len(OPERATIONS),
            "operations": sorted(SENT),
            "requests_per_operation": dict(sorted(SENT.items())),
            "requests_per_token": dict(sorted(BY_TOKEN.items())),
            "statuses": {op: {str(k): v for k, v in sorted(c.items())} for op, c in sorted(STATUSES.items())},
            "server_errors": sum(n for c in STATUSES.values() for s, n in c.items() if s >= 500),
            "failures": FAILURES,
            "examples_per_operation": EXAMPLES_PER_OPERATION,
            "seconds": round(time.monotonic() - STARTED, 1),
            "tokens": "admin (all phases: schema examples, coverage, fuzzing); read, append, invalid, missing"
            + (" (all phases)" if LONG else " (examples and fuzzing)"),
        },
    )


def _send(served: Served, case: Any, token: str | None) -> Any:
    """The generated request, as the transport would send it, through the app's ASGI client.  The
    token goes where the generated request put one (the ``token`` query parameter, else the
    ``Authorization`` header), replacing the generated value; ``None`` sends no token at all."""
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    prepared = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    params = prepared.get("params")
    in_query = isinstance(params, dict) and "token" in params
    if isinstance(params, dict):
        params = {k: v for k, v in params.items() if k != "token"}
        if in_query and token is not None:
            params["token"] = token
    prepared["headers"] = {k: v for k, v in prepared["headers"].items() if k.lower() != "authorization"}
    if token is not None and not in_query:
        prepared["headers"]["Authorization"] = f"Bearer {token}"
    request: dict[str, Any] = {"headers": prepared["headers"], "params": params}
    if "json" in prepared:
        request["json"] = prepared["json"]
    if "data" in prepared:
        data = prepared["data"]
        request["data" if isinstance(data, dict) else "content"] = data
    if prepared.get("files"):
        request["files"] = [(name, _part(part)) for name, part in prepared["files"]]
    served.client.cookies.clear()
    for name, value in (prepared.get("cookies") or {}).items():
        served.client.cookies.set(name, value)
    response = served.client.request(prepared["method"], prepared["url"], **request)
    response.request.read()  # a multipart body is a stream: read it for the checks that look at it
    return response


def _part(part: Any) -> Any:
    """A generated multipart part as httpx sends it: text (lone surrogates kept as bytes) or bytes."""
    filename, content, *rest = part if isinstance(part, tuple) else (None, part)
    if not isinstance(content, bytes):
        text = content if isinstance(content, str) else json.dumps(content)
        content = text.encode("utf-8", "surrogatepass")
    return (filename, content, *rest)


def _check(case: Any, token_kind: str, served: tuple[Served, Tenant]) -> None:
    server, tenant = served
    operation = f"{case.operation.method.upper()} {case.path}"
    token = {"invalid": "sl_not-a-real-token", "missing": None}.get(token_kind, tenant.tokens.get(token_kind))
    response = _send(server, case, token)
    SENT[operation] += 1
    BY_TOKEN[token_kind] += 1
    STATUSES[operation][response.status_code] += 1
    try:
        assert response.status_code < 500, (
            f"{operation} answered {response.status_code}: {response.text[:500]}"
        )
        case.validate_response(response, checks=CHECKS)
        if case.method.upper() != case.operation.method.upper():
            # The coverage phase also tries methods the path does not have.
            assert response.status_code == 405, (case.method, operation, response.status_code)
        elif token_kind in {"invalid", "missing"} and operation not in PUBLIC:
            # Nothing is read or changed without a live token; a malformed body may be refused first.
            assert response.status_code in {401, 400, 413, 415, 422}, (operation, response.status_code)
    except BaseException as exc:
        FAILURES.append(
            {
                "operation": operation,
                "token": token_kind,
                "status": response.status_code,
                "error": str(exc)[:2000],
            }
        )
        raise


def _fuzz(token_kind: str, generated: Any) -> Any:
    """One test per operation of the document, sending ``token_kind`` with every generated request.
    (The parametrization by ``token_kind`` gives each operation's test an id of its own, which
    pytest-xdist needs: without one, all of a function's operations share the function's id.)"""

    @generated.parametrize()
    @pytest.mark.parametrize("token_kind", [token_kind])
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    def fuzz(case: Any, token_kind: str, served: tuple[Served, Tenant]) -> None:
        _check(case, token_kind, served)

    fuzz.__doc__ = f"Every operation with {token_kind} token."
    return fuzz


test_admin_token = _fuzz("admin", schema)
test_read_token = _fuzz("read", random_only)
test_append_token = _fuzz("append", random_only)
test_invalid_token = _fuzz("invalid", random_only)
test_missing_token = _fuzz("missing", random_only)


def test_every_operation_was_fuzzed() -> None:
    """Runs after the tests above (same module, one worker): each was sent requests, and the long
    form sent at least 5,000 in all."""
    if not SENT:
        pytest.skip("run together with the tests above")
    assert set(SENT) == set(OPERATIONS), sorted(set(OPERATIONS) - set(SENT))
    total = sum(SENT.values())
    assert total >= (MIN_LONG_REQUESTS if LONG else len(OPERATIONS))
    assert not FAILURES, FAILURES
