"""PostgreSQL + PostGIS store: the same schema and behaviour as the SQLite one, for many users.

URL: ``postgresql://user[:password]@host[:port]/database`` (libpq form; ``postgres://`` works
too). The database must exist; the schema (and ``CREATE EXTENSION postgis``) is brought to the
newest Alembic revision at open, under an advisory lock so that two services starting together
do not race. Writes go through one writer thread on one connection (observations by ``COPY``);
reads use pooled connections of their own in autocommit mode, each query its own snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg

from stratowatch.store import _migrate
from stratowatch.store._sql import Connection, Cursor, SqlStore, current_scope
from stratowatch.store.base import Box, RetentionSettings, StoreError

__all__ = ["PostgresStore"]

T = TypeVar("T")


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://?"
    user = info.get("user") or ""
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"postgresql://{user}{'@' if user else ''}{host}:{port}/{info.get('dbname') or ''}"


class PostgresStore(SqlStore):
    """The :class:`~stratowatch.store.base.Store` in a PostgreSQL database with PostGIS."""

    dialect = "postgresql"
    _db_errors = (psycopg.Error,)

    def __init__(
        self, url: str, *, retention: RetentionSettings | None = None, connect_timeout_s: float = 10.0
    ) -> None:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        self.url = url
        self._timeout_s = connect_timeout_s
        super().__init__(_redacted(url), retention)
        try:
            conn = self._connect(writer=True)
        except psycopg.Error as e:
            raise StoreError(f"{self.name}: cannot connect: {str(e).strip()}") from None
        try:
            self._migrate(conn)
        except Exception:
            conn.close()
            raise
        self._start_writer(conn)

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        row = (
            conn.execute("SELECT max(version_num) FROM alembic_version").fetchone()
            if exists and exists[0]
            else None
        )
        if row is not None and row[0] == _migrate.HEAD_REVISION:
            return
        try:
            _migrate.upgrade(_migrate.sqlalchemy_url(self.url))
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            hint = ""
            if "postgis" in msg.lower():
                hint = " (install PostGIS on the server, e.g. apt-get install postgresql-15-postgis-3)"
            raise StoreError(
                f"{self.name}: cannot bring the schema to revision {_migrate.HEAD_REVISION}: {msg}{hint}"
            ) from None

    def _connect(self, *, writer: bool) -> Connection:
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(1, round(self._timeout_s)),
            application_name="stratowatch-writer" if writer else "stratowatch",
        )

    def _transaction(self, conn: Connection, job: Callable[[Cursor], T]) -> T:
        with conn.transaction(), conn.cursor() as cur:
            return job(cur)

    def _broken(self, conn: Connection) -> bool:
        return bool(conn.closed or conn.broken)

    @contextmanager
    def _scoped_session(self, conn: Connection, cur: Cursor) -> Iterator[None]:
        """Scoped reads run as the ``stratowatch_reader`` role with ``stratowatch.audience`` set:
        the row-level security policies of migration 0004 then show only that audience's rows."""
        audience = current_scope()
        if audience is None:
            yield
            return
        with conn.transaction():
            cur.execute("SET LOCAL ROLE stratowatch_reader")
            cur.execute("SELECT set_config('stratowatch.audience', %s, true)", [audience or "*"])
            yield

    def _lock_audit(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('stratowatch.audit_log'))")

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s")

    def _box_index(self, table: str, key: str, box: Box) -> tuple[str, list[Any]]:
        return "geom && ST_MakeEnvelope(?, ?, ?, ?, 4326)", [box[1], box[0], box[3], box[2]]

    def _identity_match(self) -> str:
        return "EXISTS (SELECT 1 FROM json_array_elements_text(identities::json) AS ids(v) WHERE ids.v ~ ?)"

    _for_update = " FOR UPDATE"

    def _append(
        self, cur: Cursor, table: str, columns: str, rows: list[tuple[Any, ...]], unique: str = ""
    ) -> int:
        if unique:  # COPY cannot skip conflicting rows
            return super()._append(cur, table, columns, rows, unique)
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return len(rows)

    def _limit(self, limit: int | None, offset: int) -> tuple[str, list[Any]]:
        sql, params = super()._limit(limit, offset)
        if params and params[0] == -1:
            params[0] = None  # LIMIT NULL is LIMIT ALL
        return sql, params
