"""Timed flight tracks from KML / KMZ (and a simple CSV), e.g. radiosonde flights.

Timed points come from, in each ``Placemark``:

* a ``Point`` with a time: ``<TimeStamp><when>`` (ISO-8601), or a ``UTC Time: MM/DD/YY
  HH:MM:SS`` line in ``<description>`` (the sonde2kml / radiosonde_auto_rx form, whose
  description also states ``Velocity: Vertical``, ``Velocity: Horizontal`` (m/s) and
  ``Heading`` (deg, direction of travel), kept as the stated velocity);
* a ``gx:Track`` (``<when>`` and ``<gx:coord>lon lat alt`` pairs).

A placemark without a time (the untimed full-resolution ``LineString`` of sonde2kml, a
landing marker) is counted as a message; a timed placemark whose time or coordinates do not
parse is quarantined with the reason. Altitudes are read as metres above mean sea level.
Positions in :class:`~stratowatch.ingest.base.SourceRef` are placemark ordinals (1-based, in
document order), since KML is not line-oriented.

The ``kml`` reader yields GEODETIC observations: identity ``sonde:<serial>`` (``sonde:<name>``
without a serial), sensor ``radiosonde`` (unless the context names one), sigma 10 m
horizontal / 20 m vertical, and the stated velocity (east, north, up) where present.

CSV flights: a header ``time_utc,lat,lon,alt_m`` (ISO-8601 or POSIX seconds), one point a line.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np

from stratowatch.ingest._emit import Emitter, FieldError, parse_float, parse_time_utc
from stratowatch.ingest.base import IngestStats, ReadContext, Sink, register
from stratowatch.model import FloatArray, MeasurementKind, Observation

log = logging.getLogger(__name__)

SIGMA_H_M = 10.0
SIGMA_V_M = 20.0
VELOCITY_SIGMA_MPS = 1.0


class FlightFormatError(ValueError):
    """A flight file could not be read: the message names the file and the place."""


@dataclass(frozen=True, slots=True)
class Flight:
    """A timed track, sorted by time. Stated velocities are NaN where the file has none."""

    name: str
    serial: str
    time_s: FloatArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    alt_m: FloatArray
    stated_vertical_mps: FloatArray
    stated_horizontal_mps: FloatArray
    stated_heading_deg: FloatArray
    source: str = ""

    def __len__(self) -> int:
        return int(self.time_s.shape[0])


@dataclass(frozen=True, slots=True)
class _Point:
    ordinal: int
    time_s: float
    lat_deg: float
    lon_deg: float
    alt_m: float
    vertical_mps: float = math.nan
    horizontal_mps: float = math.nan
    heading_deg: float = math.nan


# -- parsing --------------------------------------------------------------------------------

_UTC_TIME = re.compile(r"UTC Time:\s*(\d\d)/(\d\d)/(\d\d)\s+(\d\d):(\d\d):(\d\d(?:\.\d+)?)")
_SERIAL = re.compile(r"Serial:\s*([A-Za-z0-9_-]+)")
_STATED = {
    "vertical": re.compile(r"Velocity: Vertical:\s*(-?[\d.]+)"),
    "horizontal": re.compile(r"Velocity: Horizontal:\s*(-?[\d.]+)"),
    "heading": re.compile(r"Heading:\s*(-?[\d.]+)"),
}


def _kml_bytes(data: bytes, source: str) -> bytes:
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = [n for n in z.namelist() if n.lower().endswith(".kml")]
                if not names:
                    raise FlightFormatError(f"{source}: KMZ holds no .kml file")
                name = "doc.kml" if "doc.kml" in names else names[0]
                return z.read(name)
        except zipfile.BadZipFile as exc:
            raise FlightFormatError(f"{source}: not a valid KMZ (zip) file: {exc}") from None
    return data


def _text(el: ET.Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _parse_placemark(pm: ET.Element, ordinal: int) -> tuple[list[_Point], str, str]:
    """(timed points, serial, kind) of one placemark; kind is 'timed', 'untimed' or 'empty'.
    Raises FieldError for a timed placemark that does not parse."""
    desc = _text(pm.find("{*}description"))
    serial_m = _SERIAL.search(desc)
    serial = serial_m.group(1) if serial_m else ""
    track = pm.find(".//{*}Track")
    if track is not None:
        whens = [_text(w) for w in track.findall("{*}when")]
        coords = [_text(c) for c in track.findall("{*}coord")]
        if len(whens) != len(coords):
            raise FieldError("gx:Track", "when/coord count mismatch", f"{len(whens)} != {len(coords)}")
        pts = []
        for w, c in zip(whens, coords, strict=True):
            parts = c.split()
            if len(parts) < 2:
                raise FieldError("gx:coord", "needs lon lat [alt]", repr(c))
            lon = parse_float(parts[0], "gx:coord lon", lo=-180, hi=360)
            lat = parse_float(parts[1], "gx:coord lat", lo=-90, hi=90)
            alt = parse_float(parts[2], "gx:coord alt") if len(parts) > 2 else 0.0
            pts.append(_Point(ordinal, parse_time_utc(w, "when"), lat, lon, alt))
        return pts, serial, "timed" if pts else "empty"
    point = pm.find(".//{*}Point")
    when = _text(pm.find(".//{*}TimeStamp/{*}when"))
    utc = _UTC_TIME.search(desc)
    if point is None:
        kind = "untimed" if pm.find(".//{*}LineString") is not None else "empty"
        return [], serial, kind
    if not when and not utc:
        return [], serial, "untimed"
    if when:
        t = parse_time_utc(when, "when")
    else:
        assert utc is not None
        mo, dd, yy, hh, mi = (int(utc.group(k)) for k in range(1, 6))
        sec = float(utc.group(6))
        try:
            t = datetime(2000 + yy, mo, dd, hh, mi, tzinfo=UTC).timestamp() + sec
        except ValueError:
            raise FieldError("UTC Time", "not a date", utc.group(0)) from None
    parts = _text(point.find("{*}coordinates")).replace(",", " ").split()
    if len(parts) < 2:
        raise FieldError("coordinates", "needs lon,lat[,alt]", repr(parts))
    lon = parse_float(parts[0], "coordinates lon", lo=-180, hi=360)
    lat = parse_float(parts[1], "coordinates lat", lo=-90, hi=90)
    alt = parse_float(parts[2], "coordinates alt") if len(parts) > 2 else 0.0
    stated = {}
    for key, rx in _STATED.items():
        m = rx.search(desc)
        stated[key] = float(m.group(1)) if m else math.nan
    return (
        [
            _Point(
                ordinal,
                t,
                lat,
                lon,
                alt,
                stated["vertical"],
                stated["horizontal"],
                stated["heading"],
            )
        ],
        serial,
        "timed",
    )


def _document_names(root: ET.Element) -> tuple[str, str]:
    """(flight name, serial) from document names such as 'Launch: ...' / 'Sonde: U2450615'."""
    names = [_text(d.find("{*}name")) for d in root.iter() if d.tag.endswith("Document")]
    serial = ""
    for n in names:
        m = re.match(r"Sonde:\s*(\S+)", n)
        if m:
            serial = m.group(1)
    return (names[0] if names else ""), serial


def _parse_kml(data: bytes, source: str) -> tuple[ET.Element, list[ET.Element]]:
    try:
        root = ET.fromstring(_kml_bytes(data, source))
    except ET.ParseError as exc:
        raise FlightFormatError(f"{source}: not well-formed KML: {exc}") from None
    if not root.tag.endswith("kml"):
        raise FlightFormatError(f"{source}: root element is {root.tag!r}, not kml")
    return root, [el for el in root.iter() if el.tag.endswith("Placemark")]


def _flight_from_points(points: list[_Point], name: str, serial: str, source: str) -> Flight:
    if not points:
        raise FlightFormatError(f"{source}: no timed points (placemarks with a time)")
    points = sorted(points, key=lambda p: p.time_s)
    t = np.array([p.time_s for p in points])
    keep = np.concatenate(([True], np.diff(t) > 0))  # repeated times: the first wins
    pts = [p for p, k in zip(points, keep, strict=True) if k]

    def col(attr: str) -> FloatArray:
        return np.array([getattr(p, attr) for p in pts], dtype=np.float64)

    return Flight(
        name=name,
        serial=serial,
        time_s=col("time_s"),
        lat_deg=col("lat_deg"),
        lon_deg=col("lon_deg"),
        alt_m=col("alt_m"),
        stated_vertical_mps=col("vertical_mps"),
        stated_horizontal_mps=col("horizontal_mps"),
        stated_heading_deg=col("heading_deg"),
        source=source,
    )


def read_flight(path: str | Path) -> Flight:
    """A flight from a KML, KMZ or CSV (``time_utc,lat,lon,alt_m``) file.

    Raises :class:`FlightFormatError` naming the file and the placemark or line at fault.
    """
    p = Path(path)
    data = p.read_bytes()
    if is_flight_csv(data[:512]):
        return _read_csv(data, str(p))
    root, placemarks = _parse_kml(data, str(p))
    name, serial = _document_names(root)
    points: list[_Point] = []
    for ordinal, pm in enumerate(placemarks, start=1):
        try:
            pts, s, _ = _parse_placemark(pm, ordinal)
        except FieldError as exc:
            raise FlightFormatError(f"{p}: placemark {ordinal}: {exc}") from None
        serial = serial or s
        points.extend(pts)
    return _flight_from_points(points, name or p.stem, serial, str(p))


def is_flight_csv(head: bytes) -> bool:
    first = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].strip().lower()
    cols = [c.strip() for c in first.split(b",")]
    return cols[:4] == [b"time_utc", b"lat", b"lon", b"alt_m"]


def _read_csv(data: bytes, source: str) -> Flight:
    text = data.decode("utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(text)))
    points = []
    fields = ("time_utc", "lat", "lon", "alt_m")
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < 4:
            raise FlightFormatError(f"{source}:{n}: {len(row)} fields, expected 4 ({','.join(fields)})")
        try:
            t = parse_time_utc(row[0], "time_utc")
            lat = parse_float(row[1], "lat", lo=-90, hi=90)
            lon = parse_float(row[2], "lon", lo=-180, hi=360)
            alt = parse_float(row[3], "alt_m", lo=-1000, hi=100_000)
        except FieldError as exc:
            raise FlightFormatError(f"{source}:{n}: {exc}") from None
        points.append(_Point(n, t, lat, lon, alt))
    return _flight_from_points(points, Path(source).stem, "", source)


# -- the ingest reader ------------------------------------------------------------------------


class KmlReader:
    """Reads a KML/KMZ flight into GEODETIC observations (one placemark is one unit)."""

    name = "kml"

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        emit = Emitter(sink, ctx.source)
        data = stream.read()
        try:
            root, placemarks = _parse_kml(data, ctx.source)
        except FlightFormatError as exc:
            emit.quarantine(0, "not KML", data[:4096], None)
            log.warning("%s", exc)
            return emit.stats
        doc_name, doc_serial = _document_names(root)
        sensor = ctx.sensor_id if ctx.sensor_id != "default" else "radiosonde"
        for ordinal, pm in enumerate(placemarks, start=1):
            raw = ET.tostring(pm)
            try:
                points, serial, kind = _parse_placemark(pm, ordinal)
            except FieldError as exc:
                emit.quarantine(ordinal, exc.reason, raw, exc.field)
                continue
            if kind == "untimed":
                emit.message("kml_untimed_geometry")
                continue
            if kind == "empty":
                emit.message("kml_no_geometry")
                continue
            ident = serial or doc_serial or doc_name
            obs = [
                Observation(
                    time_s=p.time_s,
                    sensor_id=sensor,
                    kind=MeasurementKind.GEODETIC,
                    value=(p.lat_deg, p.lon_deg, p.alt_m),
                    sigma=(SIGMA_H_M, SIGMA_V_M),
                    velocity_enu_mps=_stated_velocity(p),
                    velocity_sigma_mps=VELOCITY_SIGMA_MPS if _stated_velocity(p) else math.nan,
                    identity=f"sonde:{ident}" if ident else None,
                    category="radiosonde",
                    source=emit.ref(ordinal),
                )
                for p in points
            ]
            emit.observations(obs)
        return emit.stats


def _stated_velocity(p: _Point) -> tuple[float, float, float] | None:
    if not (math.isfinite(p.horizontal_mps) and math.isfinite(p.heading_deg)):
        return None
    h = math.radians(p.heading_deg)
    up = p.vertical_mps if math.isfinite(p.vertical_mps) else 0.0
    return (p.horizontal_mps * math.sin(h), p.horizontal_mps * math.cos(h), up)


def _sniff(head: bytes) -> bool:
    if head[:2] == b"PK":  # a zip whose first member is a .kml
        name_len = int.from_bytes(head[26:28], "little")
        return head[30 : 30 + name_len].lower().endswith(b".kml")
    return b"<kml" in head[:1024]


register("kml", KmlReader, _sniff, "KML/KMZ flight tracks (radiosonde, sonde2kml, gx:Track)")
