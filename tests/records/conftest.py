"""The app on a real store per engine (as tests/api), and seed 001's template as test data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, open_api

SEED_TEMPLATE = Path(__file__).with_name("seed001_template.json")


@pytest.fixture
def api(engine_name: str, tmp_path: Path) -> Iterator[Api]:
    yield from open_api(engine_name, tmp_path)


@pytest.fixture
def template() -> dict[str, Any]:
    """Seed 001's "Esquema completo (JSON)": three collections and three relationships."""
    loaded: dict[str, Any] = json.loads(SEED_TEMPLATE.read_text())
    return loaded


@pytest.fixture
def seed_schemas(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Seed 001's json_schema of each collection, by collection id."""
    return {collection["id"]: collection["json_schema"] for collection in template["collections"]}
