"""The ``supportlens`` command line: serve, demo, import, query, workspace and token management."""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from supportlens.analytics.params import ParamError

if TYPE_CHECKING:
    from supportlens.connectors.store import RunRecord
from supportlens.auth.repository import Conflict, MetadataRepository, NotFound, Workspace
from supportlens.auth.tokens import Scope, Token
from supportlens.config import Settings
from supportlens.configuration.calendars import CalendarDefinition, add_ical_holidays, schedule_name
from supportlens.configuration.repository import ConfigurationRepository
from supportlens.domain.calendars import CalendarError, is_open
from supportlens.domain.statuses import StatusCategory
from supportlens.ingest.files import detect_format, ndjson_batches, read_rows
from supportlens.ingest.freshdesk import FreshdeskFormatError
from supportlens.ingest.imports import import_freshdesk_export
from supportlens.ingest.service import IngestResult, RawRow
from supportlens.ingest.timestamps import TimestampError, parse_timestamp
from supportlens.ingest.writer import Writer
from supportlens.paths import field_path
from supportlens.runtime import Runtime, UnknownPipe
from supportlens.store.base import QueryTimeout
from supportlens.store.schema import TICKETS

app = typer.Typer(help="SupportLens: customer-support analytics.", no_args_is_help=True)
workspace_app = typer.Typer(help="Create and list workspaces.", no_args_is_help=True)
token_app = typer.Typer(help="Create, list and revoke tokens.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(token_app, name="token")
report_app = typer.Typer(help="Reports in the shape of the seeds' outputs.", no_args_is_help=True)
app.add_typer(report_app, name="report")

console = Console(soft_wrap=True)  # long lines (tokens, curl examples) must stay copy-pastable
errors = Console(stderr=True)

WorkspaceOption = Annotated[str, typer.Option("--workspace", "-w", help="Workspace name.")]
PrepareSlaOption = Annotated[
    bool,
    typer.Option(
        "--prepare-sla/--no-prepare-sla",
        help="After writing, evaluate the workspace's SLA targets once and save them, so that the "
        "server's first SLA answers do not wait for it (seconds at a million tickets).",
    ),
]
DEMO_WORKSPACE = "demo"
RUN_TOKEN_NAME = "make run"
SERVE_SWITCH_INTERVAL_SECONDS = 0.0005
DASHBOARD_TOKEN_NAME = "make run: dashboard"
BATCH_ROWS = 10_000


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def _metadata() -> MetadataRepository:
    return MetadataRepository(Settings().metadata_path)


def _workspace(metadata: MetadataRepository, name: str) -> Workspace:
    try:
        return metadata.workspace_by_name(name)
    except NotFound:
        raise _fail(
            f"no workspace named {name!r}; create it with 'supportlens workspace create {name}'"
        ) from None


def _ingest_batches(
    runtime: Runtime,
    workspace: Workspace,
    batches: Iterator[Callable[[], IngestResult]],
    *,
    total: int | None,
    label: str,
) -> tuple[int, int]:
    """Run ingest calls one batch at a time, keeping a few commits in flight, with a progress bar."""
    accepted = rejected = 0
    in_flight: list[Future[None]] = []
    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=errors
    ) as progress:
        task = progress.add_task(label, total=total)
        for ingest in batches:
            result = ingest()
            accepted += result.successful_rows
            rejected += result.quarantined_rows
            in_flight.append(result.committed)
            if len(in_flight) > 4:
                in_flight.pop(0).result()
            progress.update(task, advance=result.successful_rows + result.quarantined_rows)
        for future in in_flight:
            future.result()
    return accepted, rejected


def _row_batches(
    runtime: Runtime, workspace: Workspace, rows: Iterator[RawRow]
) -> Iterator[Callable[[], IngestResult]]:
    while batch := list(islice(rows, BATCH_ROWS)):
        yield partial(runtime.ingest.ingest, workspace.id, "support_tickets", batch)


