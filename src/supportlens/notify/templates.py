"""Notification texts: named built-in templates, and the caller's own text for ``custom``.

Templates are Jinja2, rendered in a sandbox (caller-supplied subjects and messages are templates
too, so ``{{ customer_name }}`` works in them) with strict undefined variables: a template that uses
a variable nobody supplied is an error naming it, never a message with a hole in it.  Variables are
the ticket's own fields (``ticket_variables``) overridden by the request's ``variables``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing

from supportlens.notify.records import Channel, InvalidField, Loc

CUSTOM = "custom"
MAX_BODY_CHARS = 100_000
MAX_SMS_CHARS = 1_600  # ten concatenated segments, what SMS providers commonly accept at most


@dataclass(frozen=True, slots=True)
class BuiltIn:
    subject: str
    email: str
    sms: str


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str | None  # email only
    body: str


_COMMENTS = """{% if comments %}
Comments:
{% for comment in comments %}
{{ comment.author_name }} ({{ comment.created_at }}):
{{ comment.content }}
{% endfor %}{% endif %}"""

BUILT_INS: Mapping[str, BuiltIn] = {
    "ticket_created": BuiltIn(
        subject="[{{ ticket_number }}] {{ title }}",
        # Also what routing rules send their notify lists (teams): no greeting without a name.
        email=(
            "{% if customer_name is defined %}Hello {{ customer_name }},\n\n{% endif %}"
            "Ticket {{ ticket_number }} has been opened: {{ title }}.\n"
            "{% if priority is defined %}Priority: {{ priority }}.\n{% endif %}"
            "{% if expected_response is defined %}Expected response by {{ expected_response }}.\n{% endif %}"
            "{% if description is defined %}\n{{ description }}\n{% endif %}"
        ),
        sms="Ticket {{ ticket_number }} has been opened: {{ title }}.",
    ),
    "status_update": BuiltIn(
        subject="Update on ticket {{ ticket_number }}: {{ title }}",
        email=(
            "Hello {{ customer_name }},\n\n"
            "Ticket {{ ticket_number }} ({{ title }}) is now {{ status }}.\n"
            "{% if update is defined %}\n{{ update }}\n\n{% endif %}"
            "{% if expected_resolution is defined %}"
            "Expected resolution: {{ expected_resolution }}\n{% endif %}"
            "{% if next_update is defined %}Next update: {{ next_update }}\n{% endif %}"
        ),
        sms=(
            "Ticket {{ ticket_number }} is now {{ status }}."
            "{% if expected_resolution is defined %}"
            " Expected resolution: {{ expected_resolution }}.{% endif %}"
        ),
    ),
    "escalation": BuiltIn(
        subject="Escalated to level {{ escalation_level }}: {{ ticket_number }} {{ title }}",
        email=(
            "Ticket {{ ticket_number }} ({{ title }}) was escalated to level {{ escalation_level }}.\n"
            "Priority: {{ priority }}. Status: {{ status }}.\n"
            "{% if reason is defined %}Reason: {{ reason }}\n{% endif %}"
        ),
        sms="Ticket {{ ticket_number }} escalated to level {{ escalation_level }}: {{ title }}",
    ),
    "resolved": BuiltIn(
        subject="Resolved: {{ ticket_number }} {{ title }}",
        email=(
            "Hello {{ customer_name }},\n\n"
            "Ticket {{ ticket_number }} ({{ title }}) has been resolved.\n"
            "{% if resolution is defined %}\nResolution: {{ resolution }}\n{% endif %}"
            "\nIf the problem persists, reply to this message and we will reopen the ticket."
        ),
        sms="Ticket {{ ticket_number }} has been resolved.",
    ),
}
TEMPLATE_NAMES = (*BUILT_INS, CUSTOM)
_CUSTOM_SUBJECT = "Ticket {{ ticket_number }}: {{ title }}"

# The ticket's fields offered to templates, under the names templates use.
_TICKET_FIELDS = {
    "id": "ticket_id",
    "number": "ticket_number",
    **{
        name: name
        for name in (
            "title",
            "description",
            "status",
            "priority",
            "severity",
            "category",
            "subcategory",
            "customer_id",
            "assigned_to",
            "group_id",
            "escalation_level",
            "created_at",
            "updated_at",
            "resolved_at",
        )
    },
}


class _MissingVariable(UndefinedError):
    def __init__(self, name: str | None, message: str | None = None) -> None:
        super().__init__(message)
        self.name = name  # None: an attribute of a value, not a variable


class _NamedStrictUndefined(StrictUndefined):
    """``StrictUndefined`` whose error carries the missing name, so that the 422 can point at it."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[Exception] = UndefinedError,
    ) -> None:
        variable = name if obj is missing else None
        super().__init__(hint, obj, name, partial(_MissingVariable, variable))  # type: ignore[arg-type]


