"""Parsing of the timestamp spellings clients send, and of the dates query parameters take."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, time

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

# Epoch values at or above this are milliseconds: 1e11 seconds would be the year 5138, and 1e11
# milliseconds is 1973-03-03, so epoch milliseconds are read correctly for any instant after that.
_EPOCH_MS_THRESHOLD = 100_000_000_000
_MIN = datetime(1970, 1, 1, tzinfo=UTC)
_MAX = datetime(2200, 1, 1, tzinfo=UTC)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")


class TimestampError(ValueError):
    """A value that is not a timestamp we understand; the message says why."""


def truncate_ms(value: datetime) -> datetime:
    """Millisecond precision everywhere, so both engines store and compare the same instants."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _checked(value: datetime) -> datetime:
    if not _MIN <= value < _MAX:
        raise TimestampError(f"{value.isoformat()} is outside 1970-01-01 .. 2200-01-01")
    return truncate_ms(value)


def to_utc(value: datetime) -> datetime:
    """An aware datetime in UTC (a naive one is taken as UTC).  Near the ends of the calendar an
    offset can carry the instant past year 1 or 9999, which Python cannot represent: that is a
    TimestampError (out of range), not an OverflowError."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise TimestampError(f"{value.isoformat()} is outside 1970-01-01 .. 2200-01-01") from None


def from_epoch(number: float) -> datetime:
    seconds = number / 1000 if abs(number) >= _EPOCH_MS_THRESHOLD else number
    try:
        return _checked(datetime.fromtimestamp(seconds, tz=UTC))
    except (OverflowError, OSError, ValueError) as exc:
        raise TimestampError(f"epoch value {number!r} is out of range") from exc


def parse_timestamp(value: object) -> datetime:
    """Parse ``YYYY-MM-DD HH:MM:SS`` (UTC), ISO 8601 (``Z`` or offset; none means UTC), or epoch
    seconds / milliseconds (number or numeric string) into an aware UTC datetime."""
    if type(value) is str and value[4:5] == "-":
        # The common case, a date-time string, on the hot ingest path: a number never has '-'
        # at index 4, so it can go straight to the ISO parser.  Anything unusual falls through.
        try:
            parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "zZ" else value)
        except ValueError:
            pass
        else:
            parsed = to_utc(parsed)
            if _MIN <= parsed < _MAX:
                return truncate_ms(parsed) if parsed.microsecond % 1000 else parsed
    if isinstance(value, bool):
        raise TimestampError("expected a timestamp, got a boolean")
    if isinstance(value, int | float):
        if value != value:  # NaN
            raise TimestampError("expected a timestamp, got NaN")
        return from_epoch(value)
    if not isinstance(value, str):
        raise TimestampError(f"expected a timestamp string or number, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise TimestampError("empty timestamp")
    if _NUMERIC.match(text):
        return from_epoch(float(text))
    candidate = text[:-1] + "+00:00" if text[-1] in "zZ" else text
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise TimestampError(
            f"{text!r} is not a timestamp (use 'YYYY-MM-DD HH:MM:SS', ISO 8601 or epoch seconds)"
        ) from None
    return _checked(to_utc(parsed))


def parse_query_date(value: str, *, end_of_day: bool) -> datetime:
    """A date query parameter. A plain ``YYYY-MM-DD`` means the start of that day, or its last
    millisecond when ``end_of_day`` (so an end date includes the whole day)."""
    text = value.strip()
    if _DATE_ONLY.match(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise TimestampError(f"{text!r} is not a valid date") from None
        if end_of_day:
            return _checked(datetime.combine(day.date(), time.max, tzinfo=UTC).replace(microsecond=999_000))
        return _checked(day)
    if _NUMERIC.match(text):
        raise TimestampError(f"{text!r} is not a date (use 'YYYY-MM-DD', 'YYYY-MM-DD HH:MM:SS' or ISO 8601)")
    return parse_timestamp(text)


def format_timestamp(value: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, with ``.fff`` only when there are milliseconds."""
    utc = value.astimezone(UTC) if value.tzinfo else value
    base = utc.strftime("%Y-%m-%d %H:%M:%S")
    millis = utc.microsecond // 1000
    return f"{base}.{millis:03d}" if millis else base


def format_timestamps(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``format_timestamp`` for a whole column of UTC timestamps from 1970 on (the range stored
    timestamps have); nulls stay null.  DuckDB formats long columns: about ten times faster than
    Arrow's strftime, which matters for answers of a million rows.  Short ones (a page of rows, a
    pipe's period labels) are formatted here."""
    naive = pc.cast(values, pa.timestamp("ms", tz=values.type.tz)).cast(pa.int64()).cast(pa.timestamp("ms"))
    if len(naive) <= FORMATTED_IN_PYTHON:
        return pa.array([None if v is None else format_timestamp(v) for v in naive.to_pylist()], pa.string())
    cursor = _formatter().cursor()
    try:
        formatted = cursor.from_arrow(pa.table({"ts": naive})).project(_FORMAT).to_arrow_table()
    finally:
        cursor.close()
    return formatted.column(0).combine_chunks()


# Columns up to this long are formatted value by value (~2.5 µs each) rather than by DuckDB (~1 ms
# a query, however short).
FORMATTED_IN_PYTHON = 300
# ``epoch_ms`` of the microsecond TIMESTAMP: DuckDB 2.0.1 cannot take it of a TIMESTAMP_MS (what a
# millisecond Arrow column reads as): "Unimplemented type for cast (INT64 -> INT64)".
_FORMAT = (
    "CASE WHEN epoch_ms(ts::TIMESTAMP) % 1000 = 0 THEN strftime(ts, '%Y-%m-%d %H:%M:%S')"
    " ELSE strftime(ts, '%Y-%m-%d %H:%M:%S.%g') END"
)


@functools.cache
def _formatter() -> duckdb.DuckDBPyConnection:
    """One in-memory database for the process; each call formats through a cursor of its own."""
    return duckdb.connect(":memory:")