def _line_batches(runtime: Runtime, workspace: Workspace, path: Path) -> Iterator[Callable[[], IngestResult]]:
    for lines in ndjson_batches(path, BATCH_ROWS):
        yield partial(runtime.ingest.ingest_lines, workspace.id, "support_tickets", lines)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default from settings: 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings: 8000).")] = None,
    demo_if_empty: Annotated[
        bool, typer.Option("--demo-if-empty", help="Create the demo workspace with data when there is none.")
    ] = False,
    print_token: Annotated[
        bool, typer.Option("--print-token", help="Print a fresh admin token of the demo workspace.")
    ] = False,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from supportlens.allocator import keep_freed_blocks
    from supportlens.app import create_app
    from supportlens.serve_logging import serve_logging

    settings = Settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    if demo_if_empty:
        metadata = _metadata()
        empty = not metadata.workspaces()
        metadata.close()
        if empty:
            _fill_demo(tickets=20_000, days=180, seed=42, workspace=DEMO_WORKSPACE, activity_tickets=2_000)
    if print_token:
        _print_run_token(f"http://{bind_host}:{bind_port}")
    # Pipe runs, validation and the writer are CPU-bound Python threads; with the default 5 ms
    # GIL switch interval each hand-over to the event loop waits up to 5 ms per busy thread, which
    # makes even cheap requests slow under load.  A shorter interval keeps the loop responsive.
    sys.setswitchinterval(SERVE_SWITCH_INTERVAL_SECONDS)
    keep_freed_blocks()
    uvicorn.run(
        create_app(settings, freeze_after_warm_up=True),
        host=bind_host,
        port=bind_port,
        log_level="info",
        log_config=serve_logging(),
    )


def _print_run_token(base_url: str) -> None:
    metadata = _metadata()
    try:
        workspace = metadata.workspace_by_name(DEMO_WORKSPACE)
    except NotFound:
        metadata.close()
        return
    for token in metadata.tokens(workspace.id):
        if token.name in (RUN_TOKEN_NAME, DASHBOARD_TOKEN_NAME) and token.revoked_at is None:
            metadata.revoke(workspace.id, token.id)
    _, secret = metadata.create_token(workspace.id, RUN_TOKEN_NAME, {Scope.ADMIN})
    _, reader = metadata.create_token(workspace.id, DASHBOARD_TOKEN_NAME, {Scope.READ})
    metadata.close()
    console.print(f"\n[bold]SupportLens[/bold] on {base_url}  (API docs: {base_url}/docs)")
    # The fragment never reaches the server; the page keeps the read token for the browser session.
    console.print(f"Dashboard (signed in with a read token):\n  [cyan]{base_url}/#token={reader}[/cyan]")
    console.print(f"Admin token of workspace '{DEMO_WORKSPACE}':\n  [green]{secret}[/green]\n")
    console.print("Try:")
    console.print(f"  export TOKEN={secret}")
    console.print(f'  curl -s "{base_url}/v0/pipes/ticket_metrics.json" -H "Authorization: Bearer $TOKEN"')
    console.print(
        f'  curl -s "{base_url}/v0/pipes/sla_performance.json?token=$TOKEN&high_priority_response_sla=20"'
    )
    console.print(
        f'  curl -s -X POST "{base_url}/v0/events?name=support_tickets&wait=true"'
        ' -H "Authorization: Bearer $TOKEN"'
        ' -d \'{"ticket_id":"T1","priority":"high","status":"open","created_at":"2026-01-05 09:30:00"}\'\n'
    )


@app.command()
def demo(
    tickets: Annotated[int, typer.Option(help="How many tickets to generate.")] = 20_000,
    days: Annotated[int, typer.Option(help="Spread over this many days up to now.")] = 180,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 42,
    activity_tickets: Annotated[
        int,
        typer.Option(
            help="Also this many tickets known by their activity log (Freshdesk exports of the last "
            "14 days, numeric ids): time in status, reply times, business hours."
        ),
    ] = 2_000,
    workspace: WorkspaceOption = DEMO_WORKSPACE,
    prepare_sla: PrepareSlaOption = True,
) -> None:
    """Fill a workspace (created if missing) with realistic, deterministic demo tickets."""
    if activity_tickets < 0:
        raise _fail("--activity-tickets must be 0 or more")
    secret = _fill_demo(
        tickets=tickets,
        days=days,
        seed=seed,
        workspace=workspace,
        activity_tickets=activity_tickets,
        prepare_sla=prepare_sla,
    )
    if secret:
        console.print(f"Admin token of the new workspace '{workspace}' (shown once): [green]{secret}[/green]")


