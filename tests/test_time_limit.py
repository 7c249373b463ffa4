"""``runtime.within_time_limit``: past the limit the call ends in ``QueryTimeout`` whatever the work
did with the exception raised in it (a library wrapping it in its own error, as DuckDB does in a
Python callback, or swallowing it), and a call that ends in time is never interrupted later."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from supportlens.runtime import Runtime, within_time_limit
from supportlens.store.base import QueryTimeout
from tests.conftest import make_settings

LIMIT = 0.2
BOUND = 10.0  # a broken limit fails the test instead of spinning for ever


def _spin() -> None:
    """Python work until interrupted (the exception lands between bytecodes)."""
    ends = time.monotonic() + BOUND
    while time.monotonic() < ends:
        pass
    raise AssertionError("the time limit never interrupted the work")


def test_work_past_the_limit_is_stopped() -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"0\.2 s time limit"):
        within_time_limit(LIMIT, _spin)
    assert time.monotonic() - started < BOUND / 2


def test_an_interruption_wrapped_by_a_library_is_still_a_timeout() -> None:
    def wrapping() -> None:
        try:
            _spin()
        except BaseException as exc:  # what a C library calling back into Python does
            raise RuntimeError(f"reading the source failed: {exc!r}") from None

    with pytest.raises(QueryTimeout):
        within_time_limit(LIMIT, wrapping)


def test_an_interruption_swallowed_by_a_library_gives_no_answer() -> None:
    def swallowing() -> str:
        try:
            _spin()
        except BaseException:
            return "an answer computed after an interruption"
        return "unreachable"

    with pytest.raises(QueryTimeout):
        within_time_limit(LIMIT, swallowing)


def test_work_that_drops_the_stop_and_goes_on_is_stopped_again() -> None:
    """As when the stop lands in a weakref callback during a garbage collection, which Python prints
    and drops: the work goes on, and is stopped again soon after, not at its end."""
    dropped: list[BaseException] = []

    def dropping_once() -> None:
        try:
            _spin()
        except BaseException as exc:
            dropped.append(exc)
        _spin()

    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"0\.2 s time limit"):
        within_time_limit(LIMIT, dropping_once)
    assert len(dropped) == 1
    assert time.monotonic() - started < LIMIT + 1.0


def test_work_done_in_time_is_answered_and_never_interrupted_later() -> None:
    assert within_time_limit(LIMIT, lambda: "done") == "done"
    ends = time.monotonic() + 2 * LIMIT
    while time.monotonic() < ends:  # past the limit: nothing may land here
        pass


def test_writing_out_a_pipe_answer_is_within_the_limit(tmp_path: Path) -> None:
    """``Runtime.answer_pipe``: the answer's rendering counts against the limit (a listing of a
    million rows spends most of its time there)."""
    runtime = Runtime.open(make_settings("duckdb", tmp_path, query_timeout_seconds=LIMIT))
    try:
        workspace = runtime.metadata.create_workspace("limits")
        rendered = runtime.answer_pipe("ticket_metrics", workspace, {}, None, lambda result: result.rows)
        assert len(rendered) == 1  # quick work is answered
        started = time.monotonic()
        with pytest.raises(QueryTimeout, match=r"0\.2 s time limit"):
            runtime.answer_pipe("ticket_metrics", workspace, {}, None, lambda result: _spin())
        assert time.monotonic() - started < BOUND / 2
    finally:
        runtime.close()
