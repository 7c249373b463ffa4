"""Driving the real product: ``supportlens`` CLI subprocesses and the HTTP API of ``supportlens serve``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import orjson

from bench.cases import Case, Timing, Window, measure


def cli_env(data_dir: Path) -> dict[str, str]:
    """The environment of a SupportLens process with its own data directory and the default store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLENS_")}
    env["SUPPORTLENS_DATA_DIR"] = str(data_dir)
    return env


def cli(args: Sequence[str], data_dir: Path, *, log: Path) -> str:
    """Run ``supportlens ARGS`` (cwd = the data dir, so no stray ``.env`` is read); its stdout."""
    with log.open("ab") as err:
        done = subprocess.run(
            [sys.executable, "-m", "supportlens.cli", *args],
            cwd=data_dir,
            env=cli_env(data_dir),
            stdout=subprocess.PIPE,
            stderr=err,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(
            f"supportlens {' '.join(args)[:300]} failed ({done.returncode}); "
            f"stdout: {done.stdout.decode()[-500:]!r}; last lines of {log.name}:\n{tail}"
        )
    return done.stdout.decode()


def create_workspace(name: str, data_dir: Path, *, log: Path) -> str:
    """``supportlens workspace create NAME``; the admin token (its last stdout line)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return cli(["workspace", "create", name], data_dir, log=log).strip().splitlines()[-1].strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory of a live process (VmHWM), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Server:
    """``supportlens serve`` on 127.0.0.1 in a subprocess; stopped (then killed) on exit."""

    def __init__(self, data_dir: Path, log: Path, settings: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.log = log
        self._settings = settings or {}  # SUPPORTLENS_* variables of the server
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    def __enter__(self) -> Server:
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "supportlens.cli", "serve", "--port", str(self.port)],
                cwd=self.data_dir,
                env={**cli_env(self.data_dir), **self._settings},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited with {self._process.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer /health within 60 s; see {self.log}")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> float:
        """SIGTERM (a clean stop flushes and checkpoints the store); SIGKILL after 120 s.  Seconds taken."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return 0.0
        started = time.perf_counter()
        process.terminate()
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class IngestRun:
    rows: int
    seconds: float
    quarantined: int
    retries: int  # 429 answers retried
    requests: tuple[tuple[float, float, int], ...]  # (start, end, rows) relative to the run start

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    def segment_rate(self, first: bool, share: float = 0.1) -> float:
        """Tickets per second over the first (or last) ``share`` of the requests."""
        ordered = sorted(self.requests)
        count = max(1, round(len(ordered) * share))
        part = ordered[:count] if first else ordered[-count:]
        span = max(end for _, end, _ in part) - min(start for start, _, _ in part)
        return sum(rows for _, _, rows in part) / span

    def latency(self) -> Timing:
        return Timing(tuple(end - start for start, end, _ in self.requests))


def post_batches(
    base_url: str, token: str, batches: Sequence[bytes], *, connections: int, progress: Any
) -> IngestRun:
    """POST every batch to ``/v0/events?name=support_tickets&wait=true`` over ``connections``
    keep-alive connections (one thread and one httpx client each), in order of the batch list."""
    url = "/v0/events?name=support_tickets&wait=true"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    lock = threading.Lock()
    next_index = 0
    done = 0
    accepted = quarantined = retries = 0
    requests: list[tuple[float, float, int]] = []
    failures: list[BaseException] = []
    started = time.perf_counter()

    def worker() -> None:
        nonlocal next_index, done, accepted, quarantined, retries
        with httpx.Client(base_url=base_url, headers=headers, timeout=600) as client:
            while not failures:
                with lock:
                    if next_index >= len(batches):
                        return
                    index = next_index
                    next_index += 1
                body = batches[index]
                while True:
                    sent = time.perf_counter()
                    answer = client.post(url, content=body)
                    if answer.status_code != 429:
                        break
                    with lock:
                        retries += 1
                    time.sleep(0.2)
                if answer.status_code != 200:
                    raise RuntimeError(f"POST batch {index}: HTTP {answer.status_code}: {answer.text[:300]}")
                result = orjson.loads(answer.content)
                received = time.perf_counter()
                rows = int(result["successful_rows"]) + int(result["quarantined_rows"])
                with lock:
                    accepted += int(result["successful_rows"])
                    quarantined += int(result["quarantined_rows"])
                    requests.append((sent - started, received - started, rows))
                    done += 1
                    progress(done, len(batches), accepted)

    def guarded() -> None:
        try:
            worker()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=guarded, name=f"bench-post-{i}") for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    seconds = time.perf_counter() - started
    return IngestRun(accepted, seconds, quarantined, retries, tuple(requests))


@dataclass(frozen=True, slots=True)
class HttpCaseResult:
    timing: Timing
    sql_seconds: tuple[float, ...]  # statistics.elapsed of each timed answer (the engine queries)
    rows: list[dict[str, Any]]  # data of the last answer


class PipeClient:
    """One keep-alive connection, requests one after the other."""

    def __init__(self, base_url: str, token: str) -> None:
        self._client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )

    def close(self) -> None:
        self._client.close()

    def get(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        answer = self._client.get(f"/v0/pipes/{endpoint}.json", params=params)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {endpoint} {params}: HTTP {answer.status_code}: {answer.text[:300]}")
        body: dict[str, Any] = orjson.loads(answer.content)
        return body

    def health(self, repeats: int) -> Timing:
        def call() -> None:
            self._client.get("/health").raise_for_status()

        return measure(call, repeats=repeats)

    def run(self, case: Case, window: Window, repeats: int) -> HttpCaseResult:
        params = case.http_params(window)
        answers: list[dict[str, Any]] = []

        def call() -> None:
            response = self._client.get(f"/v0/pipes/{case.endpoint}.json", params=params)
            if response.status_code != 200:
                raise RuntimeError(
                    f"GET {case.endpoint} {params}: HTTP {response.status_code}: {response.text[:300]}"
                )
            answers.append({"raw": response.content})

        timing = measure(call, repeats=repeats)
        parsed = [orjson.loads(a["raw"]) for a in answers[-repeats:]]
        return HttpCaseResult(
            timing, tuple(float(p["statistics"]["elapsed"]) for p in parsed), list(parsed[-1]["data"])
        )


@contextmanager
def scratch_directory(
    prefix: str, parent: Path | None, *, keep: bool, log: Callable[[str], None]
) -> Iterator[Path]:
    """A fresh temporary directory for one benchmark run: on failure the tail of every log in it
    is printed; afterwards it is removed unless ``keep``."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield workdir
    except BaseException:
        for path in sorted(workdir.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-20:]
            log(f"failed; last lines of {path.name}:\n" + "\n".join(tail))
        raise
    finally:
        if keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
