"""The small SQLite files beside the analytics store (workspaces, tokens, configuration, ticket
records): small rows updated in place, which suits a transactional row store; see docs/decisions.md."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def connect(path: Path, schema: str) -> sqlite3.Connection:
    """One connection shared by threads (callers hold their own lock), in WAL mode so readers
    never wait for a writer, with foreign keys on and ``schema`` (CREATE ... IF NOT EXISTS) applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(schema)
    return conn


def add_missing_columns(conn: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Columns added to ``table`` after files were created with it (name -> type and default):
    ``CREATE TABLE IF NOT EXISTS`` leaves an existing table as it was."""
    present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    for name, definition in columns.items():
        if name not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")


class SqliteStore:
    """A repository on one SQLite connection shared by threads: every use holds ``_lock``; several
    statements that must hold together run in ``_transaction``."""

    def __init__(self, path: Path, schema: str) -> None:
        self._conn = connect(path, schema)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE: the write lock up front, so that a read and the write depending on it (an
        # If-Match check, a claimed row) cannot interleave with another writer, thread or process.
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
