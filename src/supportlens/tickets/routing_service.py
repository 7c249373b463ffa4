"""Routing tickets by the workspace's rules when they are created or changed (the ``Router`` of
tickets/service.py), and escalating the tickets a rule gave a deadline once it passes unresolved.

The rules tried are the workspace's own, in their order, then the rules of the ticket's category's
subcategories (``Category.rules``).  Each matching rule applies in turn to the ticket as the rules
before it left it; one with ``stop_processing`` ends the pass.  The assignee and the priority are
set once: by the request when it names them (an assignee on creation, either on a change), else by
the first rule that sets them; later rules' assignments and priorities are skipped (and say so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from supportlens.auth.repository import NotFound
from supportlens.domain.metrics import MS_PER_MINUTE, human_duration
from supportlens.domain.statuses import DEFAULT_STATUS_CATEGORIES, StatusMap
from supportlens.ingest.timestamps import format_timestamp
from supportlens.tickets.commands import Escalation
from supportlens.tickets.records import TicketRecord, now_ms
from supportlens.tickets.routing import (
    Rule,
    assign_target,
    least_loaded,
    team_members,
    worth_trying,
)
from supportlens.tickets.routing_store import RoutingStore, Timer
from supportlens.tickets.service import SYSTEM, Routed, TicketService, TransitionError

log = logging.getLogger(__name__)

APPLIED = "routing_rule_applied"  # the history entry of each rule that applied
MAX_ESCALATION_LEVEL = 10  # the highest level an Escalation accepts
_BATCH = 500


class RoutingService:
    def __init__(
        self,
        store: RoutingStore,
        tickets: TicketService,
        *,
        statuses: Callable[[str], StatusMap],
        plan_of: Callable[[str, str], str | None] | None,
    ) -> None:
        self.store = store
        self._tickets = tickets
        self._statuses = statuses
        self._plan_of = plan_of  # None: no customer records, so tier conditions never match

    def names_assignee(self, workspace_id: str, value: str) -> bool:
        """Whether ``value`` names an agent or a team of the workspace (``team:<name>`` always does)."""
        return assign_target(value, self._tickets.repository.agents(workspace_id)) is not None

    def rules_for(self, record: TicketRecord) -> list[Rule]:
        """The rules a ticket is routed by, in the order they are tried."""
        rules = [stored.rule for stored in self.store.rules(record.workspace_id)]
        if record.category is not None:
            try:
                category = self.store.category(record.workspace_id, record.category).category
            except NotFound:
                return rules
            rules.extend(category.rules())
        return rules

    def __call__(self, record: TicketRecord, *, created: bool, changed: frozenset[str]) -> Routed:
        rules = [
            rule for rule in self.rules_for(record) if worth_trying(rule, created=created, changed=changed)
        ]
        plan = self._plan(record) if any(rule.conditions.needs_plan for rule in rules) else None
        # Who set the assignee and the priority: the first to do so keeps them.
        decided: dict[str, str] = {}
        if record.assigned_to is not None if created else "assigned_to" in changed:
            decided["assignment"] = "the request"
        if "priority" in changed:
            decided["priority"] = "the request"
        at = record.created_at if created else now_ms()
        routed = Routed(record)
        for rule in rules:
            if not rule.conditions.matches(routed.record, plan):
                continue
            after, done = self._apply(rule, routed.record, decided, at)
            notify = list(dict.fromkeys([*routed.notify, *rule.actions.notify]))
            entry = (APPLIED, {"rule_id": rule.id, "rule_name": rule.name, "actions": done})
            routed = Routed(after, [*routed.applied, entry], notify)
            if rule.stop_processing:
                break
        return routed

    def _plan(self, record: TicketRecord) -> str | None:
        if self._plan_of is None or record.customer_id is None:
            return None
        return self._plan_of(record.workspace_id, record.customer_id)

    def _apply(
        self, rule: Rule, record: TicketRecord, decided: dict[str, str], at: datetime
    ) -> tuple[TicketRecord, dict[str, Any]]:
        """The ticket after the rule's actions, and what they did (for the ticket's history)."""
        actions = rule.actions
        done: dict[str, Any] = {}
        if actions.set_priority is not None:
            if "priority" in decided:
                done["priority_skipped"] = f"set by {decided['priority']}"
            else:
                decided["priority"] = f"rule {rule.name}"
                record = replace(record, priority=actions.set_priority)
                done["set_priority"] = actions.set_priority
        if actions.assign_to is not None:
            if "assignment" in decided:
                done["assignment_skipped"] = f"assigned by {decided['assignment']}"
            else:
                record = self._assign(rule, actions.assign_to, record, done)
                if "assigned_to" in done:
                    decided["assignment"] = f"rule {rule.name}"
        if actions.notify:
            done["notify"] = list(actions.notify)
        if actions.escalate_after is not None:
            timer = self.store.add_timer(
                Timer(
                    record.workspace_id,
                    record.id,
                    rule.id,
                    rule.name,
                    at + timedelta(minutes=actions.escalate_after),
                    actions.escalate_after,
                    actions.notify,
                )
            )
            done["escalate_at"] = format_timestamp(timer.due_at)
        return record, done

    def _assign(self, rule: Rule, value: str, record: TicketRecord, done: dict[str, Any]) -> TicketRecord:
        workspace_id = record.workspace_id
        agents = self._tickets.repository.agents(workspace_id)
        target = assign_target(value, agents)
        if target is None:
            done["assignment_skipped"] = f"no agent or team {value!r}"
            return record
        if target.agent_id is not None:
            if not any(agent.id == target.agent_id and agent.active for agent in agents):
                done["assignment_skipped"] = f"agent {target.agent_id!r} is not active"
                return record
            done["assigned_to"] = target.agent_id
            return replace(record, assigned_to=target.agent_id)
        team = target.team or ""
        members = team_members(team, agents)
        done.update(team=team, assignment=rule.actions.assignment)
        if not members:
            done["assignment_skipped"] = f"team {team!r} has no active agent"
            return replace(record, group_id=team)
        if rule.actions.assignment == "least_loaded":
            loads = self._tickets.repository.open_load(
                workspace_id, members, self._open_statuses(workspace_id)
            )
            chosen = least_loaded(loads)
        else:
            chosen = self.store.take_turn(workspace_id, rule.id, team, members)
        done["assigned_to"] = chosen
        return replace(record, assigned_to=chosen, group_id=team)

    def _open_statuses(self, workspace_id: str) -> list[str]:
        statuses = self._statuses(workspace_id)
        known = set(DEFAULT_STATUS_CATEGORIES) | set(statuses.custom)
        return sorted(name for name in known if not statuses.is_resolved(name))

    # Escalation timers

    def escalate_due(self, now: datetime) -> int:
        """Escalate every ticket whose timer is due at ``now`` and that is not resolved (one level up,
        notifying the rule's addresses); every due timer is done with after.  The number escalated."""
        escalated = 0
        while timers := self.store.due_timers(now, _BATCH):
            for timer in timers:
                escalated += self._escalate(timer)
                self.store.drop_timer(timer)
        return escalated

    def _escalate(self, timer: Timer) -> bool:
        try:
            ticket = self._tickets.get(timer.workspace_id, timer.ticket_id)
        except NotFound:  # deleted since
            return False
        if self._statuses(timer.workspace_id).is_resolved(ticket.status):
            return False
        if ticket.escalation_level >= MAX_ESCALATION_LEVEL:
            return False
        within = human_duration(timer.minutes * MS_PER_MINUTE)
        command = Escalation(
            escalation_level=ticket.escalation_level + 1,
            reason=f"routing rule {timer.rule_name}: not resolved within {within}",
            notify=list(timer.notify),
        )
        try:
            self._tickets.escalate(timer.workspace_id, ticket.id, command, actor=SYSTEM)
        except TransitionError:  # escalated by someone else meanwhile: that escalation stands
            log.info("ticket %s was escalated meanwhile; routing rule %s left it", ticket.id, timer.rule_id)
            return False
        return True
