"""Timestamp spellings, normalization and the reasons rows are rejected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from supportlens.domain.models import TicketSnapshot
from supportlens.ingest.service import split_payload
from supportlens.ingest.tickets import Rejection, validate_ticket
from supportlens.ingest.timestamps import (
    FORMATTED_IN_PYTHON,
    TimestampError,
    format_timestamp,
    format_timestamps,
    parse_query_date,
    parse_timestamp,
)

INSTANTS = st.datetimes(
    min_value=datetime(1974, 1, 1), max_value=datetime(2150, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


def epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@given(INSTANTS, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_every_spelling_means_the_same_instant(moment: datetime, offset_minutes: int) -> None:
    shifted = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    spellings: list[object] = [
        moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        moment.isoformat().replace("+00:00", "Z"),
        shifted.isoformat(),
        epoch_ms(moment),
        str(epoch_ms(moment)),
    ]
    for spelling in spellings:
        assert parse_timestamp(spelling) == moment, spelling
    assert parse_timestamp(int(moment.timestamp())) == moment.replace(microsecond=0)
    assert parse_timestamp(format_timestamp(moment)) == moment


@pytest.mark.parametrize(
    "bad",
    ["yesterday", "", "2023-13-01 00:00:00", "2023-06-15 25:00:00", True, None, [], "1e400", float("nan")],
)
def test_unparseable_timestamps(bad: object) -> None:
    with pytest.raises(TimestampError):
        parse_timestamp(bad)


def test_query_dates_cover_whole_days() -> None:
    assert parse_query_date("2023-06-15", end_of_day=False) == datetime(2023, 6, 15, tzinfo=UTC)
    assert parse_query_date("2023-06-15", end_of_day=True) == datetime(
        2023, 6, 15, 23, 59, 59, 999000, tzinfo=UTC
    )
    assert parse_query_date("2023-06-15 10:00:00", end_of_day=True) == datetime(2023, 6, 15, 10, tzinfo=UTC)
    for bad in ("12345", "0001-01-01", "9999-12-31"):
        with pytest.raises(TimestampError):
            parse_query_date(bad, end_of_day=True)


def test_normalization() -> None:
    snapshot = validate_ticket(
        {
            "ticket_id": 42,
            "created_at": "2023-06-15 09:30:00",
            "priority": " Critical ",
            "category": "BILLING",
            "status": "Resolved",
            "satisfaction_score": 5.0,
            "unknown_field": {"ignored": True},
        }
    )
    assert isinstance(snapshot, TicketSnapshot)
    assert (snapshot.ticket_id, snapshot.priority, snapshot.category, snapshot.status) == (
        "42",
        "urgent",
        "billing",
        "resolved",
    )
    assert snapshot.satisfaction_score == 5
    assert snapshot.first_response_at is None  # absent means "not yet", never zero


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ({"created_at": "2023-01-01"}, "ticket_id"),
        ({"ticket_id": "", "created_at": "2023-01-01"}, "ticket_id"),
        ({"ticket_id": True, "created_at": "2023-01-01"}, "ticket_id"),
        ({"ticket_id": "x"}, "created_at"),
        ({"ticket_id": "x", "created_at": "2023-01-01", "agent_id": {"id": 1}}, "agent_id"),
        ({"ticket_id": "x", "created_at": "2023-01-01", "satisfaction_score": 0}, "satisfaction_score"),
        ({"ticket_id": "x", "created_at": "2023-01-01", "satisfaction_score": 3.5}, "satisfaction_score"),
        ({"ticket_id": "x", "created_at": "2023-01-01", "satisfaction_score": True}, "satisfaction_score"),
        (
            {"ticket_id": "x", "created_at": "2023-01-02", "first_response_at": "2023-01-01"},
            "first_response_at",
        ),
        ({"ticket_id": "x", "created_at": "2023-01-01", "tags": [1]}, "tags"),
        ({"ticket_id": "x", "created_at": "2023-01-01", "category": 7}, "category"),
    ],
)
def test_rejections_name_the_column(row: dict[str, object], column: str) -> None:
    outcome = validate_ticket(row)
    assert isinstance(outcome, Rejection)
    assert outcome.column == column
    assert outcome.message


def test_payload_shapes() -> None:
    assert [r.value for r in split_payload(b'{"a": 1}')] == [{"a": 1}]
    assert [r.value for r in split_payload(b'[{"a": 1}, {"a": 2}]')] == [{"a": 1}, {"a": 2}]
    rows = list(split_payload(b'{"a": 1}\n\n{"a": 2\n{"a": 3}\n'))
    assert [r.value for r in rows] == [{"a": 1}, None, {"a": 3}]
    assert rows[1].parse_error is not None
    assert rows[1].text == '{"a": 2'
    assert list(split_payload(b"  \n")) == []


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(0, 7_258_118_399_999),
            st.integers(0, 7_258_118_399).map(lambda s: s * 1000),
        ),
        max_size=50,
    )
)
def test_a_column_is_formatted_like_each_value(millis: list[int | None]) -> None:
    """The column formatter equals ``format_timestamp`` value by value, nulls kept, for short
    columns (formatted value by value) and long ones (by DuckDB)."""
    column = pa.array(millis, pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    expected = [
        None
        if ms is None
        else format_timestamp(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms))
        for ms in millis
    ]
    assert format_timestamps(column).to_pylist() == expected
    assert format_timestamps(pa.chunked_array([column, column])).to_pylist() == expected * 2
    copies = FORMATTED_IN_PYTHON // max(len(millis), 1) + 1  # past the bound: DuckDB's way
    assert format_timestamps(pa.chunked_array([column] * copies)).to_pylist() == expected * copies
