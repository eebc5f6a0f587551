"""Runs the Alembic migrations at open (``alembic upgrade head`` without an ini file)."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

#: The newest revision in ``migrations/versions`` (a test checks it against Alembic's head).
HEAD_REVISION = "0006"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(sqlalchemy_url: str | None = None) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if sqlalchemy_url:
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    return cfg


def sqlalchemy_url(store_url: str) -> str:
    """The SQLAlchemy URL of a store URL (``sqlite:///...`` or ``postgresql://...``)."""
    for prefix in ("postgresql://", "postgres://"):
        if store_url.startswith(prefix):
            return "postgresql+psycopg://" + store_url[len(prefix) :]
    return store_url.split("?", 1)[0]


def _run(
    sqlalchemy_url: str,
    verb: str,
    revision: str,
    dbapi_connection: object | None = None,
    begin: str | None = None,
) -> None:
    import sqlalchemy
    from alembic import command

    cfg = alembic_config()
    if dbapi_connection is None:
        engine = sqlalchemy.create_engine(sqlalchemy_url, poolclass=sqlalchemy.pool.NullPool)
    else:  # the caller's connection, inside the caller's transaction (committed by engine.begin)
        engine = sqlalchemy.create_engine(
            sqlalchemy_url, creator=lambda: dbapi_connection, poolclass=sqlalchemy.pool.StaticPool
        )
    try:
        with engine.begin() as conn:
            if begin:  # after SQLAlchemy's first-connect queries, which end with a ROLLBACK
                conn.exec_driver_sql(begin)
            cfg.attributes["connection"] = conn  # type: ignore[attr-defined]
            getattr(command, verb)(cfg, revision)
    finally:
        if dbapi_connection is None:
            engine.dispose()
    logger.info("store schema: %s to revision %s", verb, revision)


def upgrade(
    sqlalchemy_url: str,
    revision: str = "head",
    dbapi_connection: object | None = None,
    begin: str | None = None,
) -> None:
    """Bring the database at ``sqlalchemy_url`` up to ``revision`` in one transaction.

    The driver Python ships for SQLite opens no transaction for DDL: the SQLite store passes its
    own connection (autocommit mode) and ``begin="BEGIN IMMEDIATE"``, so that the whole upgrade
    is one transaction and a second process opening the same new file waits, then finds it done.
    """
    _run(sqlalchemy_url, "upgrade", revision, dbapi_connection, begin)


def downgrade(sqlalchemy_url: str, revision: str) -> None:
    """Take the database back to ``revision`` (``"base"``: no tables), in one transaction."""
    _run(sqlalchemy_url, "downgrade", revision)
