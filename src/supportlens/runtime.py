"""The running parts of one SupportLens process: the store, the metadata, the writer and the ingest
service.  The HTTP app and the CLI both open one of these and close it when they are done.

Changes that touch stored data go through here, e.g. new status names, which restate the
workspace's stored tickets through the single writer (``set_status_names``)."""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from supportlens.analytics.common import PipeContext, PipeResult
from supportlens.analytics.facts import outdated_facts
from supportlens.analytics.group_memo import KeptGroups
from supportlens.analytics.history_memo import FoldedLogs
from supportlens.analytics.pipes import PIPES
from supportlens.analytics.scope import Scope
from supportlens.analytics.sla_memo import LISTED_SCHEMA, KeptEvaluations, TargetStates
from supportlens.analytics.sla_memo_files import load_target_states, save_target_states
from supportlens.auth.repository import MetadataRepository, Workspace
from supportlens.config import Settings
from supportlens.configuration.repository import ConfigurationRepository, ImportRecord
from supportlens.connectors.alerts import SyncAlerts
from supportlens.connectors.aliases import AliasStore
from supportlens.connectors.engine import SyncEngine
from supportlens.connectors.registry import KINDS
from supportlens.connectors.retention import Retention
from supportlens.connectors.secrets import SecretBox
from supportlens.connectors.store import ConnectionStore
from supportlens.domain.statuses import StatusCategory
from supportlens.ingest.imports import ImportSummary
from supportlens.ingest.service import IngestService
from supportlens.ingest.writer import Writer
from supportlens.notify.service import NotificationService
from supportlens.records.customers import CustomerRepository
from supportlens.records.schemas import SchemaRegistry
from supportlens.store import create_engine
from supportlens.store.base import Engine, QueryTimeout, time_limit
from supportlens.tickets.attachments import AttachmentStore
from supportlens.tickets.categories import CategoryService
from supportlens.tickets.repository import TicketRepository, default_ticket_prefix
from supportlens.tickets.routing_service import RoutingService
from supportlens.tickets.routing_store import RoutingStore
from supportlens.tickets.service import TicketService
from supportlens.workers.passes import PassStore
from supportlens.workers.sla_evaluator import SlaEvaluator

log = logging.getLogger(__name__)
T = TypeVar("T")


class UnknownPipe(LookupError):
    pass


# The CLI's preparation of the SLA pipes after an import (``Runtime.prepare_sla_pipes``): each
# run's time limit.
PREPARATION_TIME_LIMIT_SECONDS = 3_600.0


