"""Runs the Alembic migrations at open (``alembic upgrade head`` without an ini file)."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

#: The newest revision in ``migrations/versions`` (a test checks it against Alembic's head).
HEAD_REVISION = "0002"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(sqlalchemy_url: str | None = None) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if sqlalchemy_url:
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    return cfg


def upgrade(sqlalchemy_url: str, revision: str = "head") -> None:
    """Bring the database at ``sqlalchemy_url`` to ``revision`` in one transaction."""
    import sqlalchemy
    from alembic import command

    cfg = alembic_config()
    engine = sqlalchemy.create_engine(sqlalchemy_url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn  # type: ignore[attr-defined]
            command.upgrade(cfg, revision)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    logger.info("store schema at revision %s", revision)
