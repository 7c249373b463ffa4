"""Admission of pipe runs: at most ``query_concurrency`` run at once, the others wait their turn (up
to ``query_queue_seconds``, then 503 with Retry-After); requests share a run, or a kept answer, when
it is as fresh as they asked.

A pipe run is CPU work (the engine's scan, then numpy over the rows).  Under a burst, dozens of runs
at once on a few cores only share them: each takes many times longer, the slowest reach the query time
limit (408) and memory grows with every run's rows.  Queued instead, each run gets the cores, the time
limit counts the work and not the wait, and the queue is fair (first come, first served).  The wait
is on the event loop, not in a worker thread, so requests that write (the Events API) never queue
behind reads for a thread.

Freshness: a request says how old an answer it accepts (``max_age`` seconds; HTTP ``Cache-Control:
max-age``).  An answer is as old as the start of its run: the run reads every row committed before it
started.  By default (``max_age`` 0) a request is exact: it joins only a run that has not started
yet (it will read every row committed before the request, so read-your-writes holds: a ``wait=true``
write is committed before its answer), and its "now" is after the request came.  A request that
accepts ``max_age`` > 0 is also answered by a kept answer, or joins a running run, that started at
most ``max_age`` before it arrived; when its kept answer is about to grow too old for it, a refresh
starts in the background so that the next requests need not wait.  Kept answers are bounded in bytes
(least recently used go first)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool

from supportlens.api.errors import ApiError

# A refresh starts when the kept answer would otherwise be too old before a new run could end:
# twice the last run's time plus this margin for the wait for a slot.
REFRESH_MARGIN_SECONDS = 1.0


@dataclass(frozen=True)
class Served:
    value: Any
    age: float  # seconds between the start of the run that computed it and the request


@dataclass(frozen=True)
class _Answer:
    value: Any
    started: float
    seconds: float  # how long its run took
    size: int


class _Run:
    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.started: float | None = None  # set by the worker thread before the work reads anything


class AnswerStore:
    """The newest answer of each key, least recently used dropped first beyond ``capacity`` bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._answers: OrderedDict[Hashable, _Answer] = OrderedDict()
        self._bytes = 0

    def get(self, key: Hashable) -> _Answer | None:
        answer = self._answers.get(key)
        if answer is not None:
            self._answers.move_to_end(key)
        return answer

    def put(self, key: Hashable, answer: _Answer) -> None:
        kept = self._answers.get(key)
        if kept is not None and kept.started >= answer.started:
            return  # an older run ended last: keep the newer answer
        if answer.size > self.capacity // 4:
            return  # one huge listing would evict everything else
        if kept is not None:
            self._bytes -= self._answers.pop(key).size
        self._answers[key] = answer
        self._bytes += answer.size
        while self._bytes > self.capacity:
            _, dropped = self._answers.popitem(last=False)
            self._bytes -= dropped.size


class Admission:
    def __init__(
        self,
        slots: int,
        wait_seconds: float,
        *,
        keep_bytes: int = 0,
        size: Callable[[Any], int | None] = lambda value: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``size(value)``: the bytes of an answer worth keeping, None for one never kept."""
        self._slots = asyncio.Semaphore(slots)
        self._wait_seconds = wait_seconds
        self._runs: dict[Hashable, _Run] = {}  # the newest unfinished run of each key
        self._answers = AnswerStore(keep_bytes)
        self._size = size
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()  # running starters (kept from the collector)

    async def run(self, key: Hashable, work: Callable[[], Any], max_age: float = 0.0) -> Served:
        """An answer of ``work()`` whose run started at most ``max_age`` seconds before now (for 0:
        after now).  ApiError 503 when no slot frees within the wait limit."""
        arrived = self._clock()
        oldest = arrived - max_age
        if max_age > 0:
            kept = self._answers.get(key)
            if kept is not None and kept.started >= oldest:
                refresh_at = kept.started + max_age - 2 * kept.seconds - REFRESH_MARGIN_SECONDS
                if arrived >= refresh_at and not self._newer_run(key, kept.started):
                    self._launch(key, work)
                return Served(kept.value, arrived - kept.started)
        run = self._runs.get(key)
        if run is None or (run.started is not None and run.started < oldest):
            run = self._launch(key, work)
        # Shielded: a client that goes away does not cancel the run the others wait for.
        value = await asyncio.shield(run.future)
        assert run.started is not None  # the run ended, so it started
        return Served(value, max(0.0, arrived - run.started))

    def _newer_run(self, key: Hashable, started: float) -> bool:
        run = self._runs.get(key)
        return run is not None and (run.started is None or run.started > started)

    def _launch(self, key: Hashable, work: Callable[[], Any]) -> _Run:
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)
        run = _Run(future)
        self._runs[key] = run
        task = asyncio.create_task(self._start(key, run, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    async def _start(self, key: Hashable, run: _Run, work: Callable[[], Any]) -> None:
        try:
            await asyncio.wait_for(self._slots.acquire(), self._wait_seconds)
        except TimeoutError:
            self._forget(key, run)
            run.future.set_exception(
                ApiError(
                    503,
                    f"the server is busy: no query could start within {self._wait_seconds:g} s;"
                    " retry shortly",
                    headers={"Retry-After": "1"},
                )
            )
            return

        def timed() -> Any:
            run.started = self._clock()
            return work()

        try:
            value = await run_in_threadpool(timed)
        except Exception as exc:  # the run's own error (408, 400, ...) is every sharer's answer
            run.future.set_exception(exc)
        else:
            assert run.started is not None
            size = self._size(value)
            if size is not None:
                answer = _Answer(value, run.started, self._clock() - run.started, size)
                self._answers.put(key, answer)
            run.future.set_result(value)
        finally:
            self._forget(key, run)
            self._slots.release()

    def _forget(self, key: Hashable, run: _Run) -> None:
        if self._runs.get(key) is run:
            del self._runs[key]


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Marks an error as seen when every requester has gone (no 'never retrieved' warning)."""
    if not future.cancelled():
        future.exception()
