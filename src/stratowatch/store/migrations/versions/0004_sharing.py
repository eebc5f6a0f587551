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

PostgreSQL enforces what a partner may read with row-level security: reads made for an audience
run as the ``stratowatch_reader`` role with the setting ``stratowatch.audience`` (the partner's
code, or ``'*'`` for the node's own picture); the policies below show that role only the rows of
that audience's picture and the rows whose label releases them to it. An unset (or reset, ``''``)
audience shows nothing. SQLite applies the same rule in the store layer (``_sql.scope_rule``).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_REAL = {"sqlite": "REAL", "postgresql": "DOUBLE PRECISION"}

_AUDIENCE_TABLES = ("tracks", "track_states", "predictions", "alerts", "incidents")
_LABELLED = ("observations", "sensors", "geofences")
_OTHER = ("quarantine", "partners", "audit_log", "state", "principals", "revoked_tokens")
_AUDIENCE = "current_setting('stratowatch.audience', true)"


def _backfill_labels() -> None:
    """Sensors and geofences kept their label in the JSON body (which may hold Infinity, not
    JSON to the databases): copy it into the new column."""
    import json

    import sqlalchemy as sa

    bind = op.get_bind()
    for table, key in (("sensors", "sensor_id"), ("geofences", "geofence_id")):
        rows = bind.execute(sa.text(f"SELECT {key}, body FROM {table}")).fetchall()
        for k, body in rows:
            label = json.dumps(
                sorted(json.loads(body).get("releasable_to") or ["PUBLIC"]), separators=(",", ":")
            )
            update = sa.text(f"UPDATE {table} SET releasable_to = :label WHERE {key} = :k")
            bind.execute(update, {"label": label, "k": k})


def _chain_existing_audit() -> None:
    """Records written before the chain existed join it, in id order."""
    import sqlalchemy as sa

    from stratowatch.sharing.audit import record_hash

    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, time_s, actor, action, details FROM audit_log ORDER BY id")
    ).fetchall()
    prev = ""
    update = sa.text("UPDATE audit_log SET prev_hash = :prev, hash = :hash WHERE id = :id")
    for rid, time_s, actor, action, details in rows:
        digest = record_hash(prev, float(time_s), str(actor), str(action), str(details))
        bind.execute(update, {"prev": prev, "hash": digest, "id": rid})
        prev = digest


def _row_security() -> list[str]:
    out = [
        """DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stratowatch_reader') THEN
                CREATE ROLE stratowatch_reader NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$""",
        # The service's own login may take the role (superusers may anyway).
        """DO $$ BEGIN
            EXECUTE format('GRANT stratowatch_reader TO %I', current_user);
        EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'stratowatch: cannot grant stratowatch_reader: %', SQLERRM;
        END $$""",
        "DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO stratowatch_reader', current_schema());"
        " END $$",
    ]
    tables = [*_AUDIENCE_TABLES, *_LABELLED, *_OTHER]
    out.append(f"GRANT SELECT ON {', '.join(tables)} TO stratowatch_reader")
    for table in tables:
        out.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        if table in _AUDIENCE_TABLES:
            rule = f"(audience <> '' AND audience = {_AUDIENCE}) OR (audience = '' AND {_AUDIENCE} = '*')"
        elif table in _LABELLED:
            rule = (
                f"{_AUDIENCE} = '*' OR ({_AUDIENCE} <> ''"
                f" AND jsonb_exists_any(releasable_to::jsonb, ARRAY['PUBLIC', {_AUDIENCE}]))"
            )
        else:
            rule = f"{_AUDIENCE} = '*'"
        out.append(f"CREATE POLICY partner_read ON {table} FOR SELECT TO stratowatch_reader USING ({rule})")
    return out


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
    for table in ("tracks", "track_states", "alerts", "incidents"):
        op.execute(f"ALTER TABLE {table} ADD COLUMN originator TEXT NOT NULL DEFAULT ''")
    for table in ("tracks", "track_states", "sensors", "geofences"):
        op.execute(f"ALTER TABLE {table} ADD COLUMN releasable_to TEXT NOT NULL DEFAULT '[\"PUBLIC\"]'")
    _backfill_labels()
    op.execute("CREATE INDEX tracks_audience_time ON tracks (audience, time_s)")
    op.execute("CREATE INDEX alerts_audience_time ON alerts (audience, time_s)")
    op.execute("ALTER TABLE audit_log ADD COLUMN prev_hash TEXT NOT NULL DEFAULT ''")
    op.execute("ALTER TABLE audit_log ADD COLUMN hash TEXT NOT NULL DEFAULT ''")
    _chain_existing_audit()
    if dialect == "sqlite":
        op.execute(
            """CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
               BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"""
        )
    else:
        op.execute(
            """CREATE OR REPLACE FUNCTION stratowatch_audit_append_only() RETURNS trigger
               LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"""
        )
        op.execute(
            """CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
               FOR EACH ROW EXECUTE FUNCTION stratowatch_audit_append_only()"""
        )
    if dialect == "postgresql":
        for sql in _row_security():
            op.execute(sql)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS audit_log_append_only"
        + ("" if op.get_bind().dialect.name == "sqlite" else " ON audit_log")
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in (*_AUDIENCE_TABLES, *_LABELLED, *_OTHER):
            op.execute(f"DROP POLICY IF EXISTS partner_read ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP INDEX IF EXISTS alerts_audience_time")
    op.execute("DROP INDEX IF EXISTS tracks_audience_time")
    op.execute("ALTER TABLE audit_log DROP COLUMN hash")
    op.execute("ALTER TABLE audit_log DROP COLUMN prev_hash")
    for table in ("tracks", "track_states", "sensors", "geofences"):
        op.execute(f"ALTER TABLE {table} DROP COLUMN releasable_to")
    for table in ("tracks", "track_states", "alerts", "incidents"):
        op.execute(f"ALTER TABLE {table} DROP COLUMN originator")
    for table in _AUDIENCE_TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN audience")
    op.execute("DROP TABLE IF EXISTS revoked_tokens")
    op.execute("DROP TABLE IF EXISTS principals")
