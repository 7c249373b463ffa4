"""What every connector test builds: a sync engine on a real runtime that knows one connector and
reads its fake server on a fake clock."""

from __future__ import annotations

from supportlens.connectors.alerts import SyncAlerts
from supportlens.connectors.engine import ConnectorKind, SyncEngine
from supportlens.runtime import Runtime
from tests.fakes.clock import FakeClock


def engine_on(
    runtime: Runtime, kind: ConnectorKind, clock: FakeClock, *, timeout_seconds: float
) -> SyncEngine:
    return SyncEngine(
        runtime.connections,
        runtime.ingest,
        {kind.kind: kind},
        runtime.aliases,
        retention_days=365,
        alert_after=3,
        alert=SyncAlerts(runtime.connections, runtime.settings),
        client_overrides={"sleep": clock.sleep, "clock": clock.time, "timeout_seconds": timeout_seconds},
    )