def _fill_demo(
    *, tickets: int, days: int, seed: int, workspace: str, activity_tickets: int, prepare_sla: bool = True
) -> str | None:
    """Generate and ingest the demo data (snapshots, then activity exports); the admin token's
    secret when the workspace is new."""
    from supportlens.demo.activities import generate_activity_columns, write_export_files
    from supportlens.demo.desk import AGENTS, fill_desk
    from supportlens.demo.generator import DemoConfig, generate_events
    from supportlens.tickets.repository import TicketQuery

    secret = None
    runtime = Runtime.open(Settings())
    try:
        try:
            target = runtime.metadata.workspace_by_name(workspace)
        except NotFound:
            target = runtime.metadata.create_workspace(workspace)
            _, secret = runtime.metadata.create_token(target.id, "demo admin", {Scope.ADMIN})
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        config = DemoConfig(end=now, tickets=tickets, days=days, seed=seed)
        rows = (RawRow(event, "") for batch in generate_events(config) for event in batch)
        batches = _row_batches(runtime, target, rows)
        accepted, rejected = _ingest_batches(runtime, target, batches, total=tickets, label="demo tickets")
        console.print(f"Demo data: {accepted} tickets written to '{workspace}' ({rejected} quarantined).")
        if activity_tickets:
            history_days = min(days, _DEMO_HISTORY_DAYS)
            columns = generate_activity_columns(activity_tickets, seed, now, history_days)
            with tempfile.TemporaryDirectory(prefix="supportlens-demo-") as directory:
                paths = write_export_files(Path(directory), columns, end=now, days=history_days)
                _import_activities(runtime, target, paths, quiet=True)
            console.print(f"Demo activity log: {activity_tickets} tickets over the last {history_days} days.")
        if not runtime.tickets.search(target.id, TicketQuery(limit=1))[1]:
            desk = fill_desk(runtime.tickets, target.id, count=_DEMO_DESK_TICKETS, seed=seed)
            console.print(f"Demo desk: {desk} tickets in /v1/support/tickets, {len(AGENTS)} agents.")
        if prepare_sla:
            _prepare_sla_pipes(runtime, target)
    finally:
        runtime.close()
    return secret


_DEMO_HISTORY_DAYS = 14
_DEMO_DESK_TICKETS = 60


FRESHDESK_ACTIVITIES = "freshdesk-activities"


@app.command("import")
def import_file(
    files: Annotated[
        list[Path],
        typer.Argument(
            help=f"NDJSON, JSON array or CSV ticket files; or '{FRESHDESK_ACTIVITIES}' followed by "
            "Freshdesk ticket-activity export files (seed 003), imported in the order given."
        ),
    ],
    workspace: WorkspaceOption = "default",
    fmt: Annotated[
        str | None, typer.Option("--format", help="ndjson, json or csv (default: by extension).")
    ] = None,
    prepare_sla: PrepareSlaOption = True,
) -> None:
    """Import ticket files (same validation and quarantine as the Events API), or Freshdesk
    activity exports: supportlens import freshdesk-activities FILE..."""
    if fmt not in {None, "ndjson", "json", "csv"}:
        raise _fail("--format takes ndjson, json or csv")
    activities = bool(files) and files[0].as_posix() == FRESHDESK_ACTIVITIES
    paths = files[1:] if activities else files
    if not paths:
        raise _fail("give at least one file to import")
    for path in paths:
        if not path.is_file():
            raise _fail(f"{path} is not a file")
    runtime = Runtime.open(Settings())
    try:
        target = _workspace(runtime.metadata, workspace)
        if activities:
            _import_activities(runtime, target, paths)
        else:
            for path in paths:
                kind = fmt or detect_format(path)
                batches = (
                    _line_batches(runtime, target, path)
                    if kind == "ndjson"
                    else _row_batches(runtime, target, read_rows(path, kind))
                )
                accepted, rejected = _ingest_batches(runtime, target, batches, total=None, label=path.name)
                console.print(f"{path}: {accepted} rows imported, {rejected} quarantined")
                if rejected:
                    console.print(
                        f"  see GET /v0/quarantine/support_tickets.json for the {rejected} rejected rows"
                    )
        if prepare_sla:
            _prepare_sla_pipes(runtime, target)
    finally:
        runtime.close()


def _prepare_sla_pipes(runtime: Runtime, workspace: Workspace) -> None:
    """After writing tickets: evaluate their SLA targets once and save them, so that the server's
    first SLA answers do not wait for it (seconds at a million tickets; docs/pipes.md)."""
    with console.status(f"Preparing the SLA pipes of '{workspace.name}'…"):
        seconds = runtime.prepare_sla_pipes(workspace)
    if seconds is None:
        console.print(
            "[yellow]Could not prepare the SLA pipes (the log says why);"
            " the server prepares them when it starts.[/yellow]"
        )
    else:
        console.print(f"SLA pipes of '{workspace.name}' prepared in {seconds:.1f} s.")


def _advance(bar: Progress, task: TaskID, events: int) -> None:
    bar.update(task, advance=events)


