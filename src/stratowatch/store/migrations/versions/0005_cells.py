"""Scale-out: cell leases, and an observation id that makes observation writes idempotent.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

- ``cell_leases(cell_id, owner, expires_s)``: which tracker worker owns which geographic cell
  (:mod:`stratowatch.service.cells`) until when. A worker claims a cell that is free or whose
  lease has expired, renews its leases well before they expire, and commits a cell's work only
  while the lease row still names it (the row is the fencing token).
- ``observations.obs_id``: the observation's id (a content hash, see
  ``stratowatch.service.bus_nats.observation_id``), unique when present: a tracker worker that
  writes an observation again (a message redelivered after a crash, an observation routed to two
  neighbouring cells) stores it once. Rows written without an id (the single-node pipeline, the
  ingest CLI) keep NULL, which the unique index does not constrain.

PostgreSQL: ``cell_leases`` gets the row-level security of the other internal tables (no partner
ever reads it).
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_REAL = {"sqlite": "REAL", "postgresql": "DOUBLE PRECISION"}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(
        f"""CREATE TABLE cell_leases (
            cell_id BIGINT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_s {_REAL[dialect]} NOT NULL)"""
    )
    op.execute("CREATE INDEX cell_leases_owner ON cell_leases (owner)")
    op.execute("ALTER TABLE observations ADD COLUMN obs_id TEXT")
    op.execute("CREATE UNIQUE INDEX observations_obs_id ON observations (obs_id)")
    if dialect == "postgresql":
        op.execute("GRANT SELECT ON cell_leases TO stratowatch_reader")
        op.execute("ALTER TABLE cell_leases ENABLE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY partner_read ON cell_leases FOR SELECT TO stratowatch_reader"
            " USING (current_setting('stratowatch.audience', true) = '*')"
        )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS observations_obs_id")
    op.execute("ALTER TABLE observations DROP COLUMN obs_id")
    op.execute("DROP TABLE IF EXISTS cell_leases")
