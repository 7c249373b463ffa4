"""The store records its schema version and refuses to be misread by an older SupportLens."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from supportlens.analytics.pipes import PIPES
from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from supportlens.store import StoreURLError, create_engine
from supportlens.store.clickhouse.engine import ClickHouseEngine
from supportlens.store.duckdb.engine import DuckDBEngine
from supportlens.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TICKET_EVENTS,
    TICKET_SNAPSHOTS,
    TICKETS,
    AddColumn,
    SchemaError,
    Table,
)
from tests.conftest import make_settings, store_url
from tests.randomized import postings


def test_version_is_recorded_and_a_newer_store_is_refused(engine_name: str, tmp_path: Path) -> None:
    url = store_url(engine_name, tmp_path)
    engine = create_engine(url)
    engine.open()
    assert engine._schema_version() == SCHEMA_VERSION
    engine._set_schema_version(SCHEMA_VERSION + 1)  # as if a later release had written it
    engine.close()
    reopened = create_engine(url)
    with pytest.raises(SchemaError, match="newer SupportLens"):
        reopened.open()
    reopened.close()


def test_reopening_keeps_data_and_version(engine_name: str, tmp_path: Path) -> None:
    url = store_url(engine_name, tmp_path)
    for _ in range(2):
        engine = create_engine(url)
        engine.open()
        assert engine._schema_version() == SCHEMA_VERSION
        engine.close()


@pytest.mark.parametrize("url", ["sqlite:///x", "nothing", "duckdb://"])
def test_bad_store_urls(url: str) -> None:
    with pytest.raises(StoreURLError):
        create_engine(url)


def downgrade(
    url: str, version: int, *, columns: Sequence[tuple[Table, str]] = (), tables: Sequence[Table] = ()
) -> None:
    """Turn a current store into what an older version wrote: without these columns and tables,
    and marked with ``version``."""
    engine = create_engine(url)
    engine.open()
    statements = [f"ALTER TABLE {table.name} DROP COLUMN {column}" for table, column in columns]
    statements += [f"DROP TABLE {table.name}" for table in tables]
    if isinstance(engine, DuckDBEngine):
        for statement in [*statements, "DELETE FROM schema_version"]:
            engine.conn.execute(statement)
    elif isinstance(engine, ClickHouseEngine):
        for statement in [*statements, "TRUNCATE TABLE schema_version"]:
            engine._command(statement)
    engine._set_schema_version(version)
    assert engine._schema_version() == version
    engine.close()


def _make_version_1(url: str) -> None:
    """What version 1 wrote: no derived columns, no activity log."""
    derived = [
        step.column.name for step in MIGRATIONS[2] if isinstance(step, AddColumn) and step.table is TICKETS
    ]
    columns = [(table, column) for table in (TICKETS, TICKET_SNAPSHOTS) for column in derived]
    downgrade(url, 1, columns=columns, tables=[TICKET_EVENTS])


def test_a_version_1_store_is_upgraded_on_open(engine_name: str, tmp_path: Path) -> None:
    settings = make_settings(engine_name, tmp_path)
    runtime = Runtime.open(settings)
    workspace = runtime.metadata.create_workspace("w")
    rows = [RawRow(row, "") for row in postings(11, 300)]
    runtime.ingest.ingest(workspace.id, "support_tickets", rows).committed.result()
    window = {"start_date": "2024-01-01", "end_date": "2026-12-31", "as_of": "2027-01-01"}
    before = {name: runtime.run_pipe(name, workspace, window).rows for name in PIPES}
    runtime.close()
    _make_version_1(settings.store_url)
    upgraded = Runtime.open(settings)  # upgrades on open
    try:
        assert upgraded.engine._schema_version() == SCHEMA_VERSION
        after = {name: upgraded.run_pipe(name, workspace, window).rows for name in PIPES}
        assert after == before
        upgraded.ingest.ingest(workspace.id, "support_tickets", rows[:10]).committed.result()
        assert upgraded.run_pipe("ticket_metrics", workspace, window).rows == before["ticket_metrics"]
        event = {"event_id": "e1", "ticket_id": "new", "at": "2024-05-01T00:00:00Z", "type": "created"}
        upgraded.ingest.ingest(workspace.id, "ticket_events", [RawRow(event, "")]).committed.result()
        assert upgraded.engine.count(TICKET_EVENTS, workspace.id) == 1  # the log created by the upgrade
    finally:
        upgraded.close()
