"""Access lines of ``supportlens serve`` never carry a token (``serve_logging.redact_tokens``)."""

from __future__ import annotations

import logging

import pytest

from supportlens.serve_logging import REDACTED, RedactTokens, redact_tokens


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v0/pipes/x.json?token=sl_abc", f"/v0/pipes/x.json?token={REDACTED}"),
        ("/v0/pipes/x.json?a=1&token=sl_abc&b=2", f"/v0/pipes/x.json?a=1&token={REDACTED}&b=2"),
        ("/x?TOKEN=sl_abc#part", f"/x?TOKEN={REDACTED}#part"),
        ("/x?token=a&token=b", f"/x?token={REDACTED}&token={REDACTED}"),
        ("/x?token=", f"/x?token={REDACTED}"),
        ("/x?mytoken=keep&tokens=keep", "/x?mytoken=keep&tokens=keep"),
        ("/v1/support/tickets/token=keep", "/v1/support/tickets/token=keep"),
    ],
)
def test_token_values_are_redacted(path: str, expected: str) -> None:
    assert redact_tokens(path) == expected


def test_the_filter_rewrites_uvicorns_access_record() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/v0/pipes/x.json?token=sl_secret", "1.1", 200), None,
    )  # fmt: skip
    assert RedactTokens().filter(record)
    assert "sl_secret" not in record.getMessage()
    assert record.getMessage() == f'127.0.0.1:5000 - "GET /v0/pipes/x.json?token={REDACTED} HTTP/1.1" 200'
