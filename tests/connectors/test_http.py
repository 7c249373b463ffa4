"""The connectors' HTTP client against a real local server: the client-side budget is never exceeded
(on a fake clock, so nothing really waits), 429 answers are waited out as Retry-After says, 5xx and
timeouts are retried with growing backoff, and a source that never recovers ends the run with an
error that names the path, not the secret."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supportlens.connectors.http import RateBudget, SourceClient, SourceError, SourceUnavailable, next_link
from tests.fakes.clock import FakeClock
from tests.fakes.server import serve_app

SECRET = "tok-secret-0123456789"


@dataclass
class Source:
    """What the fake answers next (status, headers, body), then 200 with a page."""

    answers: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    seen: list[str] = field(default_factory=list)  # Authorization headers received


@pytest.fixture
def source() -> Iterator[tuple[Source, str]]:
    state = Source()

    async def items(request: Request) -> Response:
        state.seen.append(request.headers.get("authorization", ""))
        if state.answers:
            status, headers = state.answers.popleft()
            return JSONResponse({"error": "busy"}, status_code=status, headers=headers)
        page = int(request.query_params.get("page", "1"))
        headers = (
            {"Link": f'<{request.url.replace_query_params(page=page + 1)}>; rel="next"'} if page < 3 else {}
        )
        return JSONResponse({"page": page}, headers=headers)

    with serve_app(Starlette(routes=[Route("/items", items)])) as url:
        yield state, url


def _client(url: str, clock: FakeClock, **options: object) -> SourceClient:
    return SourceClient(
        url,
        headers={"Authorization": f"Bearer {SECRET}"},
        sleep=clock.sleep,
        clock=clock.time,
        backoff_seconds=0.5,
        **options,  # type: ignore[arg-type]
    )


def test_the_budget_is_never_exceeded(source: tuple[Source, str]) -> None:
    state, url = source
    clock = FakeClock()
    sent: list[float] = []
    with _client(url, clock, budget=RateBudget(requests=4, per_seconds=1.0)) as client:
        for _ in range(10):
            client.get_json("/items")
            sent.append(clock.now)
    assert len(state.seen) == 10
    for index in range(len(sent) - 4):
        assert sent[index + 4] - sent[index] >= 1.0  # never 5 requests within one second
    assert clock.slept  # it waited, on the fake clock


def test_429_is_waited_out_as_retry_after_says(source: tuple[Source, str]) -> None:
    state, url = source
    state.answers.extend([(429, {"Retry-After": "7"}), (429, {"Retry-After": "2"})])
    clock = FakeClock()
    with _client(url, clock) as client:
        assert client.get_json("/items") == {"page": 1}
        assert client.stats.throttled == 2
    assert clock.slept == [7.0, 2.0]


def test_5xx_and_broken_answers_are_retried_with_growing_backoff(source: tuple[Source, str]) -> None:
    state, url = source
    state.answers.extend([(500, {}), (502, {}), (503, {})])
    clock = FakeClock()
    with _client(url, clock) as client:
        assert client.get_json("/items") == {"page": 1}
        assert client.stats.retries == 3
    assert clock.slept == [0.5, 1.0, 2.0]


def test_a_source_that_never_recovers_fails_without_its_secret(source: tuple[Source, str]) -> None:
    state, url = source
    state.answers.extend([(500, {})] * 10)
    clock = FakeClock()
    with _client(url, clock, max_retries=3) as client, pytest.raises(SourceUnavailable) as failure:
        client.get_json("/items")
    assert "GET /items: 500" in str(failure.value)
    assert SECRET not in str(failure.value)
    state.answers.clear()
    state.answers.append((401, {}))
    with _client(url, clock) as client, pytest.raises(SourceError) as refused:
        client.get_json("/items")
    assert "401" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_timeouts_are_retried(source: tuple[Source, str]) -> None:
    _, url = source
    clock = FakeClock()
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused
    with _client(closed, clock, max_retries=2) as client, pytest.raises(SourceUnavailable) as failure:
        client.get_json("/items")
    assert client.stats.retries == 2
    assert "ConnectError" in str(failure.value)
    with _client(url, clock) as client:
        assert client.get_json("/items") == {"page": 1}


def test_link_header_paging(source: tuple[Source, str]) -> None:
    _, url = source
    pages = []
    with _client(url, FakeClock()) as client:
        response = client.request("GET", "/items")
        pages.append(response.json()["page"])
        while (following := next_link(response)) is not None:
            response = client.request("GET", following)
            pages.append(response.json()["page"])
    assert pages == [1, 2, 3]
