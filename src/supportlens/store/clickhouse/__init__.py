"""ClickHouse engine (server, cluster or embedded chDB)."""
