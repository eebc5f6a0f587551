"""Generic geodetic CSV -> GEODETIC observations.

Header (any column order; ``callsign`` optional, other extra columns ignored)::

    time_utc,lat,lon,alt_m,sigma_h_m,sigma_v_m,sensor_id,identity

``time_utc`` is ISO-8601 (``2023-02-04T18:39:00Z``; a naive time is UTC) or POSIX seconds;
``lat``/``lon`` WGS-84 degrees, ``alt_m`` metres above the ellipsoid, sigmas are 1-sigma metres
(horizontal per axis, vertical). ``identity`` is kept as given (e.g. ``icao:406B90``); an empty
identity means none. A bad line is quarantined with the field named.
"""

from __future__ import annotations

from typing import IO

from stratowatch.ingest._emit import (
    Emitter,
    FieldError,
    csv_header,
    csv_rows,
    parse_float,
    parse_time_utc,
)
from stratowatch.ingest.base import IngestStats, ReadContext, Sink, register
from stratowatch.ingest.registry import EMPTY_REGISTRY, SensorRegistry
from stratowatch.model import MeasurementKind, Observation

COLUMNS = ("time_utc", "lat", "lon", "alt_m", "sigma_h_m", "sigma_v_m", "sensor_id", "identity")


class GeodeticCsvReader:
    name = "geodetic-csv"

    def __init__(self, registry: SensorRegistry = EMPTY_REGISTRY) -> None:
        self.registry = registry

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        out = Emitter(sink, ctx.source)
        checked = False
        for number, raw, row in csv_rows(stream, out):
            if not checked:
                missing = [c for c in COLUMNS if c not in row]
                if missing:
                    out.quarantine(
                        number, f"geodetic CSV header lacks column {missing[0]!r}", raw, missing[0]
                    )
                    continue
                checked = True
            try:
                t = parse_time_utc(row["time_utc"], "time_utc")
                lat = parse_float(row["lat"], "lat", lo=-90.0, hi=90.0)
                lon = parse_float(row["lon"], "lon", lo=-180.0, hi=360.0)
                alt = parse_float(row["alt_m"], "alt_m", lo=-1000.0, hi=1e6)
                sh = parse_float(row["sigma_h_m"], "sigma_h_m", lo=1e-9)
                sv = parse_float(row["sigma_v_m"], "sigma_v_m", lo=1e-9)
                sensor = row["sensor_id"] or ctx.sensor_id
            except FieldError as e:
                out.quarantine(number, f"geodetic CSV: {e.field}: {e.reason}", raw, e.field)
                continue
            sid, label, owner = self.registry.label(sensor)
            out.observations(
                [
                    Observation(
                        t,
                        sid,
                        MeasurementKind.GEODETIC,
                        (lat, lon if lon <= 180.0 else lon - 360.0, alt),
                        (sh, sv),
                        identity=row["identity"] or None,
                        callsign=row.get("callsign") or None,
                        releasable_to=label,
                        originator=owner,
                        source=out.ref(number),
                    )
                ]
            )
        return out.stats


def sniff(head: bytes) -> bool:
    cols = csv_header(head)
    return all(c in cols for c in COLUMNS)


register(
    "geodetic-csv",
    GeodeticCsvReader,
    sniff,
    "Geodetic CSV: time_utc,lat,lon,alt_m,sigma_h_m,sigma_v_m,sensor_id,identity",
)