_REPEATABLE = (str, list, tuple)


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox, also refusing expressions that allocate without bound (``'x' * 10**9``): callers
    write templates."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("the ** operator is not allowed in notification templates")
        sequence, count = (left, right) if isinstance(left, _REPEATABLE) else (right, left)
        if (
            isinstance(sequence, _REPEATABLE)
            and isinstance(count, int)
            and len(sequence) * count > MAX_BODY_CHARS
        ):
            raise SecurityError(f"a repeated value would exceed {MAX_BODY_CHARS} characters")
        return left * right


_ENVIRONMENT = _BoundedSandbox(undefined=_NamedStrictUndefined, autoescape=False)


def ticket_variables(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """A ticket's fields as template variables: ``ticket_number``, ``title``, ``status``, ...,
    ``customer_name``/``customer_email`` from its contact; fields without a value are left out."""
    variables = {
        name: _value(ticket[field]) for field, name in _TICKET_FIELDS.items() if ticket.get(field) is not None
    }
    contact = ticket.get("contact") or {}
    for field in ("name", "email"):
        if contact.get(field):
            variables[f"customer_{field}"] = contact[field]
    return variables


def render(
    template: str,
    channel: Channel,
    variables: Mapping[str, Any],
    *,
    subject: str | None = None,
    message: str | None = None,
    comments: Sequence[Mapping[str, Any]] = (),
) -> RenderedMessage:
    """The subject and body of a notification: built-in ``template``, or ``custom`` (``message`` as
    the body); ``subject`` replaces the template's subject.  ``comments`` (author_name, created_at,
    content) are listed at the end of an email.  InvalidField names the field at fault."""
    context = {**variables, "comments": [_comment(c) for c in comments]}
    if template == CUSTOM:
        if message is None or not message.strip():
            raise InvalidField(("message",), "the custom template sends the request's 'message': give one")
        body = _render(message, context, ("message",))
    elif template in BUILT_INS:
        built_in = BUILT_INS[template]
        body = _render(built_in.email if channel is Channel.EMAIL else built_in.sms, context, ("template",))
    else:
        known = ", ".join(TEMPLATE_NAMES)
        raise InvalidField(("template",), f"unknown template {template!r}; use one of {known}")
    if channel is Channel.SMS:
        if len(body) > MAX_SMS_CHARS:
            raise InvalidField(
                ("message",), f"an SMS holds at most {MAX_SMS_CHARS} characters, this one has {len(body)}"
            )
        return RenderedMessage(None, body.strip())
    body = body.rstrip() + "\n" + _render(_COMMENTS, context, ("include_comments",))
    if subject is not None:
        title = _render(subject, context, ("subject",))
    else:
        title = _render(
            BUILT_INS[template].subject if template in BUILT_INS else _CUSTOM_SUBJECT, context, ("template",)
        )
    return RenderedMessage(" ".join(title.split()), body)  # one line: a header cannot break


def _render(source: str, context: Mapping[str, Any], loc: Loc) -> str:
    try:
        text = _compile(source).render(context)
    except _MissingVariable as exc:
        if exc.name is None:
            raise InvalidField(loc, f"invalid template: {exc.message}") from None
        raise InvalidField(
            ("variables", exc.name),
            f"the notification uses the variable {exc.name!r}: give it in 'variables'",
        ) from None
    except TemplateError as exc:  # syntax, sandbox refusals
        raise InvalidField(loc, f"invalid template: {exc.message or exc}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError) as exc:  # expressions the caller wrote
        raise InvalidField(loc, f"the template failed: {exc}") from None
    if len(text) > MAX_BODY_CHARS:
        raise InvalidField(loc, f"the rendered text exceeds {MAX_BODY_CHARS} characters")
    return text


@lru_cache(maxsize=256)
def _compile(source: str) -> Template:
    return _ENVIRONMENT.from_string(source)


def _comment(comment: Mapping[str, Any]) -> dict[str, str]:
    return {
        "author_name": str(comment.get("author_name") or "Support"),
        "created_at": _value(comment.get("created_at") or ""),
        "content": str(comment.get("content") or ""),
    }


def _value(value: Any) -> Any:
    """Datetimes as ISO 8601 in UTC, the way the API writes them; everything else as it is."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value
