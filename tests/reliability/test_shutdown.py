"""Graceful shutdown (issue 7, point 7): SIGTERM writes every queued (202) event to disk before the
process exits.  Clients keep posting without ``wait`` while the server is told to stop; every row
it answered 202 for must be in the store afterwards."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.live_process import (
    ServerProcess,
    counts,
    create_workspace,
    long_form,
    opened_store,
    server_env,
    workspace_id,
    write_figures,
)
from tests.reliability.workload import Batch, base_time, event_batch, ticket_batch

pytestmark = pytest.mark.e2e


def test_sigterm_writes_every_queued_row(tmp_path: Path) -> None:
    rounds = 3 if long_form() else 1
    figures: list[dict[str, float | int]] = []
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = server_env(data_dir)
    token = create_workspace(env, "shutdown")
    workspace = workspace_id(data_dir, "shutdown")
    accepted_tickets: set[str] = set()
    accepted_events: set[str] = set()
    for round_number in range(rounds):
        figures.append(
            _one_round(env, data_dir, token, round_number, tmp_path, accepted_tickets, accepted_events)
        )
    with opened_store(data_dir) as engine:
        stored = counts(engine, workspace)
        ids = set(engine.fetch_arrow("SELECT ticket_id FROM tickets", {}, timeout=600).column(0).to_pylist())
        event_ids = set(
            engine.fetch_arrow("SELECT event_id FROM ticket_events", {}, timeout=600).column(0).to_pylist()
        )
    assert accepted_tickets <= ids, f"{len(accepted_tickets - ids)} tickets answered 202 are missing"
    assert accepted_events <= event_ids, f"{len(accepted_events - event_ids)} events answered 202 are missing"
    assert stored.tickets == stored.distinct_tickets
    assert stored.events == stored.distinct_events
    write_figures(
        "shutdown",
        {
            "rounds": figures,
            "accepted_tickets": len(accepted_tickets),
            "accepted_events": len(accepted_events),
            "stored_tickets": stored.tickets,
            "stored_events": stored.events,
            "missing": len(accepted_tickets - ids) + len(accepted_events - event_ids),
        },
    )


def _one_round(
    env: dict[str, str],
    data_dir: Path,
    token: str,
    round_number: int,
    tmp_path: Path,
    accepted_tickets: set[str],
    accepted_events: set[str],
) -> dict[str, float | int]:
    """Start the server, post without wait from a few clients, SIGTERM once enough was accepted
    (clients still posting), and wait for the process to exit."""
    base = base_time()
    size = 4_000 if long_form() else 2_000
    enough = 60_000 if long_form() else 20_000  # rows answered 202 before the SIGTERM
    lock = threading.Lock()
    accepted_rows = 0
    enough_accepted = threading.Event()
    errors: list[str] = []

    with ServerProcess(env, tmp_path / f"server-{round_number}.log") as server:
        url = server.start()

        def client(number: int, make: str) -> None:
            nonlocal accepted_rows
            index = round_number * 10_000 + number * 1_000
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120
            ) as http:
                while True:
                    batch: Batch = (
                        ticket_batch(index, size, base)
                        if make == "tickets"
                        else event_batch(index, size // 3, base)
                    )
                    index += 1
                    try:
                        answer = http.post(
                            "/v0/events", params={"name": batch.datasource}, content=batch.body
                        )
                    except httpx.TransportError:
                        return  # the server stopped taking requests
                    if answer.status_code in (429, 503):
                        if enough_accepted.is_set():
                            return  # refused while shutting down: not acknowledged
                        continue
                    if answer.status_code != 202:
                        errors.append(f"HTTP {answer.status_code}: {answer.text[:200]}")
                        return
                    with lock:
                        accepted_tickets.update(batch.tickets | batch.resolves)
                        accepted_events.update(batch.events)
                        accepted_rows += batch.body.count(b"\n") + 1
                        if accepted_rows >= enough:
                            enough_accepted.set()

        threads = [
            threading.Thread(target=client, args=(0, "tickets")),
            threading.Thread(target=client, args=(1, "tickets")),
            threading.Thread(target=client, args=(2, "events")),
        ]
        for thread in threads:
            thread.start()
        assert enough_accepted.wait(timeout=300), f"posting stalled: {errors}\n{server.tail()}"
        stopping = time.perf_counter()
        code = server.terminate(timeout=300)
        stop_seconds = time.perf_counter() - stopping
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        # uvicorn re-raises the SIGTERM once its shutdown is complete (exit status -15).
        assert code in (0, -signal.SIGTERM), f"exit status {code}:\n{server.tail()}"
        assert "Application shutdown complete" in server.tail(400), server.tail()
    return {"accepted_rows": accepted_rows, "stop_seconds": round(stop_seconds, 3)}
