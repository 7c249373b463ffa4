"""The demo ticket generator: determinism, invariants, realism and speed."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest

from supportlens.demo.generator import (
    CATEGORIES,
    CHANNELS,
    COLUMNS,
    PRIORITIES,
    STATUSES,
    Column,
    DemoConfig,
    generate_columns,
    generate_events,
)

END = datetime(2025, 6, 30, 17, 0, 12, 345_678, tzinfo=UTC)  # not on a whole second on purpose
END_S = np.datetime64("2025-06-30T17:00:12", "ms")
CONFIG = DemoConfig(end=END)
TIMESTAMPS = ("created_at", "first_response_at", "resolved_at", "updated_at")


@pytest.fixture(scope="module")
def cols() -> dict[str, Column]:
    return generate_columns(CONFIG)


def _arr(cols: dict[str, Column], name: str) -> npt.NDArray[Any]:
    value = cols[name]
    assert isinstance(value, np.ndarray)
    return value


def _strings(cols: dict[str, Column], name: str) -> npt.NDArray[np.str_]:
    return _arr(cols, name).astype(str)


def _hours(delta: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    return delta.astype("timedelta64[s]").astype(np.float64) / 3600


def _assert_same(a: dict[str, Column], b: dict[str, Column]) -> None:
    assert list(a) == list(b)
    for name in a:
        x, y = a[name], b[name]
        if isinstance(x, list):
            assert x == y, name
        elif x.dtype.kind in "fM":
            assert np.array_equal(x, y, equal_nan=True), name
        else:
            assert np.array_equal(x, y), name


def test_same_config_same_output(cols: dict[str, Column]) -> None:
    _assert_same(cols, generate_columns(DemoConfig(end=END)))
    other = generate_columns(DemoConfig(end=END, seed=7))
    assert not np.array_equal(_arr(other, "created_at"), _arr(cols, "created_at"))


def test_columns_and_types(cols: dict[str, Column]) -> None:
    assert tuple(cols) == COLUMNS
    n = CONFIG.tickets
    assert all(len(value) == n for value in cols.values())
    for name in TIMESTAMPS:
        assert _arr(cols, name).dtype == np.dtype("datetime64[ms]")
    assert _arr(cols, "satisfaction_score").dtype == np.float64
    assert isinstance(cols["tags"], list)
    assert set(_strings(cols, "category")) == set(CATEGORIES)
    assert set(_strings(cols, "priority")) == set(PRIORITIES)
    assert set(_strings(cols, "status")) == set(STATUSES)
    assert set(_strings(cols, "channel")) == set(CHANNELS)


def test_identifiers(cols: dict[str, Column]) -> None:
    tickets = _strings(cols, "ticket_id")
    assert tickets[0] == "T0000001"
    assert tickets[-1] == f"T{CONFIG.tickets:07d}"
    assert len(set(tickets.tolist())) == CONFIG.tickets
    created = _arr(cols, "created_at")
    assert bool(np.all(created[1:] >= created[:-1]))  # ids follow creation order
    agents = set(_strings(cols, "agent_id").tolist())
    assert agents <= {f"A{i:03d}" for i in range(1, CONFIG.agents + 1)}
    assert len(agents) == CONFIG.agents
    customers = set(_strings(cols, "customer_id").tolist())
    assert customers <= {f"C{i:05d}" for i in range(1, CONFIG.customers + 1)}
    assert len(customers) > CONFIG.customers // 2


def test_timestamp_invariants(cols: dict[str, Column]) -> None:
    created, first, resolved, updated = (_arr(cols, name) for name in TIMESTAMPS)
    start = END_S - np.timedelta64(CONFIG.days, "D")
    assert not np.isnat(created).any()
    assert created.min() >= start
    for values in (created, first, resolved, updated):
        set_ = values[~np.isnat(values)]
        assert set_.max() <= END_S
        assert bool(np.all(set_.astype(np.int64) % 1000 == 0))  # whole seconds
    answered, done = ~np.isnat(first), ~np.isnat(resolved)
    assert bool(np.all(first[answered] >= created[answered]))
    assert bool(np.all(resolved[done] >= created[done]))
    both = answered & done
    assert bool(np.all(resolved[both] >= first[both]))
    latest = np.fmax(np.fmax(created, first), resolved)
    assert np.array_equal(updated, latest)


def test_status_consistent_with_timestamps(cols: dict[str, Column]) -> None:
    status = _strings(cols, "status")
    answered = ~np.isnat(_arr(cols, "first_response_at"))
    done = ~np.isnat(_arr(cols, "resolved_at"))
    assert np.array_equal(np.isin(status, ["resolved", "closed"]), done)
    assert np.array_equal(status == "new", ~answered & ~done)
    assert bool(np.all(np.isin(status[answered & ~done], ["open", "pending", "on_hold"])))


def test_satisfaction(cols: dict[str, Column]) -> None:
    score = _arr(cols, "satisfaction_score")
    rated = ~np.isnan(score)
    done = ~np.isnat(_arr(cols, "resolved_at"))
    assert not (rated & ~done).any()  # open tickets are never rated
    assert set(np.unique(score[rated]).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 0.55 <= 1 - rated[done].mean() <= 0.65  # ~60 % of resolved tickets unrated
    hours = _hours(_arr(cols, "resolved_at")[rated] - _arr(cols, "created_at")[rated])
    assert np.corrcoef(score[rated], np.log1p(hours))[0, 1] < -0.2
    fast, slow = hours < np.quantile(hours, 0.25), hours > np.quantile(hours, 0.75)
    assert score[rated][fast].mean() > score[rated][slow].mean() + 0.5


def test_unanswered_share(cols: dict[str, Column]) -> None:
    unanswered = np.isnat(_arr(cols, "first_response_at"))
    assert 0.03 <= unanswered.mean() <= 0.05
    recent = _arr(cols, "created_at") > END_S - np.timedelta64(3, "D")
    assert unanswered[recent].mean() > 2 * unanswered.mean()
    unresolved = np.isnat(_arr(cols, "resolved_at"))
    assert unresolved[recent].mean() > 3 * unresolved[~recent].mean()


def test_arrivals_follow_local_hours_and_weekdays(cols: dict[str, Column]) -> None:
    zone = ZoneInfo(CONFIG.timezone)
    seconds = _arr(cols, "created_at").astype("datetime64[s]").astype(np.int64).tolist()
    local = [datetime.fromtimestamp(s, tz=zone) for s in seconds]
    hours = np.bincount([t.hour for t in local], minlength=24)
    assert hours[9:17].mean() > 5 * hours[0:6].mean()
    assert int(hours.argmax()) in range(9, 17)
    weekdays = np.bincount([t.weekday() for t in local], minlength=7)
    assert weekdays[:5].mean() > 2.5 * weekdays[5:].mean()
    # Slight growth: the last two months are busier than the first two.
    created = _arr(cols, "created_at")
    two_months = np.timedelta64(60, "D")
    first = created < END_S - np.timedelta64(CONFIG.days, "D") + two_months
    assert (created > END_S - two_months).sum() > 1.05 * first.sum()


def test_timezone_moves_the_peak() -> None:
    def peak_utc_hour(timezone: str) -> int:
        created = _arr(generate_columns(DemoConfig(end=END, tickets=5_000, timezone=timezone)), "created_at")
        utc_hours = created.astype("datetime64[h]").astype(np.int64) % 24
        return int(np.bincount(utc_hours, minlength=24).argmax())

    new_york, tokyo = peak_utc_hour("America/New_York"), peak_utc_hour("Asia/Tokyo")
    assert 12 <= new_york <= 21
    assert tokyo <= 8


def test_mixes_and_durations(cols: dict[str, Column]) -> None:
    category, priority = _strings(cols, "category"), _strings(cols, "priority")
    shares = {c: float((category == c).mean()) for c in CATEGORIES}
    assert shares["technical"] > shares["feature_request"] * 2
    assert (priority == "urgent").mean() < 0.1
    assert np.isin(priority, ["medium", "low"]).mean() > 0.6
    assert (priority[category == "bug"] == "urgent").mean() > (
        priority[category == "feature_request"] == "urgent"
    ).mean()

    created, first, resolved = (_arr(cols, name) for name in TIMESTAMPS[:3])
    answered = ~np.isnat(first)
    response = _hours(first - created)
    medians = [float(np.median(response[answered & (priority == p)])) for p in PRIORITIES]
    assert medians == sorted(medians)
    assert medians[0] < 0.5  # urgent: minutes
    assert medians[-1] > 2  # low: hours
    done = answered & ~np.isnat(resolved)
    resolution = _hours(resolved - created)
    assert np.median(resolution[done & (category == "bug")]) > 2 * np.median(
        resolution[done & (category == "billing")]
    )

    agents = _strings(cols, "agent_id")
    per_agent = [np.median(response[answered & (agents == a)]) for a in np.unique(agents)]
    assert max(per_agent) > 2 * min(per_agent)  # some agents are much faster than others


def test_tags_and_subjects(cols: dict[str, Column]) -> None:
    tags = cols["tags"]
    assert isinstance(tags, list)
    sizes = np.array([len(t) for t in tags])
    assert sizes.min() == 0
    assert sizes.max() == 3
    assert all(len(set(t)) == len(t) and all(isinstance(x, str) for x in t) for t in tags)
    category, subjects = _strings(cols, "category"), _strings(cols, "subject")
    billing = {x for t, c in zip(tags, category, strict=True) if c == "billing" for x in t}
    shipping = {x for t, c in zip(tags, category, strict=True) if c == "shipping" for x in t}
    assert billing - shipping  # per-category vocabularies
    assert shipping - billing
    assert all(s and "{" not in s for s in subjects.tolist())
    assert not set(subjects[category == "billing"].tolist()) & set(subjects[category == "bug"].tolist())


def test_generate_events(cols: dict[str, Column]) -> None:
    config = DemoConfig(end=END, tickets=2_500)
    batches = list(generate_events(config, batch_size=1_000))
    assert [len(b) for b in batches] == [1_000, 1_000, 500]
    events = [event for batch in batches for event in batch]
    json.loads(json.dumps(events))
    pattern = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
    columns = generate_columns(config)
    for i, event in enumerate(events):
        assert tuple(event) == COLUMNS
        for name in TIMESTAMPS:
            value, expected = event[name], _arr(columns, name)[i]
            if np.isnat(expected):
                assert value is None
            else:
                assert isinstance(value, str)
                assert pattern.match(value)
                assert value == str(expected.astype("datetime64[s]")).replace("T", " ")
        score, expected_score = event["satisfaction_score"], _arr(columns, "satisfaction_score")[i]
        assert score is None if math.isnan(expected_score) else score == int(expected_score)
        assert event["tags"] == columns["tags"][i]
        for name in (
            "ticket_id",
            "customer_id",
            "agent_id",
            "category",
            "priority",
            "status",
            "channel",
            "subject",
        ):
            assert event[name] == _arr(columns, name)[i]
    first = events[0]["tags"]
    assert isinstance(first, list)
    first.append("mutated")  # event tags are fresh lists
    assert "mutated" not in columns["tags"][0]


def test_edge_cases() -> None:
    empty = generate_columns(DemoConfig(end=END, tickets=0))
    assert all(len(v) == 0 for v in empty.values())
    assert list(generate_events(DemoConfig(end=END, tickets=0))) == []
    small = generate_columns(DemoConfig(end=END, tickets=300, days=1, agents=400, customers=50_000))
    created = _arr(small, "created_at")
    assert created.min() >= END_S - np.timedelta64(1, "D")
    assert len(_strings(small, "agent_id")[0]) == 4  # A001 .. A400
    assert len(_strings(small, "customer_id")[0]) == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"end": datetime(2025, 6, 30)}, "timezone-aware"),
        ({"end": END, "timezone": "Mars/Olympus_Mons"}, "unknown timezone"),
        ({"end": END, "tickets": -1}, "tickets"),
        ({"end": END, "days": 0}, "days"),
        ({"end": END, "agents": 0}, "agents"),
        ({"end": END, "customers": 0}, "customers"),
    ],
)
def test_invalid_config(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DemoConfig(**kwargs)


def test_invalid_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        generate_events(CONFIG, batch_size=0)  # raised at the call, not at the first batch


def test_end_in_another_timezone_is_the_same_instant(cols: dict[str, Column]) -> None:
    eastern = END.astimezone(ZoneInfo("America/New_York"))
    _assert_same(cols, generate_columns(DemoConfig(end=eastern)))


def test_speed() -> None:
    config = DemoConfig(end=END, tickets=200_000)
    began = time.perf_counter()
    columns = generate_columns(config)
    assert time.perf_counter() - began < 3.0
    assert len(columns["ticket_id"]) == 200_000
