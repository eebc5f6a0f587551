"""SondeHub-style radiosonde telemetry JSON -> GEODETIC observations ``sonde:<serial>``.

Accepted layouts: JSON lines (one telemetry object per line), a JSON array of objects, or the
SondeHub v2 archive layout ``{serial: {datetime: object}}``. Each telemetry object is one unit.
Fields used: ``serial`` and ``datetime`` (ISO-8601 UTC) are required; ``lat``, ``lon`` (degrees)
and ``alt`` (metres, GPS) give the position (without ``alt`` the unit becomes GROUND_2D);
``vel_h`` (m/s), ``heading`` (degrees) and ``vel_v`` (m/s) give the velocity when all are
present. Several receivers upload the same frame, so a repeat of (serial, datetime) already
seen in this read is counted as ``sondehub_duplicate``. Sigma: 15 m horizontal, 20 m vertical
(radiosonde GPS), velocity 1 m/s. The sensor id is ``ReadContext.sensor_id`` (``default``
becomes ``sondehub``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import IO, Any

from stratowatch.ingest._emit import (
    Emitter,
    FieldError,
    parse_float,
    parse_optional_float,
    parse_time_utc,
)
from stratowatch.ingest.base import IngestStats, ReadContext, Sink, register
from stratowatch.ingest.registry import EMPTY_REGISTRY, SensorRegistry
from stratowatch.model import MeasurementKind, Observation

SIGMA_H_M = 15.0
SIGMA_V_M = 20.0
SIGMA_VEL_MPS = 1.0


def _units(data: bytes, out: Emitter) -> Iterator[tuple[int, bytes, Any]]:
    """(position, raw bytes, parsed object) per telemetry unit; bad JSON is quarantined."""
    text = data.lstrip(b"\xef\xbb\xbf").strip()
    if text[:1] == b"[" or (text[:1] == b"{" and b"\n" not in text.rstrip()):
        try:
            doc = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            out.quarantine(0, "sondehub: not valid JSON", data, str(getattr(e, "msg", e)))
            return
        if isinstance(doc, list):
            for i, obj in enumerate(doc, start=1):
                yield i, json.dumps(obj).encode(), obj
            return
        if isinstance(doc, dict) and "serial" not in doc:
            i = 0
            for serial, frames in doc.items():
                if not isinstance(frames, dict):
                    i += 1
                    out.quarantine(
                        i,
                        "sondehub: archive entry is not an object",
                        json.dumps(frames).encode(),
                        serial,
                    )
                    continue
                for obj in frames.values():
                    i += 1
                    if isinstance(obj, dict):
                        obj = {"serial": serial, **obj}
                    yield i, json.dumps(obj).encode(), obj
            return
        yield 1, text, doc
        return
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, line, json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            out.quarantine(number, "sondehub: line is not valid JSON", line)


class SondeHubReader:
    name = "sondehub"

    def __init__(self, registry: SensorRegistry = EMPTY_REGISTRY) -> None:
        self.registry = registry

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        out = Emitter(sink, ctx.source)
        sid, label, owner = self.registry.label(ctx.sensor_id if ctx.sensor_id != "default" else "sondehub")
        seen: set[tuple[str, float]] = set()
        for pos, raw, obj in _units(stream.read(), out):
            if not isinstance(obj, dict):
                out.quarantine(pos, "sondehub: telemetry is not an object", raw)
                continue
            try:
                serial = str(obj.get("serial") or "").strip()
                if not serial:
                    raise FieldError("serial", "missing value")
                t = parse_time_utc(_s(obj.get("datetime")), "datetime")
                lat = parse_float(_s(obj.get("lat")), "lat", lo=-90.0, hi=90.0)
                lon = parse_float(_s(obj.get("lon")), "lon", lo=-180.0, hi=360.0)
                alt = parse_optional_float(_s(obj.get("alt")), "alt", lo=-1000.0, hi=100_000.0)
                vh = parse_optional_float(_s(obj.get("vel_h")), "vel_h", lo=0.0, hi=1000.0)
                vv = parse_optional_float(_s(obj.get("vel_v")), "vel_v", lo=-1000.0, hi=1000.0)
                hdg = parse_optional_float(_s(obj.get("heading")), "heading", lo=-360.0, hi=720.0)
            except FieldError as e:
                out.quarantine(pos, f"sondehub: {e.field}: {e.reason}", raw, e.field)
                continue
            if (serial, t) in seen:
                out.message("sondehub_duplicate")
                continue
            seen.add((serial, t))
            vel = None
            if vh is not None and vv is not None and hdg is not None:
                h = math.radians(hdg)
                vel = (vh * math.sin(h), vh * math.cos(h), vv)
            lon = lon if lon <= 180.0 else lon - 360.0
            value: tuple[float, ...]
            sigma: tuple[float, ...]
            if alt is not None:
                kind, value, sigma = (
                    MeasurementKind.GEODETIC,
                    (lat, lon, alt),
                    (SIGMA_H_M, SIGMA_V_M),
                )
            else:
                kind, value, sigma = MeasurementKind.GROUND_2D, (lat, lon), (SIGMA_H_M,)
            out.observations(
                [
                    Observation(
                        t,
                        sid,
                        kind,
                        value,
                        sigma,
                        velocity_enu_mps=vel,
                        velocity_sigma_mps=SIGMA_VEL_MPS if vel else math.nan,
                        identity=f"sonde:{serial}",
                        category=str(obj.get("type") or obj.get("subtype") or "") or None,
                        releasable_to=label,
                        originator=owner,
                        source=out.ref(pos),
                    )
                ]
            )
        return out.stats


def _s(v: object) -> str | None:
    if v is None or isinstance(v, bool):
        return None if v is None else "nan"
    return str(v)


def sniff(head: bytes) -> bool:
    h = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return (h[:1] in (b"[", b"{") and b'"serial"' in head and b'"datetime"' in head) or (
        h[:1] == b"{" and b'"datetime"' in head and b'"frame"' in head
    )


register(
    "sondehub",
    SondeHubReader,
    sniff,
    "SondeHub radiosonde telemetry JSON (lines, array or archive)",
)
