"""HTTP to a helpdesk API, as every connector needs it: a client-side request budget kept under the
API's documented limit, 429 answers waited out (Retry-After, or the connector's own reading of the
answer), retries with exponential backoff on 5xx, timeouts and broken connections, and counters for
the run log.  Secrets stay in the headers: errors name the method and path only.

``sleep`` and ``clock`` are injectable so that tests of rate limits run on a fake clock, without
sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class RateBudget:
    """At most ``requests`` requests in any ``per_seconds`` window."""

    requests: int
    per_seconds: float


@dataclass(slots=True)
class ClientStats:
    requests: int = 0
    retries: int = 0  # after a 5xx, a timeout or a broken connection
    throttled: int = 0  # 429 answers
    waited_seconds: float = 0.0  # slept for the budget, Retry-After and backoff
    errors: list[str] = field(default_factory=list)  # what each retry was for


class SourceUnavailable(RuntimeError):
    """The source kept failing (5xx, timeouts, 429) through every retry."""


class SourceError(RuntimeError):
    """The source refused or broke in a way retrying will not fix (bad credentials, a malformed
    answer); the run fails with this message (never with a secret in it)."""


def retry_after_header(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (HTTP dates are not used by helpdesk APIs)."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class SourceClient:
    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        budget: RateBudget | None = None,
        max_retries: int = 5,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        timeout_seconds: float = 30.0,
        retry_after: Callable[[httpx.Response], float | None] = retry_after_header,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=dict(headers or {}),
            auth=auth,
            timeout=timeout_seconds,
            transport=transport,
            follow_redirects=False,
        )
        self._budget = budget
        self._sent: deque[float] = deque()
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._retry_after = retry_after
        self._sleep = sleep
        self._clock = clock
        self.stats = ClientStats()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SourceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.waited_seconds += seconds
            self._sleep(seconds)

    def _spend(self) -> None:
        """Wait until the budget allows one more request, then count it."""
        if self._budget is not None:
            window = self._budget.per_seconds
            while self._sent and self._clock() - self._sent[0] >= window:
                self._sent.popleft()
            if len(self._sent) >= self._budget.requests:
                self._wait(window - (self._clock() - self._sent[0]))
                self._sent.popleft()
            self._sent.append(self._clock())
        self.stats.requests += 1

    def _delay(self, attempt: int) -> float:
        delay: float = min(self._max_backoff, self._backoff * 2.0**attempt)
        return delay

    def request(self, method: str, url: str, **arguments: Any) -> httpx.Response:
        """The answer to the request; 4xx other than 429 are returned for the connector to read.
        SourceUnavailable once every retry failed."""
        where = f"{method} {httpx.URL(url).path or url}"
        last = ""
        for attempt in range(self._max_retries + 1):
            self._spend()
            try:
                response = self._http.request(method, url, **arguments)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{where}: {type(exc).__name__}"
                self._note_retry(last, attempt)
                continue
            if response.status_code == 429:
                self.stats.throttled += 1
                last = f"{where}: 429"
                if attempt < self._max_retries:
                    self.stats.errors.append(last)
                    wait = self._retry_after(response)
                    self._wait(self._delay(attempt) if wait is None else wait)
                continue
            if response.status_code >= 500:
                last = f"{where}: {response.status_code}"
                self._note_retry(last, attempt)
                continue
            return response
        raise SourceUnavailable(f"{last} (gave up after {self._max_retries + 1} attempts)")

    def _note_retry(self, error: str, attempt: int) -> None:
        if attempt < self._max_retries:
            self.stats.retries += 1
            self.stats.errors.append(error)
            self._wait(self._delay(attempt))

    def get_json(self, url: str, **arguments: Any) -> Any:
        return self._json(self.request("GET", url, **arguments))

    def post_json(self, url: str, body: Any, **arguments: Any) -> Any:
        return self._json(self.request("POST", url, json=body, **arguments))

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise SourceError(
                f"{response.request.method} {response.request.url.path}: {response.status_code} "
                f"{response.text[:300]}"
            )
        return response.json()


def next_link(response: httpx.Response) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header (Freshdesk paging), or None on the last page."""
    url = response.links.get("next", {}).get("url")
    return str(url) if url else None
