"""Settings, read from ``SUPPORTLENS_*`` environment variables (or a ``.env`` file).

No I/O happens at import time: ``Settings()`` reads the environment when it is constructed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
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
    attachment_max_bytes: int = Field(
        default=25 * 1024 * 1024, gt=0, description="Largest accepted ticket or comment attachment."
    )
    query_timeout_seconds: float = Field(default=30.0, gt=0, description="Time limit of every query.")
    query_concurrency: int = Field(
        default_factory=lambda: max(2, os.cpu_count() or 2),
        gt=0,
        description="Pipe runs at once (default: the CPU count); more wait their turn.",
    )
    query_queue_seconds: float = Field(
        default=60.0, gt=0, description="How long a pipe run may wait for its turn before 503."
    )
    ingest_concurrency: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2),
        gt=0,
        description="Events API requests validated at once (default: half the CPU count); more wait.",
    )
    pipe_max_age_seconds: float = Field(
        default=0.0,
        ge=0,
        description=(
            "How old a pipe answer may be for requests without Cache-Control (0: exact, every write"
            " committed before the request is counted)."
        ),
    )
    answer_cache_mb: int = Field(
        default=64, ge=0, description="Memory for pipe answers kept for requests that accept older ones."
    )
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
    routing_timer_interval_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often the server escalates tickets past a routing rule's escalate_after (0: never).",
    )
    # Notifications (docs/notifications.md)
    smtp_host: str | None = Field(
        default=None, description="SMTP server for email notifications (unset: no email)."
    )
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="starttls",
        description="starttls: upgrade after connecting; tls: TLS from the start (port 465).",
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = Field(default="supportlens@localhost", description="The From address of notifications.")
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    smtp_ca_file: Path | None = Field(default=None, description="CA bundle to trust instead of the system's.")
    sms_provider_url: str | None = Field(default=None, description="Where SMS are POSTed (unset: no SMS).")
    sms_provider_token: SecretStr | None = Field(default=None, description="Sent as 'Authorization: Bearer'.")
    sms_from: str | None = Field(default=None, description="The sender number or name given to the provider.")
    sms_timeout_seconds: float = Field(default=10.0, gt=0)
    notify_max_attempts: int = Field(default=5, gt=0, description="Attempts before a notification fails.")
    notify_retry_base_seconds: float = Field(default=30.0, gt=0, description="Wait before the first retry.")
    notify_retry_max_delay_seconds: float = Field(default=3600.0, gt=0, description="Longest wait.")
    notify_retry_interval_seconds: float = Field(
        default=15.0, ge=0, description="How often the server retries due notifications (0: never)."
    )

    # Helpdesk connectors (docs/connectors.md)
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key of connection credentials (else secret_key_file, <data_dir>/secret.key).",
    )
    secret_key_file: Path | None = Field(default=None, description="A file holding the secret key.")
    sync_check_interval_seconds: float = Field(
        default=60.0, ge=0, description="How often the server looks for due syncs (0: never)."
    )
    sync_alert_after_failures: int = Field(
        default=3, gt=0, description="Consecutive failed runs of a connection before an alert."
    )
    sync_alert_webhook_url: str | None = Field(
        default=None, description="Where sync alerts are POSTed as JSON (besides the event and email)."
    )
    sync_alert_emails: list[str] = Field(
        default_factory=list, description='Who is mailed sync alerts (JSON list, e.g. ["ops@acme.com"]).'
    )
    retention_days: int = Field(
        default=365,
        gt=0,
        description="Rolling window of synced tickets: a first or full sync reads this many days back,"
        " and retention removes synced tickets not updated within it (a connection may set its own).",
    )
    retention_interval_hours: float = Field(
        default=24.0, gt=0, description="How often retention runs over each connection's tickets."
    )

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

    @property
    def kept_sla_states_path(self) -> Path:
        """What ``sla_attainment`` keeps, saved between runs (analytics/sla_memo_files.py)."""
        return self.data_dir / "kept" / "sla-states"

    @property
    def kept_at_risk_path(self) -> Path:
        """What ``sla_at_risk`` keeps, saved between runs (analytics/sla_memo_files.py)."""
        return self.data_dir / "kept" / "sla-at-risk"

    @property
    def tickets_path(self) -> Path:
        """The ticket management records (tickets/repository.py)."""
        return self.data_dir / "tickets.sqlite"
