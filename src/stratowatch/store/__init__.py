"""Persistence: the only package that speaks SQL.

``open_store(url)`` gives a :class:`~stratowatch.store.base.Store`:

- ``sqlite:///stratowatch.db`` (relative path), ``sqlite:////var/lib/stratowatch/sw.db``
  (absolute), or a plain file path: embedded SQLite, the default.
- ``postgresql://user@host:5432/database``: PostgreSQL with PostGIS.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from stratowatch.store.base import RetentionSettings, Store, StoreError, StoreSink
from stratowatch.store.sqlite import SqliteStore

__all__ = [
    "DEFAULT_URL",
    "RetentionSettings",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreSink",
    "open_store",
]

DEFAULT_URL = "sqlite:///stratowatch.db"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def open_store(url: str = DEFAULT_URL, *, retention: RetentionSettings | None = None) -> Store:
    """Open (and migrate) the store at ``url``; raises StoreError naming it when that fails.

    SQLite URLs take ``?synchronous=normal`` (faster; survives a process crash, not a power cut).
    """
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from stratowatch.store.postgres import PostgresStore
        except ImportError as e:  # psycopg needs the system libpq (Debian: libpq5)
            raise StoreError(f"{_redact(url)}: PostgreSQL client library unavailable: {e}") from None

        return PostgresStore(url, retention=retention)
    if url.startswith("sqlite://"):
        parts = urlsplit(url)
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path or path == ":memory:":
            raise StoreError(f"{url}: needs a file path (sqlite:///relative.db or sqlite:////absolute.db)")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = sorted(set(options) - {"synchronous"})
        if unknown:
            raise StoreError(f"{url}: unknown option(s) {', '.join(unknown)} (known: synchronous)")
        return SqliteStore(Path(path), retention=retention, synchronous=options.get("synchronous", "full"))
    if "://" in url:
        raise StoreError(
            f"{url}: unknown store URL scheme (use sqlite:///file.db or postgresql://user@host/db)"
        )
    return SqliteStore(Path(url), retention=retention)
