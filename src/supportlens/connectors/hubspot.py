"""HubSpot (CRM v3) tickets as canonical ticket snapshots.  The API's shapes, paging and limits are
those of /work/shared/reference/hubspot_crm_v3.md; where it is unsure, so is this module, and it
says so.

Auth: ``Authorization: Bearer <token>`` (a private app's token or an OAuth access token; credential
``token``).  Scopes: tickets, ``crm.objects.owners.read``.

**Tickets**: ``POST /crm/v3/objects/tickets/search`` with ``hs_lastmodifieddate GTE <ms>`` (and
``hs_pipeline IN [...]`` when the option ``pipelines`` names the pipelines that count), sorted by
``hs_lastmodifieddate`` ASCENDING, 200 a page.  A search never serves more than 10,000 results (a
page past that answers 400), so the connector does not walk ``after`` offsets: after every page it
re-windows, asking again from the page's last ``hs_lastmodifieddate`` (``GTE``: the tickets of that
last millisecond are read again, harmlessly, the records being idempotent).  Every query therefore
starts at offset 0, far from the cap however many tickets changed.  Walking offsets would also skip
tickets: the list is sorted by a time that changes while we read it, so a ticket read earlier and
updated during the sync shifts every later ticket back by one place.  A whole page changed within
one millisecond (a bulk update) cannot move the window; that millisecond is then read by
``hs_object_id`` (``hs_lastmodifieddate`` between it and itself, ``hs_object_id GT <last id>``,
sorted by ``hs_object_id`` ASCENDING: the reference's other documented sort for the cap), and the
window goes on after it.

**Pipelines and stages**: ``GET /crm/v3/pipelines/tickets``, once per run (again when a ticket
names a stage it did not list: one added during the run).  ``hs_pipeline_stage`` holds a stage id,
never assumed: its ``metadata.ticketState`` decides whether the ticket is resolved.  The status is
the stage's label, except that a ``CLOSED`` stage whose label SupportLens's default status map
does not count as resolved (e.g. "Done") is ``closed``, and an ``OPEN`` stage labelled like a
resolved status is ``open``: the ticket state wins over the label.  The option ``status_map``
(stage id → status name) overrides both.  A stage still unknown after the re-read is
``stage_<id>`` (counted as open by the default status map) and logged.

**Owners**: ``GET /crm/v3/owners`` (``limit`` 100, ``after`` paging), active and archived (tickets
keep the owners of people who left).  ``hubspot_owner_id`` is an owner's ``id`` (a string), not its
``userId``: that id is the ticket's agent; owners become the agents remembered for alias
suggestions, with their names and emails.

**Durations**: ``time_to_first_agent_reply`` and ``time_to_close`` are milliseconds, sent as
strings (the unit is corroborated by public projects, not by an official API page).
``first_response_at`` is ``first_agent_reply_date``, else ``createdate`` + ``time_to_first_agent_reply``;
``resolved_at`` is ``closed_date``, else ``createdate`` + ``time_to_close`` (documented:
``time_to_close`` = ``closed_date`` - ``createdate``).  When both a date and its duration are
given and disagree by more than a second, the date wins and the page logs how many disagreed.
Calculated properties are sometimes null in search answers; a ticket whose date and duration are
both null has no first response (or resolution) here.  A first response or resolution before
``createdate`` is dropped (logged) rather than refusing the ticket; a value that cannot be read
(a duration not a number, a date not ISO 8601) sends the ticket to the quarantine (the page's
``rejected``, naming the property), and the rest of the page goes on.  ``closed_date`` is passed as
HubSpot gives it, also on a reopened ticket (whether HubSpot clears it on reopening is not in the
reference): a resolution time stays, the status says the ticket is open.

Each ticket gives one ``support_tickets`` row (its current state, versioned by
``hs_lastmodifieddate``) and no events: HubSpot's search gives no history, so these are
METRICS.md's snapshot-only tickets (first response and resolution from their timestamps, no time
in status).  ``customer_id`` is not set (the contact is an association, which search does not return).

Options (all optional): ``pipelines`` (ids or labels of the pipelines that count; default all),
``status_map`` (stage id → name), ``priority_map`` (``hs_ticket_priority`` value → name, over
LOW, MEDIUM, HIGH, URGENT as low .. urgent), ``category_property`` (default
``hs_ticket_category``), ``lookback_minutes`` (default 10: each sync starts that much before where
the last one ended, for late updates and HubSpot's indexing delay), ``per_page`` (1..200).

Rate limits: search allows 5 requests a second per account (older docs: 4 a token); the client's
budget is 4 a second for every request, which also keeps the ten-second limit of the smallest plan
(100 per 10 s).  A 429 is waited out by its ``policyName``: 1 s for ``SECONDLY`` (search), 10 s
for ``TEN_SECONDLY_ROLLING``, as HubSpot's own Node client does; ``Retry-After`` wins when sent;
``DAILY`` fails the run (it resets at midnight in the account's timezone).

The cursor is JSON: ``{"modified": <the hs_lastmodifieddate the next window starts at, ISO>}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import orjson

from supportlens.connectors.base import Connection, SourceAgent, SourcePage
from supportlens.connectors.engine import ConnectorKind
from supportlens.connectors.http import RateBudget, SourceClient, SourceError, retry_after_header
from supportlens.connectors.options import paging
from supportlens.domain.models import normalize_label
from supportlens.domain.statuses import DEFAULT_STATUS_MAP
from supportlens.ingest.tickets import Invalid
from supportlens.json_values import record_text

__all__ = ["HUBSPOT", "HubSpotConnector", "HubSpotOptions", "Stage", "cross_check", "ticket_row"]

log = logging.getLogger(__name__)

KIND = "hubspot"
# Search: 5 requests a second per account; everything: 100 per 10 s on the smallest plan.
BUDGET: Final = RateBudget(requests=4, per_seconds=1.0)
MAX_PER_PAGE = 200  # search
OWNERS_PER_PAGE = 100
PRIORITY_NAMES: Final[Mapping[str, str]] = {
    "LOW": "low",
    "MEDIUM": "medium",
    "HIGH": "high",
    "URGENT": "urgent",
}
OPEN, CLOSED = "OPEN", "CLOSED"
_SEARCH = "/crm/v3/objects/tickets/search"
_PIPELINES = "/crm/v3/pipelines/tickets"
_OWNERS = "/crm/v3/owners"
_MODIFIED = "hs_lastmodifieddate"
_OBJECT_ID = "hs_object_id"
# A date and the duration it should equal may differ by truncation, not by more.
_AGREEMENT_MS = 1_000
_PROPERTIES: Final = (
    "subject",
    "hs_pipeline",
    "hs_pipeline_stage",
    "hs_ticket_priority",
    "hubspot_owner_id",
    "source_type",
    "createdate",
    _MODIFIED,
    "closed_date",
    "first_agent_reply_date",
    "time_to_first_agent_reply",
    "time_to_close",
)
# How long HubSpot's Node client waits on each 429 policy (seconds).
_POLICY_WAITS: Final[Mapping[str, float]] = {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0}


@dataclass(frozen=True, slots=True)
class Stage:
    """A ticket pipeline stage as ``GET /crm/v3/pipelines/tickets`` lists it."""

    id: str
    pipeline_id: str
    label: str
    closed: bool  # metadata.ticketState == CLOSED


@dataclass(frozen=True, slots=True)
class HubSpotOptions:
    pipelines: tuple[str, ...] = ()  # ids or labels; empty: every pipeline counts
    status_map: Mapping[str, str] | None = None
    priority_map: Mapping[str, str] | None = None
    category_property: str = "hs_ticket_category"
    lookback: timedelta = timedelta(minutes=10)
    per_page: int = MAX_PER_PAGE

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> HubSpotOptions:
        """The connection's options; ValueError naming the option at fault."""
        lookback, per_page = paging(options, lookback_minutes=10, max_per_page=MAX_PER_PAGE)
        category = options.get("category_property", "hs_ticket_category")
        if not isinstance(category, str) or not category.strip():
            raise ValueError("option category_property: expected a ticket property name")
        pipelines = options.get("pipelines", [])
        if not isinstance(pipelines, list) or not all(isinstance(p, str) and p.strip() for p in pipelines):
            raise ValueError("option pipelines: expected a list of pipeline ids or labels")
        return cls(
            pipelines=tuple(p.strip() for p in pipelines),
            status_map=_name_map(options, "status_map"),
            priority_map={**PRIORITY_NAMES, **_name_map(options, "priority_map")},
            category_property=category.strip(),
            lookback=lookback,
            per_page=per_page,
        )

    def status(self, stage_id: str | None, stages: Mapping[str, Stage]) -> str | None:
        if not stage_id:
            return None
        named = (self.status_map or {}).get(stage_id)
        if named is not None:
            return named
        stage = stages.get(stage_id)
        if stage is None:
            return f"stage_{stage_id}"
        label = normalize_label(stage.label) or f"stage_{stage_id}"
        if DEFAULT_STATUS_MAP.is_resolved(label) != stage.closed:  # ticketState wins over the label
            return "closed" if stage.closed else "open"
        return label

    def priority(self, value: str | None) -> str | None:
        if not value:  # empty: no priority
            return None
        return (self.priority_map or PRIORITY_NAMES).get(value, value)

    def pipeline_ids(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        """The ids of the pipelines that count (empty: all); SourceError naming one not found.
        ``labels``: pipeline id -> label."""
        by_label = {normalize_label(label): pipeline for pipeline, label in labels.items()}
        ids = []
        for wanted in self.pipelines:
            found = wanted if wanted in labels else by_label.get(normalize_label(wanted))
            if found is None:
                known = ", ".join(f"{pid} ({label})" for pid, label in sorted(labels.items()))
                raise SourceError(
                    f"option pipelines: no ticket pipeline {wanted!r} in HubSpot; known: {known}"
                )
            ids.append(found)
        return tuple(dict.fromkeys(ids))


def _name_map(options: Mapping[str, Any], name: str) -> dict[str, str]:
    value = options.get(name, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"option {name}: expected an object of HubSpot value -> name")
    for key, label in value.items():
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"option {name}: {key!r} -> {label!r} is not a name")
    return {str(key): label for key, label in value.items()}