@dataclass
class CalendarChange:
    before: tuple[str, tuple[tuple[str, str], ...]]  # the calendar signature before the change
    restating: Future[int] | None = None  # set at the end: the queued restatement, if any


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    metadata: MetadataRepository
    writer: Writer
    ingest: IngestService
    configuration: ConfigurationRepository
    sla_passes: PassStore  # what the SLA evaluator's passes leave for the next, across restarts
    tickets: TicketService  # the ticket management API's records and commands
    attachments: AttachmentStore  # tickets' and comments' files
    customers: CustomerRepository
    schemas: SchemaRegistry  # the workspaces' custom-field schemas, which record writes are checked against
    notifications: NotificationService  # emails and SMS about tickets, each attempt recorded
    routing: RoutingService  # routing rules, applied to tickets as they are created and changed
    categories: CategoryService  # support categories and their SLA policies
    connections: ConnectionStore  # helpdesk connections (credentials sealed), cursors, run log, alerts
    aliases: AliasStore  # agent-name standardization across sources
    sync: SyncEngine  # runs a connection's sync through the ingest path
    retention: Retention  # removes synced tickets that left their connection's rolling window
    # Work the API starts and does not wait for (a sync): finished before the stores close.
    # SLA evaluations kept between pipe runs (analytics/sla_memo.py).
    sla_memo: KeptEvaluations = field(default_factory=KeptEvaluations)
    sla_states: TargetStates = field(default_factory=TargetStates)
    at_risk_states: TargetStates = field(default_factory=lambda: TargetStates(schema=LISTED_SCHEMA))
    folded_logs: FoldedLogs = field(default_factory=FoldedLogs)  # analytics/history_memo.py
    kept_periods: KeptGroups[Any] = field(default_factory=KeptGroups)  # analytics/group_memo.py
    background: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="supportlens-background")
    )
    # Set when closing: background work that is only an optimization (warm_pipes) stops early.
    closing: threading.Event = field(default_factory=threading.Event)
    # The start-up preparation of each workspace's SLA pipes, done once it is over (warm_pipes).
    _sla_preparations: dict[tuple[str, str], Future[None]] = field(default_factory=dict, init=False)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.store_url)
        engine.open()
        metadata = MetadataRepository(settings.metadata_path)
        configuration = ConfigurationRepository(settings.metadata_path)
        writer = Writer(
            engine,
            batch_rows=settings.writer_batch_rows,
            queue_rows=settings.writer_queue_rows,
            statuses=configuration.status_map,
            calendars=lambda workspace_id: configuration.calendar_choice(
                workspace_id, metadata.workspace(workspace_id).timezone
            ),
        )
        writer.start()
        if engine.needs_restate:
            _restate_everything(metadata, writer)
        last_seq = engine.max_sequence()
        ingest = IngestService(writer, first_sequence=last_seq + 1, sole_writer=engine.sole_writer)
        log.info("store open: %s engine", engine.name)
        schemas = SchemaRegistry(settings.metadata_path)
        tickets = TicketService(
            TicketRepository(settings.tickets_path),
            ingest,
            statuses=configuration.status_map,
            default_prefix=lambda workspace_id: default_ticket_prefix(metadata.workspace(workspace_id).name),
            delivery_timeout=settings.query_timeout_seconds,
        )
        tickets.deliver_pending()
        attachments = AttachmentStore.open(settings)
        tickets.attachments = attachments
        notifications = NotificationService.open(settings)
        tickets.notify = notifications.notify_list
        customers = CustomerRepository(settings.metadata_path, schemas)
        routing_store = RoutingStore(settings.metadata_path)
        routing = RoutingService(
            routing_store, tickets, statuses=configuration.status_map, plan_of=customers.plan_of
        )
        tickets.route = routing
        tickets.plan_of = customers.plan_of
        tickets.validate_document = lambda workspace_id, collection, document: [
            (problem.path, problem.message)
            for problem in schemas.validate(workspace_id, collection, document)
        ]
        connections = ConnectionStore(settings.metadata_path, SecretBox.open(settings))
        aliases = AliasStore(settings.metadata_path)
        runtime = cls(
            settings,
            engine,
            metadata,
            writer,
            ingest,
            configuration,
            PassStore(settings.metadata_path),
            tickets,
            attachments,
            customers=customers,
            schemas=schemas,
            notifications=notifications,
            routing=routing,
            categories=CategoryService(routing_store, configuration),
            connections=connections,
            aliases=aliases,
            sync=SyncEngine(
                connections,
                ingest,
                KINDS,
                aliases,
                retention_days=settings.retention_days,
                alert_after=settings.sync_alert_after_failures,
                alert=SyncAlerts(connections, settings),
            ),
            retention=Retention(
                connections,
                ingest,
                retention_days=settings.retention_days,
                interval_hours=settings.retention_interval_hours,
            ),
        )
        taken_up = load_target_states(runtime.sla_states, settings.kept_sla_states_path, last_seq=last_seq)
        if taken_up:
            log.info("SLA states saved by the last run taken up for %d workspaces", taken_up)
        listed = load_target_states(runtime.at_risk_states, settings.kept_at_risk_path, last_seq=last_seq)
        if listed:
            log.info("SLA at-risk listings saved by the last run taken up for %d workspaces", listed)
        return runtime

    def close(self) -> None:
        """Flush queued rows, then close the store: nothing accepted is lost on a clean stop."""
        self.closing.set()
        self.background.shutdown(wait=True)
        self.writer.stop()
        self._save_sla_states()
        self.ingest.close()
        self.engine.close()
        self.metadata.close()
        self.configuration.close()
        self.sla_passes.close()
        self.tickets.repository.close()
        self.connections.close()
        self.aliases.close()
        self.attachments.close()
        self.customers.close()
        self.schemas.close()
        self.notifications.close()
        self.routing.store.close()

    def sla_evaluator(
        self, workspaces: Callable[[], Iterable[Workspace]] | None = None, *, timeout: float | None = None
    ) -> SlaEvaluator:
        """The background evaluator that records SLA breaches and escalations (the server runs it
        over every workspace); its queries' time limit is ``timeout`` (default: the configured one)."""
        return SlaEvaluator(
            self.ingest,
            workspaces or self.metadata.workspaces,
            partial(self.pipe_context, timeout=timeout),
            lookback_days=self.settings.sla_lookback_days,
            passes=self.sla_passes,
            on_escalations=self.tickets.apply_sla_escalations,
        )

    def set_status_names(
        self,
        workspace_id: str,
        mapping: Mapping[str, StatusCategory],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Future[int]:
        """Replace the workspace's custom status names (ValueError as ``set_status_names`` of the
        configuration) and, when that changed them, queue the restatement of its stored tickets
        (``Writer.restate``).  The future resolves to the number of tickets restated (0 when the
        names are the same as before)."""
        before = self.configuration.status_names(workspace_id)
        self.configuration.set_status_names(workspace_id, mapping)
        if self.configuration.status_names(workspace_id) == before:
            unchanged: Future[int] = Future()
            unchanged.set_result(0)
            return unchanged
        return self.writer.restate(workspace_id, progress=progress)

    def restate_outdated_facts(self) -> dict[str, Future[int]]:
        """At server start: queue the restatement of each workspace whose stored time facts were
        computed under status names or calendars it no longer has (by an earlier release, or a
        restatement a stop cut short), by workspace id.  Answers stay exact meanwhile: a query
        that meets an outdated fact computes from the activity log, which is slower."""
        queued: dict[str, Future[int]] = {}
        for workspace in self.metadata.workspaces():
            outdated = outdated_facts(
                self.engine,
                workspace.id,
                self.configuration.status_map(workspace.id),
                self.configuration.calendar_choice(workspace.id, workspace.timezone),
            )
            if outdated:
                log.info(
                    "%d tickets of workspace %s hold time facts computed under other status names or"
                    " calendars; restating the workspace in the background",
                    outdated,
                    workspace.name,
                )
                restating = self.writer.restate(workspace.id)
                restating.add_done_callback(partial(_log_restated, workspace.name))
                queued[workspace.id] = restating
        return queued

    def warm_pipes(self, then: Callable[[], object] | None = None) -> Future[int]:
        """At server start, in the background: run ``sla_attainment`` and ``sla_at_risk`` with
        their defaults on each workspace, so that the SLA evaluations they keep between runs
        (analytics/sla_memo.py) are made before the first dashboard asks: at a million tickets the
        first run takes seconds, the next ones a fraction.  Then every other pipe once with its
        defaults: what they keep between runs (periods, activity logs, timelines) and the store's
        caches are made before the first requests too (a second at a million tickets; without it
        the first requests of a fresh server wait up to about a second).  Resolves to the
        workspaces whose SLA pipes were warmed; a run that fails (past the time limit) is logged
        and the next goes on; closing the runtime stops it after the pipe under way.  ``then`` runs
        last, before the future resolves.  The server is ready (``GET /ready``) once it is over."""
        workspaces = self.metadata.workspaces()
        for workspace in workspaces:
            for name in WARMED_PIPES:
                self._sla_preparations[workspace.id, name] = Future()
        return self.background.submit(self._warm_pipes, workspaces, then)

    def sla_preparation(self, pipe_name: str, workspace_id: str) -> Future[None] | None:
        """The start-up preparation of this SLA pipe (``WARMED_PIPES``) of the workspace while it
        is under way, else None.  A request to the pipe would only wait for the preparation's
        evaluation (the turns of analytics/sla_memo.py): waited for before it takes an admission
        slot, it leaves the slots to the other pipes meanwhile."""
        preparation = self._sla_preparations.get((workspace_id, pipe_name))
        return None if preparation is None or preparation.done() else preparation

    def prepare_sla_pipes(
        self, workspace: Workspace, *, time_limit_seconds: float = PREPARATION_TIME_LIMIT_SECONDS
    ) -> float | None:
        """Now, for one workspace: a pass of the SLA evaluator (unless it is turned off), what
        ``warm_pipes`` does for the SLA pipes at server start, then save what the SLA pipes keep,
        so that the next start takes it up (analytics/sla_memo_files.py) instead of evaluating
        every ticket again.  The CLI does this after it wrote tickets: a batch step, under its own
        time limit rather than a request's (a first evaluation of a million tickets known by their
        logs takes minutes).  The seconds it took, or None when a run failed (logged)."""
        started = time.perf_counter()
        if self.settings.sla_evaluator_interval_seconds > 0:
            # First, since its findings are written to the store: the server's passes then go on
            # incrementally instead of starting with a pass over every recent ticket.
            evaluator = self.sla_evaluator(lambda: [workspace], timeout=time_limit_seconds)
            try:
                evaluator.run_once()
            except Exception:
                log.exception("could not evaluate the SLA of workspace %s", workspace.name)
                return None
        if not self._warm_workspace(workspace, time_limit_seconds):
            return None
        self._save_sla_states()
        return time.perf_counter() - started

    def _warm_pipes(self, workspaces: list[Workspace], then: Callable[[], object] | None) -> int:
        warmed = self._warm_sla_pipes(workspaces)
        started = time.perf_counter()
        for workspace in workspaces:
            for name in PIPES:
                if self.closing.is_set():
                    return warmed
                if name in WARMED_PIPES:
                    continue
                try:
                    self.run_pipe(name, workspace, {})
                except Exception:  # only an optimization: the first request computes it instead
                    log.exception("could not warm the pipe %s of workspace %s", name, workspace.name)
        log.info(
            "other pipes of %d workspaces warmed in %.1f s", len(workspaces), time.perf_counter() - started
        )
        if then is not None:
            then()
        return warmed

    def _warm_sla_pipes(self, workspaces: list[Workspace]) -> int:
        warmed = 0
        try:
            for workspace in workspaces:
                if self.closing.is_set():  # a stop does not wait for what only saves time
                    break
                if self._warm_workspace(workspace):
                    warmed += 1
        finally:
            for preparation in self._sla_preparations.values():
                if not preparation.done():  # stopped early, or failed: nobody waits any longer
                    preparation.set_result(None)
        if warmed and not self.closing.is_set():  # a stop saves them itself
            self._save_sla_states()
        return warmed

    def _save_sla_states(self) -> None:
        """Saves what the SLA pipes keep, for the next start; a failure only costs that time."""
        try:
            save_target_states(self.sla_states, self.settings.kept_sla_states_path)
            save_target_states(self.at_risk_states, self.settings.kept_at_risk_path)
        except Exception:  # never in the way of a stop: the next start evaluates again
            log.exception("could not save the SLA states for the next start")

    def _warm_workspace(self, workspace: Workspace, time_limit_seconds: float | None = None) -> bool:
        started = time.perf_counter()
        try:
            for name in WARMED_PIPES:
                if self.closing.is_set():
                    return False
                self.run_pipe(name, workspace, {}, time_limit_seconds=time_limit_seconds)
                preparation = self._sla_preparations.get((workspace.id, name))
                if preparation is not None:  # the server's, at its start
                    preparation.set_result(None)
        except Exception:
            log.exception("could not prepare the SLA pipes of workspace %s", workspace.name)
            return False
        log.info("SLA pipes of workspace %s ready in %.1f s", workspace.name, time.perf_counter() - started)
        return True

    def calendar_signature(self, workspace: Workspace) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What decides each ticket's business time: the default calendar and every group's."""
        choice = self.configuration.calendar_choice(workspace.id, workspace.timezone)
        fingerprints = choice.fingerprints()
        groups = tuple(sorted((group, fingerprints[index]) for group, index in choice.group_index.items()))
        return fingerprints[0], groups

    def restate_if_calendars_changed(
        self,
        workspace: Workspace,
        before: tuple[str, tuple[tuple[str, str], ...]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Future[int] | None:
        """After a change to the workspace's calendars or group assignments: queue the restatement
        of its tickets when some ticket's calendar changed (their business-time facts follow it).
        Until it is done, queries that meet an outdated fact compute from the activity log."""
        if self.calendar_signature(workspace) == before:
            return None
        return self.writer.restate(workspace.id, progress=progress)

    @contextmanager
    def calendar_change(self, workspace: Workspace) -> Iterator[CalendarChange]:
        """Around a change to the workspace's calendars or group assignments: when the block ends
        without an error, restate its tickets if some ticket's calendar changed (``restating``)."""
        change = CalendarChange(self.calendar_signature(workspace))
        yield change
        change.restating = self.restate_if_calendars_changed(workspace, change.before)

    def record_import(self, workspace_id: str, summary: ImportSummary) -> None:
        """Remember an imported activity export (its window answers ``as_of=export_end``)."""
        self.configuration.record_import(
            workspace_id,
            ImportRecord(
                kind="freshdesk-activities",
                file_name=summary.file_name,
                start_at=summary.start_at,
                end_at=summary.end_at,
                declared_count=summary.declared_activities,
                events=summary.events,
                ignored=summary.ignored_activities,
                rejected=summary.rejected_activities,
            ),
        )

    def pipe_context(
        self,
        workspace: Workspace,
        fixed_filters: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
    ) -> PipeContext:
        """What a pipe run of the workspace reads through; its queries' time limit is ``timeout``
        (by default the configured one)."""
        return PipeContext(
            engine=self.engine,
            scope=Scope(workspace.id, dict(fixed_filters or {})),
            timezone=workspace.timezone,
            default_window_days=self.settings.default_window_days,
            timeout=self.settings.query_timeout_seconds if timeout is None else timeout,
            calendar=self.configuration.business_calendar(workspace.id, workspace.timezone),
            statuses=self.configuration.status_map(workspace.id),
            export_end=self.configuration.latest_export_end(workspace.id),
            sla_policies=partial(self.configuration.policy_set, workspace.id),
            calendars=partial(self.configuration.calendar_choice, workspace.id, workspace.timezone),
            sla_memo=self.sla_memo,
            sla_states=self.sla_states,
            at_risk_states=self.at_risk_states,
            folded_logs=self.folded_logs,
            kept_periods=self.kept_periods,
        )

    def run_pipe(
        self,
        name: str,
        workspace: Workspace,
        query: Mapping[str, str],
        fixed_filters: Mapping[str, str] | None = None,
        *,
        time_limit_seconds: float | None = None,
    ) -> PipeResult:
        """Run a pipe under the time limit (by default the configured one), which bounds the whole
        run (every query and the work between them), not each query alone: ``QueryTimeout`` past
        it."""
        return self.answer_pipe(
            name,
            workspace,
            query,
            fixed_filters,
            lambda result: result,
            time_limit_seconds=time_limit_seconds,
        )

    def answer_pipe(
        self,
        name: str,
        workspace: Workspace,
        query: Mapping[str, str],
        fixed_filters: Mapping[str, str] | None,
        render: Callable[[PipeResult], T],
        *,
        time_limit_seconds: float | None = None,
    ) -> T:
        """``run_pipe``, then ``render`` its result, both within the time limit: writing out a
        listing of a million rows is work the limit bounds too."""
        pipe = PIPES.get(name)
        if pipe is None:
            raise UnknownPipe(name)
        limit = self.settings.query_timeout_seconds if time_limit_seconds is None else time_limit_seconds
        context = self.pipe_context(workspace, fixed_filters, timeout=limit)
        return within_time_limit(limit, lambda: render(pipe.run(context, query)))


def _log_restated(workspace_name: str, restating: Future[int]) -> None:
    if restating.exception() is None:  # a failure is logged by the writer
        log.info("restated %d tickets of workspace %s", restating.result(), workspace_name)


def _restate_everything(metadata: MetadataRepository, writer: Writer) -> None:
    """After an upgrade that asks for it (schema.Restate): every workspace's tickets, before the
    store serves anything."""
    for workspace in metadata.workspaces():
        log.info("upgrading the store: restating the tickets of workspace %s", workspace.name)
        restated = writer.restate(workspace.id).result()
        log.info("restated %d tickets of workspace %s", restated, workspace.name)


# Run first at server start (``Runtime.warm_pipes``): the pipes whose first run is the slowest.
WARMED_PIPES = ("sla_attainment", "sla_at_risk")


class _PastTimeLimit(QueryTimeout):
    """Raised asynchronously in a thread whose work ran past its time limit (``within_time_limit``)."""


# How often the stop is raised again while the work still runs: an exception raised inside a weakref
# callback or a destructor (a garbage collection can run them anywhere) is printed and dropped.
RESTOP_SECONDS = 0.05


def within_time_limit(seconds: float, work: Callable[[], T]) -> T:
    """``work()`` on this thread, stopped with ``QueryTimeout`` once ``seconds`` have passed.

    Queries share the limit (``store.base.time_limit``: each runs for what remains of it and the
    engine interrupts it at the end).  Work between queries (Python computing over fetched rows)
    is stopped by raising ``QueryTimeout`` in this thread at the limit, and again every
    ``RESTOP_SECONDS`` while the work goes on (a stop can land where Python drops it).  That is
    only done while ``work`` runs (a lock orders it with the end of the work), so the exception
    never reaches code outside this call.  Once it has been raised, the call ends in
    ``QueryTimeout`` whatever ``work`` did with it: a library may wrap it in its own error (DuckDB
    does, in a Python callback) or swallow it and go on, and neither may turn into a 500 or into an
    answer."""
    thread_id = threading.get_ident()
    lock = threading.Lock()
    finished = threading.Event()
    running = True
    fired = False

    def stop_until_finished() -> None:
        nonlocal fired
        wait = seconds
        while not finished.wait(wait):
            with lock:
                if not running:
                    return
                fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread_id), ctypes.py_object(_PastTimeLimit)
                )
            wait = RESTOP_SECONDS

    def end() -> None:
        """Marks the work over; a stop landing meanwhile (already sent) is absorbed here."""
        nonlocal running
        while running or not finished.is_set():
            try:
                with lock:
                    running = False
                finished.set()
            except _PastTimeLimit:
                continue

    stopper = threading.Thread(target=stop_until_finished, name="time-limit", daemon=True)
    past_limit = QueryTimeout(f"query stopped after the {seconds:g} s time limit")
    try:
        try:
            stopper.start()
            with time_limit(seconds):
                answer = work()
        finally:
            end()
    except QueryTimeout:
        raise past_limit from None
    except Exception:
        if fired:
            raise past_limit from None
        raise
    if fired:
        raise past_limit
    return answer
