"""Shared fixtures: real stores on both engines (DuckDB files and embedded chDB directories)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from supportlens.config import Settings
from supportlens.runtime import Runtime

ENGINES = ("duckdb", "chdb")


def store_url(engine: str, directory: Path) -> str:
    if engine == "duckdb":
        return f"duckdb:///{(directory / 'store.duckdb').as_posix()}"
    return f"chdb://{(directory / 'chdb').as_posix()}"


def make_settings(engine: str, directory: Path, **overrides: object) -> Settings:
    return Settings(data_dir=directory, store=store_url(engine, directory), **overrides)  # type: ignore[arg-type]


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime(engine_name: str, tmp_path: Path) -> Iterator[Runtime]:
    opened = Runtime.open(make_settings(engine_name, tmp_path))
    try:
        yield opened
    finally:
        opened.close()
