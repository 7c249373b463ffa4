"""Storage: the engine interface (``base``), the tables (``schema``) and one package per engine."""

from __future__ import annotations

from pathlib import Path

from supportlens.store.base import Engine


class StoreURLError(ValueError):
    """A store URL this version cannot open."""


def create_engine(url: str) -> Engine:
    """``duckdb:///relative/or//absolute/path``, ``chdb:///path`` or ``clickhouse://user:pass@host:8123/db``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StoreURLError(f"store URL {url!r} has no scheme (duckdb://, chdb://, clickhouse://)")
    if scheme == "duckdb":
        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise StoreURLError(
                "a duckdb:// store URL needs a file path, e.g. duckdb:///./data/supportlens.duckdb"
            )
        from supportlens.store.duckdb.engine import DuckDBEngine

        return DuckDBEngine(Path(path))
    if scheme in {"chdb", "clickhouse", "clickhouses"}:
        from supportlens.store.clickhouse.engine import ClickHouseEngine

        return ClickHouseEngine(url)
    raise StoreURLError(f"unknown store scheme {scheme!r}: use duckdb://, chdb:// or clickhouse://")
