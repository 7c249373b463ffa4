"""Support categories and the SLA targets they set, through the SLA engine rather than beside it: a
category with an ``sla`` keeps an SLA policy of its own (named ``category <id>``, conditions: that
category, targets for every priority), placed before the workspace's other policies so that it wins.
Replacing the category replaces the policy; removing its ``sla`` or the category deletes it."""

from __future__ import annotations

from contextlib import suppress

from supportlens.auth.repository import NotFound
from supportlens.configuration.repository import ConfigurationRepository
from supportlens.configuration.sla import SlaPolicyDefinition
from supportlens.tickets.routing import Category
from supportlens.tickets.routing_store import RoutingStore, StoredCategory, check_version


def policy_definition(category: Category) -> SlaPolicyDefinition:
    """The SLA policy carrying the category's targets (its ``sla`` must be set)."""
    assert category.sla is not None
    targets = [
        {"type": kind, "minutes": minutes}
        for kind, minutes in (
            ("first_response", category.sla.response_minutes),
            ("resolution", category.sla.resolution_minutes),
        )
        if minutes is not None
    ]
    return SlaPolicyDefinition.model_validate(
        {
            "name": f"category {category.id}",
            "conditions": {"category": [category.id]},
            "targets": {"default": targets},
        }
    )


class CategoryService:
    def __init__(self, store: RoutingStore, configuration: ConfigurationRepository) -> None:
        self.store = store
        self._configuration = configuration

    def create(self, workspace_id: str, category: Category) -> StoredCategory:
        """Conflict when the id is taken (or, with an ``sla``, when a policy has the policy's name)."""
        stored = self.store.create_category(workspace_id, category)
        if category.sla is None:
            return stored
        try:
            policy_id = self._sync_policy(workspace_id, category, None)
        except BaseException:
            self.store.delete_category(workspace_id, category.id)
            raise
        return self.store.set_category_policy(workspace_id, category.id, policy_id)

    def replace(
        self, workspace_id: str, category: Category, *, if_match: str | None = None
    ) -> StoredCategory:
        current = self.store.category(workspace_id, category.id)
        check_version(current, if_match)
        policy_id = self._sync_policy(workspace_id, category, current.sla_policy_id)
        return self.store.replace_category(workspace_id, category, policy_id, if_match=if_match)

    def delete(self, workspace_id: str, category_id: str, *, if_match: str | None = None) -> None:
        deleted = self.store.delete_category(workspace_id, category_id, if_match=if_match)
        if deleted.sla_policy_id is not None:
            self._drop_policy(workspace_id, deleted.sla_policy_id)

    def _sync_policy(self, workspace_id: str, category: Category, policy_id: str | None) -> str | None:
        """Make the category's policy say what its ``sla`` says; the policy's id (None: no sla)."""
        if category.sla is None:
            if policy_id is not None:
                self._drop_policy(workspace_id, policy_id)
            return None
        definition = policy_definition(category)
        if policy_id is not None:
            try:
                return self._configuration.replace_policy(workspace_id, policy_id, definition).id
            except NotFound:  # someone deleted it through /v1/sla-policies: made again
                pass
        created = self._configuration.create_policy(workspace_id, definition)
        others = [p.id for p in self._configuration.policies(workspace_id) if p.id != created.id]
        self._configuration.set_policy_order(workspace_id, [created.id, *others])
        return created.id

    def _drop_policy(self, workspace_id: str, policy_id: str) -> None:
        with suppress(NotFound):  # already deleted through /v1/sla-policies
            self._configuration.delete_policy(workspace_id, policy_id)
