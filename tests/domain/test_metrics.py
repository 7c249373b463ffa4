"""``duration_summary`` (integer arithmetic, one summary per period of an answer) gives exactly the
reference's mean, median and p90 minutes (domain/reference.py: Fractions, R-7 quantiles, rounding
half away from zero), negative durations and values on half hundredths of a minute included."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.domain import reference
from supportlens.domain.metrics import duration_summary

_HALF_HUNDREDTH_MS = 300  # 0.005 minutes: where rounding half away from zero decides


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(-(10**9), 10**12),
            st.integers(-20, 20).map(lambda n: n * _HALF_HUNDREDTH_MS),
        ),
        max_size=40,
    )
)
def test_duration_summary_equals_the_reference(values: list[int]) -> None:
    summary = duration_summary(np.array(values, dtype=np.int64))
    assert summary == {
        "count": len(values),
        "mean": reference._average_minutes(values),
        "median": reference._quantile_minutes(values, Fraction(1, 2)),
        "p90": reference._quantile_minutes(values, Fraction(9, 10)),
    }
