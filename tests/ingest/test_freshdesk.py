"""Freshdesk ticket-activities exports → canonical ticket events: mapping, rejections, stable ids."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.demo.activities import generate_export
from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.ingest.freshdesk import (
    FreshdeskExport,
    FreshdeskFormatError,
    events_to_rows,
    parse_export,
    parse_freshdesk_timestamp,
)
from supportlens.ingest.tickets import Rejection

AT = "21-04-2017 09:38:24 +0000"
AT_UTC = datetime(2017, 4, 21, 9, 38, 24, tzinfo=UTC)
AT_MS = 1492767504000
REQUESTER = 145423
AGENT = 149018

SEED_EXAMPLE: dict[str, Any] = {
    "metadata": {"start_at": "20-04-2017 10:00:00 +0000", "end_at": "21-04-2017 09:59:59 +0000", "activities_count": 2},
    "activities_data": [
        {"performed_at": "21-04-2017 09:33:38 +0000", "ticket_id": 600, "performer_type": "user", "performer_id": 149018,
         "activity": {"note": {"id": 4025864, "type": 4}}},
        {"performed_at": "21-04-2017 09:38:24 +0000", "ticket_id": 704, "performer_type": "user", "performer_id": 149018,
         "activity": {"shipping_address": "N/A", "shipment_date": "21 Apr, 2017", "category": "Phone",
                      "contacted_customer": True, "issue_type": "Incident", "source": 3, "status": "Open",
                      "priority": 4, "group": "refund", "agent_id": 149018, "requester": 145423, "product": "mobile"}},
    ],
}  # fmt: skip


def activity(
    body: dict[str, Any], *, ticket: object = 704, performer: object = AGENT, **overrides: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "performed_at": AT,
        "ticket_id": ticket,
        "performer_type": "user",
        "performer_id": performer,
    }
    row.update(overrides)
    row["activity"] = body
    return row


def parse(*activities: object, **kwargs: Any) -> FreshdeskExport:
    return parse_export(orjson.dumps({"activities_data": list(activities)}), **kwargs)


def only_event(*activities: object) -> TicketEvent:
    result = parse(*activities)
    assert not result.rejected, result.rejected
    (event,) = [e for e in result.events if e.ticket_id == "704" and e.at == AT_UTC]
    return event


def prop_id(key: str) -> str:
    return f"freshdesk:704:{AT_MS}:{key}:"


# ---------------------------------------------------------------------------------------------
# The seed's example file
# ---------------------------------------------------------------------------------------------


def test_seed_example_converts_to_the_expected_events() -> None:
    result = parse_export(orjson.dumps(SEED_EXAMPLE))
    assert result.start_at == datetime(2017, 4, 20, 10, tzinfo=UTC)
    assert result.end_at == datetime(2017, 4, 21, 9, 59, 59, tzinfo=UTC)
    assert (result.activities_count, result.imported, result.ignored, result.rejected) == (2, 2, 0, [])
    assert result.requesters == {"704": frozenset({"145423"})}

    note, *properties = result.events
    assert note == TicketEvent(
        event_id="freshdesk:note:4025864",
        ticket_id="600",
        at=datetime(2017, 4, 21, 9, 33, 38, tzinfo=UTC),
        type=EventType.REPLY,
        actor_type=ActorType.AGENT,
        actor_id="149018",
        to_value="public_note",
    )
    assert note.is_agent_reply

    expected: list[tuple[str, EventType, str | None, str, dict[str, Any]]] = [
        ("shipping_address", EventType.FIELD_CHANGED, "shipping_address", "N/A", {}),
        ("shipment_date", EventType.FIELD_CHANGED, "shipment_date", "21 Apr, 2017", {}),
        ("category", EventType.FIELD_CHANGED, "category", "phone", {"category": "phone"}),
        ("contacted_customer", EventType.FIELD_CHANGED, "contacted_customer", "true", {}),
        ("issue_type", EventType.FIELD_CHANGED, "issue_type", "Incident", {}),
        ("source", EventType.FIELD_CHANGED, "channel", "phone", {"channel": "phone"}),
        ("status", EventType.STATUS_CHANGED, None, "open", {"status": "open"}),
        ("priority", EventType.PRIORITY_CHANGED, None, "urgent", {"priority": "urgent"}),
        ("group", EventType.FIELD_CHANGED, "group_id", "refund", {"group_id": "refund"}),
        ("agent_id", EventType.ASSIGNED, None, "149018", {"agent_id": "149018"}),
        ("requester", EventType.FIELD_CHANGED, "customer_id", "145423", {"customer_id": "145423"}),
        ("product", EventType.FIELD_CHANGED, "product", "mobile", {}),
    ]
    assert len(properties) == len(expected)
    for event, (key, type_, field, to, attributes) in zip(properties, expected, strict=True):
        assert event.event_id.startswith(prop_id(key)), event.event_id
        assert len(event.event_id.rsplit(":", 1)[1]) == 16
        base = TicketEvent(
            event_id=event.event_id,
            ticket_id="704",
            at=AT_UTC,
            type=type_,
            actor_type=ActorType.AGENT,
            actor_id="149018",
            field=field,
            to_value=to,
        )
        assert event == replace(base, **attributes)


def test_sparse_status_change() -> None:
    event = only_event(activity({"status": "Pending"}))
    assert event.type is EventType.STATUS_CHANGED
    assert (event.to_value, event.status, event.field) == ("pending", "pending", None)
    assert (event.actor_type, event.actor_id) == (ActorType.AGENT, "149018")
    assert event.event_id.startswith(prop_id("status"))


def test_custom_status_names_are_kept_normalized() -> None:
    event = only_event(activity({"status": "  Waiting on Legal "}))
    assert (event.to_value, event.status) == ("waiting on legal", "waiting on legal")


# ---------------------------------------------------------------------------------------------
# Notes and performers
# ---------------------------------------------------------------------------------------------

AGENT_NOTES = {0: EventType.REPLY, 1: EventType.INTERNAL_NOTE, 2: EventType.INTERNAL_NOTE,
               3: EventType.INTERNAL_NOTE, 4: EventType.REPLY, 5: EventType.REPLY, 6: EventType.INTERNAL_NOTE}  # fmt: skip
KIND_NAMES = (
    "reply",
    "forward",
    "reply_to_forward",
    "private_note",
    "public_note",
    "phone_note",
    "broadcast_note",
)


@pytest.mark.parametrize("note_type", range(7))
@pytest.mark.parametrize("who", ["agent", "customer", "system"])
def test_every_note_type_by_every_performer(note_type: int, who: str) -> None:
    # The requester is named in a later activity of the same file: the first pass finds it.
    note = activity(
        {"note": {"id": 77, "type": note_type}},
        performer={"agent": AGENT, "customer": REQUESTER, "system": None}[who],
        performer_type="system" if who == "system" else "user",
    )
    result = parse(note, activity({"requester_id": str(REQUESTER)}, performed_at="22-04-2017 08:00:00 +0000"))
    assert not result.rejected
    event = result.events[0]
    assert event.event_id == "freshdesk:note:77"
    assert event.to_value == KIND_NAMES[note_type]
    if who == "customer":
        assert (event.type, event.actor_type, event.actor_id) == (
            EventType.CUSTOMER_MESSAGE,
            ActorType.CUSTOMER,
            "145423",
        )
    elif who == "agent":
        assert (event.type, event.actor_type, event.actor_id) == (
            AGENT_NOTES[note_type],
            ActorType.AGENT,
            "149018",
        )
    else:
        assert (event.type, event.actor_type, event.actor_id) == (
            AGENT_NOTES[note_type],
            ActorType.SYSTEM,
            None,
        )
        assert not event.is_agent_reply
    assert event.is_agent_reply == (who == "agent" and AGENT_NOTES[note_type] is EventType.REPLY)


def test_a_user_is_an_agent_when_no_requester_is_known() -> None:
    event = only_event(activity({"note": {"id": 1, "type": 0}}, performer=REQUESTER))
    assert (event.type, event.actor_type) == (EventType.REPLY, ActorType.AGENT)


def test_requesters_from_earlier_files_are_used_and_passed_on() -> None:
    first = parse(activity({"new_ticket": True, "requester": REQUESTER, "status": "Open"}))
    second = parse(activity({"note": {"id": 5, "type": 0}}, performer=REQUESTER), requesters=first.requesters)
    assert (second.events[0].type, second.events[0].actor_type) == (
        EventType.CUSTOMER_MESSAGE,
        ActorType.CUSTOMER,
    )
    assert second.requesters["704"] == frozenset({"145423"})
    # A changed requester: both count as the customer.
    third = parse(activity({"requester_id": 9}), requesters=second.requesters)
    assert third.requesters["704"] == frozenset({"145423", "9"})


@pytest.mark.parametrize("performer_type", ["system", "automation", "bot"])
def test_non_user_performers_are_the_system(performer_type: str) -> None:
    event = only_event(activity({"status": "Closed"}, performer_type=performer_type, performer=None))
    assert (event.actor_type, event.actor_id) == (ActorType.SYSTEM, None)


def test_changes_by_the_customer_carry_the_customer_as_actor() -> None:
    result = parse(
        activity({"new_ticket": True, "requester": REQUESTER, "status": "Open"}, performer=REQUESTER)
    )
    (created,) = result.events
    assert (created.type, created.actor_type, created.actor_id) == (
        EventType.CREATED,
        ActorType.CUSTOMER,
        "145423",
    )


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


def test_new_ticket_carries_the_initial_attributes() -> None:
    body = {"new_ticket": True, "status": "Open", "priority": 2, "source": 1, "agent_id": None, "group_id": 12,
            "requester_id": REQUESTER, "category": " Billing ", "issue_type": "Question"}  # fmt: skip
    result = parse(activity(body, performer=REQUESTER))
    created, custom = result.events
    assert created == TicketEvent(
        event_id=created.event_id,
        ticket_id="704",
        at=AT_UTC,
        type=EventType.CREATED,
        actor_type=ActorType.CUSTOMER,
        actor_id="145423",
        status="open",
        priority="medium",
        channel="email",
        group_id="12",
        customer_id="145423",
        category="billing",
    )
    assert created.event_id.startswith(prop_id("new_ticket"))
    assert (custom.type, custom.field, custom.to_value) == (EventType.FIELD_CHANGED, "issue_type", "Question")
    assert result.imported == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "low"),
        (2, "medium"),
        (3, "high"),
        (4, "urgent"),
        ("4", "urgent"),
        ("High", "high"),
        ("critical", "urgent"),
    ],
)
def test_priority_mapping(value: object, expected: str) -> None:
    event = only_event(activity({"priority": value}))
    assert (event.type, event.to_value, event.priority) == (EventType.PRIORITY_CHANGED, expected, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, "email"), (2, "portal"), (3, "phone"), (7, "chat"), (9, "feedback_widget"), (10, "outbound_email"),
     (12, "bot"), (15, "source_15"), ("3", "phone"), ("Web Chat", "web chat")],
)  # fmt: skip
def test_source_mapping(value: object, expected: str) -> None:
    event = only_event(activity({"source": value}))
    assert (event.type, event.field, event.to_value, event.channel) == (
        EventType.FIELD_CHANGED,
        "channel",
        expected,
        expected,
    )


def test_assignment_and_unassignment() -> None:
    assigned = only_event(activity({"agent_id": 42}))
    assert (assigned.type, assigned.to_value, assigned.agent_id) == (EventType.ASSIGNED, "42", "42")
    unassigned = only_event(activity({"agent_id": None}))
    assert (unassigned.type, unassigned.to_value, unassigned.agent_id) == (EventType.ASSIGNED, None, None)


@pytest.mark.parametrize(
    ("body", "field", "to", "attribute"),
    [
        ({"group": "Refund"}, "group_id", "Refund", "group_id"),
        ({"group_id": 7}, "group_id", "7", "group_id"),
        ({"requester": 5}, "customer_id", "5", "customer_id"),
        ({"requester_id": "c-9"}, "customer_id", "c-9", "customer_id"),
        ({"category": "Phone"}, "category", "phone", "category"),
    ],
)
def test_known_attributes(body: dict[str, Any], field: str, to: str, attribute: str) -> None:
    event = only_event(activity(body))
    assert (event.type, event.field, event.to_value, event.attribute(attribute)) == (
        EventType.FIELD_CHANGED,
        field,
        to,
        to,
    )


def test_tags_deleted_and_custom_fields() -> None:
    body = {"added_tags": ["vip", "refund"], "removed_tags": ["new"], "deleted": True, "spam": True,
            "product": None, "contacted_customer": False, "count": 3, "address": {"b": 1, "a": [1, "x"]}}  # fmt: skip
    result = parse(activity(body))
    by_key = {e.event_id.split(":")[3]: e for e in result.events}
    assert (by_key["added_tags"].field, by_key["added_tags"].to_value, by_key["added_tags"].from_value) == (
        "tags",
        '["vip","refund"]',
        None,
    )
    assert (
        by_key["removed_tags"].field,
        by_key["removed_tags"].to_value,
        by_key["removed_tags"].from_value,
    ) == ("tags", None, '["new"]')
    assert by_key["deleted"].type is EventType.DELETED
    assert {
        k: (e.field, e.to_value)
        for k, e in by_key.items()
        if k not in ("added_tags", "removed_tags", "deleted")
    } == {
        "spam": ("spam", "true"),
        "product": ("product", None),
        "contacted_customer": ("contacted_customer", "false"),
        "count": ("count", "3"),
        "address": ("address", '{"b":1,"a":[1,"x"]}'),
    }
    restored = only_event(activity({"deleted": False}))
    assert (restored.type, restored.field, restored.to_value) == (EventType.FIELD_CHANGED, "deleted", "false")


def test_activities_without_analytics_meaning_are_counted_as_ignored() -> None:
    result = parse(
        activity({"send_email": True}),
        activity({"added_watcher": [1]}),
        activity({"automation": "Close resolved tickets"}, performer_type="system", performer=None),
        activity({"spam": False, "thank_you_note": True}),
        activity({"new_ticket": False}),
        activity({}),
        activity({"automation": "Escalate", "priority": 4}, performer_type="system", performer=None),
    )
    assert (result.imported, result.ignored, result.rejected) == (1, 6, [])
    assert [e.type for e in result.events] == [EventType.PRIORITY_CHANGED]


# ---------------------------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("21-04-2017 09:33:38 +0000", datetime(2017, 4, 21, 9, 33, 38, tzinfo=UTC)),
        ("21-04-2017 09:33:38 +0530", datetime(2017, 4, 21, 4, 3, 38, tzinfo=UTC)),
        ("21-04-2017 09:33:38 -0800", datetime(2017, 4, 21, 17, 33, 38, tzinfo=UTC)),
        ("01-01-2020 02:00:00 +0300", datetime(2019, 12, 31, 23, 0, tzinfo=UTC)),
        ("31-12-2019 20:00:00 -0430", datetime(2020, 1, 1, 0, 30, tzinfo=UTC)),
        ("21-04-2017 09:33:38 +05:30", datetime(2017, 4, 21, 4, 3, 38, tzinfo=UTC)),
    ],
)
def test_timestamps_with_offsets_land_in_utc(text: str, utc: datetime) -> None:
    assert parse_freshdesk_timestamp(text) == utc
    event = parse(activity({"status": "Open"}, performed_at=text)).events[0]
    assert event.at == utc
    assert event.at.utcoffset() == timedelta(0)
    assert event.event_id.split(":")[2] == str(int(utc.timestamp()) * 1000)


def test_the_same_instant_in_two_offsets_gets_the_same_id() -> None:
    a = parse(activity({"status": "Open"}, performed_at="21-04-2017 09:33:38 +0000")).events[0]
    b = parse(activity({"status": "Open"}, performed_at="21-04-2017 15:03:38 +0530")).events[0]
    assert a == b


# ---------------------------------------------------------------------------------------------
# Rejections and malformed files
# ---------------------------------------------------------------------------------------------

GOOD = activity({"status": "Open"})


def without(key: str) -> dict[str, Any]:
    row = dict(GOOD)
    del row[key]
    return row


@pytest.mark.parametrize(
    ("bad", "column"),
    [
        (without("performed_at"), "performed_at"),
        (activity({"status": "Open"}, performed_at="2017-04-21 09:33:38"), "performed_at"),
        (activity({"status": "Open"}, performed_at="21-04-2017 09:33:38"), "performed_at"),
        (activity({"status": "Open"}, performed_at="32-04-2017 09:33:38 +0000"), "performed_at"),
        (activity({"status": "Open"}, performed_at=1492767504), "performed_at"),
        (activity({"status": "Open"}, performed_at="21-04-2300 09:33:38 +0000"), "performed_at"),
        (without("ticket_id"), "ticket_id"),
        (activity({"status": "Open"}, ticket=True), "ticket_id"),
        (activity({"status": "Open"}, ticket=7.5), "ticket_id"),
        (activity({"status": "Open"}, ticket="  "), "ticket_id"),
        (without("performer_type"), "performer_type"),
        (activity({"status": "Open"}, performer_type=1), "performer_type"),
        (activity({"status": "Open"}, performer=None), "performer_id"),
        (activity({"status": "Open"}, performer=[1]), "performer_id"),
        (without("activity"), "activity"),
        (activity(["status"]), "activity"),  # type: ignore[arg-type]
        ("not an object", ""),
        (None, ""),
        (activity({"note": 5}), "activity.note"),
        (activity({"note": {"type": 0}}), "activity.note.id"),
        (activity({"note": {"id": 1, "type": 7}}), "activity.note.type"),
        (activity({"note": {"id": 1, "type": "0"}}), "activity.note.type"),
        (activity({"note": {"id": 1}}), "activity.note.type"),
        (activity({"priority": 0}), "activity.priority"),
        (activity({"priority": 5}), "activity.priority"),
        (activity({"priority": True}), "activity.priority"),
        (activity({"priority": "severe"}), "activity.priority"),
        (activity({"priority": None}), "activity.priority"),
        (activity({"status": 2}), "activity.status"),
        (activity({"status": ""}), "activity.status"),
        (activity({"source": 0}), "activity.source"),
        (activity({"source": 1.5}), "activity.source"),
        (activity({"agent_id": {"id": 1}}), "activity.agent_id"),
        (activity({"new_ticket": "yes"}), "activity.new_ticket"),
        (activity({"status": "Open", "priority": 9}), "activity.priority"),  # all or nothing
    ],
)
def test_bad_activities_are_rejected_with_the_field(bad: object, column: str) -> None:
    result = parse(GOOD, bad, GOOD)
    assert (result.imported, result.ignored) == (2, 0)
    (rejected,) = result.rejected
    assert rejected.index == 1
    assert rejected.rejection.column == column, rejected.rejection
    assert rejected.rejection.message
    assert orjson.loads(rejected.raw) == bad
    assert [e.ticket_id for e in result.events] == ["704", "704"]


def test_rejection_messages_are_clear() -> None:
    result = parse(activity({"priority": 7}), activity({"note": {"id": 1, "type": 9}}), without("ticket_id"))
    assert [r.rejection for r in result.rejected] == [
        Rejection("activity.priority", "7 is not a priority (1 low, 2 medium, 3 high, 4 urgent)"),
        Rejection("activity.note.type", "9 is not a note type (0-6)"),
        Rejection("ticket_id", "is required"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not a JSON document"),
        (b"", "not a JSON document"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"metadata": {}}', "'activities_data' must be an array"),
        (b'{"activities_data": {"a": 1}}', "'activities_data' must be an array"),
        (b'{"activities_data": [], "metadata": []}', "'metadata' must be an object"),
        (b'{"activities_data": [], "metadata": {"start_at": "2017-04-20"}}', "metadata.start_at"),
        (b'{"activities_data": [], "metadata": {"end_at": 5}}', "metadata.end_at"),
        (b'{"activities_data": [], "metadata": {"activities_count": "2"}}', "metadata.activities_count"),
        (b'{"activities_data": [], "metadata": {"activities_count": -1}}', "metadata.activities_count"),
    ],
)
def test_malformed_files_raise(data: bytes, message: str) -> None:
    with pytest.raises(FreshdeskFormatError, match=message):
        parse_export(data)


def test_a_file_without_metadata_is_fine() -> None:
    result = parse_export(b'{"activities_data": []}')
    assert (result.start_at, result.end_at, result.activities_count, result.events) == (None, None, None, [])


def test_every_activity_is_accounted_for() -> None:
    export = generate_export(200, seed=11, end=datetime(2024, 3, 5, 10, tzinfo=UTC))
    export["activities_data"][3:3] = [{"ticket_id": 1}, "junk", activity({"send_email": True})]
    result = parse_export(orjson.dumps(export))
    assert result.imported + result.ignored + len(result.rejected) == len(export["activities_data"])
    assert [r.index for r in result.rejected] == [3, 4]


# ---------------------------------------------------------------------------------------------
# Stable, collision-free event ids
# ---------------------------------------------------------------------------------------------


def test_importing_again_and_overlapping_files_give_the_same_ids() -> None:
    export = generate_export(300, seed=5, end=datetime(2024, 3, 5, 10, tzinfo=UTC), full_property_sets=False)
    data = orjson.dumps(export)
    full = parse_export(data)
    ids = [e.event_id for e in full.events]
    assert len(set(ids)) == len(ids)
    assert [e.event_id for e in parse_export(data).events] == ids

    activities = export["activities_data"]
    cut_a, cut_b = len(activities) * 2 // 3, len(activities) // 3
    first = parse(*activities[:cut_a])
    second = parse(*activities[cut_b:], requesters=first.requesters)
    assert {e.event_id for e in first.events} | {e.event_id for e in second.events} == set(ids)
    overlap = parse(*activities[cut_b:cut_a])
    assert {e.event_id for e in first.events} & {e.event_id for e in second.events} == {
        e.event_id for e in overlap.events
    }


def test_same_second_changes_get_distinct_ids() -> None:
    result = parse(
        activity({"status": "Pending"}),
        activity({"status": "Open"}),  # another value
        activity({"status": "Pending"}, performer=1),  # another person
        activity({"status": "Pending"}, performer_type="system", performer=None),
        activity({"status": "Pending"}, ticket="704:1"),
        activity({"Pending": "status"}),
    )
    assert len({e.event_id for e in result.events}) == 6


def test_ids_are_equal_only_for_equal_events_in_a_full_property_export() -> None:
    export = generate_export(300, seed=8, end=datetime(2024, 3, 5, 10, tzinfo=UTC), full_property_sets=True)
    result = parse_export(orjson.dumps(export))
    assert not result.rejected
    seen: dict[str, TicketEvent] = {}
    for event in result.events:
        assert seen.setdefault(event.event_id, event) == event


TIMES = st.sampled_from(["21-04-2017 09:38:24 +0000", "21-04-2017 15:08:24 +0530", "21-04-2017 09:38:25 +0000",
                         "20-04-2017 23:38:24 -1000", "01-01-2020 00:00:00 +0000"])  # fmt: skip
KEYS = st.sampled_from(["status", "priority", "agent_id", "group", "group_id", "requester", "source", "issue_type",
                        "a:b", "added_tags", "deleted", "new_ticket"])  # fmt: skip
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(1, 4), st.sampled_from(["Open", "Pending", "open", "x:y", "1"]),
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
)  # fmt: skip
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "performed_at": TIMES,
    "ticket_id": st.sampled_from([1, "1", 2, "1:2", "a"]),
    "performer_type": st.sampled_from(["user", "system"]),
    "performer_id": st.sampled_from([1, "1", 2, 145423]),
    "activity": st.dictionaries(KEYS, VALUES, max_size=4),
}


@st.composite
def activity_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Random activities, each followed by a near twin: identical, or different in one part (the
    cases where a weak id scheme collides)."""
    rows: list[dict[str, Any]] = []
    for row in draw(st.lists(st.fixed_dictionaries(FIELDS), max_size=10)):
        twin = dict(row)
        part = draw(st.sampled_from([*FIELDS, "values", "same"]))
        if part == "values":
            twin["activity"] = {key: draw(VALUES) for key in row["activity"]}
        elif part != "same":
            twin[part] = draw(FIELDS[part])
        rows += [row, twin]
    return rows


