"""After a burst of writes the writer lets DuckDB checkpoint, so queries read compacted storage and
the write-ahead log does not wait for the next burst or for shutdown."""

from __future__ import annotations

import time
from pathlib import Path

from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from tests.conftest import make_settings
from tests.randomized import postings


def test_idle_writer_checkpoints_the_log(tmp_path: Path) -> None:
    runtime = Runtime.open(make_settings("duckdb", tmp_path))
    try:
        workspace = runtime.metadata.create_workspace("w")
        rows = [RawRow(row, "") for row in postings(5, 2_000)]
        runtime.ingest.ingest(workspace.id, "support_tickets", rows).committed.result()
        wal = tmp_path / "store.duckdb.wal"
        assert wal.exists()  # committed: in the log
        assert wal.stat().st_size > 0
        deadline = time.monotonic() + 10  # the writer settles after 1 s without writes
        while wal.exists() and wal.stat().st_size > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not wal.exists() or wal.stat().st_size == 0
    finally:
        runtime.close()
