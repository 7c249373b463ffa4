"""Helpdesk sync end to end: the CLI adds a Freshdesk connection (a fake account on 127.0.0.1) and
syncs it with a summary; a live server's scheduler then syncs a due connection of another workspace
on its own and its retention job goes over it; both workspaces end with every ticket of the account;
``supportlens prune`` with a shorter window removes what was not updated within it; and the API key
appears nowhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.fakes.freshdesk import API_KEY, build_account
from tests.fakes.server import serve_app
from tests.live import cli_env, live_server
from tests.live import run_cli as _cli

pytestmark = pytest.mark.e2e


def _wait_for_run(client: httpx.Client, connection_id: str, trigger: str) -> dict[str, object]:
    """The first finished run of the connection started by ``trigger`` (polling the run log)."""
    deadline = datetime.now(UTC).timestamp() + 60
    while datetime.now(UTC).timestamp() < deadline:
        runs = client.get(f"/v1/connections/{connection_id}/runs").json()["runs"]
        finished = [run for run in runs if run["finished_at"] is not None and run["trigger"] == trigger]
        if finished:
            return finished[-1]
        client.get("/health")  # a request between polls, so the wait is for the scheduler
    raise AssertionError(f"no {trigger} run of the connection finished within 60 s")


def test_cli_sync_and_the_server_scheduler(tmp_path: Path) -> None:
    account = build_account(40, seed=5, end=datetime.now(UTC), days=20)
    expected = len(account.truth())
    env = {**cli_env(tmp_path), "SUPPORTLENS_SLA_EVALUATOR_INTERVAL_SECONDS": "0"}
    with serve_app(account.app()) as url:
        _cli(env, "workspace", "create", "acme")
        beta_token = _cli(env, "workspace", "create", "beta").strip().splitlines()[-1]
        for workspace in ("acme", "beta"):
            added = _cli(
                env, "connect", "add", "freshdesk", "--name", "fd", "--base-url", url,
                "--credential", f"api_key={API_KEY}", "--schedule-hours", "1", "-w", workspace,
            )  # fmt: skip
            assert "Connection 'fd' (freshdesk) added" in added
        synced = _cli(env, "sync", "fd", "-w", "acme")
        assert "fd: succeeded" in synced
        metrics = json.loads(_cli(env, "query", "ticket_metrics", "-w", "acme", "--format", "json"))
        assert metrics[0]["total_tickets"] == expected
        listed = _cli(env, "connect", "list", "-w", "acme")
        assert "freshdesk" in listed
        # The server's scheduler syncs beta's connection, due since it never ran.
        server_env = {**env, "SUPPORTLENS_SYNC_CHECK_INTERVAL_SECONDS": "0.2"}
        with (
            live_server(server_env) as base,
            httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {beta_token}"}, timeout=30
            ) as client,
        ):
            connection = client.get("/v1/connections").json()["data"][0]
            run = _wait_for_run(client, connection["id"], "schedule")
            assert run["status"] == "succeeded"
            answer = client.get("/v0/pipes/ticket_metrics.json").json()
            assert answer["data"][0]["total_tickets"] == expected
            # The server's retention job goes over the connection too (nothing is a year old).
            pruned = _wait_for_run(client, connection["id"], "retention")
            assert (pruned["status"], pruned["removed"]) == ("succeeded", 0)
            shown = client.get(f"/v1/connections/{connection['id']}").text
        # Retention from the CLI with a 10-day window: what was not updated since goes.
        removed = _cli({**env, "SUPPORTLENS_RETENTION_DAYS": "10"}, "prune", "fd", "-w", "acme")
        count = int(removed.split("succeeded; ")[1].split(" tickets removed")[0])
        assert 0 < count < expected
        metrics = json.loads(_cli(env, "query", "ticket_metrics", "-w", "acme", "--format", "json"))
        assert metrics[0]["total_tickets"] == expected - count
    for text in (added, synced, listed, shown):
        assert API_KEY not in text
    assert API_KEY.encode() not in (tmp_path / "metadata.sqlite").read_bytes()
