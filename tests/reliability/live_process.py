"""Shared helpers of the reliability tests: a ``supportlens serve`` subprocess that can be killed
(SIGKILL) or stopped (SIGTERM) and started again on the same data directory, reading the store
directly once no process holds it, and the figures files ``make reliability`` turns into
docs/reliability.md."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from supportlens.auth.repository import MetadataRepository
from supportlens.store.duckdb.engine import DuckDBEngine
from tests.live import CLI, cli_env, free_port, run_cli

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "build" / "reliability"


def long_form() -> bool:
    """``SUPPORTLENS_RELIABILITY=long`` (``make reliability``) selects the long form of each test."""
    return os.environ.get("SUPPORTLENS_RELIABILITY", "").strip().lower() == "long"


def write_figures(name: str, figures: dict[str, Any]) -> Path:
    """build/reliability/<name>.json in the long form, read by tests/reliability/report.py;
    <name>-short.json in the short form (``make test`` never overwrites the long form's figures)."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"{name}.json" if long_form() else FIGURES / f"{name}-short.json"
    figures = {"form": "long" if long_form() else "short", "written_at": time.time(), **figures}
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return path


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a SupportLens process with its own data directory; ``settings`` are
    SUPPORTLENS_* values by lower-case name (``query_timeout_seconds="0.5"``).  Other SUPPORTLENS_*
    variables of the caller are left out (except SUPPORTLENS_RELIABILITY, which the product ignores)."""
    env = {k: v for k, v in cli_env(data_dir).items() if not k.startswith("SUPPORTLENS_")}
    env["SUPPORTLENS_DATA_DIR"] = str(data_dir)
    # No background SLA passes: they would add their own (bookkeeping) writes to what we count.
    env["SUPPORTLENS_SLA_EVALUATOR_INTERVAL_SECONDS"] = "0"
    for name, value in settings.items():
        env[f"SUPPORTLENS_{name.upper()}"] = value
    return env


def create_workspace(env: dict[str, str], name: str) -> str:
    """``supportlens workspace create NAME``; its admin token."""
    return run_cli(env, "workspace", "create", name).strip().splitlines()[-1].strip()


class ServerProcess:
    """``supportlens serve`` on a fresh port, its output appended to ``log``.  ``start`` waits for
    /health; ``kill`` is SIGKILL, ``terminate`` SIGTERM; both wait for the process to end."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.base = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def spawn(self) -> None:
        """Start the process without waiting for it to answer."""
        assert self.process is None or self.process.poll() is not None, "already running"
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self._out = self.log.open("ab")
        self.process = subprocess.Popen(
            [*CLI, "serve", "--port", str(port)],
            env=self.env,
            cwd=self.env["SUPPORTLENS_DATA_DIR"],
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 120, *, probe: str = "/health") -> str:
        """Poll ``probe`` (/health: alive; /ready: its start-up warm-up over) until it answers 200;
        the base URL."""
        process = self.process
        assert process is not None
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.base}{probe}", timeout=2).status_code == 200:
                    return self.base
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not answer {probe} within {timeout} s:\n{self.tail()}")
            time.sleep(0.05)  # polling for the port to open

    def start(self, timeout: float = 120, *, probe: str = "/health") -> str:
        self.spawn()
        return self.wait_ready(timeout, probe=probe)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        self._signal(signal.SIGKILL, timeout=60)

    def terminate(self, timeout: float = 120) -> int:
        """SIGTERM and wait; the exit status."""
        return self._signal(signal.SIGTERM, timeout=timeout)

    def _signal(self, sig: int, *, timeout: float) -> int:
        process = self.process
        assert process is not None
        if process.poll() is None:
            process.send_signal(sig)
        try:
            code = process.wait(timeout=timeout)
        finally:
            if self._out is not None:
                self._out.close()
                self._out = None
        return code

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=60)
        if self._out is not None:
            self._out.close()
            self._out = None


def workspace_id(data_dir: Path, name: str) -> str:
    metadata = MetadataRepository(data_dir / "metadata.sqlite")
    try:
        return metadata.workspace_by_name(name).id
    finally:
        metadata.close()


@contextmanager
def opened_store(data_dir: Path) -> Iterator[DuckDBEngine]:
    """The data directory's DuckDB store, opened (and closed) the way the server opens it: a store
    that does not open cleanly fails here."""
    engine = DuckDBEngine(data_dir / "supportlens.duckdb")
    engine.open()
    try:
        yield engine
    finally:
        engine.close()


def copy_store(data_dir: Path, target: Path) -> Path:
    """The store files (database and write-ahead log) copied as they are, to look at a state
    without replaying its log in place."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("supportlens.duckdb", "supportlens.duckdb.wal", "metadata.sqlite"):
        if (data_dir / name).exists():
            shutil.copy2(data_dir / name, target / name)
    return target


@dataclass(frozen=True, slots=True)
class Counts:
    tickets: int
    distinct_tickets: int
    events: int
    distinct_events: int
    quarantined: int


def counts(engine: DuckDBEngine, workspace: str) -> Counts:
    def one(sql: str) -> int:
        return int(engine.fetch(sql, {"ws": workspace}, timeout=600).rows[0][0])

    return Counts(
        tickets=one("SELECT count(*) FROM tickets WHERE workspace_id = $ws"),
        distinct_tickets=one("SELECT count(DISTINCT ticket_id) FROM tickets WHERE workspace_id = $ws"),
        events=one("SELECT count(*) FROM ticket_events WHERE workspace_id = $ws"),
        distinct_events=one("SELECT count(DISTINCT event_id) FROM ticket_events WHERE workspace_id = $ws"),
        quarantined=one("SELECT count(*) FROM quarantine WHERE workspace_id = $ws"),
    )


def percentile(values: list[float], share: float) -> float:
    """Linearly interpolated percentile (0 <= share <= 1) of a non-empty list."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
