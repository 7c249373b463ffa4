"""Serialization of pipe results: JSON (Tinybird's shape), CSV, NDJSON and Parquet."""

from __future__ import annotations

import csv
import io
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


def render(result: PipeResult, fmt: str, *, status_code: int = 200) -> Response:
    names = [name for name, _ in result.columns]
    if fmt == "json":
        body: dict[str, Any] = {
            "meta": [{"name": name, "type": kind} for name, kind in result.columns],
            "data": list(result.rows),
            "rows": len(result.rows),
        }
        if result.rows_before_limit is not None:
            body["rows_before_limit_at_least"] = result.rows_before_limit
        body["statistics"] = {
            "elapsed": round(result.elapsed, 6),
            "rows_read": result.rows_read,
            "bytes_read": 0,
        }
        return Response(orjson.dumps(body), status_code=status_code, media_type=FORMATS[fmt])
    if fmt == "ndjson":
        payload = b"".join(orjson.dumps(row) + b"\n" for row in result.rows)
        return Response(payload, status_code=status_code, media_type=FORMATS[fmt])
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        for row in result.rows:
            writer.writerow([_csv_value(row[name]) for name in names])
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
