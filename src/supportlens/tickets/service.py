"""The ticket management service: commands on ticket records, each turned into history entries
whose ticket events reach the activity log through the one ingest path before the command answers
(ARCHITECTURE.md, "One ingest path").

The history doubles as an outbox: entries are stored with the record change in one transaction and
marked delivered once the writer has committed their events, so a crash or a full write queue between
the two loses nothing (``deliver_pending`` sends what is left; event ids make it idempotent).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from supportlens.analytics.sla_state import SlaSetup
from supportlens.auth.repository import Conflict
from supportlens.domain.events import BOOKKEEPING, EventType, TicketEvent
from supportlens.domain.sla import TicketSla, evaluate
from supportlens.domain.statuses import DEFAULT_STATUS_CATEGORIES, StatusCategory, StatusMap
from supportlens.ingest.events import validate_event
from supportlens.ingest.service import IngestService
from supportlens.ingest.tickets import Rejection
from supportlens.ingest.writer import QueueFull
from supportlens.paths import FieldPath, field_path
from supportlens.tickets import changes
from supportlens.tickets.attachment_checks import CheckedFile
from supportlens.tickets.attachments import AttachmentStore
from supportlens.tickets.changes import Actor, EntryMaker
from supportlens.tickets.commands import (
    BulkRequest,
    Escalation,
    Merge,
    NewComment,
    NewTicket,
    StatusNote,
    TicketChanges,
)
from supportlens.tickets.records import CommentRecord, HistoryEntry, TicketRecord, now_ms
from supportlens.tickets.repository import StaleVersion, TicketQuery, TicketRepository
from supportlens.workers.sla_evaluator import FiredLevel

log = logging.getLogger(__name__)

TICKET_API_SOURCE = "ticket_api"
SYSTEM = Actor("system")


class FieldError(ValueError):
    """A request value the workspace's rules refuse (a 422 naming ``field``)."""

    def __init__(self, problems: Sequence[tuple[FieldPath, str]]) -> None:
        super().__init__("; ".join(f"{field_path(path)}: {message}" for path, message in problems))
        self.problems = list(problems)


class TransitionError(Conflict):
    """The ticket is not in a state the command applies to (resolve a resolved ticket, ...)."""


class PreconditionFailed(StaleVersion):
    """If-Match named another version than the current one."""


class DocumentValidator(Protocol):
    def __call__(
        self, workspace_id: str, collection: str, document: Mapping[str, Any]
    ) -> list[tuple[FieldPath, str]]: ...


@dataclass(frozen=True, slots=True)
class Routed:
    """What the routing rules did to a ticket: the record after their actions, one history entry
    per applied rule, and who to tell once the change is stored."""

    record: TicketRecord
    applied: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (kind, details)
    notify: list[str] = field(default_factory=list)


class Router(Protocol):
    def __call__(self, record: TicketRecord, *, created: bool, changed: frozenset[str]) -> Routed: ...


