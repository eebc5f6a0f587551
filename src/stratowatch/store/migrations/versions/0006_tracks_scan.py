"""SQLite: the live tracks table loses its R*Tree; a box over it is a plain lat/lon test.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Every step rewrites every live track's row (its state moves), and the R*Tree's update trigger
made each rewrite a delete and an insert in the tree: at 50,000 live tracks that was 1.7 s of a
step's 1.9 s write. The table holds the live picture and the tracks ended within retention, so a
box query scans it (tens of milliseconds at 100,000 rows); the API's live picture filters in
memory anyway. The observation and track-state logs keep their R*Trees (they grow without
bound and are queried by box). PostgreSQL: unchanged.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS tracks_rtree_{trigger}")
    op.execute("DROP TABLE IF EXISTS tracks_rtree")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE VIRTUAL TABLE tracks_rtree USING rtree(id, min_lat, max_lat, min_lon, max_lon)")
    op.execute(
        "INSERT INTO tracks_rtree SELECT track_id, lat_deg, lat_deg, lon_deg, lon_deg FROM tracks"
        " WHERE lat_deg IS NOT NULL AND lon_deg IS NOT NULL"
    )
    op.execute(
        """CREATE TRIGGER tracks_rtree_insert AFTER INSERT ON tracks
            WHEN new.lat_deg IS NOT NULL AND new.lon_deg IS NOT NULL
            BEGIN INSERT INTO tracks_rtree
                VALUES (new.track_id, new.lat_deg, new.lat_deg, new.lon_deg, new.lon_deg); END"""
    )
    op.execute(
        """CREATE TRIGGER tracks_rtree_delete AFTER DELETE ON tracks
            BEGIN DELETE FROM tracks_rtree WHERE id = old.track_id; END"""
    )
    op.execute(
        """CREATE TRIGGER tracks_rtree_update AFTER UPDATE OF lat_deg, lon_deg ON tracks
            BEGIN
                DELETE FROM tracks_rtree WHERE id = old.track_id;
                INSERT INTO tracks_rtree
                    SELECT new.track_id, new.lat_deg, new.lat_deg, new.lon_deg, new.lon_deg
                    WHERE new.lat_deg IS NOT NULL AND new.lon_deg IS NOT NULL;
            END"""
    )
