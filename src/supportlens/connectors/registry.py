"""The helpdesk APIs SupportLens can sync from, by kind (one module per API in this package)."""

from __future__ import annotations

from supportlens.connectors.engine import ConnectorKind
from supportlens.connectors.freshdesk import FRESHDESK
from supportlens.connectors.hubspot import HUBSPOT
from supportlens.connectors.livechat import LIVECHAT
from supportlens.connectors.zendesk import ZENDESK

KINDS: dict[str, ConnectorKind] = {kind.kind: kind for kind in (FRESHDESK, HUBSPOT, LIVECHAT, ZENDESK)}
