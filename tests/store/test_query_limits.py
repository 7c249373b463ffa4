"""A query running past the time limit is stopped with a clear error, and the store keeps serving."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from supportlens.store import create_engine
from supportlens.store.base import QueryTimeout
from tests.conftest import store_url

HEAVY = {
    "duckdb": "SELECT count(*) FROM range(1000000000) a, range(1000000) b WHERE a.range + b.range = -1",
    "chdb": "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) = 0",
}


def test_long_query_is_stopped_at_the_limit(engine_name: str, tmp_path: Path) -> None:
    engine = create_engine(store_url(engine_name, tmp_path))
    engine.open()
    try:
        started = time.perf_counter()
        with pytest.raises(QueryTimeout, match="time limit"):
            engine.fetch(HEAVY[engine_name], {}, timeout=1.0)
        assert time.perf_counter() - started < 10
        assert engine.fetch("SELECT 1 AS one", {}, timeout=5).rows == [(1,)]
    finally:
        engine.close()
