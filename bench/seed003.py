"""Seed 003's approach to per-ticket times, **reconstructed**: the baseline of ``bench/activity.py``.

Seed 003 ("FRESHDESK Tickets") describes three scripts: ``ticket_gen.py`` writes Freshdesk
ticket-activity exports (JSON), ``export_json.py`` ingests them "into an sqlite database", and
``sql_queries.py`` "uses SQL queries to determine" per ticket: time spent Open, time spent Waiting
on Customer, time spent waiting for response (Pending), time till resolution and time to first
response, each written to a CSV file.  Only that description survives; the scripts themselves are
not available.  This module is our reconstruction of them as a typical, plain solution of that
challenge would be written, so that the benchmark has something concrete to measure.  It is not
the seed's code, and its figures are not the seed author's figures.

What we reconstructed, and the choices we made:

* **Loading** (``export_json.py``): each export file is read with :func:`json.load`; every activity
  becomes a row of ``activities(activity_id, ticket_id, performed_at, performer_type,
  performer_id)``; an activity with a ``status`` key (including the ``new_ticket`` activity, which
  carries the initial status) also gets a row in ``status_changes(activity_id, status)``, and one
  with a ``note`` a row in ``notes(activity_id, note_id, type)``.  ``performed_at``
  (``DD-MM-YYYY HH:MM:SS +ZZZZ``, which does not sort) is converted with
  :meth:`datetime.strptime` to UTC ISO text ``YYYY-MM-DD HH:MM:SS``, which sorts and which SQLite's
  date functions read.  Rows go in with :meth:`sqlite3.Cursor.executemany`, one transaction per
  file.  Other activity keys (priority, group, custom fields...) are not needed by the five
  queries and are not stored.
* **Indexes**: ``activity_id`` is the ``INTEGER PRIMARY KEY`` of all three tables (an activity has
  at most one status and one note), and after loading we create the obvious index
  ``activities(ticket_id, performed_at)`` that the self-join needs.  Without it the correlated
  subquery scans the whole table per status change (quadratic): we give the baseline the index so
  that it is not a straw man.  SQLite's other settings are left at their defaults.
* **Time in a status** (``sql_queries.py``, one query per status): for every status activity of
  that status, the next status activity of the same ticket is found by a correlated self-join,
  ``MIN(b.performed_at) WHERE b.ticket_id = a.ticket_id AND b.performed_at > a.performed_at``,
  and the differences are summed per ticket.  The status in force at the end of the data has no
  next status activity: its interval is ``NULL`` and ``SUM`` skips it (a plain inner-style
  self-join counts completed intervals only).
* **Time till resolution**: the first ``Resolved`` or ``Closed`` status activity minus the
  ticket's first activity.  **Time to first response**: the first note of type 0 (reply),
  4 (public note) or 5 (phone note) minus the ticket's first activity, whoever wrote it.
* Durations are calendar hours: ``(julianday(end) - julianday(start)) * 24``.  The five queries
  run one after the other and every result row is fetched into Python; writing the CSV files is
  not timed (that only favours the baseline).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE activities (
    activity_id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL,
    performed_at TEXT NOT NULL,
    performer_type TEXT,
    performer_id INTEGER
);
CREATE TABLE status_changes (
    activity_id INTEGER PRIMARY KEY REFERENCES activities (activity_id),
    status TEXT NOT NULL
);
CREATE TABLE notes (
    activity_id INTEGER PRIMARY KEY REFERENCES activities (activity_id),
    note_id INTEGER,
    type INTEGER
);
"""
INDEX = "CREATE INDEX activities_ticket_time ON activities (ticket_id, performed_at)"

_NEXT_STATUS_AT = """(
        SELECT MIN(b.performed_at)
        FROM activities AS b
        JOIN status_changes AS sb ON sb.activity_id = b.activity_id
        WHERE b.ticket_id = a.ticket_id AND b.performed_at > a.performed_at
    )"""

TIME_IN_STATUS = f"""
SELECT a.ticket_id,
       SUM((julianday({_NEXT_STATUS_AT}) - julianday(a.performed_at)) * 24.0) AS hours
FROM activities AS a
JOIN status_changes AS sa ON sa.activity_id = a.activity_id
WHERE sa.status = ?
GROUP BY a.ticket_id
ORDER BY a.ticket_id
"""

_FIRST_ACTIVITY = "SELECT ticket_id, MIN(performed_at) AS first_at FROM activities GROUP BY ticket_id"

