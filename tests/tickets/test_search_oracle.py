"""Ticket search against a brute-force oracle: random tickets (two workspaces, some deleted, some
changed after creation), random filters, sorts and pages; the repository must return exactly the
tickets and total the oracle finds by filtering and sorting every record in Python, whichever plan
it picks (walking the creation index or fetching matches and sorting them)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from supportlens.domain.models import priority_rank
from supportlens.tickets.records import TicketRecord
from supportlens.tickets.repository import TicketQuery, TicketRepository

WORDS = ("router", "routing", "refund", "invoice", "vpn", "printer", "outage", "login", "crash", "export")
STATUSES = ("open", "in_progress", "pending", "resolved", "closed")
PRIORITIES = ("low", "medium", "high", "urgent")
CATEGORIES = ("network", "billing", "account")
AGENTS = ("a1", "a2", "a3")
CUSTOMERS = ("c1", "c2", "c3", "c4")
TAGS = ("vip", "churn", "trial")
START = datetime(2026, 1, 1, tzinfo=UTC)


def _tickets(rng: random.Random, workspace_id: str, count: int) -> list[TicketRecord]:
    records = []
    for index in range(count):
        created = START + timedelta(minutes=index * 7 + rng.randrange(3))
        records.append(
            TicketRecord(
                id=f"{workspace_id}_t{index:04d}",
                number=f"T-2026-{index:06d}",
                workspace_id=workspace_id,
                title=" ".join(rng.sample(WORDS, 2)).capitalize(),
                status=rng.choice(STATUSES),
                created_at=created,
                updated_at=created + timedelta(minutes=rng.randrange(600)),
                version=1,
                description=" ".join(rng.sample(WORDS, 3)),
                priority=rng.choice(PRIORITIES),
                category=rng.choice(CATEGORIES),
                customer_id=rng.choice(CUSTOMERS),
                assigned_to=rng.choice((*AGENTS, None)),
                channel=rng.choice(("email", "web")),
                tags=tuple(sorted(rng.sample(TAGS, rng.randrange(3)))),
                escalation_level=rng.randrange(3),
            )
        )
    return records


def _matches(record: TicketRecord, query: TicketQuery) -> bool:
    text = f"{record.title} {record.description}".lower().split()
    checks = (
        query.customer_id is None or record.customer_id == query.customer_id,
        not query.status or record.status in query.status,
        not query.priority or record.priority in query.priority,
        not query.category or record.category in query.category,
        not query.assigned_to or record.assigned_to in query.assigned_to,
        not query.tags or bool(set(query.tags) & set(record.tags)),
        query.created_after is None or record.created_at >= query.created_after,
        query.created_before is None or record.created_at < query.created_before,
        query.updated_after is None or record.updated_at >= query.updated_after,
        not query.text or all(any(w.startswith(t) for w in text) for t in query.text.lower().split()),
        record.deleted_at is None,
    )
    return all(checks)


def _key(record: TicketRecord, sort: str, position: int) -> tuple[Any, ...]:
    value: Any = priority_rank(record.priority)[0] if sort == "priority" else getattr(record, sort)
    return (value, position)


def _query(rng: random.Random) -> TicketQuery:
    def some(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(rng.sample(values, rng.randrange(1, 3))) if rng.random() < 0.35 else ()

    moment = START + timedelta(minutes=rng.randrange(1500))
    return TicketQuery(
        customer_id=rng.choice(CUSTOMERS) if rng.random() < 0.2 else None,
        status=some(STATUSES),
        priority=some(PRIORITIES),
        category=some(CATEGORIES),
        assigned_to=some(AGENTS),
        tags=some(TAGS),
        created_after=moment if rng.random() < 0.2 else None,
        created_before=moment + timedelta(minutes=400) if rng.random() < 0.2 else None,
        updated_after=moment if rng.random() < 0.1 else None,
        text=" ".join(w[: rng.randrange(3, 7)] for w in rng.sample(WORDS, rng.randrange(1, 3)))
        if rng.random() < 0.35
        else None,
        sort=rng.choice(
            ("created_at", "created_at", "updated_at", "priority", "status", "number", "escalation_level")
        ),
        descending=rng.random() < 0.7,
        page=rng.randrange(1, 4),
        limit=rng.choice((1, 5, 25)),
    )


@pytest.mark.parametrize("ordered_scan_rows", [0, 10**9], ids=["fetch-and-sort", "walk-creation-index"])
def test_search_equals_the_oracle(tmp_path: Path, ordered_scan_rows: int) -> None:
    rng = random.Random(11)
    repository = TicketRepository(tmp_path / "tickets.sqlite", ordered_scan_rows=ordered_scan_rows)
    try:
        mine, other = _tickets(rng, "w1", 240), _tickets(rng, "w2", 60)
        repository.create([(record, []) for record in mine + other])
        stored = []  # later versions: some changed, some deleted
        for record in mine:
            roll = rng.random()
            if roll < 0.1:
                changed = replace(record, deleted_at=record.updated_at)
            elif roll < 0.3:
                changed = replace(record, status=rng.choice(STATUSES), tags=("vip",), assigned_to="a2")
            else:
                stored.append(record)
                continue
            repository.save(changed, [])
            stored.append(replace(changed, version=2))
        positions = {record.id: index for index, record in enumerate(stored)}
        for _ in range(300):
            query = _query(rng)
            expected = sorted(
                (r for r in stored if _matches(r, query)),
                key=lambda r: _key(r, query.sort, positions[r.id]),
                reverse=query.descending,
            )
            found, total = repository.search("w1", query)
            start = (query.page - 1) * query.limit
            assert total == len(expected), query
            assert [r.id for r in found] == [r.id for r in expected[start : start + query.limit]], query
        assert repository.search("w1", TicketQuery(limit=1))[1] == sum(
            1 for r in stored if r.deleted_at is None
        )
    finally:
        repository.close()
