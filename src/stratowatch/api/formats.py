"""Exports of tracks, predictions and incidents as GeoJSON, KML (simplekml), CZML (czml3) and CSV.

* Tracks: one Point per track at its current position (properties: id, status, class and
  probability, identities, speed), and when histories are given one LineString per track
  (GeoJSON, KML) or a time-tagged position with a trailing path (CZML, so Cesium animates it);
  CSV has one row per state.
* Predictions: the stored GeoJSON (median and deterministic paths, cones), as KML line strings and
  polygons, CZML polylines and polygons, CSV vertices; arrivals ride along as properties.
* Incidents: the incident's tracks (current and history) and its alerts; the CSV is the incident's
  timeline (states, alerts and the who-did-what history), in time order.

Coordinates: GeoJSON/KML/CZML are lon, lat, alt (m, absolute); CSV names its columns.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from czml3 import (
    Clock,
    Color,
    Document,
    Label,
    Material,
    Packet,
    Path,
    Point,
    Polygon,
    Polyline,
    PolylineMaterial,
    Position,
    PositionList,
    SolidColorMaterial,
    TimeInterval,
)

from stratowatch.api.convert import alert_json, finite, incident_json, track_json
from stratowatch.model import Alert, Incident, Track

FORMATS = ("geojson", "kml", "czml", "csv")
MEDIA_TYPES = {
    "geojson": "application/geo+json",
    "kml": "application/vnd.google-earth.kml+xml",
    "czml": "application/json",
    "csv": "text/csv; charset=utf-8",
}

#: RGBA colours by class (balloons stand out).
_CLASS_RGBA = {"balloon": (230, 40, 40, 255), "aircraft": (60, 130, 230, 255), "unknown": (240, 160, 30, 255)}


def iso_utc(time_s: float) -> str:
    """POSIX seconds -> ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    moment = datetime.fromtimestamp(time_s, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def _utc(time_s: float) -> datetime:
    return datetime.fromtimestamp(time_s, UTC)


def _class_of(t: Track) -> str:
    return "unknown" if t.classification is None else t.classification.label.name.lower()


def _name_of(t: Track) -> str:
    return f"track {t.track_id}" + (f" ({', '.join(t.identities)})" if t.identities else "")


def _alt(t: Track) -> float:
    a = finite(t.alt_m)
    return 0.0 if a is None else a


def _track_properties(t: Track) -> dict[str, Any]:
    body = track_json(t)
    c = body.pop("classification")
    body["class"] = c["label"] if c else "unknown"
    body["class_probability"] = c["probability"] if c else None
    body["reasons"] = c["reasons"] if c else []
    body["time_utc"] = iso_utc(t.time_s)
    for key in ("lat_deg", "lon_deg", "alt_m"):
        body.pop(key)
    return body


# --------------------------------------------------------------------------------------------- GeoJSON


def tracks_geojson(
    tracks: Sequence[Track], histories: Mapping[int, Sequence[Track]] | None = None
) -> dict[str, Any]:
    features: list[dict[str, Any]] = []
    for t in tracks:
        features.append(
            {
                "type": "Feature",
                "id": f"track-{t.track_id}",
                "geometry": {"type": "Point", "coordinates": [t.lon_deg, t.lat_deg, _alt(t)]},
                "properties": {"kind": "track", **_track_properties(t)},
            }
        )
        states = (histories or {}).get(t.track_id, ())
        if len(states) >= 2:
            features.append(
                {
                    "type": "Feature",
                    "id": f"track-{t.track_id}-history",
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [[s.lon_deg, s.lat_deg, _alt(s)] for s in states],
                    },
                    "properties": {
                        "kind": "track_history",
                        "track_id": t.track_id,
                        "times_s": [s.time_s for s in states],
                    },
                }
            )
    return {"type": "FeatureCollection", "features": features}


