"""The FastAPI application: ``create_app(settings)`` and a lifespan that opens the runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from supportlens import __version__
from supportlens.api import configuration, errors, events, imports, pipes, quarantine, sla
from supportlens.config import Settings
from supportlens.runtime import Runtime
from supportlens.web import routes as dashboard


def create_app(settings: Settings | None = None) -> FastAPI:
    resolved = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.open(resolved)
        app.state.runtime = runtime
        evaluator = runtime.sla_evaluator()
        if resolved.sla_evaluator_interval_seconds > 0:
            evaluator.start()
        try:
            yield
        finally:
            evaluator.stop()
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

    @app.get("/health", tags=["meta"], summary="Liveness and store engine")
    def health() -> dict[str, str]:
        runtime: Runtime = app.state.runtime
        return {"status": "ok", "engine": runtime.engine.name, "version": __version__}

    dashboard.install(app)
    return app
