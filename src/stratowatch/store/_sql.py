"""The store's behaviour, written once over DB-API connections; the backends fill in the SQL
dialect (placeholders, spatial index, regular expressions) and how to connect.

Concurrency: one writer thread owns the one write connection and runs the write jobs from a queue,
each in its own transaction, committed before the caller's method returns. Reads run on the
caller's thread on a pooled read connection of their own, so they never wait for the writer.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar

from stratowatch.ingest.base import QuarantineRecord
from stratowatch.model import (
    Alert,
    Geofence,
    Incident,
    ObjectClass,
    Observation,
    Sensor,
    SourceRef,
    Track,
    TrackStatus,
)
from stratowatch.sharing.audit import ANCHOR_KEY, ChainReport, record_hash, verify
from stratowatch.store import _codec as codec
from stratowatch.store.base import TABLES, Box, LeaseLost, RetentionSettings, StoreError, split_box

logger = logging.getLogger(__name__)

T = TypeVar("T")
Cursor = Any
Connection = Any

_MAX_IDLE_READERS = 8

# -- releasability scope ------------------------------------------------------------------------
#: The audience whose view reads see (None: unscoped, the service's own internal reads).
_SCOPE: ContextVar[str | None] = ContextVar("stratowatch_store_scope", default=None)

#: Tables of derived products: a row belongs to one picture (its ``audience`` column).
DERIVED_TABLES = ("tracks", "track_states", "predictions", "alerts", "incidents")
#: Tables whose rows carry a releasability label, and the SQLite JSON path to it.
LABELLED_TABLES = ("observations", "sensors", "geofences")
_FROM = re.compile(r"\bFROM\s+([a-z_]+)\b")


@contextmanager
def scope(audience: str | None) -> Iterator[None]:
    """Reads inside see what ``audience`` may see: ``""`` the node's own picture, a partner code
    that partner's picture and only the rows released to it, ``None`` everything."""
    token = _SCOPE.set(audience)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def current_scope() -> str | None:
    return _SCOPE.get()


def scope_rule(table: str, audience: str) -> tuple[str, list[Any]]:
    """The row filter of ``table`` for ``audience`` in SQLite's SQL (PostgreSQL has the same rule
    as row-level security policies, see migration 0004)."""
    if table in DERIVED_TABLES:
        return "audience = ?", [audience]
    if audience == "":
        return "", []
    if table in LABELLED_TABLES:
        return (
            "EXISTS (SELECT 1 FROM json_each(releasable_to) WHERE value IN ('PUBLIC', ?))",
            [audience],
        )
    return "1 = 0", []  # partners, audit log, quarantine, state...: never shown to a partner


