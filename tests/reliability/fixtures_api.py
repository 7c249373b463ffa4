"""Shared helpers of the reliability tests: an app on a real store (DuckDB or embedded chDB) in a
temporary directory, driven through the in-process ASGI client, and workspaces with one token per
scope.  (No conftest.py here on purpose: other reliability tests keep their own.)"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.testclient import TestClient

from supportlens.app import create_app
from supportlens.auth.tokens import Scope
from supportlens.runtime import Runtime
from tests.conftest import make_settings

# `make reliability` sets SUPPORTLENS_RELIABILITY=long: the same tests with a larger budget, and the
# figures written under build/reliability/ for docs/reliability.md.
LONG = os.environ.get("SUPPORTLENS_RELIABILITY", "").strip().lower() == "long"
FIGURES = Path(__file__).resolve().parents[2] / "build" / "reliability"
# The only operations answered without a token (GET): liveness and readiness.
PUBLIC_PATHS = frozenset({"/health", "/ready"})


def write_figures(name: str, figures: dict[str, Any]) -> Path:
    """build/reliability/<name>.json, stamped like the other reliability figures (report.py reads them)."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"{name}.json"
    stamped = {"form": "long" if LONG else "short", "written_at": time.time(), **figures}
    path.write_bytes(orjson.dumps(stamped, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return path


@dataclass
class Tenant:
    """A workspace and a token of each scope; ``headers()`` for the admin token by default."""

    id: str
    name: str
    admin: str
    read: str
    append: str
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin}"}


@dataclass
class Served:
    app: FastAPI
    client: TestClient
    runtime: Runtime

    def tenant(self, name: str, *, timezone: str = "UTC") -> Tenant:
        metadata = self.runtime.metadata
        workspace = metadata.create_workspace(name, timezone=timezone)
        secrets = {
            scope.value: metadata.create_token(workspace.id, f"{name}-{scope.value}", {scope})[1]
            for scope in Scope
        }
        return Tenant(workspace.id, name, secrets["admin"], secrets["read"], secrets["append"], secrets)

    def token(self, tenant: Tenant, *scopes: Scope, **options: Any) -> tuple[str, str]:
        """A token of ``tenant`` with these scopes and options (pipes, datasources, fixed_filters):
        its id and secret."""
        token, secret = self.runtime.metadata.create_token(tenant.id, "extra", set(scopes), **options)
        return token.id, secret

    def post(self, tenant: Tenant, datasource: str, body: bytes | Sequence[Any]) -> dict[str, int]:
        """Rows posted with ``wait=true``: the counts, once committed."""
        payload = body if isinstance(body, bytes) else b"\n".join(orjson.dumps(row) for row in body)
        response = self.client.post(
            f"/v0/events?name={datasource}&wait=true", content=payload, headers=tenant.headers()
        )
        assert response.status_code == 200, response.text
        counts: dict[str, int] = response.json()
        return counts


def serve(engine: str, directory: Path, **overrides: Any) -> Iterator[Served]:
    """The app with its lifespan (store opened, SLA evaluator off) for the duration of the block;
    server exceptions become 500 responses, as a client would see them."""
    settings = {"sla_evaluator_interval_seconds": 0, **overrides}
    app = create_app(make_settings(engine, directory, **settings))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Served(app, client, app.state.runtime)
