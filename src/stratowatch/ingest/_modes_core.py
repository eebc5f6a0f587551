"""Vectorised Mode S / ADS-B decoding shared by the modes, beast and sbs readers.

Everything here works on whole chunks of frames at once (numpy arrays), never one message at a
time: the CRC-24 check runs over an ``(n, 14)`` byte matrix with a 256-entry table, fields are
cut out of the 56-bit ME field held as ``uint64``, CPR positions are solved for all frame pairs
with array arithmetic, and "latest value of this aircraft so far" (the other CPR parity, the
latest velocity, the latest identification) is a grouped forward fill
(:class:`GroupLatest`) that carries its state from one chunk to the next.

The layout of the fields follows ICAO Annex 10 Vol IV / RTCA DO-260B; pyModeS is the reference
decoder the tests compare against.

The result of a chunk is an :class:`AdsbChunk`: the outcome of every input unit (an observation,
a counted message kind, or a quarantine record) plus the observation columns. It converts to an
:class:`~stratowatch.model.ObservationBatch` (the columnar fast path) or is emitted row by row
into a :class:`~stratowatch.ingest.base.Sink` (:func:`emit`).
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from stratowatch.ingest.base import IngestStats, QuarantineRecord, ReadContext, Sink
from stratowatch.model import (
    FloatArray,
    IdentityCodes,
    IntArray,
    MeasurementKind,
    Observation,
    ObservationBatch,
    SourceRef,
)

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
BoolArray = npt.NDArray[np.bool_]

FT_TO_M = 0.3048
KT_TO_MPS = 1852.0 / 3600.0
FPM_TO_MPS = FT_TO_M / 60.0

#: Default 1-sigma accuracy of an ADS-B position when NACp is unknown.
DEFAULT_SIGMA_H_M = 50.0
DEFAULT_SIGMA_V_M = 30.0
#: A velocity older than this is not attached to a position.
VELOCITY_MAX_AGE_S = 10.0
#: The two CPR frames of a global decode must be at most this far apart.
CPR_PAIR_MAX_AGE_S = 10.0
#: A previous position may serve as the reference of a local CPR decode for this long.
CPR_LOCAL_REF_MAX_AGE_S = 60.0
#: A previous position may serve as the reference of a surface CPR decode for this long.
SURFACE_REF_MAX_AGE_S = 600.0
#: Per-ICAO state older than this (relative to the newest frame) is dropped.
STATE_MAX_AGE_S = 3600.0

#: 1-sigma velocity accuracy when the source states none (SBS, readsb, NACv 0)
DEFAULT_VELOCITY_SIGMA_MPS = 5.0
# NACv (or v0 NUCv) 1..4 -> 95 % horizontal velocity bound 10, 3, 1, 0.3 m/s, as 1-sigma
_NACV_SIGMA_MPS = np.array([DEFAULT_VELOCITY_SIGMA_MPS, 10.0, 3.0, 1.0, 0.3]) / 2.0
# NACp -> 95 % horizontal position bound (EPU, metres); DO-260B table 2-69.
_NACP_EPU_M = np.array(
    [np.nan, 18520.0, 7408.0, 3704.0, 1852.0, 926.0, 555.6, 185.2, 92.6, 30.0, 10.0, 3.0,
     np.nan, np.nan, np.nan, np.nan]
)  # fmt: skip
# 95 % radial (2-D) bound to 1-sigma per axis: chi-square(2) 95 % radius is 2.45 sigma.
_EPU95_TO_SIGMA = 1.0 / 2.4477

OUTCOME_OBS = 0
OUTCOME_MESSAGE = 1
OUTCOME_QUARANTINE = 2

_CALLSIGN_CHARS = "#ABCDEFGHIJKLMNOPQRSTUVWXYZ##### ###############0123456789######"


# --------------------------------------------------------------------------------------------
# CRC-24
# --------------------------------------------------------------------------------------------


def _crc_table() -> npt.NDArray[np.uint32]:
    poly = 0xFFF409
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):  # once, at import
        c = i << 16
        for _ in range(8):
            c = ((c << 1) ^ poly) if c & 0x800000 else (c << 1)
        table[i] = c & 0xFFFFFF
    return table


CRC_TABLE = _crc_table()


def crc_remainders(frames: U8, long: BoolArray) -> npt.NDArray[np.uint32]:
    """CRC-24 remainder of each frame: 0 for a good DF17/18, the address for DF0/4/5/16/20/21.

    ``frames`` is ``(n, 14)`` bytes; short (56-bit) frames use only their first 7 bytes.
    """
    n = frames.shape[0]
    crc = np.zeros(n, dtype=np.uint32)
    crc_short = crc
    for i in range(11):
        if i == 4:
            crc_short = crc.copy()
        idx = ((crc >> 16) ^ frames[:, i]) & 0xFF
        crc = ((crc << 8) & 0xFFFFFF) ^ CRC_TABLE[idx]
    par_long = (
        (frames[:, 11].astype(np.uint32) << 16) | (frames[:, 12].astype(np.uint32) << 8) | frames[:, 13]
    )
    par_short = (frames[:, 4].astype(np.uint32) << 16) | (frames[:, 5].astype(np.uint32) << 8) | frames[:, 6]
    return np.where(long, crc ^ par_long, crc_short ^ par_short).astype(np.uint32)


# --------------------------------------------------------------------------------------------
# Hex -> byte matrix
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FrameMatrix:
    """Frames as an ``(n, 14)`` byte matrix; ``ok`` false where the hex was unusable."""

    frames: U8
    long: BoolArray
    ok: BoolArray
    reason: list[str | None]


def hex_to_frames(hexes: Sequence[bytes]) -> FrameMatrix:
    """Convert hex frames (14 or 28 hex digits) to a byte matrix, in bulk."""
    n = len(hexes)
    lengths = np.fromiter((len(h) for h in hexes), dtype=np.int64, count=n)
    frames = np.zeros((n, 14), dtype=np.uint8)
    long = lengths == 28
    ok = long | (lengths == 14)
    reason: list[str | None] = [None] * n
    for want, sel in ((28, long), (14, lengths == 14)):
        rows = np.flatnonzero(sel)
        if rows.size == 0:
            continue
        joined = b"".join([hexes[i] for i in rows.tolist()])
        try:
            data = np.frombuffer(binascii.unhexlify(joined), dtype=np.uint8)
            frames[rows, : want // 2] = data.reshape(-1, want // 2)
        except (binascii.Error, ValueError):
            for i in rows.tolist():  # rare: find the bad rows one by one
                try:
                    frames[i, : want // 2] = np.frombuffer(binascii.unhexlify(hexes[i]), np.uint8)
                except (binascii.Error, ValueError):
                    ok[i] = False
                    reason[i] = "not hexadecimal"
    for i in np.flatnonzero(~ok & (lengths != 14) & (lengths != 28)).tolist():
        reason[i] = f"frame has {lengths[i]} hex digits, expected 14 or 28"
    return FrameMatrix(frames, long, ok, reason)


def bytes_to_frames(payloads: Sequence[bytes]) -> FrameMatrix:
    """Binary frames (7 or 14 bytes each) to a byte matrix."""
    n = len(payloads)
    frames = np.zeros((n, 14), dtype=np.uint8)
    lengths = np.fromiter((len(p) for p in payloads), dtype=np.int64, count=n)
    long = lengths == 14
    short = lengths == 7
    if long.any():
        rows = np.flatnonzero(long)
        frames[rows] = np.frombuffer(b"".join([payloads[i] for i in rows.tolist()]), np.uint8).reshape(-1, 14)
    if short.any():
        rows = np.flatnonzero(short)
        frames[rows, :7] = np.frombuffer(b"".join([payloads[i] for i in rows.tolist()]), np.uint8).reshape(
            -1, 7
        )
    ok = long | short
    reason: list[str | None] = [
        None if o else f"frame has {length} bytes, expected 7 or 14"
        for o, length in zip(ok.tolist(), lengths.tolist(), strict=True)
    ]
    return FrameMatrix(frames, long, ok, reason)


# --------------------------------------------------------------------------------------------
# Field extraction
# --------------------------------------------------------------------------------------------


def _me(frames: U8) -> U64:
    """The 56-bit ME field (bytes 4..10) of each long frame as uint64."""
    me = np.zeros(frames.shape[0], dtype=np.uint64)
    for i in range(4, 11):
        me = (me << np.uint64(8)) | frames[:, i].astype(np.uint64)
    return me


def me_bits(me: U64, first: int, last: int) -> IntArray:
    """ME bits ``first..last`` (1-based, inclusive, as numbered in DO-260B) as int64."""
    width = last - first + 1
    return ((me >> np.uint64(56 - last)) & np.uint64((1 << width) - 1)).astype(np.int64)


def gillham_altitude_ft(code12: IntArray) -> FloatArray:
    """100-ft Gillham altitude from the 12-bit ADS-B altitude field (Q bit = 0); NaN if invalid.

    The 12 bits are C1 A1 C2 A2 C4 A4 B1 Q B2 D2 B4 D4 (D1 is not transmitted).
    """

    def b(k: int) -> IntArray:
        return (code12 >> (11 - k)) & 1

    c1, a1, c2, a2, c4, a4, b1, _q, b2, d2, b4, d4 = (b(k) for k in range(12))
    gray500 = (d2 << 7) | (d4 << 6) | (a1 << 5) | (a2 << 4) | (a4 << 3) | (b1 << 2) | (b2 << 1) | b4
    gray100 = (c1 << 2) | (c2 << 1) | c4
    n500 = _gray_to_int(gray500)
    n100 = _gray_to_int(gray100)
    bad = (n100 == 0) | (n100 == 5) | (n100 == 6)
    n100 = np.where(n100 == 7, 5, n100)
    n100 = np.where(n500 % 2 == 1, 6 - n100, n100)
    alt = (n500 * 500 + n100 * 100 - 1300).astype(np.float64)
    return np.where(bad, np.nan, alt)


def _gray_to_int(g: IntArray) -> IntArray:
    n = g.copy()
    shift = g >> 1
    while np.any(shift):
        n ^= shift
        shift = shift >> 1
    return n


def altitude12_ft(code12: IntArray) -> FloatArray:
    """Barometric altitude (ft) from the 12-bit ADS-B altitude field; NaN when unavailable."""
    q = (code12 >> 4) & 1
    n = ((code12 >> 5) << 4) | (code12 & 0xF)
    alt = np.where(q == 1, n * 25.0 - 1000.0, np.nan)
    if np.any(q == 0):
        alt = np.where(q == 0, gillham_altitude_ft(code12), alt)
    return np.where(code12 == 0, np.nan, alt)


def callsigns(me: U64) -> list[str]:
    """The 8-character callsign of each identification message (trailing spaces removed)."""
    codes = np.stack([me_bits(me, 9 + 6 * k, 14 + 6 * k) for k in range(8)], axis=1)
    chars = np.frombuffer(_CALLSIGN_CHARS.encode(), dtype="S1")[codes]  # (n, 8)
    joined = chars.view("S8").reshape(-1)
    return [s.decode().replace("#", "").strip() for s in joined.tolist()]


# --------------------------------------------------------------------------------------------
# CPR
# --------------------------------------------------------------------------------------------


def _nl_table() -> FloatArray:
    nz = 15
    nl = np.arange(2, 60, dtype=np.float64)
    a = 1.0 - np.cos(np.pi / (2 * nz))
    b = 1.0 - np.cos(2 * np.pi / nl)
    return np.degrees(np.arccos(np.sqrt(a / b)))[::-1]  # ascending transition latitudes


_NL_LAT = _nl_table()


def cpr_nl(lat_deg: FloatArray) -> IntArray:
    """Number of longitude zones NL(lat) (1..59) for each latitude."""
    k = np.searchsorted(_NL_LAT, np.abs(lat_deg), side="right")
    return (59 - k).astype(np.int64)


def cpr_global(
    lat_even: FloatArray,
    lon_even: FloatArray,
    lat_odd: FloatArray,
    lon_odd: FloatArray,
    odd_latest: BoolArray,
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Airborne CPR global decode of even/odd pairs (CPR values as fractions of 2**17).

    Returns lat, lon of the newest frame's parity and a validity mask (false where the two
    frames fall in different latitude zones).
    """
    j = np.floor(59.0 * lat_even - 60.0 * lat_odd + 0.5)
    rlat0 = 6.0 * (np.mod(j, 60.0) + lat_even)
    rlat1 = (360.0 / 59.0) * (np.mod(j, 59.0) + lat_odd)
    rlat0 = np.where(rlat0 >= 270.0, rlat0 - 360.0, rlat0)
    rlat1 = np.where(rlat1 >= 270.0, rlat1 - 360.0, rlat1)
    nl0 = cpr_nl(rlat0)
    valid = (nl0 == cpr_nl(rlat1)) & (np.abs(rlat0) <= 90.0) & (np.abs(rlat1) <= 90.0)
    lat = np.where(odd_latest, rlat1, rlat0)
    ni = np.maximum(np.where(odd_latest, nl0 - 1, nl0), 1)
    m = np.floor(lon_even * (nl0 - 1) - lon_odd * nl0 + 0.5)
    xz = np.where(odd_latest, lon_odd, lon_even)
    lon = (360.0 / ni) * (np.mod(m, ni) + xz)
    lon = np.where(lon >= 180.0, lon - 360.0, lon)
    return lat, lon, valid