def prediction_geojson(
    track_id: int, geojson: Mapping[str, Any], arrivals: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    props = dict(geojson.get("properties") or {})
    props.update({"track_id": track_id, "arrivals": list(arrivals)})
    return {"type": "FeatureCollection", "features": list(geojson.get("features", [])), "properties": props}


def incident_geojson(
    incident: Incident,
    alerts: Sequence[Alert],
    tracks: Sequence[Track],
    histories: Mapping[int, Sequence[Track]],
) -> dict[str, Any]:
    body = tracks_geojson(tracks, histories)
    body["properties"] = {"incident": incident_json(incident), "alerts": [alert_json(a) for a in alerts]}
    return body


# ------------------------------------------------------------------------------------------------ KML


def _kml_tracks(kml: Any, tracks: Sequence[Track], histories: Mapping[int, Sequence[Track]] | None) -> None:
    import simplekml

    colours = {
        "balloon": simplekml.Color.red,
        "aircraft": simplekml.Color.blue,
        "unknown": simplekml.Color.orange,
    }
    for t in tracks:
        cls = _class_of(t)
        folder = kml.newfolder(name=_name_of(t))
        point = folder.newpoint(name=_name_of(t), coords=[(t.lon_deg, t.lat_deg, _alt(t))])
        point.altitudemode = simplekml.AltitudeMode.absolute
        point.timestamp.when = iso_utc(t.time_s)
        point.description = (
            f"class {cls}"
            + (f" ({t.classification.probability:.2f})" if t.classification else "")
            + f"; status {t.status.name.lower()}; altitude {_alt(t):.0f} m; speed {t.speed_mps:.1f} m/s"
        )
        point.style.iconstyle.color = colours[cls]
        states = (histories or {}).get(t.track_id, ())
        if len(states) >= 2:
            line = folder.newlinestring(
                name=f"{_name_of(t)} history", coords=[(s.lon_deg, s.lat_deg, _alt(s)) for s in states]
            )
            line.altitudemode = simplekml.AltitudeMode.absolute
            line.style.linestyle.color = colours[cls]
            line.style.linestyle.width = 2
            line.timespan.begin = iso_utc(states[0].time_s)
            line.timespan.end = iso_utc(states[-1].time_s)


def tracks_kml(tracks: Sequence[Track], histories: Mapping[int, Sequence[Track]] | None = None) -> str:
    import simplekml

    kml = simplekml.Kml(name="stratowatch tracks")
    _kml_tracks(kml, tracks, histories)
    return str(kml.kml())


def prediction_kml(track_id: int, geojson: Mapping[str, Any], arrivals: Sequence[Mapping[str, Any]]) -> str:
    import simplekml

    kml = simplekml.Kml(name=f"stratowatch prediction, track {track_id}")
    cones = kml.newfolder(name="cones")
    for f in geojson.get("features", []):
        geometry = f.get("geometry") or {}
        props = f.get("properties") or {}
        kind = str(props.get("kind", ""))
        if geometry.get("type") == "LineString":
            line = kml.newlinestring(
                name=kind.replace("_", " "), coords=[tuple(c) for c in geometry["coordinates"]]
            )
            line.altitudemode = simplekml.AltitudeMode.absolute
            line.style.linestyle.color = (
                simplekml.Color.red if kind == "median_path" else simplekml.Color.white
            )
            line.style.linestyle.width = 3
        elif geometry.get("type") == "Polygon":
            probability = float(props.get("probability", 0.0))
            pol = cones.newpolygon(
                name=f"{round(probability * 100)}% at {props.get('time_utc', '')}",
                outerboundaryis=[tuple(c) for c in geometry["coordinates"][0]],
            )
            pol.style.polystyle.color = simplekml.Color.changealphaint(60, simplekml.Color.orange)
            if props.get("time_utc"):
                pol.timestamp.when = str(props["time_utc"])
    if arrivals:
        kml.document.description = "; ".join(
            f"{a['geofence_id']}: {a['probability']:.0%}"
            + (f" from {iso_utc(a['earliest_s'])}" if a.get("earliest_s") is not None else "")
            for a in arrivals
        )
    return str(kml.kml())


def incident_kml(
    incident: Incident,
    alerts: Sequence[Alert],
    tracks: Sequence[Track],
    histories: Mapping[int, Sequence[Track]],
) -> str:
    import simplekml

    kml = simplekml.Kml(name=f"incident {incident.incident_id}: {incident.title}")
    kml.document.description = "\n".join(
        [f"status {incident.status}, opened {iso_utc(incident.opened_s)}"]
        + [f"{iso_utc(a.time_s)} {a.severity} {a.rule}: {a.message}" for a in alerts]
    )
    _kml_tracks(kml, tracks, histories)
    return str(kml.kml())


# ----------------------------------------------------------------------------------------------- CZML


def _rgba(cls: str, alpha: int = 255) -> Color:
    r, g, b, _ = _CLASS_RGBA.get(cls, _CLASS_RGBA["unknown"])
    return Color(rgba=[r, g, b, alpha])


def _increasing(states: Sequence[Track]) -> list[Track]:
    """States in time order, one per time (CZML samples need strictly increasing times)."""
    out: list[Track] = []
    for s in sorted(states, key=lambda s: s.time_s):
        if out and s.time_s <= out[-1].time_s:
            out[-1] = s
        else:
            out.append(s)
    return out


def _track_packets(tracks: Sequence[Track], histories: Mapping[int, Sequence[Track]] | None) -> list[Packet]:
    packets = []
    for t in tracks:
        states = _increasing([*(histories or {}).get(t.track_id, ()), t])
        epoch = states[0].time_s
        samples: list[float] = []
        for s in states:
            samples += [s.time_s - epoch, s.lon_deg, s.lat_deg, _alt(s)]
        cls = _class_of(t)
        packets.append(
            Packet(
                id=f"track-{t.track_id}",
                name=_name_of(t),
                description=f"class {cls}; status {t.status.name.lower()}; {len(states)} states",
                availability=TimeInterval(start=_utc(epoch), end=_utc(max(states[-1].time_s, epoch + 1.0))),
                position=Position(epoch=_utc(epoch), cartographicDegrees=samples),
                point=Point(color=_rgba(cls), pixelSize=8),
                label=Label(text=_name_of(t)),
                path=Path(
                    width=2,
                    leadTime=0,
                    trailTime=3600,
                    material=PolylineMaterial(solidColor=SolidColorMaterial(color=_rgba(cls))),
                ),
            )
        )
    return packets


def _document(name: str, times_s: Sequence[float]) -> Packet:
    if times_s:
        t0, t1 = min(times_s), max(times_s)
        clock = Clock(
            currentTime=_utc(t0),
            interval=TimeInterval(start=_utc(t0), end=_utc(max(t1, t0 + 1.0))),
            multiplier=60,
        )
        return Packet(id="document", name=name, version="1.0", clock=clock)
    return Packet(id="document", name=name, version="1.0")


def _times(tracks: Sequence[Track], histories: Mapping[int, Sequence[Track]] | None) -> list[float]:
    times = [t.time_s for t in tracks]
    for states in (histories or {}).values():
        times += [s.time_s for s in states[:1]]
    return times


def tracks_czml(tracks: Sequence[Track], histories: Mapping[int, Sequence[Track]] | None = None) -> str:
    packets = [_document("stratowatch tracks", _times(tracks, histories)), *_track_packets(tracks, histories)]
    return str(Document(packets=packets).dumps())


def prediction_czml(track_id: int, geojson: Mapping[str, Any], arrivals: Sequence[Mapping[str, Any]]) -> str:
    packets = [_document(f"stratowatch prediction, track {track_id}", [])]
    for i, f in enumerate(geojson.get("features", [])):
        geometry = f.get("geometry") or {}
        props = f.get("properties") or {}
        kind = str(props.get("kind", "feature"))
        if geometry.get("type") == "LineString":
            flat = [
                float(v) for c in geometry["coordinates"] for v in (c[0], c[1], c[2] if len(c) > 2 else 0.0)
            ]
            colour = _rgba("balloon") if kind == "median_path" else Color(rgba=[255, 255, 255, 255])
            packets.append(
                Packet(
                    id=f"prediction-{track_id}-{kind}-{i}",
                    name=kind.replace("_", " "),
                    polyline=Polyline(
                        positions=PositionList(cartographicDegrees=flat),
                        width=3,
                        material=PolylineMaterial(solidColor=SolidColorMaterial(color=colour)),
                    ),
                )
            )
        elif geometry.get("type") == "Polygon":
            ring = geometry["coordinates"][0]
            flat = [float(v) for c in ring for v in (c[0], c[1], 0.0)]
            probability = float(props.get("probability", 0.0))
            packets.append(
                Packet(
                    id=f"prediction-{track_id}-cone-{i}",
                    name=f"{round(probability * 100)}% cone at {props.get('time_utc', '')}",
                    polygon=Polygon(
                        positions=PositionList(cartographicDegrees=flat),
                        material=Material(
                            solidColor=SolidColorMaterial(color=Color(rgba=[240, 160, 30, 60]))
                        ),
                    ),
                )
            )
    return str(Document(packets=packets).dumps())


def incident_czml(
    incident: Incident,
    alerts: Sequence[Alert],
    tracks: Sequence[Track],
    histories: Mapping[int, Sequence[Track]],
) -> str:
    doc = _document(f"incident {incident.incident_id}: {incident.title}", _times(tracks, histories))
    doc = doc.model_copy(update={"description": json.dumps([alert_json(a) for a in alerts])})
    return str(Document(packets=[doc, *_track_packets(tracks, histories)]).dumps())


# ------------------------------------------------------------------------------------------------ CSV

TRACK_CSV_COLUMNS = [
    "track_id",
    "time_utc",
    "time_s",
    "status",
    "class",
    "class_probability",
    "lat_deg",
    "lon_deg",
    "alt_m",
    "velocity_east_mps",
    "velocity_north_mps",
    "velocity_up_mps",
    "speed_mps",
    "identities",
    "sensors",
    "n_updates",
]


def _track_row(t: Track) -> list[object]:
    c = t.classification
    e, n, u = t.velocity_enu_mps
    return [
        t.track_id,
        iso_utc(t.time_s),
        f"{t.time_s:.3f}",
        t.status.name.lower(),
        _class_of(t),
        "" if c is None else f"{c.probability:.3f}",
        f"{t.lat_deg:.6f}",
        f"{t.lon_deg:.6f}",
        "" if finite(t.alt_m) is None else f"{t.alt_m:.1f}",
        f"{e:.2f}",
        f"{n:.2f}",
        f"{u:.2f}",
        f"{t.speed_mps:.2f}",
        " ".join(t.identities),
        " ".join(t.sensors),
        t.n_updates,
    ]


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def tracks_csv(tracks: Sequence[Track], histories: Mapping[int, Sequence[Track]] | None = None) -> str:
    rows = []
    for t in tracks:
        states = (histories or {}).get(t.track_id) or [t]
        rows += [_track_row(s) for s in states]
    return _csv(TRACK_CSV_COLUMNS, rows)


def prediction_csv(track_id: int, geojson: Mapping[str, Any], arrivals: Sequence[Mapping[str, Any]]) -> str:
    rows: list[list[object]] = []
    for f in geojson.get("features", []):
        geometry = f.get("geometry") or {}
        props = f.get("properties") or {}
        kind = props.get("kind", "")
        if geometry.get("type") == "LineString":
            coords = geometry["coordinates"]
        elif geometry.get("type") == "Polygon":
            coords = geometry["coordinates"][0]
        else:
            continue
        for i, c in enumerate(coords):
            alt = f"{c[2]:.1f}" if len(c) > 2 else ""
            rows.append(
                [
                    track_id,
                    kind,
                    props.get("probability", ""),
                    props.get("time_utc", ""),
                    i,
                    f"{c[1]:.6f}",
                    f"{c[0]:.6f}",
                    alt,
                ]
            )
    return _csv(
        ["track_id", "kind", "probability", "time_utc", "vertex", "lat_deg", "lon_deg", "alt_m"], rows
    )


def incident_csv(
    incident: Incident,
    alerts: Sequence[Alert],
    tracks: Sequence[Track],
    histories: Mapping[int, Sequence[Track]],
) -> str:
    """The incident's timeline: track states, alerts and the lifecycle history, in time order."""
    rows: list[tuple[float, list[object]]] = []
    for t in tracks:
        for s in histories.get(t.track_id) or [t]:
            alt = "" if finite(s.alt_m) is None else f"{s.alt_m:.1f}"
            rows.append(
                (
                    s.time_s,
                    ["state", s.track_id, f"{s.lat_deg:.6f}", f"{s.lon_deg:.6f}", alt, "", _class_of(s)],
                )
            )
    for a in alerts:
        rows.append(
            (
                a.time_s,
                ["alert", a.track_id if a.track_id is not None else "", "", "", "", a.severity, a.message],
            )
        )
    for time_s, who, what in incident.history:
        rows.append((time_s, ["history", "", "", "", "", who, what]))
    rows.sort(key=lambda r: r[0])
    header = [
        "incident_id",
        "time_utc",
        "time_s",
        "event",
        "track_id",
        "lat_deg",
        "lon_deg",
        "alt_m",
        "who_or_severity",
        "text",
    ]
    return _csv(header, [[incident.incident_id, iso_utc(t), f"{t:.3f}", *r] for t, r in rows])
