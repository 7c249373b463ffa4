"""Reporting periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from supportlens.domain.periods import (
    IntervalError,
    PeriodUnit,
    parse_interval,
    period_starts,
)

YEAR = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 12, 31, 23, 59, tzinfo=UTC))


def test_hour_periods_across_dst() -> None:
    start = datetime(2025, 11, 2, 4, tzinfo=UTC)  # 00:00 in New York, the day clocks fall back
    labels = period_starts(start, start + timedelta(hours=5), PeriodUnit.HOUR, "America/New_York")
    # 01:00 happens twice and is one period.
    assert labels == [f"2025-11-02 0{h}:00:00" for h in (0, 1, 2, 3, 4)]
    spring = datetime(2025, 3, 9, 5, tzinfo=UTC)  # 00:00; 02:00 does not exist
    labels = period_starts(spring, spring + timedelta(hours=3), PeriodUnit.HOUR, "America/New_York")
    assert labels == [
        "2025-03-09 00:00:00",
        "2025-03-09 01:00:00",
        "2025-03-09 03:00:00",
        "2025-03-09 04:00:00",
    ]


def test_long_periods_step_the_calendar() -> None:
    labels = period_starts(*YEAR, PeriodUnit.QUARTER, "Asia/Tokyo")
    assert labels == [
        "2025-01-01 00:00:00",
        "2025-04-01 00:00:00",
        "2025-07-01 00:00:00",
        "2025-10-01 00:00:00",
        "2026-01-01 00:00:00",
    ]
    weeks = period_starts(*YEAR, PeriodUnit.WEEK, "UTC")
    assert weeks[0] == "2024-12-30 00:00:00"  # ISO weeks start on Monday
    assert (
        len(period_starts(*YEAR, PeriodUnit.DAY, "Europe/Berlin")) == 366
    )  # the window ends on Jan 1 in Berlin


def test_intervals() -> None:
    assert parse_interval("yyyy-MM-dd HH:00").label("2025-03-04 05:00:00") == "2025-03-04 05:00"
    assert parse_interval("Month").unit is PeriodUnit.MONTH
    for bad in ("MM-dd", "yyyy-dd", "fortnight", "yyyy-MM-dd HH:mm"):
        with pytest.raises(IntervalError):
            parse_interval(bad)
    with pytest.raises(IntervalError):
        period_starts(
            datetime(1970, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC), PeriodUnit.HOUR, "UTC"
        )
