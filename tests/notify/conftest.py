"""Notification services on real SQLite files, a test CA for the TLS servers, and the seed's ticket."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme

from supportlens.config import Settings
from supportlens.notify.service import NotificationService

# Seed 002's ticket, as the ticket service hands it over (dataclasses.asdict of a TicketRecord).
SEED_TICKET: dict[str, Any] = {
    "id": "ticket_abc123def456",
    "number": "SF-2024-001234",
    "workspace_id": "ws1",
    "title": "Network connectivity issues in San Francisco office",
    "description": "Users in our SF office are experiencing intermittent connectivity issues.",
    "status": "in_progress",
    "priority": "high",
    "category": "network",
    "contact": {"name": "John Smith", "email": "john.smith@example.com", "phone": "+1-555-123-4567"},
    "created_at": datetime(2024, 11, 1, 14, 30, tzinfo=UTC),
    "escalation_level": 0,
}

OpenService = Callable[..., NotificationService]


@pytest.fixture(scope="session")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(certificate_authority: trustme.CA) -> ssl.SSLContext:
    """A server context whose certificate, from the test CA, names 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(certificate_authority: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "test-ca.pem"
    certificate_authority.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def open_service(tmp_path: Path) -> Iterator[OpenService]:
    """Opens a service on ``tmp_path``'s metadata file with these settings; closes it at the end."""
    opened: list[NotificationService] = []

    def open_one(**settings: Any) -> NotificationService:
        service = NotificationService.open(Settings(data_dir=tmp_path, **settings))
        opened.append(service)
        return service

    yield open_one
    for service in opened:
        service.close()
