"""Keeps Python's cyclic garbage collector from stopping a loaded server for a fifth of a second
every few seconds.

A server at a million tickets holds ~370,000 objects that live as long as it does: modules, the
framework's routes and models, what the pipes keep between runs.  Every full collection walks them
all with the GIL held: ~190 ms every ~4.5 s under the load test's 50 clients (measured with a
``gc.callbacks`` probe, docs/decisions.md "Session 18"), a pause every request in flight waits out.
Once the start-up warm-up is over they are moved to the permanent generation (``gc.freeze``),
which collections skip: full collections then walk only the objects made since (~10,000, 3-8 ms).
An object frozen that later becomes unreachable through a reference cycle is not reclaimed; that
bounded cost (part of what exists at start-up) buys requests without the pauses."""

from __future__ import annotations

import gc


def freeze_long_lived_objects() -> int:
    """Collects what is garbage now, then freezes every object left; how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
