"""``make bench`` / ``python -m bench.run``: SupportLens against a chDB baseline, in one run.

1. Generate BENCH_TICKETS tickets with the demo generator and write them as NDJSON (batches of
   10,000 lines, and one file).
2. Start ``supportlens serve`` (own data directory, free port on 127.0.0.1), create a workspace with
   the CLI, POST every batch with ``wait=true`` over 2 keep-alive connections: tickets/s.
3. Time the six endpoints over HTTP, without and with a filter (BENCH_REPEATS calls each).
4. Stop the server; ``supportlens import`` the file into a second, empty data directory: tickets/s.
5. Load the same file into embedded chDB and time the same six queries in ClickHouse SQL.
6. ``ticket_time_metrics`` over BENCH_ACTIVITY_TICKETS tickets' Freshdesk activity exports against
   seed 003's SQL on SQLite (``bench/activity.py``; BENCH_ACTIVITY_TICKETS=0 skips it).
7. Ticket search of the ticket management API over BENCH_SEARCH_TICKETS ticket records
   (``bench/ticket_search.py``; BENCH_SEARCH_TICKETS=0 skips it).
8. Write docs/benchmarks.md (the activity and search sections after the ticket benchmark).

Everything lives in a fresh temporary directory, removed at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import orjson

from bench import activity, ticket_search
from bench.baseline import ChdbBaseline
from bench.cases import CASES, DAYS, END, SEED, WINDOW, Case, Timing, measure
from bench.encode import NdjsonEncoder, self_check
from bench.report import CaseResult, Report, compare, machine, render, source_revision
from bench.server import (
    HttpCaseResult,
    PipeClient,
    Server,
    cli,
    create_workspace,
    peak_rss_mb,
    post_batches,
    scratch_directory,
)
from supportlens.demo.generator import DemoConfig, generate_columns, generate_events

BATCH_ROWS = 10_000
ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = {
    "BENCH_TICKETS": 1_000_000,
    "BENCH_REPEATS": 20,
    "BENCH_CONNECTIONS": 2,
    "BENCH_SEARCH_TICKETS": 1_000_000,
}

_T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", flush=True)


def _env_int(name: str) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else DEFAULTS[name]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=_env_int("BENCH_TICKETS"), help="env BENCH_TICKETS")
    parser.add_argument(
        "--repeats",
        type=int,
        default=_env_int("BENCH_REPEATS"),
        help="timed calls per case; env BENCH_REPEATS",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=_env_int("BENCH_CONNECTIONS"),
        help="concurrent HTTP connections for ingest; env BENCH_CONNECTIONS",
    )
    parser.add_argument(
        "--activity-tickets",
        type=int,
        default=activity.env_int("BENCH_ACTIVITY_TICKETS"),
        help="tickets of the activity-log benchmark (0 skips it); env BENCH_ACTIVITY_TICKETS",
    )
    parser.add_argument(
        "--activity-repeats",
        type=int,
        default=activity.env_int("BENCH_ACTIVITY_REPEATS"),
        help="runs per activity-log case; env BENCH_ACTIVITY_REPEATS",
    )
    parser.add_argument(
        "--search-tickets",
        type=int,
        default=_env_int("BENCH_SEARCH_TICKETS"),
        help="ticket records of the ticket-search benchmark (0 skips it); env BENCH_SEARCH_TICKETS",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="default: docs/benchmarks.md for 1M tickets, docs/benchmarks-<N>m.md for other sizes",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.output is None:
        default = args.tickets == DEFAULTS["BENCH_TICKETS"]
        name = "benchmarks.md" if default else f"benchmarks-{args.tickets / 1e6:g}m.md"
        args.output = ROOT / "docs" / name
    if args.tickets < BATCH_ROWS or args.repeats < 1 or args.connections < 1:
        parser.error(f"need --tickets >= {BATCH_ROWS}, --repeats >= 1, --connections >= 1")
    if args.activity_tickets and (args.activity_tickets < 1000 or args.activity_repeats < 1):
        parser.error("need --activity-tickets 0 or >= 1000, and --activity-repeats >= 1")
    return args


def _command(args: argparse.Namespace) -> str:
    env = [
        f"{name}={value}"
        for name, value in (
            ("BENCH_TICKETS", args.tickets),
            ("BENCH_REPEATS", args.repeats),
            ("BENCH_CONNECTIONS", args.connections),
        )
        if value != DEFAULTS[name]
    ]
    env += [
        f"{name}={value}"
        for name, value in (
            ("BENCH_ACTIVITY_TICKETS", args.activity_tickets),
            ("BENCH_ACTIVITY_REPEATS", args.activity_repeats),
        )
        if value != activity.DEFAULTS[name]
    ]
    return " ".join([*env, "make bench"])


def generate(config: DemoConfig, workdir: Path, report: Report) -> tuple[list[bytes], Path]:
    """The tickets as NDJSON batches (in memory and as files) and one NDJSON file."""
    started = time.perf_counter()
    if self_check(config):
        report.encoder = "vectorized numpy encoder, checked byte-identical to orjson on a sample"
        encoder = NdjsonEncoder(generate_columns(config))
        batches = list(encoder.batches(BATCH_ROWS))
        del encoder
    else:
        log("WARNING: the vectorized encoder differs from the generator's events; using orjson per row")
        report.encoder = "orjson per generated event (the vectorized encoder failed its check)"
        batches = [
            b"".join(orjson.dumps(event) + b"\n" for event in batch)
            for batch in generate_events(config, batch_size=BATCH_ROWS)
        ]
    gc.collect()
    report.generate_seconds = time.perf_counter() - started
    report.ndjson_bytes = sum(len(b) for b in batches)
    log(
        f"generated {config.tickets:,} tickets, {report.ndjson_bytes / 1e6:,.0f} MB NDJSON "
        f"in {report.generate_seconds:.1f} s; writing files"
    )
    batch_dir = workdir / "batches"
    batch_dir.mkdir()
    whole = workdir / "tickets.ndjson"
    with whole.open("wb") as out:
        for index, batch in enumerate(batches):
            (batch_dir / f"batch_{index:05d}.ndjson").write_bytes(batch)
            out.write(batch)
    log(f"wrote {len(batches)} batch files and {whole.name}")
    return batches, whole


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_server(
    batches: list[bytes], workdir: Path, args: argparse.Namespace, report: Report
) -> dict[Case, HttpCaseResult]:
    data_dir = workdir / "server"
    server_log = workdir / "server.log"
    token = create_workspace("bench", data_dir, log=server_log)
    results: dict[Case, HttpCaseResult] = {}
    with Server(data_dir, server_log) as server:
        log(f"server up on {server.base_url} (pid {server.pid}); posting {len(batches)} batches")
        step = max(1, len(batches) // 10)

        def progress(done: int, total: int, rows: int) -> None:
            if done % step == 0 or done == total:
                elapsed = time.perf_counter() - posted
                log(f"  ingest {done}/{total} requests, {rows:,} tickets, {rows / elapsed:,.0f} tickets/s")

        posted = time.perf_counter()
        ingest = post_batches(
            server.base_url, token, batches, connections=args.connections, progress=progress
        )
        report.ingest = ingest
        report.connections = args.connections
        log(f"HTTP ingest: {ingest.rows:,} tickets in {ingest.seconds:.1f} s = {ingest.rate:,.0f} tickets/s")
        if ingest.rows != args.tickets or ingest.quarantined:
            raise RuntimeError(
                f"expected {args.tickets} accepted rows, got {ingest.rows} ({ingest.quarantined} quarantined)"
            )

        client = PipeClient(server.base_url, token)
        try:
            stored = client.get("ticket_metrics", Case("ticket_metrics", None).http_params(WINDOW))
            total = int(stored["data"][0]["total_tickets"])
            if total != args.tickets:
                raise RuntimeError(f"ticket_metrics counts {total} tickets, expected {args.tickets}")
            report.health = client.health(args.repeats)
            for case in CASES:
                result = client.run(case, WINDOW, args.repeats)
                results[case] = result
                log(
                    f"  ours {case.endpoint:<18} {case.label:<16} median {result.timing.median_ms:8.1f} ms"
                    f"  p95 {result.timing.p95_ms:8.1f} ms"
                )
        finally:
            client.close()
        report.server_rss_mb = peak_rss_mb(server.pid)
        report.stop_seconds = server.stop()
    report.store_bytes = _size(data_dir)
    log(f"server stopped in {report.stop_seconds:.1f} s; store {report.store_bytes / 1e6:,.0f} MB")
    return results


def run_import(ndjson: Path, workdir: Path, report: Report) -> None:
    data_dir = workdir / "import"
    import_log = workdir / "import.log"
    create_workspace("imported", data_dir, log=import_log)
    log(f"importing {ndjson.name} with 'supportlens import' into an empty data directory")
    started = time.perf_counter()
    said = cli(["import", str(ndjson), "--workspace", "imported"], data_dir, log=import_log)
    report.import_seconds = time.perf_counter() - started
    # The command ends by preparing the SLA pipes (README, "Command line"): timed apart, so that the
    # rate is the import's.
    prepared = re.search(r"SLA pipes of '[^']*' prepared in ([0-9.]+) s", said)
    report.import_sla_seconds = float(prepared.group(1)) if prepared else 0.0
    answer = cli(
        [
            "query",
            "ticket_metrics",
            "--workspace",
            "imported",
            "--format",
            "json",
            "-p",
            f"start_date={WINDOW.start_text}",
            "-p",
            f"end_date={WINDOW.end_text}",
        ],
        data_dir,
        log=import_log,
    )
    report.import_rows = int(orjson.loads(answer)[0]["total_tickets"])
    log(
        f"import: {report.import_rows:,} tickets in {report.import_seconds:.1f} s = "
        f"{report.import_rows / report.imported_seconds:,.0f} tickets/s, then the SLA pipes prepared "
        f"in {report.import_sla_seconds:.1f} s"
    )


def run_baseline(
    ndjson: Path, workdir: Path, args: argparse.Namespace, ours: dict[Case, HttpCaseResult], report: Report
) -> None:
    baseline = ChdbBaseline(workdir / "chdb")
    try:
        report.clickhouse_version = baseline.version()
        log(f"chDB (ClickHouse {report.clickhouse_version}): loading {ndjson.name}")
        report.chdb_insert_seconds, report.chdb_optimize_seconds = baseline.load(ndjson)
        count = baseline.count()
        if count != args.tickets:
            raise RuntimeError(f"chDB holds {count} rows, expected {args.tickets}")
        log(
            f"chDB load: {count:,} rows in {report.chdb_insert_seconds:.1f} s "
            f"(+ OPTIMIZE FINAL {report.chdb_optimize_seconds:.1f} s)"
        )
        for case in CASES:
            timing = measure(partial(baseline.call, case, WINDOW), repeats=args.repeats)
            mismatch = compare(ours[case].rows, baseline.run(case, WINDOW))
            mine = ours[case]
            report.cases.append(CaseResult(case, mine.timing, Timing(mine.sql_seconds), timing, mismatch))
            log(
                f"  chDB {case.endpoint:<18} {case.label:<16} median {timing.median_ms:8.1f} ms"
                f"  p95 {timing.p95_ms:8.1f} ms  ratio {mine.timing.median_ms / timing.median_ms:5.2f}"
                + ("" if mismatch is None else f"  ANSWERS DIFFER: {mismatch}")
            )
    finally:
        baseline.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    report = Report(
        tickets=args.tickets,
        repeats=args.repeats,
        command=_command(args),
        started=started,
        machine=machine(),
        revision=source_revision(ROOT),
    )
    config = DemoConfig(end=END, tickets=args.tickets, days=DAYS, seed=SEED)
    activity_report: activity.ActivityReport | None = None
    search_section: str | None = None
    with scratch_directory("supportlens-bench-", args.workdir, keep=args.keep, log=log) as workdir:
        log(f"benchmark of {args.tickets:,} tickets, {args.repeats} timed calls per case, in {workdir}")
        batches, ndjson = generate(config, workdir, report)
        ours = run_server(batches, workdir, args, report)
        del batches
        gc.collect()
        run_import(ndjson, workdir, report)
        run_baseline(ndjson, workdir, args, ours, report)
        ndjson.unlink()
        if args.activity_tickets:
            log(f"activity-log benchmark of {args.activity_tickets:,} tickets (bench/activity.py)")
            (workdir / "activity").mkdir()
            activity_report = activity.run(
                args.activity_tickets, args.activity_repeats, workdir / "activity", command=report.command
            )
        if args.search_tickets:
            log(f"ticket-search benchmark of {args.search_tickets:,} tickets (bench/ticket_search.py)")
            (workdir / "search").mkdir()
            search_section = ticket_search.run(args.search_tickets, args.repeats, workdir / "search")
    report.revision_after = source_revision(ROOT)
    report.total_seconds = time.perf_counter() - _T0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = render(report)
    if activity_report is not None:
        document += "\n" + activity.render(activity_report)
    if search_section is not None:
        document += "\n" + search_section
    args.output.write_text(document)
    log(f"wrote {args.output} (whole run {report.total_seconds / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
