"""Load (issue 7, point 6): N concurrent clients for T seconds against a live ``supportlens serve``,
each mixing reads of every pipe (as listed by ``GET /v0/pipes``, default parameters, JSON) with event
ingestion (``POST /v0/events?name=support_tickets&wait=true``); reports throughput, p50 and p99
latency per kind of request, and errors.  It runs once per entry of ``RUNS``, each against a freshly
started server on its own copy of the same data: reads that must be exact or that accept answers up
to a minute old, crossed with posts of a single ticket (as the seed's clients send) or of batches.

    python -m tests.reliability.load                       # 50 clients, 60 s, 1,000,000 tickets
    python -m tests.reliability.load --clients 10 --seconds 5 --tickets 20000 --activity-tickets 2000

Data: up to ``--demo-limit`` tickets through ``supportlens demo`` (snapshots plus Freshdesk activity
exports); more through ``supportlens import`` of an NDJSON file from the benchmarks' vectorized
encoder (bench/encode.py) over the demo generator, plus ``--activity-tickets`` through ``supportlens
demo --tickets 0``.  Figures go to build/reliability/load.json (``--out``)."""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from supportlens.config import Settings
from tests.live import run_cli
from tests.reliability.live_process import (
    ServerProcess,
    create_workspace,
    percentile,
    server_env,
    write_figures,
)
from tests.reliability.workload import base_time, ticket_batch

TARGET_P99_MS = 500.0


@dataclass(frozen=True)
class Profile:
    """What a run's clients send.  ``max_age``: how old the pipe answers they accept may be
    (Cache-Control: max-age; None: exact, every write acknowledged before the request counted).
    ``ingest_rows``: new tickets per post, plus a newer version of every other ticket of the
    client's previous post (1: one new ticket and one update).  ``restarted``: the server measured
    is the second on its data, the first stopped (SIGTERM) once it prepared its SLA pipes, as after
    a deploy; else the first ever to serve the data."""

    max_age: int | None
    ingest_rows: int
    restarted: bool = False


# Dashboards may accept a minute, like an auto-refresh.  Single tickets are what the seed's clients
# post (one ticket per request, a helpdesk webhook); batches of 200 are a bulk loader's stress.
RUNS: dict[str, Profile] = {
    "exact reads, single-ticket posts": Profile(max_age=None, ingest_rows=1),
    "max-age=60 reads, single-ticket posts": Profile(max_age=60, ingest_rows=1),
    "exact reads, 200-ticket posts": Profile(max_age=None, ingest_rows=200),
    "max-age=60 reads, 200-ticket posts": Profile(max_age=60, ingest_rows=200),
    "exact reads, single-ticket posts, restarted server": Profile(
        max_age=None, ingest_rows=1, restarted=True
    ),
}
# Logged by a server once its start-up preparation of a workspace's SLA pipes is over.
_PREPARED = b"SLA pipes of workspace"
# The SLA evaluator runs as by default (server_env turns it off for the tests that count rows): a
# pass every minute, the first a minute after the server starts.
_EVALUATOR_INTERVAL = Settings.model_fields["sla_evaluator_interval_seconds"].default
_DEFAULT_EVALUATOR = {"sla_evaluator_interval_seconds": str(_EVALUATOR_INTERVAL)}
TIMELINE_SECONDS = 10
INGEST_SHARE = 0.2  # of the requests: event ingestion; the rest are pipe reads


@dataclass
class Sample:
    kind: str
    seconds: float
    ok: bool
    sent: float  # time.perf_counter() when it was sent


