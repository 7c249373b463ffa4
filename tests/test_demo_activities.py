"""The Freshdesk activities generator: determinism, a clean import, windows, realism and speed."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from supportlens.demo.activities import (
    COLUMNS,
    KINDS,
    STATUS_NAMES,
    generate_activity_columns,
    generate_export,
    generate_exports,
    write_export_files,
)
from supportlens.domain.events import ActorType, EventType
from supportlens.domain.statuses import DEFAULT_STATUS_MAP, StatusCategory
from supportlens.ingest.freshdesk import FreshdeskExport, parse_export, parse_freshdesk_timestamp

END = datetime(2025, 6, 30, 10, 0, 0, 250_000, tzinfo=UTC)  # not on a whole second on purpose
END_S = END.replace(microsecond=0)
KIND = {name: code for code, name in enumerate(KINDS)}


def parse_all(exports: list[dict[str, Any]]) -> list[FreshdeskExport]:
    results: list[FreshdeskExport] = []
    for export in exports:
        previous = results[-1].requesters if results else None
        results.append(parse_export(orjson.dumps(export), requesters=previous))
    return results


def check_export(export: dict[str, Any], result: FreshdeskExport) -> None:
    activities = export["activities_data"]
    assert not result.rejected, result.rejected[:3]
    assert result.activities_count == len(activities) == result.imported + result.ignored
    assert result.start_at is not None
    assert result.end_at is not None
    moments = [parse_freshdesk_timestamp(a["performed_at"]) for a in activities]
    assert moments == sorted(moments)
    assert all(result.start_at <= m <= result.end_at for m in moments)


@pytest.mark.parametrize("full", [False, True])
def test_one_export_is_deterministic_and_imports_cleanly(full: bool) -> None:
    export = generate_export(400, seed=3, end=END, full_property_sets=full)
    assert export == generate_export(400, seed=3, end=END, full_property_sets=full)
    assert export != generate_export(400, seed=4, end=END, full_property_sets=full)
    assert export["metadata"]["start_at"] == "29-06-2025 10:00:00 +0000"
    assert export["metadata"]["end_at"] == "30-06-2025 09:59:59 +0000"
    result = parse_export(orjson.dumps(export))
    check_export(export, result)
    created = [e for e in result.events if e.type is EventType.CREATED]
    assert len(created) == len({e.ticket_id for e in created}) == 400
    if full:  # every property change carries the whole set, as in Freshdesk's KB example
        status_rows = [a["activity"] for a in export["activities_data"] if "status" in a["activity"]]
        assert all({"priority", "source", "group", "agent_id", "requester"} <= set(a) for a in status_rows)
    else:
        ids = [e.event_id for e in result.events]
        assert len(set(ids)) == len(ids)


def test_the_window_and_ticket_ids_follow_the_arguments() -> None:
    export = generate_export(50, seed=1, end=END, hours=6, start_ticket_id=1001)
    assert export["metadata"]["start_at"] == "30-06-2025 04:00:00 +0000"
    tickets = {a["ticket_id"] for a in export["activities_data"]}
    assert tickets == set(range(1001, 1051))
    other = generate_export(50, seed=1, end=END, hours=6, start_ticket_id=2001)
    notes = [
        {a["activity"]["note"]["id"] for a in e["activities_data"] if "note" in a["activity"]}
        for e in (export, other)
    ]
    assert notes[0]
    assert not notes[0] & notes[1]


def test_daily_exports_chain_across_files() -> None:
    exports = generate_exports(1500, seed=9, end=END, days=4)
    assert exports == generate_exports(1500, seed=9, end=END, days=4)
    assert len(exports) == 4
    for earlier, later in itertools.pairwise(exports):
        gap = parse_freshdesk_timestamp(later["metadata"]["start_at"]) - parse_freshdesk_timestamp(
            earlier["metadata"]["end_at"]
        )
        assert gap == timedelta(seconds=1)
    assert parse_freshdesk_timestamp(exports[-1]["metadata"]["end_at"]) == END_S - timedelta(seconds=1)

    results = parse_all(exports)
    for export, result in zip(exports, results, strict=True):
        check_export(export, result)
    events = [e for r in results for e in r.events]
    ids = [e.event_id for e in events]
    assert len(set(ids)) == len(ids)
    assert Counter(e.ticket_id for e in events if e.type is EventType.CREATED) == Counter(
        str(t) for t in range(1, 1501)
    )
    # Tickets created one day are answered and resolved on later days.
    created_in = {
        e.ticket_id: i for i, r in enumerate(results) for e in r.events if e.type is EventType.CREATED
    }
    assert any(
        e.ticket_id in created_in and created_in[e.ticket_id] < i
        for i, r in enumerate(results)
        for e in r.events
    )

    # Customers are recognized in files that never name the requester (thanks to the chaining).
    columns = generate_activity_columns(1500, 9, END, 4)
    by_requester = (columns["kind"] == KIND["note"]) & (columns["performer_id"] == columns["requester_id"])
    messages = [e for e in events if e.type is EventType.CUSTOMER_MESSAGE]
    assert len(messages) == int(by_requester.sum()) > 0
    assert all(e.actor_type is ActorType.CUSTOMER for e in messages)


def test_columns_are_consistent() -> None:
    columns = generate_activity_columns(5000, 21, END, 10)
    assert tuple(columns) == COLUMNS
    n = columns["kind"].shape[0]
    assert all(column.shape == (n,) for column in columns.values())
    at = columns["performed_at"]
    end = int(END_S.timestamp())
    assert bool(np.all(np.diff(at) >= 0))
    assert at.min() >= end - 10 * 86_400
    assert at.max() < end
    notes = columns["kind"] == KIND["note"]
    assert bool(np.all((columns["note_id"] > 0) == notes))
    assert np.unique(columns["note_id"][notes]).shape[0] == int(notes.sum())
    assert set(np.unique(columns["note_type"][notes]).tolist()) == {0, 3, 4, 5}

    # Per ticket: new_ticket first, a closed ticket has nothing after, customers are never agents.
    order = np.lexsort((np.arange(n), columns["ticket_id"]))
    ticket, kind, status = columns["ticket_id"][order], columns["kind"][order], columns["status"][order]
    first = np.r_[True, ticket[1:] != ticket[:-1]]
    assert bool(np.all(kind[first] == KIND["new_ticket"]))
    assert bool(np.all(kind[~first] != KIND["new_ticket"]))
    last = np.r_[ticket[1:] != ticket[:-1], True]
    closed = status == STATUS_NAMES.index("Closed")
    assert bool(np.all(last[closed]))
    agents = set(np.unique(columns["agent_id"][columns["agent_id"] > 0]).tolist())
    assert not agents & set(np.unique(columns["requester_id"]).tolist())


def test_the_desk_looks_like_a_desk() -> None:
    columns = generate_activity_columns(20_000, 5, END, 30)
    n = columns["kind"].shape[0]
    assert 6 < n / 20_000 < 14  # activities per ticket
    created = columns["performed_at"][columns["kind"] == KIND["new_ticket"]]
    hour = (created // 3600) % 24
    weekday = (created // 86_400 + 3) % 7
    in_hours = (weekday < 5) & (hour >= 8) & (hour < 18)
    assert 0.55 < in_hours.mean() < 0.85  # 30 % of the week's hours get most of the tickets

    statuses = columns["status"][columns["kind"] == KIND["status"]]
    counts = Counter(STATUS_NAMES[s] for s in statuses.tolist())
    assert set(counts) == set(STATUS_NAMES)
    categories = Counter(DEFAULT_STATUS_MAP.category(name) for name in counts.elements())
    assert (
        categories[StatusCategory.ON_HOLD]
        < categories[StatusCategory.PENDING]
        < categories[StatusCategory.SOLVED]
    )

    # Reopens: back to Open after Resolved.
    order = np.lexsort((np.arange(n), columns["ticket_id"]))
    rows = order[columns["kind"][order] == KIND["status"]]
    ticket, status = columns["ticket_id"][rows], columns["status"][rows]
    same = ticket[1:] == ticket[:-1]
    reopens = (
        same & (status[:-1] == STATUS_NAMES.index("Resolved")) & (status[1:] == STATUS_NAMES.index("Open"))
    )
    assert 0.01 < reopens.sum() / 20_000 < 0.15

    # First replies come faster for urgent tickets than for low ones.
    first_reply: dict[int, int] = {}
    created_at: dict[int, tuple[int, int]] = {}
    for t, k, when, prio, nt, by, req in zip(
        columns["ticket_id"].tolist(), columns["kind"].tolist(), columns["performed_at"].tolist(),
        columns["priority"].tolist(), columns["note_type"].tolist(), columns["performer_id"].tolist(),
        columns["requester_id"].tolist(), strict=True,
    ):  # fmt: skip
        if k == KIND["new_ticket"]:
            created_at[t] = (when, prio)
        elif k == KIND["note"] and nt in (0, 4, 5) and by not in (0, req) and t not in first_reply:
            first_reply[t] = when - created_at[t][0]
    by_priority = {p: np.median([d for t, d in first_reply.items() if created_at[t][1] == p]) for p in (1, 4)}
    assert by_priority[4] < by_priority[1] / 3


def test_files_are_written_one_per_day(tmp_path: Path) -> None:
    columns = generate_activity_columns(800, 2, END, 3)
    paths = write_export_files(tmp_path / "exports", columns, end=END, days=3)
    assert [p.name for p in paths] == [
        "ticket_activities_2025-06-28T100000.json",
        "ticket_activities_2025-06-29T100000.json",
        "ticket_activities_2025-06-30T100000.json",
    ]
    exports = [orjson.loads(p.read_bytes()) for p in paths]
    assert exports == generate_exports(800, seed=2, end=END, days=3)
    assert sum(len(e["activities_data"]) for e in exports) == columns["kind"].shape[0]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_export(1, seed=1, end=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="tickets"):
        generate_activity_columns(-1, 1, END, 1)
    with pytest.raises(ValueError, match="hours"):
        generate_export(1, seed=1, end=END, hours=0)
    with pytest.raises(ValueError, match="days"):
        generate_exports(1, seed=1, end=END, days=0)
    assert generate_export(0, seed=1, end=END)["activities_data"] == []


def test_large_volumes_are_fast() -> None:
    started = time.perf_counter()
    columns = generate_activity_columns(200_000, 1, END, 30)
    elapsed = time.perf_counter() - started
    assert columns["kind"].shape[0] > 1_500_000
    assert elapsed < 8, f"{elapsed:.1f}s for 200k tickets"  # ~1.5 s unloaded; generous for shared CI
