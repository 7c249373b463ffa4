"""Settings, read from ``SUPPORTLENS_*`` environment variables (or a ``.env`` file).

No I/O happens at import time: ``Settings()`` reads the environment when it is constructed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTLENS_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Where the store and metadata live.")
    store: str = Field(
        default="",
        description=(
            "Store URL: duckdb:///path/file.duckdb (default: <data_dir>/supportlens.duckdb), "
            "chdb:///path for embedded ClickHouse, clickhouse://user:pass@host:8123/db for a server."
        ),
    )
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(default=10 * 1024 * 1024, description="Largest accepted request body.")
    max_import_bytes: int = Field(
        default=512 * 1024 * 1024, description="Largest accepted import file (POST /v1/imports/...)."
    )
    query_timeout_seconds: float = Field(default=30.0, gt=0, description="Time limit of every query.")
    writer_batch_rows: int = Field(default=200_000, gt=0, description="Rows the writer commits at once.")
    writer_queue_rows: int = Field(
        default=2_000_000, gt=0, description="Queued (202) rows before new requests get 429."
    )
    sla_evaluator_interval_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often the server records SLA breaches and escalations (0: never).",
    )
    sla_lookback_days: int = Field(
        default=90, gt=0, description="The SLA evaluator looks at tickets created within this many days."
    )
    default_window_days: int = Field(default=365, gt=0, description="Window when no dates are given.")

    @field_validator("store")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @property
    def store_url(self) -> str:
        return self.store or f"duckdb:///{(self.data_dir / 'supportlens.duckdb').as_posix()}"

    @property
    def metadata_path(self) -> Path:
        return self.data_dir / "metadata.sqlite"