# ---------------------------------------------------------------------------------------------
# Times: HubSpot sends ISO strings, filters take epoch milliseconds.
# ---------------------------------------------------------------------------------------------


def _ms(value: str) -> int:
    """An ISO datetime (or epoch milliseconds, as filters take them) as epoch milliseconds;
    ValueError if it is neither."""
    if value.isdigit():
        return int(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _iso(milliseconds: int) -> str:
    moment = datetime.fromtimestamp(milliseconds / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milliseconds % 1000:03d}Z"


def _datetime(properties: Mapping[str, Any], name: str) -> int | None:
    """A datetime property in milliseconds (None when empty); Invalid when unreadable."""
    value = properties.get(name)
    if not value:
        return None
    try:
        return _ms(str(value))
    except ValueError:
        raise Invalid(name, f"expected an ISO 8601 datetime, got {value!r}") from None


def _duration(properties: Mapping[str, Any], name: str) -> int | None:
    """A millisecond duration property: a number in a string (HubSpot may send ``"123.0"``)."""
    value = properties.get(name)
    if value is None or value == "":
        return None
    try:
        return round(float(value))
    except (TypeError, ValueError, OverflowError):
        raise Invalid(name, f"expected a number of milliseconds, got {value!r}") from None


@dataclass(frozen=True, slots=True)
class _Moment:
    """A date property and the one its duration from ``createdate`` gives (milliseconds)."""

    stated: int | None
    derived: int | None

    @classmethod
    def read(cls, properties: Mapping[str, Any], created: int, date: str, duration: str) -> _Moment:
        elapsed = _duration(properties, duration)
        return cls(_datetime(properties, date), None if elapsed is None else created + elapsed)

    @property
    def value(self) -> int | None:
        return self.stated if self.stated is not None else self.derived

    @property
    def disagrees(self) -> bool:
        return (
            self.stated is not None
            and self.derived is not None
            and abs(self.stated - self.derived) > _AGREEMENT_MS
        )


_FIRST_RESPONSE = ("first_agent_reply_date", "time_to_first_agent_reply")
_RESOLUTION = ("closed_date", "time_to_close")


def _created(record: Mapping[str, Any]) -> int:
    """``createdate`` (else the record's ``createdAt``) in milliseconds."""
    properties = record.get("properties") or {}
    created = _datetime(properties, "createdate") or _datetime(record, "createdAt")
    if created is None:
        raise Invalid("createdate", "is missing")
    return created


# ---------------------------------------------------------------------------------------------
# Records: what one ticket becomes.
# ---------------------------------------------------------------------------------------------


def ticket_row(
    record: Mapping[str, Any], stages: Mapping[str, Stage], options: HubSpotOptions
) -> dict[str, Any]:
    """The ``support_tickets`` row of a search result; Invalid (the property at fault) when a
    value cannot be read."""
    properties = record.get("properties") or {}
    created = _created(record)
    modified = _datetime(properties, _MODIFIED) or _datetime(record, "updatedAt")
    first_response = _Moment.read(properties, created, *_FIRST_RESPONSE).value
    resolved = _Moment.read(properties, created, *_RESOLUTION).value
    return {
        "ticket_id": str(record["id"]),
        "agent_id": properties.get("hubspot_owner_id") or None,
        "category": properties.get(options.category_property) or None,
        "priority": options.priority(properties.get("hs_ticket_priority")),
        "status": options.status(properties.get("hs_pipeline_stage"), stages),
        "created_at": _iso(created),
        "updated_at": None if modified is None else _iso(modified),
        "first_response_at": _not_before(created, first_response),
        "resolved_at": _not_before(created, resolved),
        "channel": properties.get("source_type") or None,
        "subject": properties.get("subject"),
        "tags": [],
    }


def _not_before(created: int, moment: int | None) -> str | None:
    return None if moment is None or moment < created else _iso(moment)


def cross_check(record: Mapping[str, Any]) -> list[str]:
    """The problems of a ticket's dates: a date that disagrees with its duration, a moment before
    ``createdate`` (dropped by ``ticket_row``); Invalid like ``ticket_row``."""
    properties = record.get("properties") or {}
    created = _created(record)
    problems: list[str] = []
    for date, duration in (_FIRST_RESPONSE, _RESOLUTION):
        moment = _Moment.read(properties, created, date, duration)
        if moment.disagrees:
            problems.append(f"{date} disagrees with {duration}")
        if moment.value is not None and moment.value < created:
            problems.append(f"{date} before createdate")
    return problems


def owner_agent(owner: Mapping[str, Any]) -> SourceAgent:
    """An owner (``id``, the string tickets name, not ``userId``) as an agent."""
    name = " ".join(part for part in (owner.get("firstName"), owner.get("lastName")) if part)
    return SourceAgent(str(owner["id"]), name or None, owner.get("email") or None)


def parse_pipelines(body: Any) -> tuple[dict[str, Stage], dict[str, str]]:
    """Stages by id and pipeline labels by id, from ``GET /crm/v3/pipelines/tickets``."""
    stages: dict[str, Stage] = {}
    labels: dict[str, str] = {}
    for pipeline in _results(body, _PIPELINES):
        pipeline_id = str(pipeline["id"])
        labels[pipeline_id] = str(pipeline.get("label") or pipeline_id)
        for stage in pipeline.get("stages") or []:
            state = (stage.get("metadata") or {}).get("ticketState")
            if state not in (OPEN, CLOSED):
                raise SourceError(
                    f"GET {_PIPELINES}: stage {stage.get('id')!r} has ticketState {state!r},"
                    " not OPEN or CLOSED"
                )
            stages[str(stage["id"])] = Stage(
                str(stage["id"]), pipeline_id, str(stage.get("label") or ""), state == CLOSED
            )
    return stages, labels


def _results(body: Any, path: str) -> list[dict[str, Any]]:
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise SourceError(f"{path}: no results list in the answer")
    return results


# ---------------------------------------------------------------------------------------------
# The connector: reading the API page by page.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Window:
    """Where the next search starts: ``hs_lastmodifieddate >= modified``; within that millisecond,
    after ``object_id`` when it is being read by id (a bulk update)."""

    modified: int
    object_id: int | None = None

    def dump(self) -> str:
        # A millisecond read by id is read again in full on resuming: the cursor keeps only the time.
        return orjson.dumps({"modified": _iso(self.modified)}).decode()

    @classmethod
    def load(cls, text: str) -> _Window:
        return cls(_ms(orjson.loads(text)["modified"]))


def _last_modified(results: list[dict[str, Any]]) -> int:
    """The latest ``hs_lastmodifieddate`` of a page: its last result's, robust to a stale copy of a
    ticket read before standing out of order in it."""
    try:
        return max(_ms((r.get("properties") or {}).get(_MODIFIED) or r["updatedAt"]) for r in results)
    except (KeyError, TypeError, ValueError):
        raise SourceError(
            f"{_SEARCH}: a result without a readable {_MODIFIED}: the search cannot go on"
        ) from None


def _next(window: _Window, results: list[dict[str, Any]], *, more: bool) -> _Window | None:
    """The window of the next search after a page of it (None: everything is read)."""
    if window.object_id is not None:  # reading one millisecond by id
        if results and more:  # sorted by id: on after the last one
            return _Window(window.modified, int(results[-1]["id"]))
        return _Window(window.modified + 1)  # that millisecond is read (GTE on integral milliseconds)
    if not results or not more:
        return None
    reached = _last_modified(results)
    if reached < window.modified:
        raise SourceError(f"{_SEARCH}: results older than the hs_lastmodifieddate asked for")
    if reached > window.modified:
        return _Window(reached)
    return _Window(window.modified, 0)  # a whole page within one millisecond: read it by id


class HubSpotConnector:
    kind = KIND

    def __init__(self, connection: Connection, client: SourceClient) -> None:
        if not connection.credentials.get("token"):
            raise SourceError("a HubSpot connection needs the credential 'token'")
        try:
            self._options = HubSpotOptions.parse(connection.options)
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        self._client = client
        self._stages: dict[str, Stage] = {}

    def pages(self, cursor: str | None, *, start: datetime) -> Iterator[SourcePage]:
        self._stages, labels = self._pipelines()
        pipelines = self._options.pipeline_ids(labels)
        agents = self._owners()
        since = round(start.timestamp() * 1000) if cursor is None else _Window.load(cursor).modified
        if cursor is not None:
            since -= round(self._options.lookback.total_seconds() * 1000)
        window: _Window | None = _Window(since)
        total: int | None = None
        while window is not None:
            answer = self._search(window, pipelines)
            results = _results(answer, _SEARCH)
            if total is None:
                total = answer.get("total")
            following = _next(window, results, more="paging" in answer)
            if not results:  # nothing (more) changed: the cursor stays where it is
                window = following
                continue
            kept = following if following is not None else _Window(_last_modified(results))
            page = self._page(results, kept)
            page.total = total
            page.agents, agents = agents, []  # the first page carries the account's owners
            yield page
            window = following

    def _page(self, results: list[dict[str, Any]], position: _Window) -> SourcePage:
        page = SourcePage(fetched=len(results), cursor=position.dump())
        unknown = {
            stage
            for r in results
            if (stage := (r.get("properties") or {}).get("hs_pipeline_stage")) and stage not in self._stages
        }
        if unknown:  # a stage added since the run began
            self._stages, _ = self._pipelines()
            still = sorted(unknown - set(self._stages))
            if still:
                log.warning("HubSpot tickets in stages no pipeline lists: %s", ", ".join(still))
        problems: dict[str, int] = {}
        for record in results:
            try:
                row, found = ticket_row(record, self._stages, self._options), cross_check(record)
            except Invalid as invalid:  # kept in quarantine with the reason, the rest goes on
                page.rejected.append((record_text(record), invalid.rejection))
                continue
            page.tickets.append(row)
            for problem in found:
                problems[problem] = problems.get(problem, 0) + 1
        if problems:
            counted = "; ".join(f"{problem}: {count}" for problem, count in sorted(problems.items()))
            log.warning("HubSpot tickets whose dates the durations do not confirm (dates kept) — %s", counted)
        return page

    def _search(self, window: _Window, pipelines: Sequence[str]) -> Any:
        filters: list[dict[str, Any]] = [
            {"propertyName": _MODIFIED, "operator": "GTE", "value": str(window.modified)}
        ]
        sort = _MODIFIED
        if window.object_id is not None:
            filters += [
                {"propertyName": _MODIFIED, "operator": "LTE", "value": str(window.modified)},
                {"propertyName": _OBJECT_ID, "operator": "GT", "value": str(window.object_id)},
            ]
            sort = _OBJECT_ID
        if pipelines:
            filters.append({"propertyName": "hs_pipeline", "operator": "IN", "values": list(pipelines)})
        properties = list(dict.fromkeys([*_PROPERTIES, self._options.category_property]))
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": self._options.per_page,
            "after": "0",
        }
        return _checked(self._client.request("POST", _SEARCH, json=body))

    def _pipelines(self) -> tuple[dict[str, Stage], dict[str, str]]:
        return parse_pipelines(_checked(self._client.request("GET", _PIPELINES)))

    def _owners(self) -> list[SourceAgent]:
        """Active owners, then archived ones (people who left still own tickets)."""
        agents: dict[str, SourceAgent] = {}
        for archived in ("false", "true"):
            after: str | None = None
            while True:
                params = {"limit": OWNERS_PER_PAGE, "archived": archived}
                if after is not None:
                    params["after"] = after
                body = _checked(self._client.request("GET", _OWNERS, params=params))
                for owner in _results(body, _OWNERS):
                    agents.setdefault(str(owner["id"]), owner_agent(owner))
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if after is None:
                    break
        return list(agents.values())


