"""Typed query parameters: each pipe declares what it takes; a bad value is an error naming it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from supportlens.domain.models import normalize_label, normalize_priority
from supportlens.ingest.timestamps import TimestampError, parse_query_date

MAX_MINUTES = 1e9  # about 1,900 years: any real SLA, and still exact in whole milliseconds


class ParamError(ValueError):
    """A query parameter with a value we cannot use; the message names the parameter."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"parameter '{name}': {problem}")
        self.name = name


class Kind(Enum):
    TEXT = "text"  # an exact-match identifier
    LABEL = "label"  # case-insensitive label (category, status)
    PRIORITY = "priority"
    START = "start"  # a date; a plain day means its start
    END = "end"  # a date; a plain day means its end
    INT = "int"
    MINUTES = "minutes"  # a non-negative number of minutes
    INTERVAL = "interval"  # validated by the pipe itself
    BOOL = "bool"  # true/false, 1/0, yes/no
    AS_OF = "as_of"  # an instant, "now", or "export_end" (resolved by the pipe)
    TIMEZONE = "timezone"  # an IANA zone name (any case), e.g. Europe/Berlin


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: Kind
    description: str
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
NOW = "now"
EXPORT_END = "export_end"


# Names in the tz database that are no place's time (and that DuckDB or Arrow do not take).
_NOT_ZONES = frozenset({"localtime", "Factory"})


@cache
def _zone_names() -> dict[str, str]:
    """The IANA zone names this installation knows, by their lower-cased spelling."""
    return {name.lower(): name for name in available_timezones() - _NOT_ZONES}


def _parse_one(spec: Param, raw: str) -> Any:
    text = raw.strip()
    match spec.kind:
        case Kind.TEXT | Kind.INTERVAL:
            return text
        case Kind.LABEL:
            return normalize_label(text)
        case Kind.PRIORITY:
            return normalize_priority(text)
        case Kind.START | Kind.END:
            try:
                return parse_query_date(text, end_of_day=spec.kind is Kind.END)
            except TimestampError as exc:
                raise ParamError(spec.name, str(exc)) from None
        case Kind.INT:
            try:
                number = int(text)
            except ValueError:
                raise ParamError(spec.name, f"expected an integer, got {text!r}") from None
            if spec.minimum is not None and number < spec.minimum:
                raise ParamError(spec.name, f"must be at least {spec.minimum}, got {number}")
            if spec.maximum is not None and number > spec.maximum:
                raise ParamError(spec.name, f"must be at most {spec.maximum}, got {number}")
            return number
        case Kind.BOOL:
            folded = text.lower()
            if folded in _TRUE:
                return True
            if folded in _FALSE:
                return False
            raise ParamError(spec.name, f"expected true or false, got {text!r}")
        case Kind.AS_OF:
            if text.lower() in (NOW, EXPORT_END):
                return text.lower()
            try:
                return parse_query_date(text, end_of_day=True)
            except TimestampError as exc:
                raise ParamError(spec.name, f"expected 'now', 'export_end' or a date: {exc}") from None
        case Kind.TIMEZONE:
            name = _zone_names().get(text.lower())
            if name is None:
                raise ParamError(
                    spec.name, f"expected an IANA timezone name such as Europe/Berlin, got {text!r}"
                )
            return name
        case Kind.MINUTES:
            try:
                minutes = float(text)
            except ValueError:
                raise ParamError(spec.name, f"expected a number of minutes, got {text!r}") from None
            if not 0 <= minutes <= MAX_MINUTES:
                raise ParamError(
                    spec.name, f"must be a number of minutes from 0 to {MAX_MINUTES:g}, got {text!r}"
                )
            return minutes
    raise AssertionError(spec.kind)  # pragma: no cover - every kind is handled above


def parse_params(specs: tuple[Param, ...], query: Mapping[str, str]) -> dict[str, Any]:
    """Values for every declared parameter: parsed, or the default when absent or empty."""
    values: dict[str, Any] = {}
    for spec in specs:
        raw = query.get(spec.name)
        values[spec.name] = spec.default if raw is None or not raw.strip() else _parse_one(spec, raw)
    return values


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


def resolve_window(
    start: datetime | None, end: datetime | None, *, now: datetime, default_days: int, names: tuple[str, str]
) -> Window:
    """The inclusive creation window; by default the ``default_days`` days up to now."""
    resolved_end = end or now
    resolved_start = start or (resolved_end - timedelta(days=default_days))
    if resolved_start > resolved_end:
        raise ParamError(names[0], f"must not be after {names[1]}")
    return Window(resolved_start.astimezone(UTC), resolved_end.astimezone(UTC))