class SqlStore:
    """Shared implementation of :class:`~stratowatch.store.base.Store` (see the backends)."""

    dialect = "sql"
    #: Exceptions of the driver that mean "the database failed" (wrapped in StoreError).
    _db_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, name: str, retention: RetentionSettings | None = None) -> None:
        self.name = name
        self.retention = retention or RetentionSettings()
        self._idle: list[Connection] = []
        self._idle_lock = threading.Lock()
        self._closed = False
        self._jobs: queue.SimpleQueue[tuple[Callable[[Cursor], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._writer: threading.Thread | None = None
        self._sites: dict[str, codec.Site] = {}

    def _load_sites(self) -> None:
        self._sites = {s.sensor_id: (s.lat_deg, s.lon_deg, s.alt_m) for s in self.sensors() if s.has_site}

    def _start_writer(self, conn: Connection) -> None:
        self._writer = threading.Thread(
            target=self._writer_loop, args=(conn,), name=f"store-writer {self.name}", daemon=True
        )
        self._writer.start()
        self._load_sites()

    # -- backend hooks --------------------------------------------------------------------------
    def _connect(self, *, writer: bool) -> Connection:
        raise NotImplementedError

    def _transaction(self, conn: Connection, job: Callable[[Cursor], T]) -> T:
        raise NotImplementedError

    def _sql(self, query: str) -> str:
        """The query in the driver's placeholder style (queries are written with ``?``)."""
        return query

    def _box_index(self, table: str, key: str, box: Box) -> tuple[str, list[Any]]:
        """A condition that lets the spatial index narrow ``table`` to ``box`` ("" for none)."""
        return "", []

    def _identity_match(self) -> str:
        """A condition, with one placeholder for the pattern, true when an identity matches."""
        raise NotImplementedError

    def _append(
        self, cur: Cursor, table: str, columns: str, rows: list[tuple[Any, ...]], unique: str = ""
    ) -> int:
        """Append rows to a log-like table (observations, track_states) and index their positions.

        ``unique``: a uniquely indexed column; rows whose value is already stored are skipped.
        Returns the number of rows inserted."""
        marks = ", ".join("?" * len(columns.split(",")))
        skip = f" ON CONFLICT ({unique}) DO NOTHING" if unique else ""
        cur.executemany(self._sql(f"INSERT INTO {table} ({columns}) VALUES ({marks}){skip}"), rows)
        return max(int(cur.rowcount), 0) if unique else len(rows)

    def _limit(self, limit: int | None, offset: int) -> tuple[str, list[Any]]:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if limit is None and offset == 0:
            return "", []
        return " LIMIT ? OFFSET ?", [-1 if limit is None else int(limit), int(offset)]

    def _broken(self, conn: Connection) -> bool:
        return False

    #: What locks a row read inside a write transaction until it commits (PostgreSQL); SQLite's
    #: writes are serialised by the database lock already.
    _for_update = ""

    # -- plumbing -------------------------------------------------------------------------------
    def _writer_loop(self, conn: Connection) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                break
            job, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                if self._broken(conn):
                    conn = self._connect(writer=True)
                result = self._transaction(conn, job)
            except BaseException as e:
                fut.set_exception(e)
            else:
                fut.set_result(result)
        try:
            conn.close()
        except Exception:
            logger.exception("%s: closing the write connection", self.name)

    def _write(self, job: Callable[[Cursor], T]) -> T:
        if self._closed:
            raise StoreError(f"{self.name}: the store is closed")
        fut: Future[T] = Future()
        self._jobs.put((job, fut))
        try:
            return fut.result()
        except self._db_errors as e:
            raise StoreError(f"{self.name}: write failed: {e}") from None

    @contextmanager
    def _reader(self) -> Iterator[Cursor]:
        if self._closed:
            raise StoreError(f"{self.name}: the store is closed")
        with self._idle_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect(writer=False)
        ok = False
        try:
            cur = conn.cursor()
            try:
                with self._scoped_session(conn, cur):
                    yield cur
            finally:
                cur.close()
            ok = True
        except self._db_errors as e:
            raise StoreError(f"{self.name}: read failed: {e}") from None
        finally:
            keep = ok and not self._closed and not self._broken(conn)
            if keep:
                with self._idle_lock:
                    keep = len(self._idle) < _MAX_IDLE_READERS
                    if keep:
                        self._idle.append(conn)
            if not keep:
                conn.close()

    def _scoped_sql(self, query: str, params: Sequence[Any]) -> tuple[str, list[Any]]:
        """The query with every scoped table replaced by its rows visible in the current scope
        (the store-layer rule; PostgreSQL applies it with row-level security instead)."""
        audience = _SCOPE.get()
        params = list(params)
        if audience is None or self.dialect == "postgresql":
            return query, params
        out: list[str] = []
        last = inserted = 0
        for m in _FROM.finditer(query):
            table = m.group(1)
            if table not in TABLES:
                continue
            rule, rule_params = scope_rule(table, audience)
            if not rule:
                continue
            at = query.count("?", 0, m.start()) + inserted
            out.append(query[last : m.start()])
            out.append(f"FROM (SELECT * FROM {table} WHERE {rule}) AS {table}")
            params[at:at] = rule_params
            inserted += len(rule_params)
            last = m.end()
        out.append(query[last:])
        return "".join(out), params

    @contextmanager
    def _scoped_session(self, conn: Connection, cur: Cursor) -> Iterator[None]:
        """Where the database enforces the scope itself (PostgreSQL row-level security), enter it
        for this read; SQLite rewrites the query instead (:meth:`_scoped_sql`)."""
        yield

    def _query(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        query, params = self._scoped_sql(query, params)
        with self._reader() as cur:
            cur.execute(self._sql(query), list(params))
            return [tuple(r) for r in cur.fetchall()]

    def _where_box(self, table: str, key: str, bbox: Box | None, where: list[str], params: list[Any]) -> None:
        if bbox is None:
            return
        alternatives = []
        for box in split_box(bbox):
            index_sql, index_params = self._box_index(table, key, box)
            exact = "lat_deg >= ? AND lat_deg <= ? AND lon_deg >= ? AND lon_deg <= ?"
            alternatives.append(f"({index_sql + ' AND ' if index_sql else ''}{exact})")
            params.extend([*index_params, box[0], box[2], box[1], box[3]])
        where.append("(" + " OR ".join(alternatives) + ")")

    @staticmethod
    def _where_time(
        column: str, t0: float | None, t1: float | None, where: list[str], params: list[Any]
    ) -> None:
        if t0 is not None:
            where.append(f"{column} >= ?")
            params.append(float(t0))
        if t1 is not None:
            where.append(f"{column} <= ?")
            params.append(float(t1))

    @staticmethod
    def _clause(where: list[str]) -> str:
        return (" WHERE " + " AND ".join(where)) if where else ""

    # -- observations and quarantine ------------------------------------------------------------
    def write_observations(self, observations: Sequence[Observation]) -> int:
        """Insert a batch in one transaction; returns the number committed.

        GEODETIC and GROUND_2D observations are placed (and spatially indexed) at their position;
        radar plots at the position their range, azimuth and elevation (or height) give from the
        site of their sensor, when :meth:`write_sensor` has stored that sensor with a site.
        """
        rows = [codec.obs_row(o) for o in observations]
        codec.locate_polar(rows, observations, self._sites)
        if rows:
            self._write(lambda cur: self._append(cur, "observations", codec.OBS_COLUMNS, rows))
        return len(rows)

    def write_quarantine(self, records: Sequence[QuarantineRecord]) -> int:
        now = time.time()
        rows = [(now, r.source.source, r.source.position, r.field, r.reason, bytes(r.raw)) for r in records]
        if rows:
            sql = self._sql(
                "INSERT INTO quarantine (ingested_s, source, position, field, reason, raw)"
                " VALUES (?, ?, ?, ?, ?, ?)"
            )
            self._write(lambda cur: cur.executemany(sql, rows))
        return len(rows)

    def _observation_filters(
        self, t0: float | None, t1: float | None, bbox: Box | None, sensor_id: str | None
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        self._where_time("time_s", t0, t1, where, params)
        if sensor_id is not None:
            where.append("sensor_id = ?")
            params.append(sensor_id)
        self._where_box("observations", "id", bbox, where, params)
        return where, params

    def observations(
        self,
        *,
        t0: float | None = None,
        t1: float | None = None,
        bbox: Box | None = None,
        sensor_id: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Observation]:
        """Stored observations in time order. ``bbox`` matches the placed ones (see write_observations)."""
        where, params = self._observation_filters(t0, t1, bbox, sensor_id)
        page, page_params = self._limit(limit, offset)
        rows = self._query(
            f"SELECT {codec.OBS_COLUMNS} FROM observations{self._clause(where)} ORDER BY time_s, id{page}",
            params + page_params,
        )
        return [codec.row_obs(r) for r in rows]

    def count_observations(
        self,
        *,
        t0: float | None = None,
        t1: float | None = None,
        bbox: Box | None = None,
        sensor_id: str | None = None,
    ) -> int:
        """How many observations :meth:`observations` would list without a limit."""
        where, params = self._observation_filters(t0, t1, bbox, sensor_id)
        return int(self._query(f"SELECT COUNT(*) FROM observations{self._clause(where)}", params)[0][0])

    def quarantine_records(self, *, limit: int | None = None, offset: int = 0) -> list[QuarantineRecord]:
        page, page_params = self._limit(limit, offset)
        rows = self._query(
            f"SELECT source, position, field, reason, raw FROM quarantine ORDER BY id{page}", page_params
        )
        return [
            QuarantineRecord(SourceRef(str(s), int(p)), str(reason), bytes(raw), f)
            for s, p, f, reason, raw in rows
        ]

    # -- tracks ---------------------------------------------------------------------------------
    def write_track_states(self, tracks: Sequence[Track], history: Sequence[bool] | None = None) -> None:
        """Upsert each track's current state (never back in time) and append it to the history
        (only the tracks whose ``history`` flag is set, when given)."""
        if tracks:
            self._write(self._track_states_job(tracks, history))

    def _track_states_job(
        self, tracks: Sequence[Track], history: Sequence[bool] | None = None
    ) -> Callable[[Cursor], None]:
        rows = [(int(t.track_id), *codec.track_row(t)) for t in tracks]
        logged = rows if history is None else [r for r, h in zip(rows, history, strict=True) if h]
        cols = codec.TRACK_COLUMNS
        names = [c.strip() for c in cols.split(",")]
        marks = ", ".join("?" * (codec.TRACK_NCOLS + 1))
        sets = ", ".join(f"{c} = excluded.{c}" for c in names)
        upsert = self._sql(
            f"INSERT INTO tracks (track_id, {cols}, ended_s) VALUES ({marks}, NULL)"
            f" ON CONFLICT (track_id) DO UPDATE SET {sets}, ended_s = NULL"
            " WHERE excluded.time_s >= tracks.time_s"
        )

        def job(cur: Cursor) -> None:
            cur.executemany(upsert, rows)
            if logged:
                self._append(cur, "track_states", f"track_id, {cols}", logged)

        return job

    def end_tracks(self, track_ids: Sequence[int], time_s: float) -> None:
        """Mark tracks ENDED at ``time_s`` (their last state stays as it was)."""
        rows = [(int(TrackStatus.ENDED), float(time_s), int(i)) for i in track_ids]
        if rows:
            sql = self._sql("UPDATE tracks SET status = ?, ended_s = ? WHERE track_id = ?")
            self._write(lambda cur: cur.executemany(sql, rows))

    def _track_filters(
        self,
        status: str | None,
        cls: str | None,
        min_alt_m: float | None,
        max_alt_m: float | None,
        bbox: Box | None,
        since_s: float | None,
        identity_regex: str | None,
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(int(_enum(TrackStatus, status, "status")))
        if cls is not None:
            label = _enum(ObjectClass, cls, "cls")
            where.append(
                "(cls_label = ? OR cls_label IS NULL)" if label == ObjectClass.UNKNOWN else "cls_label = ?"
            )
            params.append(int(label))
        if min_alt_m is not None:
            where.append("alt_m >= ?")
            params.append(float(min_alt_m))
        if max_alt_m is not None:
            where.append("alt_m <= ?")
            params.append(float(max_alt_m))
        if since_s is not None:
            where.append("time_s >= ?")
            params.append(float(since_s))
        if identity_regex is not None:
            try:
                re.compile(identity_regex)
            except re.error as e:
                raise ValueError(f"identity_regex {identity_regex!r}: {e}") from None
            where.append(self._identity_match())
            params.append(identity_regex)
        self._where_box("tracks", "track_id", bbox, where, params)
        return where, params

    def tracks(
        self,
        *,
        status: str | None = None,
        cls: str | None = None,
        min_alt_m: float | None = None,
        max_alt_m: float | None = None,
        bbox: Box | None = None,
        since_s: float | None = None,
        identity_regex: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Track]:
        """Current tracks, by track id. ``cls="unknown"`` includes unclassified tracks;
        ``identity_regex`` matches when any one identity matches (search, not full match)."""
        where, params = self._track_filters(status, cls, min_alt_m, max_alt_m, bbox, since_s, identity_regex)
        page, page_params = self._limit(limit, offset)
        rows = self._query(
            f"SELECT track_id, {codec.TRACK_COLUMNS} FROM tracks{self._clause(where)}"
            f" ORDER BY track_id{page}",
            params + page_params,
        )
        return [codec.row_track(r[0], r[1:]) for r in rows]

    def count_tracks(
        self,
        *,
        status: str | None = None,
        cls: str | None = None,
        min_alt_m: float | None = None,
        max_alt_m: float | None = None,
        bbox: Box | None = None,
        since_s: float | None = None,
        identity_regex: str | None = None,
    ) -> int:
        """How many current tracks :meth:`tracks` would list without a limit (for pagination)."""
        where, params = self._track_filters(status, cls, min_alt_m, max_alt_m, bbox, since_s, identity_regex)
        return int(self._query(f"SELECT COUNT(*) FROM tracks{self._clause(where)}", params)[0][0])

    def track(self, track_id: int) -> Track | None:
        rows = self._query(
            f"SELECT track_id, {codec.TRACK_COLUMNS} FROM tracks WHERE track_id = ?", [int(track_id)]
        )
        return codec.row_track(rows[0][0], rows[0][1:]) if rows else None

    def track_history(self, track_id: int, t0: float | None = None, t1: float | None = None) -> list[Track]:
        """Every stored state of one track in ``[t0, t1]``, oldest first."""
        where = ["track_id = ?"]
        params: list[Any] = [int(track_id)]
        self._where_time("time_s", t0, t1, where, params)
        rows = self._query(
            f"SELECT track_id, {codec.TRACK_COLUMNS} FROM track_states{self._clause(where)}"
            " ORDER BY time_s, id",
            params,
        )
        return [codec.row_track(r[0], r[1:]) for r in rows]

    def history_in_box(self, t0: float, t1: float, bbox: Box, *, limit: int | None = None) -> list[Track]:
        """Every track state in ``[t0, t1]`` inside ``bbox``, by time then track."""
        where: list[str] = []
        params: list[Any] = []
        self._where_time("time_s", t0, t1, where, params)
        self._where_box("track_states", "id", bbox, where, params)
        page, page_params = self._limit(limit, 0)
        rows = self._query(
            f"SELECT track_id, {codec.TRACK_COLUMNS} FROM track_states{self._clause(where)}"
            f" ORDER BY time_s, track_id, id{page}",
            params + page_params,
        )
        return [codec.row_track(r[0], r[1:]) for r in rows]

    # -- predictions ----------------------------------------------------------------------------
    def write_prediction(
        self, track_id: int, time_s: float, payload: Mapping[str, Any], audience: str = ""
    ) -> None:
        row = (int(track_id), float(time_s), codec.json_doc(payload), audience)
        sql = self._sql("INSERT INTO predictions (track_id, time_s, payload, audience) VALUES (?, ?, ?, ?)")
        self._write(lambda cur: cur.execute(sql, row))

    def prediction(self, track_id: int) -> dict[str, Any] | None:
        """The latest prediction payload of a track."""
        rows = self._query(
            "SELECT payload FROM predictions WHERE track_id = ? ORDER BY time_s DESC, id DESC LIMIT 1",
            [int(track_id)],
        )
        return dict(json.loads(rows[0][0])) if rows else None

    # -- alerts and incidents -------------------------------------------------------------------
    def write_alert(self, alert: Alert) -> None:
        self._upsert("alerts", "alert_id", codec.ALERT_COLUMNS, [codec.alert_row(alert)])

    def _upsert(self, table: str, key: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
        names = [c.strip() for c in columns.split(",")]
        sets = ", ".join(f"{c} = excluded.{c}" for c in names if c != key)
        marks = ", ".join("?" * len(names))
        sql = self._sql(
            f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT ({key}) DO UPDATE SET {sets}"
        )
        self._write(lambda cur: cur.executemany(sql, rows))

    def _alert_filters(
        self, since_s: float | None, rule: str | None, acknowledged: bool | None
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        self._where_time("time_s", since_s, None, where, params)
        if rule is not None:
            where.append("rule = ?")
            params.append(rule)
        if acknowledged is not None:
            where.append("acknowledged_by IS NOT NULL" if acknowledged else "acknowledged_by IS NULL")
        return where, params

    def alerts(
        self,
        *,
        since_s: float | None = None,
        rule: str | None = None,
        acknowledged: bool | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Alert]:
        """Alerts, newest first."""
        where, params = self._alert_filters(since_s, rule, acknowledged)
        page, page_params = self._limit(limit, offset)
        rows = self._query(
            f"SELECT {codec.ALERT_COLUMNS} FROM alerts{self._clause(where)}"
            f" ORDER BY time_s DESC, alert_id{page}",
            params + page_params,
        )
        return [codec.row_alert(r) for r in rows]

    def count_alerts(
        self, *, since_s: float | None = None, rule: str | None = None, acknowledged: bool | None = None
    ) -> int:
        where, params = self._alert_filters(since_s, rule, acknowledged)
        return int(self._query(f"SELECT COUNT(*) FROM alerts{self._clause(where)}", params)[0][0])

    def alert(self, alert_id: str) -> Alert | None:
        rows = self._query(f"SELECT {codec.ALERT_COLUMNS} FROM alerts WHERE alert_id = ?", [alert_id])
        return codec.row_alert(rows[0]) if rows else None

    def write_incident(self, incident: Incident) -> None:
        self._upsert("incidents", "incident_id", codec.INCIDENT_COLUMNS, [codec.incident_row(incident)])

    def incidents(
        self, *, status: str | None = None, limit: int | None = 100, offset: int = 0
    ) -> list[Incident]:
        """Incidents, most recently updated first."""
        where, params = (["status = ?"], [status]) if status is not None else ([], [])
        page, page_params = self._limit(limit, offset)
        rows = self._query(
            f"SELECT {codec.INCIDENT_COLUMNS} FROM incidents{self._clause(where)}"
            f" ORDER BY updated_s DESC, incident_id{page}",
            params + page_params,
        )
        return [codec.row_incident(r) for r in rows]

    def count_incidents(self, *, status: str | None = None) -> int:
        where, params = (["status = ?"], [status]) if status is not None else ([], [])
        return int(self._query(f"SELECT COUNT(*) FROM incidents{self._clause(where)}", params)[0][0])

    def incident(self, incident_id: str) -> Incident | None:
        rows = self._query(
            f"SELECT {codec.INCIDENT_COLUMNS} FROM incidents WHERE incident_id = ?", [incident_id]
        )
        return codec.row_incident(rows[0]) if rows else None

    # -- sensors, partners, geofences -----------------------------------------------------------
    def write_sensor(self, sensor: Sensor) -> None:
        """Keep a sensor (upsert by id); its site places its radar plots from then on."""
        sites = dict(self._sites)
        sites.pop(sensor.sensor_id, None)
        if sensor.has_site:
            sites[sensor.sensor_id] = (sensor.lat_deg, sensor.lon_deg, sensor.alt_m)
        self._upsert(
            "sensors",
            "sensor_id",
            "sensor_id, owner, body, releasable_to",
            [(sensor.sensor_id, sensor.owner, codec.sensor_body(sensor), codec.labels(sensor.releasable_to))],
        )
        self._sites = sites

    def sensors(self) -> list[Sensor]:
        return [codec.body_sensor(r[0]) for r in self._query("SELECT body FROM sensors ORDER BY sensor_id")]

    def write_partner(self, partner_id: str, details: Mapping[str, Any]) -> None:
        row = (partner_id, time.time(), codec.json_doc(details))
        self._upsert("partners", "partner_id", "partner_id, updated_s, body", [row])

    def partners(self) -> list[dict[str, Any]]:
        """``{"partner_id", "updated_s", "details"}`` per partner, by id."""
        rows = self._query("SELECT partner_id, updated_s, body FROM partners ORDER BY partner_id")
        return [{"partner_id": str(p), "updated_s": float(t), "details": json.loads(b)} for p, t, b in rows]

    def write_geofence(self, geofence: Geofence) -> None:
        row = (
            geofence.geofence_id,
            geofence.kind,
            codec.geofence_body(geofence),
            codec.labels(geofence.releasable_to),
        )
        self._upsert("geofences", "geofence_id", "geofence_id, kind, body, releasable_to", [row])

    def geofences(self) -> list[Geofence]:
        return [
            codec.body_geofence(r[0]) for r in self._query("SELECT body FROM geofences ORDER BY geofence_id")
        ]

    def delete_geofence(self, geofence_id: str) -> bool:
        sql = self._sql("DELETE FROM geofences WHERE geofence_id = ?")

        def job(cur: Cursor) -> bool:
            cur.execute(sql, [geofence_id])
            return bool(cur.rowcount > 0)

        return self._write(job)

    # -- audit, state, housekeeping -------------------------------------------------------------
    def audit(self, actor: str, action: str, details: Mapping[str, Any], time_s: float | None = None) -> None:
        """Append one record to the audit chain (committed before returning)."""
        self.audit_many([(actor, action, details, time.time() if time_s is None else float(time_s))])

    def audit_many(self, records: Sequence[tuple[str, str, Mapping[str, Any], float]]) -> None:
        """Append ``(actor, action, details, time_s)`` records to the audit chain in one
        transaction: each row's hash covers the previous row's (see :mod:`stratowatch.sharing.audit`)."""
        if not records:
            return
        rows = [
            (float(t), str(actor), str(action), codec.json_doc(details))
            for actor, action, details, t in records
        ]
        last = self._sql("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
        insert = self._sql(
            "INSERT INTO audit_log (time_s, actor, action, details, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?)"
        )

        def job(cur: Cursor) -> None:
            self._lock_audit(cur)
            cur.execute(last)
            found = cur.fetchone()
            prev = str(found[0]) if found else self._audit_anchor(cur)
            chained = []
            for t, actor, action, details in rows:
                digest = record_hash(prev, t, actor, action, details)
                chained.append((t, actor, action, details, prev, digest))
                prev = digest
            cur.executemany(insert, chained)

        self._write(job)

    def _lock_audit(self, cur: Cursor) -> None:
        """Serialise appends from several processes (PostgreSQL; SQLite writes one at a time)."""

    def _audit_anchor(self, cur: Cursor) -> str:
        cur.execute(self._sql("SELECT blob FROM state WHERE key = ?"), [ANCHOR_KEY])
        found = cur.fetchone()
        return bytes(found[0]).decode() if found else ""

    def verify_audit(self) -> ChainReport:
        """Check the whole audit chain (see :func:`stratowatch.sharing.audit.verify`)."""
        with self._reader() as cur:
            cur.execute(self._sql("SELECT blob FROM state WHERE key = ?"), [ANCHOR_KEY])
            found = cur.fetchone()
            anchor = bytes(found[0]).decode() if found else ""
            cur.execute(
                "SELECT id, time_s, actor, action, details, prev_hash, hash FROM audit_log ORDER BY id"
            )
            return verify(
                (
                    (int(i), float(t), str(a), str(act), str(d), str(p), str(h))
                    for i, t, a, act, d, p, h in cur
                ),
                anchor,
            )

    def audit_log(self, limit: int | None = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Audit records, newest first: ``{"id", "time_s", "actor", "action", "details"}``."""
        page, page_params = self._limit(limit, offset)
        rows = self._query(
            f"SELECT id, time_s, actor, action, details FROM audit_log ORDER BY time_s DESC, id DESC{page}",
            page_params,
        )
        return [
            {"id": int(i), "time_s": float(t), "actor": str(a), "action": str(act), "details": json.loads(d)}
            for i, t, a, act, d in rows
        ]

    def save_state(self, key: str, blob: bytes) -> None:
        """Keep a snapshot (e.g. a pickled tracker) under ``key``, replacing the previous one."""
        self._upsert("state", "key", "key, time_s, blob", [(key, time.time(), bytes(blob))])

    def load_state(self, key: str) -> bytes | None:
        rows = self._query("SELECT blob FROM state WHERE key = ?", [key])
        return bytes(rows[0][0]) if rows else None

    def apply_retention(self, now_s: float) -> dict[str, int]:
        """Delete what is older than the retention settings allow; rows deleted per table."""
        r = self.retention
        plan = [
            ("observations", r.observations_max_age_s, "time_s < ?"),
            ("quarantine", r.quarantine_max_age_s, "ingested_s < ?"),
            ("track_states", r.track_states_max_age_s, "time_s < ?"),
            ("tracks", r.ended_tracks_max_age_s, "ended_s IS NOT NULL AND ended_s < ?"),
            ("predictions", r.predictions_max_age_s, "time_s < ?"),
            ("alerts", r.alerts_max_age_s, "time_s < ?"),
            ("incidents", r.resolved_incidents_max_age_s, "status = 'resolved' AND updated_s < ?"),
        ]
        todo = [
            (table, self._sql(f"DELETE FROM {table} WHERE {cond}"), float(now_s) - age)
            for table, age, cond in plan
            if age is not None
        ]

        audit_cutoff = None if r.audit_log_max_age_s is None else float(now_s) - r.audit_log_max_age_s

        def job(cur: Cursor) -> dict[str, int]:
            deleted = {}
            for table, sql, cutoff in todo:
                cur.execute(sql, [cutoff])
                deleted[table] = max(int(cur.rowcount), 0)
            if audit_cutoff is not None:
                deleted["audit_log"] = self._cut_audit(cur, audit_cutoff)
            return deleted

        deleted = self._write(job)
        if any(deleted.values()):
            logger.info("%s: retention deleted %s", self.name, deleted)
        return deleted

    def _cut_audit(self, cur: Cursor, cutoff: float) -> int:
        """Remove the oldest audit records (a prefix of the chain, up to the newest record older
        than ``cutoff``) and keep the last removed hash as the chain's anchor."""
        self._lock_audit(cur)
        cur.execute(self._sql("SELECT max(id) FROM audit_log WHERE time_s < ?"), [cutoff])
        found = cur.fetchone()
        if not found or found[0] is None:
            return 0
        upto = int(found[0])
        cur.execute(self._sql("SELECT hash FROM audit_log WHERE id = ?"), [upto])
        anchor = str(cur.fetchone()[0])
        cur.execute(self._sql("DELETE FROM audit_log WHERE id <= ?"), [upto])
        n = max(int(cur.rowcount), 0)
        cur.execute(
            self._sql(
                "INSERT INTO state (key, time_s, blob) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET time_s = excluded.time_s, blob = excluded.blob"
            ),
            [ANCHOR_KEY, time.time(), anchor.encode()],
        )
        return n

    # -- scale-out: cell leases and a cell's committed step -----------------------------------
    def claim_cells(self, owner: str, cell_ids: Sequence[int], lease_s: float, now: float) -> list[int]:
        """Take the cells among ``cell_ids`` that are free, expired, or already ``owner``'s, until
        ``now + lease_s``; returns the ones ``owner`` now holds (sorted). Atomic per cell: two
        workers claiming the same free cell at once, one gets it."""
        ids = sorted({int(c) for c in cell_ids})
        if not ids:
            return []
        expires = float(now) + float(lease_s)
        claim = self._sql(
            "INSERT INTO cell_leases (cell_id, owner, expires_s) VALUES (?, ?, ?)"
            " ON CONFLICT (cell_id) DO UPDATE SET owner = excluded.owner, expires_s = excluded.expires_s"
            " WHERE cell_leases.owner = excluded.owner OR cell_leases.expires_s < ?"
        )
        rows = [(c, owner, expires, float(now)) for c in ids]

        def job(cur: Cursor) -> list[int]:
            cur.executemany(claim, rows)
            return self._owned(cur, owner, ids)

        return self._write(job)

    def renew_cells(self, owner: str, cell_ids: Sequence[int], lease_s: float, now: float) -> list[int]:
        """Extend ``owner``'s leases of ``cell_ids`` to ``now + lease_s`` (also one that expired but
        nobody took since); returns the cells still held (sorted): the others were taken over."""
        ids = sorted({int(c) for c in cell_ids})
        if not ids:
            return []
        sql = self._sql("UPDATE cell_leases SET expires_s = ? WHERE cell_id = ? AND owner = ?")
        rows = [(float(now) + float(lease_s), c, owner) for c in ids]

        def job(cur: Cursor) -> list[int]:
            cur.executemany(sql, rows)
            return self._owned(cur, owner, ids)

        return self._write(job)

    def release_cells(self, owner: str, cell_ids: Sequence[int]) -> None:
        """Give up ``owner``'s leases of ``cell_ids`` (another worker may claim them at once)."""
        sql = self._sql("DELETE FROM cell_leases WHERE cell_id = ? AND owner = ?")
        rows = [(int(c), owner) for c in cell_ids]
        if rows:
            self._write(lambda cur: cur.executemany(sql, rows))

    def cell_leases(self) -> dict[int, tuple[str, float]]:
        """Every lease: cell id -> (owner, expires_s)."""
        rows = self._query("SELECT cell_id, owner, expires_s FROM cell_leases ORDER BY cell_id")
        return {int(c): (str(o), float(e)) for c, o, e in rows}

    def _owned(self, cur: Cursor, owner: str, ids: list[int]) -> list[int]:
        cur.execute(self._sql("SELECT cell_id FROM cell_leases WHERE owner = ?"), [owner])
        mine = {int(r[0]) for r in cur.fetchall()}
        return [c for c in ids if c in mine]

    def commit_cell(
        self,
        cell_id: int,
        owner: str,
        *,
        observations: Sequence[Observation],
        obs_ids: Sequence[str],
        tracks: Sequence[Track],
        ended_ids: Sequence[int],
        ended_s: float,
        state_key: str,
        state_blob: bytes,
        history: Sequence[bool] | None = None,
    ) -> int:
        """A tracker worker's step of one cell, in one transaction, only while ``owner`` holds the
        cell's lease (else :class:`LeaseLost`, nothing written): the observations (each once: one
        whose ``obs_id`` is stored already is skipped), the track states (to the history only those
        flagged in ``history``, when given), the ended tracks and the cell's state blob. Returns
        how many observations were new."""
        if len(obs_ids) != len(observations):
            raise ValueError("one observation id per observation")
        obs_rows = [codec.obs_row(o) for o in observations]
        codec.locate_polar(obs_rows, observations, self._sites)
        obs_rows = [(*r, str(i)) for r, i in zip(obs_rows, obs_ids, strict=True)]
        states = self._track_states_job(tracks, history) if tracks else None
        end = self._sql("UPDATE tracks SET status = ?, ended_s = ? WHERE track_id = ?")
        end_rows = [(int(TrackStatus.ENDED), float(ended_s), int(i)) for i in ended_ids]
        lease = self._sql(f"SELECT owner FROM cell_leases WHERE cell_id = ?{self._for_update}")
        save = self._sql(
            "INSERT INTO state (key, time_s, blob) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET time_s = excluded.time_s, blob = excluded.blob"
        )

        def job(cur: Cursor) -> int:
            cur.execute(lease, [int(cell_id)])
            found = cur.fetchone()
            if found is None or str(found[0]) != owner:
                holder = "nobody" if found is None else repr(str(found[0]))
                raise LeaseLost(f"{self.name}: cell {cell_id} is held by {holder}, not {owner!r}")
            new = 0
            if obs_rows:
                columns = codec.OBS_COLUMNS + ", obs_id"
                new = self._append(cur, "observations", columns, obs_rows, unique="obs_id")
            if states is not None:
                states(cur)
            if end_rows:
                cur.executemany(end, end_rows)
            cur.execute(save, [state_key, time.time(), bytes(state_blob)])
            return new

        return self._write(job)

    def count(self, table: str = "observations") -> int:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
        return int(self._query(f"SELECT COUNT(*) FROM {table}")[0][0])

    # -- principals and revoked tokens ----------------------------------------------------------
    # Authentication reads these before any releasability scope applies: never scoped.
    def write_principal(
        self,
        principal_id: str,
        partner: str,
        kind: str,
        scopes: Sequence[str],
        secret_hash: str,
        *,
        disabled: bool = False,
        details: Mapping[str, Any] | None = None,
        created_s: float | None = None,
    ) -> None:
        """Keep a principal (upsert by id); ``secret_hash`` only, never the secret."""
        row = (
            principal_id,
            partner,
            kind,
            json.dumps(sorted(set(scopes))),
            secret_hash,
            time.time() if created_s is None else float(created_s),
            int(bool(disabled)),
            codec.json_doc(details or {}),
        )
        columns = "principal_id, partner, kind, scopes, secret_hash, created_s, disabled, body"
        self._upsert("principals", "principal_id", columns, [row])

    @staticmethod
    def _principal_row(r: Sequence[Any]) -> dict[str, Any]:
        return {
            "principal_id": str(r[0]),
            "partner": str(r[1]),
            "kind": str(r[2]),
            "scopes": list(json.loads(r[3])),
            "secret_hash": str(r[4]),
            "created_s": float(r[5]),
            "disabled": bool(r[6]),
            "details": dict(json.loads(r[7])),
        }

    _PRINCIPAL_COLUMNS = "principal_id, partner, kind, scopes, secret_hash, created_s, disabled, body"

    def principal(self, principal_id: str) -> dict[str, Any] | None:
        """``{"principal_id", "partner", "kind", "scopes", "secret_hash", "created_s", "disabled",
        "details"}`` or None."""
        with scope(None):
            rows = self._query(
                f"SELECT {self._PRINCIPAL_COLUMNS} FROM principals WHERE principal_id = ?", [principal_id]
            )
        return self._principal_row(rows[0]) if rows else None

    def principals(self) -> list[dict[str, Any]]:
        """Every principal (as :meth:`principal`), by id."""
        with scope(None):
            rows = self._query(f"SELECT {self._PRINCIPAL_COLUMNS} FROM principals ORDER BY principal_id")
        return [self._principal_row(r) for r in rows]

    def disable_principal(self, principal_id: str) -> bool:
        """Refuse the principal from now on (its tokens too); False when there is no such one."""
        sql = self._sql("UPDATE principals SET disabled = 1 WHERE principal_id = ?")

        def job(cur: Cursor) -> bool:
            cur.execute(sql, [principal_id])
            return bool(cur.rowcount > 0)

        return self._write(job)

    def revoke_token(self, jti: str, expires_s: float) -> None:
        """Refuse the token ``jti`` until ``expires_s`` (after which it is refused as expired);
        forgets revocations whose tokens have expired since."""
        insert = self._sql(
            "INSERT INTO revoked_tokens (jti, expires_s) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING"
        )
        purge = self._sql("DELETE FROM revoked_tokens WHERE expires_s < ?")
        now = time.time()

        def job(cur: Cursor) -> None:
            cur.execute(purge, [now - 60.0])
            cur.execute(insert, [jti, float(expires_s)])

        self._write(job)

    def token_revoked(self, jti: str) -> bool:
        with scope(None):
            return bool(self._query("SELECT 1 FROM revoked_tokens WHERE jti = ?", [jti]))

    def close(self) -> None:
        """Finish queued writes, stop the writer, close every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._jobs.put(None)
            self._writer.join()
        while True:  # a write that raced with close: fail it rather than leave its caller waiting
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].set_exception(StoreError(f"{self.name}: the store is closed"))
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self: T) -> T:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


E = TypeVar("E", TrackStatus, ObjectClass)


def _enum(cls: type[E], value: str, what: str) -> E:
    try:
        return cls[str(value).upper()]
    except KeyError:
        names = ", ".join(m.name.lower() for m in cls)
        raise ValueError(f"{what} {value!r}: not one of {names}") from None
