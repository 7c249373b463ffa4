"""Tokens: random secrets shown once, stored as SHA-256 hashes, with scopes, grants and fixed filters."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from supportlens.analytics.scope import FILTERABLE_COLUMNS
from supportlens.domain.models import normalize_label, normalize_priority

TOKEN_PREFIX = "sl_"


class Scope(StrEnum):
    ADMIN = "admin"  # everything in its workspace, including tokens
    APPEND = "append"  # POST events (optionally only to named datasources)
    READ = "read"  # GET pipes (optionally only named pipes)
    TICKETS = "tickets"  # create and change tickets, comments and attachments (/v1/support)


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalize_filter(column: str, value: str) -> tuple[str, str]:
    """A fixed filter ``column=value``, normalized the way stored tickets are."""
    if column not in FILTERABLE_COLUMNS:
        allowed = ", ".join(sorted(FILTERABLE_COLUMNS))
        raise ValueError(f"cannot filter on {column!r}; use one of {allowed}")
    if column == "priority":
        folded = normalize_priority(value)
    elif column in {"category", "status", "channel"}:
        folded = normalize_label(value)
    else:
        folded = value.strip()
    if not folded:
        raise ValueError(f"fixed filter {column!r} needs a value")
    return column, folded


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    workspace_id: str
    name: str
    scopes: frozenset[Scope]
    datasources: frozenset[str] | None = None  # None: every datasource
    pipes: frozenset[str] | None = None  # None: every pipe
    fixed_filters: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def can_read_pipe(self, pipe: str) -> bool:
        if Scope.ADMIN in self.scopes:
            return True
        return Scope.READ in self.scopes and (self.pipes is None or pipe in self.pipes)

    def can_append(self, datasource: str) -> bool:
        if Scope.ADMIN in self.scopes:
            return True
        return Scope.APPEND in self.scopes and (self.datasources is None or datasource in self.datasources)
