"""End to end: the CLI creates a workspace, a real uvicorn server on 127.0.0.1 takes events over
HTTP and answers every endpoint in every format; the CLI imports and queries the same store."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from supportlens.analytics.pipes import PIPES
from supportlens.analytics.sla_memo import TargetStates
from supportlens.analytics.sla_memo_files import load_target_states
from supportlens.auth.repository import MetadataRepository
from supportlens.config import Settings
from supportlens.workers.passes import Pass, PassStore
from tests.api.test_pipes_api import HISTORY
from tests.live import CLI, cli_env, live_server
from tests.live import run_cli as _cli
from tests.randomized import postings
from tests.reliability.live_process import ServerProcess, create_workspace, server_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    env = cli_env(tmp_path)
    token = _cli(env, "workspace", "create", "default").strip().splitlines()[-1]
    with live_server(env) as base:
        yield base, token, env


def test_ingest_and_read_every_endpoint_in_every_format(server: tuple[str, str, dict[str, str]]) -> None:
    base, token, _ = server
    headers = {"Authorization": f"Bearer {token}"}
    rows = postings(7, 400)
    body = b"\n".join(orjson.dumps(row) for row in rows)
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        answer = client.post("/v0/events", params={"name": "support_tickets", "wait": "true"}, content=body)
        assert answer.status_code == 200
        counts = answer.json()
        assert counts["successful_rows"] + counts["quarantined_rows"] == len(rows)
        # One ticket known through its activity log, for the history-based pipes.
        history = b"\n".join(
            orjson.dumps({**event, "ticket_id": "E1", "at": event["at"].replace("2023-07", "2025-06")})
            for event in HISTORY
        )
        answer = client.post("/v0/events", params={"name": "ticket_events", "wait": "true"}, content=history)
        assert answer.json() == {"successful_rows": len(HISTORY), "quarantined_rows": 0}
        # A fixed evaluation time, so that repeated calls of history-based pipes agree.
        window = {"start_date": "2024-12-01", "end_date": "2026-01-31", "as_of": "2026-02-01"}
        totals = client.get("/v0/pipes/ticket_metrics.json", params=window).json()["data"][0]
        assert 300 < totals["total_tickets"] <= 401  # the snapshots, plus the event-fed ticket
        for name in PIPES:
            reference = client.get(f"/v0/pipes/{name}.json", params=window).json()
            assert reference["rows"] > 0
            ndjson = client.get(f"/v0/pipes/{name}.ndjson", params=window).text.splitlines()
            assert [json.loads(line) for line in ndjson] == reference["data"]
            parquet = client.get(f"/v0/pipes/{name}.parquet", params=window).content
            assert pq.read_table(io.BytesIO(parquet)).to_pylist() == reference["data"]
            csv_lines = client.get(f"/v0/pipes/{name}.csv", params=window).text.splitlines()
            assert len(csv_lines) == reference["rows"] + 1
        assert client.get("/docs").status_code == 200


def _saved_sla_workspaces(data_dir: Path) -> int:
    """How many workspaces' SLA states in ``data_dir`` a server starting now would take up."""
    directory = Settings(data_dir=data_dir).kept_sla_states_path
    return load_target_states(TargetStates(), directory, last_seq=10**9)


def _evaluator_passes(data_dir: Path) -> list[Pass]:
    """The SLA evaluator passes saved in ``data_dir``, one per workspace that had one."""
    settings = Settings(data_dir=data_dir)
    metadata, passes = MetadataRepository(settings.metadata_path), PassStore(settings.metadata_path)
    try:
        saved = [passes.load(workspace.id) for workspace in metadata.workspaces()]
    finally:
        metadata.close()
        passes.close()
    return [kept for kept in saved if kept is not None]


