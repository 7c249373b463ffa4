"""A demo support desk for the ticket management API: agents in two teams and a queue of tickets
created, answered, escalated and resolved through the ticket service (the real command path, so
their events reach analytics like any other), deterministic for a seed."""

from __future__ import annotations

import random

from supportlens.tickets.changes import Actor
from supportlens.tickets.commands import (
    Author,
    Contact,
    Escalation,
    NewComment,
    NewTicket,
    StatusNote,
    TicketChanges,
)
from supportlens.tickets.records import Agent
from supportlens.tickets.service import TicketService

AGENTS = (
    Agent(
        "agent_tech_001", "Sarah Johnson", "sarah.johnson@example.com", "network_infrastructure", ("network",)
    ),
    Agent("agent_net_002", "Michael Chen", "michael.chen@example.com", "network_engineering", ("network",)),
    Agent("agent_bill_003", "Priya Raman", "priya.raman@example.com", "billing", ("billing",)),
    Agent("agent_bill_004", "Tom Becker", "tom.becker@example.com", "billing", ("billing",)),
)
_PROBLEMS = (
    ("network", "Intermittent connectivity at the {site} office", "Users lose the VPN every few minutes."),
    ("network", "MPLS circuit down at {site}", "The whole {site} site is offline since this morning."),
    ("billing", "Invoice for {site} shows the wrong plan", "We were charged for enterprise, we are on pro."),
    ("billing", "Refund for duplicate payment", "Our card was charged twice for the {site} renewal."),
    ("account", "Cannot reset password for {site} admin", "The reset mail never arrives."),
)
_SITES = ("San Francisco", "Berlin", "Lyon", "Austin", "Sydney", "Toronto")
_PRIORITIES = ("low", "medium", "medium", "high", "urgent")


def fill_desk(tickets: TicketService, workspace_id: str, *, count: int, seed: int) -> int:
    """Creates the agents and ``count`` tickets in various states; the number of tickets created."""
    rng = random.Random(seed)
    for agent in AGENTS:
        tickets.repository.put_agent(workspace_id, agent)
    desk = Actor("agent", "agent_tech_001", "Sarah Johnson")
    for index in range(count):
        category, title, description = rng.choice(_PROBLEMS)
        site = rng.choice(_SITES)
        team = [a for a in AGENTS if category in a.teams] or list(AGENTS)
        agent = rng.choice(team)
        customer = f"cust_{rng.randrange(40):04d}"
        record = tickets.create(
            workspace_id,
            NewTicket(
                title=title.format(site=site),
                description=description.format(site=site),
                customer_id=customer,
                contact=Contact(name=f"Customer {customer[-4:]}", email=f"{customer}@customers.example"),
                category=category,
                priority=rng.choice(_PRIORITIES),
                channel=rng.choice(("email", "web", "phone", "chat")),
                assigned_to=agent.id,
                group_id=category,
                tags=["demo"],
            ),
            actor=desk,
        )
        replier = Author(type="agent", id=agent.id, name=agent.name)
        stage = index % 5
        if stage >= 1:
            tickets.comment(
                workspace_id, record.id, NewComment(content="We are looking into it.", author=replier)
            )
        if stage >= 2:
            tickets.update(
                workspace_id, record.id, TicketChanges(status="pending"), actor=Actor("agent", agent.id)
            )
        if stage == 3:
            reason = "Customer reports business impact"
            tickets.escalate(
                workspace_id, record.id, Escalation(escalation_level=1, reason=reason), actor=desk
            )
        if stage == 4:
            note = StatusNote(customer_update="Fixed on our side, please confirm.")
            tickets.set_status(workspace_id, record.id, "resolved", note, actor=Actor("agent", agent.id))
    return count
