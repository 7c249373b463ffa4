"""Serves the dashboard: ``/`` is its page, ``/static`` its scripts, styles and the chart library
(installed from the npm registry into ``static/vendor`` by ``make``; see web/package.json).  The page
holds no data: every figure is fetched by the browser from the pipes, with the signed-in token."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
CHART_LIBRARY = STATIC / "vendor" / "chart.umd.min.js"
log = logging.getLogger(__name__)


def install(app: FastAPI) -> None:
    if not CHART_LIBRARY.is_file():
        log.warning("dashboard: %s is missing (run `make install`): charts will not be drawn", CHART_LIBRARY)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