def canonical(row: dict[str, Any], key: str) -> tuple[object, ...]:
    moment = parse_freshdesk_timestamp(row["performed_at"])
    performer = str(row["performer_id"]) if row["performer_id"] is not None else None
    value = orjson.dumps(row["activity"][key], option=orjson.OPT_SORT_KEYS)
    return (str(row["ticket_id"]), moment, key, row["performer_type"], performer, value)


@settings(max_examples=150, deadline=None)
@given(activity_sets())
def test_no_id_collision_among_distinct_activities(rows: list[dict[str, Any]]) -> None:
    result = parse(*rows)
    owners: dict[str, set[tuple[object, ...]]] = {}
    seen: dict[str, TicketEvent] = {}
    for row in rows:
        for event in parse(row).events:
            # freshdesk:{ticket}:{ms}:{key}:{16 hex}, where ticket ids and keys may contain ':'.
            prefix = f"freshdesk:{event.ticket_id}:{int(event.at.timestamp()) * 1000}:"
            assert event.event_id.startswith(prefix)
            key = event.event_id[len(prefix) : -17]
            owners.setdefault(event.event_id, set()).add(canonical(row, key))
    assert all(len(sources) == 1 for sources in owners.values()), owners
    for event in result.events:
        assert seen.setdefault(event.event_id, event) == event