TIME_TILL_RESOLUTION = f"""
SELECT f.ticket_id, (julianday(r.resolved_at) - julianday(f.first_at)) * 24.0 AS hours
FROM ({_FIRST_ACTIVITY}) AS f
JOIN (
    SELECT a.ticket_id, MIN(a.performed_at) AS resolved_at
    FROM activities AS a
    JOIN status_changes AS s ON s.activity_id = a.activity_id
    WHERE s.status IN ('Resolved', 'Closed')
    GROUP BY a.ticket_id
) AS r ON r.ticket_id = f.ticket_id
ORDER BY f.ticket_id
"""

TIME_TO_FIRST_RESPONSE = f"""
SELECT f.ticket_id, (julianday(r.responded_at) - julianday(f.first_at)) * 24.0 AS hours
FROM ({_FIRST_ACTIVITY}) AS f
JOIN (
    SELECT a.ticket_id, MIN(a.performed_at) AS responded_at
    FROM activities AS a
    JOIN notes AS n ON n.activity_id = a.activity_id
    WHERE n.type IN (0, 4, 5)
    GROUP BY a.ticket_id
) AS r ON r.ticket_id = f.ticket_id
ORDER BY f.ticket_id
"""

# The seed's five outputs: (name, SQL, parameters).
QUERIES: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    ("time_spent_open", TIME_IN_STATUS, ("Open",)),
    ("time_spent_waiting_on_customer", TIME_IN_STATUS, ("Waiting for Customer",)),
    ("time_spent_waiting_for_response", TIME_IN_STATUS, ("Pending",)),
    ("time_till_resolution", TIME_TILL_RESOLUTION, ()),
    ("time_to_first_response", TIME_TO_FIRST_RESPONSE, ()),
)


def _utc_text(performed_at: str) -> str:
    moment = datetime.strptime(performed_at, "%d-%m-%Y %H:%M:%S %z")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True, slots=True)
class LoadStats:
    activities: int
    status_changes: int
    notes: int
    insert_seconds: float  # reading the JSON files and inserting (export_json.py)
    index_seconds: float  # CREATE INDEX after the load


def load(database: Path, files: Iterable[Path]) -> LoadStats:
    """``export_json.py``: a fresh SQLite file holding the activities of ``files``, in order."""
    database.unlink(missing_ok=True)
    connection = sqlite3.connect(database)
    try:
        connection.executescript(SCHEMA)
        started = time.perf_counter()
        next_id = 1
        counts = [0, 0, 0]
        for path in files:
            with path.open("rb") as handle:
                export = json.load(handle)
            activities: list[tuple[int, int, str, str, int | None]] = []
            statuses: list[tuple[int, str]] = []
            notes: list[tuple[int, int, int]] = []
            for item in export["activities_data"]:
                activities.append(
                    (
                        next_id,
                        int(item["ticket_id"]),
                        _utc_text(item["performed_at"]),
                        item["performer_type"],
                        item["performer_id"],
                    )
                )
                activity = item["activity"]
                if "status" in activity:
                    statuses.append((next_id, activity["status"]))
                note = activity.get("note")
                if note is not None:
                    notes.append((next_id, note["id"], note["type"]))
                next_id += 1
            with connection:
                connection.executemany("INSERT INTO activities VALUES (?, ?, ?, ?, ?)", activities)
                connection.executemany("INSERT INTO status_changes VALUES (?, ?)", statuses)
                connection.executemany("INSERT INTO notes VALUES (?, ?, ?)", notes)
            counts[0] += len(activities)
            counts[1] += len(statuses)
            counts[2] += len(notes)
        inserted = time.perf_counter()
        with connection:
            connection.execute(INDEX)
        indexed = time.perf_counter()
    finally:
        connection.close()
    return LoadStats(counts[0], counts[1], counts[2], inserted - started, indexed - inserted)


@dataclass(frozen=True, slots=True)
class QueryRun:
    name: str
    seconds: float
    rows: list[tuple[int, float | None]]  # (ticket_id, hours), by ticket_id


def query_plans(database: Path) -> dict[str, list[str]]:
    """``EXPLAIN QUERY PLAN`` of each query (to show the index is used)."""
    connection = sqlite3.connect(database)
    try:
        return {
            name: [str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            for name, sql, params in QUERIES
        }
    finally:
        connection.close()


def run_queries(database: Path, names: Sequence[str] | None = None) -> list[QueryRun]:
    """``sql_queries.py``: each query on a fresh connection's cursor, every row fetched."""
    connection = sqlite3.connect(database)
    runs: list[QueryRun] = []
    try:
        for name, sql, params in QUERIES:
            if names is not None and name not in names:
                continue
            started = time.perf_counter()
            rows = connection.execute(sql, params).fetchall()
            runs.append(QueryRun(name, time.perf_counter() - started, rows))
    finally:
        connection.close()
    return runs
