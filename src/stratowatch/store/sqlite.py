"""SQLite store: one database file, WAL, one writer thread, R*Tree spatial indexes.

The database runs in WAL mode, so readers (other threads here, or other processes) see committed
data while the writer writes. ``synchronous=FULL`` by default: a committed batch survives a
crash of the process and of the machine (``?synchronous=normal`` in the URL keeps it across
process crashes only, and writes faster). The schema is brought to the newest Alembic revision
at open; a file written by the first version of this store (observations and quarantine only)
is adopted and upgraded in place.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from stratowatch.store import _migrate
from stratowatch.store._sql import Connection, Cursor, SqlStore
from stratowatch.store.base import Box, RetentionSettings, StoreError, StoreSink

__all__ = ["SqliteStore", "StoreError", "StoreSink"]

T = TypeVar("T")

_SYNCHRONOUS = ("off", "normal", "full", "extra")
#: Page cache of the write connection and of each reader, in KiB (the memory is taken as used).
WRITER_CACHE_KIB = 256 * 1024
READER_CACHE_KIB = 32 * 1024


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _any_identity_matches(pattern: str, identities_json: str) -> int:
    rx = _compiled(pattern)
    return int(any(rx.search(i) for i in json.loads(identities_json)))


class SqliteStore(SqlStore):
    """The :class:`~stratowatch.store.base.Store` in one SQLite file."""

    dialect = "sqlite"
    _db_errors = (sqlite3.Error,)

    def __init__(
        self,
        path: str | Path,
        *,
        retention: RetentionSettings | None = None,
        synchronous: str = "full",
    ) -> None:
        self.path = Path(path)
        super().__init__(str(self.path), retention)
        if synchronous.lower() not in _SYNCHRONOUS:
            raise StoreError(
                f"{self.path}: synchronous={synchronous!r}: not one of {', '.join(_SYNCHRONOUS)}"
            )
        self._synchronous = synchronous.upper()
        try:
            conn = self._connect(writer=True)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open database: {e}") from None
        try:
            self._migrate(conn)
        except Exception:
            conn.close()
            raise
        self._start_writer(conn)

    def _revision(self, conn: sqlite3.Connection) -> str | None:
        try:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone():
                return None
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open database: {e}") from None
        return None if row is None else str(row[0])

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if self._revision(conn) == _migrate.HEAD_REVISION:
            return
        try:
            # One migrator at a time: the others wait for the write lock, then Alembic finds head.
            _migrate.upgrade(
                f"sqlite:///{self.path.resolve()}", dbapi_connection=conn, begin="BEGIN IMMEDIATE"
            )
            if conn.in_transaction:
                conn.execute("COMMIT")
        except Exception as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(
                f"{self.path}: cannot bring the schema to revision {_migrate.HEAD_REVISION}: {e}"
            ) from None

    def _connect(self, *, writer: bool) -> Connection:
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            if writer:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"cannot use WAL journal mode (got {mode})")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            # the default 2 MB page cache thrashes once the live tracks table and its indexes
            # outgrow it (50,000 tracks: ~60 MB), and every step rewrites every live row
            conn.execute(f"PRAGMA cache_size={-WRITER_CACHE_KIB if writer else -READER_CACHE_KIB}")
            conn.create_function("sw_identity_match", 2, _any_identity_matches, deterministic=True)
        except Exception:
            conn.close()
            raise
        return conn

    def _transaction(self, conn: Connection, job: Callable[[Cursor], T]) -> T:
        cur = conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            result = job(cur)
            cur.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def _box_index(self, table: str, key: str, box: Box) -> tuple[str, list[Any]]:
        if table == "tracks":  # no R*Tree (migration 0006): the exact test that follows is all
            return "", []
        # R*Tree boxes are 32-bit floats rounded outwards: the index may return a few rows just
        # outside the box, which the exact lat/lon test that follows removes.
        return (
            f"{key} IN (SELECT id FROM {table}_rtree"
            " WHERE max_lat >= ? AND min_lat <= ? AND max_lon >= ? AND min_lon <= ?)",
            [box[0], box[2], box[1], box[3]],
        )

    def _append(
        self, cur: Cursor, table: str, columns: str, rows: list[tuple[Any, ...]], unique: str = ""
    ) -> int:
        # The write lock is held (BEGIN IMMEDIATE): every id above the current maximum is ours.
        last = cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]
        inserted = super()._append(cur, table, columns, rows, unique)
        cur.execute(
            f"INSERT INTO {table}_rtree SELECT id, lat_deg, lat_deg, lon_deg, lon_deg FROM {table}"
            " WHERE id > ? AND lat_deg IS NOT NULL AND lon_deg IS NOT NULL",
            (last,),
        )
        return inserted

    def _identity_match(self) -> str:
        return "sw_identity_match(?, identities)"

    def journal_mode(self) -> str:
        with self._reader() as cur:
            return str(cur.execute("PRAGMA journal_mode").fetchone()[0])
