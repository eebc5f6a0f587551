"""APRS position reports (TNC2 text lines, e.g. an APRS-IS or direwolf log) via aprslib.

Each line is one unit: ``[TIME[:]] SOURCE>DEST,PATH:INFO``. The optional leading TIME is the
receive time, ISO-8601 (``2023-02-04T18:39:00Z``, ``2023-02-04 18:39:00 UTC``) or POSIX seconds;
it is preferred. Without it, the packet's own timestamp is used when it is zulu
(``DDHHMMz`` or ``HHMMSSh``), anchored to ``ReadContext.date_utc``; otherwise the line is
quarantined (no time). Lines starting with ``#`` (APRS-IS server comments) are counted as
``aprs_comment``.

Position reports (uncompressed, compressed, Mic-E, objects and items) become GEODETIC
observations when an altitude is given (``/A=`` feet in the comment, or Mic-E/compressed
altitude), else GROUND_2D. Identity ``aprs:<source callsign>`` (``aprs:<name>`` for objects and
items). Sigma: 30 m horizontal (GPS), 50 m vertical; position ambiguity of level n widens the
horizontal sigma to the blanked cell size / sqrt(12). Other packets (messages, status,
telemetry, weather without position) are counted as ``aprs_<format>``. The sensor id is
``ReadContext.sensor_id`` (``default`` becomes ``aprs``).
"""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any

import aprslib

from stratowatch.ingest._emit import Emitter, FieldError, parse_time_utc
from stratowatch.ingest.base import IngestStats, ReadContext, Sink, register
from stratowatch.ingest.registry import EMPTY_REGISTRY, SensorRegistry
from stratowatch.model import MeasurementKind, Observation

log = logging.getLogger(__name__)

SIGMA_H_M = 30.0
SIGMA_V_M = 50.0
#: Size (m) of the cell that position ambiguity level 1..4 leaves (0.1', 1', 10', 1 degree).
_AMBIGUITY_CELL_M = {1: 185.2, 2: 1852.0, 3: 18520.0, 4: 111120.0}

_PREFIX = re.compile(
    rb"^\s*(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z| ?UTC|[+-]\d{2}:?\d{2})?"
    rb"|\d{9,11}(?:\.\d+)?)\s*:?\s+(?P<pkt>[^\s>:]{1,12}>.*)$"
)
_PACKET = re.compile(rb"^[A-Za-z0-9/-]{1,12}>[^:\s]*:")


def split_time(line: bytes) -> tuple[float | None, bytes]:
    """(receive time or None, packet) from a log line; raises FieldError for a bad time."""
    m = _PREFIX.match(line)
    if not m:
        return None, line.strip()
    ts = m.group("ts").decode("ascii").replace(" UTC", "Z").replace("UTC", "Z")
    return parse_time_utc(ts, "time"), m.group("pkt").strip()


def packet_time(raw_ts: str | None, day: date | None) -> float | None:
    """POSIX time of a zulu APRS timestamp anchored to a date (None when it cannot be)."""
    if not raw_ts or day is None or len(raw_ts) != 7 or not raw_ts[:6].isdigit():
        return None
    a, b, c = int(raw_ts[0:2]), int(raw_ts[2:4]), int(raw_ts[4:6])
    try:
        if raw_ts[6] == "h":
            return datetime(day.year, day.month, day.day, a, b, c, tzinfo=UTC).timestamp()
        if raw_ts[6] == "z":
            # Day of month: the latest such day not more than a day after the stated date.
            year, month = day.year, day.month
            for _ in range(3):
                try:
                    t = datetime(year, month, a, b, c, tzinfo=UTC)
                except ValueError:
                    t = None
                if t is not None and t.date() <= day + timedelta(days=1):
                    return t.timestamp()
                year, month = (year, month - 1) if month > 1 else (year - 1, 12)
            return None
    except ValueError:
        return None
    return None


class AprsReader:
    name = "aprs"

    def __init__(self, registry: SensorRegistry = EMPTY_REGISTRY) -> None:
        self.registry = registry

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        out = Emitter(sink, ctx.source)
        raw_id = ctx.sensor_id if ctx.sensor_id != "default" else "aprs"
        sid, label, owner = self.registry.label(raw_id)
        for number, raw in enumerate(stream, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            if line.lstrip().startswith(b"#"):
                out.message("aprs_comment")
                continue
            try:
                rx_time, pkt = split_time(line)
            except FieldError as e:
                out.quarantine(number, f"aprs: {e.field}: {e.reason}", line, e.field)
                continue
            try:
                parsed: dict[str, Any] = aprslib.parse(pkt)
            except aprslib.UnknownFormat:
                out.quarantine(number, "aprs: unknown packet format", line, "info")
                continue
            except aprslib.ParseError:
                out.quarantine(number, "aprs: packet does not parse", line, "info")
                continue
            except Exception as e:  # aprslib raises assorted errors on odd input
                log.debug("aprslib failed on line %d: %r", number, e)
                out.quarantine(number, "aprs: packet does not parse", line, "info")
                continue
            lat, lon = parsed.get("latitude"), parsed.get("longitude")
            if lat is None or lon is None:
                out.message(f"aprs_{parsed.get('format', 'other')}")
                continue
            t = rx_time if rx_time is not None else packet_time(parsed.get("raw_timestamp"), ctx.date_utc)
            if t is None:
                out.quarantine(number, "aprs: no receive time and no zulu packet time", line, "time")
                continue
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                out.quarantine(number, "aprs: position out of range", line, "position")
                continue
            name = parsed.get("object_name") or parsed.get("item_name") or parsed.get("from")
            amb = int(parsed.get("posambiguity") or 0)
            sigma_h = max(SIGMA_H_M, _AMBIGUITY_CELL_M.get(amb, 0.0) / math.sqrt(12.0))
            alt = parsed.get("altitude")
            value: tuple[float, ...]
            sigma: tuple[float, ...]
            if alt is not None and math.isfinite(float(alt)):
                kind, value, sigma = (
                    MeasurementKind.GEODETIC,
                    (float(lat), float(lon), float(alt)),
                    (sigma_h, SIGMA_V_M),
                )
            else:
                kind, value, sigma = MeasurementKind.GROUND_2D, (float(lat), float(lon)), (sigma_h,)
            out.observations(
                [
                    Observation(
                        float(t),
                        sid,
                        kind,
                        value,
                        sigma,
                        identity=f"aprs:{str(name).strip()}",
                        callsign=str(parsed.get("from")),
                        releasable_to=label,
                        originator=owner,
                        source=out.ref(number),
                    )
                ]
            )
        return out.stats


def sniff(head: bytes) -> bool:
    lines = [ln for ln in head.splitlines() if ln.strip() and not ln.lstrip().startswith(b"#")]
    if not lines:
        return False
    sample = lines[:5]
    if len(head) >= 4096 and len(sample) > 1:
        sample = sample[:-1]  # the last line may be cut
    good = sum(1 for ln in sample if _PREFIX.match(ln) or _PACKET.match(ln))
    return good >= 1 and 2 * good > len(sample)


register("aprs", AprsReader, sniff, "APRS TNC2 text lines (optionally time-prefixed) via aprslib")
