"""The small SQLite file beside the analytics store (workspaces, tokens, configuration): small
rows updated in place, which suits a transactional row store; see docs/decisions.md."""

from __future__ import annotations

import sqlite3
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
