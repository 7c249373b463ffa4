"""The bulk (DuckDB) validator is a fast path only: every row it accepts must come out exactly as
the per-row validator makes it, on fuzzed rows full of odd types, spellings and edge values."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.domain.models import TicketSnapshot
from supportlens.ingest.service import CANONICAL_SCHEMA
from supportlens.ingest.tickets import validate_ticket
from supportlens.ingest.vectorized import FastValidator

VALIDATOR = FastValidator()

TEXTS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "A1",
            " a1 ",
            "T-1",
            "billing",
            "Billing ",
            "HIGH",
            "Critical",
            " critical",
            "normal",
            "İstanbul",
            "straße",
            "a\tb",
            "tab\t",
            "x" * 256,
            "x" * 257,
            "ünïcode",
            "😀",
            "-0",
            "0",
            "007",
        ]
    ),
    st.text(max_size=12),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from(
        [0, 1, 5, 6, -1, 4.0, 4.5, 1e11, 99_999_999_999, 100_000_000_000, 1686821400, 1686821400123]
    ),
    st.floats(allow_nan=False, allow_infinity=False),
)
STAMPS = st.one_of(
    st.sampled_from(
        [
            "2023-06-15 09:30:00",
            "2023-06-15T09:30:00Z",
            "2023-06-15T09:30:00+05:30",
            "2023-06-15 09:30:00-08:00",
            "2023-06-15 09:30:00.5",
            "2023-06-15 09:30:00.123456",
            "2023-06-15 09:30:00.1234567",
            "2023-02-30 10:00:00",
            "2023-06-15 24:00:00",
            "2023-06-15 23:59:60",
            "2023-06-15T09:30:00+24:00",
            "2023-06-15",
            "20230615",
            "1686821400",
            "1686821400123",
            " 2023-06-15 09:30:00",
            "2023-06-15 09:30:00z",
            "1969-12-31 23:59:59",
            "2199-12-31 23:59:59",
            "2200-01-01 00:00:00",
            "0000-01-01 00:00:00",
            "2023-06-15T09:30",
            "yesterday",
        ]
    ),
    st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2250, 1, 1)).map(
        lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
    ),
    st.integers(min_value=-(10**13), max_value=10**13),
)
ANY = st.one_of(
    st.none(),
    st.booleans(),
    TEXTS,
    NUMBERS,
    st.lists(TEXTS, max_size=2),
    st.dictionaries(TEXTS, TEXTS, max_size=1),
)
TAGS = st.one_of(
    st.none(),
    st.lists(TEXTS, max_size=4),
    st.lists(st.one_of(TEXTS, st.none(), NUMBERS), max_size=3),
    st.just(["t"] * 101),
    st.just(["x" * 300]),
    TEXTS,
)

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "ticket_id": st.one_of(TEXTS, NUMBERS, ANY),
    "customer_id": st.one_of(TEXTS, NUMBERS, ANY),
    "agent_id": st.one_of(TEXTS, ANY),
    "group_id": st.one_of(TEXTS, NUMBERS, ANY),
    "category": st.one_of(TEXTS, ANY),
    "priority": st.one_of(TEXTS, ANY),
    "status": TEXTS,
    "channel": TEXTS,
    "subject": st.one_of(TEXTS, st.just("s" * 10_001), ANY),
    "created_at": STAMPS,
    "first_response_at": st.one_of(STAMPS, ANY),
    "resolved_at": STAMPS,
    "updated_at": STAMPS,
    "satisfaction_score": st.one_of(NUMBERS, ANY),
    "tags": TAGS,
}


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, strategy in FIELDS.items():
        if draw(st.integers(0, 4)):  # most fields present, some missing
            row[name] = draw(strategy)
    return row


def _as_snapshot(record: dict[str, Any]) -> TicketSnapshot:
    fields = {k: v for k, v in record.items() if k != "position"}
    for name in ("created_at", "first_response_at", "resolved_at", "updated_at"):
        if fields[name] is not None:
            fields[name] = fields[name].replace(tzinfo=UTC)
    fields["tags"] = tuple(fields["tags"])
    return TicketSnapshot(**fields)


def _check(lines: list[bytes]) -> int:
    """Run both validators; return how many rows the bulk path accepted.  Like the service, only
    lines orjson reads as JSON objects reach the bulk path."""
    lines = [line for line in lines if _is_object(line)]
    key_counts = [len(orjson.loads(line)) for line in lines]
    accepted, _ = VALIDATOR.validate(lines, list(range(len(lines))), key_counts)
    for record in accepted.cast(CANONICAL_SCHEMA).to_pylist():
        line = lines[record["position"]]
        expected = validate_ticket(orjson.loads(line))
        assert expected == _as_snapshot(record), line
    return int(accepted.num_rows)


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(st.lists(rows(), min_size=1, max_size=40), st.booleans())
def test_bulk_accepts_only_what_per_row_gives_identically(batch: list[dict[str, Any]], escaped: bool) -> None:
    _check([json.dumps(row, ensure_ascii=escaped).encode() for row in batch])


def test_hand_written_json_edge_cases() -> None:
    lines = [
        b'{"ticket_id": "a", "created_at": "2023-06-15 09:30:00", "ticket_id": "b"}',  # repeated key: last wins
        b'{"ticket_id": -0, "created_at": "2023-06-15 09:30:00"}',
        b'{"ticket_id": 12, "created_at": 1686821400, "satisfaction_score": 5}',
        b'{"ticket_id": "\\u0041\\u00e9", "created_at": "2023-06-15 09:30:00", "subject": "caf\\u00e9 \\ud83d\\ude00"}',
        b'{"ticket_id": "x", "created_at": "2023-06-15 09:30:00", "tags": ["\\u00e9", "a\\"b"], "category": " Bil\\tling "}',
        b'{"ticket_id": "y", "created_at": "2023-06-15 09:30:00.9999999"}',
        b'{"ticket_id": "z", "created_at": 1.686821400123e12}',
        b'  {"ticket_id": "w", "created_at": "2023-06-15 09:30:00", "priority": "NORMAL"}  ',
    ]
    accepted = _check(lines)
    assert accepted >= 3


def test_typical_rows_take_the_fast_path() -> None:
    lines = [
        orjson.dumps(
            {
                "ticket_id": f"T{i}",
                "customer_id": "C1",
                "agent_id": "A1",
                "category": "Billing",
                "priority": "critical",
                "status": "resolved",
                "created_at": "2023-06-15 09:30:00",
                "first_response_at": "2023-06-15T09:45:00Z",
                "resolved_at": 1686828600000,
                "satisfaction_score": 4,
                "tags": ["invoice"],
                "subject": "Refund",
                "channel": "email",
            }
        )
        for i in range(500)
    ]
    assert _check(lines) == 500


ASCII = st.characters(min_codepoint=32, max_codepoint=126)
PLAUSIBLE_STAMPS = st.tuples(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2150, 1, 1)),
    st.sampled_from(
        [
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%SZ",
            "%Y-%m-%dT%H:%M:%S.%f",
            "%Y-%m-%d %H:%M:%S+05:30",
            "%Y-%m-%dT%H:%M:%S-09:45",
            "epoch",
            "epoch_ms",
        ]
    ),
).map(
    lambda pair: (
        int(pair[0].replace(tzinfo=UTC).timestamp())
        if pair[1] == "epoch"
        else int(pair[0].replace(tzinfo=UTC).timestamp()) * 1000 + pair[0].microsecond // 1000
        if pair[1] == "epoch_ms"
        else pair[0].strftime(pair[1])
    )
)


@st.composite
def plausible_rows(draw: st.DrawFn) -> dict[str, Any]:
    """Rows that are mostly valid, so that the bulk path accepts many and its values are compared."""
    row: dict[str, Any] = {
        "ticket_id": draw(st.one_of(st.text(ASCII, min_size=1, max_size=8), st.integers(0, 10**12))),
        "created_at": draw(PLAUSIBLE_STAMPS),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "customer_id": st.one_of(st.none(), st.text(ASCII, max_size=6)),
        "agent_id": st.one_of(st.none(), st.text(ASCII, max_size=6)),
        "group_id": st.one_of(st.none(), st.text(ASCII, max_size=6), st.integers(0, 99)),
        "category": st.one_of(st.none(), st.text(ASCII, max_size=8), st.sampled_from(["Billing", " tech "])),
        "priority": st.sampled_from([None, "low", "HIGH", " critical ", "Normal", "p1", ""]),
        "status": st.sampled_from([None, "open", "Resolved", "CLOSED ", "pending"]),
        "channel": st.sampled_from([None, "email", "Chat"]),
        "subject": st.one_of(st.none(), st.text(max_size=30)),
        "first_response_at": st.one_of(st.none(), PLAUSIBLE_STAMPS),
        "resolved_at": st.one_of(st.none(), PLAUSIBLE_STAMPS),
        "updated_at": st.one_of(st.none(), PLAUSIBLE_STAMPS),
        "satisfaction_score": st.one_of(st.none(), st.integers(0, 6)),
        "tags": st.one_of(st.none(), st.lists(st.text(max_size=5), max_size=3)),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            row[name] = draw(strategy)
    return row


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(st.lists(plausible_rows(), min_size=5, max_size=40), st.booleans())
def test_bulk_values_equal_per_row_values_on_plausible_rows(
    batch: list[dict[str, Any]], escaped: bool
) -> None:
    _check([json.dumps(row, ensure_ascii=escaped).encode() for row in batch])


def test_concurrent_calls_each_see_only_their_own_lines() -> None:
    """Calls share prepared statements on pooled cursors: concurrent batches of different sizes
    must never read each other's staged lines."""

    def batch(tag: str, size: int) -> list[bytes]:
        return [
            orjson.dumps({"ticket_id": f"{tag}{i}", "created_at": "2023-06-15 09:30:00"}) for i in range(size)
        ]

    batches = {
        tag: batch(tag, size)
        for tag, size in zip("abcdefgh", (5, 700, 1, 3000, 40, 1200, 9, 2500), strict=True)
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(
            zip(
                batches,
                pool.map(
                    lambda lines: VALIDATOR.validate(lines, list(range(len(lines))), [2] * len(lines)),
                    batches.values(),
                ),
                strict=True,
            )
        )
    for tag, (accepted, left) in results.items():
        assert left == []
        assert sorted(accepted.column("ticket_id").to_pylist()) == sorted(
            f"{tag}{i}" for i in range(len(batches[tag]))
        )
