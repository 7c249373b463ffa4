"""Workspaces, tokens, scopes and fixed filters."""
