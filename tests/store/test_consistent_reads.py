"""``Engine.fetch_arrows``: its queries read one state of the store, on both engines, while the
writer commits one new ticket after another; the same queries read one by one do see writes land
between them (so the check is not vacuous)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import orjson

from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from supportlens.store.base import ParamType


def _while_writing(
    runtime: Runtime, read: Callable[[str], tuple[int, int]], *, rounds: int, until_differing: bool = False
) -> list[tuple[int, int]]:
    """``read(workspace_id)`` ``rounds`` times (or until its two counts differ) while another
    thread writes new tickets."""
    workspace = runtime.metadata.create_workspace("acme")
    stop = threading.Event()

    def write() -> None:
        number = 0
        while not stop.is_set():
            row = {"ticket_id": f"T{number}", "created_at": "2026-01-01T00:00:00Z", "status": "open"}
            raw = [RawRow(row, orjson.dumps(row).decode())]
            runtime.ingest.ingest(workspace.id, "support_tickets", raw).committed.result()
            number += 1

    writer = threading.Thread(target=write)
    writer.start()
    counts: list[tuple[int, int]] = []
    try:
        while len(counts) < rounds and not (until_differing and counts and counts[-1][0] != counts[-1][1]):
            counts.append(read(workspace.id))
        return counts
    finally:
        stop.set()
        writer.join()


def _count_twice(runtime: Runtime, *, together: bool) -> Callable[[str], tuple[int, int]]:
    engine = runtime.engine
    sql = f"SELECT count(*) AS n FROM tickets WHERE workspace_id = {engine.dialect.param('ws', ParamType.STRING)}"

    def read(workspace_id: str) -> tuple[int, int]:
        params = {"ws": workspace_id}
        if together:
            first, second = engine.fetch_arrows([(sql, params), (sql, params)], timeout=30)
        else:
            first, second = (engine.fetch_arrow(sql, params, timeout=30) for _ in range(2))
        return int(first.column("n")[0].as_py()), int(second.column("n")[0].as_py())

    return read


def test_reads_together_see_one_state_while_the_writer_commits(runtime: Runtime) -> None:
    counts = _while_writing(runtime, _count_twice(runtime, together=True), rounds=200)
    assert counts[-1][0] > counts[0][0]  # the writer committed meanwhile
    assert all(first == second for first, second in counts)


def test_reads_one_by_one_see_writes_between_them(runtime: Runtime) -> None:
    counts = _while_writing(runtime, _count_twice(runtime, together=False), rounds=5000, until_differing=True)
    assert counts[-1][0] != counts[-1][1]