def _import_activities(
    runtime: Runtime, workspace: Workspace, paths: list[Path], *, quiet: bool = False
) -> None:
    """Import export files in order (``quiet``: no line per file, warnings only)."""
    requesters: Mapping[str, frozenset[str]] = {}
    for path in paths:
        with Progress(
            TextColumn(path.name), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=errors
        ) as bar:
            task = bar.add_task(path.name, total=None)
            try:
                summary, requesters = import_freshdesk_export(
                    runtime.ingest,
                    runtime.engine,
                    workspace.id,
                    path.read_bytes(),
                    file_name=path.name,
                    requesters=requesters,
                    progress=partial(_advance, bar, task),
                )
            except FreshdeskFormatError as exc:
                raise _fail(f"{path}: not a Freshdesk activities export: {exc}") from None
        runtime.record_import(workspace.id, summary)
        if not quiet:
            console.print(
                f"{path}: {summary.activities} activities -> {summary.events} events; "
                f"{summary.ignored_activities} without analytics meaning, "
                f"{summary.rejected_activities} quarantined"
            )
        if not summary.count_matches:
            console.print(
                f"  [yellow]warning:[/yellow] metadata.activities_count says {summary.declared_activities}, "
                f"the file holds {summary.activities}"
            )
        if summary.rejected_activities:
            console.print("  see GET /v0/quarantine/freshdesk_activities.json for the rejected activities")


def _print_table(columns: list[tuple[str, str]], rows: Sequence[dict[str, Any]]) -> None:
    table = Table(*[name for name, _ in columns])
    for row in rows:
        table.add_row(*["" if row[name] is None else str(row[name]) for name, _ in columns])
    console.print(table)


def _restate_all(writer: Writer, workspace_id: str, progress: Callable[[int], None]) -> Future[int]:
    return writer.restate(workspace_id, progress=progress)


@app.command()
def rebuild(
    workspace: Annotated[
        str | None, typer.Option(help="Only this workspace (by name); default: every workspace.")
    ] = None,
    prepare_sla: PrepareSlaOption = True,
) -> None:
    """Recompute the current state of stored tickets (and their time facts) from their events and
    snapshots, with the workspace's status names and calendars: after a restore, or to be sure."""
    runtime = Runtime.open(Settings())
    try:
        targets = [_workspace(runtime.metadata, workspace)] if workspace else runtime.metadata.workspaces()
        for target in targets:
            restated = _restate_with_progress(
                runtime, target, partial(_restate_all, runtime.writer, target.id)
            )
            console.print(f"{restated} tickets of '{target.name}' rebuilt.")
            if prepare_sla:  # rewritten tickets have new versions, which nothing saved covers
                _prepare_sla_pipes(runtime, target)
    finally:
        runtime.close()


@app.command()
def query(
    pipe: Annotated[str, typer.Argument(help="Pipe name, e.g. ticket_metrics.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value, repeatable.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    workspace: WorkspaceOption = "default",
) -> None:
    """Run an analytics endpoint from the command line."""
    if fmt not in {"table", "json", "csv"}:
        raise _fail("--format takes table, json or csv")
    values: dict[str, str] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _fail(f"--param expects key=value, got {item!r}")
        values[key] = value
    runtime = Runtime.open(Settings())
    try:
        target = _workspace(runtime.metadata, workspace)
        try:
            result = runtime.run_pipe(pipe, target, values)
        except UnknownPipe:
            raise _fail(f"no pipe named {pipe!r}") from None
        except (ParamError, QueryTimeout) as exc:
            raise _fail(str(exc)) from None
    finally:
        runtime.close()
    if fmt == "table":
        _print_table(result.columns, result.rows)
    elif fmt == "json":
        sys.stdout.write(json.dumps(list(result.rows), indent=2) + "\n")
    else:
        from supportlens.api.formats import render

        sys.stdout.write(bytes(render(result, "csv").body).decode())


@workspace_app.command("create")
def workspace_create(
    name: Annotated[str, typer.Argument(help="Workspace name.")],
    timezone: Annotated[str, typer.Option(help="Reporting timezone (IANA name).")] = "UTC",
) -> None:
    """Create a workspace and print its first admin token."""
    metadata = _metadata()
    try:
        created = metadata.create_workspace(name, timezone=timezone)
        _, secret = metadata.create_token(created.id, "admin", {Scope.ADMIN})
    except (Conflict, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        metadata.close()
    console.print(f"Workspace '{name}' created (reporting timezone {timezone}).")
    console.print("Admin token (shown once, store it safely):")
    typer.echo(secret)


@workspace_app.command("list")
def workspace_list() -> None:
    """List workspaces."""
    metadata = _metadata()
    table = Table("name", "id", "timezone", "created_at")
    for ws in metadata.workspaces():
        table.add_row(ws.name, ws.id, ws.timezone, ws.created_at.isoformat(timespec="seconds"))
    metadata.close()
    console.print(table)


def _describe(token: Token) -> list[str]:
    return [
        token.id,
        token.name,
        ",".join(sorted(s.value for s in token.scopes)),
        "*" if token.datasources is None else ",".join(sorted(token.datasources)),
        "*" if token.pipes is None else ",".join(sorted(token.pipes)),
        ",".join(f"{k}={v}" for k, v in sorted(token.fixed_filters.items())),
        "revoked" if token.revoked_at else "live",
    ]


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="A label for the token.")],
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="admin, append or read; repeatable.")],
    workspace: WorkspaceOption = "default",
    datasource: Annotated[list[str] | None, typer.Option(help="Limit appends to these datasources.")] = None,
    pipe: Annotated[list[str] | None, typer.Option(help="Limit reads to these pipes.")] = None,
    fixed_filter: Annotated[
        list[str] | None, typer.Option("--filter", help="column=value applied to every read; repeatable.")
    ] = None,
) -> None:
    """Create a token; the secret is printed once and never stored."""
    try:
        scopes = {Scope(s) for s in scope}
    except ValueError:
        raise _fail("scopes are admin, append and read") from None
    filters: dict[str, str] = {}
    for item in fixed_filter or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise _fail(f"--filter expects column=value, got {item!r}")
        filters[key.strip()] = value
    metadata = _metadata()
    try:
        target = _workspace(metadata, workspace)
        token, secret = metadata.create_token(
            target.id,
            name,
            scopes,
            datasources=frozenset(datasource) if datasource else None,
            pipes=frozenset(pipe) if pipe else None,
            fixed_filters=filters,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    finally:
        metadata.close()
    console.print(f"Token {token.id} created. Secret (shown once):")
    typer.echo(secret)


@token_app.command("list")
def token_list(workspace: WorkspaceOption = "default") -> None:
    """List a workspace's tokens (never their secrets)."""
    metadata = _metadata()
    try:
        target = _workspace(metadata, workspace)
        table = Table("id", "name", "scopes", "datasources", "pipes", "fixed filters", "state")
        for token in metadata.tokens(target.id):
            table.add_row(*_describe(token))
    finally:
        metadata.close()
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token id shown by 'token list'.")],
    workspace: WorkspaceOption = "default",
) -> None:
    """Revoke a token; it stops working at once."""
    metadata = _metadata()
    try:
        metadata.revoke(_workspace(metadata, workspace).id, token_id)
    except NotFound as exc:
        raise _fail(str(exc)) from None
    finally:
        metadata.close()
    console.print(f"Token {token_id} revoked.")


