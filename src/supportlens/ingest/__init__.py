"""Ingestion: parsing, validation, quarantine and the batching writer."""
