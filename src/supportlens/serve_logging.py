"""How ``supportlens serve`` logs: uvicorn's configuration, plus SupportLens' own records through
the same kind of handler, and access lines with any ``token`` query parameter redacted (clients
written for Tinybird pass their token as ``?token=``; it must never reach a log)."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

REDACTED = "[redacted]"
# ``token=`` as a query parameter (after ``?`` or ``&``), its value up to the next ``&`` or ``#``.
_TOKEN_VALUE = re.compile(r"(?i)([?&]token=)[^&#\s]*")


def redact_tokens(path: str) -> str:
    """``path`` (with its query string) with every ``token`` parameter's value redacted."""
    return _TOKEN_VALUE.sub(rf"\g<1>{REDACTED}", path)


class RedactTokens(logging.Filter):
    """On uvicorn's access records (args: client, method, path with query, HTTP version, status):
    the path with its tokens redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_tokens(args[2]), args[3], args[4])
        return True


def serve_logging() -> dict[str, Any]:
    """uvicorn's logging configuration, extended: SupportLens' records (store upgrades,
    restatements, failed writes and syncs) with their time and source, which Python would
    otherwise not show below warnings; access lines without tokens."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    config["handlers"]["access"]["filters"] = ["redact_tokens"]
    config["formatters"]["app"] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "fmt": "%(levelprefix)s %(asctime)s %(name)s: %(message)s",
    }
    config["handlers"]["app"] = {
        "formatter": "app",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["supportlens"] = {"handlers": ["app"], "level": "INFO", "propagate": False}
    return config