# Business calendars and status names

calendar_app = typer.Typer(
    help="Business calendars: add, list, show, make default, import holidays, check.", no_args_is_help=True
)
statuses_app = typer.Typer(help="Status names and their categories.", no_args_is_help=True)
app.add_typer(calendar_app, name="calendar")
app.add_typer(statuses_app, name="statuses")

CalendarId = Annotated[str, typer.Argument(help="The calendar id shown by 'calendar list'.")]


@contextmanager
def _configuration(workspace: str) -> Iterator[tuple[ConfigurationRepository, Workspace]]:
    """The configuration and the named workspace; repository refusals end as clean errors."""
    metadata = _metadata()
    configuration = ConfigurationRepository(Settings().metadata_path)
    try:
        yield configuration, _workspace(metadata, workspace)
    except (NotFound, Conflict, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        configuration.close()
        metadata.close()


def _restate_with_progress(
    runtime: Runtime, workspace: Workspace, start: Callable[[Callable[[int], None]], Future[int] | None]
) -> int:
    """Run a restatement of the workspace's tickets (``start`` queues it, or returns None when there
    is nothing to restate) to the end, with a progress bar; the number of tickets restated."""
    total = runtime.engine.count(TICKETS, workspace.id)
    label = "restating stored tickets"
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=True) as progress:
        task = progress.add_task(label, total=total)
        restating = start(lambda done: progress.update(task, completed=done))
        return restating.result() if restating is not None else 0


@contextmanager
def _calendar_change(workspace: str) -> Iterator[tuple[ConfigurationRepository, Workspace]]:
    """The configuration and the named workspace, for a change to its calendars: when the change
    moves some ticket to another calendar, its tickets are restated (their business-time facts)
    through the writer of a runtime of our own before the command returns."""
    runtime = Runtime.open(Settings())
    try:
        target = _workspace(runtime.metadata, workspace)
        before = runtime.calendar_signature(target)
        try:
            yield runtime.configuration, target
        except (NotFound, Conflict, ValueError) as exc:
            raise _fail(str(exc)) from None
        restated = _restate_with_progress(
            runtime,
            target,
            lambda progress: runtime.restate_if_calendars_changed(target, before, progress=progress),
        )
        if restated:
            console.print(f"{restated} stored tickets restated for the new calendars.")
    finally:
        runtime.close()


def _invalid_file(path: Path, exc: ValidationError) -> typer.Exit:
    lines = [f"  {field_path(err['loc']) or 'file'}: {err['msg']}" for err in exc.errors()]
    return _fail("\n".join([f"{path} is not a valid calendar:", *lines]))


