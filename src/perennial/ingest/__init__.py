"""Ingest: reading sources, mapping them to canonical tables and resolving identities."""
