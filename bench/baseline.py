"""The chDB baseline: the same tickets in an embedded ClickHouse MergeTree table ordered by
``created_at``, and the six endpoints written directly in ClickHouse SQL.

The SQL follows docs/pipes.md: counts; averages of minutes (from whole milliseconds) and of
satisfaction skipping nulls; SLA met counts with per-priority thresholds (urgent takes the high one,
other or no priority the default); a ticket list with its total before ``LIMIT``; category
percentages; medians and p90s with ``quantileExactInclusive``; every day of the window in
time_trends.  Each query returns its final answer as ClickHouse JSON, so the timing covers the
whole work of an endpoint except HTTP.  What this baseline does not do and SupportLens does: look up
a token, resolve each ticket's current state (one row per ticket here, as generated), and run in a
separate server process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
from chdb import session as chdb_session

from bench.cases import DETAIL_LIMIT, Case, Window

_STRUCTURE = (
    "ticket_id String, customer_id Nullable(String), agent_id Nullable(String), "
    "category LowCardinality(Nullable(String)), priority LowCardinality(Nullable(String)), "
    "status LowCardinality(Nullable(String)), created_at DateTime64(3, 'UTC'), "
    "first_response_at Nullable(DateTime64(3, 'UTC')), resolved_at Nullable(DateTime64(3, 'UTC')), "
    "satisfaction_score Nullable(Int16), tags Array(String), updated_at Nullable(DateTime64(3, 'UTC')), "
    "channel LowCardinality(Nullable(String)), subject Nullable(String)"
)
_Session: Any = chdb_session.Session  # chdb ships no type hints
_SETTINGS = " SETTINGS output_format_json_quote_64bit_integers = 0"

_RESPONSE_MS = "(toUnixTimestamp64Milli(first_response_at) - toUnixTimestamp64Milli(created_at))"
_RESOLUTION_MS = "(toUnixTimestamp64Milli(resolved_at) - toUnixTimestamp64Milli(created_at))"
_RESOLVED = "status IN ('resolved', 'closed')"
# Default thresholds of docs/pipes.md, in minutes; urgent takes the high one when not given.
_RESPONSE_SLA_MS = (
    "(multiIf(priority = 'urgent', 30, priority = 'high', 30, priority = 'medium', 60, "
    "priority = 'low', 120, 60) * 60000)"
)
_RESOLUTION_SLA_MS = (
    "(multiIf(priority = 'urgent', 240, priority = 'high', 240, priority = 'medium', 480, "
    "priority = 'low', 1440, 480) * 60000)"
)
_AVERAGES = (
    f"round(avg({_RESOLUTION_MS}) / 60000, 2) AS avg_resolution_time_minutes, "
    f"round(avg({_RESPONSE_MS}) / 60000, 2) AS avg_response_time_minutes, "
    "round(avg(satisfaction_score), 2) AS avg_satisfaction_score"
)


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _timestamp(text: str) -> str:
    return f"toDateTime64({_literal(text)}, 3, 'UTC')"


class ChdbBaseline:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._session: Any = _Session(str(path))

    def close(self) -> None:
        self._session.close()

    def query(self, sql: str) -> bytes:
        result = self._session.query(sql, "JSON")
        data: bytes = result.bytes()
        return data

    def version(self) -> str:
        rows = orjson.loads(self.query("SELECT version() AS v"))["data"]
        return str(rows[0]["v"])

    def load(self, ndjson: Path) -> tuple[float, float]:
        """Create the table and insert the NDJSON file; (insert seconds, OPTIMIZE FINAL seconds)."""
        self._session.query(f"CREATE TABLE tickets ({_STRUCTURE}) ENGINE = MergeTree ORDER BY created_at")
        started = time.perf_counter()
        self._session.query(
            "INSERT INTO tickets SELECT * FROM "
            f"file({_literal(str(ndjson))}, 'JSONEachRow', {_literal(_STRUCTURE)})"
        )
        inserted = time.perf_counter()
        self._session.query("OPTIMIZE TABLE tickets FINAL")
        return inserted - started, time.perf_counter() - inserted

    def count(self) -> int:
        return int(orjson.loads(self.query(f"SELECT count() AS n FROM tickets{_SETTINGS}"))["data"][0]["n"])

    def run(self, case: Case, window: Window) -> list[dict[str, Any]]:
        """The endpoint's answer rows (one or two queries, as the endpoint needs)."""
        answers = [orjson.loads(self.query(sql)) for sql in self.sql(case, window)]
        rows: list[dict[str, Any]] = answers[-1]["data"]
        return rows

    def call(self, case: Case, window: Window) -> list[bytes]:
        """What is timed: the queries of one endpoint call, answers as JSON bytes."""
        return [self.query(sql) for sql in self.sql(case, window)]

    def sql(self, case: Case, window: Window) -> list[str]:
        where = (
            f"created_at >= {_timestamp(window.start_text)} AND created_at <= {_timestamp(window.end_text)}"
        )
        if case.filter is not None:
            where += f" AND {case.filter[0]} = {_literal(case.filter[1])}"
        builder = getattr(self, f"_{case.endpoint}")
        queries: list[str] = builder(where, window)
        return [q + _SETTINGS for q in queries]

    @staticmethod
    def _time_trends(where: str, window: Window) -> list[str]:
        first, last = _literal(window.start.strftime("%Y-%m-%d")), _literal(window.end.strftime("%Y-%m-%d"))
        return [
            "SELECT concat(toString(day), ' 00:00:00') AS time_period, ticket_count, resolved_tickets, "
            "avg_resolution_time_minutes, avg_response_time_minutes, avg_satisfaction_score FROM ("
            "SELECT toDate(created_at) AS day, count() AS ticket_count, "
            f"countIf({_RESOLVED}) AS resolved_tickets, "
            f"{_AVERAGES} FROM tickets WHERE {where} GROUP BY day "
            f"ORDER BY day WITH FILL FROM toDate({first}) TO toDate({last}) + 1)"
        ]

    @staticmethod
    def _sla_performance(where: str, window: Window) -> list[str]:
        return [
            "SELECT priority, count() AS total_tickets, "
            f"countIf({_RESPONSE_MS} <= {_RESPONSE_SLA_MS}) AS met_response_sla, "
            f"countIf({_RESOLUTION_MS} <= {_RESOLUTION_SLA_MS}) AS met_resolution_sla, "
            "round(100 * met_response_sla / total_tickets, 2) AS response_sla_percentage, "
            "round(100 * met_resolution_sla / total_tickets, 2) AS resolution_sla_percentage "
            f"FROM tickets WHERE {where} GROUP BY priority "
            "ORDER BY multiIf(priority IS NULL, 5, priority = 'urgent', 0, priority = 'high', 1, "
            "priority = 'medium', 2, priority = 'low', 3, 4), priority"
        ]

    @staticmethod
    def _agent_performance(where: str, window: Window) -> list[str]:
        return [
            "SELECT agent_id, count() AS tickets_handled, "
            f"countIf({_RESOLVED}) AS resolved_tickets, "
            "round(100 * resolved_tickets / tickets_handled, 2) AS resolution_rate, "
            "round(avg(satisfaction_score), 2) AS avg_satisfaction, "
            f"round(avg({_RESOLUTION_MS}) / 60000, 2) AS avg_resolution_time_minutes, "
            f"round(avg({_RESPONSE_MS}) / 60000, 2) AS avg_response_time_minutes, "
            f"countIf({_RESPONSE_MS} <= {_RESPONSE_SLA_MS}) AS met_response_sla, "
            "round(100 * met_response_sla / tickets_handled, 2) AS response_sla_percentage "
            f"FROM tickets WHERE {where} GROUP BY agent_id "
            "ORDER BY tickets_handled DESC, agent_id ASC NULLS LAST"
        ]

    @staticmethod
    def _ticket_details(where: str, window: Window) -> list[str]:
        return [
            f"SELECT count() AS n FROM tickets WHERE {where}",
            "SELECT ticket_id, customer_id, agent_id, category, priority, status, created_at, "
            "first_response_at, resolved_at, satisfaction_score, tags, updated_at, channel, subject, "
            f"round({_RESPONSE_MS} / 60000, 2) AS response_time_minutes, "
            f"round({_RESOLUTION_MS} / 60000, 2) AS resolution_time_minutes "
            f"FROM tickets WHERE {where} ORDER BY created_at DESC, ticket_id ASC LIMIT {DETAIL_LIMIT}",
        ]

    @staticmethod
    def _category_analysis(where: str, window: Window) -> list[str]:
        return [
            "SELECT category, count() AS ticket_count, "
            "round(100 * ticket_count / sum(count()) OVER (), 2) AS percentage_of_total, "
            f"{_AVERAGES} FROM tickets WHERE {where} GROUP BY category "
            "ORDER BY ticket_count DESC, category ASC NULLS LAST"
        ]

    @staticmethod
    def _ticket_metrics(where: str, window: Window) -> list[str]:
        quantiles = ", ".join(
            f"round(quantileExactInclusive({level})({expression}) / 60000, 2) AS {name}"
            for name, level, expression in (
                ("median_resolution_time_minutes", 0.5, _RESOLUTION_MS),
                ("p90_resolution_time_minutes", 0.9, _RESOLUTION_MS),
                ("median_first_response_time_minutes", 0.5, _RESPONSE_MS),
                ("p90_first_response_time_minutes", 0.9, _RESPONSE_MS),
            )
        )
        return [
            f"SELECT {_literal(window.start_text)} AS start_date, {_literal(window.end_text)} AS end_date, "
            f"count() AS total_tickets, countIf({_RESOLVED}) AS resolved_tickets, "
            "total_tickets - resolved_tickets AS open_tickets, "
            f"round(avg({_RESOLUTION_MS}) / 60000, 2) AS avg_resolution_time_minutes, "
            f"round(avg({_RESPONSE_MS}) / 60000, 2) AS avg_first_response_time_minutes, "
            f"round(avg(satisfaction_score), 2) AS avg_satisfaction_score, {quantiles} "
            f"FROM tickets WHERE {where}"
        ]
