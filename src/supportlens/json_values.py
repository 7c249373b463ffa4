"""Free-form JSON that clients send (ticket metadata and custom fields, connector options...).

Python's JSON parser, which reads request bodies, accepts integers of any size and NaN/Infinity;
the stores do not (orjson, SQLite and DuckDB stop at 64 bits; NaN is no JSON value and no JSON
answer could carry it back).  Such values are refused with a 422 that names where they are, not
met later as a 500 or silently turned into null."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator

from supportlens.paths import FieldPath, field_path

# What orjson writes: signed 64-bit integers, and unsigned ones above them.
SMALLEST_INTEGER = -(2**63)
LARGEST_INTEGER = 2**64 - 1


def storable_json(value: Any) -> Any:
    """``value`` unchanged when every number in it can be stored; else ValueError naming the first
    that cannot (its path within ``value``)."""
    problem = _problem(value, ())
    if problem is not None:
        raise ValueError(problem)
    return value


def _problem(value: Any, path: FieldPath) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, int):
        if SMALLEST_INTEGER <= value <= LARGEST_INTEGER:
            return None
        bounds = f"({SMALLEST_INTEGER} to {LARGEST_INTEGER})"
        return f"{_where(path)}: integers must be within the 64-bit range {bounds}"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{_where(path)}: NaN and Infinity are not JSON values"
    if isinstance(value, dict):
        for key, item in value.items():
            found = _problem(item, (*path, str(key)))
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _problem(item, (*path, index))
            if found is not None:
                return found
    return None


def _where(path: FieldPath) -> str:
    """Rendered only for the value refused: the walk itself builds no strings."""
    return field_path(path) or "the value"


JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]


def record_text(value: Any) -> str:
    """The JSON text of a record read from elsewhere (a helpdesk's API), kept as a row's raw
    content: orjson's, or the standard library's for the integers past 64 bits that orjson cannot
    write, so that such a record is checked (and quarantined with its reason) like any other
    instead of failing the sync that read it."""
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
