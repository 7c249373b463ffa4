"""An app on a real store per engine, driven through the in-process ASGI client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from supportlens.app import create_app
from supportlens.auth.tokens import Scope
from supportlens.runtime import Runtime
from tests.conftest import make_settings


@dataclass
class Api:
    client: TestClient
    runtime: Runtime
    workspace_id: str
    admin: str

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin}"}

    def token(self, *scopes: Scope, **options: object) -> str:
        _, secret = self.runtime.metadata.create_token(self.workspace_id, "test", set(scopes), **options)  # type: ignore[arg-type]
        return secret


def open_api(engine: str, directory: Path, **overrides: object) -> Iterator[Api]:
    app = create_app(make_settings(engine, directory, **overrides))
    with TestClient(app) as client:
        runtime: Runtime = app.state.runtime
        workspace = runtime.metadata.create_workspace("acme")
        _, admin = runtime.metadata.create_token(workspace.id, "admin", {Scope.ADMIN})
        yield Api(client, runtime, workspace.id, admin)


@pytest.fixture
def api(engine_name: str, tmp_path: Path) -> Iterator[Api]:
    yield from open_api(engine_name, tmp_path)
