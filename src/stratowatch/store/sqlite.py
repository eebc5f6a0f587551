"""SQLite store for observations and quarantine records (minimal; later issues extend it).

One :class:`SqliteStore` owns one connection and is the only writer of its database file. The
database runs in WAL mode, so readers in other processes see committed data while it writes.
Writes are batched: one transaction per :meth:`SqliteStore.write_observations` call, with
``executemany``. A batch is committed before the call returns: data the store acknowledged
survives a crash or kill of the process.

Tables: ``observations`` (one row per :class:`~stratowatch.model.Observation`, values padded to
three columns, the releasability label as a sorted JSON list) and ``quarantine`` (raw bytes,
reason, field, source). ``meta`` holds the schema version.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

from stratowatch.ingest.base import QuarantineRecord
from stratowatch.model import MeasurementKind, Observation, SourceRef

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS observations (
    id INTEGER PRIMARY KEY,
    time_s REAL NOT NULL,
    sensor_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    v0 REAL NOT NULL, v1 REAL NOT NULL, v2 REAL,
    s0 REAL NOT NULL, s1 REAL, s2 REAL,
    vel_e REAL, vel_n REAL, vel_u REAL, vel_sigma REAL,
    identity TEXT, callsign TEXT, category TEXT,
    releasable_to TEXT NOT NULL,
    originator TEXT NOT NULL,
    source TEXT, source_position INTEGER
);
CREATE INDEX IF NOT EXISTS observations_time ON observations (time_s);
CREATE INDEX IF NOT EXISTS observations_identity ON observations (identity);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    ingested_s REAL NOT NULL,
    source TEXT NOT NULL,
    position INTEGER NOT NULL,
    field TEXT,
    reason TEXT NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_reason ON quarantine (reason);
"""

_OBS_COLUMNS = (
    "time_s, sensor_id, kind, v0, v1, v2, s0, s1, s2, vel_e, vel_n, vel_u, vel_sigma, "
    "identity, callsign, category, releasable_to, originator, source, source_position"
)


class StoreError(RuntimeError):
    """The database cannot be opened or written; the message names the file."""


class SqliteStore:
    """Observations and quarantine in one SQLite file (WAL, single writer, batched inserts)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.executescript(_SCHEMA)
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: schema version {row[0]} is newer than this program's")
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open database: {e}") from None
        self._lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------------
    def write_observations(self, observations: Sequence[Observation]) -> int:
        """Insert a batch in one transaction; returns the number written."""
        rows = [_obs_row(o) for o in observations]
        self._write(f"INSERT INTO observations ({_OBS_COLUMNS}) VALUES ({', '.join('?' * 20)})", rows)
        return len(rows)

    def write_quarantine(self, records: Sequence[QuarantineRecord]) -> int:
        now = time.time()
        rows = [(now, r.source.source, r.source.position, r.field, r.reason, r.raw) for r in records]
        self._write(
            "INSERT INTO quarantine (ingested_s, source, position, field, reason, raw)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        return len(rows)

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        if not rows:
            return
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(sql, rows)
                self._conn.execute("COMMIT")
            except sqlite3.Error as e:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StoreError(f"{self.path}: write failed: {e}") from None

    # -- reading -------------------------------------------------------------------------------
    def count(self, table: str = "observations") -> int:
        if table not in ("observations", "quarantine"):
            raise ValueError(f"unknown table {table!r}")
        return int(self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def observations(self, start_s: float = -math.inf, end_s: float = math.inf) -> list[Observation]:
        """Stored observations with start_s <= time_s < end_s, in time order."""
        cur = self._conn.execute(
            f"SELECT {_OBS_COLUMNS} FROM observations WHERE time_s >= ? AND time_s < ? ORDER BY time_s, id",
            (max(start_s, -1e300), min(end_s, 1e300)),
        )
        return [_row_obs(r) for r in cur]

    def quarantine_records(self) -> list[QuarantineRecord]:
        cur = self._conn.execute("SELECT source, position, field, reason, raw FROM quarantine ORDER BY id")
        return [QuarantineRecord(SourceRef(s, int(p)), reason, bytes(raw), f) for s, p, f, reason, raw in cur]

    def journal_mode(self) -> str:
        return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _pad(values: Iterable[float], n: int = 3) -> list[float | None]:
    out: list[float | None] = list(values)
    return out + [None] * (n - len(out))


def _obs_row(o: Observation) -> tuple[object, ...]:
    vel = o.velocity_enu_mps or (None, None, None)
    return (
        o.time_s,
        o.sensor_id,
        int(o.kind),
        *_pad(o.value),
        *_pad(o.sigma),
        *vel,
        o.velocity_sigma_mps if math.isfinite(o.velocity_sigma_mps) else None,
        o.identity,
        o.callsign,
        o.category,
        json.dumps(sorted(o.releasable_to)),
        o.originator,
        o.source.source if o.source else None,
        o.source.position if o.source else None,
    )


def _row_obs(r: tuple[object, ...]) -> Observation:
    kind = MeasurementKind(int(r[2]))  # type: ignore[call-overload]
    values = tuple(float(v) for v in r[3:6] if v is not None)  # type: ignore[arg-type]
    sigma = tuple(float(v) for v in r[6:9] if v is not None)  # type: ignore[arg-type]
    vel = None if r[9] is None else (float(r[9]), float(r[10]), float(r[11]))  # type: ignore[arg-type]
    return Observation(
        float(r[0]),  # type: ignore[arg-type]
        str(r[1]),
        kind,
        values,
        sigma,
        velocity_enu_mps=vel,
        velocity_sigma_mps=math.nan if r[12] is None else float(r[12]),  # type: ignore[arg-type]
        identity=None if r[13] is None else str(r[13]),
        callsign=None if r[14] is None else str(r[14]),
        category=None if r[15] is None else str(r[15]),
        releasable_to=frozenset(json.loads(str(r[16]))),
        originator=str(r[17]),
        source=None if r[18] is None else SourceRef(str(r[18]), int(r[19])),  # type: ignore[call-overload]
    )


class StoreSink:
    """A reader Sink that writes to a store in batches (call :meth:`flush` at the end).

    Messages are only counted (``messages``); observations and quarantine records are buffered
    and written every ``batch_size`` items.
    """

    def __init__(self, store: SqliteStore, batch_size: int = 5000) -> None:
        self.store = store
        self.batch_size = batch_size
        self._obs: list[Observation] = []
        self._quarantine: list[QuarantineRecord] = []
        self.written_observations = 0
        self.written_quarantine = 0
        self.messages: dict[str, int] = {}

    def observation(self, obs: Observation) -> None:
        self._obs.append(obs)
        if len(self._obs) >= self.batch_size:
            self.flush()

    def message(self, kind: str) -> None:
        self.messages[kind] = self.messages.get(kind, 0) + 1

    def quarantine(self, record: QuarantineRecord) -> None:
        self._quarantine.append(record)
        if len(self._quarantine) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self._obs:
            self.written_observations += self.store.write_observations(self._obs)
            self._obs = []
        if self._quarantine:
            self.written_quarantine += self.store.write_quarantine(self._quarantine)
            self._quarantine = []
