"""Writes docs/reliability.md from the figures the reliability tests leave in build/reliability/*.json
(``make reliability`` runs the long forms, then ``python -m tests.reliability.report``)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from tests.reliability.live_process import FIGURES, ROOT

OUT = ROOT / "docs" / "reliability.md"


def _load(name: str) -> dict[str, Any] | None:
    path = FIGURES / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _when(figures: dict[str, Any]) -> str:
    stamp = figures.get("written_at")
    form = figures.get("form", "?")
    if not isinstance(stamp, int | float):
        return f"{form} form"
    return f"{form} form, {datetime.fromtimestamp(stamp, UTC):%Y-%m-%d %H:%M} UTC"


def _missing(title: str, name: str) -> list[str]:
    return [
        f"## {title}",
        "",
        f"No figures (build/reliability/{name}.json is missing: the test did not run).",
        "",
    ]


def _crash() -> list[str]:
    lines = ["## Crash safety (SIGKILL)", ""]
    crash = _load("crash")
    if crash is None:
        lines += _missing("", "crash")[2:]
    else:
        moments: dict[str, int] = {}
        for kill in crash.get("kill_log", []):
            moments[kill["moment"]] = moments.get(kill["moment"], 0) + 1
        lines += [
            f"*Events API with `wait=true`* ({_when(crash)}; seed {crash['seed']}): two clients (ticket "
            "snapshots with updates of earlier tickets; activity-log events) stream batches while the "
            "server is killed with SIGKILL at random moments and restarted on the same data directory; "
            "each client sends again every batch not acknowledged, and after each restart also sends "
            "its last acknowledged batch again (a lost acknowledgement). A last SIGKILL ends the run and "
            "the store is opened directly.",
            "",
            "| | |",
            "|---|---:|",
            f"| SIGKILLs | {crash['kills']} ({', '.join(f'{v} {k}' for k, v in sorted(moments.items()))}) |",
            f"| Batches acknowledged | {crash['acknowledged_batches']:,} |",
            f"| Attempts (sent again after a kill or refusal) | {crash['attempts']:,} ({crash['resent_batches']:,}) |",
            f"| Acknowledged batches sent again on purpose | {crash['acknowledged_batches_sent_again']:,} |",
            f"| Tickets acknowledged / stored (each once) | {crash['acknowledged_tickets']:,} / {crash['stored_tickets']:,} |",
            f"| Events acknowledged / stored (each once) | {crash['acknowledged_events']:,} / {crash['stored_events']:,} |",
            f"| Acknowledgement latency p50 / p99 | {crash['ack_latency_p50_ms']} / {crash['ack_latency_p99_ms']} ms |",
            f"| Run time | {crash['seconds']} s |",
            "",
            "Checked: every acknowledged ticket and event is stored exactly once, nothing else is stored, "
            "every acknowledged update (resolved) is the current state, `ticket_metrics` counts each "
            "ticket once, and the store opens cleanly after the last kill.",
            "",
        ]
    for name, title in (
        ("crash_import_ndjson", "`supportlens import` of an NDJSON file"),
        ("crash_import_freshdesk", "`supportlens import freshdesk-activities` of daily exports"),
    ):
        figures = _load(name)
        if figures is None:
            lines += [f"*{title}*: no figures.", ""]
            continue
        files = f" in {figures['files']} files" if "files" in figures else ""
        lines += [
            f"*{title}* ({_when(figures)}): {figures['tickets']:,} tickets{files}. The import was killed "
            f"with SIGKILL after {figures['killed_after_seconds']} s, once its write-ahead log had taken in "
            f"{figures['logged_bytes_at_kill'] / 1e6:,.1f} of the {figures['logged_bytes_clean_import'] / 1e6:,.1f} MB "
            f"a clean import logs; it had committed {figures['tickets_after_kill']:,} tickets and "
            f"{figures['events_after_kill']:,} events. Run again ({figures['rerun_seconds']} s; a clean import "
            f"takes {figures['clean_import_seconds']} s), the final state ({figures['tickets_final']:,} tickets, "
            f"{figures['events_final']:,} events) equals a clean import into another data directory, column by "
            "column (arrival numbers and times aside).",
            "",
        ]
    return lines


def _limits() -> list[str]:
    figures = _load("limits")
    if figures is None:
        return _missing("Time limits", "limits")
    return [
        "## Time limits",
        "",
        f"{_when(figures)}: {figures['tickets']:,} demo tickets. The slowest pipe with its defaults, "
        f"`{figures['slow_pipe']}`, takes {figures['slow_pipe_unlimited_seconds']} s without a tight limit "
        "(the fastest of three requests, every cache warm). "
        f"With `SUPPORTLENS_QUERY_TIMEOUT_SECONDS={figures['limit_seconds']:g}`, {figures['concurrent_slow_clients']} "
        f"client(s) asked for it again and again for {figures['window_seconds']:g} s while two others asked "
        "cheap questions (`/health`, `ticket_details?limit=5`).",
        "",
        "| | |",
        "|---|---:|",
        f"| Long requests stopped (408, `query stopped after the {figures['limit_seconds']:g} s time limit`) | "
        f"{figures['stopped_requests']} |",
        f"| Stopped after, p50 / max | {figures['stopped_after_p50_seconds']} / {figures['stopped_after_max_seconds']} s |",
        f"| Cheap requests meanwhile | {figures['cheap_requests']} ({figures['cheap_failures']} failed) |",
        f"| Cheap requests p50 / p99 / max | {figures['cheap_p50_ms']} / {figures['cheap_p99_ms']} / "
        f"{figures['cheap_max_ms']} ms |",
        "",
        "The limit bounds a whole pipe run (every query, each interrupted by the engine at what remains, "
        "and the Python work between them) and the writing of its answer, not each query alone.",
        "",
    ]


def _load_section() -> list[str]:
    figures = _load("load")
    if figures is None:
        return _missing("Load", "load")
    lines = [
        "## Load",
        "",
        f"{_when(figures)}: {figures['clients']} concurrent clients for {figures['seconds']:g} s (requests started "
        f"before the end are waited for and counted) against a live server holding {figures['tickets']:,} tickets "
        f"(+{figures['activity_tickets']:,} known by their activity log). Each client picks at random: "
        f"{figures['ingest_share']:.0%} event ingestion (`support_tickets`, `wait=true`: answered once "
        "committed), otherwise the next pipe of `GET /v0/pipes` in turn (defaults, JSON), and sends its next "
        "request as soon as the last is answered (no pause: the server is always saturated, and by Little's "
        "law the mean latency is clients / throughput). The server runs with default settings: pipe "
        f"requests are computed {figures.get('query_concurrency', '?')} at a time (the CPU count), the "
        'others wait their turn (docs/decisions.md, "Admission of pipe requests"); the SLA evaluator '
        f"records breaches and escalations every {_seconds(figures.get('sla_evaluator_interval_seconds'))}, "
        "its first pass starting that long after the server, at about the end of a run (the import made "
        "the first pass over the 90-day lookback, so the server's passes look only at the tickets whose "
        "next breach or escalation level has come and those received since). The load generator "
        "(aiohttp) runs on the same 2 cores.",
        "",
        "Five runs, each against a freshly started server on its own copy of the same data. In the first "
        "four it is the first server ever to serve the data: it takes up the SLA states the import saved "
        '(docs/pipes.md, "SLA pipes"). Each run starts once the server is ready (`GET /ready`, as a load '
        "balancer would send it traffic: its start-up run of every pipe is over); the seconds from its "
        "start to ready are given with each run:",
        "",
        "* reads that must be **exact** (no `Cache-Control`: every write acknowledged before the request "
        "is counted), or that accept answers up to a minute old, as a dashboard could "
        '(`Cache-Control: max-age=60`; docs/pipes.md, "Freshness");',
        "* posts of a **single ticket** (one new ticket plus an update of the client's previous one, as the "
        "seed's clients and helpdesk webhooks send), or of **200 tickets** (plus 100 updates: a bulk "
        "loader's stress, ~60 times the rows).",
        "",
        "The fifth (**restarted server**: exact reads, single-ticket posts) measures a restart, as after a "
        "deploy: a first server is started on the data, stopped with SIGTERM once it has prepared its SLA "
        "pipes, and the server measured is started after it (it takes up the SLA states the first saved; "
        'docs/pipes.md, "SLA pipes").',
        "",
    ]
    # Stored with sorted keys: back in the order of load.RUNS (single-ticket posts first, restarts last).
    runs = sorted(
        figures["runs"].items(),
        key=lambda item: (
            item[1].get("restarted", False),
            item[1]["ingest_rows"],
            item[1]["max_age"] is not None,
        ),
    )
    lines += [
        f"Target: no errors and p99 ≤ {figures['target_p99_ms']:g} ms.",
        "",
        "| Run | Requests/s | p50 ms | p99 ms | Errors | Target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, run in runs:
        lines.append(
            f"| {name} | {run['throughput_rps']} | {run['p50_ms']} | {run['p99_ms']} | {run['errors']} | "
            f"{'met' if run['met'] else '**not met**'} |"
        )
    lines.append("")
    for name, run in runs:
        met = "met" if run["met"] else "**not met**"
        lines += [
            f"### {name}",
            "",
            f"**{run['requests']:,} requests in {run['seconds']} s, {run['throughput_rps']} requests/s, "
            f"p50 {run['p50_ms']} ms, "
            f"p99 {run['p99_ms']} ms, {run['errors']} errors.** Target (no errors, p99 ≤ "
            f"{figures['target_p99_ms']:g} ms): {met}."
            + (f" Ready {run['ready_seconds']:g} s after its start." if "ready_seconds" in run else "")
            + _growth(run, figures),
            "",
            "| Request | Count | Per s | p50 ms | p99 ms | Max ms | Errors |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for kind, row in run["kinds"].items():
            lines.append(
                f"| {kind} | {row['requests']:,} | {row['throughput_rps']} | {row['p50_ms']} | {row['p99_ms']} | "
                f"{row['max_ms']} | {row['errors']} |"
            )
        lines += ["", "By the time requests were sent (p50 / p99 ms):", ""]
        lines += [
            "| From s | Reads | Reads p50 / p99 | Ingest | Ingest p50 / p99 |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in run["timeline"]:
            reads, ingest = row["reads"], row["ingest"]
            lines.append(
                f"| {row['from_s']} | {reads['requests']:,} | {reads['p50_ms']} / {reads['p99_ms']} | "
                f"{ingest['requests']:,} | {ingest['p50_ms']} / {ingest['p99_ms']} |"
            )
        if run["error_examples"]:
            lines += ["", "First errors:", ""] + [f"* `{e}`" for e in run["error_examples"]]
        lines.append("")
    return lines


def _shutdown() -> list[str]:
    figures = _load("shutdown")
    if figures is None:
        return _missing("Graceful shutdown (SIGTERM)", "shutdown")
    rounds = figures["rounds"]
    return [
        "## Graceful shutdown (SIGTERM)",
        "",
        f"{_when(figures)}: {len(rounds)} round(s) of three clients posting without `wait` (answered 202, "
        "queued) until SIGTERM, sent while they were still posting; the server restarted on the same data "
        "between rounds.",
        "",
        f"Rows answered 202: {sum(r['accepted_rows'] for r in rounds):,} ({figures['accepted_tickets']:,} tickets, "
        f"{figures['accepted_events']:,} events); missing after the stop: **{figures['missing']}**. "
        f"Stops took {', '.join(str(r['stop_seconds']) for r in rounds)} s.",
        "",
    ]


def _fuzz() -> list[str]:
    figures = _load("fuzz")
    if figures is None:
        return []
    lines = ["## API fuzzing", "", f"{_when(figures)}: {figures.get('requests', 0):,} requests."]
    operations = figures.get("operations") or []
    if operations:
        lines += [
            "",
            "Operations: "
            + ", ".join(f"`{o}`" if isinstance(o, str) else f"`{json.dumps(o)}`" for o in operations)
            + ".",
        ]
    failures = figures.get("failures") or []
    lines += ["", f"Failures: {len(failures)}."]
    lines += [f"* `{json.dumps(f) if not isinstance(f, str) else f}`" for f in failures[:20]]
    extra = {
        k: v
        for k, v in figures.items()
        if k not in {"requests", "operations", "failures", "form", "written_at"}
    }
    if extra:
        lines += ["", "| | |", "|---|---|"] + [f"| {k} | {json.dumps(v)} |" for k, v in sorted(extra.items())]
    return [*lines, ""]


def _others() -> list[str]:
    known = {"crash", "crash_import_ndjson", "crash_import_freshdesk", "limits", "load", "shutdown", "fuzz"}
    lines: list[str] = []
    for path in sorted(FIGURES.glob("*.json")):
        if path.stem in known or path.stem.endswith("-short"):
            continue
        lines += [f"## {path.stem}", "", "```json", path.read_text().strip(), "```", ""]
    return lines


def _growth(run: dict[str, Any], figures: dict[str, Any]) -> str:
    """How much the run's posts added to the store (new tickets; their updates aside): the
    200-ticket runs grow it by a third or more, so their reads cover ever more tickets as they go."""
    ingest = run["kinds"].get("ingest")
    if not ingest or "ingest_rows" not in run or not figures.get("tickets"):
        return ""
    added = ingest["requests"] * run["ingest_rows"]
    return f" Its posts added {added:,} tickets ({added / figures['tickets']:.1%} of the {figures['tickets']:,} it began with)."


def _commit() -> str:
    """The commit the figures were measured on (``make reliability`` notes it before the tests run:
    a page rendered again later still names it), else the current one; ``-dirty`` with uncommitted
    changes."""
    noted = FIGURES / "source.txt"
    if noted.is_file():
        return noted.read_text().strip() or "unknown"
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def render() -> str:
    lines = [
        "# Reliability",
        "",
        f"Generated by `tests/reliability/report.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from "
        "build/reliability/*.json; do not edit by hand: `make reliability` runs the long form of every "
        "test under tests/reliability (`SUPPORTLENS_RELIABILITY=long`) and writes this page. `make test` "
        "runs the short forms.",
        "",
        f"Source: commit {_commit()} (a `-dirty` suffix would mean uncommitted changes). Machine: "
        f"{platform.machine()}, "
        f"Python {platform.python_version()}, {_cores()} cores.",
        "",
    ]
    for section in (_crash(), _shutdown(), _limits(), _load_section(), _fuzz(), _others()):
        lines += section
    return "\n".join(lines).rstrip() + "\n"


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:g} s"


def main() -> int:
    if not FIGURES.exists():
        print(f"no figures under {FIGURES}; run the reliability tests first", file=sys.stderr)
        return 1
    OUT.write_text(render())
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
