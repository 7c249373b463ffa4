"""A background thread that runs one task every so many seconds until stopped (the server runs the
routing rules' escalation timers, notification retries and the ticket outbox this way)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, task: Callable[[datetime], int], *, interval: float) -> None:
        """``task(now)`` returns how many things it did (logged when some)."""
        self._name = name
        self._task = task
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Runs the task every ``interval`` seconds from now on (never, for an interval of 0)."""
        if self._interval <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name=f"supportlens-{self._name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                done = self._task(datetime.now(UTC))
            except Exception:  # one bad pass must not stop the next ones
                log.exception("%s failed; trying again in %s s", self._name, self._interval)
            else:
                if done:
                    log.info("%s: %d done", self._name, done)
