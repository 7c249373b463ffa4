"""Free-form JSON that clients send (ticket metadata and custom fields, connector options...).

Python's JSON parser, which reads request bodies, accepts integers of any size and NaN/Infinity;
the stores do not (orjson, SQLite and DuckDB stop at 64 bits; NaN is no JSON value and no JSON
answer could carry it back).  Such values are refused with a 422 that names where they are, not
met later as a 500 or silently turned into null."""

from __future__ import annotations

import math
from typing import Annotated, Any

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
    where = field_path(path) or "the value"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, int):
        if SMALLEST_INTEGER <= value <= LARGEST_INTEGER:
            return None
        return f"{where}: integers must be within the 64-bit range ({SMALLEST_INTEGER} to {LARGEST_INTEGER})"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where}: NaN and Infinity are not JSON values"
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


JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]
