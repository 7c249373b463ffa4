"""Deterministic, realistic Freshdesk ticket-activities exports (the daily JSON files), for the
importer's tests, demos and benchmarks.

One vectorized simulation (numpy, whole ticket populations per step: 1M tickets / ~10M activities
in a few seconds) gives every activity as columns (:func:`generate_activity_columns`); the export
files are cut from those columns by day (:func:`generate_exports`, :func:`write_export_files`) or
for one window (:func:`generate_export`).  The same arguments always give the same output.

The desk being simulated (times in UTC; the desk is staffed 08:00-18:00 Monday to Friday):

* Tickets arrive more in business hours and on weekdays.  Most are created by the customer
  (the requester: email, portal, chat, widget), phone and outbound-email tickets by an agent, bot
  tickets by the system.  Each has a priority, a source, a group, a category and custom fields
  (``issue_type``, ``product``).  Email-like tickets get an acknowledgement (``send_email``, which
  the importer ignores), chat and bot tickets often an automatic reply (a system note).
* Assignment at creation, or soon after by a round-robin rule or an agent taking the ticket.
* Then rounds of work, each after a lognormal wait (first reply faster for higher priorities;
  agents act in business hours except on urgent tickets): sometimes a private note, the reply
  (phone note on phone tickets, sometimes a public note), now and then a priority change, a
  transfer to another group, a tag or a new issue type; then the agent resolves the ticket, sets
  it waiting on the customer (``Pending`` or ``Waiting for Customer``) or on a third party, or
  keeps it open.  Customers answer most waiting tickets (a note by the requester, then the system
  sets ``Open``); the silent ones are resolved by the system after 3 days.  Third parties answer
  after about a day.  Resolved tickets are closed by the system 2 days later unless the customer
  writes again first (a reopen).
* Activities after ``end`` have not happened yet: recent tickets are naturally still in progress.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

__all__ = [
    "CATEGORIES",
    "COLUMNS",
    "GROUPS",
    "ISSUE_TYPES",
    "KINDS",
    "PRODUCTS",
    "STATUS_NAMES",
    "TAGS",
    "generate_activity_columns",
    "generate_export",
    "generate_exports",
    "write_export_files",
]

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
Idx = npt.NDArray[np.intp]
Bool = npt.NDArray[np.bool_]
Column = npt.NDArray[Any]

STATUS_NAMES: Final = (
    "Open",
    "Pending",
    "Waiting for Customer",
    "Waiting for Third Party",
    "Resolved",
    "Closed",
)
OPEN, PENDING, WAITING_CUSTOMER, WAITING_THIRD_PARTY, RESOLVED, CLOSED = range(6)
GROUPS: Final = ("billing", "refund", "technical", "shipping", "account")
CATEGORIES: Final = ("Billing", "Technical", "Account", "Shipping", "Feedback")
ISSUE_TYPES: Final = ("Question", "Incident", "Problem", "Feature Request")
PRODUCTS: Final = ("web", "mobile", "desktop", "api")
TAGS: Final = ("vip", "refund_requested", "bug", "follow_up", "escalated", "duplicate")

# What each activity is (``kind`` column); property kinds change the key of the same name.
KINDS: Final = ("new_ticket", "note", "status", "priority", "agent_id", "group", "added_tags", "issue_type",
                "send_email")  # fmt: skip
NEW_TICKET, NOTE, STATUS, PRIORITY, AGENT, GROUP, ADDED_TAGS, ISSUE_TYPE, SEND_EMAIL = range(len(KINDS))
_PROPERTY_KINDS: Final = (STATUS, PRIORITY, AGENT, GROUP, ISSUE_TYPE)
USER, SYSTEM = 0, 1  # performer_type codes

# The columns of generate_activity_columns, one row per activity, ordered by performed_at.
COLUMNS: Final = (
    "performed_at",  # int64 epoch seconds
    "ticket_id",  # int64
    "performer_type",  # int8: 0 user, 1 system
    "performer_id",  # int64, 0 for the system
    "kind",  # int8 index into KINDS
    "note_id",  # int64, 0 unless a note
    "note_type",  # int8 Freshdesk note type, -1 unless a note
    "tag",  # int8 index into TAGS, -1 unless added_tags
    # The ticket after the activity (its full property set):
    "status",  # int8 index into STATUS_NAMES
    "priority",  # int8 1..4
    "agent_id",  # int64, 0 = unassigned
    "group",  # int8 index into GROUPS
    "issue_type",  # int8 index into ISSUE_TYPES
    "source",  # int8 Freshdesk source code
    "requester_id",  # int64
    "category",  # int8 index into CATEGORIES
    "product",  # int8 index into PRODUCTS
)

_HOUR: Final = 3600
_DAY: Final = 86_400
_AGENT_BASE: Final = 149_000  # agent ids 149001.., requester ids 1000001..: never equal
_CUSTOMER_BASE: Final = 1_000_000
_NOTES_PER_TICKET: Final = 1000  # note id = ticket id * 1000 + ordinal: unique across files

# Relative arrival rate by hour of day (UTC) and weekday (Monday = 0).
_HOUR_WEIGHTS: Final = np.array(
    [0.10, 0.07, 0.05, 0.05, 0.06, 0.10, 0.20, 0.40, 0.75, 1.00, 1.10, 1.10,
     0.92, 1.00, 1.05, 1.00, 0.90, 0.75, 0.55, 0.45, 0.38, 0.30, 0.22, 0.15]
)  # fmt: skip
_WEEKDAY_WEIGHTS: Final = np.array([1.15, 1.08, 1.02, 0.98, 0.85, 0.30, 0.25])
_BUSINESS_HOURS: Final = (8, 18)
_BACKLOG_MEAN_S: Final = 45 * 60  # after the opening, the morning backlog delays each action

_SOURCES: Final = np.array([1, 2, 3, 7, 9, 10, 12], dtype=np.int8)
_SOURCE_P: Final = np.array([0.42, 0.18, 0.10, 0.16, 0.06, 0.04, 0.04])
_AGENT_CREATED: Final = (3, 10)  # phone, outbound email
_BOT_CREATED: Final = 12
_ACKNOWLEDGED: Final = (1, 2, 9)  # email, portal, widget: an acknowledgement e-mail ...
_ACK_P: Final = 0.5
_AUTO_REPLIED: Final = (7, 12)  # chat, bot: an automatic reply (a system note) ...
_AUTO_REPLY_P: Final = 0.6
_PRIORITY_P: Final = np.array([0.30, 0.45, 0.18, 0.07])  # low, medium, high, urgent
_GROUP_P: Final = np.array([0.25, 0.15, 0.30, 0.18, 0.12])
_CATEGORY_P: Final = np.array([0.25, 0.35, 0.18, 0.15, 0.07])
_ISSUE_P: Final = np.array([0.45, 0.25, 0.20, 0.10])
_PRODUCT_P: Final = np.array([0.40, 0.35, 0.15, 0.10])

_ASSIGNED_AT_CREATION_P: Final = 0.35
_RULE_ASSIGNS_P: Final = 0.5  # otherwise an agent takes the ticket
_ASSIGN_MEDIAN_S: Final = 15 * 60
_FIRST_REPLY_MEDIAN_S: Final = np.array([6 * _HOUR, 3 * _HOUR, 1 * _HOUR, 20 * 60])  # by priority 1..4
_NEXT_REPLY_MEDIAN_S: Final = np.array([4 * _HOUR, 2 * _HOUR, 1 * _HOUR, 30 * 60])
_REPLY_SIGMA: Final = 1.0
_PRIVATE_NOTE_P: Final = 0.15
_PHONE_NOTE_P: Final = 0.6  # on phone tickets
_PUBLIC_NOTE_P: Final = 0.08
_PRIORITY_CHANGE_P: Final = 0.05
_TRANSFER_P: Final = 0.04  # first round only
_TAG_P: Final = 0.12
_ISSUE_CHANGE_P: Final = 0.05  # first round only
# Outcome of a round: resolved (by round; the last round always resolves), else waiting on the
# customer / on a third party / kept open.
_RESOLVE_P: Final = (0.30, 0.45, 0.55, 0.65, 0.75, 0.85, 1.0)
_WAIT_P: Final = np.array([0.65, 0.20, 0.15])
_PENDING_NAME_P: Final = 0.5  # "Pending", else "Waiting for Customer"
_CUSTOMER_ANSWERS_P: Final = 0.75
_CUSTOMER_MEDIAN_S: Final = 5 * _HOUR
_CUSTOMER_SIGMA: Final = 1.2
_AUTO_RESOLVE_S: Final = 3 * _DAY
_THIRD_PARTY_MEDIAN_S: Final = 20 * _HOUR
_CLOSE_AFTER_S: Final = 2 * _DAY
_CLOSE_JITTER_S: Final = 6 * _HOUR
_REOPEN_P: Final = 0.08
_REOPEN_MEDIAN_S: Final = 8 * _HOUR


def _lognormal(rng: np.random.Generator, median: float | npt.NDArray[Any], sigma: float, n: int) -> I64:
    """Whole seconds, at least 1, so that a ticket's activities never go back in time."""
    gaps = np.exp(np.log(median) + sigma * rng.standard_normal(n))
    return np.maximum(np.rint(gaps), 1).astype(np.int64)


