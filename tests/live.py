"""A real ``supportlens serve`` on 127.0.0.1 for end-to-end tests, driven through the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "supportlens.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "SUPPORTLENS_DATA_DIR": str(data_dir), "COLUMNS": "200"}


def run_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def live_server(env: dict[str, str]) -> Iterator[str]:
    """Serves the data directory of ``env`` until the block ends; yields the base URL once /health
    answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    # Its log goes to a file: a pipe nobody reads while it serves would block it once full.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, stderr=log)
        try:
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise AssertionError(f"server exited:\n{log.read().decode(errors='replace')}")
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start within 60 s"
                time.sleep(0.1)  # polling for the port to open, not hiding a race
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)
