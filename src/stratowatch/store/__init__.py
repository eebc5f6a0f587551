"""Persistence: the only package that speaks SQL. SQLite is the embedded default."""

from stratowatch.store.sqlite import SqliteStore, StoreSink

__all__ = ["SqliteStore", "StoreSink"]
