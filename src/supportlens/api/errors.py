"""Error responses for every failure a client can cause: Tinybird's ``{"error": "..."}`` under /v0, RFC 9457
problem details (``application/problem+json``) under /v1."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from supportlens.analytics.params import ParamError
from supportlens.auth.repository import Conflict, NotFound
from supportlens.paths import FieldPath, field_path
from supportlens.store.base import QueryTimeout


class ApiError(Exception):
    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers


def error_response(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


class ErrorBody(BaseModel):
    """An error under /v0, as Tinybird answers it."""

    error: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for /v0 routes: these statuses answer ``{"error": "..."}``."""
    return {status: {"model": ErrorBody, "description": HTTPStatus(status).phrase} for status in statuses}


PROBLEM_JSON = "application/problem+json"


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; ``errors`` lists the invalid fields of a 422."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for /v1 routes: these statuses answer problem details."""
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            "description": HTTPStatus(status).phrase,
        }
        for status in statuses
    }


def problem_response(
    status_code: int,
    detail: str,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    problem = Problem(title=HTTPStatus(status_code).phrase, status=status_code, detail=detail, errors=errors)
    body = problem.model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status_code, headers=headers, media_type=PROBLEM_JSON)


def _field_problems(exc: RequestValidationError) -> list[FieldProblem]:
    problems = []
    for err in exc.errors():
        source, *loc = err["loc"]  # body, query, path or header
        if err["type"] == "json_invalid":
            problems.append(FieldProblem(field=source, message=f"invalid JSON: {err['ctx']['error']}"))
        else:
            problems.append(FieldProblem(field=field_path(loc) or source, message=err["msg"]))
    return problems


def _v1(request: Request) -> bool:
    return request.url.path.startswith("/v1/")


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if _v1(request):
            return problem_response(exc.status_code, exc.message, headers=exc.headers)
        return error_response(exc.status_code, exc.message, exc.headers)

    @app.exception_handler(ParamError)
    async def _param_error(request: Request, exc: ParamError) -> JSONResponse:
        if _v1(request):
            return problem_response(400, str(exc))
        return error_response(400, str(exc))

    @app.exception_handler(QueryTimeout)
    async def _timeout(request: Request, exc: QueryTimeout) -> JSONResponse:
        if _v1(request):
            return problem_response(408, str(exc))
        return error_response(408, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if _v1(request):
            fields = _field_problems(exc)
            detail = "; ".join(f"{problem.field}: {problem.message}" for problem in fields)
            return problem_response(422, detail or "invalid request", fields)
        problems = "; ".join(
            f"parameter '{'.'.join(str(p) for p in err['loc'][1:]) or err['loc'][0]}': {err['msg']}"
            for err in exc.errors()
        )
        return error_response(400, problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if _v1(request):
            return problem_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    _document_v0_errors(app)


def _document_v0_errors(app: FastAPI) -> None:
    """/v0 answers an invalid request with a 400 ``{"error": "..."}`` (``_validation`` above), never
    with FastAPI's 422: the OpenAPI document must not promise the 422 FastAPI lists by default."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()  # FastAPI builds it once and caches it; the edit below is idempotent
        for path, operations in document.get("paths", {}).items():
            if path.startswith("/v0/"):
                for operation in operations.values():
                    responses = operation.get("responses", {})
                    if _HTTP_VALIDATION_ERROR in json.dumps(responses.get("422", {})):
                        del responses["422"]
        schemas = document.get("components", {}).get("schemas", {})
        if _HTTP_VALIDATION_ERROR in schemas and f'/{_HTTP_VALIDATION_ERROR}"' not in json.dumps(
            document["paths"]
        ):
            del schemas[_HTTP_VALIDATION_ERROR]
            if '/ValidationError"' not in json.dumps(schemas):
                schemas.pop("ValidationError", None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


_HTTP_VALIDATION_ERROR = "HTTPValidationError"


@contextmanager
def repository_errors() -> Iterator[None]:
    """Repository outcomes as HTTP statuses: not found 404, conflict 409."""
    try:
        yield
    except NotFound as exc:
        raise ApiError(404, str(exc)) from None
    except Conflict as exc:
        raise ApiError(409, str(exc)) from None


def invalid_field(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 422 naming the field (``("query", "at")``, ``("body", "names")``), shaped like FastAPI's own."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message, "input": None}])


def invalid_fields(
    problems: Sequence[tuple[FieldPath, str]], prefix: FieldPath = ("body",)
) -> RequestValidationError:
    """A 422 naming every field at fault: each problem's path under ``prefix``."""
    return RequestValidationError(
        [
            {"type": "value_error", "loc": (*prefix, *path), "msg": message, "input": None}
            for path, message in problems
        ]
    )
