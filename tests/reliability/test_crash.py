"""Crash safety (issue 7, point 2).

* A live server is killed with SIGKILL at random moments (seeded) while two clients stream NDJSON
  batches with ``wait=true``; it is restarted on the same data directory and the clients resume,
  sending again every batch that was not acknowledged.  At the end every acknowledged row is
  stored exactly once, updates are not lost, and the store opens cleanly after a last SIGKILL.
* ``supportlens import`` of a large NDJSON file, and of Freshdesk activity exports, is killed
  midway and run again: the final state equals a clean import into another data directory.

Short form in ``make test``; ``SUPPORTLENS_RELIABILITY=long`` (``make reliability``) runs at least 20
kills over larger batches and larger files, and writes build/reliability/crash*.json."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from bench.encode import NdjsonEncoder

from supportlens.demo.activities import generate_activity_columns, write_export_files
from supportlens.demo.generator import DemoConfig, generate_columns
from supportlens.store.duckdb.engine import DuckDBEngine
from tests.live import CLI
from tests.reliability.live_process import (
    ServerProcess,
    copy_store,
    counts,
    create_workspace,
    long_form,
    opened_store,
    percentile,
    server_env,
    workspace_id,
    write_figures,
)
from tests.reliability.workload import Batch, base_time, event_batch, ticket_batch

pytestmark = pytest.mark.e2e

SEED = 20260707


@dataclass(frozen=True, slots=True)
class CrashPlan:
    kills: int
    ticket_rows: int  # snapshots per support_tickets batch (plus the updates of the batch before)
    event_tickets: int  # tickets per ticket_events batch (three events each)
    delay: tuple[float, float]  # seconds between the server answering and the SIGKILL
    startup_kill_share: float  # share of restarts killed again before they answer


SHORT = CrashPlan(kills=5, ticket_rows=1_000, event_tickets=200, delay=(0.2, 1.5), startup_kill_share=0.2)
LONG = CrashPlan(kills=24, ticket_rows=5_000, event_tickets=1_000, delay=(0.3, 4.0), startup_kill_share=0.2)


@dataclass
class Stream:
    """One client: sends its batches in order with wait=true, each until it is acknowledged."""

    make: Callable[[int], Batch]
    token: str
    acknowledged: list[Batch] = field(default_factory=list)
    attempts: int = 0
    retries: int = 0
    duplicates: int = 0  # acknowledged batches sent again on purpose
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Cluster:
    """The server under test and what the clients need to follow it across restarts."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.up = threading.Event()  # set while the current process answers
        self.finish = threading.Event()  # clients stop after their current batch
        self.lock = threading.Lock()
        self.url = ""
        self.generation = 0

    def current(self) -> tuple[str, int]:
        with self.lock:
            return self.url, self.generation

    def started(self, url: str) -> None:
        with self.lock:
            self.url = url
            self.generation += 1
        self.up.set()


def _stream(cluster: Cluster, stream: Stream) -> None:
    index = 0
    resent_in = cluster.current()[1]
    with httpx.Client(headers={"Authorization": f"Bearer {stream.token}"}, timeout=300) as http:
        while not cluster.finish.is_set():
            batch = stream.make(index)
            if cluster.current()[1] != resent_in and stream.acknowledged:
                # Once after each restart, send the last acknowledged batch again, as a client does
                # whose acknowledgement was lost with the connection: it must change nothing.
                resent_in = cluster.current()[1]
                batch = stream.acknowledged[-1]
                stream.duplicates += 1
                index -= 1
            while True:
                if not cluster.up.wait(timeout=600):
                    stream.errors.append("the server did not come back within 600 s")
                    return
                url, generation = cluster.current()
                stream.attempts += 1
                sent = time.perf_counter()
                try:
                    answer = http.post(
                        f"{url}/v0/events",
                        params={"name": batch.datasource, "wait": "true"},
                        content=batch.body,
                    )
                except httpx.TransportError:
                    answer = None
                if answer is not None and answer.status_code == 200:
                    stream.latencies.append(time.perf_counter() - sent)
                    stream.acknowledged.append(batch)
                    break
                if answer is not None and answer.status_code not in (429, 503):
                    stream.errors.append(f"HTTP {answer.status_code}: {answer.text[:300]}")
                    return
                stream.retries += 1
                # Not acknowledged: send it again once the server answers (again).
                _wait_for_other_generation(cluster, generation)
            index += 1


