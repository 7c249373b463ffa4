"""Rows rejected at ingestion, with the column at fault, the reason and the raw row as received."""

from __future__ import annotations

from datetime import UTC

from supportlens.analytics.common import PipeContext, PipeResult
from supportlens.ingest.timestamps import format_timestamp
from supportlens.store.base import ParamType
from supportlens.store.schema import QUARANTINE

COLUMNS = [
    ("received_at", "DateTime64(3)"),
    ("column_name", "String"),
    ("error", "String"),
    ("raw", "String"),
]


def quarantined_rows(context: PipeContext, datasource: str, *, limit: int, offset: int) -> PipeResult:
    dialect = context.engine.dialect
    params = {"ws": context.scope.workspace_id, "datasource": datasource}
    where = (
        f"workspace_id = {dialect.param('ws', ParamType.STRING)} "
        f"AND datasource = {dialect.param('datasource', ParamType.STRING)}"
    )
    total = context.engine.fetch(
        f"SELECT count(*) FROM {dialect.table(QUARANTINE)} WHERE {where}", params, timeout=context.timeout
    )
    result = context.engine.fetch(
        f"SELECT received_at, column_name, error, raw FROM {dialect.table(QUARANTINE)} WHERE {where} "
        f"ORDER BY received_at DESC, seq DESC LIMIT {int(limit)} OFFSET {int(offset)}",
        params,
        timeout=context.timeout,
    )
    rows = [
        {
            "received_at": format_timestamp(row[0] if row[0].tzinfo else row[0].replace(tzinfo=UTC)),
            "column_name": row[1],
            "error": row[2],
            "raw": row[3],
        }
        for row in result.rows
    ]
    matched = int(total.rows[0][0])
    return PipeResult(COLUMNS, rows, matched, total.elapsed + result.elapsed, rows_before_limit=matched)
