"""Where a value sits in a request body or document, and how clients write that place."""

from __future__ import annotations

import json
from collections.abc import Sequence

FieldPath = tuple[str | int, ...]


def field_path(loc: Sequence[int | str]) -> str:
    """A location as clients write it: ``versions[0].windows[1].end``, ``names["On hold"]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(part)}]"
    return path
