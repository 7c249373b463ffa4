"""``GET /v0/pipes/<name>.<format>``: the analytics endpoints, one route per registered pipe."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel

from supportlens.analytics.params import Kind, Param
from supportlens.analytics.pipes import PIPES, Pipe
from supportlens.api.deps import Caller, admission, caller, runtime
from supportlens.api.errors import ApiError, error_responses
from supportlens.api.formats import FORMATS, render, result_responses

router = APIRouter(tags=["pipes"])

_SCHEMAS: dict[Kind, dict[str, Any]] = {
    Kind.INT: {"type": "integer"},
    Kind.MINUTES: {"type": "number", "minimum": 0},
    Kind.START: {"type": "string", "examples": ["2023-01-01 00:00:00"]},
    Kind.END: {"type": "string", "examples": ["2023-12-31 23:59:59"]},
    Kind.BOOL: {"type": "boolean"},
    Kind.AS_OF: {"type": "string", "examples": ["now", "export_end", "2023-12-31 23:59:59"]},
}


FORMAT = Path(description="json, csv, ndjson or parquet", json_schema_extra={"enum": sorted(FORMATS)})


CACHE_CONTROL = {
    "name": "Cache-Control",
    "in": "header",
    "required": False,
    "description": (
        "max-age=N accepts an answer computed from data up to N seconds old (its age in the Age"
        " header); no-cache or none: exact, every acknowledged write counted (docs/pipes.md)."
    ),
    "schema": {"type": "string", "examples": ["max-age=60", "no-cache"]},
}


def _openapi_parameters(params: tuple[Param, ...]) -> list[dict[str, Any]]:
    documented = [CACHE_CONTROL]
    for param in params:
        schema = dict(_SCHEMAS.get(param.kind, {"type": "string"}))
        if param.default is not None:
            schema["default"] = param.default
        documented.append(
            {
                "name": param.name,
                "in": "query",
                "required": False,
                "description": param.description,
                "schema": schema,
            }
        )
    return documented


def answer_size(response: Response) -> int | None:
    """Bytes of a pipe answer worth keeping for later requests (only successful ones)."""
    return len(response.body) if response.status_code == 200 else None


def requested_max_age(cache_control: str | None, default: float) -> float:
    """Seconds of age the request accepts: ``Cache-Control: max-age=N`` (the smallest if several),
    0 for ``no-cache``, else the server's default.  Other directives are ignored (RFC 9111)."""
    if cache_control is None:
        return default
    ages: list[float] = []
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name == "no-cache":
            ages.append(0.0)
        elif name == "max-age":
            value = value.strip().strip('"')
            if not (value.isascii() and value.isdigit()):  # str.isdigit alone takes '²'
                raise ApiError(
                    400,
                    f"Cache-Control: max-age must be a whole number of seconds, got {value!r}",
                )
            ages.append(float(value))
    return min(ages) if ages else default


def _route(pipe: Pipe) -> None:
    async def handler(request: Request, format: str = FORMAT, who: Caller = Depends(caller)) -> Response:
        if format not in FORMATS:
            raise ApiError(404, f"unknown format {format!r}; use one of {', '.join(sorted(FORMATS))}")
        if not who.token.can_read_pipe(pipe.name):
            raise ApiError(403, f"this token cannot read the pipe {pipe.name!r}")
        query = {k: v for k, v in request.query_params.items() if k != "token"}
        rt = runtime(request)

        def answer() -> Response:
            return rt.answer_pipe(
                pipe.name,
                who.workspace,
                query,
                who.token.fixed_filters,
                lambda result: render(result, format),
            )

        fixed = tuple(sorted(who.token.fixed_filters.items()))
        key = (who.workspace.id, pipe.name, format, tuple(sorted(query.items())), fixed)
        max_age = requested_max_age(request.headers.get("cache-control"), rt.settings.pipe_max_age_seconds)
        preparation = rt.sla_preparation(pipe.name, who.workspace.id)
        if preparation is not None:
            # Awaited here, not in an admission slot: other pipes' requests keep the slots meanwhile.
            await asyncio.wait([asyncio.wrap_future(preparation)], timeout=rt.settings.query_timeout_seconds)
        served = await admission(request).run(key, answer, max_age)
        shared: Response = served.value
        # A response of its own for each request that shared the run or the kept answer.
        headers = {"Age": str(int(served.age))} if max_age > 0 else None
        return Response(
            shared.body, status_code=shared.status_code, media_type=shared.media_type, headers=headers
        )

    router.add_api_route(
        f"/v0/pipes/{pipe.name}.{{format}}",
        handler,
        methods=["GET"],
        name=pipe.name,
        summary=pipe.description,
        openapi_extra={"parameters": _openapi_parameters(pipe.params)},
        response_class=Response,
        responses=_with_age(result_responses(pipe.columns)),
    )


def _with_age(responses: dict[int | str, Any]) -> dict[int | str, Any]:
    age = {
        "description": "Seconds since the answer's data was read",
        "schema": {"type": "integer", "minimum": 0},
    }
    return {**responses, 200: {**responses[200], "headers": {"Age": age}}, **error_responses(503)}


for _pipe in PIPES.values():
    _route(_pipe)


class ColumnInfo(BaseModel):
    name: str
    type: str


class ParameterInfo(BaseModel):
    name: str
    kind: str
    default: str | bool | int | float | None
    description: str


class PipeInfo(BaseModel):
    name: str
    description: str
    formats: list[str]
    columns: list[ColumnInfo]
    parameters: list[ParameterInfo]


class PipeList(BaseModel):
    pipes: list[PipeInfo]


@router.get(
    "/v0/pipes",
    summary="List the analytics endpoints and their parameters",
    responses=error_responses(401),
)
def list_pipes(who: Caller = Depends(caller)) -> PipeList:
    return PipeList(
        pipes=[
            PipeInfo(
                name=pipe.name,
                description=pipe.description,
                formats=sorted(FORMATS),
                columns=[ColumnInfo(name=n, type=t) for n, t in pipe.columns],
                parameters=[
                    ParameterInfo(
                        name=p.name, kind=p.kind.value, default=p.default, description=p.description
                    )
                    for p in pipe.params
                ],
            )
            for pipe in PIPES.values()
            if who.token.can_read_pipe(pipe.name)
        ]
    )


@router.get("/v0/pipes/{unknown}", include_in_schema=False)
def unknown_pipe(unknown: str, who: Caller = Depends(caller)) -> Response:
    raise ApiError(404, f"pipe {unknown.rsplit('.', 1)[0]!r} does not exist; GET /v0/pipes lists them")
