"""Reading a connection's ``options`` the same way in every connector: flags, and the look-back and
page size every incremental read has; ValueError naming the option at fault."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any


def is_whole(value: object) -> bool:
    """An int that is not a bool (JSON ``true`` is not a number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def flag(options: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"option {name}: expected true or false")
    return value


def retention_days(options: Mapping[str, Any], *, default: int) -> int:
    """The connection's rolling window (``retention_days``): a first or full sync reads that far
    back, and retention removes its tickets not updated within it."""
    days = options.get("retention_days", default)
    if not is_whole(days) or not 1 <= days <= 36_500:
        raise ValueError("option retention_days: expected a whole number of days, 1..36500")
    return int(days)


def ticket_id_prefix(options: Mapping[str, Any]) -> str:
    """``ticket_id_prefix``: put before every ticket id of the connection (e.g. ``zd-``), so that
    two helpdesks numbering their tickets alike can share a workspace."""
    prefix = options.get("ticket_id_prefix", "")
    if not isinstance(prefix, str) or len(prefix) > 32:
        raise ValueError("option ticket_id_prefix: expected a string of at most 32 characters")
    return prefix


def shared_options(options: Mapping[str, Any]) -> tuple[int | None, str]:
    """The options every connector has, checked: ``retention_days`` (None: the settings') and
    ``ticket_id_prefix``."""
    days = retention_days(options, default=1) if "retention_days" in options else None
    return days, ticket_id_prefix(options)


def paging(
    options: Mapping[str, Any], *, lookback_minutes: int, max_per_page: int, page_option: str = "per_page"
) -> tuple[timedelta, int]:
    """``lookback_minutes`` (how far before a time cursor a resumed read starts again, for late
    updates) and the page size, at most the API's."""
    lookback = options.get("lookback_minutes", lookback_minutes)
    per_page = options.get(page_option, max_per_page)
    if not is_whole(lookback) or lookback < 0:
        raise ValueError("option lookback_minutes: expected a whole number of minutes >= 0")
    if not is_whole(per_page) or not 1 <= per_page <= max_per_page:
        raise ValueError(f"option {page_option}: expected 1..{max_per_page}")
    return timedelta(minutes=lookback), per_page
