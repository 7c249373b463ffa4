"""Admission of pipe runs: at most ``query_concurrency`` run at once, the others wait their turn (up
to ``query_queue_seconds``, then 503 with Retry-After), and identical requests waiting together share
one run.

A pipe run is CPU work (the engine's scan, then numpy over the rows).  Under a burst, dozens of runs
at once on a few cores only share them: each takes many times longer, the slowest reach the query time
limit (408) and memory grows with every run's rows.  Queued instead, each run gets the cores, the time
limit counts the work and not the wait, and the queue is fair (first come, first served).  The wait
is on the event loop, not in a worker thread, so requests that write (the Events API) never queue
behind reads for a thread.

Sharing: a request joins the run of an identical request (same key: workspace, pipe, parameters,
format, fixed filters) that is still waiting for its turn.  That run starts after the request
arrived, so it reads every row committed before the request (read-your-writes holds: a ``wait=true``
write is committed before its answer) and evaluates "now" after the request came: its answer is one
the request could have been given on its own.  A run already started is never joined (it may predate
the request's data); a later identical request waits for the next run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any

from fastapi.concurrency import run_in_threadpool

from supportlens.api.errors import ApiError


class Admission:
    def __init__(self, slots: int, wait_seconds: float) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._wait_seconds = wait_seconds
        self._waiting: dict[Hashable, asyncio.Future[Any]] = {}  # runs not started yet, by key
        self._tasks: set[asyncio.Task[None]] = set()  # running starters (kept from the collector)

    async def run(self, key: Hashable, work: Callable[[], Any]) -> Any:
        """``work()`` in a worker thread once a slot is free, or the result of an identical request's
        run that has not started yet.  ApiError 503 when no slot frees within the wait limit."""
        shared = self._waiting.get(key)
        if shared is None:
            shared = asyncio.get_running_loop().create_future()
            shared.add_done_callback(_retrieved)
            self._waiting[key] = shared
            task = asyncio.create_task(self._start(key, shared, work))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: a client that goes away does not cancel the run the others wait for.
        return await asyncio.shield(shared)

    async def _start(self, key: Hashable, shared: asyncio.Future[Any], work: Callable[[], Any]) -> None:
        try:
            try:
                await asyncio.wait_for(self._slots.acquire(), self._wait_seconds)
            finally:
                # From now on (started, or given up) later identical requests need a run of their own.
                if self._waiting.get(key) is shared:
                    del self._waiting[key]
        except TimeoutError:
            shared.set_exception(
                ApiError(
                    503,
                    f"the server is busy: no query could start within {self._wait_seconds:g} s;"
                    " retry shortly",
                    headers={"Retry-After": "1"},
                )
            )
            return
        try:
            result = await run_in_threadpool(work)
        except Exception as exc:  # the run's own error (408, 400, ...) is every sharer's answer
            shared.set_exception(exc)
        else:
            shared.set_result(result)
        finally:
            self._slots.release()


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Marks an error as seen when every requester has gone (no 'never retrieved' warning)."""
    if not future.cancelled():
        future.exception()
