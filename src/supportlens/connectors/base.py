"""What a helpdesk connector is: it reads one source account page by page, from a cursor, and turns
what it reads into canonical records (the rows the Events API takes), which the sync engine writes
through the one ingest path before it keeps the page's cursor.

A connector does no storage and keeps no state between runs other than the cursor it returns with
each page: an opaque string (JSON is fine) that, given back to ``pages``, resumes right after that
page.  Pages may overlap (a look-back window, a retried page): the records are idempotent (ticket
snapshots carry the source's update time, events carry stable ids derived from the source).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from supportlens.connectors.http import SourceClient, SourceError
from supportlens.ingest.service import CONNECTOR_QUARANTINE
from supportlens.ingest.tickets import Rejection

__all__ = ["Connection", "Connector", "ConnectorFactory", "SourceAgent", "SourceError", "SourcePage"]


@dataclass(frozen=True, slots=True)
class Connection:
    """A configured source account (secrets decrypted, for the run only)."""

    id: str
    workspace_id: str
    kind: str  # hubspot, livechat, freshdesk, zendesk
    base_url: str
    credentials: Mapping[str, str]  # e.g. {"token": ...}; never logged
    timezone: str = "UTC"  # of source times that carry no offset
    options: Mapping[str, Any] = field(default_factory=dict)  # status_map, priority_map, pipelines, ...


@dataclass(frozen=True, slots=True)
class SourceAgent:
    """A person (or bot) the source names, as seen: its id, display name and email."""

    id: str
    name: str | None = None
    email: str | None = None
    is_bot: bool = False


@dataclass(slots=True)
class SourcePage:
    """One page read from the source, as canonical rows.

    ``tickets``: ``support_tickets`` rows (seed 000's fields plus ``group_id``; ids as strings, times
    as ISO 8601 strings with an offset, in UTC once the source's timezone is applied).
    ``events``: ``ticket_events`` rows (``event_id`` stable for the same source fact, ``ticket_id``,
    ``at``, ``type``, ``actor_type`` agent / customer / bot / system, ``actor_id``, attributes).
    ``fetched``: source records read.  ``cursor``: resumes after this page; None keeps the previous
    one.  ``total``: how many records the whole run will read, when the source says (for progress)."""

    tickets: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # Source records the connector could not read (raw text, why): kept in quarantine, not dropped.
    rejected: list[tuple[str, Rejection]] = field(default_factory=list)
    quarantine_as: str = CONNECTOR_QUARANTINE
    agents: list[SourceAgent] = field(default_factory=list)
    fetched: int = 0
    cursor: str | None = None
    total: int | None = None


class Connector(Protocol):
    """One helpdesk API.  ``pages(cursor, start=...)`` reads everything changed since the cursor (None:
    since ``start``, the beginning of a full sync or of the rolling window), in order, lazily: the
    engine commits each page before asking for the next."""

    kind: str

    def pages(self, cursor: str | None, *, start: datetime) -> Iterator[SourcePage]: ...


class ConnectorFactory(Protocol):
    def __call__(self, connection: Connection, client: SourceClient) -> Connector: ...