# ---------------------------------------------------------------------------------------------
# Events API rows
# ---------------------------------------------------------------------------------------------


def test_events_to_rows() -> None:
    result = parse_export(orjson.dumps(SEED_EXAMPLE))
    rows = events_to_rows(result.events)
    assert rows[0] == {
        "event_id": "freshdesk:note:4025864",
        "ticket_id": "600",
        "at": "2017-04-21T09:33:38.000Z",
        "type": "reply",
        "actor_type": "agent",
        "actor_id": "149018",
        "to": "public_note",
    }
    status = next(r for r in rows if r["type"] == "status_changed")
    assert status == {"event_id": status["event_id"], "ticket_id": "704", "at": "2017-04-21T09:38:24.000Z",
                      "type": "status_changed", "actor_type": "agent", "actor_id": "149018", "to": "open",
                      "status": "open"}  # fmt: skip
    full = TicketEvent(
        event_id="e", ticket_id="t", at=datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), type=EventType.RATED,
        actor_type=None, field="f", from_value="a", to_value="b", score=5, customer_id="c", agent_id="g",
        group_id="gr", category="cat", priority="high", status="open", channel="email", subject="s", tags=("x", "y"),
    )  # fmt: skip
    assert events_to_rows([full]) == [
        {"event_id": "e", "ticket_id": "t", "at": "2024-01-02T03:04:05.678Z", "type": "rated", "field": "f",
         "from": "a", "to": "b", "score": 5, "customer_id": "c", "agent_id": "g", "group_id": "gr",
         "category": "cat", "priority": "high", "status": "open", "channel": "email", "subject": "s",
         "tags": ["x", "y"]}
    ]  # fmt: skip
