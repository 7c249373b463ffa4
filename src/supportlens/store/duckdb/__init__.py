"""DuckDB engine."""
