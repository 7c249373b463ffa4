"""Load (issue 7, point 6), short form: a few concurrent clients mixing reads of every pipe with
event ingestion against a live server over demo data, without a single error, in every run of
``load.RUNS`` (exact reads or reads that accept answers up to a minute old, single-ticket or batch
posts).  The long form
(``SUPPORTLENS_RELIABILITY=long``: 50 clients, 60 s, 1,000,000 tickets) reports throughput and
latency in build/reliability/load.json; ``python -m tests.reliability.load`` runs it by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.live_process import long_form
from tests.reliability.load import RUNS, run

pytestmark = pytest.mark.e2e


def test_mixed_load_without_errors(tmp_path: Path) -> None:
    if long_form():
        figures = run(tmp_path, clients=50, seconds=60, tickets=1_000_000, activity_tickets=20_000)
    else:
        figures = run(tmp_path, clients=10, seconds=5, tickets=5_000, activity_tickets=500)
    assert set(figures["runs"]) == set(RUNS)
    for name, figures_of_run in figures["runs"].items():
        assert figures_of_run["requests"] > 0, name
        assert figures_of_run["kinds"].get("ingest", {}).get("requests", 0) > 0, name
        assert figures_of_run["errors"] == 0, (name, figures_of_run["error_examples"])
