"""Metric queries, written once for every engine; pipes.py is the public endpoint registry."""
