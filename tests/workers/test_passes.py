"""What the SLA evaluator's passes leave for the next, kept across restarts (workers/passes.py)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from supportlens.workers.passes import Pass, PassStore

BEGAN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_pass_is_kept_with_the_instant_its_writes_were_settled(tmp_path: Path) -> None:
    store = PassStore(tmp_path / "metadata.sqlite")
    try:
        kept = Pass("digest", BEGAN, {"T2": 1_772_366_400_000_000, "T1": 5}, BEGAN - timedelta(seconds=3))
        store.save("w1", kept)
        assert store.load("w1") == kept
        assert store.load("w2") is None
        later = Pass("digest", BEGAN + timedelta(minutes=1), {}, BEGAN + timedelta(minutes=1))
        store.save("w1", later)
        assert store.load("w1") == later
    finally:
        store.close()


def test_a_pass_saved_by_an_earlier_release_has_no_settled_instant(tmp_path: Path) -> None:
    """Files made before the column existed get it; their passes load with ``settled`` None, so the
    evaluator falls back on its margin for the next pass, and their pending tickets (ids only) with
    the earliest instant, so the next pass looks at each."""
    path = tmp_path / "metadata.sqlite"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE sla_evaluator_passes (workspace_id TEXT PRIMARY KEY, setup TEXT NOT NULL,"
            " began TEXT NOT NULL, pending TEXT NOT NULL)"
        )
        old.execute(
            "INSERT INTO sla_evaluator_passes VALUES ('w1', 'digest', ?, '[\"T1\"]')", (BEGAN.isoformat(),)
        )
    old.close()
    store = PassStore(path)
    try:
        assert store.load("w1") == Pass("digest", BEGAN, {"T1": 0}, None)
    finally:
        store.close()
