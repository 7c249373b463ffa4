"""Admission of pipe runs (api/admission.py): at most N at once, the rest wait in arrival order;
identical requests that wait together share one run, which starts after all of them arrived, while a
request arriving during a run gets a run of its own; a wait past the limit is a 503 with Retry-After;
a run's error is every sharer's.  Through the app, pipes answer as before with one slot."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from supportlens.api.admission import Admission
from supportlens.api.errors import ApiError
from supportlens.api.pipes import requested_max_age
from supportlens.store.base import QueryTimeout
from tests.api.conftest import Api, open_api


class Work:
    """Runs of one kind of work, in a worker thread; ``gate`` holds each run until it is set."""

    def __init__(self, name: str, log: list[str], gate: threading.Event | None = None) -> None:
        self.name, self.log, self.gate, self.runs = name, log, gate, 0

    def __call__(self) -> str:
        self.runs += 1
        number = self.runs
        self.log.append(f"{self.name} starts")
        if self.gate is not None:
            assert self.gate.wait(10)
        return f"{self.name} #{number}"


async def _value(admission: Admission, key: str, work: Callable[[], str]) -> str:
    """What an exact request gets."""
    value: str = (await admission.run(key, work)).value
    return value


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("never happened")


def test_runs_wait_their_turn_in_arrival_order_and_identical_waiters_share_one() -> None:
    async def scenario() -> None:
        admission = Admission(1, wait_seconds=10)
        log: list[str] = []
        gate = threading.Event()
        first = Work("first", log, gate)
        shared = Work("shared", log)
        other = Work("other", log)
        running = asyncio.create_task(_value(admission, "first", first))
        await _until(lambda: log == ["first starts"])
        # Three identical requests and another one arrive while the only slot is taken.
        sharers = [asyncio.create_task(_value(admission, "shared", shared)) for _ in range(3)]
        later = asyncio.create_task(_value(admission, "other", other))
        await asyncio.sleep(0.02)
        assert log == ["first starts"]
        gate.set()
        assert await running == "first #1"
        assert await asyncio.gather(*sharers) == ["shared #1"] * 3  # one run for the three
        assert await later == "other #1"
        assert log == ["first starts", "shared starts", "other starts"]
        assert shared.runs == 1

    asyncio.run(scenario())


def test_a_request_arriving_during_a_run_gets_a_run_of_its_own() -> None:
    async def scenario() -> None:
        admission = Admission(2, wait_seconds=10)
        log: list[str] = []
        gate = threading.Event()
        work = Work("pipe", log, gate)
        started = asyncio.create_task(_value(admission, "pipe", work))
        await _until(lambda: log == ["pipe starts"])
        # The run started before this request: it may predate the request's data, so not shared.
        after = asyncio.create_task(_value(admission, "pipe", work))
        await _until(lambda: len(log) == 2)
        gate.set()
        assert {await started, await after} == {"pipe #1", "pipe #2"}

    asyncio.run(scenario())


def test_a_wait_past_the_limit_is_a_503_with_retry_after_for_every_sharer() -> None:
    async def scenario() -> list[BaseException | str]:
        admission = Admission(1, wait_seconds=0.05)
        gate = threading.Event()
        log: list[str] = []
        holder = asyncio.create_task(_value(admission, "slow", Work("slow", log, gate)))
        await _until(lambda: log == ["slow starts"])
        refused = await asyncio.gather(
            *(_value(admission, "waiting", Work("waiting", log)) for _ in range(2)), return_exceptions=True
        )
        gate.set()
        await holder
        refused.append(await _value(admission, "waiting", Work("waiting", log)))  # the slot is free again
        return refused

    first, second, third = asyncio.run(scenario())
    for refused in (first, second):
        assert isinstance(refused, ApiError)
        assert (refused.status_code, refused.headers) == (503, {"Retry-After": "1"})
        assert "busy" in refused.message
    assert third == "waiting #1"


def test_a_runs_error_is_every_sharers_answer() -> None:
    async def scenario() -> list[BaseException | str]:
        admission = Admission(1, wait_seconds=10)
        gate = threading.Event()
        log: list[str] = []
        holder = asyncio.create_task(_value(admission, "hold", Work("hold", log, gate)))
        await _until(lambda: log == ["hold starts"])

        def too_long() -> str:
            raise QueryTimeout("query stopped after the 30 s time limit")

        sharers = [asyncio.create_task(_value(admission, "slow pipe", too_long)) for _ in range(2)]
        await asyncio.sleep(0.01)
        gate.set()
        await holder
        return await asyncio.gather(*sharers, return_exceptions=True)

    for answer in asyncio.run(scenario()):
        assert isinstance(answer, QueryTimeout)


@pytest.mark.parametrize("concurrency", [1])
def test_pipes_answer_through_one_slot(tmp_path: Path, concurrency: int) -> None:
    for api in open_api("duckdb", tmp_path, query_concurrency=concurrency, sla_evaluator_interval_seconds=0):
        posted = api.client.post(
            "/v0/events?name=support_tickets&wait=true",
            json={"ticket_id": "T1", "status": "open", "created_at": "2026-11-01 10:00:00"},
            headers=api.headers(),
        )
        assert posted.status_code == 200
        for pipe in ("ticket_metrics", "backlog", "ticket_details"):
            answer = api.client.get(f"/v0/pipes/{pipe}.json", headers=api.headers())
            assert answer.status_code == 200, (pipe, answer.text)
        metrics = api.client.get("/v0/pipes/ticket_metrics.json", headers=api.headers()).json()
        assert metrics["data"][0]["total_tickets"] == 1
        bad = api.client.get("/v0/pipes/ticket_time_metrics.json?as_of=soon", headers=api.headers())
        assert bad.status_code == 400  # a run's error reaches the client as before


# Freshness: answers kept and shared within the age a request accepts


class Clock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _keeping(slots: int = 2, capacity: int = 1_000_000) -> tuple[Admission, Clock]:
    clock = Clock()
    return Admission(slots, wait_seconds=10, keep_bytes=capacity, size=len, clock=clock), clock


def test_a_request_accepting_older_answers_gets_the_kept_one_and_an_exact_request_never_does() -> None:
    async def scenario() -> None:
        admission, clock = _keeping()
        log: list[str] = []
        work = Work("pipe", log)
        first = await admission.run("pipe", work, max_age=60)
        assert (first.value, first.age) == ("pipe #1", 0.0)
        clock.now += 20
        kept = await admission.run("pipe", work, max_age=60)
        assert (kept.value, kept.age) == ("pipe #1", 20.0)  # no run: 20 s old is fine
        exact = await admission.run("pipe", work)
        assert (exact.value, exact.age) == ("pipe #2", 0.0)
        strict = await admission.run("pipe", work, max_age=10)
        assert strict.value == "pipe #2"  # the exact run's answer is kept too, and young enough
        clock.now += 11
        assert (await admission.run("pipe", work, max_age=10)).value == "pipe #3"  # too old: a run
        assert work.runs == 3

    asyncio.run(scenario())


def test_an_answer_about_to_grow_too_old_is_refreshed_in_the_background() -> None:
    async def scenario() -> None:
        admission, clock = _keeping()
        log: list[str] = []
        gate = threading.Event()
        work = Work("pipe", log)
        await admission.run("pipe", work, max_age=60)
        # Within a margin of the limit (twice the last run's time plus a second for the wait), the
        # request is answered at once and a run starts behind it.
        clock.now += 59.5
        work.gate = gate
        early = await admission.run("pipe", work, max_age=60)
        assert (early.value, early.age) == ("pipe #1", 59.5)
        await _until(lambda: work.runs == 2)
        # The refresh has started: past the limit, a request joins it instead of starting another.
        clock.now += 2
        joined = asyncio.create_task(admission.run("pipe", work, max_age=60))
        await asyncio.sleep(0.01)
        assert not joined.done()
        gate.set()
        assert (await joined).value == "pipe #2"
        assert work.runs == 2
        assert (await admission.run("pipe", work, max_age=60)).value == "pipe #2"  # kept now

    asyncio.run(scenario())


def test_only_successful_answers_are_kept_within_their_byte_limit() -> None:
    async def scenario() -> None:
        admission, _ = _keeping(capacity=40)
        log: list[str] = []
        failing = iter([QueryTimeout("stopped"), "fine"])

        def flaky() -> str:
            outcome = next(failing)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        with pytest.raises(QueryTimeout):
            await admission.run("flaky", flaky, max_age=60)
        assert (await admission.run("flaky", flaky, max_age=60)).value == "fine"  # the error was not kept
        # A quarter of the capacity at most per answer, least recently used dropped first.
        admission, _ = _keeping(capacity=40)
        big = Work("x" * 20, log)  # 23 bytes: more than a quarter
        await admission.run("big", big, max_age=60)
        await admission.run("big", big, max_age=60)
        assert big.runs == 2
        small = {name: Work(name * 6, log) for name in "abcde"}  # "aaaaaa #1": 9 bytes each
        for name in "abcd":
            await admission.run(name, small[name], max_age=60)  # 36 bytes kept
        await admission.run("a", small["a"], max_age=60)  # kept: a is now the most recently used
        await admission.run("e", small["e"], max_age=60)  # 45 bytes > 40: b, the least recent, goes
        for name in "ab":
            await admission.run(name, small[name], max_age=60)
        assert (small["a"].runs, small["b"].runs) == (1, 2)

    asyncio.run(scenario())


def _post(api: Api, ticket: str) -> None:
    row = {"ticket_id": ticket, "status": "open", "created_at": "2026-11-01 10:00:00"}
    answer = api.client.post("/v0/events?name=support_tickets&wait=true", json=row, headers=api.headers())
    assert answer.status_code == 200


def _total(api: Api, **headers: str) -> tuple[int, str | None]:
    """ticket_metrics' total and the answer's Age header."""
    answer = api.client.get("/v0/pipes/ticket_metrics.json", headers={**api.headers(), **headers})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"][0]["total_tickets"], answer.headers.get("age")


def test_cache_control_over_http(tmp_path: Path) -> None:
    for api in open_api("duckdb", tmp_path, sla_evaluator_interval_seconds=0):
        _post(api, "T1")
        assert _total(api) == (1, None)
        _post(api, "T2")
        # Accepting an answer up to an hour old: the one computed before T2 (Age in whole seconds).
        counted, age = _total(api, **{"Cache-Control": "max-age=3600"})
        assert counted == 1
        assert age is not None
        assert age.isdigit()
        assert _total(api)[0] == 2  # exact by default: read-your-writes
        _post(api, "T3")
        assert _total(api, **{"Cache-Control": "no-cache"})[0] == 3
        assert _total(api, **{"Cache-Control": "max-age=0"})[0] == 3
        assert _total(api, **{"Cache-Control": "public, max-age=3600"})[0] == 3  # the newest kept
        for wrong in ("max-age=soon", "max-age=-1", "max-age="):
            bad = api.client.get(
                "/v0/pipes/ticket_metrics.json", headers={**api.headers(), "Cache-Control": wrong}
            )
            assert bad.status_code == 400, wrong
            assert "Cache-Control" in bad.json()["error"]
    for api in open_api("duckdb", tmp_path / "lagging", pipe_max_age_seconds=3600):
        _post(api, "T1")
        assert _total(api)[0] == 1
        _post(api, "T2")
        assert _total(api)[0] == 1  # the server's default accepts older answers
        assert _total(api, **{"Cache-Control": "no-cache"})[0] == 2


def test_a_max_age_must_be_ascii_digits() -> None:
    # Servers decode header bytes as latin-1: "²" passes str.isdigit but is no number (was a 500).
    assert requested_max_age("max-age=60", 0) == 60
    assert requested_max_age("no-cache, max-age=60", 5) == 0
    assert requested_max_age("public", 5) == 5
    with pytest.raises(ApiError) as refused:
        requested_max_age("max-age=\u00b2", 0)
    assert refused.value.status_code == 400
