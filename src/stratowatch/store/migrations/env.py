"""Alembic environment: runs on the connection the store hands over (no alembic.ini needed).

``stratowatch.store._migrate.upgrade`` opens an SQLAlchemy connection and puts it in
``config.attributes["connection"]``; the command line (``alembic -x url=...``) works too.
"""

from __future__ import annotations

import sqlalchemy
from alembic import context

_LOCK_KEY = 0x5357_5354  # "SWST": one migrator at a time on a PostgreSQL server


def _run(connection: sqlalchemy.Connection) -> None:
    context.configure(connection=connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit(
            "alembic: give the database with -x url=sqlite:///path.db or postgresql+psycopg://..."
        )
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
