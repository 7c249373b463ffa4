"""What is measured: the data window, the twelve endpoint cases, and latency statistics."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from supportlens.analytics.pipes import PIPES

END = datetime(2025, 1, 1, tzinfo=UTC)  # fixed: the same data on every run
DAYS = 365
SEED = 20_240_101
# One representative filter per endpoint (each is a parameter the endpoint documents).
FILTERS: dict[str, tuple[str, str]] = {
    "time_trends": ("category", "billing"),
    "sla_performance": ("agent_id", "A001"),
    "agent_performance": ("agent_id", "A001"),
    "ticket_details": ("priority", "high"),
    "category_analysis": ("priority", "high"),
    "ticket_metrics": ("category", "billing"),
}
DETAIL_LIMIT = 100
# The seed's six endpoints over ticket snapshots, in the registry's order (a renamed or removed one
# fails here).  The pipes over the activity log (ticket_time_metrics, time_in_status, ...) get no
# data from the snapshots loaded here; ticket_time_metrics has its own benchmark against seed 003
# in bench/activity.py.
ENDPOINTS = tuple(name for name in PIPES if name in FILTERS)
if len(ENDPOINTS) != len(FILTERS):
    raise RuntimeError(f"pipes missing from the registry: {sorted(set(FILTERS) - set(ENDPOINTS))}")


@dataclass(frozen=True, slots=True)
class Window:
    """The one-year creation window that holds every generated ticket (both ends inclusive)."""

    start: datetime
    end: datetime

    @property
    def start_text(self) -> str:
        return self.start.strftime("%Y-%m-%d %H:%M:%S")

    @property
    def end_text(self) -> str:
        return self.end.strftime("%Y-%m-%d %H:%M:%S")


WINDOW = Window(END - timedelta(days=DAYS), END)


@dataclass(frozen=True, slots=True)
class Case:
    endpoint: str
    filter: tuple[str, str] | None

    @property
    def label(self) -> str:
        return "none" if self.filter is None else f"{self.filter[0]}={self.filter[1]}"

    def http_params(self, window: Window) -> dict[str, str]:
        """Query parameters of the HTTP request."""
        if self.endpoint == "ticket_details":
            params = {
                "created_after": window.start_text,
                "created_before": window.end_text,
                "limit": str(DETAIL_LIMIT),
            }
        else:
            params = {"start_date": window.start_text, "end_date": window.end_text}
        if self.filter is not None:
            params[self.filter[0]] = self.filter[1]
        return params


CASES: tuple[Case, ...] = tuple(
    case for endpoint in ENDPOINTS for case in (Case(endpoint, None), Case(endpoint, FILTERS[endpoint]))
)


@dataclass(frozen=True, slots=True)
class Timing:
    """Latency samples in seconds."""

    samples: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p95_ms(self) -> float:
        # Linear interpolation between closest ranks (numpy's default), over the samples taken.
        return float(np.percentile(np.array(self.samples), 95)) * 1000


def measure(call: Callable[[], object], *, repeats: int, warmup: int = 2) -> Timing:
    """Run ``call`` ``warmup`` times untimed, then ``repeats`` times, one after the other."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return Timing(tuple(samples))