def test_cli_import_and_query(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    _cli(env, "workspace", "create", "default", "--timezone", "Europe/Berlin")
    ndjson = tmp_path / "tickets.ndjson"
    ndjson.write_bytes(b"\n".join(orjson.dumps(row) for row in postings(3, 200)) + b"\n{broken\n")
    csv_file = tmp_path / "more.csv"
    csv_file.write_text(
        "ticket_id,created_at,priority,status,satisfaction_score,tags\n"
        'X1,2025-03-01 10:00:00,High,resolved,5,"a,b"\n'
        "X2,2025-03-01 11:00:00,low,open,,\n"
        "X3,not a date,low,open,,\n"
    )
    # What the SLA pipes evaluated is saved for the server's first start; a batch step under its
    # own time limit, not a request's (a 1 ms query limit does not stop it).
    output = _cli({**env, "SUPPORTLENS_QUERY_TIMEOUT_SECONDS": "0.001"}, "import", str(ndjson), str(csv_file))
    assert "1 quarantined" in output
    assert re.search(r"SLA pipes of 'default' prepared in \d+\.\d s", output)
    assert _saved_sla_workspaces(tmp_path / "data") == 1
    # After the SLA evaluator's first pass (its findings written): the server's go on from it.
    (first_pass,) = _evaluator_passes(tmp_path / "data")
    assert first_pass.settled is not None
    assert first_pass.settled <= first_pass.began
    # Unless asked not to.
    elsewhere = cli_env(tmp_path / "elsewhere")
    _cli(elsewhere, "workspace", "create", "default")
    output = _cli(elsewhere, "import", str(csv_file), "--no-prepare-sla")
    assert "2 rows imported" in output
    assert "SLA pipes" not in output
    assert _saved_sla_workspaces(tmp_path / "elsewhere") == 0
    assert _evaluator_passes(tmp_path / "elsewhere") == []
    metrics = json.loads(
        _cli(
            env,
            "query",
            "ticket_metrics",
            "-p",
            "start_date=2020-01-01",
            "-p",
            "end_date=2030-01-01",
            "--format",
            "json",
        )
    )
    assert metrics[0]["total_tickets"] == 202
    details = json.loads(_cli(env, "query", "ticket_details", "-p", "ticket_id=X1", "--format", "json"))
    assert details[0]["priority"] == "high"
    assert details[0]["tags"] == ["a", "b"]
    table = _cli(env, "query", "sla_performance", "-p", "start_date=2020-01-01")
    assert "priority" in table


def test_cli_demo_fills_a_workspace(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    output = _cli(
        env, "demo", "--tickets", "3000", "--days", "30", "--activity-tickets", "400", "-w", "sandbox"
    )
    assert "3000 tickets written" in output
    assert "400 tickets over the last 14 days" in output
    assert "Demo desk: 60 tickets" in output
    assert "SLA pipes of 'sandbox' prepared" in output
    assert _saved_sla_workspaces(tmp_path / "data") == 1
    metrics = json.loads(_cli(env, "query", "ticket_metrics", "-w", "sandbox", "--format", "json"))
    assert metrics[0]["total_tickets"] == 3460  # snapshots, activity log and the desk's tickets
    assert metrics[0]["avg_first_response_time_minutes"] is not None
    agents = json.loads(_cli(env, "query", "agent_performance", "-w", "sandbox", "--format", "json"))
    assert len(agents) > 5
    # The tickets known by their activity log fill the history-based pipes.
    spent = json.loads(_cli(env, "query", "time_in_status", "-w", "sandbox", "--format", "json"))
    assert sum(row["tickets"] for row in spent) >= 400
    per_ticket = _cli(
        env, "query", "ticket_time_metrics", "-p", "business_hours=true", "-w", "sandbox", "--format", "json"
    )
    assert any(row["has_activity_log"] for row in json.loads(per_ticket))


def test_cli_tokens(tmp_path: Path) -> None:
    env = {**os.environ, "SUPPORTLENS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "250"}
    _cli(env, "workspace", "create", "acme")
    secret = (
        _cli(
            env,
            "token",
            "create",
            "portal",
            "-s",
            "read",
            "--pipe",
            "ticket_metrics",
            "--filter",
            "customer_id=C789",
            "-w",
            "acme",
        )
        .strip()
        .splitlines()[-1]
    )
    assert secret.startswith("sl_")
    listing = _cli(env, "token", "list", "-w", "acme")
    assert "customer_id=C789" in listing
    assert secret not in listing  # secrets are never shown again
    metadata = MetadataRepository(tmp_path / "data" / "metadata.sqlite")
    token = metadata.authenticate(secret)
    assert token is not None
    assert token.fixed_filters == {"customer_id": "C789"}
    assert token.can_read_pipe("ticket_metrics")
    assert not token.can_read_pipe("agent_performance")
    _cli(env, "token", "revoke", token.id, "-w", "acme")
    assert metadata.authenticate(secret) is None
    metadata.close()
    bad = subprocess.run(
        [*CLI, "token", "create", "x", "-s", "write", "-w", "acme"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "scopes are admin, append and read" in bad.stderr


def test_the_server_log_carries_supportlens_records_and_no_token(tmp_path: Path) -> None:
    """``serve`` shows SupportLens' own records (here the store opening), with their time and
    source, next to uvicorn's; without a handler Python would show only warnings.  A token passed
    in the query string (as Tinybird clients do) is redacted from the access line."""
    log = tmp_path / "server.log"
    data = tmp_path / "data"
    data.mkdir()
    env = server_env(data)
    token = create_workspace(env, "logged")
    with ServerProcess(env, log) as server:
        url = server.start()
        answer = httpx.get(f"{url}/v0/pipes/ticket_details.json?limit=1&token={token}", timeout=30)
        assert answer.status_code == 200
        refused = httpx.get(f"{url}/v0/pipes/ticket_details.json?token={token}x&limit=1", timeout=30)
        assert refused.status_code == 401
    text = log.read_text()
    lines = text.splitlines()
    opened = [line for line in lines if "supportlens.runtime: store open: duckdb engine" in line]
    assert len(opened) == 1, lines
    assert re.match(r"INFO: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} supportlens\.runtime: ", opened[0]), opened
    assert token not in text
    assert '"GET /v0/pipes/ticket_details.json?limit=1&token=[redacted] HTTP/1.1" 200' in text
    assert '"GET /v0/pipes/ticket_details.json?token=[redacted]&limit=1 HTTP/1.1" 401' in text