def _checked(response: httpx.Response) -> Any:
    """The JSON body of a successful answer; SourceError (never with credentials) otherwise."""
    if response.status_code < 400:
        return response.json()
    where = f"{response.request.method} {response.request.url.path}"
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    category = body.get("category") if isinstance(body, dict) else None
    text = " ".join(str(part) for part in (f"{where}:", response.status_code, category, message) if part)
    if message is None:
        text += f" {response.text[:300]}"
    if response.status_code == 403:
        text += " (the token needs the tickets and crm.objects.owners.read scopes)"
    raise SourceError(text)


def hubspot_retry_after(response: httpx.Response) -> float | None:
    """How long a 429 asks to wait: ``Retry-After`` when sent, else by ``policyName``;
    SourceError for the daily limit (waiting seconds will not lift it)."""
    header = retry_after_header(response)
    if header is not None:
        return header
    try:
        body = response.json()
    except ValueError:
        return None
    policy = body.get("policyName") if isinstance(body, dict) else None
    if policy == "DAILY":
        raise SourceError(
            "HubSpot: the account's daily API limit is reached"
            " (it resets at midnight in the account's timezone)"
        )
    if policy in _POLICY_WAITS:
        return _POLICY_WAITS[str(policy)]
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    return _POLICY_WAITS["SECONDLY"] if "secondly limit" in message else None


def _client_options(connection: Connection) -> dict[str, Any]:
    """Bearer auth (the connector refuses a missing token) and HubSpot's reading of 429s."""
    token = connection.credentials.get("token", "")
    return {"headers": {"Authorization": f"Bearer {token}"}, "retry_after": hubspot_retry_after}


HUBSPOT: Final = ConnectorKind(KIND, HubSpotConnector, BUDGET, _client_options)
