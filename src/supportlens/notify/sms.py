"""SMS notifications through an HTTP provider: one ``POST <url>`` per recipient with the JSON body
``{"to": "+15551234567", "from": <sms_from, when set>, "body": "..."}`` and
``Authorization: Bearer <token>``.

A 2xx answer means sent (the provider's message id is kept when its JSON has an ``id``); 408, 429,
5xx, timeouts and connection errors are retried; any other answer is permanent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from supportlens.config import Settings
from supportlens.notify.records import Outcome, Recipient, RecipientResult

_RETRYABLE_STATUSES = frozenset({408, 429})
_MAX_ERROR_BODY = 200  # characters of a provider's error answer kept in the attempt's error


@dataclass(frozen=True, slots=True)
class SmsProvider:
    url: str
    token: SecretStr | None = None
    sender: str | None = None
    timeout: float = 10.0

    @classmethod
    def configured(cls, settings: Settings) -> SmsProvider | None:
        """The provider the settings name, or None when SMS is not configured."""
        if not settings.sms_provider_url:
            return None
        return cls(
            url=settings.sms_provider_url,
            token=settings.sms_provider_token,
            sender=settings.sms_from,
            timeout=settings.sms_timeout_seconds,
        )


class SmsSender:
    def __init__(self, provider: SmsProvider) -> None:
        self._provider = provider

    def deliver(
        self, recipients: Sequence[Recipient], subject: str | None, body: str
    ) -> dict[str, RecipientResult]:
        """Send ``body`` to each recipient (an SMS has no subject); what happened, by number."""
        token = self._provider.token
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        # A client per attempt: attempts are rare, and nothing is left open between them.
        with httpx.Client(timeout=self._provider.timeout, headers=headers) as client:
            return {
                recipient.address: self._send(client, recipient.address, body) for recipient in recipients
            }

    def _send(self, client: httpx.Client, number: str, body: str) -> RecipientResult:
        payload: dict[str, str] = {"to": number, "body": body}
        if self._provider.sender:
            payload["from"] = self._provider.sender
        try:
            response = client.post(self._provider.url, json=payload)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:  # a misconfigured URL stays so
            return RecipientResult(Outcome.PERMANENT_FAILURE, f"{type(exc).__name__}: {exc}")
        except httpx.TransportError as exc:  # timeouts, refused or lost connections
            return RecipientResult(Outcome.RETRYABLE_FAILURE, f"{type(exc).__name__}: {exc}")
        if response.is_success:
            return RecipientResult(Outcome.SENT, provider_message_id=_message_id(response))
        retryable = response.status_code in _RETRYABLE_STATUSES or response.status_code >= 500
        error = f"provider answered {response.status_code}: {response.text[:_MAX_ERROR_BODY]}".rstrip(": ")
        return RecipientResult(Outcome.RETRYABLE_FAILURE if retryable else Outcome.PERMANENT_FAILURE, error)


def _message_id(response: httpx.Response) -> str | None:
    try:
        answer: Any = response.json()
    except ValueError:
        return None
    found = answer.get("id") if isinstance(answer, dict) else None
    return None if found is None else str(found)
