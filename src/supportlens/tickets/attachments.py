"""Where attachments live: each file's bytes once, named by their SHA-256, under
``<data_dir>/attachments/<sha256[:2]>/<sha256>`` (the same bytes attached twice are stored once),
and a row per attachment in the metadata SQLite file saying whose it is (workspace, ticket,
comment), its name and its type.

A file is written to a temporary name, flushed to disk and renamed into place, so a reader finds
the whole file or none; its row is added after that, so no row ever points at a missing file.
Every method is scoped by workspace id.  Only ``CheckedFile``\\ s (tickets/attachment_checks.py)
are stored.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from supportlens.auth.repository import NotFound
from supportlens.config import Settings
from supportlens.sqlite import SqliteStore
from supportlens.tickets.attachment_checks import CheckedFile
from supportlens.tickets.records import from_ms, now_ms, to_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attachments (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    comment_id TEXT,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attachments_ticket ON attachments (workspace_id, ticket_id);
CREATE INDEX IF NOT EXISTS attachments_comment ON attachments (workspace_id, comment_id)
    WHERE comment_id IS NOT NULL;
"""


@dataclass(frozen=True, slots=True)
class Attachment:
    id: str
    workspace_id: str
    ticket_id: str
    comment_id: str | None
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


_FIELDS = tuple(field.name for field in fields(Attachment))  # the table's columns, in this order
_COLUMNS = ", ".join(_FIELDS)


class AttachmentStore(SqliteStore):
    def __init__(self, directory: Path, metadata_path: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes  # the limit callers check files against (checked_file)
        super().__init__(metadata_path, _SCHEMA)

    @classmethod
    def open(cls, settings: Settings) -> AttachmentStore:
        return cls(
            settings.data_dir / "attachments", settings.metadata_path, max_bytes=settings.attachment_max_bytes
        )

    def put(
        self, workspace_id: str, ticket_id: str, file: CheckedFile, *, comment_id: str | None = None
    ) -> Attachment:
        """Stores the file (unless the same bytes are already stored) and a new attachment of it."""
        digest = hashlib.sha256(file.data).hexdigest()
        self._write_blob(digest, file.data)
        attachment = Attachment(
            id=f"att_{secrets.token_hex(10)}",
            workspace_id=workspace_id,
            ticket_id=ticket_id,
            comment_id=comment_id,
            filename=file.filename,
            content_type=file.content_type,
            size=len(file.data),
            sha256=digest,
            created_at=now_ms(),
        )
        with self._lock:
            self._conn.execute(
                f"INSERT INTO attachments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    attachment.id,
                    workspace_id,
                    ticket_id,
                    comment_id,
                    attachment.filename,
                    attachment.content_type,
                    attachment.size,
                    digest,
                    to_ms(attachment.created_at),
                ),
            )
        return attachment

    def get(self, workspace_id: str, attachment_id: str) -> Attachment:
        """The workspace's attachment; NotFound when there is none (also when the id is another
        workspace's: whether it exists there is not this caller's business)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM attachments WHERE workspace_id = ? AND id = ?",
                (workspace_id, attachment_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"no attachment {attachment_id!r}")
        return _attachment(row)

    def content_path(self, attachment: Attachment) -> Path:
        """The file holding the attachment's bytes (read-only: other attachments may share it)."""
        return self._blob_path(attachment.sha256)

    def list_for_ticket(self, workspace_id: str, ticket_id: str) -> list[Attachment]:
        """The ticket's attachments (its comments' included), oldest first."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM attachments WHERE workspace_id = ? AND ticket_id = ? ORDER BY rowid",
                (workspace_id, ticket_id),
            ).fetchall()
        return [_attachment(row) for row in rows]

    def list_for_comments(self, workspace_id: str, comment_ids: Sequence[str]) -> dict[str, list[Attachment]]:
        """The attachments of each of the comments (a page of them at once), oldest first; comments
        without any are left out."""
        if not comment_ids:
            return {}
        placeholders = ", ".join("?" * len(comment_ids))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM attachments WHERE workspace_id = ?"
                f" AND comment_id IN ({placeholders}) ORDER BY rowid",
                (workspace_id, *comment_ids),
            ).fetchall()
        found: dict[str, list[Attachment]] = {}
        for row in rows:
            found.setdefault(row[3], []).append(_attachment(row))  # row[3]: comment_id
        return found

    def _blob_path(self, digest: str) -> Path:
        return self.directory / digest[:2] / digest

    def _write_blob(self, digest: str, data: bytes) -> None:
        target = self._blob_path(digest)
        if target.exists():  # only ever created whole, by the rename below
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _fsync_directory(target.parent)  # the rename itself survives a crash


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _attachment(row: Sequence[Any]) -> Attachment:
    values = dict(zip(_FIELDS, row, strict=True))
    values["created_at"] = from_ms(values["created_at"])
    return Attachment(**values)