def cpr_local(
    lat_cpr: FloatArray,
    lon_cpr: FloatArray,
    odd: BoolArray,
    ref_lat: FloatArray,
    ref_lon: FloatArray,
    span_deg: float = 360.0,
) -> tuple[FloatArray, FloatArray]:
    """CPR local decode of single frames against a reference position.

    ``span_deg`` is 360 for airborne frames (reference within 180 NM) and 90 for surface frames
    (reference within 45 NM).
    """
    i = odd.astype(np.float64)
    dlat = span_deg / (60.0 - i)
    j = np.floor(ref_lat / dlat) + np.floor(0.5 + np.mod(ref_lat, dlat) / dlat - lat_cpr)
    lat = dlat * (j + lat_cpr)
    ni = np.maximum(cpr_nl(lat) - odd.astype(np.int64), 1)
    dlon = span_deg / ni
    m = np.floor(ref_lon / dlon) + np.floor(0.5 + np.mod(ref_lon, dlon) / dlon - lon_cpr)
    lon = dlon * (m + lon_cpr)
    lon = np.where(lon >= 180.0, lon - 360.0, lon)
    return lat, lon


# --------------------------------------------------------------------------------------------
# Per-aircraft "latest so far", across chunks
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Column:
    keys: IntArray
    time_s: FloatArray
    values: FloatArray  # (k, width)


