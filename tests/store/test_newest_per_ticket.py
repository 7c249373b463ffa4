"""The vectorized choice of each ticket's newest snapshot in a batch (both engines' writes use it)
against a brute-force oracle, on random batches with repeated tickets, workspaces and ties."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from supportlens.store.base import first_per_key, newest_per_ticket


def _batch(rng: random.Random, rows: int) -> pa.Table:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return pa.table(
        {
            "workspace_id": [rng.choice(["w1", "w2"]) for _ in range(rows)],
            "ticket_id": [rng.choice(["T1", "T2", "T3", "T10"]) for _ in range(rows)],
            # Few distinct times, so that equal versions are decided by arrival (seq).
            "version_at": [start + timedelta(minutes=rng.randrange(3)) for _ in range(rows)],
            "seq": rng.sample(range(1000), rows),
        }
    )


@pytest.mark.parametrize("seed", range(30))
def test_the_newest_version_then_the_latest_arrival_wins_per_ticket(seed: int) -> None:
    rng = random.Random(seed)
    batch = _batch(rng, rng.randrange(0, 40))
    expected: dict[tuple[str, str], tuple[datetime, int]] = {}
    for row in batch.to_pylist():
        key = (row["workspace_id"], row["ticket_id"])
        expected[key] = max(
            expected.get(key, (row["version_at"], row["seq"])), (row["version_at"], row["seq"])
        )
    newest = newest_per_ticket(batch).to_pylist()
    assert {(r["workspace_id"], r["ticket_id"]): (r["version_at"], r["seq"]) for r in newest} == expected
    assert len(newest) == len(expected)


def test_first_per_key_keeps_the_first_by_order_and_sorts_by_key() -> None:
    table = pa.table({"event_id": ["b", "a", "b", "a"], "seq": [4, 3, 1, 7]})
    assert first_per_key(table, ["event_id"], [("seq", "ascending")]).to_pylist() == [
        {"event_id": "a", "seq": 3},
        {"event_id": "b", "seq": 1},
    ]
