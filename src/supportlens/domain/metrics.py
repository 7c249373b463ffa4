"""Exact arithmetic for reported figures: averages from integer millisecond sums, percentages,
and rounding half away from zero to 2 decimals, identical whatever engine produced the sums."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

MS_PER_MINUTE = 60_000
MS_PER_HOUR = 60 * MS_PER_MINUTE
MS_PER_DAY = 24 * MS_PER_HOUR
_CENT = Decimal("0.01")


def round2(value: Fraction | int | float | None) -> float | None:
    """Round half away from zero to 2 decimals (Decimal's ROUND_HALF_UP is away from zero)."""
    if value is None:
        return None
    exact = Fraction(value)
    quantized = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(_CENT, ROUND_HALF_UP)
    # Decimal division keeps 28 significant digits: enough for any sum of milliseconds we store.
    return float(quantized)


def average(total: int | None, count: int | None, *, scale: int = 1) -> float | None:
    """``total / count / scale`` rounded; null when there is nothing to average."""
    if not count:
        return None
    return round2(Fraction(int(total or 0), int(count) * scale))


def average_minutes(total_ms: int | None, count: int | None) -> float | None:
    return average(total_ms, count, scale=MS_PER_MINUTE)


def minutes(milliseconds: Fraction | int | float | None) -> float | None:
    """A duration (or an interpolated quantile) in milliseconds as rounded minutes."""
    if milliseconds is None or milliseconds != milliseconds:  # NaN: a quantile of nothing
        return None
    return round2(Fraction(milliseconds) / MS_PER_MINUTE)


def percentage(part: int | None, whole: int | None) -> float:
    """``100 * part / whole``, and 0 for an empty whole."""
    if not whole:
        return 0.0
    result = round2(Fraction(100 * int(part or 0), int(whole)))
    assert result is not None
    return result


def minutes_array(milliseconds: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``minutes`` for a whole column of integer milliseconds, exactly: hundredths of a minute
    rounded half away from zero in integers (ms / 600), then one correctly rounded division."""
    magnitude = np.abs(milliseconds)
    cents = (magnitude * 2 + 600) // 1200
    result: npt.NDArray[np.float64] = np.sign(milliseconds) * cents / 100.0
    return result


def duration_summary(values_ms: npt.NDArray[np.int64]) -> dict[str, Any]:
    """``count``, and the ``mean``, ``median`` and ``p90`` minutes (null when empty) of durations,
    in integers (no Fraction: an answer of hundreds of periods summarizes each one)."""
    ordered = np.sort(values_ms)
    count = len(ordered)
    if not count:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    return {
        "count": count,
        "mean": _rational_minutes(int(ordered.sum()), count),
        "median": _quantile_minutes(ordered, 1, 2),
        "p90": _quantile_minutes(ordered, 9, 10),
    }


def _quantile_minutes(sorted_values: npt.NDArray[np.int64], numerator: int, denominator: int) -> float:
    """The quantile at level numerator / denominator of a non-empty sorted array (linear
    interpolation between closest ranks: R-7, ``quantile_cont``) in rounded minutes, exactly."""
    low, rest = divmod(numerator * (len(sorted_values) - 1), denominator)
    high = min(low + 1, len(sorted_values) - 1)
    below, above = int(sorted_values[low]), int(sorted_values[high])
    return _rational_minutes(below * denominator + rest * (above - below), denominator)


def _rational_minutes(numerator: int, denominator: int) -> float:
    """``minutes(Fraction(numerator, denominator))`` for a positive denominator: hundredths of a
    minute (ms / 600) rounded half away from zero, then one correctly rounded division."""
    cents = (2 * abs(numerator) + 600 * denominator) // (1200 * denominator)
    return (-cents if numerator < 0 else cents) / 100.0


def human_duration(milliseconds: int) -> str:
    """Whole minutes as people write them: "45 minutes", "2 hours", "6 hours 15 minutes", "-1 hour"."""
    total = abs(milliseconds) // MS_PER_MINUTE
    hours, rest = divmod(total, 60)
    parts = [f"{hours} hour{'s' * (hours != 1)}"] if hours else []
    if rest or not hours:
        parts.append(f"{rest} minute{'s' * (rest != 1)}")
    sign = "-" if milliseconds < 0 and total else ""
    return sign + " ".join(parts)