class GroupLatest:
    """For each row, the latest earlier-or-same row of the same group (aircraft) where a mask
    holds, across chunk boundaries: a grouped forward fill, carried in sorted key arrays."""

    def __init__(self) -> None:
        self._cols: dict[str, _Column] = {}

    def latest(
        self, name: str, group: IntArray, time_s: FloatArray, mask: BoolArray, values: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """(time, values) of the latest masked row per row of the same group; NaN time if none.

        ``values`` is ``(n, width)``. Updates the carried state with this chunk's rows.
        """
        n = group.shape[0]
        width = values.shape[1]
        col = self._cols.get(name)
        if col is None:
            col = _Column(np.empty(0, np.int64), np.empty(0), np.empty((0, width)))
        order = np.argsort(group, kind="stable")
        g_sorted = group[order]
        cand = np.where(mask[order], np.arange(n), -1)
        acc = np.maximum.accumulate(cand) if n else cand
        found = acc >= 0
        found[found] = g_sorted[acc[found]] == g_sorted[found]
        src = np.full(n, -1, dtype=np.int64)
        src[order] = np.where(found, order[np.maximum(acc, 0)], -1)
        has = src >= 0
        out_t = np.where(has, time_s[np.maximum(src, 0)], np.nan)
        out_v = np.where(has[:, None], values[np.maximum(src, 0)], np.nan)
        if col.keys.size and not has.all():
            miss = np.flatnonzero(~has)
            k = np.searchsorted(col.keys, group[miss])
            k = np.minimum(k, col.keys.size - 1)
            hit = col.keys[k] == group[miss]
            out_t[miss[hit]] = col.time_s[k[hit]]
            out_v[miss[hit]] = col.values[k[hit]]
        # carry: the last masked row of each group in this chunk replaces the stored one
        rows = np.flatnonzero(mask)
        if rows.size:
            g = group[rows]
            o = np.argsort(g, kind="stable")
            last = np.ones(o.size, dtype=bool)
            last[:-1] = g[o][1:] != g[o][:-1]
            new_rows = rows[o[last]]
            new_keys = group[new_rows]
            keep = ~np.isin(col.keys, new_keys)
            keys = np.concatenate([col.keys[keep], new_keys])
            times = np.concatenate([col.time_s[keep], time_s[new_rows]])
            vals = np.concatenate([col.values[keep], values[new_rows]])
            newest = float(np.nanmax(time_s[rows])) if np.isfinite(time_s[rows]).any() else 0.0
            fresh = ~(times < newest - STATE_MAX_AGE_S)
            s = np.argsort(keys[fresh], kind="stable")
            col = _Column(keys[fresh][s], times[fresh][s], vals[fresh][s])
        self._cols[name] = col
        return out_t, out_v


class StringTable:
    """Interns strings (callsigns, categories) as int codes so they travel in arrays."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self.names: list[str] = []

    def code(self, s: str | None) -> int:
        if not s:
            return -1
        c = self._codes.get(s)
        if c is None:
            c = len(self.names)
            self._codes[s] = c
            self.names.append(s)
        return c

    def codes(self, items: Sequence[str | None]) -> IntArray:
        return np.fromiter((self.code(s) for s in items), dtype=np.int64, count=len(items))

    def name(self, code: int) -> str | None:
        return self.names[code] if code >= 0 else None


# --------------------------------------------------------------------------------------------
# Chunk results
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class AdsbChunk:
    """Outcome of every input unit of one chunk, and the observation columns.

    ``unit_position`` is the source position (line or frame index) of each unit; ``outcome`` is
    OUTCOME_OBS / OUTCOME_MESSAGE / OUTCOME_QUARANTINE; ``message`` indexes ``message_names``
    for message units. Observation columns are aligned with ``obs_unit`` (the unit index).
    """

    unit_position: IntArray
    outcome: npt.NDArray[np.int8]
    message: IntArray
    message_names: list[str]
    quarantine: list[tuple[int, str, str | None, bytes]]
    crc_failures: int
    obs_unit: IntArray
    time_s: FloatArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    alt_m: FloatArray  # NaN: no altitude (GROUND_2D)
    sigma_h_m: FloatArray
    sigma_v_m: FloatArray
    velocity_enu_mps: FloatArray  # (m, 3), NaN where unknown
    address: IntArray  # 24-bit address
    address_kind: npt.NDArray[np.int8]  # 0: ICAO, 1: other (non-ICAO / TIS-B)
    callsign: IntArray  # StringTable codes, -1 none
    category: IntArray
    strings: StringTable = field(default_factory=StringTable)
    #: 1-sigma velocity accuracy per observation row (NaN: DEFAULT_VELOCITY_SIGMA_MPS)
    velocity_sigma_mps: FloatArray | None = None

    def velocity_sigma(self) -> FloatArray:
        """Per-row velocity sigma; NaN where the row has no velocity."""
        base = (
            np.full(self.n_obs, DEFAULT_VELOCITY_SIGMA_MPS)
            if self.velocity_sigma_mps is None
            else np.where(
                np.isnan(self.velocity_sigma_mps), DEFAULT_VELOCITY_SIGMA_MPS, self.velocity_sigma_mps
            )
        )
        return np.where(np.isnan(self.velocity_enu_mps[:, 0]), np.nan, base)

    @property
    def n_obs(self) -> int:
        return int(self.obs_unit.shape[0])


def identity_strings(address: IntArray, address_kind: npt.NDArray[np.int8]) -> list[str]:
    """``icao:XXXXXX`` for ICAO addresses, ``anon:XXXXXX`` for non-ICAO ones."""
    return [
        f"{'icao' if k == 0 else 'anon'}:{a:06X}"
        for a, k in zip(address.tolist(), address_kind.tolist(), strict=True)
    ]


def to_batch(chunk: AdsbChunk, ctx: ReadContext, identities: IdentityCodes) -> ObservationBatch:
    """The chunk's observations as a columnar ObservationBatch (no per-row objects)."""
    m = chunk.n_obs
    if m == 0:
        return ObservationBatch.empty()
    kind = np.where(np.isnan(chunk.alt_m), MeasurementKind.GROUND_2D, MeasurementKind.GEODETIC)
    value = np.column_stack([chunk.lat_deg, chunk.lon_deg, chunk.alt_m])
    sigma = np.column_stack(
        [chunk.sigma_h_m, np.where(kind == MeasurementKind.GEODETIC, chunk.sigma_v_m, np.nan)]
    )
    ukey, inverse = np.unique(chunk.address * 2 + chunk.address_kind, return_inverse=True)
    names = identity_strings(ukey >> 1, (ukey & 1).astype(np.int8))
    codes = identities.codes(names)[inverse.reshape(-1)]
    batch = ObservationBatch.from_arrays(
        chunk.time_s,
        kind.astype(np.int8),
        value,
        sigma,
        sensor_ids=[ctx.sensor_id],
        velocity_enu_mps=chunk.velocity_enu_mps,
        velocity_sigma_mps=chunk.velocity_sigma(),
        identity=codes,
        obs_index=chunk.unit_position[chunk.obs_unit],
    )
    batch.category = [chunk.strings.name(c) for c in chunk.category.tolist()]
    return batch


def emit(chunk: AdsbChunk, ctx: ReadContext, sink: Sink, stats: IngestStats) -> None:
    """Hand every unit of the chunk to the sink (one Observation per observation row)."""
    n = chunk.unit_position.shape[0]
    stats.units += n
    stats.crc_failures += chunk.crc_failures
    if n == 0:
        return
    msg_rows = np.flatnonzero(chunk.outcome == OUTCOME_MESSAGE)
    if msg_rows.size:
        counts = np.bincount(chunk.message[msg_rows], minlength=len(chunk.message_names))
        for k in np.flatnonzero(counts).tolist():
            name = chunk.message_names[k]
            stats.messages[name] += int(counts[k])
            for _ in range(int(counts[k])):
                sink.message(name)
    for unit, reason, fld, raw in chunk.quarantine:
        stats.quarantined[reason] += 1
        sink.quarantine(
            QuarantineRecord(SourceRef(ctx.source, int(chunk.unit_position[unit])), reason, raw, fld)
        )
    m = chunk.n_obs
    if m == 0:
        return
    stats.observations += m
    stats.units_with_observations += int(np.unique(chunk.obs_unit).size)
    ids = identity_strings(chunk.address, chunk.address_kind)
    pos = chunk.unit_position[chunk.obs_unit].tolist()
    names = chunk.strings.names
    geo = MeasurementKind.GEODETIC
    g2d = MeasurementKind.GROUND_2D
    sensor = ctx.sensor_id
    source = ctx.source
    rows = zip(
        chunk.time_s.tolist(),
        chunk.lat_deg.tolist(),
        chunk.lon_deg.tolist(),
        chunk.alt_m.tolist(),
        chunk.sigma_h_m.tolist(),
        chunk.sigma_v_m.tolist(),
        chunk.velocity_enu_mps.tolist(),
        ids,
        chunk.callsign.tolist(),
        chunk.category.tolist(),
        pos,
        chunk.velocity_sigma().tolist(),
        strict=True,
    )
    for t, lat, lon, alt, sh, sv, vel, ident, cs, cat, p, vsig in rows:
        has_alt = not math.isnan(alt)
        has_vel = not math.isnan(vel[0])
        sink.observation(
            Observation(
                time_s=t,
                sensor_id=sensor,
                kind=geo if has_alt else g2d,
                value=(lat, lon, alt) if has_alt else (lat, lon),
                sigma=(sh, sv) if has_alt else (sh,),
                velocity_enu_mps=(vel[0], vel[1], vel[2]) if has_vel else None,
                velocity_sigma_mps=vsig,
                identity=ident,
                callsign=names[cs] if cs >= 0 else None,
                category=names[cat] if cat >= 0 else None,
                source=SourceRef(source, p),
            )
        )


def nacp_sigma_h_m(nacp: FloatArray) -> FloatArray:
    """1-sigma horizontal accuracy from NACp (NaN NACp or NACp 0 -> the default 50 m)."""
    idx = np.where(np.isfinite(nacp), nacp, 0).astype(np.int64) & 0xF
    epu = _NACP_EPU_M[idx]
    return np.where(np.isfinite(epu), np.maximum(epu * _EPU95_TO_SIGMA, 1.0), DEFAULT_SIGMA_H_M)


# --------------------------------------------------------------------------------------------
# Mode S frames -> chunk
# --------------------------------------------------------------------------------------------

_TC_MESSAGE = {
    0: "adsb_no_position",
    1: "adsb_identification",
    2: "adsb_identification",
    3: "adsb_identification",
    4: "adsb_identification",
    5: "adsb_surface_position",
    6: "adsb_surface_position",
    7: "adsb_surface_position",
    8: "adsb_surface_position",
    19: "adsb_velocity",
    23: "adsb_test",
    24: "adsb_surface_system_status",
    25: "adsb_reserved",
    26: "adsb_reserved",
    27: "adsb_reserved",
    28: "adsb_aircraft_status",
    29: "adsb_target_state",
    30: "adsb_reserved",
    31: "adsb_operational_status",
}
_DF_MESSAGE = {
    0: "modes_acas_short",
    4: "modes_altitude_reply",
    5: "modes_identity_reply",
    11: "modes_all_call_reply",
    16: "modes_acas_long",
    19: "modes_military_es",
    20: "modes_commb_altitude",
    21: "modes_commb_identity",
    22: "modes_military",
    24: "modes_comm_d",
}
_LONG_DF = np.zeros(32, dtype=bool)
_LONG_DF[[16, 17, 18, 19, 20, 21, 22, 24]] = True
_KNOWN_DF = np.zeros(32, dtype=bool)
_KNOWN_DF[[0, 4, 5, 11, 16, 17, 18, 19, 20, 21, 22, 24]] = True

MESSAGE_NAMES: list[str] = sorted(
    {*_TC_MESSAGE.values(), *_DF_MESSAGE.values(), "adsb_position_pending", "adsb_df18_other"}
)
_MSG_INDEX = {name: i for i, name in enumerate(MESSAGE_NAMES)}
_TC_MSG_CODE = np.array([_MSG_INDEX.get(_TC_MESSAGE.get(tc, ""), -1) for tc in range(32)], dtype=np.int64)
_DF_MSG_CODE = np.array([_MSG_INDEX.get(_DF_MESSAGE.get(df, ""), -1) for df in range(32)], dtype=np.int64)


class ModeSDecoder:
    """Decodes chunks of Mode S frames into :class:`AdsbChunk` results, keeping per-aircraft
    state (CPR frames, last position, velocity, identification, NACp) between chunks."""

    def __init__(self, reference_lat_deg: float | None = None, reference_lon_deg: float | None = None):
        self.state = GroupLatest()
        self.strings = StringTable()
        self.reference = (
            (reference_lat_deg, reference_lon_deg)
            if reference_lat_deg is not None and reference_lon_deg is not None
            else None
        )

    def decode(
        self,
        fm: FrameMatrix,
        time_s: FloatArray,
        unit_position: IntArray,
        raw: Sequence[bytes],
    ) -> AdsbChunk:
        """Decode one chunk. ``raw[i]`` is the unit's original bytes (kept for quarantine)."""
        frames = fm.frames
        n = frames.shape[0]
        outcome = np.full(n, OUTCOME_MESSAGE, dtype=np.int8)
        message = np.full(n, -1, dtype=np.int64)
        reason: list[str | None] = list(fm.reason)

        df = (frames[:, 0] >> 3).astype(np.int64)
        df = np.where(df >= 24, 24, df)
        ok = fm.ok.copy()
        long = fm.long.copy()
        # a 112-bit frame whose DF is a 56-bit format: receivers pad these; use the first 56 bits
        long &= _LONG_DF[df] | ~ok
        bad_df = ok & ~_KNOWN_DF[df]
        for i in np.flatnonzero(bad_df).tolist():
            reason[i] = f"unknown downlink format DF{df[i]}"
        ok &= ~bad_df
        bad_len = ok & (_LONG_DF[df] != long)
        for i in np.flatnonzero(bad_len).tolist():
            reason[i] = f"DF{df[i]} frame must be {112 if _LONG_DF[df[i]] else 56} bits"
        ok &= ~bad_len
        no_time = ok & ~np.isfinite(time_s)
        for i in np.flatnonzero(no_time).tolist():
            reason[i] = "frame has no timestamp"
        ok &= ~no_time

        crc = crc_remainders(frames, long)
        es = ok & ((df == 17) | (df == 18))
        crc_bad = es & (crc != 0)
        crc_bad |= ok & (df == 11) & ((crc & 0xFFFF80) != 0)
        for i in np.flatnonzero(crc_bad).tolist():
            reason[i] = "CRC-24 check failed"
        ok &= ~crc_bad
        es &= ok
        message[ok] = _DF_MSG_CODE[df[ok]]

        cf = (frames[:, 0] & 7).astype(np.int64)
        df18_other = es & (df == 18) & np.isin(cf, [3, 4, 7])
        message[df18_other] = _MSG_INDEX["adsb_df18_other"]
        es &= ~df18_other
        address = (frames[:, 1].astype(np.int64) << 16) | (frames[:, 2].astype(np.int64) << 8) | frames[:, 3]
        address_kind = ((df == 18) & np.isin(cf, [1, 5])).astype(np.int8)
        key = address * 2 + address_kind
        me = _me(frames)
        tc = me_bits(me, 1, 5)
        message[es] = _TC_MSG_CODE[tc[es]]

        # identification: callsign + emitter category
        is_ident = es & (tc >= 1) & (tc <= 4)
        cs_code = np.full(n, -1.0)
        cat_code = np.full(n, -1.0)
        if is_ident.any():
            rows = np.flatnonzero(is_ident)
            cs = callsigns(me[rows])
            cat = me_bits(me[rows], 6, 8)
            sets = np.array(["", "D", "C", "B", "A"])[tc[rows]]
            cats = [f"{s}{c}" if c else None for s, c in zip(sets.tolist(), cat.tolist(), strict=True)]
            cs_code[rows] = self.strings.codes(cs)
            cat_code[rows] = self.strings.codes(cats)
        _, ident = self.state.latest("ident", key, time_s, is_ident, np.column_stack([cs_code, cat_code]))

        # operational status: NACp (airborne subtype 0)
        is_opstat = es & (tc == 31) & (me_bits(me, 6, 8) == 0)
        nacp_t, nacp = self.state.latest(
            "nacp", key, time_s, is_opstat, me_bits(me, 45, 48).astype(np.float64)[:, None]
        )

        # airborne velocity (subtypes 1/2: ground speed east/north)
        st = me_bits(me, 6, 8)
        is_vel = es & (tc == 19) & ((st == 1) | (st == 2))
        v_ew = me_bits(me, 15, 24) - 1
        v_ns = me_bits(me, 26, 35) - 1
        vr = me_bits(me, 38, 46) - 1
        scale = np.where(st == 2, 4.0, 1.0) * KT_TO_MPS
        ve = np.where(me_bits(me, 14, 14) == 1, -v_ew, v_ew) * scale
        vn = np.where(me_bits(me, 25, 25) == 1, -v_ns, v_ns) * scale
        vu = np.where(me_bits(me, 37, 37) == 1, -vr, vr) * 64.0 * FPM_TO_MPS
        is_vel &= (v_ew >= 0) & (v_ns >= 0) & (vr >= 0)
        nacv = me_bits(me, 11, 13).astype(np.float64)
        vel_t, vel = self.state.latest("vel", key, time_s, is_vel, np.column_stack([ve, vn, vu, nacv]))

        # airborne position
        is_pos = es & (((tc >= 9) & (tc <= 18)) | ((tc >= 20) & (tc <= 22)))
        alt12 = me_bits(me, 9, 20)
        alt_ft = np.full(n, np.nan)
        baro = is_pos & (tc <= 18)
        if baro.any():
            alt_ft[baro] = altitude12_ft(alt12[baro])
        gnss = is_pos & (tc >= 20)
        alt_m = alt_ft * FT_TO_M
        alt_m[gnss] = np.where(alt12[gnss] > 0, alt12[gnss].astype(np.float64), np.nan)
        odd = me_bits(me, 22, 22) == 1
        lat_cpr = me_bits(me, 23, 39) / 131072.0
        lon_cpr = me_bits(me, 40, 56) / 131072.0
        cpr_vals = np.column_stack([lat_cpr, lon_cpr])
        even_t, even = self.state.latest("cpr_even", key, time_s, is_pos & ~odd, cpr_vals)
        odd_t, oddv = self.state.latest("cpr_odd", key, time_s, is_pos & odd, cpr_vals)
        pair_t = np.where(odd, even_t, odd_t)
        paired = is_pos & (np.abs(time_s - pair_t) <= CPR_PAIR_MAX_AGE_S)
        lat = np.full(n, np.nan)
        lon = np.full(n, np.nan)
        if paired.any():
            r = np.flatnonzero(paired)
            glat, glon, gvalid = cpr_global(even[r, 0], even[r, 1], oddv[r, 0], oddv[r, 1], odd[r])
            lat[r] = np.where(gvalid, glat, np.nan)
            lon[r] = np.where(gvalid, glon, np.nan)
        solved = is_pos & np.isfinite(lat)
        ref_t, ref = self.state.latest("pos", key, time_s, solved, np.column_stack([lat, lon]))
        local = is_pos & ~solved & (np.abs(time_s - ref_t) <= CPR_LOCAL_REF_MAX_AGE_S)
        if local.any():
            r = np.flatnonzero(local)
            lat[r], lon[r] = cpr_local(lat_cpr[r], lon_cpr[r], odd[r], ref[r, 0], ref[r, 1])
        if self.reference is not None:
            recv = is_pos & ~np.isfinite(lat)
            if recv.any():
                r = np.flatnonzero(recv)
                rl = np.full(r.size, self.reference[0])
                rn = np.full(r.size, self.reference[1])
                lat[r], lon[r] = cpr_local(lat_cpr[r], lon_cpr[r], odd[r], rl, rn)
        # surface position: local decode against the last position or the receiver
        is_surf = es & (tc >= 5) & (tc <= 8)
        surf = is_surf & (np.abs(time_s - ref_t) <= SURFACE_REF_MAX_AGE_S)
        if surf.any():
            r = np.flatnonzero(surf)
            lat[r], lon[r] = cpr_local(lat_cpr[r], lon_cpr[r], odd[r], ref[r, 0], ref[r, 1], 90.0)
        if self.reference is not None:
            recv = is_surf & ~surf
            if recv.any():
                r = np.flatnonzero(recv)
                rl = np.full(r.size, self.reference[0])
                rn = np.full(r.size, self.reference[1])
                lat[r], lon[r] = cpr_local(lat_cpr[r], lon_cpr[r], odd[r], rl, rn, 90.0)
        is_pos |= is_surf
        has_pos = is_pos & np.isfinite(lat) & (np.abs(lat) <= 90.0)
        message[is_pos & ~has_pos] = _MSG_INDEX["adsb_position_pending"]

        # outcomes
        quarantined = ~ok
        outcome[has_pos] = OUTCOME_OBS
        outcome[quarantined] = OUTCOME_QUARANTINE
        leftover = np.flatnonzero((outcome == OUTCOME_MESSAGE) & (message < 0))
        if leftover.size:  # cannot happen by construction; never stop a feed over it
            outcome[leftover] = OUTCOME_QUARANTINE
        quarantine: list[tuple[int, str, str | None, bytes]] = [
            (i, reason[i] or "frame not classified", "frame", raw[i])
            for i in np.flatnonzero(outcome == OUTCOME_QUARANTINE).tolist()
        ]
        r = np.flatnonzero(has_pos)
        fresh_vel = np.abs(time_s[r] - vel_t[r]) < VELOCITY_MAX_AGE_S
        velocity = np.where(fresh_vel[:, None], vel[r, :3], np.nan)
        nacv_r = np.nan_to_num(vel[r, 3], nan=0).astype(np.int64)
        velocity_sigma = np.where(
            nacv_r > 0, _NACV_SIGMA_MPS[np.clip(nacv_r, 0, 4)], DEFAULT_VELOCITY_SIGMA_MPS
        )
        return AdsbChunk(
            unit_position=unit_position,
            outcome=outcome,
            message=message,
            message_names=MESSAGE_NAMES,
            quarantine=quarantine,
            crc_failures=int(np.count_nonzero(crc_bad)),
            obs_unit=r,
            time_s=time_s[r],
            lat_deg=lat[r],
            lon_deg=lon[r],
            alt_m=alt_m[r],
            sigma_h_m=np.where(np.isfinite(nacp_t[r]), nacp_sigma_h_m(nacp[r, 0]), DEFAULT_SIGMA_H_M),
            sigma_v_m=np.full(r.size, DEFAULT_SIGMA_V_M),
            velocity_enu_mps=velocity,
            address=address[r],
            address_kind=address_kind[r],
            callsign=np.nan_to_num(ident[r, 0], nan=-1).astype(np.int64),
            category=np.nan_to_num(ident[r, 1], nan=-1).astype(np.int64),
            strings=self.strings,
            velocity_sigma_mps=velocity_sigma,
        )