@calendar_app.command("add")
def calendar_add(
    file: Annotated[Path, typer.Argument(help="A calendar definition (JSON).", exists=True, dir_okay=False)],
    workspace: WorkspaceOption = "default",
) -> None:
    """Add a calendar from a JSON definition (the body of POST /v1/calendars)."""
    try:
        definition = CalendarDefinition.model_validate_json(file.read_bytes())
    except ValidationError as exc:
        raise _invalid_file(file, exc) from None
    with _calendar_change(workspace) as (configuration, target):
        stored = configuration.create_calendar(target.id, definition)
    default = " (the workspace's default)" if stored.definition.default else ""
    console.print(f"Calendar '{stored.name}' created: id {stored.id}{default}.")


@calendar_app.command("list")
def calendar_list(workspace: WorkspaceOption = "default") -> None:
    """List a workspace's calendars."""
    with _configuration(workspace) as (configuration, target):
        found = configuration.calendars(target.id)
    table = Table("id", "name", "default", "timezones", "versions", "holidays", "groups")
    for stored in found:
        versions = stored.definition.versions
        table.add_row(
            stored.id,
            stored.name,
            "yes" if stored.definition.default else "",
            ",".join(dict.fromkeys(version.timezone for version in versions)),
            str(len(versions)),
            str(sum(len(version.holidays) for version in versions)),
            ",".join(stored.definition.groups),
        )
    console.print(table)


@calendar_app.command("show")
def calendar_show(calendar_id: CalendarId, workspace: WorkspaceOption = "default") -> None:
    """Print a calendar as JSON."""
    with _configuration(workspace) as (configuration, target):
        stored = configuration.calendar(target.id, calendar_id)
    sys.stdout.write(
        json.dumps({"id": stored.id, **stored.definition.model_dump(mode="json")}, indent=2) + "\n"
    )


@calendar_app.command("default")
def calendar_default(calendar_id: CalendarId, workspace: WorkspaceOption = "default") -> None:
    """Make a calendar the workspace's default."""
    with _calendar_change(workspace) as (configuration, target):
        configuration.set_default_calendar(target.id, calendar_id)
        name = configuration.calendar(target.id, calendar_id).name
    console.print(f"Calendar '{name}' is now the default of '{workspace}'.")


@calendar_app.command("import-ical")
def calendar_import_ical(
    calendar_id: CalendarId,
    file: Annotated[Path, typer.Argument(help="An iCalendar (.ics) file.", exists=True, dir_okay=False)],
    workspace: WorkspaceOption = "default",
) -> None:
    """Add the holidays of an iCalendar file to a calendar."""
    with _calendar_change(workspace) as (configuration, target):
        stored = configuration.calendar(target.id, calendar_id)
        try:
            definition, added = add_ical_holidays(stored.definition, file.read_bytes())
        except CalendarError as exc:
            raise _fail(f"{file}: {exc}") from None
        configuration.replace_calendar(target.id, calendar_id, definition)
    console.print(f"{added} holidays added to '{stored.name}'.")


@calendar_app.command("check")
def calendar_check(
    at: Annotated[str, typer.Option(help="An instant, e.g. 2026-01-05T10:00:00+01:00 (no offset: UTC).")],
    group: Annotated[str | None, typer.Option(help="A ticket group: its calendar.")] = None,
    workspace: WorkspaceOption = "default",
) -> None:
    """Whether the business calendar is open at an instant."""
    try:
        instant = parse_timestamp(at)
    except TimestampError as exc:
        raise _fail(f"--at: {exc}") from None
    with _configuration(workspace) as (configuration, target):
        schedule = configuration.business_calendar(target.id, target.timezone, group)
    state = "[green]open[/green]" if is_open(schedule, instant) else "[yellow]closed[/yellow]"
    console.print(f"{instant.isoformat()}: {state} (calendar '{schedule_name(schedule)}')")


@statuses_app.command("list")
def statuses_list(workspace: WorkspaceOption = "default") -> None:
    """List the status names the workspace knows: the defaults and its own."""
    with _configuration(workspace) as (configuration, target):
        known = configuration.known_status_names(target.id)
    table = Table("name", "category", "custom")
    for name, category, custom in known:
        table.add_row(name, category.value, "yes" if custom else "")
    console.print(table)


