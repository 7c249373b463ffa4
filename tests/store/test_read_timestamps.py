"""Timestamps read from DuckDB reach the engine interface as UTC milliseconds, nulls kept: stored
microseconds (before 1970 too, sub-millisecond parts too) checked against Python's own arithmetic,
through a real store and on Arrow arrays cut into chunks and slices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.store.duckdb.engine import DuckDBEngine, _to_aware_utc

_MICROS = st.one_of(st.none(), st.integers(-(10**15), 4 * 10**15))  # 1938 to 2096


def _expected(values: list[int | None]) -> list[datetime | None]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return [None if v is None else epoch + timedelta(milliseconds=v // 1000) for v in values]


@settings(max_examples=25, deadline=None)
@given(st.lists(_MICROS, max_size=300))
def test_stored_microseconds_read_as_utc_milliseconds(
    tmp_path_factory: pytest.TempPathFactory, values: list[int | None]
) -> None:
    engine = DuckDBEngine(tmp_path_factory.mktemp("store") / "store.duckdb")
    engine.open()
    try:
        engine.conn.execute("CREATE TABLE moments (i INTEGER, moment TIMESTAMP)")
        epoch = datetime(1970, 1, 1)
        rows = [(i, None if v is None else epoch + timedelta(microseconds=v)) for i, v in enumerate(values)]
        if rows:
            engine.conn.executemany("INSERT INTO moments VALUES (?, ?)", rows)
        read = engine.fetch_arrow("SELECT i, moment FROM moments ORDER BY i", {}, timeout=30)
    finally:
        engine.close()
    assert read.schema.field("moment").type == pa.timestamp("ms", tz="UTC")
    assert read.column("moment").to_pylist() == _expected(values)


@given(
    st.lists(st.lists(_MICROS, max_size=40), max_size=5), st.integers(0, 10), st.sampled_from(["us", "ns"])
)
def test_chunks_and_slices_convert_alike(chunks: list[list[int | None]], cut: int, unit: str) -> None:
    scale = 1000 if unit == "ns" else 1
    arrays = [
        pa.array([None if v is None else v * scale for v in chunk], pa.timestamp(unit)) for chunk in chunks
    ]
    arrays = [array.slice(min(cut, len(array))) for array in arrays]  # slices start at an offset
    column = pa.chunked_array(arrays, pa.timestamp(unit))
    table = _to_aware_utc(pa.table({"at": column}))
    assert table.schema.field("at").type == pa.timestamp("ms", tz="UTC")
    values = [v for chunk in chunks for v in chunk[min(cut, len(chunk)) :]]
    assert table.column("at").to_pylist() == _expected(values)
