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
from supportlens.store.base import QueryTimeout
from tests.api.conftest import open_api


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
        running = asyncio.create_task(admission.run("first", first))
        await _until(lambda: log == ["first starts"])
        # Three identical requests and another one arrive while the only slot is taken.
        sharers = [asyncio.create_task(admission.run("shared", shared)) for _ in range(3)]
        later = asyncio.create_task(admission.run("other", other))
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
        started = asyncio.create_task(admission.run("pipe", work))
        await _until(lambda: log == ["pipe starts"])
        # The run started before this request: it may predate the request's data, so not shared.
        after = asyncio.create_task(admission.run("pipe", work))
        await _until(lambda: len(log) == 2)
        gate.set()
        assert {await started, await after} == {"pipe #1", "pipe #2"}

    asyncio.run(scenario())


def test_a_wait_past_the_limit_is_a_503_with_retry_after_for_every_sharer() -> None:
    async def scenario() -> list[BaseException | str]:
        admission = Admission(1, wait_seconds=0.05)
        gate = threading.Event()
        log: list[str] = []
        holder = asyncio.create_task(admission.run("slow", Work("slow", log, gate)))
        await _until(lambda: log == ["slow starts"])
        refused = await asyncio.gather(
            *(admission.run("waiting", Work("waiting", log)) for _ in range(2)), return_exceptions=True
        )
        gate.set()
        await holder
        refused.append(await admission.run("waiting", Work("waiting", log)))  # the slot is free again
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
        holder = asyncio.create_task(admission.run("hold", Work("hold", log, gate)))
        await _until(lambda: log == ["hold starts"])

        def too_long() -> str:
            raise QueryTimeout("query stopped after the 30 s time limit")

        sharers = [asyncio.create_task(admission.run("slow pipe", too_long)) for _ in range(2)]
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