@statuses_app.command("set")
def statuses_set(
    names: Annotated[
        list[str], typer.Argument(help="'Status name=category' pairs; replace all custom names.")
    ],
    workspace: WorkspaceOption = "default",
) -> None:
    """Replace the workspace's custom status names, e.g. "Waiting on Vendor=on_hold"; when they
    change, the workspace's stored tickets are restated before the command returns."""
    mapping: dict[str, StatusCategory] = {}
    for item in names:
        name, sep, category = item.rpartition("=")
        if not sep or not name.strip():
            raise _fail(f"expected 'Status name=category', got {item!r}")
        try:
            mapping[name] = StatusCategory(category.strip().lower())
        except ValueError:
            allowed = ", ".join(c.value for c in StatusCategory)
            raise _fail(f"{item!r}: the category must be one of {allowed}") from None
    # The stored tickets follow the names (which count as resolved): restated here, through the
    # writer of a runtime of our own, before the command returns.
    runtime = Runtime.open(Settings())
    try:
        target = _workspace(runtime.metadata, workspace)
        try:
            restated = _restate_with_progress(
                runtime,
                target,
                lambda progress: runtime.set_status_names(target.id, mapping, progress=progress),
            )
        except ValueError as exc:
            raise _fail(str(exc)) from None
    finally:
        runtime.close()
    console.print(f"{len(mapping)} custom status names set for '{workspace}'.")
    if restated:
        console.print(f"{restated} stored tickets restated with the new names.")


# Seed 003's output: hours per ticket, from our definitions (docs/decisions.md explains where the
# seed's own SQL counts otherwise).
_SEED_STATUS_COLUMNS = {
    "time_spent_open": "open",
    "time_spent_waiting_on_customer": "waiting for customer",
    "time_spent_waiting_for_response": "pending",
}
_REPORT_PAGE = 100_000


def _hours(minutes: float | None) -> str:
    return "" if minutes is None else f"{minutes / 60:.2f}"