class Notifier(Protocol):
    def __call__(
        self, record: TicketRecord, emails: Sequence[str], template: str, variables: dict[str, Any]
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    ticket_id: str
    outcome: str  # applied | unchanged | rejected
    error: str | None = None
    ticket: TicketRecord | None = None


def _merge_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch of one level: a null value removes the key."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class TicketService:
    def __init__(
        self,
        repository: TicketRepository,
        ingest: IngestService,
        *,
        statuses: Callable[[str], StatusMap],
        default_prefix: Callable[[str], str],
        delivery_timeout: float,
    ) -> None:
        self.repository = repository
        self._ingest = ingest
        self._statuses = statuses
        self._default_prefix = default_prefix
        self._delivery_timeout = delivery_timeout
        # Set by the runtime when those parts exist: custom-field schemas, customers' plans,
        # routing rules and notifications.
        self.validate_document: DocumentValidator | None = None
        self.plan_of: Callable[[str, str], str | None] | None = None
        self.route: Router | None = None
        self.notify: Notifier | None = None
        self.attachments: AttachmentStore | None = None

    # Reads

    def get(
        self, workspace_id: str, ticket_ref: str, *, fixed_filters: Mapping[str, str] | None = None
    ) -> TicketRecord:
        return self.repository.get(workspace_id, ticket_ref, fixed=fixed_filters)

    def search(
        self, workspace_id: str, query: TicketQuery, *, fixed_filters: Mapping[str, str] | None = None
    ) -> tuple[list[TicketRecord], int]:
        return self.repository.search(workspace_id, query, fixed=fixed_filters)

    def history(
        self,
        workspace_id: str,
        ticket_ref: str,
        *,
        page: int,
        limit: int,
        fixed_filters: Mapping[str, str] | None = None,
    ) -> tuple[list[HistoryEntry], int]:
        ticket = self.get(workspace_id, ticket_ref, fixed_filters=fixed_filters)
        return self.repository.history(workspace_id, ticket.id, page=page, limit=limit)

    def slas(
        self, workspace_id: str, records: Sequence[TicketRecord], setup: SlaSetup, *, as_of: datetime
    ) -> dict[str, TicketSla]:
        """The tickets' SLA at ``as_of`` by the SLA engine, from the events of their own history:
        the events this service gave the activity log, read by ticket from an index instead of
        scanning the log (which other sources may extend: /sla reads the log itself)."""
        logs = self.repository.events_of(workspace_id, [record.id for record in records])
        found = {}
        for record in records:
            events = [
                event for event in map(_event_of, logs.get(record.id, ())) if event.type not in BOOKKEEPING
            ]
            if events:
                found[record.id] = evaluate(
                    events,
                    policies=setup.policies,
                    calendars=setup.calendars_for(record.group_id),
                    statuses=setup.statuses,
                    as_of=as_of,
                )
        return found

    def settings_prefix(self, workspace_id: str) -> str:
        return self.repository.settings(workspace_id, self._default_prefix(workspace_id)).prefix

    # Commands

    def create(
        self, workspace_id: str, command: NewTicket, *, actor: Actor, files: Sequence[CheckedFile] = ()
    ) -> TicketRecord:
        at = now_ms()
        record = TicketRecord(
            id=f"ticket_{secrets.token_hex(6)}",
            number="",
            workspace_id=workspace_id,
            title=command.title,
            status="open",
            created_at=at,
            updated_at=at,
            version=1,
            description=command.description,
            priority=command.priority,
            severity=command.severity,
            category=command.category,
            subcategory=command.subcategory,
            customer_id=command.customer_id,
            assigned_to=command.assigned_to,
            group_id=command.group_id,
            channel=command.channel,
            tags=tuple(command.tags),
            contact=None if command.contact is None else command.contact.model_dump(exclude_none=True),
            service_affected=command.service_affected,
            location=None if command.location is None else command.location.model_dump(exclude_none=True),
            metadata=command.metadata,
            custom_fields=command.custom_fields,
        )
        self._check_document(record)
        settings = self.repository.settings(workspace_id, self._default_prefix(workspace_id))
        record = replace(
            record, number=self.repository.reserve_number(workspace_id, at.year, settings.prefix)
        )
        maker = EntryMaker(record.id, at, actor)
        changes.creation(maker, record)
        if record.customer_id is not None and self.plan_of is not None:
            plan = self.plan_of(workspace_id, record.customer_id)
            if plan is not None:
                changes.customer_plan(maker, plan)
        routed = self._routed(maker, record, created=True, changed=frozenset())
        self._attach(workspace_id, maker, files)
        self.repository.create([(routed.record, maker.entries)])
        self._deliver(workspace_id, maker.entries)
        self._tell(routed)
        return routed.record

    def update(
        self,
        workspace_id: str,
        ticket_ref: str,
        command: TicketChanges,
        *,
        actor: Actor,
        if_match: str | None = None,
        fixed_filters: Mapping[str, str] | None = None,
    ) -> TicketRecord:
        current = self.get(workspace_id, ticket_ref, fixed_filters=fixed_filters)
        return self._apply(current, command, actor=actor, if_match=if_match)

    def _apply(
        self, current: TicketRecord, command: TicketChanges, *, actor: Actor, if_match: str | None
    ) -> TicketRecord:
        """``command`` on the ticket as read, stored and delivered (unchanged: the ticket as is)."""
        _check_version(current, if_match)
        changed, maker, routed = self._change(current, command, actor)
        if maker is None:
            return current
        saved = self.repository.save(changed, maker.entries)
        self._deliver(current.workspace_id, maker.entries)
        if routed is not None:
            self._tell(routed)
        return saved

    def set_status(
        self,
        workspace_id: str,
        ticket_ref: str,
        target: str,
        note: StatusNote,
        *,
        actor: Actor,
        if_match: str | None = None,
        fixed_filters: Mapping[str, str] | None = None,
    ) -> TicketRecord:
        """Resolve (``resolved``), close (``closed``) or reopen (``open``) a ticket."""
        current = self.get(workspace_id, ticket_ref, fixed_filters=fixed_filters)
        category = self._statuses(workspace_id).category(current.status)
        resolved = category is not None and category.is_resolved
        if target == "open" and not resolved:
            raise TransitionError(f"ticket {current.number} is {current.status!r}, not resolved or closed")
        if target == "resolved" and resolved:
            raise TransitionError(f"ticket {current.number} is already {current.status!r}")
        if target == "closed" and category is StatusCategory.CLOSED:
            raise TransitionError(f"ticket {current.number} is already closed")
        command = TicketChanges(
            status=target, customer_update=note.customer_update, internal_notes=note.internal_notes
        )
        return self._apply(current, command, actor=actor, if_match=if_match)

    def delete(
        self,
        workspace_id: str,
        ticket_ref: str,
        *,
        actor: Actor,
        if_match: str | None = None,
        fixed_filters: Mapping[str, str] | None = None,
    ) -> None:
        """Soft delete: the ticket leaves every list and lookup; its number is never given again."""
        current = self.get(workspace_id, ticket_ref, fixed_filters=fixed_filters)
        _check_version(current, if_match)
        at = now_ms()
        maker = EntryMaker(current.id, at, actor)
        maker.add("deleted", {"number": current.number}, {"type": EventType.DELETED.value})
        self.repository.save(replace(current, deleted_at=at, updated_at=at), maker.entries)
        self._deliver(workspace_id, maker.entries)

    def comment(
        self,
        workspace_id: str,
        ticket_ref: str,
        command: NewComment,
        *,
        files: Sequence[CheckedFile] = (),
        fixed_filters: Mapping[str, str] | None = None,
    ) -> tuple[TicketRecord, CommentRecord]:
        current = self.get(workspace_id, ticket_ref, fixed_filters=fixed_filters)
        at = now_ms()
        author = command.author
        author_id = author.id or (current.assigned_to if author.type == "agent" else current.customer_id)
        comment = CommentRecord(
            id=f"comment_{secrets.token_hex(6)}",
            ticket_id=current.id,
            content=command.content,
            type=command.type,
            visibility=command.visibility,
            author_type=author.type,
            author_id=author_id,
            author_name=author.name,
            created_at=at,
            metadata=command.metadata,
        )
        self._check_comment(workspace_id, comment)
        actor = Actor(author.type, author_id, author.name)
        maker = EntryMaker(current.id, at, actor)
        details = {"comment_id": comment.id, "visibility": comment.visibility, "type": comment.type}
        after = replace(current, updated_at=at)
        if comment.visibility == "internal":
            changes.message(maker, EventType.INTERNAL_NOTE, details, actor)
        elif author.type == "customer":
            changes.message(maker, EventType.CUSTOMER_MESSAGE, details, actor)
            after = self._reopened_by_customer(workspace_id, current, after, maker)
        else:
            changes.message(maker, EventType.REPLY, details, actor)
            if comment.is_reply and after.first_response_at is None:
                after = replace(after, first_response_at=at)
        self._attach(workspace_id, maker, files, comment_id=comment.id)
        saved = self.repository.save(after, maker.entries, comment=comment)
        self._deliver(workspace_id, maker.entries)
        return saved, comment

    def comments(
        self,
        workspace_id: str,
        ticket_ref: str,
        *,
        visibility: str | None,
        page: int,
        limit: int,
        fixed_filters: Mapping[str, str] | None = None,
    ) -> tuple[list[CommentRecord], int]:
        ticket = self.get(workspace_id, ticket_ref, fixed_filters=fixed_filters)
        return self.repository.comments(
            workspace_id, ticket.id, visibility=visibility, page=page, limit=limit
        )

    def escalate(
        self,
        workspace_id: str,
        ticket_ref: str,
        command: Escalation,
        *,
        actor: Actor,
        fixed_filters: Mapping[str, str] | None = None,
    ) -> TicketRecord:
        """Raise the ticket's escalation level (never lower it), record why, tell ``notify``."""
        current = self.get(workspace_id, ticket_ref, fixed_filters=fixed_filters)
        if command.escalation_level <= current.escalation_level:
            raise TransitionError(
                f"ticket {current.number} is already at escalation level {current.escalation_level}"
            )
        at = now_ms()
        maker = EntryMaker(current.id, at, actor)
        details = {
            "from": current.escalation_level,
            "to": command.escalation_level,
            "reason": command.reason,
            "notify": list(command.notify),
            "metadata": command.metadata,
        }
        maker.add(
            EventType.ESCALATED.value,
            details,
            {
                "type": EventType.ESCALATED.value,
                "from": current.escalation_level,
                "to": command.escalation_level,
            },
        )
        if command.comments:
            changes.message(maker, EventType.INTERNAL_NOTE, {"note": command.comments}, actor)
        after = replace(
            current,
            escalation_level=command.escalation_level,
            escalation_reason=command.reason,
            updated_at=at,
        )
        saved = self.repository.save(after, maker.entries)
        self._deliver(workspace_id, maker.entries)
        if command.notify and self.notify is not None:
            self.notify(
                saved,
                command.notify,
                "escalation",
                {"escalation_level": command.escalation_level, "reason": command.reason},
            )
        return saved

    def apply_sla_escalations(self, workspace_id: str, fired: Sequence[FiredLevel]) -> int:
        """The SLA engine's automatic levels (workers/sla_evaluator.py) on the ticket records: each
        managed ticket rises to the highest level fired (never lower), with a history entry, and
        its assignee is told when the level's actions say ``notify``.  The number raised."""
        highest: dict[str, FiredLevel] = {}
        for level in fired:
            if level.ticket_id not in highest or level.level > highest[level.ticket_id].level:
                highest[level.ticket_id] = level
        raised = 0
        for ticket_id, level in sorted(highest.items()):
            try:
                current = self.get(workspace_id, ticket_id)
            except LookupError:  # not a ticket of the management API
                continue
            if level.level <= current.escalation_level:
                continue
            at = now_ms()
            reason = f"SLA escalation level {level.level} ({level.target_type.replace('_', ' ')})"
            maker = EntryMaker(current.id, at, SYSTEM)
            # The activity log has the evaluator's own ``escalated`` event: this entry is history only.
            maker.add(
                EventType.ESCALATED.value,
                {
                    "from": current.escalation_level,
                    "to": level.level,
                    "reason": reason,
                    "actions": list(level.actions),
                },
            )
            after = replace(current, escalation_level=level.level, escalation_reason=reason, updated_at=at)
            try:
                saved = self.repository.save(after, maker.entries)
            except StaleVersion:  # changed meanwhile: the next pass sees it again
                continue
            raised += 1
            if "notify" in level.actions and saved.assigned_to and self.notify is not None:
                agents = self.repository.agents(workspace_id, [saved.assigned_to])
                emails = [agent.email for agent in agents if agent.email]
                if emails:
                    self.notify(
                        saved, emails, "escalation", {"escalation_level": level.level, "reason": reason}
                    )
        return raised

    def bulk(
        self,
        workspace_id: str,
        command: BulkRequest,
        *,
        actor: Actor,
        fixed_filters: Mapping[str, str] | None = None,
    ) -> list[BulkOutcome]:
        """Each ticket changed or refused on its own; the events of all go to the log at once."""
        outcomes: list[BulkOutcome] = []
        delivered: list[HistoryEntry] = []
        for ticket_ref in command.ticket_ids:
            try:
                current = self.get(workspace_id, ticket_ref, fixed_filters=fixed_filters)
                wanted = command.changes
                values: dict[str, Any] = {
                    name: value
                    for name in ("status", "priority", "assigned_to")
                    if (value := getattr(wanted, name))
                }
                if wanted.tags is not None:
                    removed = set(wanted.tags.remove)
                    kept = [tag for tag in current.tags if tag not in removed]
                    values["tags"] = kept + [tag for tag in wanted.tags.add if tag not in kept]
                update = TicketChanges(**values)
                changed, maker, routed = self._change(current, update, actor)
                if maker is None:
                    outcomes.append(BulkOutcome(current.id, "unchanged", ticket=current))
                    continue
                saved = self.repository.save(changed, maker.entries)
                delivered.extend(maker.entries)
                if routed is not None:
                    self._tell(routed)
                outcomes.append(BulkOutcome(current.id, "applied", ticket=saved))
            except (LookupError, ValueError) as exc:
                outcomes.append(BulkOutcome(ticket_ref, "rejected", error=str(exc)))
        self._deliver(workspace_id, delivered)
        return outcomes

    def merge(
        self,
        workspace_id: str,
        ticket_ref: str,
        command: Merge,
        *,
        actor: Actor,
        fixed_filters: Mapping[str, str] | None = None,
    ) -> tuple[TicketRecord, TicketRecord]:
        """Merge a duplicate into another ticket: the duplicate is closed and points at the
        survivor; both histories say so.  Returns (duplicate, survivor)."""
        duplicate = self.get(workspace_id, ticket_ref, fixed_filters=fixed_filters)
        survivor = self.get(workspace_id, command.into, fixed_filters=fixed_filters)
        if duplicate.id == survivor.id:
            raise FieldError([(("into",), "a ticket cannot be merged into itself")])
        if duplicate.merged_into is not None:
            raise TransitionError(f"ticket {duplicate.number} is already merged into {duplicate.merged_into}")
        if survivor.merged_into is not None:
            raise FieldError([(("into",), f"ticket {survivor.number} is itself merged into another")])
        at = now_ms()
        maker = EntryMaker(duplicate.id, at, actor)
        maker.add(
            EventType.MERGED.value,
            {"into": survivor.id, "into_number": survivor.number, "reason": command.reason},
            {"type": EventType.MERGED.value, "to": survivor.id},
        )
        closed = replace(duplicate, status="closed", merged_into=survivor.id, updated_at=at)
        closed = self._status_times(workspace_id, duplicate, closed, at)
        changes.field_changes(maker, duplicate, closed)
        survivor_maker = EntryMaker(survivor.id, at, actor)
        survivor_maker.add(
            "merged_from", {"ticket_id": duplicate.id, "number": duplicate.number, "reason": command.reason}
        )
        self.repository.relate(workspace_id, "merged_into", duplicate.id, survivor.id, at)
        saved = self.repository.save(closed, maker.entries)
        self.repository.record(workspace_id, survivor_maker.entries)
        self._deliver(workspace_id, maker.entries)
        return saved, self.get(workspace_id, survivor.id)

    def relate(
        self,
        workspace_id: str,
        ticket_ref: str,
        other_ref: str,
        *,
        actor: Actor,
        fixed_filters: Mapping[str, str] | None = None,
    ) -> bool:
        """``related_to`` between two tickets (symmetric); False when they already were."""
        ticket = self.get(workspace_id, ticket_ref, fixed_filters=fixed_filters)
        other = self.get(workspace_id, other_ref, fixed_filters=fixed_filters)
        if ticket.id == other.id:
            raise FieldError([(("ticket_id",), "a ticket cannot be related to itself")])
        source, target = sorted((ticket.id, other.id))
        at = now_ms()
        if not self.repository.relate(workspace_id, "related_to", source, target, at):
            return False
        for this, that in ((ticket, other), (other, ticket)):
            maker = EntryMaker(this.id, at, actor)
            maker.add("related", {"ticket_id": that.id, "number": that.number})
            self.repository.record(workspace_id, maker.entries)
        return True

    def unrelate(
        self,
        workspace_id: str,
        ticket_ref: str,
        other_ref: str,
        *,
        fixed_filters: Mapping[str, str] | None = None,
    ) -> bool:
        ticket = self.get(workspace_id, ticket_ref, fixed_filters=fixed_filters)
        other = self.get(workspace_id, other_ref, fixed_filters=fixed_filters)
        source, target = sorted((ticket.id, other.id))
        return self.repository.unrelate(workspace_id, "related_to", source, target)

    def record(
        self, workspace_id: str, ticket_id: str, kind: str, details: dict[str, Any], *, actor: Actor
    ) -> None:
        """A history entry that changes nothing on the ticket (a notification sent, ...)."""
        maker = EntryMaker(ticket_id, now_ms(), actor)
        maker.add(kind, details)
        self.repository.record(workspace_id, maker.entries)

    # Delivery to the activity log

    def deliver_pending(self, batch: int = 5000) -> int:
        """Send the events a crash or a full queue left behind; the number delivered."""
        sent = 0
        while pending := self.repository.undelivered(batch):
            by_workspace: dict[str, list[HistoryEntry]] = {}
            for workspace_id, entry in pending:
                by_workspace.setdefault(workspace_id, []).append(entry)
            for workspace_id, entries in by_workspace.items():
                if not self._deliver(workspace_id, entries):
                    return sent
                sent += len(entries)
        return sent

    def _deliver(self, workspace_id: str, entries: Iterable[HistoryEntry]) -> bool:
        """Hand the entries' events to the writer and wait until they are committed; True when
        they were (else they stay in the outbox for ``deliver_pending``)."""
        carried = [entry for entry in entries if entry.event is not None]
        if not carried:
            return True
        events = [_event(entry) for entry in carried]
        try:
            result = self._ingest.ingest_events(
                workspace_id, events, [], source=TICKET_API_SOURCE, quarantine_as=TICKET_API_SOURCE
            )
            result.committed.result(timeout=self._delivery_timeout)
        except (QueueFull, FutureTimeout) as exc:
            log.warning("ticket events left in the outbox for later delivery: %s", exc)
            return False
        self.repository.mark_delivered(workspace_id, [entry.event_id for entry in carried])
        return True

    # Internals

    def _check_document(self, record: TicketRecord) -> None:
        """The workspace's tickets schema, on seed 001's view of the ticket (custom fields at the
        top level); errors name the ticket API's fields."""
        seed_view = {
            "subject": record.title,
            "description": record.description,
            "status": record.status,
            "priority": record.priority,
            "category": record.category,
            "assignee": record.assigned_to,
            "channel": record.channel,
            "tags": list(record.tags),
        }
        names: dict[str | int, FieldPath] = {"subject": ("title",), "assignee": ("assigned_to",)}
        names.update({key: ("custom_fields", key) for key in record.custom_fields if key not in seed_view})
        self._validate(record.workspace_id, "tickets", {**record.custom_fields, **seed_view}, names)

    def _check_comment(self, workspace_id: str, comment: CommentRecord) -> None:
        seed_view = {
            "body": comment.content,
            "type": "internal_note" if comment.visibility == "internal" else "reply",
            "author": comment.author_name or comment.author_id,
            "timestamp": comment.created_at.isoformat().replace("+00:00", "Z"),
        }
        self._validate(workspace_id, "responses", seed_view, {"body": ("content",), "type": ("visibility",)})

    def _validate(
        self, workspace_id: str, collection: str, document: dict[str, Any], names: dict[str | int, FieldPath]
    ) -> None:
        """FieldError naming each problem by the API's field (``names``: seed 001's name -> ours;
        a problem of the whole document is one of the custom fields)."""
        if self.validate_document is None:
            return
        present = {key: value for key, value in document.items() if value is not None}
        problems = self.validate_document(workspace_id, collection, present)
        if problems:
            raise FieldError(
                [
                    ((*names.get(path[0], (path[0],)), *path[1:]) if path else ("custom_fields",), message)
                    for path, message in problems
                ]
            )

    def _known_status(self, workspace_id: str, status: str) -> None:
        statuses = self._statuses(workspace_id)
        known = set(DEFAULT_STATUS_CATEGORIES) | set(statuses.custom)
        if status not in known:
            raise FieldError(
                [(("status",), f"unknown status {status!r}; use one of {', '.join(sorted(known))}")]
            )

    def _status_times(
        self, workspace_id: str, before: TicketRecord, after: TicketRecord, at: datetime
    ) -> TicketRecord:
        """resolved_at and closed_at follow the status: set on entering, cleared on reopening."""
        if before.status == after.status:
            return after
        statuses = self._statuses(workspace_id)
        category = statuses.category(after.status)
        if category is not None and category.is_resolved:
            resolved_at = before.resolved_at if statuses.is_resolved(before.status) else at
            closed_at = at if category is StatusCategory.CLOSED else None
            return replace(after, resolved_at=resolved_at, closed_at=closed_at)
        return replace(after, resolved_at=None, closed_at=None)

    def _reopened_by_customer(
        self, workspace_id: str, current: TicketRecord, after: TicketRecord, maker: EntryMaker
    ) -> TicketRecord:
        settings = self.repository.settings(workspace_id, self._default_prefix(workspace_id))
        if not settings.reopen_on_customer_reply or not self._statuses(workspace_id).is_resolved(
            current.status
        ):
            return after
        reopened = self._status_times(
            workspace_id, current, replace(after, status="reopened"), after.updated_at
        )
        changes.field_changes(maker, current, reopened)
        return reopened

    def _change(
        self, current: TicketRecord, command: TicketChanges, actor: Actor
    ) -> tuple[TicketRecord, EntryMaker | None, Routed | None]:
        """The record after ``command`` and the entries that say what changed (None: nothing did)."""
        workspace_id = current.workspace_id
        given = command.model_fields_set
        values: dict[str, Any] = {}
        for name in given - {
            "internal_notes",
            "customer_update",
            "metadata",
            "custom_fields",
            "contact",
            "location",
        }:
            values[name] = getattr(command, name)
        if "tags" in values:
            values["tags"] = tuple(values["tags"] or ())
        if values.get("status") is None:
            values.pop("status", None)
        else:
            self._known_status(workspace_id, values["status"])
        if "title" in values and values["title"] is None:
            raise FieldError([(("title",), "a ticket needs a title")])
        if "priority" in values and values["priority"] is None:
            raise FieldError([(("priority",), "cannot be cleared; set another priority")])
        for name in ("contact", "location"):
            if name in given:
                model = getattr(command, name)
                values[name] = None if model is None else model.model_dump(exclude_none=True)
        if command.metadata is not None:
            values["metadata"] = _merge_patch(current.metadata, command.metadata)
        if command.custom_fields is not None:
            values["custom_fields"] = _merge_patch(current.custom_fields, command.custom_fields)
        at = now_ms()
        after = replace(current, **values)
        after = self._status_times(workspace_id, current, after, at)
        if after != current:
            self._check_document(after)
        maker = EntryMaker(current.id, at, actor)
        changes.field_changes(maker, current, after)
        routed: Routed | None = None
        touched = frozenset(name for name in values if getattr(current, name) != getattr(after, name))
        if touched:
            routed = self._routed(maker, after, created=False, changed=touched)
            after = routed.record
        if command.internal_notes:
            changes.message(maker, EventType.INTERNAL_NOTE, {"note": command.internal_notes}, actor)
        if command.customer_update:
            replier = (
                Actor("agent", actor.id or after.assigned_to, actor.name) if actor.type != "agent" else actor
            )
            changes.message(maker, EventType.REPLY, {"message": command.customer_update}, replier)
            if after.first_response_at is None:
                after = replace(after, first_response_at=at)
        if not maker.entries:
            return current, None, None
        return replace(after, updated_at=at), maker, routed

    def _routed(
        self, maker: EntryMaker, record: TicketRecord, *, created: bool, changed: frozenset[str]
    ) -> Routed:
        """Apply the routing rules; their changes are recorded as the system's."""
        if self.route is None:
            return Routed(record)
        routed = self.route(record, created=created, changed=changed)
        for kind, details in routed.applied:
            maker.add(kind, details, actor=SYSTEM)
        before_actor, maker.actor = maker.actor, SYSTEM
        changes.field_changes(maker, record, routed.record)
        maker.actor = before_actor
        return routed

    def _attach(
        self,
        workspace_id: str,
        maker: EntryMaker,
        files: Sequence[CheckedFile],
        *,
        comment_id: str | None = None,
    ) -> None:
        """Store already checked files of a ticket (or of one of its comments), each with a history
        entry.  Before the record: a failure after this leaves unreachable files, never a ticket
        that lost its files."""
        if files and self.attachments is None:
            raise RuntimeError("attachments are not configured")
        for file in files:
            assert self.attachments is not None
            stored = self.attachments.put(workspace_id, maker.ticket_id, file, comment_id=comment_id)
            details = {"attachment_id": stored.id, "filename": stored.filename, "size": stored.size}
            maker.add("attachment_added", {**details, "comment_id": comment_id} if comment_id else details)

    def _tell(self, routed: Routed) -> None:
        if routed.notify and self.notify is not None:
            self.notify(routed.record, routed.notify, "ticket_created", {})


def _check_version(current: TicketRecord, if_match: str | None) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    tags = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    if current.etag not in tags:
        raise PreconditionFailed(
            f"ticket {current.number} is at version {current.version} ({current.etag});"
            f" If-Match was {if_match}"
        )


def _event(entry: HistoryEntry) -> TicketEvent:
    assert entry.event is not None
    return _event_of(entry.event)


def _event_of(event: dict[str, Any]) -> TicketEvent:
    outcome = validate_event(event)
    if isinstance(outcome, Rejection):  # our own events: a bug, never a client's fault
        raise RuntimeError(f"invalid ticket event {event}: {outcome.column}: {outcome.message}")
    return outcome
