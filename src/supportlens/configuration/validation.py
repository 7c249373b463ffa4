"""Shared by the configuration models (calendars, SLA policies): the domain objects are built during
validation, so every rule lives once in ``domain/``, and a domain error comes back as a pydantic error
on the field its message names (``"Target.minutes must be ..."`` -> ``minutes``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from pydantic import BaseModel
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

T = TypeVar("T")


def field_error(model: BaseModel, field: str, message: str, kind: str = "value_error") -> ValidationError:
    """An error on ``field`` of ``model``; raised from a validator, pydantic prefixes the model's path."""
    detail = InitErrorDetails(
        type=PydanticCustomError(kind, "{message}", {"message": message}),
        loc=(field,),
        input=getattr(model, field, None),
    )
    return ValidationError.from_exception_data(type(model).__name__, [detail])


def from_domain(
    model: BaseModel,
    build: Callable[[], T],
    fallback: str,
    *,
    error: type[Exception],
    attribute: re.Pattern[str],
    api_field: Mapping[str, str],
    kind: str,
) -> T:
    """``build()``, with an ``error`` turned into an error on the field its message names: the first
    group of ``attribute``, renamed through ``api_field``; ``fallback`` when the message names none."""
    try:
        return build()
    except error as exc:
        found = attribute.match(str(exc))
        field = api_field.get(found[1], found[1]) if found else fallback
        raise field_error(model, field, str(exc), kind) from None
