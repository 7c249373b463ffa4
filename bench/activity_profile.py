"""Where ``ticket_time_metrics`` spends its time: ``python -m bench.activity_profile DATA_DIR``.

Runs the pipe in-process on a data directory left by ``python -m bench.activity --keep`` (the
``activity-store`` directory in the kept temporary directory) with every stage wrapped in a timer,
then renders the answer as Parquet the way the HTTP API does.  ``--from-log`` times the fallback
instead: the same answer computed from the activity log (as when the stored facts are outdated).
Stages are inclusive (a stage's time contains the stages called inside it).  Diagnostic only:
nothing here is part of ``make bench``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from supportlens.analytics import history, time_metrics
from supportlens.analytics.common import PipeResult, TableRows
from supportlens.api import formats
from supportlens.config import Settings
from supportlens.ingest.timestamps import parse_timestamp
from supportlens.runtime import Runtime

_SPENT: dict[str, float] = defaultdict(float)
_CALLS: dict[str, int] = defaultdict(int)


def _timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _SPENT[label] += time.perf_counter() - started
            _CALLS[label] += 1

    return wrapper


def _wrap(module: Any, name: str, label: str) -> None:
    if hasattr(module, name):
        setattr(module, name, _timed(label, getattr(module, name)))


def _instrument(runtime: Runtime) -> None:
    engine = runtime.engine
    engine.fetch = _timed("SQL: count(*) of matching tickets", engine.fetch)  # type: ignore[method-assign]
    fetch_arrow = engine.fetch_arrow

    def arrow(sql: str, params: dict[str, Any], *, timeout: float) -> Any:
        label = "SQL: events of the chosen tickets" if "ticket_events" in sql else "SQL: the chosen tickets"
        return _timed(label, fetch_arrow)(sql, params, timeout=timeout)

    engine.fetch_arrow = arrow  # type: ignore[method-assign]
    # The facts path.
    _wrap(time_metrics, "answer_from_facts", "answer_from_facts (all of it)")
    _wrap(time_metrics, "_keys_match", "  facts keys checked")
    _wrap(time_metrics, "row_calendars", "  business clocks of the rows")
    _wrap(time_metrics, "_fact_columns", "  facts + current interval -> columns")
    # The log path.
    _wrap(time_metrics, "load_history", "load_history (all of it)")
    _wrap(history, "event_columns", "  event_columns (sort + dictionary codes)")
    _wrap(history, "compute_timelines", "  compute_timelines")
    _wrap(time_metrics, "_table", "_table: output columns (all of it)")
    # Called from both.
    _wrap(time_metrics, "_snapshot_columns", "  snapshot-only columns")
    _wrap(time_metrics, "status_fragments", "  minutes_in_status fragments")
    _wrap(time_metrics, "minutes_array", "(minutes_array, exact rounding, wherever called)")
    _wrap(time_metrics, "format_timestamps", "(format_timestamps, wherever called)")


def _from_log(runtime: Runtime, workspace: Any, query: dict[str, str]) -> Any:
    """The answer computed from the activity log, as the pipe does when facts are outdated."""
    context = runtime.pipe_context(workspace)
    table = time_metrics.answer_from_log(
        context,
        time_metrics.conditions(context),
        "ORDER BY created_at DESC, ticket_id ASC LIMIT 1000000",
        as_of=parse_timestamp(query["as_of"]),
        business_hours=query["business_hours"] == "true",
    )
    return PipeResult(time_metrics.COLUMNS, TableRows(table), table.num_rows, 0.0, table=table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.activity_profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--workspace", default="activities")
    parser.add_argument("--business-hours", choices=("true", "false"), default="true")
    parser.add_argument("--as-of", default="2025-01-01 00:00:00")
    parser.add_argument(
        "--runs", type=int, default=2, help="the first run is a warm-up, the last is reported"
    )
    parser.add_argument("--from-log", action="store_true", help="time the computation from the log")
    args = parser.parse_args(argv)
    runtime = Runtime.open(Settings(data_dir=args.data_dir, store=""))
    try:
        _instrument(runtime)
        workspace = runtime.metadata.workspace_by_name(args.workspace)
        query = {"business_hours": args.business_hours, "as_of": args.as_of, "limit": "1000000"}
        for _ in range(args.runs):
            _SPENT.clear()
            _CALLS.clear()
            started = time.perf_counter()
            if args.from_log:
                result = _from_log(runtime, workspace, query)
            else:
                result = runtime.run_pipe("ticket_time_metrics", workspace, query)
            total = time.perf_counter() - started
            started = time.perf_counter()
            body = formats.render(result, "parquet").body
            parquet = time.perf_counter() - started
            started = time.perf_counter()
            rows = len(list(result.rows))
            dicts = time.perf_counter() - started
            del result
    finally:
        runtime.close()
    print(f"ticket_time_metrics business_hours={args.business_hours}: {rows:,} rows, run_pipe {total:.2f} s")
    for label, seconds in _SPENT.items():
        print(f"  {label:<48} {seconds:7.2f} s  ({_CALLS[label]} calls)")
    print(f"  {'Parquet rendering (formats.render)':<48} {parquet:7.2f} s  ({len(body) / 1e6:,.0f} MB)")
    print(f"  {'reading the rows as Python dicts':<48} {dicts:7.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
