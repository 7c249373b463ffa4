"""Telling people a connection keeps failing: an alert record (``/v1/connections/{id}/alerts``), a
warning in the log, and, when configured, a JSON POST to a webhook and an email (the notifications'
SMTP server)."""

from __future__ import annotations

import logging

import httpx

from supportlens.config import Settings
from supportlens.connectors.store import ConnectionStore, StoredConnection
from supportlens.notify.email import EmailSender, SmtpServer
from supportlens.notify.records import Outcome, Recipient

log = logging.getLogger(__name__)


class SyncAlerts:
    def __init__(
        self, store: ConnectionStore, settings: Settings, *, send_email: object | None = None
    ) -> None:
        self._store = store
        self._webhook = settings.sync_alert_webhook_url
        server = SmtpServer.configured(settings)
        self._mail = EmailSender(server) if server is not None and settings.sync_alert_emails else None
        self._emails = [Recipient(address) for address in settings.sync_alert_emails]

    def __call__(self, connection: StoredConnection, failures: int, message: str) -> list[str]:
        delivered = ["event"]
        log.warning("sync alert for connection %s: %s", connection.id, message)
        if self._webhook:
            payload = {
                "event": "connection.sync_failing",
                "connection": {"id": connection.id, "name": connection.name, "kind": connection.kind},
                "workspace_id": connection.workspace_id,
                "consecutive_failures": failures,
                "message": message,
            }
            try:
                httpx.post(self._webhook, json=payload, timeout=10).raise_for_status()
                delivered.append("webhook")
            except httpx.HTTPError as exc:
                log.warning("sync alert webhook failed: %s", type(exc).__name__)
        if self._mail is not None:
            subject = f"SupportLens: sync of {connection.name} failing ({failures} times in a row)"
            results = self._mail.deliver(self._emails, subject, message)
            if all(result.outcome is Outcome.SENT for result in results.values()):
                delivered.append("email")
            else:
                log.warning("sync alert email not delivered to every recipient")
        self._store.add_alert(connection, failures, message, delivered)
        return delivered
