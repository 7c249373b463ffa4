"""Runs a fake third-party API (an ASGI app, e.g. Starlette or FastAPI) as a real HTTP server on
127.0.0.1, in a thread, for as long as a ``with`` block lasts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request

from tests.live import free_port


@dataclass
class Fault:
    """What the server answers instead, for one request."""

    status: int = 503
    retry_after: int | None = None
    delay: float = 0.0  # seconds before answering normally (past the client's timeout: a timeout)


PageKey = tuple[str, str, bytes]  # path, query, body


async def page_key(request: Request) -> PageKey:
    """What names the page a request asks for: the same path, query and body ask for the same page."""
    return request.url.path, request.url.query, await request.body()


@dataclass
class SentPages:
    """The distinct pages a fake API sent, and an outage (503) once ``outage_after`` of them went out.

    A page asked again (a client's retry after its timeout on a loaded machine: the fake sent the
    page, the client never read it) is the same page. It is not counted again and is still answered
    during the outage, so the outage falls after the page the test names."""

    outage_after: int | None = None
    _keys: set[PageKey] = field(default_factory=set)

    def refuses(self, key: PageKey) -> bool:
        return (
            self.outage_after is not None and len(self._keys) >= self.outage_after and key not in self._keys
        )

    def sent(self, key: PageKey) -> int | None:
        """The page's number if it is new, None if it went out before."""
        if key in self._keys:
            return None
        self._keys.add(key)
        return len(self._keys)


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