@report_app.command("time-in-status")
def report_time_in_status(
    workspace: WorkspaceOption = "default",
    as_of: Annotated[
        str, typer.Option("--as-of", help="now, export_end (the newest imported export's end) or a date.")
    ] = "now",
    business_hours: Annotated[
        bool, typer.Option("--business-hours", help="Business hours of the workspace calendar.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="csv (the seed's columns, in hours).")] = "csv",
) -> None:
    """Per ticket: time spent Open, Waiting for Customer and Pending, time till resolution and
    time to first response, in hours (seed 003's columns)."""
    if fmt != "csv":
        raise _fail("--format takes csv")
    runtime = Runtime.open(Settings())
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["ticket_id", *_SEED_STATUS_COLUMNS, "time_till_resolution", "time_to_first_response"])
    try:
        target = _workspace(runtime.metadata, workspace)
        offset = 0
        while True:
            query = {
                "as_of": as_of,
                "business_hours": str(business_hours).lower(),
                "limit": str(_REPORT_PAGE),
                "offset": str(offset),
            }
            try:
                rows = runtime.run_pipe("ticket_time_metrics", target, query).rows
            except (ParamError, QueryTimeout) as exc:
                raise _fail(str(exc)) from None
            for row in rows:
                spent = json.loads(row["minutes_in_status"]) if row["minutes_in_status"] else {}
                out.writerow(
                    [
                        row["ticket_id"],
                        *(
                            _hours(spent.get(status, 0.0) if spent else None)
                            for status in _SEED_STATUS_COLUMNS.values()
                        ),
                        _hours(row["full_resolution_minutes"]),
                        _hours(row["first_response_minutes"]),
                    ]
                )
            if len(rows) < _REPORT_PAGE:
                break
            offset += _REPORT_PAGE
    finally:
        runtime.close()


# Helpdesk connections (issue 5)

connect_app = typer.Typer(
    help="Connect helpdesk accounts (HubSpot, LiveChat, Freshdesk, Zendesk).", no_args_is_help=True
)
app.add_typer(connect_app, name="connect")


def _credentials(pairs: list[str], file: Path | None) -> dict[str, str]:
    """``key=value`` pairs, or a JSON object file (keeps secrets out of the shell history)."""
    found: dict[str, str] = {}
    if file is not None:
        loaded = orjson.loads(file.read_bytes())
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise _fail(f"{file}: expected a JSON object of strings")
        found.update(loaded)
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise _fail(f"--credential {key.strip() or pair!r}: expected key=value")
        found[key.strip()] = value
    if not found:
        raise _fail("give the credentials with --credential key=value or --credentials-file")
    return found


@connect_app.command("add")
def connect_add(
    kind: Annotated[str, typer.Argument(help="hubspot, livechat, freshdesk or zendesk.")],
    name: Annotated[str, typer.Option(help="A name for the connection, unique in the workspace.")],
    base_url: Annotated[str, typer.Option(help="The API's base URL.")],
    credential: Annotated[list[str], typer.Option(help="A credential, key=value (repeatable).")] = [],  # noqa: B006
    credentials_file: Annotated[Path | None, typer.Option(help="Credentials as a JSON object.")] = None,
    schedule_hours: Annotated[float, typer.Option(help="Sync every this many hours.")] = 4.0,
    timezone: Annotated[str, typer.Option(help="Timezone of source times without an offset.")] = "UTC",
    workspace: WorkspaceOption = "default",
) -> None:
    """Add a helpdesk connection; its credentials are stored encrypted and never shown again."""
    runtime = Runtime.open(Settings())
    try:
        target = _workspace(runtime.metadata, workspace)
        if kind.lower() not in runtime.sync.kinds():
            known = ", ".join(runtime.sync.kinds()) or "(none)"
            raise _fail(f"unknown kind {kind!r}; use one of {known}")
        try:
            stored = runtime.connections.create(
                target.id,
                kind=kind.lower(),
                name=name,
                base_url=base_url,
                credentials=_credentials(credential, credentials_file),
                schedule_hours=schedule_hours,
                timezone=timezone,
                options={},
            )
        except Conflict as exc:
            raise _fail(str(exc)) from None
    finally:
        runtime.close()
    console.print(
        f"Connection '{stored.name}' ({stored.kind}) added: id {stored.id},"
        f" synced every {stored.schedule_hours:g} h."
    )


@connect_app.command("list")
def connect_list(workspace: WorkspaceOption = "default") -> None:
    """List a workspace's connections and how their syncs went."""
    runtime = Runtime.open(Settings())
    try:
        found = runtime.connections.connections(_workspace(runtime.metadata, workspace).id)
    finally:
        runtime.close()
    table = Table("id", "name", "kind", "every", "last run", "last success", "failures", "running")
    for c in found:
        table.add_row(
            c.id,
            c.name,
            c.kind,
            f"{c.schedule_hours:g} h",
            str(c.last_run_at or ""),
            str(c.last_success_at or ""),
            str(c.consecutive_failures),
            "yes" if c.running else "",
        )
    console.print(table)


ConnectionArgument = Annotated[
    str | None, typer.Argument(help="A connection id or name (default: every one).")
]


def _each_connection(
    workspace: str,
    connection: str | None,
    run_one: Callable[[Runtime, str, str], RunRecord],
    describe: Callable[[RunRecord], str],
) -> None:
    """``run_one(runtime, workspace_id, connection)`` for the connection or every one of the
    workspace, a summary line each; exit code 1 when one failed."""
    from supportlens.connectors.store import AlreadyRunning

    runtime = Runtime.open(Settings())
    failed = False
    try:
        target = _workspace(runtime.metadata, workspace)
        names = [connection] if connection else [c.id for c in runtime.connections.connections(target.id)]
        if not names:
            raise _fail(f"workspace {workspace!r} has no connections; add one with 'supportlens connect add'")
        for ref in names:
            try:
                run = run_one(runtime, target.id, ref)
            except (NotFound, AlreadyRunning) as exc:
                raise _fail(str(exc)) from None
            failed = failed or run.status != "succeeded"
            console.print(f"{ref}: {run.status}; {describe(run)}")
            for error in run.errors[-5:]:
                console.print(f"  [red]{error}[/red]")
    finally:
        runtime.close()
    if failed:
        raise typer.Exit(code=1)


@app.command()
def sync(
    connection: ConnectionArgument = None,
    full: Annotated[bool, typer.Option("--full", help="Read the whole rolling window again.")] = False,
    workspace: WorkspaceOption = "default",
) -> None:
    """Sync now, with a progress bar and a summary of each run."""
    from supportlens.connectors.engine import Progress as SyncProgress

    def run_one(runtime: Runtime, workspace_id: str, ref: str) -> RunRecord:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=errors) as bar:
            task = bar.add_task(f"sync {ref}", total=None)

            def show(step: SyncProgress) -> None:
                bar.update(task, completed=step.fetched, total=step.total)

            return runtime.sync.run(workspace_id, ref, full=full, trigger="cli", progress=show)

    _each_connection(
        workspace,
        connection,
        run_one,
        lambda run: (
            f"{run.pages} pages, {run.fetched} records read, {run.written} rows written,"
            f" {run.quarantined} quarantined; {run.requests} requests ({run.retries} retried,"
            f" {run.throttled} throttled)"
        ),
    )


@app.command()
def prune(connection: ConnectionArgument = None, workspace: WorkspaceOption = "default") -> None:
    """Apply retention now: remove synced tickets not updated within their connection's window."""
    _each_connection(
        workspace,
        connection,
        lambda runtime, workspace_id, ref: runtime.retention.prune(workspace_id, ref),
        lambda run: f"{run.removed} tickets removed",
    )


if __name__ == "__main__":  # pragma: no cover
    app()
