"""Accounting (issue 7, point 3): for mixed valid and invalid input (fuzzed rows, wrong types, broken
JSON, huge fields, unicode, strings that look like SQL), posted to both datasources on both engines,
successful plus quarantined equals sent, request by request and in the store; every quarantined row
keeps its raw content (the line as sent, trimmed of surrounding whitespace; bytes that are not UTF-8
become U+FFFD) and a reason naming the field at fault; SQL-looking strings are stored verbatim and
harm nothing.  The long form (SUPPORTLENS_RELIABILITY=long) posts more batches and writes its figures
to build/reliability/accounting-<engine>.json."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from supportlens.store.schema import QUARANTINE, TICKET_EVENTS, TICKET_SNAPSHOTS, Table
from tests.conftest import ENGINES
from tests.reliability.fixtures_api import LONG, Served, Tenant, serve, write_figures

BATCHES = 24 if LONG else 3
ROWS_PER_BATCH = 400 if LONG else 60
HUGE = 1_000_000  # bytes of one huge field: far over every field limit (10,000 characters)
HUGE_PER_BATCH = 3  # the body stays under the 10 MB limit


def huge(rng: random.Random, alphabet: list[str]) -> str:
    char = rng.choice(alphabet)
    return char * (HUGE // len(char.encode()))


SQL_LIKE = [
    "'; DROP TABLE tickets; --",
    '"); DELETE FROM quarantine WHERE 1=1; --',
    "1 OR 1=1",
    "x' UNION SELECT workspace_id, raw FROM quarantine --",
    "$$; TRUNCATE ticket_events; $$",
    "{ws:String}",
    "$1 ? :name %s",
    "Robert'); ATTACH 'evil.db' AS e; --",
]
UNICODE = [
    "café ünïcödé",
    "𝄞 𓂀 🧾 astral",
    "مرحبا بالعالم",  # right-to-left
    "\u202eRTL override\u202c",
    "zero\u200bwidth",
    "a\u0000b",  # NUL inside a JSON string (escaped on the wire)
    "e\u0301 combining",
    "\U0010ffff",
]


@dataclass
class Row:
    """One line of a batch and what must become of it: stored, or quarantined naming ``column``."""

    line: bytes
    column: str | None = None  # None: accepted

    @property
    def raw(self) -> str:
        return self.line.strip().decode("utf-8", errors="replace")


@dataclass
class Ledger:
    sent: int = 0
    successful: int = 0
    quarantined: int = 0
    expected_quarantine: Counter[tuple[str, str]] = field(default_factory=Counter)
    verbatim: dict[str, dict[str, str]] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)


def _line(value: Any) -> bytes:
    return orjson.dumps(value)


class _Rows:
    """Rows of one datasource made by ``make``: numbered ``<prefix><n>``, random kinds."""

    def __init__(self, rng: random.Random, prefix: str) -> None:
        self.rng = rng
        self.prefix = prefix
        self.count = 0
        self.huge_left = HUGE_PER_BATCH

    def pick(self, kinds: list[str], ledger: Ledger) -> str:
        """A random kind of row, counted in ``ledger``: at most HUGE_PER_BATCH huge rows a batch
        (a huge row past that becomes a wrong type)."""
        kind = self.rng.choice(kinds)
        if kind == "huge":
            if self.huge_left > 0:
                self.huge_left -= 1
            else:
                kind = "wrong_type"
        ledger.kinds[kind] += 1
        return kind


class TicketRows(_Rows):
    """support_tickets rows: valid ones (with unicode and SQL-looking text), and invalid ones, each
    with the column the quarantine must name."""

    def valid(self) -> dict[str, Any]:
        self.count += 1
        rng = self.rng
        day = rng.randint(1, 28)
        row: dict[str, Any] = {
            "ticket_id": f"{self.prefix}{self.count}",
            "customer_id": f"C{rng.randint(1, 50)}",
            "agent_id": f"A{rng.randint(1, 5)}",
            "category": rng.choice(["billing", "technical", "Account"]),
            "priority": rng.choice(["low", "medium", "high", "urgent"]),
            "status": rng.choice(["open", "pending", "resolved", "closed"]),
            "created_at": f"2026-02-{day:02d} 09:00:00",
            "tags": rng.sample(["vip", "refund", "bug", "☃"], rng.randint(0, 3)),
        }
        if rng.random() < 0.5:
            row["first_response_at"] = f"2026-02-{day:02d} 10:00:00"
        if rng.random() < 0.3:
            row["satisfaction_score"] = rng.randint(1, 5)
        return row

    def make(self, ledger: Ledger) -> Row:
        rng = self.rng
        kind = self.pick(
            [
                "valid",
                "valid",
                "valid",
                "sql",
                "unicode",
                "wrong_type",
                "out_of_range",
                "missing",
                "huge",
                "broken_json",
                "not_object",
                "order",
            ],
            ledger,
        )
        row = self.valid()
        if kind == "valid":
            return Row(_line(row))
        if kind in {"sql", "unicode"}:
            text = rng.choice(SQL_LIKE if kind == "sql" else UNICODE)
            row["subject"] = text
            row["customer_id"] = f"{text}-{self.count}" if "\u0000" not in text else f"c{self.count}"
            ledger.verbatim[row["ticket_id"]] = {"subject": text, "customer_id": row["customer_id"].strip()}
            return Row(_line(row))
        if kind == "wrong_type":
            column, value = rng.choice(
                [
                    ("satisfaction_score", "five"),
                    ("satisfaction_score", True),
                    ("ticket_id", ["T1"]),
                    ("customer_id", {"id": 1}),
                    ("created_at", {"at": "2026-01-01"}),
                    ("tags", "vip,refund"),
                    ("tags", [1, 2]),
                    ("priority", 3),
                    ("subject", 12),
                    ("resolved_at", [2026]),
                ]
            )
            row[column] = value
            return Row(_line(row), column)
        if kind == "out_of_range":
            column, value = rng.choice(
                [
                    ("satisfaction_score", 9),
                    ("satisfaction_score", 4.5),
                    ("created_at", "2026-02-30 09:00:00"),
                    ("created_at", "yesterday"),
                    ("created_at", "0001-01-01T00:00:00+14:00"),
                    ("resolved_at", "9999-12-31T23:59:59-12:00"),
                    ("first_response_at", "2026-01-01 00:00:00"),  # before created_at
                    ("customer_id", "C" * 300),
                    ("tags", [f"t{i}" for i in range(101)]),
                ]
            )
            row[column] = value
            return Row(_line(row), column)
        if kind == "missing":
            column = rng.choice(["ticket_id", "created_at"])
            row[column] = rng.choice([None, "", "   "]) if column == "ticket_id" else None
            if rng.random() < 0.5:
                del row[column]
            return Row(_line(row), column)
        if kind == "huge":
            column = rng.choice(["subject", "category", "customer_id"])
            row[column] = huge(rng, ["x", "é", "𝄞"])
            return Row(_line(row), column)
        if kind == "broken_json":
            text = _line(row)
            return Row(
                rng.choice(
                    [
                        text[: rng.randint(1, len(text) - 1)],
                        text + b"}",
                        text.replace(b'"', b"'"),
                        b"not json at all",
                        text.replace(b"09:00:00", b"09:00:00\xff\xfe"),  # not UTF-8
                        text.replace(b"09:00:00", b"09:00\x00:00"),  # a raw NUL byte
                        b'{"ticket_id": "' + "𝄞".encode() * 3 + b'", ',
                    ]
                ),
                "",
            )
        if kind == "not_object":
            return Row(rng.choice([b"42", b"null", b'"a string"', b"[1, 2]", b"true"]), "")
        # order: resolved before created
        row["resolved_at"] = "2026-01-01 00:00:00"
        return Row(_line(row), "resolved_at")


class EventRows(_Rows):
    """ticket_events rows, valid and invalid, each invalid one with the column at fault."""

    def valid(self) -> dict[str, Any]:
        self.count += 1
        rng = self.rng
        kind = rng.choice(["created", "reply", "status_changed", "customer_message", "rated"])
        row: dict[str, Any] = {
            "event_id": f"{self.prefix}e{self.count}",
            "ticket_id": f"{self.prefix}{rng.randint(1, 30)}",
            "at": f"2026-02-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
            "type": kind,
            "actor_type": rng.choice(["agent", "customer", "system"]),
        }
        if kind == "status_changed":
            row["to"] = rng.choice(["open", "pending", "solved"])
        if kind == "rated":
            row["score"] = rng.randint(1, 5)
        return row

    def make(self, ledger: Ledger) -> Row:
        rng = self.rng
        kind = self.pick(
            [
                "valid",
                "valid",
                "valid",
                "sql",
                "unicode",
                "wrong_type",
                "missing",
                "huge",
                "broken_json",
                "not_object",
            ],
            ledger,
        )
        row = self.valid()
        if kind == "valid":
            return Row(_line(row))
        if kind in {"sql", "unicode"}:
            row["subject"] = rng.choice(SQL_LIKE if kind == "sql" else UNICODE)
            return Row(_line(row))
        if kind == "wrong_type":
            column, value = rng.choice(
                [
                    ("type", "exploded"),
                    ("type", 7),
                    ("actor_type", "robot"),
                    ("at", "next tuesday"),
                    ("at", "9999-12-31T23:59:59-12:00"),
                    ("at", {"t": 1}),
                    ("event_id", ["e"]),
                    ("customer_id", {"id": 1}),
                    ("tags", "a,b"),
                    ("subject", 5),
                ]
            )
            row[column] = value
            return Row(_line(row), column)
        if kind == "missing":
            column = rng.choice(["event_id", "ticket_id", "at", "type", "score", "to"])
            if column == "score":
                row.update(type="rated", score=None)
            elif column == "to":
                row.update(type="status_changed", to=None)
            else:
                del row[column]
            return Row(_line(row), column)
        if kind == "huge":
            column = rng.choice(["subject", "customer_id"])
            row[column] = huge(rng, ["y", "ß", "🧾"])
            return Row(_line(row), column)
        if kind == "broken_json":
            text = _line(row)
            return Row(rng.choice([text[:-1], b"{]", text + b",", text.replace(b"Z", b"Z\xc3")]), "")
        return Row(rng.choice([b"0", b"[]", b"false", b'"event"']), "")


def _count(served: Served, table: Table, workspace_id: str) -> int:
    return served.runtime.engine.count(table, workspace_id)


def _post_batch(served: Served, tenant: Tenant, datasource: str, rows: list[Row], ledger: Ledger) -> None:
    body = b"\n".join(row.line for row in rows) + b"\n"
    response = served.client.post(
        f"/v0/events?name={datasource}&wait=true", content=body, headers=tenant.headers()
    )
    assert response.status_code == 200, response.text[:500]
    counts = response.json()
    rejected = [row for row in rows if row.column is not None]
    assert counts["successful_rows"] + counts["quarantined_rows"] == len(rows), counts
    assert counts["quarantined_rows"] == len(rejected), (counts, Counter(r.column for r in rejected))
    ledger.sent += len(rows)
    ledger.successful += counts["successful_rows"]
    ledger.quarantined += counts["quarantined_rows"]
    for row in rejected:
        assert row.column is not None
        ledger.expected_quarantine[(row.raw, row.column)] += 1


def _quarantine(served: Served, tenant: Tenant, datasource: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = served.client.get(
            f"/v0/quarantine/{datasource}.json",
            params={"limit": 500, "offset": len(rows)},
            headers=tenant.headers(),
        )
        assert page.status_code == 200, page.text[:500]
        data = page.json()["data"]
        rows.extend(data)
        if len(data) < 500:
            return rows


@pytest.fixture(scope="module", params=ENGINES)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory: Path = tmp_path_factory.mktemp(f"accounting-{request.param}")
    yield from serve(str(request.param), directory)


@pytest.mark.parametrize("datasource", ["support_tickets", "ticket_events"])
def test_successful_plus_quarantined_equals_sent(served: Served, datasource: str) -> None:
    engine = served.runtime.engine.name
    tenant = served.tenant(f"acct-{datasource.replace('_', '-')}")
    rng = random.Random(f"{engine}-{datasource}")
    ledger = Ledger()
    maker = TicketRows(rng, "T") if datasource == "support_tickets" else EventRows(rng, "T")
    for _ in range(BATCHES):
        maker.huge_left = HUGE_PER_BATCH
        _post_batch(served, tenant, datasource, [maker.make(ledger) for _ in range(ROWS_PER_BATCH)], ledger)

    # The whole run: the request counts add up, and the store holds exactly that many rows.
    assert ledger.successful + ledger.quarantined == ledger.sent
    assert ledger.quarantined == sum(ledger.expected_quarantine.values()) > 0
    stored = TICKET_SNAPSHOTS if datasource == "support_tickets" else TICKET_EVENTS
    assert _count(served, stored, tenant.id) == ledger.successful
    assert _count(served, QUARANTINE, tenant.id) == ledger.quarantined

    # Every quarantined row: its raw content and the column at fault, with a reason.
    listed = _quarantine(served, tenant, datasource)
    assert len(listed) == ledger.quarantined
    assert all(row["error"].strip() for row in listed)
    found = Counter((row["raw"], row["column_name"]) for row in listed)
    assert found == ledger.expected_quarantine, (
        sorted((raw[:80], column) for raw, column in (found - ledger.expected_quarantine)),
        sorted((raw[:80], column) for raw, column in (ledger.expected_quarantine - found)),
    )
    # Text that looked like SQL or was unusual unicode was stored as sent.
    for ticket_id, expected in ledger.verbatim.items():
        _assert_verbatim(served, tenant, ticket_id, expected)
    if LONG:
        write_figures(
            f"accounting-{engine}-{datasource}",
            {
                "engine": engine,
                "datasource": datasource,
                "batches": BATCHES,
                "sent": ledger.sent,
                "successful": ledger.successful,
                "quarantined": ledger.quarantined,
                "row_kinds": dict(sorted(ledger.kinds.items())),
                "quarantine_columns": dict(
                    sorted(Counter(c for _, c in ledger.expected_quarantine.elements()).items())
                ),
            },
        )


WINDOW = {"created_after": "2026-01-01", "created_before": "2026-12-31"}


def _assert_verbatim(served: Served, tenant: Tenant, ticket_id: str, expected: dict[str, str]) -> None:
    response = served.client.get(
        "/v0/pipes/ticket_details.json", params={"ticket_id": ticket_id, **WINDOW}, headers=tenant.headers()
    )
    assert response.status_code == 200, response.text
    (found,) = response.json()["data"]
    assert found["subject"] == expected["subject"]
    assert found["customer_id"] == expected["customer_id"]


def test_sql_looking_and_unicode_text_is_stored_verbatim(served: Served) -> None:
    tenant = served.tenant("acct-verbatim")
    ledger = Ledger()
    rows: list[Row] = []
    for index, text in enumerate(SQL_LIKE + UNICODE):
        ticket = {
            "ticket_id": f"V{index}",
            "customer_id": f"{text}-{index}",
            "category": "billing",
            "created_at": "2026-02-01 09:00:00",
            "subject": text,
            "tags": [text],
        }
        rows.append(Row(_line(ticket)))
        ledger.verbatim[f"V{index}"] = {"subject": text, "customer_id": f"{text}-{index}".strip()}
    _post_batch(served, tenant, "support_tickets", rows, ledger)
    window = WINDOW
    for ticket_id, expected in ledger.verbatim.items():
        _assert_verbatim(served, tenant, ticket_id, expected)
        tags = served.client.get(
            "/v0/pipes/ticket_details.json",
            params={"ticket_id": ticket_id, **window},
            headers=tenant.headers(),
        )
        assert tags.json()["data"][0]["tags"] == [expected["subject"]]
        # The same text as a filter value finds exactly that ticket (bound, never spliced into SQL).
        by_customer = served.client.get(
            "/v0/pipes/ticket_details.json",
            params={"customer_id": expected["customer_id"], **window},
            headers=tenant.headers(),
        )
        assert [row["ticket_id"] for row in by_customer.json()["data"]] == [ticket_id]
    # Nothing was harmed: every ticket is there, and the other tables still answer.
    everything = served.client.get(
        "/v0/pipes/ticket_details.json", params={**window, "limit": 1000}, headers=tenant.headers()
    )
    assert everything.json()["rows"] == len(rows)
    assert (
        served.client.get("/v0/quarantine/support_tickets.json", headers=tenant.headers()).status_code == 200
    )
    assert _count(served, TICKET_SNAPSHOTS, tenant.id) == len(rows)


@pytest.mark.parametrize("datasource", ["support_tickets", "ticket_events"])
def test_array_and_single_object_bodies_are_accounted_too(served: Served, datasource: str) -> None:
    """A JSON array: each element is a row (its raw form compact JSON); a lone object: one row, as sent."""
    tenant = served.tenant(f"acct-array-{datasource.replace('_', '-')}")
    rng = random.Random(f"array-{datasource}")
    maker = TicketRows(rng, "A") if datasource == "support_tickets" else EventRows(rng, "A")
    ledger = Ledger()
    rows = [maker.make(ledger) for _ in range(40)]
    elements = [orjson.loads(row.line) for row in rows if _is_json(row.line)]
    response = served.client.post(
        f"/v0/events?name={datasource}&wait=true", content=orjson.dumps(elements), headers=tenant.headers()
    )
    counts = response.json()
    assert counts["successful_rows"] + counts["quarantined_rows"] == len(elements)
    single = {"ticket_id": "S1", "event_id": "s1", "created_at": "never", "at": "never", "type": "created"}
    body = b"  " + orjson.dumps(single, option=orjson.OPT_INDENT_2) + b"\n"
    one = served.client.post(
        f"/v0/events?name={datasource}&wait=true", content=body, headers=tenant.headers()
    )
    assert one.json() == {"successful_rows": 0, "quarantined_rows": 1}
    listed = _quarantine(served, tenant, datasource)
    assert len(listed) == counts["quarantined_rows"] + 1
    expected = Counter(
        orjson.dumps(e).decode()
        for e, row in zip(elements, [r for r in rows if _is_json(r.line)], strict=True)
        if row.column is not None
    )
    expected[body.strip().decode()] += 1
    assert Counter(row["raw"] for row in listed) == expected


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True