class _Clock:
    """Business hours over the simulated span, by UTC hour bucket."""

    def __init__(self, start: int, end: int) -> None:
        self.first_hour = start // _HOUR
        buckets = end // _HOUR - self.first_hour + 1
        hours = self.first_hour + np.arange(buckets, dtype=np.int64)
        self.hour_of_day = hours % 24
        self.weekday = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday
        self.staffed = (
            (self.weekday < 5)
            & (self.hour_of_day >= _BUSINESS_HOURS[0])
            & (self.hour_of_day < _BUSINESS_HOURS[1])
        )
        # First staffed bucket at or after each one (past the end when none is left: dropped).
        nxt = np.where(self.staffed, np.arange(buckets), buckets + 24)
        self.next_open = np.minimum.accumulate(nxt[::-1])[::-1]

    def arrivals(self, rng: np.random.Generator, n: int, start: int, end: int) -> I64:
        """``n`` creation times in [start, end), by the hour-of-day and weekday rates, sorted."""
        rate = _HOUR_WEIGHTS[self.hour_of_day] * _WEEKDAY_WEIGHTS[self.weekday]
        bucket_start = np.maximum((self.first_hour + np.arange(rate.shape[0])) * _HOUR, start)
        bucket_end = np.minimum((self.first_hour + np.arange(1, rate.shape[0] + 1)) * _HOUR, end)
        width = np.maximum(bucket_end - bucket_start, 0)
        rate = rate * width
        counts = rng.multinomial(n, rate / rate.sum())
        bucket = np.repeat(np.arange(rate.shape[0]), counts)
        created: I64 = bucket_start[bucket] + rng.integers(0, width[bucket], dtype=np.int64)
        created.sort()
        return created

    def staff(self, rng: np.random.Generator, at: I64, urgent: Bool) -> I64:
        """When an agent acts on something due at ``at``: out of hours, non-urgent work waits for
        the next opening plus the backlog."""
        bucket = np.clip(at // _HOUR - self.first_hour, 0, self.staffed.shape[0] - 1)
        waits = ~self.staffed[bucket] & ~urgent
        opening = (self.first_hour + self.next_open[bucket]) * _HOUR
        backlog = np.rint(rng.exponential(_BACKLOG_MEAN_S, at.shape[0])).astype(np.int64)
        return np.where(waits, np.maximum(opening, at) + backlog, at)


@dataclass
class _Desk:
    """The tickets' current state, updated as the simulation goes."""

    status: I8
    priority: I8
    agent: I64
    group: I8
    issue: I8


class _Log:
    """Activities in emission order, each with a snapshot of its ticket's state right after it.
    A ticket's activities are emitted in time order, so a stable sort by time keeps them right,
    and its notes are numbered as they come (``note`` = the note's ordinal in its ticket)."""

    _FIELDS: Final = ("ticket", "at", "performer_type", "performer_id", "kind", "note", "note_type", "tag",
                      "status", "priority", "agent_id", "group", "issue_type")  # fmt: skip

    def __init__(self, desk: _Desk) -> None:
        self.desk = desk
        self.notes = np.zeros(desk.status.shape[0], dtype=np.int64)
        self.parts: dict[str, list[Column]] = {name: [] for name in self._FIELDS}

    def emit(
        self,
        tickets: Idx,
        at: I64,
        kind: int,
        performer_type: int | Column,
        performer_id: int | Column,
        *,
        note_type: int | Column = -1,
        tag: int | Column = -1,
    ) -> None:
        n = tickets.shape[0]
        desk = self.desk
        if kind == NOTE:
            self.notes[tickets] += 1  # a ticket appears at most once per emit
        note = self.notes[tickets] if kind == NOTE else np.zeros(n, np.int64)
        values: tuple[Any, ...] = (
            tickets, at, np.broadcast_to(np.asarray(performer_type, np.int8), n),
            np.broadcast_to(np.asarray(performer_id, np.int64), n), np.full(n, kind, np.int8), note,
            np.broadcast_to(np.asarray(note_type, np.int8), n), np.broadcast_to(np.asarray(tag, np.int8), n),
            desk.status[tickets], desk.priority[tickets], desk.agent[tickets], desk.group[tickets],
            desk.issue[tickets],
        )  # fmt: skip
        for name, value in zip(self._FIELDS, values, strict=True):
            self.parts[name].append(value)

    def columns(self) -> dict[str, Column]:
        return {name: np.concatenate(parts) for name, parts in self.parts.items()}


def _agent_in(rng: np.random.Generator, group: I8, agents: int) -> I64:
    """A random agent of each group; agent ``a`` works in group ``a % len(GROUPS)``."""
    g = group.astype(np.int64)
    per_group = (agents - g + len(GROUPS) - 1) // len(GROUPS)
    return _AGENT_BASE + 1 + g + len(GROUPS) * (rng.random(g.shape[0]) * per_group).astype(np.int64)


def _simulate(tickets: int, seed: int, start: int, end: int, start_ticket_id: int) -> dict[str, Column]:
    rng = np.random.default_rng(seed)
    n = tickets
    agents = int(np.clip(n // 400, len(GROUPS), 2000))
    customers = max(20, n // 3)
    clock = _Clock(start, end)
    created = clock.arrivals(rng, n, start, end)
    requester = _CUSTOMER_BASE + 1 + (customers * rng.random(n) ** 2).astype(np.int64)
    source = _SOURCES[rng.choice(_SOURCES.shape[0], n, p=_SOURCE_P)]
    category = rng.choice(len(CATEGORIES), n, p=_CATEGORY_P).astype(np.int8)
    product = rng.choice(len(PRODUCTS), n, p=_PRODUCT_P).astype(np.int8)
    group = rng.choice(len(GROUPS), n, p=_GROUP_P).astype(np.int8)
    by_agent = np.isin(source, _AGENT_CREATED)
    by_bot = source == _BOT_CREATED
    assigned = by_agent | (rng.random(n) < _ASSIGNED_AT_CREATION_P)
    desk = _Desk(
        status=np.full(n, OPEN, np.int8),
        priority=(1 + rng.choice(4, n, p=_PRIORITY_P)).astype(np.int8),
        agent=np.where(assigned, _agent_in(rng, group, agents), 0),
        group=group,
        issue=rng.choice(len(ISSUE_TYPES), n, p=_ISSUE_P).astype(np.int8),
    )
    log = _Log(desk)
    everyone = np.arange(n)
    creator = np.where(by_agent, desk.agent, np.where(by_bot, 0, requester))
    log.emit(everyone, created, NEW_TICKET, np.where(by_bot, SYSTEM, USER), creator)
    t = created.copy()

    ack = np.flatnonzero(np.isin(source, _ACKNOWLEDGED) & (rng.random(n) < _ACK_P))
    t[ack] += rng.integers(1, 6, ack.shape[0])
    log.emit(ack, t[ack], SEND_EMAIL, SYSTEM, 0)
    auto = np.flatnonzero(np.isin(source, _AUTO_REPLIED) & (rng.random(n) < _AUTO_REPLY_P))
    t[auto] += rng.integers(1, 31, auto.shape[0])
    log.emit(auto, t[auto], NOTE, SYSTEM, 0, note_type=0)

    waiting = np.flatnonzero(~assigned)
    by_rule = rng.random(waiting.shape[0]) < _RULE_ASSIGNS_P
    at = t[waiting] + _lognormal(rng, _ASSIGN_MEDIAN_S, 1.0, waiting.shape[0])
    at = np.where(by_rule, at, clock.staff(rng, at, desk.priority[waiting] == 4))
    desk.agent[waiting] = _agent_in(rng, group[waiting], agents)
    log.emit(waiting, at, AGENT, np.where(by_rule, SYSTEM, USER), np.where(by_rule, 0, desk.agent[waiting]))
    t[waiting] = at

    alive = np.ones(n, dtype=np.bool_)
    for round_no, resolve_p in enumerate(_RESOLVE_P):
        active = np.flatnonzero(alive & (t < end))
        if active.shape[0] == 0:
            break
        _work_round(rng, clock, log, t, active, source, requester, agents, round_no, resolve_p, alive)

    return _finish(log.columns(), end, start_ticket_id, source, requester, category, product)


def _work_round(
    rng: np.random.Generator,
    clock: _Clock,
    log: _Log,
    t: I64,
    a: Idx,
    source: I8,
    requester: I64,
    agents: int,
    round_no: int,
    resolve_p: float,
    alive: Bool,
) -> None:
    """One round for the active tickets ``a``: the agent's reply, then what becomes of the ticket."""
    desk = log.desk
    m = a.shape[0]
    urgent = desk.priority[a] == 4
    medians = (_FIRST_REPLY_MEDIAN_S if round_no == 0 else _NEXT_REPLY_MEDIAN_S)[desk.priority[a] - 1]
    reply_at = clock.staff(rng, t[a] + _lognormal(rng, medians, _REPLY_SIGMA, m), urgent)

    noted = rng.random(m) < _PRIVATE_NOTE_P
    p = a[noted]
    note_at = t[p] + ((reply_at[noted] - t[p]) * rng.uniform(0.3, 0.9, p.shape[0])).astype(np.int64)
    log.emit(p, note_at, NOTE, USER, desk.agent[p], note_type=3)
    note_type = np.where(
        (source[a] == 3) & (rng.random(m) < _PHONE_NOTE_P), 5, np.where(rng.random(m) < _PUBLIC_NOTE_P, 4, 0)
    )
    log.emit(a, reply_at, NOTE, USER, desk.agent[a], note_type=note_type)
    t[a] = reply_at

    # Housekeeping at the reply: priority, transfer (group then agent), tags, issue type.
    p = a[rng.random(m) < _PRIORITY_CHANGE_P]
    moved = desk.priority[p] + rng.choice(np.array([-1, 1], np.int8), p.shape[0])
    desk.priority[p] = np.where(moved < 1, 2, np.where(moved > 4, 3, moved))  # one step, always a change
    log.emit(p, t[p], PRIORITY, USER, desk.agent[p])
    if round_no == 0:
        p = a[rng.random(m) < _TRANSFER_P]
        by = desk.agent[p]
        desk.group[p] = (desk.group[p] + rng.integers(1, len(GROUPS), p.shape[0])) % len(GROUPS)
        log.emit(p, t[p], GROUP, USER, by)
        desk.agent[p] = _agent_in(rng, desk.group[p], agents)
        log.emit(p, t[p], AGENT, USER, by)
        p = a[rng.random(m) < _ISSUE_CHANGE_P]
        desk.issue[p] = (desk.issue[p] + rng.integers(1, len(ISSUE_TYPES), p.shape[0])) % len(ISSUE_TYPES)
        log.emit(p, t[p], ISSUE_TYPE, USER, desk.agent[p])
    p = a[rng.random(m) < _TAG_P]
    log.emit(p, t[p], ADDED_TAGS, USER, desk.agent[p], tag=rng.integers(0, len(TAGS), p.shape[0]))

    # The outcome, set by the agent a few seconds after the reply.
    resolved = rng.random(m) < resolve_p
    outcome = rng.choice(3, m, p=_WAIT_P)
    on_customer = ~resolved & (outcome == 0)
    on_third_party = ~resolved & (outcome == 1)
    waiting_name = np.where(rng.random(m) < _PENDING_NAME_P, PENDING, WAITING_CUSTOMER)
    new_status = np.where(resolved, RESOLVED, np.where(on_customer, waiting_name, WAITING_THIRD_PARTY))
    changed = resolved | on_customer | on_third_party
    c = a[changed]
    t[c] += rng.integers(0, 6, c.shape[0])
    desk.status[c] = new_status[changed]
    log.emit(c, t[c], STATUS, USER, desk.agent[c])

    # Waiting on the customer: an answer reopens the ticket; silence gets it resolved by the system.
    w = a[on_customer]
    answers = rng.random(w.shape[0]) < _CUSTOMER_ANSWERS_P
    r = w[answers]
    answer_at = t[r] + _lognormal(rng, _CUSTOMER_MEDIAN_S, _CUSTOMER_SIGMA, r.shape[0])
    _customer_writes(log, t, r, answer_at, requester)
    silent = w[~answers]
    t[silent] += _AUTO_RESOLVE_S
    desk.status[silent] = RESOLVED
    log.emit(silent, t[silent], STATUS, SYSTEM, 0)

    h = a[on_third_party]
    back_at = t[h] + _lognormal(rng, _THIRD_PARTY_MEDIAN_S, 1.0, h.shape[0])
    t[h] = clock.staff(rng, back_at, urgent[on_third_party])
    desk.status[h] = OPEN
    log.emit(h, t[h], STATUS, USER, desk.agent[h])

    # Resolved: closed by the system later, unless the customer writes first (not in the last round).
    s = np.concatenate([a[resolved], silent])
    close_at = t[s] + _CLOSE_AFTER_S + rng.integers(0, _CLOSE_JITTER_S, s.shape[0])
    reopen_at = t[s] + _lognormal(rng, _REOPEN_MEDIAN_S, 1.0, s.shape[0])
    last_round = round_no == len(_RESOLVE_P) - 1
    reopens = (rng.random(s.shape[0]) < _REOPEN_P) & (reopen_at < close_at) & (not last_round)
    _customer_writes(log, t, s[reopens], reopen_at[reopens], requester)
    closed = s[~reopens]
    t[closed] = close_at[~reopens]
    desk.status[closed] = CLOSED
    log.emit(closed, t[closed], STATUS, SYSTEM, 0)
    alive[closed] = False


def _customer_writes(log: _Log, t: I64, tickets: Idx, at: I64, requester: I64) -> None:
    """The requester writes at ``at``; the system sets the ticket ``Open`` again."""
    t[tickets] = at
    log.emit(tickets, t[tickets], NOTE, USER, requester[tickets], note_type=0)
    log.desk.status[tickets] = OPEN
    log.emit(tickets, t[tickets], STATUS, SYSTEM, 0)


def _finish(
    rows: dict[str, Column],
    end: int,
    start_ticket_id: int,
    source: I8,
    requester: I64,
    category: I8,
    product: I8,
) -> dict[str, Column]:
    """Drop what has not happened by ``end`` and order by time."""
    kept = np.flatnonzero(rows["at"] < end)
    order = kept[np.argsort(rows["at"][kept], kind="stable")]
    ticket = rows["ticket"][order]
    ticket_id = ticket.astype(np.int64) + start_ticket_id
    kind = rows["kind"][order]

    note = rows["note"][order]
    note_id = np.where(note > 0, ticket_id * _NOTES_PER_TICKET + note, 0)

    return {
        "performed_at": rows["at"][order],
        "ticket_id": ticket_id,
        "performer_type": rows["performer_type"][order],
        "performer_id": rows["performer_id"][order],
        "kind": kind,
        "note_id": note_id,
        "note_type": rows["note_type"][order],
        "tag": rows["tag"][order],
        "status": rows["status"][order],
        "priority": rows["priority"][order],
        "agent_id": rows["agent_id"][order],
        "group": rows["group"][order],
        "issue_type": rows["issue_type"][order],
        "source": source[ticket],
        "requester_id": requester[ticket],
        "category": category[ticket],
        "product": product[ticket],
    }


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("end must be timezone-aware")
    return int(moment.astimezone(UTC).timestamp() // 1)


def _check(tickets: int, span: int, name: str) -> None:
    if tickets < 0:
        raise ValueError("tickets must be >= 0")
    if span < 1:
        raise ValueError(f"{name} must be >= 1")


def generate_activity_columns(
    tickets: int, seed: int, end: datetime, days: int, *, start_ticket_id: int = 1
) -> dict[str, Column]:
    """Every activity of ``tickets`` tickets created during the ``days`` days before ``end``
    (whole seconds), as numpy columns named by :data:`COLUMNS`, ordered by ``performed_at``.
    Ticket ids are ``start_ticket_id`` onwards in creation order."""
    _check(tickets, days, "days")
    stop = _epoch(end)
    return _simulate(tickets, seed, stop - days * _DAY, stop, start_ticket_id)


# ---------------------------------------------------------------------------------------------
# Export files: the columns of one window as the export's JSON object.
# ---------------------------------------------------------------------------------------------


def _freshdesk_times(seconds: I64) -> list[str]:
    """``DD-MM-YYYY HH:MM:SS +0000``, built character by character (no per-row formatting)."""
    iso = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").astype("<U19")
    src = np.ascontiguousarray(iso).view(np.uint32).reshape(seconds.shape[0], 19)
    out = np.empty((seconds.shape[0], 25), dtype=np.uint32)
    out[:, 0:2] = src[:, 8:10]
    out[:, 3:5] = src[:, 5:7]
    out[:, 6:10] = src[:, 0:4]
    out[:, 11:19] = src[:, 11:19]
    for position, char in zip((2, 5, 10, 19, 20, 21, 22, 23, 24), "--  +0000", strict=True):
        out[:, position] = ord(char)
    strings: list[str] = out.view("<U25").ravel().tolist()
    return strings


def _labels(pool: tuple[str, ...], codes: Column) -> list[str]:
    values: list[str] = np.array(pool, dtype=object)[codes].tolist()
    return values


def _agents(codes: Column) -> list[int | None]:
    return [agent or None for agent in codes.tolist()]


def _full_sets(columns: Mapping[str, Column], idx: Idx, new_ticket: bool) -> list[dict[str, Any]]:
    """The ticket's whole property set after each of the rows ``idx`` (the KB example's shape)."""
    head = {"new_ticket": True} if new_ticket else {}
    properties = zip(
        _labels(STATUS_NAMES, columns["status"][idx]), columns["priority"][idx].tolist(),
        columns["source"][idx].tolist(), _labels(GROUPS, columns["group"][idx]),
        _agents(columns["agent_id"][idx]),
        columns["requester_id"][idx].tolist(), _labels(CATEGORIES, columns["category"][idx]),
        _labels(ISSUE_TYPES, columns["issue_type"][idx]), _labels(PRODUCTS, columns["product"][idx]),
        strict=True,
    )  # fmt: skip
    return [
        {**head, "status": s, "priority": p, "source": so, "group": g, "agent_id": a, "requester": r,
         "category": ca, "issue_type": i, "product": pr}
        for s, p, so, g, a, r, ca, i, pr in properties
    ]  # fmt: skip


def _changed_values(columns: Mapping[str, Column], kind: int, idx: Idx) -> list[Any]:
    """The new value of the key a property row changes."""
    if kind == STATUS:
        return _labels(STATUS_NAMES, columns["status"][idx])
    if kind == GROUP:
        return _labels(GROUPS, columns["group"][idx])
    if kind == ISSUE_TYPE:
        return _labels(ISSUE_TYPES, columns["issue_type"][idx])
    if kind == AGENT:
        return _agents(columns["agent_id"][idx])
    values: list[Any] = columns["priority"][idx].tolist()
    return values


def _bodies(columns: Mapping[str, Column], full_property_sets: bool) -> list[dict[str, Any]]:
    """The ``activity`` object of each row."""
    kind = columns["kind"]
    bodies = np.empty(kind.shape[0], dtype=object)
    idx = np.flatnonzero(kind == NEW_TICKET)
    bodies[idx] = _full_sets(columns, idx, new_ticket=True)
    idx = np.flatnonzero(kind == NOTE)
    notes = zip(columns["note_id"][idx].tolist(), columns["note_type"][idx].tolist(), strict=True)
    bodies[idx] = [{"note": {"id": note_id, "type": note_type}} for note_id, note_type in notes]
    idx = np.flatnonzero(kind == ADDED_TAGS)
    bodies[idx] = [{"added_tags": [tag]} for tag in _labels(TAGS, columns["tag"][idx])]
    idx = np.flatnonzero(kind == SEND_EMAIL)
    bodies[idx] = [{"send_email": True} for _ in range(idx.shape[0])]
    if full_property_sets:
        idx = np.flatnonzero(np.isin(kind, _PROPERTY_KINDS))
        bodies[idx] = _full_sets(columns, idx, new_ticket=False)
    else:
        for k in _PROPERTY_KINDS:
            idx = np.flatnonzero(kind == k)
            bodies[idx] = [{KINDS[k]: value} for value in _changed_values(columns, k, idx)]
    result: list[dict[str, Any]] = bodies.tolist()
    return result


@contextmanager
def _no_gc() -> Iterator[None]:
    """Millions of small acyclic dicts: the cyclic collector would rescan them again and again
    (twice the build time, growing with the heap) without ever finding garbage."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _export(columns: Mapping[str, Column], start: int, end: int, full_property_sets: bool) -> dict[str, Any]:
    """The export of the window [start, end): rows whose ``performed_at`` falls in it."""
    at = columns["performed_at"]
    lo, hi = np.searchsorted(at, [start, end])
    part = {name: column[lo:hi] for name, column in columns.items()}
    system = part["performer_type"] == SYSTEM
    with _no_gc():
        rows = zip(
            _freshdesk_times(part["performed_at"]), part["ticket_id"].tolist(), system.tolist(),
            part["performer_id"].tolist(), _bodies(part, full_property_sets), strict=True,
        )  # fmt: skip
        activities = [
            {"performed_at": when, "ticket_id": ticket, "performer_type": "system" if is_system else "user",
             "performer_id": None if is_system else performer, "activity": body}
            for when, ticket, is_system, performer, body in rows
        ]  # fmt: skip
    window = _freshdesk_times(np.array([start, end - 1], dtype=np.int64))
    return {
        "metadata": {"start_at": window[0], "end_at": window[1], "activities_count": len(activities)},
        "activities_data": activities,
    }


def generate_export(
    tickets: int,
    *,
    seed: int,
    end: datetime,
    hours: int = 24,
    start_ticket_id: int = 1,
    full_property_sets: bool = False,
) -> dict[str, Any]:
    """One export file (the JSON object) covering the ``hours`` before ``end``, for ``tickets``
    tickets created in that window.  ``full_property_sets`` writes every property change with the
    ticket's whole property set (as in Freshdesk's KB example) instead of only the changed key."""
    _check(tickets, hours, "hours")
    stop = _epoch(end)
    start = stop - hours * _HOUR
    columns = _simulate(tickets, seed, start, stop, start_ticket_id)
    return _export(columns, start, stop, full_property_sets)


def _daily(
    columns: Mapping[str, Column], end: datetime, days: int, full_property_sets: bool
) -> Iterator[dict[str, Any]]:
    stop = _epoch(end)
    for day in range(days, 0, -1):
        yield _export(columns, stop - day * _DAY, stop - (day - 1) * _DAY, full_property_sets)


def generate_exports(
    tickets: int, *, seed: int, end: datetime, days: int, full_property_sets: bool = False
) -> list[dict[str, Any]]:
    """``days`` consecutive daily exports ending at ``end``, oldest first; a ticket's activities
    run on across files (its creation in one, its replies and resolution in later ones)."""
    columns = generate_activity_columns(tickets, seed, end, days)
    return list(_daily(columns, end, days, full_property_sets))


def write_export_files(
    directory: Path,
    columns: Mapping[str, Column],
    *,
    end: datetime,
    days: int,
    full_property_sets: bool = False,
) -> list[Path]:
    """Write the daily exports of ``columns`` (from :func:`generate_activity_columns` with the same
    ``end`` and ``days``) as ``ticket_activities_<YYYY-MM-DDTHHMMSS of the window's end>.json``
    files, oldest first, one day in memory at a time."""
    if days < 1:
        raise ValueError("days must be >= 1")
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    stop = end.astimezone(UTC).replace(microsecond=0)
    exports = _daily(columns, end, days, full_property_sets)
    for day, export in zip(range(days - 1, -1, -1), exports, strict=True):
        path = directory / f"ticket_activities_{stop - timedelta(days=day):%Y-%m-%dT%H%M%S}.json"
        path.write_bytes(orjson.dumps(export))
        paths.append(path)
    return paths
