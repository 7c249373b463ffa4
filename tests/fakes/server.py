"""Runs a fake third-party API (an ASGI app, e.g. Starlette or FastAPI) as a real HTTP server on
127.0.0.1, in a thread, for as long as a ``with`` block lasts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from tests.live import free_port


@dataclass
class Fault:
    """What the server answers instead, for one request."""

    status: int = 503
    retry_after: int | None = None
    delay: float = 0.0  # seconds before answering normally (past the client's timeout: a timeout)


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Yields the base URL (``http://127.0.0.1:<port>``) once the server accepts connections."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fake-api", daemon=True)
    thread.start()
    while not server.started:  # set by uvicorn once the socket listens
        if not thread.is_alive():
            raise RuntimeError("the fake API server did not start")
        time.sleep(0.01)  # polling for the port to open, not hiding a race
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
