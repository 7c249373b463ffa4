"""Notifications and their attempts, kept in the metadata SQLite file (small rows updated in place).

Who may attempt a pending notification is decided here: ``claim_due`` moves each due
notification's ``next_attempt_at`` past a lease in the same transaction that finds it, so two
retry passes (the background worker and a CLI, or two threads) never send the same one twice, and
one whose attempt was cut short by a crash is retried once the lease has passed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from supportlens.notify.records import (
    Attempt,
    Channel,
    Delivery,
    Notification,
    NotificationStatus,
    Outcome,
    Recipient,
)
from supportlens.sqlite import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    template TEXT NOT NULL,
    recipients TEXT NOT NULL,       -- JSON: [{address, name, role, status, provider_message_id, error}]
    subject TEXT,
    body TEXT NOT NULL,
    status TEXT NOT NULL,           -- pending | sent | failed
    attempts INTEGER NOT NULL,
    last_error TEXT,
    next_attempt_at TEXT,           -- UTC, fixed width: compared as text
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS notifications_of_ticket ON notifications (workspace_id, ticket_id, created_at);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS notification_attempts (
    notification_id TEXT NOT NULL REFERENCES notifications(id),
    number INTEGER NOT NULL,
    at TEXT NOT NULL,
    outcome TEXT NOT NULL,          -- sent | retryable_failure | permanent_failure
    error TEXT,
    PRIMARY KEY (notification_id, number)
);
"""

_COLUMNS = (
    "id, workspace_id, ticket_id, channel, template, recipients, subject, body, status, attempts,"
    " last_error, next_attempt_at, created_at, sent_at"
)


@dataclass(frozen=True, slots=True)
class NotificationPage:
    notifications: list[Notification]
    total: int


class NotificationRepository(SqliteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def insert(self, notification: Notification) -> None:
        with self._transaction():
            self._conn.execute(
                f"INSERT INTO notifications ({_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                (
                    notification.id,
                    notification.workspace_id,
                    notification.ticket_id,
                    notification.channel.value,
                    notification.template,
                    _deliveries_json(notification.deliveries),
                    notification.subject,
                    notification.body,
                    notification.status.value,
                    len(notification.attempts),
                    notification.last_error,
                    _time(notification.next_attempt_at),
                    _time(notification.created_at),
                    _time(notification.sent_at),
                ),
            )
            self._insert_attempts(notification.id, notification.attempts)

    def record_attempt(self, notification: Notification) -> None:
        """Store ``notification`` as its latest attempt left it (that attempt included)."""
        with self._transaction():
            self._conn.execute(
                "UPDATE notifications SET recipients = ?, status = ?, attempts = ?, last_error = ?,"
                " next_attempt_at = ?, sent_at = ? WHERE id = ?",
                (
                    _deliveries_json(notification.deliveries),
                    notification.status.value,
                    len(notification.attempts),
                    notification.last_error,
                    _time(notification.next_attempt_at),
                    _time(notification.sent_at),
                    notification.id,
                ),
            )
            self._insert_attempts(notification.id, notification.attempts[-1:])

    def of_ticket(self, workspace_id: str, ticket_id: str, *, offset: int, limit: int) -> NotificationPage:
        """The ticket's notifications, newest first."""
        with self._lock:
            (total,) = self._conn.execute(
                "SELECT count(*) FROM notifications WHERE workspace_id = ? AND ticket_id = ?",
                (workspace_id, ticket_id),
            ).fetchone()
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM notifications WHERE workspace_id = ? AND ticket_id = ?"
                " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                (workspace_id, ticket_id, limit, offset),
            ).fetchall()
            return NotificationPage(self._with_attempts(rows), total)

    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[Notification]:
        """Pending notifications due at ``now`` (oldest due first), each now reserved for the caller
        until ``lease_until``."""
        with self._transaction():
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM notifications WHERE status = 'pending' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at LIMIT ?",
                (_time(now), limit),
            ).fetchall()
            self._conn.executemany(
                "UPDATE notifications SET next_attempt_at = ? WHERE id = ?",
                [(_time(lease_until), row[0]) for row in rows],
            )
            return self._with_attempts(rows)

    def _insert_attempts(self, notification_id: str, attempts: Sequence[Attempt]) -> None:
        self._conn.executemany(
            "INSERT INTO notification_attempts (notification_id, number, at, outcome, error)"
            " VALUES (?, ?, ?, ?, ?)",
            [(notification_id, a.number, _time(a.at), a.outcome.value, a.error) for a in attempts],
        )

    def _with_attempts(self, rows: Sequence[Sequence[Any]]) -> list[Notification]:
        ids = [row[0] for row in rows]
        attempts: dict[str, list[Attempt]] = {notification_id: [] for notification_id in ids}
        if ids:
            for notification_id, number, at, outcome, error in self._conn.execute(
                "SELECT notification_id, number, at, outcome, error FROM notification_attempts"
                f" WHERE notification_id IN ({', '.join('?' * len(ids))}) ORDER BY number",
                ids,
            ):
                attempts[notification_id].append(
                    Attempt(number, datetime.fromisoformat(at), Outcome(outcome), error)
                )
        return [_notification(row, tuple(attempts[row[0]])) for row in rows]


def _notification(row: Sequence[Any], attempts: tuple[Attempt, ...]) -> Notification:
    (id_, workspace_id, ticket_id, channel, template, recipients, subject, body, status, _, last_error) = row[
        :11
    ]
    next_attempt_at, created_at, sent_at = row[11:]
    return Notification(
        id=id_,
        workspace_id=workspace_id,
        ticket_id=ticket_id,
        channel=Channel(channel),
        template=template,
        deliveries=tuple(_delivery(item) for item in orjson.loads(recipients)),
        subject=subject,
        body=body,
        status=NotificationStatus(status),
        attempts=attempts,
        last_error=last_error,
        next_attempt_at=_parse(next_attempt_at),
        created_at=datetime.fromisoformat(created_at),
        sent_at=_parse(sent_at),
    )


def _deliveries_json(deliveries: Sequence[Delivery]) -> str:
    return orjson.dumps(
        [
            {
                "address": d.recipient.address,
                "name": d.recipient.name,
                "role": d.recipient.role,
                "status": d.status.value,
                "provider_message_id": d.provider_message_id,
                "error": d.error,
            }
            for d in deliveries
        ]
    ).decode()


def _delivery(item: dict[str, Any]) -> Delivery:
    return Delivery(
        Recipient(item["address"], item["name"], item["role"]),
        NotificationStatus(item["status"]),
        item["provider_message_id"],
        item["error"],
    )


def _time(moment: datetime | None) -> str | None:
    """UTC with microseconds, always the same width: text order is time order."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
