"""``sla_at_risk`` evaluates only the tickets not resolved at ``as_of``; on random histories (reopens,
resolutions after ``as_of``, snapshot-only tickets), on both engines, it lists exactly the targets
that evaluating every ticket lists.  ``sla_attainment`` counts exactly those targets too (both take
them unordered, from the vectorized evaluator and the reference together)."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.analytics.activity import Filters
from supportlens.analytics.common import PipeContext, conditions
from supportlens.analytics.params import Window
from supportlens.analytics.scope import Conditions
from supportlens.analytics.sla_state import (
    EvaluatedTicket,
    SlaGroupBy,
    SlaSetup,
    at_risk_targets,
    evaluate_tickets,
    sla_at_risk,
    sla_attainment,
)
from supportlens.configuration.sla import SlaPolicyDefinition
from supportlens.domain.periods import PeriodUnit
from supportlens.domain.sla import TargetState, TargetStatus, TargetType
from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from tests.analytics.test_time_metrics_pipe import grouped_batches, load_grouped
from tests.domain.test_timeline import History, at

POLICY = {
    "name": "Tight",
    "default": True,
    "at_risk_percent": 50,
    "targets": {
        "default": [
            {"type": "first_response", "minutes": 20},
            {"type": "next_response", "minutes": 15},
            {"type": "resolution", "minutes": 120},
        ]
    },
}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grouped_batches(), st.lists(st.integers(0, 600), min_size=1, max_size=4))
def test_at_risk_equals_evaluating_every_ticket(
    runtime: Runtime, batch: list[tuple[History, str | None]], moments: list[int]
) -> None:
    workspace, _, _ = load_grouped(runtime, batch)
    runtime.configuration.create_policy(workspace.id, SlaPolicyDefinition.model_validate(POLICY))
    snapshots = [
        {
            "ticket_id": "S1",
            "created_at": at(5).isoformat(),
            "status": "solved",
            "resolved_at": at(100).isoformat(),
        },
        {"ticket_id": "S2", "created_at": at(5).isoformat(), "status": "open"},
    ]
    runtime.ingest.ingest(
        workspace.id, "support_tickets", [RawRow(s, "") for s in snapshots]
    ).committed.result()
    context = runtime.pipe_context(workspace)
    for minute in moments:
        as_of = at(minute)
        filters = Filters(Window(at(-60), at(3000)), None, None, None, None, None, as_of)
        every = evaluate_tickets(context, _in_window(context), as_of=as_of, setup=SlaSetup.of(context))
        expected = [
            (e.sla.ticket_id, t.type.value, t.instance, t.breached, t.at_risk)
            for e, t in at_risk_targets(every)
        ]
        answer = sla_at_risk(context, filters, limit=100_000, offset=0)
        found = [
            (r["ticket_id"], r["target_type"], r["instance"], r["breached"], r["at_risk"])
            for r in answer.rows
        ]
        assert found == expected, minute
        assert answer.rows_before_limit == len(expected)
        # A page is that slice of the whole list, and says how long the whole list is.
        page = sla_at_risk(context, filters, limit=2, offset=1)
        assert [(r["ticket_id"], r["target_type"], r["instance"]) for r in page.rows] == [
            item[:3] for item in expected[1:3]
        ]
        assert page.rows_before_limit == len(expected)

        # Attainment per group and target type: the completed and running targets of every ticket.
        for by, group_of in _ATTAINMENT_GROUPS.items():
            tally: dict[tuple[str | None, str], list[int]] = {}
            for evaluated in every:
                for target in evaluated.sla.targets:
                    key = (group_of(evaluated, target), target.type.value)
                    counts = tally.setdefault(key, [0, 0, 0])
                    counts[{TargetStatus.ACHIEVED: 0, TargetStatus.BREACHED: 1}.get(target.state, 2)] += 1
            attained = sla_attainment(context, filters, by=by, unit=PeriodUnit.DAY)
            assert [(r["group"], r["target_type"]) for r in attained.rows] == sorted(
                tally,
                key=lambda key: (key[0] is None, key[0] or "", list(TargetType).index(TargetType(key[1]))),
            )
            assert {
                (r["group"], r["target_type"]): [r["achieved"], r["breached"], r["running"]]
                for r in attained.rows
            } == tally, (minute, by)


# How the reference's targets fall into sla_attainment's groups.
_ATTAINMENT_GROUPS: dict[SlaGroupBy, Callable[[EvaluatedTicket, TargetState], str | None]] = {
    SlaGroupBy.AGENT: lambda ticket, _: ticket.ticket["agent_id"],
    SlaGroupBy.GROUP: lambda ticket, _: ticket.ticket["group_id"],
    SlaGroupBy.PRIORITY: lambda _, target: target.priority,
    SlaGroupBy.POLICY: lambda _, target: target.policy_id,
    SlaGroupBy.TARGET_TYPE: lambda _, target: target.type.value,
    SlaGroupBy.NONE: lambda _, __: None,
}


def _in_window(context: PipeContext) -> Conditions:
    where = conditions(context)
    where.between("created_at", at(-60), at(3000))
    return where
