"""Vectorized NDJSON encoding of the demo generator's columns.

``generate_columns`` gives numpy columns; building a dict per ticket and serializing it costs about
5 s per million tickets.  Here every JSON fragment (``,"key":value``) is either taken from a small
pool (labels, ids, subjects, tag lists, scores) or from a fixed-width byte matrix (ticket ids,
timestamps), all kept in one byte arena; a batch of lines is then one numpy gather.  The output is
byte-identical to ``orjson.dumps`` of the ``generate_events`` dicts, which :func:`self_check` verifies
on a small sample before a run relies on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa

from supportlens.demo.generator import COLUMNS, DemoConfig, generate_columns, generate_events

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]


class _Arena:
    """Append-only byte store; fragments are addressed by (offset, length)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> int:
        offset = self._size
        self._parts.append(data)
        self._size += len(data)
        return offset

    def freeze(self) -> U8:
        return np.frombuffer(b"".join(self._parts), dtype=np.uint8)


def _key_prefix(index: int, name: str) -> bytes:
    return (b"{" if index == 0 else b",") + orjson.dumps(name) + b":"


def _from_pool(arena: _Arena, fragments: list[bytes], codes: I64) -> tuple[I64, I64]:
    offsets = np.array([arena.add(f) for f in fragments], dtype=np.int64)
    lengths = np.array([len(f) for f in fragments], dtype=np.int64)
    return offsets[codes], lengths[codes]


def _strings(arena: _Arena, prefix: bytes, suffix: bytes, values: Any) -> tuple[I64, I64]:
    """A string column with few distinct values (None for null), dictionary-encoded by Arrow."""
    encoded = pa.array(values, pa.string()).dictionary_encode()
    null = len(encoded.dictionary)
    codes = encoded.indices.fill_null(null).to_numpy(zero_copy_only=False).astype(np.int64)
    fragments = [prefix + orjson.dumps(v) + suffix for v in encoded.dictionary.to_pylist()]
    return _from_pool(arena, [*fragments, prefix + b"null" + suffix], codes)


def _scores(arena: _Arena, prefix: bytes, suffix: bytes, values: npt.NDArray[np.float64]) -> tuple[I64, I64]:
    """Small whole numbers, NaN for null."""
    missing = np.isnan(values)
    whole = np.where(missing, 0, values).astype(np.int64)
    distinct = sorted({int(v) for v in np.unique(whole[~missing])})
    position = {v: i for i, v in enumerate(distinct)}
    lookup = np.full(int(whole.max(initial=0)) + 1, len(distinct), dtype=np.int64)
    for v, i in position.items():
        lookup[v] = i
    codes = np.where(missing, len(distinct), lookup[whole])
    fragments = [prefix + orjson.dumps(v) + suffix for v in distinct]
    return _from_pool(arena, [*fragments, prefix + b"null" + suffix], codes)


def _lists(arena: _Arena, prefix: bytes, suffix: bytes, values: Sequence[list[str]]) -> tuple[I64, I64]:
    """Tag lists: the generator shares one list object per distinct combination, so codes are
    looked up by object identity first (correct either way: all lists are alive meanwhile)."""
    by_identity: dict[int, int] = {}
    by_value: dict[tuple[str, ...], int] = {}
    fragments: list[bytes] = []
    codes = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        code = by_identity.get(id(value))
        if code is None:
            key = tuple(value)
            code = by_value.get(key)
            if code is None:
                code = by_value[key] = len(fragments)
                fragments.append(prefix + orjson.dumps(value) + suffix)
            by_identity[id(value)] = code
        codes[i] = code
    return _from_pool(arena, fragments, codes)


def _fixed(arena: _Arena, prefix: bytes, suffix: bytes, text: npt.NDArray[np.bytes_]) -> tuple[I64, I64]:
    """Per-row (offset, length) of ``prefix + "text" + suffix`` for a fixed-width ASCII column."""
    width = text.dtype.itemsize
    body = np.ascontiguousarray(text).view(np.uint8).reshape(len(text), width)
    head = np.frombuffer(prefix + b'"', dtype=np.uint8)
    tail = np.frombuffer(b'"' + suffix, dtype=np.uint8)
    matrix = np.empty((len(text), head.size + width + tail.size), dtype=np.uint8)
    matrix[:, : head.size] = head
    matrix[:, head.size : head.size + width] = body
    matrix[:, head.size + width :] = tail
    base = arena.add(matrix.tobytes())
    row = matrix.shape[1]
    offsets = base + np.arange(len(text), dtype=np.int64) * row
    return offsets, np.full(len(text), row, dtype=np.int64)