def _wait_for_other_generation(cluster: Cluster, generation: int) -> None:
    """After a failed attempt: wait until a new process answers, or a short while if the current
    one is still up (a 429 or 503 from a live server)."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if cluster.current()[1] != generation and cluster.up.is_set():
            return
        if cluster.up.is_set() and cluster.server.running:
            time.sleep(0.05)  # a live server refused: retry shortly
            continue
        cluster.up.wait(timeout=1.0)


def test_sigkill_during_wait_true_ingest(tmp_path: Path) -> None:
    plan = LONG if long_form() else SHORT
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = server_env(data_dir)
    token = create_workspace(env, "crash")
    workspace = workspace_id(data_dir, "crash")
    base = base_time()
    streams = [
        Stream(lambda i: ticket_batch(i, plan.ticket_rows, base), token),
        Stream(lambda i: event_batch(i, plan.event_tickets, base), token),
    ]
    kills: list[dict[str, float | int | str]] = []
    started = time.perf_counter()
    with ServerProcess(env, tmp_path / "server.log") as server:
        cluster = Cluster(server)
        cluster.started(server.start())
        threads = [threading.Thread(target=_stream, args=(cluster, s), daemon=True) for s in streams]
        for thread in threads:
            thread.start()
        while len(kills) < plan.kills:
            assert all(thread.is_alive() for thread in threads), [s.errors for s in streams]
            acknowledged = sum(len(s.acknowledged) for s in streams)
            # Kill at a random moment after the server answers (clients streaming meanwhile) ...
            time.sleep(rng.uniform(*plan.delay))
            cluster.up.clear()
            server.kill()
            kills.append(
                {"moment": "serving", "acknowledged_batches_since_last": _since(streams, acknowledged)}
            )
            # ... or, now and then, while it starts again (replaying its write-ahead log).
            if len(kills) < plan.kills and rng.random() < plan.startup_kill_share:
                server.spawn()
                time.sleep(rng.uniform(0.0, 2.0))
                moment = "starting" if _answers(server) is False else "serving (just started)"
                server.kill()
                kills.append({"moment": moment, "acknowledged_batches_since_last": 0})
            cluster.started(server.start())
        # A last stretch without kills, so that every client gets its current batch acknowledged.
        cluster.finish.set()
        for thread in threads:
            thread.join(timeout=600)
            assert not thread.is_alive(), "a client did not finish"
        assert not [e for s in streams for e in s.errors], [s.errors for s in streams]
        expected = _expected(streams)
        # Through the API of the restarted server: each ticket counted once.
        with httpx.Client(base_url=cluster.url, headers={"Authorization": f"Bearer {token}"}) as http:
            metrics = http.get("/v0/pipes/ticket_metrics.json", timeout=120).json()["data"][0]
        assert metrics["total_tickets"] == len(expected.tickets)
        assert metrics["resolved_tickets"] == len(expected.resolved)
        # And a last SIGKILL: the store must open cleanly from whatever the kill left.
        cluster.up.clear()
        server.kill()
        kills.append({"moment": "final", "acknowledged_batches_since_last": 0})
    with opened_store(data_dir) as engine:
        stored = counts(engine, workspace)
        tickets = _column_set(engine, "SELECT ticket_id FROM tickets WHERE workspace_id = $ws", workspace)
        resolved = _column_set(
            engine, "SELECT ticket_id FROM tickets WHERE workspace_id = $ws AND is_resolved", workspace
        )
        events = _column_set(engine, "SELECT event_id FROM ticket_events WHERE workspace_id = $ws", workspace)
    seconds = time.perf_counter() - started
    assert stored.tickets == stored.distinct_tickets, "a ticket is stored more than once"
    assert stored.events == stored.distinct_events, "an event is stored more than once"
    assert tickets == expected.tickets, (len(expected.tickets - tickets), len(tickets - expected.tickets))
    assert resolved == expected.resolved, "an acknowledged update is lost (or a phantom one applied)"
    assert events == expected.events, (len(expected.events - events), len(events - expected.events))
    serving_kills = sum(1 for kill in kills if kill["moment"] != "final")
    assert serving_kills >= plan.kills
    latencies = [x for s in streams for x in s.latencies]
    write_figures(
        "crash",
        {
            "seed": SEED,
            "kills": len(kills),
            "kills_while_starting": sum(1 for kill in kills if kill["moment"] == "starting"),
            "kill_log": kills,
            "acknowledged_batches": sum(len(s.acknowledged) - s.duplicates for s in streams),
            "attempts": sum(s.attempts for s in streams),
            "resent_batches": sum(s.retries for s in streams),
            "acknowledged_batches_sent_again": sum(s.duplicates for s in streams),
            "acknowledged_tickets": len(expected.tickets),
            "acknowledged_events": len(expected.events),
            "stored_tickets": stored.tickets,
            "stored_events": stored.events,
            "ack_latency_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "ack_latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "seconds": round(seconds, 1),
        },
    )


def _since(streams: list[Stream], before: int) -> int:
    return sum(len(s.acknowledged) for s in streams) - before


def _answers(server: ServerProcess) -> bool:
    try:
        return httpx.get(f"{server.base}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Expected:
    tickets: set[str] = field(default_factory=set)
    resolved: set[str] = field(default_factory=set)
    events: set[str] = field(default_factory=set)


def _expected(streams: list[Stream]) -> Expected:
    expected = Expected()
    for stream in streams:
        for batch in stream.acknowledged:
            expected.tickets |= batch.tickets | batch.resolves
            expected.resolved |= batch.resolves
            expected.events |= batch.events
    return expected


def _column_set(engine: DuckDBEngine, sql: str, workspace: str) -> set[str]:
    return set(engine.fetch_arrow(sql, {"ws": workspace}, timeout=600).column(0).to_pylist())


# ---------------------------------------------------------------------------------------------
# File imports killed midway


def _state(engine: DuckDBEngine, workspace: str) -> dict[str, pa.Table]:
    """The stored state of a workspace, without what depends on when rows arrived (arrival
    numbers and times): the current tickets and the activity log, sorted."""
    arrival = {"workspace_id", "seq", "received_at", "version_at"}
    tables: dict[str, pa.Table] = {}
    for name, key in (("tickets", "ticket_id"), ("ticket_events", "event_id")):
        columns = [
            row[0]
            for row in engine.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $t ORDER BY ordinal_position",
                {"t": name},
                timeout=60,
            ).rows
            if row[0] not in arrival
        ]
        sql = f"SELECT {', '.join(columns)} FROM {name} WHERE workspace_id = $ws ORDER BY {key}"
        tables[name] = engine.fetch_arrow(sql, {"ws": workspace}, timeout=600)
    return tables


def _logged_bytes(process: subprocess.Popen[bytes], wal: Path, stop_at: int | None = None) -> int:
    """Watch the store's write-ahead log while ``process`` runs: bytes logged so far (growth of
    the log, counted across checkpoints, which empty it).  Returns when the process ends, or once
    ``stop_at`` bytes were logged (the process still running)."""
    logged = last = 0
    while process.poll() is None:
        size = wal.stat().st_size if wal.exists() else 0
        logged += size - last if size >= last else size
        last = size
        if stop_at is not None and logged >= stop_at:
            break
        time.sleep(0.005)  # sampling the log's size
    return logged


def _import(data_dir: Path, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [*CLI, "import", *args, "-w", "imported"],
            env=server_env(data_dir),
            cwd=data_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _fresh(tmp_path: Path, name: str) -> Path:
    data_dir = tmp_path / name
    data_dir.mkdir()
    create_workspace(server_env(data_dir), "imported")
    return data_dir


def _clean_then_killed(
    tmp_path: Path, name: str, args: list[str], rng: random.Random
) -> tuple[dict[str, pa.Table], dict[str, pa.Table], dict[str, float | int]]:
    """``supportlens import ARGS`` into a fresh data directory (the reference, watching how much
    its write-ahead log takes in); then into another one, SIGKILLed once a random share (15 to
    85 %) of that is logged, and run again to the end.  Both final states, and figures."""
    clean_dir = _fresh(tmp_path, f"{name}-clean")
    started = time.perf_counter()
    process = _import(clean_dir, args, tmp_path / f"{name}-clean.log")
    total = _logged_bytes(process, clean_dir / "supportlens.duckdb.wal")
    assert process.wait() == 0, (tmp_path / f"{name}-clean.log").read_text()[-2000:]
    clean_seconds = time.perf_counter() - started
    with opened_store(clean_dir) as engine:
        clean = _state(engine, workspace_id(clean_dir, "imported"))

    data_dir = _fresh(tmp_path, f"{name}-killed")
    threshold = int(total * rng.uniform(0.15, 0.85))
    started = time.perf_counter()
    process = _import(data_dir, args, tmp_path / f"{name}-killed.log")
    try:
        _logged_bytes(process, data_dir / "supportlens.duckdb.wal", stop_at=threshold)
        assert process.poll() is None, f"the import finished before the kill ({threshold} of {total} bytes)"
        process.kill()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
    killed_at = time.perf_counter() - started
    workspace = workspace_id(data_dir, "imported")
    # What the kill left, looked at in a copy (the rerun must replay the log itself).
    with opened_store(copy_store(data_dir, tmp_path / f"{name}-after-kill")) as engine:
        left = counts(engine, workspace)
    started = time.perf_counter()
    rerun = _import(data_dir, args, tmp_path / f"{name}-rerun.log")
    assert rerun.wait() == 0, (tmp_path / f"{name}-rerun.log").read_text()[-2000:]
    rerun_seconds = time.perf_counter() - started
    with opened_store(data_dir) as engine:
        killed = _state(engine, workspace)
        final = counts(engine, workspace)
    assert final.tickets == final.distinct_tickets
    assert final.events == final.distinct_events
    figures: dict[str, float | int] = {
        "clean_import_seconds": round(clean_seconds, 2),
        "killed_after_seconds": round(killed_at, 2),
        "rerun_seconds": round(rerun_seconds, 2),
        "logged_bytes_at_kill": threshold,
        "logged_bytes_clean_import": total,
        "tickets_after_kill": left.tickets,
        "events_after_kill": left.events,
        "tickets_final": final.tickets,
        "events_final": final.events,
    }
    return killed, clean, figures


def _assert_same(killed: dict[str, pa.Table], clean: dict[str, pa.Table]) -> None:
    for name, table in clean.items():
        assert killed[name].num_rows == table.num_rows, name
        differing = [
            column
            for column in table.column_names
            if not killed[name].column(column).equals(table.column(column))
        ]
        if differing:
            first = next(
                i
                for i in range(table.num_rows)
                if any(killed[name].column(c)[i] != table.column(c)[i] for c in differing)
            )
            rows = {
                c: (killed[name].column(c)[first].as_py(), table.column(c)[first].as_py()) for c in differing
            }
            key = table.column(0)[first].as_py(), table.column(1)[first].as_py()
            raise AssertionError(f"{name} differs from a clean import in {differing}; first at {key}: {rows}")


def _ndjson_file(path: Path, tickets: int) -> Path:
    config = DemoConfig(end=datetime(2026, 1, 1, tzinfo=UTC), tickets=tickets, days=365, seed=SEED)
    encoder = NdjsonEncoder(generate_columns(config))
    with path.open("wb") as out:
        for batch in encoder.batches(50_000):
            out.write(batch)
    return path


def _export_files(directory: Path, tickets: int) -> list[Path]:
    end = datetime(2026, 1, 1, tzinfo=UTC)
    days = 14
    directory.mkdir()
    return write_export_files(
        directory, generate_activity_columns(tickets, SEED, end, days), end=end, days=days
    )


def test_killed_ndjson_import_run_again_is_exact(tmp_path: Path) -> None:
    tickets = 1_000_000 if long_form() else 150_000
    path = _ndjson_file(tmp_path / "tickets.ndjson", tickets)
    rng = random.Random(SEED + 1)
    killed, clean, figures = _clean_then_killed(tmp_path, "ndjson", [str(path)], rng)
    assert 0 < figures["tickets_after_kill"] < tickets, "the kill did not come midway"
    assert killed["tickets"].num_rows == tickets
    _assert_same(killed, clean)
    write_figures("crash_import_ndjson", {"tickets": tickets, **figures})


def test_killed_freshdesk_import_run_again_is_exact(tmp_path: Path) -> None:
    tickets = 40_000 if long_form() else 4_000
    paths = [str(p) for p in _export_files(tmp_path / "exports", tickets)]
    rng = random.Random(SEED + 2)
    args = ["freshdesk-activities", *paths]
    killed, clean, figures = _clean_then_killed(tmp_path, "freshdesk", args, rng)
    assert 0 < figures["events_after_kill"] < figures["events_final"], "the kill did not come midway"
    _assert_same(killed, clean)
    write_figures("crash_import_freshdesk", {"tickets": tickets, "files": len(paths), **figures})
