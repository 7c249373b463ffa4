"""Reading ticket files for ``supportlens import``: NDJSON, a JSON array, or CSV with a header."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from supportlens.ingest.service import RawRow, split_payload

_NUMERIC = ("satisfaction_score",)


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if ".csv" in suffixes:
        return "csv"
    if ".ndjson" in suffixes or ".jsonl" in suffixes:
        return "ndjson"
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    return "json" if head.startswith(b"[") else "ndjson"


def _csv_value(column: str, text: str) -> Any:
    """CSV cells are text: empty means null, numbers and tag lists are given their JSON types."""
    if text == "":
        return None
    if column in _NUMERIC:
        try:
            number = float(text)
        except ValueError:
            return text  # validation quarantines it with a clear message
        return int(number) if number.is_integer() else number
    if column == "tags":
        if text.lstrip().startswith("["):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                return text
        return [tag.strip() for tag in text.split(",") if tag.strip()]
    return text


def read_rows(path: Path, kind: str) -> Iterator[RawRow]:
    """Rows of a CSV file or a JSON document (an array of objects, or one object)."""
    if kind == "csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for record in csv.DictReader(handle):
                row = {column: _csv_value(column, value or "") for column, value in record.items() if column}
                yield RawRow(row, orjson.dumps(record).decode())
    else:
        yield from split_payload(path.read_bytes())


def ndjson_batches(path: Path, size: int) -> Iterator[list[bytes]]:
    """An NDJSON file in batches of ``size`` lines, for the bulk validator."""
    with path.open("rb") as handle:
        while batch := list(islice(handle, size)):
            yield batch
