"""Partners: who may call the service, which picture a row belongs to, a chained audit log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

- ``principals``: users, service accounts and API keys of partners (secrets stored hashed only).
- ``revoked_tokens``: token ids (JWT ``jti``) refused until they would have expired anyway.
- ``audience`` on every derived product (tracks, their states, predictions, alerts, incidents):
  ``''`` is the node's own full picture; a partner code (``'USA'``) is the picture rebuilt for that
  partner from only the observations released to it.
- ``releasable_to`` on tracks and track states: the intersection of the contributors' labels.
- ``audit_log.prev_hash`` / ``hash``: each row's SHA-256 covers the previous row's hash, so any
  change, insertion or removal inside the chain is detected by ``stratowatch audit verify``.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_REAL = {"sqlite": "REAL", "postgresql": "DOUBLE PRECISION"}

_AUDIENCE_TABLES = ("tracks", "track_states", "predictions", "alerts", "incidents")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    real = _REAL[dialect]
    op.execute(
        f"""CREATE TABLE principals (
            principal_id TEXT PRIMARY KEY,
            partner TEXT NOT NULL,
            kind TEXT NOT NULL,
            scopes TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            created_s {real} NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            body TEXT NOT NULL DEFAULT '{{}}')"""
    )
    op.execute(f"CREATE TABLE revoked_tokens (jti TEXT PRIMARY KEY, expires_s {real} NOT NULL)")
    for table in _AUDIENCE_TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN audience TEXT NOT NULL DEFAULT ''")
    for table in ("tracks", "track_states"):
        op.execute(f"ALTER TABLE {table} ADD COLUMN releasable_to TEXT NOT NULL DEFAULT '[\"PUBLIC\"]'")
    op.execute("CREATE INDEX tracks_audience_time ON tracks (audience, time_s)")
    op.execute("CREATE INDEX alerts_audience_time ON alerts (audience, time_s)")
    op.execute("ALTER TABLE audit_log ADD COLUMN prev_hash TEXT NOT NULL DEFAULT ''")
    op.execute("ALTER TABLE audit_log ADD COLUMN hash TEXT NOT NULL DEFAULT ''")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS alerts_audience_time")
    op.execute("DROP INDEX IF EXISTS tracks_audience_time")
    op.execute("ALTER TABLE audit_log DROP COLUMN hash")
    op.execute("ALTER TABLE audit_log DROP COLUMN prev_hash")
    for table in ("tracks", "track_states"):
        op.execute(f"ALTER TABLE {table} DROP COLUMN releasable_to")
    for table in _AUDIENCE_TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN audience")
    op.execute("DROP TABLE IF EXISTS revoked_tokens")
    op.execute("DROP TABLE IF EXISTS principals")
