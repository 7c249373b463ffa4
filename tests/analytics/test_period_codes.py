"""``period_codes`` (labels computed once per UTC quarter hour) gives every instant exactly the
label ``period_labels`` gives it one by one, in zones with DST, half-hour and 45-minute offsets,
and before 1972 (when offsets were not multiples of 15 minutes); the local weekday and hour of UTC
quarter hours are zoneinfo's."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.analytics.activity import period_codes, period_labels
from supportlens.analytics.trends import _local_weekday_hour
from supportlens.domain.periods import PeriodUnit

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Asia/Kathmandu")
YEAR_MS = 365 * 86_400_000


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    unit=st.sampled_from(list(PeriodUnit)),
    base=st.integers(min_value=-10 * YEAR_MS, max_value=60 * YEAR_MS),
    offsets=st.lists(st.integers(min_value=0, max_value=2 * YEAR_MS), min_size=1, max_size=200),
)
def test_period_codes_match_period_labels(zone: str, unit: PeriodUnit, base: int, offsets: list[int]) -> None:
    instants = np.array([base + offset for offset in offsets], dtype=np.int64)
    names, codes = period_codes(instants, unit, zone)
    assert names == sorted(set(names))
    assert [names[code] for code in codes] == period_labels(instants, unit, zone)


def test_no_instants_no_periods() -> None:
    names, codes = period_codes(np.zeros(0, dtype=np.int64), PeriodUnit.DAY, "UTC")
    assert names == []
    assert len(codes) == 0


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    base=st.integers(min_value=2 * YEAR_MS, max_value=125 * YEAR_MS),
    quarters=st.lists(st.integers(min_value=0, max_value=4 * 96 * 365), min_size=1, max_size=200),
)
def test_local_weekday_and_hour_of_quarter_hours(zone: str, base: int, quarters: list[int]) -> None:
    """What ``arrivals`` counts a UTC quarter hour in: its local ISO weekday and hour, as Python's
    zoneinfo says, from Arrow's zone rules up to 2037 and from each label after."""
    instants = np.array([base - base % 900_000 + q * 900_000 for q in quarters], dtype=np.int64)
    weekday, hour = _local_weekday_hour(instants, zone)
    local = [datetime.fromtimestamp(int(ms) / 1000, ZoneInfo(zone)) for ms in instants]
    assert weekday.tolist() == [moment.isoweekday() for moment in local]
    assert hour.tolist() == [moment.hour for moment in local]
