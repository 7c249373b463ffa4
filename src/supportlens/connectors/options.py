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