@dataclass
class LoadResult:
    clients: int
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        by_kind: dict[str, list[Sample]] = defaultdict(list)
        for sample in self.samples:
            by_kind[sample.kind].append(sample)
        kinds = {kind: _summary(samples, self.seconds) for kind, samples in sorted(by_kind.items())}
        reads = [s for s in self.samples if s.kind != "ingest"]
        overall = _summary(self.samples, self.seconds)
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 2),
            "requests": len(self.samples),
            "throughput_rps": overall["throughput_rps"],
            "p50_ms": overall["p50_ms"],
            "p99_ms": overall["p99_ms"],
            "errors": overall["errors"],
            "reads": _summary(reads, self.seconds),
            "kinds": kinds,
            "timeline": self._timeline(),
            "error_examples": self.errors[:10],
            "met": overall["errors"] == 0 and overall["p99_ms"] <= TARGET_P99_MS,
        }

    def _timeline(self) -> list[dict[str, Any]]:
        """Reads and ingestion per ``TIMELINE_SECONDS`` window by the time sent: where the slow
        requests of the run were (the first computations of a fresh server, or all along)."""
        if not self.samples:
            return []
        first = min(s.sent for s in self.samples)
        windows: dict[int, list[Sample]] = defaultdict(list)
        for sample in self.samples:
            windows[int((sample.sent - first) // TIMELINE_SECONDS)].append(sample)
        timeline = []
        for window, samples in sorted(windows.items()):
            row: dict[str, Any] = {"from_s": window * TIMELINE_SECONDS}
            for name, part in (
                ("reads", [s for s in samples if s.kind != "ingest"]),
                ("ingest", [s for s in samples if s.kind == "ingest"]),
            ):
                row[name] = _summary(part, TIMELINE_SECONDS)
            timeline.append(row)
        return timeline


def _summary(samples: list[Sample], seconds: float) -> dict[str, Any]:
    latencies = [s.seconds for s in samples]
    return {
        "requests": len(samples),
        "throughput_rps": round(len(samples) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "errors": sum(1 for s in samples if not s.ok),
    }


async def _client(
    number: int,
    url: str,
    token: str,
    pipes: list[str],
    deadline: float,
    seed: int,
    result: LoadResult,
    profile: Profile,
) -> None:
    rng = random.Random(seed * 1000 + number)
    base = base_time()
    batch_index = 100_000 + number * 10_000  # ids apart from every other client's
    next_pipe = rng.randrange(len(pipes))
    freshness = {} if profile.max_age is None else {"Cache-Control": f"max-age={profile.max_age}"}
    headers = {"Authorization": f"Bearer {token}"}
    ingest_url = f"{url}/v0/events?name=support_tickets&wait=true"
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
        while time.monotonic() < deadline:
            if rng.random() < INGEST_SHARE:
                kind = "ingest"
                body: bytes | None = ticket_batch(batch_index, profile.ingest_rows, base).body
                batch_index += 1
                method, target, extra = "POST", ingest_url, {}
            else:
                kind = pipes[next_pipe % len(pipes)]
                next_pipe += 1
                body = None
                method, target, extra = "GET", f"{url}/v0/pipes/{kind}.json", freshness
            started = time.perf_counter()
            try:
                async with http.request(method, target, data=body, headers=extra) as answer:
                    content = await answer.read()
                ok = answer.status == 200
                problem = "" if ok else f"{kind}: HTTP {answer.status} {content[:200]!r}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                ok, problem = False, f"{kind}: {type(exc).__name__} {exc}"
            result.samples.append(Sample(kind, time.perf_counter() - started, ok, started))
            if not ok:
                result.errors.append(problem)


async def drive(
    url: str, token: str, profile: Profile, *, clients: int, seconds: float, seed: int = 7
) -> LoadResult:
    """``clients`` concurrent clients for ``seconds`` against a running server, sending as
    ``profile`` says."""
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.get(f"{url}/v0/pipes") as listing,
    ):
        pipes = [pipe["name"] for pipe in (await listing.json())["pipes"]]
    result = LoadResult(clients, seconds)
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(_client(n, url, token, pipes, deadline, seed, result, profile) for n in range(clients))
    )
    # Requests started before the deadline are counted: the run lasted until the last one ended.
    result.seconds = time.monotonic() - started
    return result


def prepare(data_dir: Path, *, tickets: int, activity_tickets: int, demo_limit: int, log: Path) -> str:
    """A data directory with workspace ``load`` holding the tickets; its admin token.  The CLI runs
    with the servers' evaluator setting, so that it prepares the workspace as they will use it (its
    first SLA evaluator pass included)."""
    env = server_env(data_dir, **_DEFAULT_EVALUATOR)
    token = create_workspace(env, "load")
    if tickets <= demo_limit:
        run_cli(
            env, "demo", "--tickets", str(tickets), "--activity-tickets", str(activity_tickets), "-w", "load"
        )
        return token
    from bench.encode import NdjsonEncoder

    from supportlens.demo.generator import DemoConfig, generate_columns

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    config = DemoConfig(end=end, tickets=tickets, days=365, seed=20260101)
    with tempfile.TemporaryDirectory(prefix="supportlens-load-") as directory:
        path = Path(directory) / "tickets.ndjson"
        encoder = NdjsonEncoder(generate_columns(config))
        with path.open("wb") as out:
            for batch in encoder.batches(100_000):
                out.write(batch)
        del encoder
        _log(log, f"importing {tickets:,} tickets")
        run_cli_long(env, "import", str(path), "-w", "load")
    if activity_tickets:
        _log(log, f"adding {activity_tickets:,} tickets known by their activity log")
        run_cli_long(env, "demo", "--tickets", "0", "--activity-tickets", str(activity_tickets), "-w", "load")
    return token


def _wait_for_log(log: Path, line: bytes, *, timeout: float) -> None:
    """Until the server's log holds ``line``."""
    deadline = time.monotonic() + timeout
    while line not in log.read_bytes():
        assert time.monotonic() < deadline, f"no {line!r} in {log} within {timeout} s"
        time.sleep(0.2)  # polling the log file


def run_cli_long(env: dict[str, str], *args: str) -> str:
    """``run_cli`` without its two-minute limit (large imports)."""
    import subprocess

    from tests.live import CLI

    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _log(log: Path | None, message: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {message}"
    print(line, file=sys.stderr, flush=True)
    if log is not None:
        with log.open("a") as out:
            out.write(line + "\n")


def run(
    work: Path,
    *,
    clients: int,
    seconds: float,
    tickets: int,
    activity_tickets: int,
    demo_limit: int = 100_000,
    name: str = "load",
) -> dict[str, Any]:
    """Prepare the data, serve it, drive the load; the figures (also written to
    build/reliability/<name>.json)."""
    data_dir = work / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = work / "load.log"
    started = time.perf_counter()
    token = prepare(
        data_dir, tickets=tickets, activity_tickets=activity_tickets, demo_limit=demo_limit, log=log
    )
    prepare_seconds = time.perf_counter() - started
    _log(log, f"data ready in {prepare_seconds:.0f} s; serving")
    runs = {}
    for number, (title, profile) in enumerate(RUNS.items()):
        # A fresh server on a fresh copy of the data for each run: nothing computed or written by
        # the previous run is reused.
        copy = work / f"data-{number}"
        shutil.copytree(data_dir, copy)
        try:
            with ServerProcess(
                server_env(copy, **_DEFAULT_EVALUATOR), work / f"server-{number}.log"
            ) as server:
                if profile.restarted:
                    server.start()
                    _wait_for_log(server.log, _PREPARED, timeout=600)
                    # uvicorn ends a clean stop by raising the signal again.
                    assert server.terminate() in (0, -signal.SIGTERM), server.tail()
                # Driven once ready, as a load balancer would send it traffic: its start-up warm-up
                # of the pipes is over (GET /ready).
                spawned = time.perf_counter()
                url = server.start(timeout=600, probe="/ready")
                ready_seconds = time.perf_counter() - spawned
                if profile.restarted:  # it starts from what the first saved
                    assert b"SLA states saved by the last run taken up" in server.log.read_bytes()
                result = asyncio.run(drive(url, token, profile, clients=clients, seconds=seconds))
        finally:
            shutil.rmtree(copy)
        runs[title] = {
            "max_age": profile.max_age,
            "ingest_rows": profile.ingest_rows,
            "restarted": profile.restarted,
            "ready_seconds": round(ready_seconds, 2),
            **result.figures(),
        }
        _log(log, f"{title}: " + _table(runs[title]))
    figures = {
        # The server runs with default settings (server_env): pipe requests admitted this many at once.
        "query_concurrency": Settings(data_dir=data_dir).query_concurrency,
        "sla_evaluator_interval_seconds": _EVALUATOR_INTERVAL,
        "clients": clients,
        "seconds": seconds,
        "tickets": tickets,
        "activity_tickets": activity_tickets,
        "prepare_seconds": round(prepare_seconds, 1),
        "ingest_share": INGEST_SHARE,
        "target_p99_ms": TARGET_P99_MS,
        "runs": runs,
    }
    write_figures(name, figures)
    return figures


def _table(figures: dict[str, Any]) -> str:
    lines = [
        f"{figures['clients']} clients, {figures['seconds']} s: {figures['requests']} requests, "
        f"{figures['throughput_rps']} req/s, p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
        f"{figures['errors']} errors",
        f"{'kind':<22}{'requests':>9}{'req/s':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'errors':>8}",
    ]
    for kind, row in figures["kinds"].items():
        lines.append(
            f"{kind:<22}{row['requests']:>9}{row['throughput_rps']:>8}{row['p50_ms']!s:>10}"
            f"{row['p99_ms']!s:>10}{row['max_ms']!s:>10}{row['errors']:>8}"
        )
    lines.extend(figures["error_examples"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--activity-tickets", type=int, default=20_000)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="Kept afterwards (default: a temporary one)."
    )
    args = parser.parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        figures = run(
            args.workdir,
            clients=args.clients,
            seconds=args.seconds,
            tickets=args.tickets,
            activity_tickets=args.activity_tickets,
        )
    else:
        with tempfile.TemporaryDirectory(prefix="supportlens-load-") as directory:
            figures = run(
                Path(directory),
                clients=args.clients,
                seconds=args.seconds,
                tickets=args.tickets,
                activity_tickets=args.activity_tickets,
            )
    return 0 if all(run["errors"] == 0 for run in figures["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
