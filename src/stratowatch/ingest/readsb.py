"""readsb / dump1090 JSON: ``aircraft.json`` snapshots and readsb/tar1090 ``trace_full`` files.

* ``aircraft.json`` (``{"now": t, "aircraft": [{"hex", "lat", "lon", "alt_baro", ...}]}``): each
  aircraft entry is a unit. Entries with a position become observations at ``now - seen_pos``;
  a position already reported by an earlier snapshot (same aircraft, same time) is counted as
  ``readsb_position_unchanged``, entries without a position as ``readsb_no_position``. The old
  dump1090 field names (``altitude``, ``speed``, ``vert_rate``) are accepted too.
* ``trace_full`` / ``trace_recent`` (``{"icao", "timestamp", "trace": [[dt, lat, lon, alt, gs,
  track, flags, vrate, details, ...], ...]}``): each trace point is a unit, at
  ``timestamp + dt``; ``details`` objects carry the callsign, category and NACp, which are kept for
  the following points.

Altitude is barometric (``alt_baro`` / trace altitude, feet); ``"ground"`` gives a GROUND_2D
observation. A ``~`` in front of the hex marks a non-ICAO address (identity ``anon:``).
Whole-document JSON errors quarantine the document as one unit with the line and column.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from typing import IO, Any

import numpy as np

from stratowatch.ingest import _modes_core as core
from stratowatch.ingest.base import IngestStats, ReadContext, Sink, register
from stratowatch.ingest.modes import gunzip_head
from stratowatch.model import IdentityCodes, ObservationBatch

MESSAGE_NAMES = ["readsb_no_position", "readsb_position_unchanged"]
_NO_POS = 0
_UNCHANGED = 1


def _num(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return math.nan
    f = float(v)
    return f if math.isfinite(f) else math.nan


def _category(c: Any) -> str | None:
    """Emitter category ("A3", "B2"); "A0".."D0" mean "no information"."""
    if isinstance(c, str) and len(c) == 2 and c[0] in "ABCD" and c[1] in "1234567":
        return c
    return None


def _hex_address(h: Any) -> tuple[int, int] | None:
    if not isinstance(h, str):
        return None
    kind = 1 if h.startswith("~") else 0
    h = h.lstrip("~")
    if len(h) != 6:
        return None
    try:
        return int(h, 16), kind
    except ValueError:
        return None


class _Rows:
    """Column lists for one document, turned into an AdsbChunk at the end."""

    def __init__(self, strings: core.StringTable) -> None:
        self.strings = strings
        self.n = 0
        self.outcome: list[int] = []
        self.message: list[int] = []
        self.quarantine: list[tuple[int, str, str | None, bytes]] = []
        self.obs_unit: list[int] = []
        self.cols: list[
            tuple[float, float, float, float, float, float, float, float, int, int, int, int]
        ] = []

    def add_message(self, code: int) -> None:
        self.outcome.append(core.OUTCOME_MESSAGE)
        self.message.append(code)
        self.n += 1

    def add_bad(self, reason: str, fld: str | None, raw: Any) -> None:
        self.quarantine.append((self.n, reason, fld, json.dumps(raw, default=str).encode()))
        self.outcome.append(core.OUTCOME_QUARANTINE)
        self.message.append(-1)
        self.n += 1

    def add_obs(
        self,
        t: float,
        lat: float,
        lon: float,
        alt_ft: float,
        sigma_h: float,
        vel: tuple[float, float, float],
        address: tuple[int, int],
        callsign: str | None,
        category: str | None,
    ) -> None:
        self.obs_unit.append(self.n)
        self.outcome.append(core.OUTCOME_OBS)
        self.message.append(-1)
        self.cols.append(
            (t, lat, lon, alt_ft * core.FT_TO_M, sigma_h, *vel, address[0], address[1],
             self.strings.code(callsign), self.strings.code(category))
        )  # fmt: skip
        self.n += 1

    def chunk(self, first_position: int) -> core.AdsbChunk:
        m = len(self.cols)
        c = np.array(self.cols, dtype=np.float64).reshape(m, 12)
        return core.AdsbChunk(
            unit_position=np.arange(first_position, first_position + self.n, dtype=np.int64),
            outcome=np.array(self.outcome, dtype=np.int8),
            message=np.array(self.message, dtype=np.int64),
            message_names=MESSAGE_NAMES,
            quarantine=self.quarantine,
            crc_failures=0,
            obs_unit=np.array(self.obs_unit, dtype=np.int64),
            time_s=c[:, 0],
            lat_deg=c[:, 1],
            lon_deg=c[:, 2],
            alt_m=c[:, 3],
            sigma_h_m=c[:, 4],
            sigma_v_m=np.full(m, core.DEFAULT_SIGMA_V_M),
            velocity_enu_mps=c[:, 5:8],
            address=c[:, 8].astype(np.int64),
            address_kind=c[:, 9].astype(np.int8),
            callsign=c[:, 10].astype(np.int64),
            category=c[:, 11].astype(np.int64),
            strings=self.strings,
        )


def _velocity(gs_kt: float, track_deg: float, rate_fpm: float) -> tuple[float, float, float]:
    if math.isnan(gs_kt) or math.isnan(track_deg):
        return (math.nan, math.nan, math.nan)
    s = gs_kt * core.KT_TO_MPS
    r = math.radians(track_deg)
    vu = 0.0 if math.isnan(rate_fpm) else rate_fpm * core.FPM_TO_MPS
    return (s * math.sin(r), s * math.cos(r), vu)


def _sigma_h(nacp: float) -> float:
    return float(core.nacp_sigma_h_m(np.array([nacp]))[0])


class ReadsbReader:
    """Reads readsb/dump1090 ``aircraft.json`` and readsb ``trace_full`` JSON."""

    name = "readsb"

    def __init__(self) -> None:
        self.strings = core.StringTable()
        self.identities = IdentityCodes()
        self._last_pos_time: dict[tuple[int, int], float] = {}
        self._units = 0

    def decode_document(self, data: bytes, ctx: ReadContext) -> core.AdsbChunk:
        rows = _Rows(self.strings)
        try:
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            doc = json.loads(data)
        except (EOFError, OSError, zlib.error) as exc:
            reason = f"gzip data corrupt or truncated: {exc}"
            rows.quarantine.append((0, reason, None, data))
            rows.outcome.append(core.OUTCOME_QUARANTINE)
            rows.message.append(-1)
            rows.n = 1
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            reason = f"not valid JSON: {exc}"
            rows.quarantine.append((0, reason, None, data))
            rows.outcome.append(core.OUTCOME_QUARANTINE)
            rows.message.append(-1)
            rows.n = 1
        else:
            if isinstance(doc, dict) and isinstance(doc.get("trace"), list):
                self._trace(doc, rows)
            elif isinstance(doc, dict) and isinstance(doc.get("aircraft"), list):
                self._aircraft(doc, rows)
            else:
                rows.add_bad("JSON has neither 'aircraft' nor 'trace' list", None, str(doc)[:200])
        chunk = rows.chunk(self._units + 1)
        self._units += rows.n
        return chunk

    def _aircraft(self, doc: dict[str, Any], rows: _Rows) -> None:
        now = _num(doc.get("now"))
        for ac in doc["aircraft"]:
            if not isinstance(ac, dict):
                rows.add_bad("aircraft entry is not an object", None, ac)
                continue
            addr = _hex_address(ac.get("hex"))
            if addr is None:
                rows.add_bad("field 'hex': not a 6-digit hex address", "hex", ac)
                continue
            lat, lon = _num(ac.get("lat")), _num(ac.get("lon"))
            if "lat" not in ac and "lon" not in ac:
                rows.add_message(_NO_POS)
                continue
            if not (abs(lat) <= 90.0 and abs(lon) <= 180.0):
                rows.add_bad("field 'lat'/'lon': not a position on the Earth", "lat", ac)
                continue
            if math.isnan(now):
                rows.add_bad("field 'now': snapshot has no time", "now", ac)
                continue
            seen = _num(ac.get("seen_pos", ac.get("seen", 0.0)))
            t = now - (0.0 if math.isnan(seen) else seen)
            if self._last_pos_time.get(addr) == round(t, 1):
                rows.add_message(_UNCHANGED)
                continue
            self._last_pos_time[addr] = round(t, 1)
            alt_raw = ac.get("alt_baro", ac.get("altitude", ac.get("alt_geom")))
            alt = math.nan if alt_raw == "ground" else _num(alt_raw)
            vel = _velocity(
                _num(ac.get("gs", ac.get("speed"))),
                _num(ac.get("track")),
                _num(ac.get("baro_rate", ac.get("geom_rate", ac.get("vert_rate")))),
            )
            flight = ac.get("flight")
            cat = ac.get("category")
            rows.add_obs(
                t, lat, lon, alt, _sigma_h(_num(ac.get("nac_p"))), vel, addr,
                flight.strip() if isinstance(flight, str) else None,
                _category(cat),
            )  # fmt: skip

    def _trace(self, doc: dict[str, Any], rows: _Rows) -> None:
        addr = _hex_address(doc.get("icao"))
        t0 = _num(doc.get("timestamp"))
        callsign: str | None = None
        category: str | None = None
        nacp = math.nan
        for pt in doc["trace"]:
            if addr is None:
                rows.add_bad("field 'icao': not a 6-digit hex address", "icao", pt)
                continue
            if math.isnan(t0):
                rows.add_bad("field 'timestamp': trace has no start time", "timestamp", pt)
                continue
            if not isinstance(pt, list) or len(pt) < 8:
                rows.add_bad("trace point is not a list of at least 8 values", None, pt)
                continue
            details = pt[8] if len(pt) > 8 and isinstance(pt[8], dict) else None
            if details is not None:
                f = details.get("flight")
                if isinstance(f, str) and f.strip():
                    callsign = f.strip()
                c = _category(details.get("category"))
                if c is not None:
                    category = c
                if "nac_p" in details:
                    nacp = _num(details.get("nac_p"))
            dt_s, lat, lon = _num(pt[0]), _num(pt[1]), _num(pt[2])
            if math.isnan(dt_s):
                rows.add_bad("trace point field 0 (seconds): not a number", "dt", pt)
                continue
            if math.isnan(lat) or math.isnan(lon):
                rows.add_message(_NO_POS)
                continue
            if not (abs(lat) <= 90.0 and abs(lon) <= 180.0):
                rows.add_bad("trace point lat/lon: not a position on the Earth", "lat", pt)
                continue
            alt = math.nan if pt[3] == "ground" else _num(pt[3])
            if math.isnan(alt) and pt[3] != "ground" and len(pt) > 10:
                alt = _num(pt[10])  # geometric altitude when the barometric one is missing
            vel = _velocity(_num(pt[4]), _num(pt[5]), _num(pt[7]))
            rows.add_obs(t0 + dt_s, lat, lon, alt, _sigma_h(nacp), vel, addr, callsign, category)

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        stats = IngestStats()
        core.emit(self.decode_document(stream.read(), ctx), ctx, sink, stats)
        return stats

    def read_batch(self, data: bytes, ctx: ReadContext) -> tuple[ObservationBatch, core.AdsbChunk]:
        chunk = self.decode_document(data, ctx)
        return core.to_batch(chunk, ctx, self.identities), chunk


def sniff(head: bytes) -> bool:
    head = gunzip_head(head)
    s = head.lstrip()[:2048]
    if not s.startswith(b"{"):
        return False
    return (b'"aircraft"' in s and b'"now"' in s) or (b'"trace"' in s and b'"icao"' in s)


register("readsb", ReadsbReader, sniff, "readsb/dump1090 aircraft.json and readsb trace_full JSON")
