"""The store records its schema version and refuses to be misread by an older SupportLens."""

from __future__ import annotations

from pathlib import Path

import pytest

from supportlens.store import StoreURLError, create_engine
from supportlens.store.schema import SCHEMA_VERSION, SchemaError
from tests.conftest import store_url


def test_version_is_recorded_and_a_newer_store_is_refused(engine_name: str, tmp_path: Path) -> None:
    url = store_url(engine_name, tmp_path)
    engine = create_engine(url)
    engine.open()
    assert engine._schema_version() == SCHEMA_VERSION
    engine._set_schema_version(SCHEMA_VERSION + 1)  # as if a later release had written it
    engine.close()
    reopened = create_engine(url)
    with pytest.raises(SchemaError, match="newer SupportLens"):
        reopened.open()
    reopened.close()


def test_reopening_keeps_data_and_version(engine_name: str, tmp_path: Path) -> None:
    url = store_url(engine_name, tmp_path)
    for _ in range(2):
        engine = create_engine(url)
        engine.open()
        assert engine._schema_version() == SCHEMA_VERSION
        engine.close()


@pytest.mark.parametrize("url", ["sqlite:///x", "nothing", "duckdb://"])
def test_bad_store_urls(url: str) -> None:
    with pytest.raises(StoreURLError):
        create_engine(url)
