"""SBS / BaseStation text (the port-30003 feed of dump1090, readsb, Virtual Radar Server).

One comma-separated record per line, 22 fields for ``MSG`` records::

    MSG,3,1,1,4CA2D6,1,2026/11/26,16:00:00.123,2026/11/26,16:00:00.125,,37000,,,51.5,-0.1,,,0,,0,0

Fields used: 1 transmission type, 4 ICAO address, 6/7 date and time generated (8/9 logged, used
when 6/7 are empty), 10 callsign, 11 altitude (ft), 12 ground speed (kt), 13 track (deg),
14 latitude, 15 longitude, 16 vertical rate (ft/min).

* ``MSG,3`` (airborne position) becomes a GEODETIC observation (GROUND_2D without altitude);
  ``MSG,2`` (surface position) a GROUND_2D one.
* ``MSG,1`` (identification) and ``MSG,4`` (velocity) are counted messages whose callsign and
  velocity are attached to later positions of the same aircraft (velocity when under 10 s old).
* ``MSG,5..8`` and the ``SEL, ID, AIR, STA, CLK`` records are counted messages.

Times are read as UTC (run receivers with ``TZ=UTC``). Lines without a date are anchored to
``ReadContext.date_utc`` (today, UTC, when absent) with midnight roll-over.

Parsing is done on the whole chunk at once with numpy: comma and newline positions, fixed-width
character matrices and a vectorised decimal parser; only the unusual lines take a slow path.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import IO

import numba
import numpy as np
import numpy.typing as npt

from stratowatch.ingest import _modes_core as core
from stratowatch.ingest.base import IngestStats, ReadContext, Sink, register
from stratowatch.ingest.modes import (
    CHUNK_BYTES,
    gunzip_head,
    maybe_gunzip,
    read_chunks,
    stream_failure,
)
from stratowatch.model import FloatArray, IdentityCodes, IntArray, ObservationBatch

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]

N_FIELDS = 22
_FIELD_NAMES = {
    1: "transmission_type",
    4: "icao",
    6: "date",
    7: "time",
    11: "altitude",
    12: "ground_speed",
    13: "track",
    14: "lat",
    15: "lon",
    16: "vertical_rate",
}
_OTHER_RECORDS = {b"SEL": "sbs_selection", b"ID": "sbs_id", b"AIR": "sbs_new_aircraft",
                  b"STA": "sbs_status", b"CLK": "sbs_clock"}  # fmt: skip
_MSG_KINDS = {1: "sbs_identification", 2: "sbs_surface_position", 3: "sbs_airborne_position",
              4: "sbs_velocity", 5: "sbs_altitude", 6: "sbs_squawk", 7: "sbs_air_to_air",
              8: "sbs_all_call"}  # fmt: skip
MESSAGE_NAMES: list[str] = sorted({*_OTHER_RECORDS.values(), *_MSG_KINDS.values(), "sbs_position_no_fix"})
_MSG_INDEX = {name: i for i, name in enumerate(MESSAGE_NAMES)}


_POW10 = 10.0 ** np.arange(23)

# columns of the kernel's outputs
_F_TOD, _F_ALT, _F_GS, _F_TRK, _F_LAT, _F_LON, _F_VR = range(7)
_I_NFIELDS, _I_TT, _I_ADDR, _I_DAYS, _I_BAD = range(5)
_NUMERIC_FIELDS = np.array([11, 12, 13, 14, 15, 16], dtype=np.int64)


@numba.njit(cache=True)
def _number(buf: U8, a: int, b: int) -> tuple[float, int]:  # pragma: no cover - jitted
    """Parse buf[a:b] as a plain decimal: (value, 0) ok, (nan, 1) empty, (nan, 2) bad."""
    if b <= a:
        return np.nan, 1
    neg = False
    if buf[a] == 45 or buf[a] == 43:
        neg = buf[a] == 45
        a += 1
    mant = 0
    ndig = 0
    frac = -1
    for p in range(a, b):
        c = buf[p]
        if 48 <= c <= 57:
            if ndig < 17:
                mant = mant * 10 + (c - 48)
                ndig += 1
                if frac >= 0:
                    frac += 1
            elif frac < 0:
                return np.nan, 2  # too many integer digits for a sensible field
        elif c == 46 and frac < 0:
            frac = 0
        else:
            return np.nan, 2
    if ndig == 0:
        return np.nan, 2
    v = mant / _POW10[max(frac, 0)]
    return (-v if neg else v), 0


@numba.njit(cache=True)
def _digits2(buf: U8, p: int) -> int:  # pragma: no cover - jitted
    a = buf[p] - 48
    b = buf[p + 1] - 48
    if a < 0 or a > 9 or b < 0 or b > 9:
        return -1
    return a * 10 + b


@numba.njit(cache=True)
def _days_from_civil(y: int, m: int, d: int) -> int:  # pragma: no cover - jitted
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@numba.njit(cache=True)
def _scan(
    buf: U8, starts: IntArray, ends: IntArray, out_f: FloatArray, out_i: IntArray
) -> None:  # pragma: no cover - jitted
    """One pass over every line: split the 22 fields and parse the ones stratowatch uses.

    ``out_i[:, _I_BAD]`` is the first bad field (0-based) or -1; ``out_i[:, _I_DAYS]`` is the
    date as days since 1970 or -1 when the record has no date.
    """
    fs = np.empty(N_FIELDS, dtype=np.int64)
    fe = np.empty(N_FIELDS, dtype=np.int64)
    for i in range(starts.shape[0]):
        s = starts[i]
        e = ends[i]
        k = 0
        fs[0] = s
        for p in range(s, e):
            if buf[p] == 44:
                if k < N_FIELDS - 1:
                    fe[k] = p
                    fs[k + 1] = p + 1
                k += 1
        out_i[i, _I_NFIELDS] = k + 1
        out_i[i, _I_BAD] = -1
        if k + 1 != N_FIELDS or fe[0] - fs[0] != 3:
            continue
        if buf[s] != 77 or buf[s + 1] != 83 or buf[s + 2] != 71:  # "MSG"
            continue
        fe[N_FIELDS - 1] = e
        bad = -1
        # transmission type
        tt = -1
        if fe[1] - fs[1] == 1 and 49 <= buf[fs[1]] <= 56:
            tt = buf[fs[1]] - 48
        elif bad < 0:
            bad = 1
        out_i[i, _I_TT] = tt
        # ICAO address
        addr = 0
        if fe[4] - fs[4] == 6:
            for p in range(fs[4], fe[4]):
                c = buf[p]
                if 48 <= c <= 57:
                    v = c - 48
                elif 65 <= c <= 70:
                    v = c - 55
                elif 97 <= c <= 102:
                    v = c - 87
                else:
                    v = -1
                if v < 0:
                    addr = -1
                    break
                addr = addr * 16 + v
        else:
            addr = -1
        if addr < 0 and bad < 0:
            bad = 4
        out_i[i, _I_ADDR] = addr
        # date and time: generated (6, 7), else logged (8, 9)
        d = 6
        if fe[7] == fs[7] and fe[9] > fs[9]:
            d = 8
        days = -1
        if fe[d] > fs[d]:
            a = fs[d]
            ok = fe[d] - a == 10
            if ok:
                y1 = _digits2(buf, a)
                y2 = _digits2(buf, a + 2)
                mo = _digits2(buf, a + 5)
                dd = _digits2(buf, a + 8)
                ok = y1 >= 0 and y2 >= 0 and 1 <= mo <= 12 and 1 <= dd <= 31
                if ok:
                    days = _days_from_civil(y1 * 100 + y2, mo, dd)
            if not ok and bad < 0:
                bad = d
        out_i[i, _I_DAYS] = days
        a = fs[d + 1]
        tod = np.nan
        if fe[d + 1] - a >= 8 and buf[a + 2] == 58 and buf[a + 5] == 58:
            hh = _digits2(buf, a)
            mm = _digits2(buf, a + 3)
            sec, st = _number(buf, a + 6, fe[d + 1])
            if 0 <= hh <= 23 and 0 <= mm <= 59 and st == 0 and 0.0 <= sec < 61.0:
                tod = hh * 3600.0 + mm * 60.0 + sec
        if np.isnan(tod) and bad < 0:
            bad = d + 1
        out_f[i, _F_TOD] = tod
        for j in range(6):
            f = _NUMERIC_FIELDS[j]
            v, st = _number(buf, fs[f], fe[f])
            out_f[i, _F_ALT + j] = v
            if st == 2 and bad < 0:
                bad = f
        out_i[i, _I_BAD] = bad


@dataclass(slots=True)
class _Clock:
    """Anchors time-of-day records to a date, rolling over at midnight."""

    day_s: float
    last_tod_s: float = -1.0


class SbsReader:
    """Reads SBS/BaseStation text (see module docstring)."""

    name = "sbs"

    def __init__(self, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.chunk_bytes = chunk_bytes
        self.state = core.GroupLatest()
        self.strings = core.StringTable()
        self.identities = IdentityCodes()
        self._clock: _Clock | None = None
        self.lines_read = 0  # line numbers continue across read() calls (datagrams, reconnects)

    def _anchor(self, ctx: ReadContext) -> _Clock:
        if self._clock is None:
            day = ctx.date_utc or dt.datetime.now(dt.UTC).date()
            if ctx.date_utc is None:
                log.info("%s: SBS records without a date are anchored to today (UTC)", ctx.source)
            midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            self._clock = _Clock(midnight.timestamp())
        return self._clock

    def decode(self, data: bytes, first_line: int, ctx: ReadContext) -> core.AdsbChunk:
        """Decode complete lines (``data`` ends at a line end or is the final line)."""
        if b"\r" in data:
            data = data.replace(b"\r", b"")
        if not data.endswith(b"\n"):
            data += b"\n"
        buf = np.frombuffer(data, dtype=np.uint8)
        nl = np.flatnonzero(buf == 10)
        line_start = np.concatenate([[0], nl[:-1] + 1])
        nonblank = nl > line_start
        line_no = np.arange(first_line, first_line + nl.size, dtype=np.int64)
        line_start, line_end, line_no = line_start[nonblank], nl[nonblank], line_no[nonblank]
        n = line_start.size
        out_f = np.empty((n, 7))
        out_i = np.zeros((n, 5), dtype=np.int64)
        _scan(buf, line_start, line_end, out_f, out_i)

        outcome = np.full(n, core.OUTCOME_QUARANTINE, dtype=np.int8)
        message = np.full(n, -1, dtype=np.int64)
        reasons: dict[int, tuple[str, str | None]] = {}
        tt = out_i[:, _I_TT]
        is_msg = (out_i[:, _I_NFIELDS] == N_FIELDS) & (tt > 0)
        bad_field = np.where(is_msg, out_i[:, _I_BAD], -1)

        # ---- rows that are not well-formed MSG records (rare): name what is wrong ----
        for i in np.flatnonzero(~is_msg | (bad_field >= 0)).tolist():
            line = data[line_start[i] : line_end[i]]
            fields = line.split(b",")
            head = fields[0].strip()
            k = int(bad_field[i])
            if head in _OTHER_RECORDS:
                outcome[i] = core.OUTCOME_MESSAGE
                message[i] = _MSG_INDEX[_OTHER_RECORDS[head]]
            elif head != b"MSG":
                name = head[:16].decode("ascii", "replace")
                reasons[i] = (f"unknown record type {name!r}", None)
            elif len(fields) != N_FIELDS:
                reasons[i] = (
                    f"expected {N_FIELDS} comma-separated fields, got {len(fields)}",
                    None,
                )
            else:
                k = max(k, 1) if k >= 0 else 1
                fld = _FIELD_NAMES.get(k, f"field{k + 1}")
                reasons[i] = (f"field {k + 1} ({fld}): not a valid value", fld)
        good = is_msg & (bad_field < 0)

        tod = out_f[:, _F_TOD]
        days = out_i[:, _I_DAYS]
        time_s = days * 86400.0 + tod
        undated = good & (days < 0)
        if undated.any():
            time_s[undated] = self._anchor_times(tod[undated], ctx)
        address = out_i[:, _I_ADDR]
        alt_ft = out_f[:, _F_ALT]
        gs = out_f[:, _F_GS]
        trk = out_f[:, _F_TRK]
        lat = out_f[:, _F_LAT]
        lon = out_f[:, _F_LON]
        vr = out_f[:, _F_VR]
        is_pos = good & ((tt == 2) | (tt == 3))
        off_earth = is_pos & ((np.abs(lat) > 90.0) | (np.abs(lon) > 180.0))
        for i in np.flatnonzero(off_earth).tolist():
            reasons[i] = ("field 15/16 (lat, lon): position off the Earth", "lat")
        good &= ~off_earth
        is_pos &= ~off_earth
        outcome[good] = core.OUTCOME_MESSAGE
        kinds = np.array([_MSG_INDEX[_MSG_KINDS[k]] if k in _MSG_KINDS else -1 for k in range(9)])
        message[good] = kinds[tt[good]]

        key = address * 2
        # identification: the callsign of any record that carries one (MSG,1 in practice)
        cs_code = np.full(n, -1.0)
        cs_rows = np.flatnonzero(good & (tt == 1))
        for i in cs_rows.tolist():
            f = data[line_start[i] : line_end[i]].split(b",", 11)[10].strip()
            cs_code[i] = self.strings.code(f.decode("ascii", "replace"))
        _, ident = self.state.latest("ident", key, time_s, cs_code >= 0, cs_code[:, None])
        # velocity from MSG,4 (or any record with speed and track)
        has_v = good & np.isfinite(gs) & np.isfinite(trk)
        trk_r = np.radians(trk)
        speed = gs * core.KT_TO_MPS
        venu = np.column_stack(
            [speed * np.sin(trk_r), speed * np.cos(trk_r), np.nan_to_num(vr) * core.FPM_TO_MPS]
        )
        vel_t, vel = self.state.latest("vel", key, time_s, has_v, venu)

        obs = is_pos & np.isfinite(lat) & np.isfinite(lon)
        message[is_pos & ~obs] = _MSG_INDEX["sbs_position_no_fix"]
        outcome[obs] = core.OUTCOME_OBS
        r = np.flatnonzero(obs)
        alt_m = np.where(tt[r] == 3, alt_ft[r] * core.FT_TO_M, np.nan)
        fresh = np.abs(time_s[r] - vel_t[r]) < core.VELOCITY_MAX_AGE_S
        quarantine = [
            (i, reason, fld, data[line_start[i] : line_end[i]])
            for i, (reason, fld) in sorted(reasons.items())
        ]
        outcome[[i for i, _, _, _ in quarantine]] = core.OUTCOME_QUARANTINE
        return core.AdsbChunk(
            unit_position=line_no,
            outcome=outcome,
            message=message,
            message_names=MESSAGE_NAMES,
            quarantine=quarantine,
            crc_failures=0,
            obs_unit=r,
            time_s=time_s[r],
            lat_deg=lat[r],
            lon_deg=lon[r],
            alt_m=alt_m,
            sigma_h_m=np.full(r.size, core.DEFAULT_SIGMA_H_M),
            sigma_v_m=np.full(r.size, core.DEFAULT_SIGMA_V_M),
            velocity_enu_mps=np.where(fresh[:, None], vel[r], np.nan),
            address=address[r],
            address_kind=np.zeros(r.size, dtype=np.int8),
            callsign=np.nan_to_num(ident[r, 0], nan=-1).astype(np.int64),
            category=np.full(r.size, -1, dtype=np.int64),
            strings=self.strings,
        )

    def _anchor_times(self, tod: FloatArray, ctx: ReadContext) -> FloatArray:
        """Times of day -> POSIX times: anchored date, +1 day whenever the clock goes back >12 h."""
        clock = self._anchor(ctx)
        prev = np.concatenate([[clock.last_tod_s], tod[:-1]])
        rolled = np.cumsum((prev >= 0) & (tod < prev - 43200.0))
        day_s = clock.day_s + rolled * 86400.0
        clock.day_s = float(day_s[-1])
        clock.last_tod_s = float(tod[-1])
        return day_s + tod

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        stats = IngestStats()
        rest = b""
        line_no = self.lines_read + 1
        stream = maybe_gunzip(stream)
        for data in read_chunks(stream, self.chunk_bytes):
            data = rest + data
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            rest = data[cut + 1 :]
            chunk = self.decode(data[: cut + 1], line_no, ctx)
            line_no += data.count(b"\n", 0, cut + 1)
            core.emit(chunk, ctx, sink, stats)
        if rest.strip():
            core.emit(self.decode(rest, line_no, ctx), ctx, sink, stats)
            line_no += 1
        if getattr(stream, "error", None):
            stream_failure(stream, line_no, ctx, sink, stats)
            line_no += 1
        self.lines_read = line_no - 1
        return stats

    def read_batch(self, data: bytes, ctx: ReadContext) -> tuple[ObservationBatch, core.AdsbChunk]:
        """Columnar fast path: a whole buffer to an ObservationBatch (no per-row objects)."""
        chunk = self.decode(data, 1, ctx)
        return core.to_batch(chunk, ctx, self.identities), chunk


def sniff(head: bytes) -> bool:
    head = gunzip_head(head)
    first = head.lstrip().split(b"\n", 1)[0]
    parts = first.split(b",")
    return parts[0] in {b"MSG", *_OTHER_RECORDS} and len(parts) >= 5


register("sbs", SbsReader, sniff, "SBS/BaseStation text (port 30003 of dump1090/readsb)")