def _digits(matrix: U8, column: int, values: I64, width: int) -> None:
    """Write ``values`` zero-padded to ``width`` digits into ``matrix[:, column:column + width]``."""
    rest = values.copy()
    for position in range(column + width - 1, column - 1, -1):
        matrix[:, position] = ord("0") + rest % 10
        rest //= 10


def _timestamps(
    arena: _Arena, prefix: bytes, suffix: bytes, values: npt.NDArray[np.datetime64]
) -> tuple[I64, I64]:
    """``"YYYY-MM-DD HH:MM:SS"`` (UTC, whole seconds), null for NaT, formatted with integer math."""
    missing = np.isnat(values)
    seconds = values.astype("datetime64[s]").astype(np.int64)
    seconds[missing] = 0
    days = (seconds // 86_400).astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    of_day = seconds % 86_400
    text = np.empty((len(values), 19), dtype=np.uint8)
    text[:] = np.frombuffer(b"0000-00-00 00:00:00", dtype=np.uint8)
    _digits(text, 0, months.astype("datetime64[Y]").astype(np.int64) + 1970, 4)
    _digits(text, 5, months.astype(np.int64) % 12 + 1, 2)
    _digits(text, 8, (days - months.astype("datetime64[D]")).astype(np.int64) + 1, 2)
    _digits(text, 11, of_day // 3600, 2)
    _digits(text, 14, of_day // 60 % 60, 2)
    _digits(text, 17, of_day % 60, 2)
    offsets, lengths = _fixed(arena, prefix, suffix, text.view("S19").ravel())
    if missing.any():
        null = prefix + b"null" + suffix
        offsets[missing] = arena.add(null)
        lengths[missing] = len(null)
    return offsets, lengths


class NdjsonEncoder:
    """All tickets of a config, ready to be cut into NDJSON line batches."""

    def __init__(self, columns: dict[str, Any]) -> None:
        arena = _Arena()
        starts: list[I64] = []
        lengths: list[I64] = []
        for index, name in enumerate(COLUMNS):
            prefix = _key_prefix(index, name)
            suffix = b"}\n" if index == len(COLUMNS) - 1 else b""
            values = columns[name]
            if isinstance(values, np.ndarray) and values.dtype.kind == "M":
                offsets, sizes = _timestamps(arena, prefix, suffix, values)
            elif isinstance(values, np.ndarray) and values.dtype.kind == "U":
                offsets, sizes = _fixed(
                    arena, prefix, suffix, values.astype(f"S{values.dtype.itemsize // 4}")
                )
            elif isinstance(values, np.ndarray) and values.dtype.kind == "f":
                offsets, sizes = _scores(arena, prefix, suffix, values)
            elif isinstance(values, np.ndarray):
                offsets, sizes = _strings(arena, prefix, suffix, values)
            else:
                offsets, sizes = _lists(arena, prefix, suffix, values)
            starts.append(offsets)
            lengths.append(sizes)
        self._arena = arena.freeze()
        # Column-major (fragment, row): cheap to build; lines() transposes one batch at a time.
        self._starts = np.vstack(starts)
        self._lengths = np.vstack(lengths)
        self.rows = int(self._starts.shape[1])

    def lines(self, lo: int, hi: int) -> bytes:
        """Rows ``lo`` to ``hi`` (exclusive) as NDJSON, one ``\\n``-terminated line each."""
        starts = self._starts[:, lo:hi].T.ravel()
        lengths = self._lengths[:, lo:hi].T.ravel()
        total = int(lengths.sum())
        # int32 indexes halve the memory traffic of the gather when the arena allows them.
        kind = np.int32 if self._arena.size < 2**31 - 1 else np.int64
        destination: npt.NDArray[np.signedinteger[Any]] = (np.cumsum(lengths) - lengths).astype(kind)
        first: npt.NDArray[np.signedinteger[Any]] = np.subtract(starts.astype(kind), destination)
        source = np.repeat(first, lengths)
        source += np.arange(total, dtype=kind)
        return bytes(self._arena[source].tobytes())

    def batches(self, size: int) -> Iterator[bytes]:
        for lo in range(0, self.rows, size):
            yield self.lines(lo, min(lo + size, self.rows))


def reference_lines(config: DemoConfig) -> bytes:
    """The slow, obviously right encoding: ``orjson.dumps`` of each ``generate_events`` dict."""
    return b"".join(orjson.dumps(event) + b"\n" for batch in generate_events(config) for event in batch)


def self_check(config: DemoConfig, sample: int = 3_000) -> bool:
    """Whether the vectorized encoding equals the reference on a small run of the same config."""
    small = replace(config, tickets=min(sample, config.tickets))
    return NdjsonEncoder(generate_columns(small)).lines(0, small.tickets) == reference_lines(small)
