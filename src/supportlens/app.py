"""The FastAPI application: ``create_app(settings)`` and a lifespan that opens the runtime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import CapacityLimiter
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from supportlens import __version__
from supportlens.api import (
    attachments,
    configuration,
    connections,
    customers,
    errors,
    events,
    imports,
    notifications,
    pipes,
    quarantine,
    routing,
    schemas,
    sla,
    tickets,
)
from supportlens.api.admission import Admission
from supportlens.collector import freeze_long_lived_objects
from supportlens.config import Settings
from supportlens.connectors.scheduler import SyncScheduler
from supportlens.runtime import Runtime
from supportlens.web import routes as dashboard
from supportlens.workers.periodic import Periodic

OUTBOX_INTERVAL_SECONDS = 5.0
log = logging.getLogger(__name__)


def _freeze_long_lived_objects() -> None:
    log.info("%d long-lived objects frozen for the garbage collector", freeze_long_lived_objects())


def create_app(settings: Settings | None = None, *, freeze_after_warm_up: bool = False) -> FastAPI:
    """The application.  ``freeze_after_warm_up`` (the server's ``serve``): once the start-up run of
    the pipes is over, the objects made until then are frozen for the garbage collector
    (collector.py); a process-wide change, not for apps made in tests."""
    resolved = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.open(resolved)
        app.state.runtime = runtime
        # Queued, not waited for: answers stay exact meanwhile (the slower way).
        app.state.restating_facts = runtime.restate_outdated_facts()
        app.state.warming_pipes = runtime.warm_pipes(
            _freeze_long_lived_objects if freeze_after_warm_up else None
        )
        # Made here, inside the server's event loop, which its waits belong to.
        app.state.admission = Admission(
            resolved.query_concurrency,
            resolved.query_queue_seconds,
            keep_bytes=resolved.answer_cache_mb * 1024 * 1024,
            size=pipes.answer_size,
        )
        app.state.ingest_limiter = CapacityLimiter(resolved.ingest_concurrency)
        evaluator = runtime.sla_evaluator()
        # Background work; an interval of 0 turns one off.
        periodic = [
            Periodic(
                "sla-evaluator",
                lambda now: evaluator.run_once(now).events,
                interval=resolved.sla_evaluator_interval_seconds,
            ),
            Periodic(
                "notification-retries",
                runtime.notifications.retry_due,
                interval=resolved.notify_retry_interval_seconds,
            ),
            Periodic(
                "routing-timers",
                runtime.routing.escalate_due,
                interval=resolved.routing_timer_interval_seconds,
            ),
            Periodic(
                "sync-scheduler",
                SyncScheduler(runtime.connections, runtime.sync).run_due,
                interval=resolved.sync_check_interval_seconds,
            ),
            Periodic("retention", runtime.retention.run_due, interval=resolved.sync_check_interval_seconds),
            # Ticket events a full write queue left in the outbox (tickets/service.py).
            Periodic(
                "ticket-outbox",
                lambda _now: runtime.tickets.deliver_pending(),
                interval=OUTBOX_INTERVAL_SECONDS,
            ),
        ]
        for worker in periodic:
            worker.start()
        try:
            yield
        finally:
            for worker in periodic:
                worker.stop()
            runtime.close()

    app = FastAPI(
        title="SupportLens",
        version=__version__,
        description="Customer-support analytics: Events API and analytics endpoints (pipes).",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(events.router)
    app.include_router(quarantine.router)
    app.include_router(pipes.router)
    app.include_router(imports.router)
    app.include_router(configuration.router)
    app.include_router(sla.router)
    app.include_router(tickets.router)
    app.include_router(notifications.router)
    app.include_router(attachments.router)
    app.include_router(customers.router)
    app.include_router(schemas.router)
    app.include_router(routing.router)
    app.include_router(connections.router)

    @app.get("/health", tags=["meta"], summary="Liveness and store engine")
    def health() -> dict[str, str]:
        runtime: Runtime = app.state.runtime
        return {"status": "ok", "engine": runtime.engine.name, "version": __version__}

    @app.get(
        "/ready",
        tags=["meta"],
        summary="Readiness: 200 once the start-up warm-up of the pipes is over, 503 before",
        responses={503: {"description": "Still warming up the pipes; retry shortly"}},
    )
    def ready() -> JSONResponse:
        # Answers are exact meanwhile, only slower: a load balancer may hold traffic until then.
        if app.state.warming_pipes.done():
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "detail": "warming up the pipes"}, 503, {"Retry-After": "1"})

    dashboard.install(app)
    return app
