"""Per-group results kept between pipe runs under a fingerprint of each group's rows.

``time_trends`` summarizes each period from its tickets' rows alone (counts, sums, medians and
p90s): at a million tickets ~70 ms of a ~110 ms run, the same on every run for every period no
write touched.  So each period's result is kept with the fingerprint of the rows it was computed
from: their number and the sums of the two halves of a 64-bit hash of each row's values, per UTC
quarter hour in SQL (``Dialect.row_hash``, ``hash_halves``; ~30 ms at a million rows), added up
per period.  A run reads only the rows of the periods whose fingerprint changed, and keeps what it
computed under the fingerprint of the rows it read, so that a write landing between the two reads
can never leave a result under a fingerprint of other rows.  A changed period keeps its
fingerprint but with odds of 2^-64 (the sums of a row hash over two different sets of rows are
equal).

Results are kept per query (workspace, filters, period unit, timezone), the least recently used
dropped beyond ``max_groups`` groups in all, and live only in this process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

V = TypeVar("V")
Fingerprint = tuple[int, int, int]  # rows, sum of the hashes' high halves, sum of their low halves


@dataclass(frozen=True, slots=True)
class Kept(Generic[V]):
    fingerprint: Fingerprint
    value: V


class KeptGroups(Generic[V]):
    def __init__(self, max_groups: int = 200_000) -> None:
        self._max = max_groups
        self._lock = threading.Lock()
        self._queries: OrderedDict[Hashable, dict[str, Kept[V]]] = OrderedDict()
        self._groups = 0

    def get(self, query: Hashable) -> dict[str, Kept[V]]:
        with self._lock:
            found = self._queries.get(query)
            if found is None:
                return {}
            self._queries.move_to_end(query)
            return found

    def keep(self, query: Hashable, groups: dict[str, Kept[V]]) -> None:
        """What a run of ``query`` found, in place of what was kept for it."""
        if len(groups) > self._max:
            return
        with self._lock:
            dropped = self._queries.pop(query, None)
            self._groups -= 0 if dropped is None else len(dropped)
            self._queries[query] = groups
            self._groups += len(groups)
            while self._groups > self._max:
                _, oldest = self._queries.popitem(last=False)
                self._groups -= len(oldest)


def fingerprints(
    names: list[str],
    codes: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    high: npt.NDArray[np.int64],
    low: npt.NDArray[np.int64],
) -> Mapping[str, Fingerprint]:
    """Per group (``codes``: each entry's index into ``names``): the entries' ``rows`` and the sums
    of their hash halves, exactly (int64 holds 2^31 entries of 32-bit halves)."""
    totals = np.zeros((3, len(names)), dtype=np.int64)
    for line, values in enumerate((rows, high, low)):
        np.add.at(totals[line], codes, values)
    return {name: (int(n), int(h), int(lo)) for name, n, h, lo in zip(names, *totals.tolist(), strict=True)}
