"""WSPR spots of pico balloons -> observations ``wspr:<callsign>``.

Input: CSV spot records, either the wsprnet.org archive layout without a header
(``spot_id,timestamp,reporter,reporter_grid,snr,frequency,call_sign,grid,power,drift,distance,
azimuth,band,version,code``) or a headed CSV such as a wspr.live export (columns ``time`` or
``timestamp``, ``tx_sign``/``call_sign``, ``tx_loc``/``grid``, ``power``). Each row is one unit.
Many receivers report the same transmission: the first row of a (time, callsign, grid, power)
transmission is used, the others are counted as ``wspr_duplicate_spot``.

**Position.** A regular message gives a Maidenhead locator: 4 characters (a 2° x 1° cell) or 6
(5' x 2.5'). The observation is at the cell centre with sigma = the larger cell side / sqrt(12)
(a uniform spread: about 30-60 km for 4 characters, 1-3 km for 6).

**U4B / "WB8ELK"-style extended telemetry** (the QRP Labs U4B "basic telemetry" that Traquito and
similar trackers send). In the 2-minute slot after the regular message, the tracker sends a
second message whose callsign starts with ``0``, ``1`` or ``Q`` and has a digit third (these
two characters are the channel id). Decoded here:

* callsign characters 2, 4, 5, 6 (base 36, 26, 26, 26) hold ``(sub_lon * 24 + sub_lat) * 1068 +
  alt_step``: the 5th and 6th locator characters and the altitude in 20 m steps (0..21340 m);
* locator characters 1-4 and the power index (of the 19 legal dBm values) hold
  ``(((temp * 40 + volt) * 42 + speed) * 2 + gps_valid) * 2 + sats_ok``: temperature
  (index - 50 °C), supply voltage (3.00 + 0.05 * ((index - 20) mod 40) V), speed (2 knot steps),
  GPS-valid and satellites-OK bits.

The telemetry message is paired with the regular message sent exactly 120 s earlier when only
one regular callsign was heard in that slot. A paired message with GPS valid becomes a GEODETIC
observation at the 6-character cell centre, altitude from the telemetry (sigma_v 12 m: the 20 m
step's spread plus GPS). Otherwise the regular message becomes GROUND_2D. Telemetry messages
count as ``wspr_telemetry_used`` or ``wspr_telemetry_unpaired``. Temperature, voltage and speed
are decoded (:func:`decode_u4b`) but not carried by the observation model.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from typing import IO

from stratowatch.ingest._emit import Emitter, FieldError, csv_header, parse_float, parse_time_utc
from stratowatch.ingest.base import IngestStats, ReadContext, Sink, register
from stratowatch.ingest.registry import EMPTY_REGISTRY, SensorRegistry
from stratowatch.model import MeasurementKind, Observation

POWERS_DBM = (0, 3, 7, 10, 13, 17, 20, 23, 27, 30, 33, 37, 40, 43, 47, 50, 53, 57, 60)
_TELEMETRY_CALL = re.compile(r"^[01Q][0-9A-Z][0-9][A-Z]{3}$")
_LOCATOR = re.compile(r"^[A-R]{2}[0-9]{2}([A-X]{2})?$")
_ARCHIVE_COLUMNS = [
    "spot_id",
    "timestamp",
    "reporter",
    "reporter_grid",
    "snr",
    "frequency",
    "call_sign",
    "grid",
    "power",
    "drift",
    "distance",
    "azimuth",
    "band",
    "version",
    "code",
]
SIGMA_V_M = 12.0
SLOT_S = 120.0


def locator_to_latlon(loc: str) -> tuple[float, float, float]:
    """Centre (lat, lon) of a 4- or 6-character Maidenhead locator and its sigma (m)."""
    s = loc.strip().upper()
    if not _LOCATOR.match(s):
        raise FieldError("grid", "not a Maidenhead locator", repr(loc))
    lon = (ord(s[0]) - 65) * 20.0 - 180.0 + int(s[2]) * 2.0
    lat = (ord(s[1]) - 65) * 10.0 - 90.0 + int(s[3]) * 1.0
    if len(s) == 6:
        dlon, dlat = 5.0 / 60.0, 2.5 / 60.0
        lon += (ord(s[4]) - 65) * dlon
        lat += (ord(s[5]) - 65) * dlat
    else:
        dlon, dlat = 2.0, 1.0
    lat_c, lon_c = lat + dlat / 2.0, lon + dlon / 2.0
    side_lat = dlat * 111_195.0
    side_lon = dlon * 111_195.0 * math.cos(math.radians(lat_c))
    return lat_c, lon_c, max(side_lat, side_lon) / math.sqrt(12.0)


@dataclass(frozen=True, slots=True)
class U4BTelemetry:
    """Decoded U4B basic telemetry (see the module docstring)."""

    subsquare: str
    alt_m: float
    temperature_c: int
    voltage_v: float
    speed_knots: int
    gps_valid: bool
    sats_ok: bool


def is_telemetry(call: str, grid: str) -> bool:
    return bool(_TELEMETRY_CALL.match(call.upper())) and len(grid.strip()) == 4


def decode_u4b(call: str, grid: str, power_dbm: int) -> U4BTelemetry:
    """Decode one U4B telemetry message (callsign, 4-character locator, power in dBm)."""
    c, g = call.upper(), grid.strip().upper()
    if not _TELEMETRY_CALL.match(c):
        raise FieldError("call_sign", "not a U4B telemetry callsign", repr(call))
    if not re.match(r"^[A-R]{2}[0-9]{2}$", g):
        raise FieldError("grid", "not a 4-character locator", repr(grid))
    if power_dbm not in POWERS_DBM:
        raise FieldError("power", "not a legal WSPR power", str(power_dbm))
    big = int(c[1], 36)
    for ch in c[3:6]:
        big = big * 26 + (ord(ch) - 65)
    alt_step, big = big % 1068, big // 1068
    sub_lat, sub_lon = big % 24, big // 24
    if sub_lon >= 24:
        raise FieldError("call_sign", "telemetry subsquare out of range", c)
    val = (((ord(g[0]) - 65) * 18 + (ord(g[1]) - 65)) * 10 + int(g[2])) * 10 + int(g[3])
    val = val * 19 + POWERS_DBM.index(power_dbm)
    sats_ok, val = val % 2, val // 2
    gps_valid, val = val % 2, val // 2
    speed, val = val % 42, val // 42
    volt, temp = val % 40, val // 40
    return U4BTelemetry(
        subsquare=chr(65 + sub_lon) + chr(65 + sub_lat),
        alt_m=alt_step * 20.0,
        temperature_c=temp - 50,
        voltage_v=round(3.0 + 0.05 * ((volt - 20) % 40), 2),
        speed_knots=speed * 2,
        gps_valid=bool(gps_valid),
        sats_ok=bool(sats_ok),
    )


@dataclass(frozen=True, slots=True)
class _Spot:
    pos: int
    raw: bytes
    time_s: float
    call: str
    grid: str
    power: int


class WsprReader:
    name = "wspr"

    def __init__(self, registry: SensorRegistry = EMPTY_REGISTRY) -> None:
        self.registry = registry

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        out = Emitter(sink, ctx.source)
        spots = self._spots(stream, out)
        sid, label, owner = self.registry.label(ctx.sensor_id if ctx.sensor_id != "default" else "wspr")
        # First spot of each transmission; the rest are duplicates.
        first: dict[tuple[float, str, str, int], _Spot] = {}
        for s in spots:
            first.setdefault((s.time_s, s.call, s.grid, s.power), s)
        regular_by_time: dict[float, list[_Spot]] = {}
        for s in first.values():
            if not is_telemetry(s.call, s.grid):
                regular_by_time.setdefault(s.time_s, []).append(s)
        telemetry_for: dict[int, tuple[_Spot, U4BTelemetry]] = {}
        telemetry_status: dict[int, str] = {}
        for s in first.values():
            if not is_telemetry(s.call, s.grid):
                continue
            try:
                tel = decode_u4b(s.call, s.grid, s.power)
            except FieldError as e:
                telemetry_status[s.pos] = f"quarantine:{e.field}:{e.reason}"
                continue
            regs = regular_by_time.get(s.time_s - SLOT_S, [])
            if len({r.call for r in regs}) == 1 and len(regs[0].grid) == 4:
                telemetry_for[regs[0].pos] = (s, tel)
                telemetry_status[s.pos] = "wspr_telemetry_used"
            else:
                telemetry_status[s.pos] = "wspr_telemetry_unpaired"
        firsts = {s.pos for s in first.values()}
        for s in spots:
            if s.pos not in firsts:
                out.message("wspr_duplicate_spot")
                continue
            status = telemetry_status.get(s.pos)
            if status is not None:
                if status.startswith("quarantine:"):
                    _, fld, reason = status.split(":", 2)
                    out.quarantine(s.pos, f"wspr: {fld}: {reason}", s.raw, fld)
                else:
                    out.message(status)
                continue
            try:
                lat, lon, sigma_h = locator_to_latlon(s.grid)
            except FieldError as e:
                out.quarantine(s.pos, f"wspr: {e.field}: {e.reason}", s.raw, e.field)
                continue
            pair = telemetry_for.get(s.pos)
            value: tuple[float, ...]
            sigma: tuple[float, ...]
            if pair is not None and pair[1].gps_valid:
                lat, lon, sigma_h = locator_to_latlon(s.grid + pair[1].subsquare)
                kind, value, sigma = (
                    MeasurementKind.GEODETIC,
                    (lat, lon, pair[1].alt_m),
                    (sigma_h, SIGMA_V_M),
                )
            else:
                kind, value, sigma = MeasurementKind.GROUND_2D, (lat, lon), (sigma_h,)
            out.observations(
                [
                    Observation(
                        s.time_s,
                        sid,
                        kind,
                        value,
                        sigma,
                        identity=f"wspr:{s.call}",
                        callsign=s.call,
                        releasable_to=label,
                        originator=owner,
                        source=out.ref(s.pos),
                    )
                ]
            )
        return out.stats

    def _spots(self, stream: IO[bytes], out: Emitter) -> list[_Spot]:
        spots: list[_Spot] = []
        columns: list[str] | None = None
        for number, raw_line in enumerate(stream, start=1):
            raw = raw_line.rstrip(b"\r\n")
            if not raw.strip() or raw.lstrip().startswith(b"#"):
                continue
            try:
                fields_ = next(csv.reader(io.StringIO(raw.decode("utf-8").lstrip("\ufeff"))), [])
            except UnicodeDecodeError:
                out.quarantine(number, "line is not UTF-8 text", raw)
                continue
            except csv.Error:
                out.quarantine(number, "line is not valid CSV", raw)
                continue
            if columns is None:
                names = [f.strip().lower() for f in fields_]
                if any(n in names for n in ("tx_sign", "call_sign", "callsign")):
                    columns = names
                    continue
                columns = _ARCHIVE_COLUMNS
            if len(fields_) != len(columns):
                out.quarantine(number, f"wspr: wrong number of fields (the layout has {len(columns)})", raw)
                continue
            row = dict(zip(columns, (f.strip() for f in fields_), strict=True))
            try:
                t = parse_time_utc(row.get("time") or row.get("timestamp"), "time")
                call = (row.get("tx_sign") or row.get("call_sign") or row.get("callsign") or "").upper()
                if not call:
                    raise FieldError("call_sign", "missing value")
                grid = (row.get("tx_loc") or row.get("grid") or "").strip()
                power = parse_float(row.get("power") or row.get("dbm"), "power", lo=-30.0, hi=70.0)
            except FieldError as e:
                out.quarantine(number, f"wspr: {e.field}: {e.reason}", raw, e.field)
                continue
            spots.append(_Spot(number, raw, t, call, grid[:4].upper() + grid[4:].upper(), round(power)))
        return spots


def sniff(head: bytes) -> bool:
    cols = csv_header(head)
    if "tx_sign" in cols and "tx_loc" in cols:
        return True
    if len(cols) == len(_ARCHIVE_COLUMNS) and cols[1].isdigit() and len(cols[1]) >= 9:
        return bool(_LOCATOR.match(cols[7].upper()) or cols[7] == "")
    return False


register(
    "wspr",
    WsprReader,
    sniff,
    "WSPR spots (wsprnet archive or wspr.live CSV), U4B telemetry decoded",
)
