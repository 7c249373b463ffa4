"""File imports that are not rows of a datasource: Freshdesk ticket-activity exports (seed 003).

An export is read into canonical events (``freshdesk.py``) and written through the one ingest path
in chunks, each committed before the next is queued, so a large file never floods the writer.
Importing the same or an overlapping export again changes nothing: event ids are derived from
the activities and the activity log keeps the first arrival of each id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from supportlens.ingest.freshdesk import FreshdeskExport, parse_export
from supportlens.ingest.service import FRESHDESK_QUARANTINE, IngestService
from supportlens.store.base import Engine

FRESHDESK_SOURCE = "freshdesk"
CHUNK_EVENTS = 100_000
IN_FLIGHT = 2


@dataclass(frozen=True, slots=True)
class ImportSummary:
    file_name: str
    start_at: datetime | None
    end_at: datetime | None
    declared_activities: int | None  # metadata.activities_count
    activities: int  # found in activities_data
    imported_activities: int  # that gave events
    ignored_activities: int  # nothing analytics uses (send_email, watchers, ...)
    rejected_activities: int  # quarantined with their reason
    events: int

    @property
    def count_matches(self) -> bool:
        return self.declared_activities is None or self.declared_activities == self.activities


def import_freshdesk_export(
    service: IngestService,
    engine: Engine,
    workspace_id: str,
    data: bytes,
    *,
    file_name: str,
    requesters: Mapping[str, frozenset[str]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[ImportSummary, Mapping[str, frozenset[str]]]:
    """Import one export file; returns its summary and the requesters known afterwards (pass
    them to the next file of a series).  Raises ``FreshdeskFormatError`` for an unusable file."""
    export = parse_export(data, requesters=requesters)
    # A ticket whose requester this file never names may be known from earlier imports: its
    # customer tells the customer's notes from the agents'.  Read the file again only then.
    unknown = sorted({e.ticket_id for e in export.events} - set(export.requesters))
    stored = engine.ticket_customers(workspace_id, unknown) if unknown else {}
    if stored:
        known = {**export.requesters, **{t: frozenset({c}) for t, c in stored.items()}}
        export = parse_export(data, requesters=known)
    rejected = [(item.raw, item.rejection) for item in export.rejected]
    events = export.events
    # A few chunks in flight: the writer commits one while the next is stamped, never more than
    # IN_FLIGHT queued (the writer's queue stays small whatever the file's size).
    in_flight: list[tuple[Future[None], int]] = []
    for start in range(0, max(len(events), 1), CHUNK_EVENTS):
        chunk = events[start : start + CHUNK_EVENTS]
        result = service.ingest_events(
            workspace_id,
            chunk,
            rejected if start == 0 else [],
            source=FRESHDESK_SOURCE,
            quarantine_as=FRESHDESK_QUARANTINE,
        )
        in_flight.append((result.committed, len(chunk)))
        if len(in_flight) > IN_FLIGHT:
            _settle(in_flight.pop(0), progress)
    for item in in_flight:
        _settle(item, progress)
    return _summary(export, file_name), export.requesters


def _settle(item: tuple[Future[None], int], progress: Callable[[int], None] | None) -> None:
    committed, events = item
    committed.result()
    if progress is not None:
        progress(events)


def _summary(export: FreshdeskExport, file_name: str) -> ImportSummary:
    return ImportSummary(
        file_name=file_name,
        start_at=export.start_at,
        end_at=export.end_at,
        declared_activities=export.activities_count,
        activities=export.imported + export.ignored + len(export.rejected),
        imported_activities=export.imported,
        ignored_activities=export.ignored,
        rejected_activities=len(export.rejected),
        events=len(export.events),
    )
