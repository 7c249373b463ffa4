"""Status categories (METRICS.md): every helpdesk's status names fold into six categories.

Durations such as requester wait or agent work are defined on categories, so that a Freshdesk
"Waiting for Customer" and a Zendesk "pending" count alike.  A workspace may add its own names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from supportlens.domain.models import normalize_label


class StatusCategory(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"  # waiting on the customer
    ON_HOLD = "on_hold"  # waiting on a third party
    SOLVED = "solved"
    CLOSED = "closed"

    @property
    def is_resolved(self) -> bool:
        return self in RESOLVED_CATEGORIES


RESOLVED_CATEGORIES: frozenset[StatusCategory] = frozenset({StatusCategory.SOLVED, StatusCategory.CLOSED})
# Statuses that stop the resolution clock by default (METRICS.md, SLA pausing).
PAUSING_CATEGORIES: frozenset[StatusCategory] = frozenset({StatusCategory.PENDING, StatusCategory.ON_HOLD})

_C = StatusCategory
# Names as stored (trimmed, lower-case).  Covers the seeds and the big helpdesks' defaults.
DEFAULT_STATUS_CATEGORIES: Mapping[str, StatusCategory] = MappingProxyType(
    {
        "new": _C.NEW,
        "open": _C.OPEN,
        "reopened": _C.OPEN,
        "in_progress": _C.OPEN,
        "in progress": _C.OPEN,
        "escalated": _C.OPEN,
        "pending": _C.PENDING,
        "waiting for customer": _C.PENDING,
        "waiting on customer": _C.PENDING,
        "awaiting customer": _C.PENDING,
        "waiting on contact": _C.PENDING,  # HubSpot's default pipeline
        "waiting on us": _C.OPEN,  # HubSpot's default pipeline
        "waiting for third party": _C.ON_HOLD,
        "waiting on third party": _C.ON_HOLD,
        "on_hold": _C.ON_HOLD,
        "on hold": _C.ON_HOLD,
        "hold": _C.ON_HOLD,
        "solved": _C.SOLVED,
        "resolved": _C.SOLVED,
        "closed": _C.CLOSED,
    }
)

# A status nobody mapped is treated as work in progress: the ticket is neither waiting nor done.
UNMAPPED_CATEGORY = StatusCategory.OPEN


@dataclass(frozen=True, slots=True)
class StatusMap:
    """The defaults plus a workspace's own names (which win over the defaults)."""

    custom: Mapping[str, StatusCategory] = field(default_factory=dict)

    def category(self, status: str | None) -> StatusCategory | None:
        name = normalize_label(status)
        if name is None:
            return None
        found = self.custom.get(name)
        if found is None:
            found = DEFAULT_STATUS_CATEGORIES.get(name, UNMAPPED_CATEGORY)
        return found

    def is_resolved(self, status: str | None) -> bool:
        category = self.category(status)
        return category is not None and category.is_resolved

    def resolved_names(self) -> frozenset[str]:
        """Every known name whose category counts as resolved (for queries over stored names)."""
        names = {n for n, c in DEFAULT_STATUS_CATEGORIES.items() if c.is_resolved and n not in self.custom}
        names.update(n for n, c in self.custom.items() if c.is_resolved)
        return frozenset(names)


DEFAULT_STATUS_MAP = StatusMap()
