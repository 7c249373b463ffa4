"""Helpdesk connectors and the sync engine that runs them (issue 5)."""
