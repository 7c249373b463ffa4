"""Serialization of pipe results: JSON (Tinybird's shape), CSV, NDJSON and Parquet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.responses import Response

from supportlens.analytics.common import PipeResult
from supportlens.api.errors import error_responses

FORMATS: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


def _arrow_type(meta_type: str) -> pa.DataType:
    base = (
        meta_type.removeprefix("Nullable(").removesuffix(")")
        if meta_type.startswith("Nullable(")
        else meta_type
    )
    if base.startswith("UInt") or base.startswith("Int"):
        return pa.int64()
    if base.startswith("Float"):
        return pa.float64()
    if base == "Bool":
        return pa.bool_()
    if base.startswith("Array("):
        return pa.list_(pa.string())
    return pa.string()  # strings and timestamps (already formatted as UTC text)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return orjson.dumps(value).decode()
    return value


# Rows made into Python values and written out a slice at a time: converting or dumping a whole
# listing in one C call holds the GIL for seconds at 1M rows, which stalls every other request
# (they all share the GIL) and keeps the time limit from stopping the render (it can only act
# between Python steps).  Slices of this size hold it for a few milliseconds each.
RENDER_SLICE_ROWS = 2_000


def row_slices(result: PipeResult) -> Iterator[Sequence[dict[str, Any]]]:
    """The result's rows, a slice of at most RENDER_SLICE_ROWS at a time, in order."""
    if result.table is not None:
        for start in range(0, result.table.num_rows, RENDER_SLICE_ROWS):
            yield result.table.slice(start, RENDER_SLICE_ROWS).to_pylist()
        return
    rows = result.rows
    for start in range(0, len(rows), RENDER_SLICE_ROWS):
        yield rows[start : start + RENDER_SLICE_ROWS]


def _json_array(result: PipeResult) -> bytes:
    """``orjson.dumps(list(result.rows))``, written a slice at a time."""
    # Each slice (never empty) is dumped as an array, whose brackets are dropped to splice it in.
    return b"[" + b",".join(orjson.dumps(list(rows))[1:-1] for rows in row_slices(result)) + b"]"


def render(result: PipeResult, fmt: str, *, status_code: int = 200) -> Response:
    names = [name for name, _ in result.columns]
    if fmt == "json":
        head = {"meta": [{"name": name, "type": kind} for name, kind in result.columns]}
        tail: dict[str, Any] = {"rows": len(result.rows)}
        if result.rows_before_limit is not None:
            tail["rows_before_limit_at_least"] = result.rows_before_limit
        tail["statistics"] = {
            "elapsed": round(result.elapsed, 6),
            "rows_read": result.rows_read,
            "bytes_read": 0,
        }
        # {"meta":[...],"data":[...],"rows":N,...}: the two dumped objects without their braces.
        body = b"".join(
            (orjson.dumps(head)[:-1], b',"data":', _json_array(result), b",", orjson.dumps(tail)[1:])
        )
        return Response(body, status_code=status_code, media_type=FORMATS[fmt])
    if fmt == "ndjson":
        payload = b"".join(orjson.dumps(row) + b"\n" for rows in row_slices(result) for row in rows)
        return Response(payload, status_code=status_code, media_type=FORMATS[fmt])
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        for rows in row_slices(result):
            writer.writerows([_csv_value(row[name]) for name in names] for row in rows)
        return Response(buffer.getvalue(), status_code=status_code, media_type=FORMATS[fmt])
    if fmt == "parquet":
        schema = pa.schema([pa.field(name, _arrow_type(kind)) for name, kind in result.columns])
        table = (
            result.table.cast(schema)
            if result.table is not None
            else pa.Table.from_pylist(list(result.rows), schema=schema)
        )
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return Response(sink.getvalue(), status_code=status_code, media_type=FORMATS[fmt])
    raise ValueError(f"unknown format {fmt!r}")


def _value_schema(column_type: str) -> dict[str, Any]:
    """A column's values in JSON, from its ClickHouse-style type (as ``render`` writes them)."""
    if column_type.startswith("Nullable(") and column_type.endswith(")"):
        inner = _value_schema(column_type.removeprefix("Nullable(").removesuffix(")"))
        return {"anyOf": [inner, {"type": "null"}]}
    if column_type.startswith(("UInt", "Int")):
        return {"type": "integer"}
    if column_type.startswith("Float"):
        return {"type": "number"}
    if column_type == "Bool":
        return {"type": "boolean"}
    if column_type.startswith("Array("):
        return {"type": "array", "items": _value_schema(column_type.removeprefix("Array(").removesuffix(")"))}
    return {"type": "string"}  # strings, dates and timestamps (formatted text)


def result_responses(columns: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> dict[int | str, Any]:
    """OpenAPI ``responses`` of an endpoint rendered by formats.py: its rows in the four formats
    (the JSON body in Tinybird's shape, each row's columns typed), and the errors of /v0."""
    row = {
        "type": "object",
        "properties": {name: _value_schema(kind) for name, kind in columns},
        "required": [name for name, _ in columns],
    }
    json_body = {
        "type": "object",
        "properties": {
            "meta": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "type": {"type": "string"}},
                    "required": ["name", "type"],
                },
            },
            "data": {"type": "array", "items": row},
            "rows": {"type": "integer", "minimum": 0},
            "rows_before_limit_at_least": {"type": "integer", "minimum": 0},
            "statistics": {
                "type": "object",
                "properties": {
                    "elapsed": {"type": "number", "minimum": 0},
                    "rows_read": {"type": "integer", "minimum": 0},
                    "bytes_read": {"type": "integer", "minimum": 0},
                },
                "required": ["elapsed", "rows_read", "bytes_read"],
            },
        },
        "required": ["meta", "data", "rows", "statistics"],
    }
    return {
        200: {
            "description": "The rows, in the format the path names",
            "content": {
                FORMATS["json"]: {"schema": json_body},
                FORMATS["csv"].partition(";")[0]: {"schema": {"type": "string"}},
                FORMATS["ndjson"]: {"schema": {"type": "string", "description": "One row object per line"}},
                FORMATS["parquet"]: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **error_responses(400, 401, 403, 404, 408),
    }
