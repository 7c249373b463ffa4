"""The helpdesk APIs SupportLens can sync from, by kind (one module per API in this package)."""

from __future__ import annotations

from supportlens.connectors.engine import ConnectorKind

KINDS: dict[str, ConnectorKind] = {}
