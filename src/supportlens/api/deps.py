"""Request dependencies: the runtime and the caller's token and workspace."""

from __future__ import annotations

from dataclasses import dataclass

from anyio import CapacityLimiter
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from supportlens.api.admission import Admission
from supportlens.api.errors import ApiError
from supportlens.auth.repository import NotFound, Workspace
from supportlens.auth.tokens import Scope, Token
from supportlens.runtime import Runtime


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


def admission(request: Request) -> Admission:
    """Who runs pipes now and who waits (api/admission.py)."""
    found: Admission = request.app.state.admission
    return found


def ingest_limiter(request: Request) -> CapacityLimiter:
    """Events API bodies validated at once (``ingest_concurrency``).  Validation is mostly
    GIL-bound Python: more threads at once only take the GIL from the writer, which every
    ``wait=true`` request waits for (measured at 1M tickets, 48 clients posting 200 rows: one at a
    time 145 requests/s, unbounded 69)."""
    found: CapacityLimiter = request.app.state.ingest_limiter
    return found


@dataclass(frozen=True, slots=True)
class Caller:
    token: Token
    workspace: Workspace


def _secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token") or None


# Declared for the OpenAPI document (its security schemes); ``_secret`` reads the same two places.
_BEARER = HTTPBearer(auto_error=False, description="A token: 'Authorization: Bearer <token>'.")
_QUERY = APIKeyQuery(name="token", auto_error=False, description="A token as the 'token' query parameter.")


async def caller(
    request: Request,
    _bearer: HTTPAuthorizationCredentials | None = Security(_BEARER),
    _query: str | None = Security(_QUERY),
) -> Caller:
    """The authenticated caller: 401 without a live token.  Two indexed SQLite lookups, done on the
    event loop: a hop to a worker thread would make every request, even an answer already kept
    (api/admission.py), wait for a free thread behind busy ones."""
    secret = _secret(request)
    if secret is None:
        raise ApiError(401, "missing token: send 'Authorization: Bearer <token>' or '?token=<token>'")
    rt = runtime(request)
    token = rt.metadata.authenticate(secret)
    if token is None:
        raise ApiError(401, "invalid or revoked token")
    try:
        workspace = rt.metadata.workspace(token.workspace_id)
    except NotFound:
        raise ApiError(401, "the token's workspace no longer exists") from None
    return Caller(token, workspace)


def ticket_reader(who: Caller = Depends(caller)) -> Caller:
    """Reading tickets, comments, attachments and history: the read, tickets or admin scope."""
    if not who.token.scopes & {Scope.READ, Scope.TICKETS, Scope.ADMIN}:
        raise ApiError(403, "reading tickets needs the read, tickets or admin scope")
    return who


def ticket_writer(who: Caller = Depends(caller)) -> Caller:
    """Changing tickets, comments and attachments: the tickets or admin scope."""
    if not who.token.scopes & {Scope.TICKETS, Scope.ADMIN}:
        raise ApiError(403, "changing tickets needs the tickets or admin scope")
    return who
