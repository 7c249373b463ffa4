"""Pipe answers written out a slice at a time (api/formats.py) are byte for byte what writing the
whole listing in one call gives, for rows kept as an Arrow table and as a list, at every size
around the slice boundary."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pyarrow as pa
import pytest

from supportlens.analytics.common import PipeResult, TableRows
from supportlens.api.formats import RENDER_SLICE_ROWS, render

COLUMNS = [("ticket_id", "String"), ("minutes", "Nullable(Float64)"), ("tags", "Array(String)")]


def _rows(n: int) -> list[dict[str, Any]]:
    return [
        {"ticket_id": f"T-{i}", "minutes": None if i % 3 else i / 7, "tags": ["a", 'q"uote'][: i % 3]}
        for i in range(n)
    ]


def _results(n: int) -> list[PipeResult]:
    rows = _rows(n)
    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [("ticket_id", pa.string()), ("minutes", pa.float64()), ("tags", pa.list_(pa.string()))]
        ),
    )
    as_list = PipeResult(COLUMNS, rows, n, 0.25, rows_before_limit=n + 1)
    as_table = PipeResult(COLUMNS, TableRows(table), n, 0.25, rows_before_limit=n + 1, table=table)
    return [as_list, as_table]


SIZES = [0, 1, RENDER_SLICE_ROWS - 1, RENDER_SLICE_ROWS, RENDER_SLICE_ROWS + 1, 2 * RENDER_SLICE_ROWS + 7]


@pytest.mark.parametrize("n", SIZES)
def test_json_in_slices_is_the_whole_listing_dumped_at_once(n: int) -> None:
    whole = {
        "meta": [{"name": name, "type": kind} for name, kind in COLUMNS],
        "data": _rows(n),
        "rows": n,
        "rows_before_limit_at_least": n + 1,
        "statistics": {"elapsed": 0.25, "rows_read": n, "bytes_read": 0},
    }
    for result in _results(n):
        body = bytes(render(result, "json").body)
        assert body == orjson.dumps(whole)
        assert orjson.loads(body) == whole


@pytest.mark.parametrize("n", SIZES)
def test_ndjson_and_csv_in_slices_hold_every_row_in_order(n: int) -> None:
    rows = _rows(n)
    expected_csv = io.StringIO()
    writer = csv.writer(expected_csv, lineterminator="\n")
    writer.writerow([name for name, _ in COLUMNS])
    for row in rows:
        minutes = "" if row["minutes"] is None else row["minutes"]
        writer.writerow([row["ticket_id"], minutes, orjson.dumps(row["tags"]).decode()])
    for result in _results(n):
        ndjson = bytes(render(result, "ndjson").body)
        assert ndjson == b"".join(orjson.dumps(row) + b"\n" for row in rows)
        assert bytes(render(result, "csv").body).decode() == expected_csv.getvalue()
