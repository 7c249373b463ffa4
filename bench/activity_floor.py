"""How fast could ``ticket_time_metrics`` over every ticket possibly be here?
``python -m bench.activity_floor DATA_DIR`` (a data directory left by ``python -m bench.activity
--keep``: the ``activity-store`` directory in the kept temporary directory).

Times, with no SupportLens code in the loop, only moving the data the answer is made of: reading
the columns ``answer_from_facts`` reads from DuckDB (ordered as the pipe orders them, and
unordered), and ordering an unordered read in Arrow (sort + take), as the best of several runs.
Whatever the computation, the full answer cannot come faster than its data can be read and ordered;
this is the floor that issue 3's "100x seed 003" target (seed 48.6 s -> 0.49 s) is measured against.
Diagnostic only: not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.history import TICKET_COLUMNS
from supportlens.analytics.time_metrics import _CLOCK_FACTS as CLOCK_FACTS
from supportlens.analytics.time_metrics import _SHARED_FACTS as SHARED_FACTS

ORDER = "created_at DESC, ticket_id ASC"


def best_of(runs: int, call: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.activity_floor", description=__doc__.split("\n")[0]
    )
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    connection = duckdb.connect(str(args.data_dir / "supportlens.duckdb"), read_only=True)
    names = ", ".join((*TICKET_COLUMNS, *SHARED_FACTS, *(f"business_{name}" for name in CLOCK_FACTS)))
    biggest = "SELECT workspace_id FROM tickets GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    (workspace,) = connection.execute(biggest).fetchall()[0]
    rows = f"SELECT {names} FROM tickets WHERE workspace_id = '{workspace}'"
    numeric = ", ".join(f"business_{name}" for name in CLOCK_FACTS if name.endswith("_ms"))

    def read(sql: str) -> pa.Table:
        return connection.sql(sql).to_arrow_table()

    table = read(rows).combine_chunks()

    def sort_and_take() -> pa.Table:
        order = pc.sort_indices(table, [("created_at", "descending"), ("ticket_id", "ascending")])
        return table.take(order)

    figures = [
        (
            "read the columns, ordered as the pipe orders them (DuckDB)",
            best_of(args.runs, lambda: read(f"{rows} ORDER BY {ORDER}")),
        ),
        ("read the columns, unordered (DuckDB)", best_of(args.runs, lambda: read(rows))),
        (
            "  of which the numeric facts alone",
            best_of(
                args.runs, lambda: read(f"SELECT {numeric} FROM tickets WHERE workspace_id = '{workspace}'")
            ),
        ),
        ("order an unordered read (Arrow sort_indices + take)", best_of(args.runs, sort_and_take)),
    ]
    print(f"{table.num_rows:,} tickets, {table.num_columns} columns read; best of {args.runs} runs")
    for label, seconds in figures:
        print(f"  {label:<62} {seconds:6.3f} s")
    floor = min(figures[0][1], figures[1][1] + figures[3][1])
    print(f"  {'floor: min(ordered read, unordered read + Arrow ordering)':<62} {floor:6.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
