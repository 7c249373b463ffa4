"""Writing what a connector reads: each page's records go through the one ingest path, and only once
the writer has committed them is the page's cursor kept, so a crash between two pages resumes after
the last committed one with nothing lost; a page read twice changes nothing (idempotent records)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from supportlens.connectors.base import SourcePage
from supportlens.ingest.service import SUPPORT_TICKETS, TICKET_EVENTS_SOURCE, IngestService, RawRow
from supportlens.json_values import record_text


@dataclass(slots=True)
class SyncCounts:
    pages: int = 0
    fetched: int = 0  # source records read
    written: int = 0  # canonical rows accepted
    quarantined: int = 0  # canonical rows refused (kept in quarantine with the reason)


def _rows(values: list[dict[str, object]]) -> Iterable[RawRow]:
    return (RawRow(value, record_text(value)) for value in values)


def write_pages(
    ingest: IngestService,
    workspace_id: str,
    pages: Iterable[SourcePage],
    *,
    source: str,
    committed: Callable[[SourcePage], None],
    counts: SyncCounts | None = None,
    timeout: float = 600.0,
) -> SyncCounts:
    """Writes every page (tickets, then events) and calls ``committed`` with it once the writer has
    committed it (which keeps its cursor); ``source`` names the connector on each event (e.g.
    ``hubspot``)."""
    counts = counts if counts is not None else SyncCounts()
    for page in pages:
        results = [
            ingest.ingest(workspace_id, SUPPORT_TICKETS, _rows(page.tickets), source=source),
            ingest.ingest(workspace_id, TICKET_EVENTS_SOURCE, _rows(page.events), source=source),
        ]
        if page.rejected:
            results.append(
                ingest.ingest_events(
                    workspace_id, [], page.rejected, source=source, quarantine_as=page.quarantine_as
                )
            )
        for result in results:
            result.committed.result(timeout=timeout)
            counts.written += result.successful_rows
            counts.quarantined += result.quarantined_rows
        counts.pages += 1
        counts.fetched += page.fetched
        committed(page)
    return counts
