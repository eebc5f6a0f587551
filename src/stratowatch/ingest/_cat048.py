"""Bulk ASTERIX CAT048 (monoradar target reports): a numba framing kernel plus numpy field decode.

The EUROCONTROL CAT048 record is a FSPEC (field specification: one bit per data item, bit 1 of
each octet is FX, "another FSPEC octet follows") followed by the present items in UAP order.
Record boundaries depend on every item's length, so finding them is sequential; the kernel
:func:`_walk` does only that (records and the byte offset of each item we decode), and the
values are then pulled out for all records at once with numpy gathers.

UAP (standard user application profile, CAT048 edition 1.2x), FRN -> item and length:

====  =====  =========================================  =======================
FRN   item   content                                    length (octets)
====  =====  =========================================  =======================
1     I010   data source identifier SAC/SIC             2
2     I140   time of day, LSB 1/128 s                   3
3     I020   target report descriptor                   1+ (FX extension)
4     I040   measured position: rho (1/256 NM), theta   4
             (360/2^16 deg)
5     I070   Mode-3/A code (V, G, L, 12-bit octal)      2
6     I090   flight level (V, G, 14-bit signed, 1/4 FL) 2
7     I130   radar plot characteristics                 compound: 1+ primary, 1 per subfield
8     I220   aircraft address (24 bit)                  3
9     I240   aircraft identification (8 x 6-bit IA-5)   6
10    I250   Mode S MB data                             1 + 8 x REP
11    I161   track number (12 bit)                      2
12    I042   calculated position, Cartesian             4
13    I200   calculated track velocity (2^-14 NM/s,     4
             360/2^16 deg)
14    I170   track status                               1+ (FX)
15    I210   track quality                              4
16    I030   warning/error conditions                   1+ (FX)
17    I080   Mode-3/A code confidence                   2
18    I100   Mode-C code and confidence                 4
19    I110   height measured by a 3D radar              2
20    I120   radial Doppler speed                       compound: CAL 2, RDS 1 + 6 x REP
21    I230   communications/ACAS capability             2
22    I260   ACAS resolution advisory                   7
23    I055   Mode-1 code                                1
24    I050   Mode-2 code                                2
25    I065   Mode-1 code confidence                     1
26    I060   Mode-2 code confidence                     2
27    SP     special purpose field                      explicit (first octet = length)
28    RE     reserved expansion field                   explicit
====  =====  =========================================  =======================

:func:`encode_cat048` writes records of the common items (I010 I140 I020 I040 I070 I090 I220
I240 I161 I200 I170) with numpy, for tests and the benchmark; the decoder is cross-checked
against asterix-decoder on the same bytes in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

# Item kinds for the walk.
_FIXED, _FXEXT, _REP, _C130, _C120, _EXPL = 0, 1, 2, 3, 4, 5
# Index = FRN (1..28); 0 unused.
_KIND = np.full(29, _FIXED, dtype=np.int64)
_KIND[[3, 14, 16]] = _FXEXT  # I020, I170, I030
_KIND[10] = _REP  # I250
_KIND[7] = _C130
_KIND[20] = _C120
_KIND[[27, 28]] = _EXPL  # SP, RE
_LEN = np.array(
    [0, 2, 3, 1, 4, 2, 2, 1, 3, 6, 8, 2, 4, 4, 1, 4, 1, 2, 4, 2, 1, 2, 7, 1, 2, 1, 2, 1, 1],
    dtype=np.int64,
)
#: The items whose offsets the walk records (column order of ``item_offset``).
ITEMS = ("I010", "I140", "I020", "I040", "I070", "I090", "I220", "I240", "I161", "I200", "I170")
_ITEM_FRN = (1, 2, 3, 4, 5, 6, 8, 9, 11, 13, 14)
_COLUMN = np.full(29, -1, dtype=np.int64)
for _c, _f in enumerate(_ITEM_FRN):
    _COLUMN[_f] = _c
N_ITEMS = len(ITEMS)

#: Error codes of a record (0 = decoded).
ERR_OK, ERR_TRUNCATED, ERR_FSPEC, ERR_COMPOUND, ERR_EXPLICIT = 0, 1, 2, 3, 4
ERROR_TEXT = {
    ERR_TRUNCATED: "CAT048 record runs past the end of its data block",
    ERR_FSPEC: "CAT048 FSPEC names a data item beyond FRN 28",
    ERR_COMPOUND: "CAT048 compound item (I130/I120) has an undefined subfield",
    ERR_EXPLICIT: "CAT048 explicit-length item (SP/RE) has length 0",
}


@numba.njit(cache=True, nogil=True)
def _walk(
    data: U8,
    block_start: I64,
    block_end: I64,
    kinds: I64,
    lens: I64,
    column: I64,
    fill: bool,
    rec_start: I64,
    rec_len: I64,
    rec_block: I64,
    rec_err: I64,
    item_offset: I64,
) -> int:  # pragma: no cover - compiled
    n = 0
    for b in range(block_start.shape[0]):
        p = block_start[b]
        end = block_end[b]
        while p < end:
            start = p
            err = 0
            if fill:
                for c in range(item_offset.shape[1]):
                    item_offset[n, c] = -1
            # FSPEC
            frns = np.zeros(36, dtype=np.bool_)
            octet = 0
            while True:
                if p >= end:
                    err = 1
                    break
                v = data[p]
                p += 1
                for bit in range(7):
                    if v & (0x80 >> bit):
                        frns[octet * 7 + bit + 1] = True
                octet += 1
                if not (v & 1):
                    break
                if octet >= 5:
                    err = 2
                    break
            if err == 0:
                for f in range(29, 36):
                    if frns[f]:
                        err = 2
            if err == 0:
                for f in range(1, 29):
                    if not frns[f]:
                        continue
                    if fill and column[f] >= 0:
                        item_offset[n, column[f]] = p
                    k = kinds[f]
                    if k == 0:
                        p += lens[f]
                    elif k == 1:
                        while True:
                            if p >= end:
                                err = 1
                                break
                            v = data[p]
                            p += 1
                            if not (v & 1):
                                break
                    elif k == 2:
                        if p >= end:
                            err = 1
                        else:
                            p += 1 + data[p] * lens[f]
                    elif k == 3:
                        # I130: primary subfield octet (7 subfields, FX must be 0), 1 octet each
                        if p >= end:
                            err = 1
                        else:
                            v = data[p]
                            p += 1
                            if v & 1:
                                err = 3
                            else:
                                for bit in range(7):
                                    if v & (0x80 >> bit):
                                        p += 1
                    elif k == 4:
                        # I120: CAL (2 octets), RDS (1 + 6 x REP); only two subfields defined
                        if p >= end:
                            err = 1
                        else:
                            v = data[p]
                            p += 1
                            if v & 0x3F:
                                err = 3
                            else:
                                if v & 0x80:
                                    p += 2
                                if v & 0x40:
                                    if p >= end:
                                        err = 1
                                    else:
                                        p += 1 + 6 * data[p]
                    else:
                        if p >= end:
                            err = 1
                        elif data[p] == 0:
                            err = 4
                        else:
                            p += data[p]
                    if err != 0:
                        break
                    if p > end:
                        err = 1
                        break
            if err != 0:
                p = end
            if fill:
                rec_start[n] = start
                rec_len[n] = p - start
                rec_block[n] = b
                rec_err[n] = err
            n += 1
    return n


@dataclass(frozen=True, slots=True)
class Cat048Records:
    """Decoded CAT048 records, one array element per record (stream order).

    Absent items: NaN for floats, -1 for integer fields, ``has_*`` False. ``error`` is 0 for a
    decoded record; otherwise the record (to the end of its block) could not be framed and its
    values are undefined (see :data:`ERROR_TEXT`).
    """

    start: I64
    length: I64
    block: I64
    error: I64
    sac: I64
    sic: I64
    tod_s: F64
    typ: I64
    sim: npt.NDArray[np.bool_]
    rab: npt.NDArray[np.bool_]
    tst: npt.NDArray[np.bool_]
    rho_nm: F64
    theta_deg: F64
    mode3a: I64
    flight_level: F64
    fl_valid: npt.NDArray[np.bool_]
    fl_garbled: npt.NDArray[np.bool_]
    icao: I64
    callsign: npt.NDArray[np.bytes_]
    track_number: I64
    groundspeed_nm_s: F64
    heading_deg: F64

    def __len__(self) -> int:
        return int(self.start.shape[0])


def walk(data: U8, block_start: I64, block_end: I64) -> tuple[I64, I64, I64, I64, I64]:
    """Frame the records of CAT048 data blocks (payload ranges): starts, lengths, block index,
    error code and the (n, N_ITEMS) item offsets (-1 absent)."""
    bs = np.ascontiguousarray(block_start, dtype=np.int64)
    be = np.ascontiguousarray(block_end, dtype=np.int64)
    empty = np.empty(0, dtype=np.int64)
    n = _walk(
        data,
        bs,
        be,
        _KIND,
        _LEN,
        _COLUMN,
        False,
        empty,
        empty,
        empty,
        empty,
        np.empty((0, N_ITEMS), np.int64),
    )
    rec_start = np.empty(n, np.int64)
    rec_len = np.empty(n, np.int64)
    rec_block = np.empty(n, np.int64)
    rec_err = np.empty(n, np.int64)
    item_offset = np.empty((n, N_ITEMS), np.int64)
    _walk(
        data,
        bs,
        be,
        _KIND,
        _LEN,
        _COLUMN,
        True,
        rec_start,
        rec_len,
        rec_block,
        rec_err,
        item_offset,
    )
    return rec_start, rec_len, rec_block, rec_err, item_offset


def _u(data: U8, off: I64, nbytes: int) -> I64:
    """Big-endian unsigned integers of ``nbytes`` at offsets (offset < 0 -> 0)."""
    o = np.where(off >= 0, off, 0)
    out = np.zeros(o.shape[0], dtype=np.int64)
    for k in range(nbytes):
        out = (out << 8) | data[o + k].astype(np.int64)
    return out


_IA5 = np.frombuffer(
    b"#ABCDEFGHIJKLMNOPQRSTUVWXYZ#####" + b" ###############" + b"0123456789######", dtype=np.uint8
)


def decode_cat048(data: bytes | U8, block_start: npt.ArrayLike, block_end: npt.ArrayLike) -> Cat048Records:
    """Decode every record of the CAT048 data blocks whose payloads (after CAT and LEN) span
    ``data[block_start[i]:block_end[i]]``."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray | memoryview) else data
    # Pad so gathers near the end never index out of range for a truncated (errored) record.
    padded = np.concatenate([buf, np.zeros(8, np.uint8)])
    start, length, block, err, off = walk(padded, np.asarray(block_start), np.asarray(block_end))
    ok = err == 0
    has = (off >= 0) & ok[:, None]
    col = {name: i for i, name in enumerate(ITEMS)}

    def item(name: str, nbytes: int) -> tuple[I64, npt.NDArray[np.bool_]]:
        c = col[name]
        return _u(padded, off[:, c], nbytes), has[:, c]

    v010, h010 = item("I010", 2)
    v140, h140 = item("I140", 3)
    v020, h020 = item("I020", 2)
    v040, h040 = item("I040", 4)
    v070, h070 = item("I070", 2)
    v090, h090 = item("I090", 2)
    v220, h220 = item("I220", 3)
    v161, h161 = item("I161", 2)
    v200, h200 = item("I200", 4)
    # I020: first octet in the high byte of v020; TST is bit 8 of the first extension.
    first = v020 >> 8
    ext = h020 & ((first & 1) == 1)
    # I090: V bit 16, G bit 15, 14-bit two's complement FL in 1/4.
    fl_raw = v090 & 0x3FFF
    fl_raw = np.where(fl_raw >= 0x2000, fl_raw - 0x4000, fl_raw)
    # I240: 48 bits -> 8 six-bit characters.
    c240 = col["I240"]
    h240 = has[:, c240]
    raw240 = _u(padded, off[:, c240], 6)
    shifts = np.arange(42, -1, -6, dtype=np.int64)
    chars = _IA5[(raw240[:, None] >> shifts[None, :]) & 0x3F]
    callsign = np.ascontiguousarray(chars).view("S8").reshape(-1)
    callsign = np.where(h240, callsign, b"")
    return Cat048Records(
        start=start,
        length=length,
        block=block,
        error=err,
        sac=np.where(h010, v010 >> 8, -1),
        sic=np.where(h010, v010 & 0xFF, -1),
        tod_s=np.where(h140, v140 / 128.0, np.nan),
        typ=np.where(h020, first >> 5, -1),
        sim=h020 & ((first & 0x10) != 0),
        rab=h020 & ((first & 0x02) != 0),
        tst=ext & ((v020 & 0x80) != 0),
        rho_nm=np.where(h040, (v040 >> 16) / 256.0, np.nan),
        theta_deg=np.where(h040, (v040 & 0xFFFF) * (360.0 / 65536.0), np.nan),
        mode3a=np.where(h070, v070 & 0x0FFF, -1),
        flight_level=np.where(h090, fl_raw / 4.0, np.nan),
        fl_valid=h090 & ((v090 & 0x8000) == 0),
        fl_garbled=h090 & ((v090 & 0x4000) != 0),
        icao=np.where(h220, v220, -1),
        callsign=callsign,
        track_number=np.where(h161, v161 & 0x0FFF, -1),
        groundspeed_nm_s=np.where(h200, (v200 >> 16) * 2.0**-14, np.nan),
        heading_deg=np.where(h200, (v200 & 0xFFFF) * (360.0 / 65536.0), np.nan),
    )


def mode3a_octal(code: int) -> str:
    """A 12-bit Mode 3/A code as its four octal digits (``0o7700`` -> ``"7700"``)."""
    return f"{code & 0o7777:04o}"


# ---------------------------------------------------------------------------------------------
# Encoder (tests, benchmark data): vectorised per record layout.

_IA5_CODE = np.zeros(256, dtype=np.int64)
for _i, _ch in enumerate(_IA5.tolist()):
    if _ch != ord("#"):
        _IA5_CODE[_ch] = _i
_IA5_CODE[ord(" ")] = 32


def encode_cat048(
    *,
    sac: npt.ArrayLike,
    sic: npt.ArrayLike,
    tod_s: npt.ArrayLike,
    typ: npt.ArrayLike,
    rho_nm: npt.ArrayLike,
    theta_deg: npt.ArrayLike,
    mode3a: npt.ArrayLike | None = None,
    flight_level: npt.ArrayLike | None = None,
    icao: npt.ArrayLike | None = None,
    callsign: npt.ArrayLike | None = None,
    track_number: npt.ArrayLike | None = None,
    groundspeed_nm_s: npt.ArrayLike | None = None,
    heading_deg: npt.ArrayLike | None = None,
    records_per_block: int = 20,
) -> bytes:
    """Encode CAT048 records (one array element each, broadcast) into data blocks.

    Optional items are present where the value is >= 0 (``mode3a``, ``icao``, ``track_number``),
    finite (``flight_level``; ``groundspeed_nm_s`` with ``heading_deg``, written with I170) or a
    non-empty string (``callsign``). Records go into blocks of ``records_per_block`` in order.
    """
    t = np.asarray(tod_s, dtype=np.float64).reshape(-1)
    n = t.shape[0]

    def col(x: npt.ArrayLike | None, fill: float, dtype: type = np.int64) -> Any:
        if x is None:
            return np.full(n, fill, dtype=dtype)
        return np.broadcast_to(np.asarray(x, dtype=dtype), (n,)).copy()

    sac_a, sic_a, typ_a = col(sac, 0), col(sic, 0), col(typ, 0)
    rho, theta = col(rho_nm, 0.0, np.float64), col(theta_deg, 0.0, np.float64)
    m3a, fl = col(mode3a, -1), col(flight_level, np.nan, np.float64)
    addr, tn = col(icao, -1), col(track_number, -1)
    gs, hdg = col(groundspeed_nm_s, np.nan, np.float64), col(heading_deg, np.nan, np.float64)
    cs = (
        np.full(n, b"", dtype="S8")
        if callsign is None
        else np.broadcast_to(np.asarray(callsign, dtype="S8"), (n,))
    )
    has = np.stack(
        [
            m3a >= 0,
            np.isfinite(fl),
            addr >= 0,
            cs != b"",
            tn >= 0,
            np.isfinite(gs) & np.isfinite(hdg),
        ],
        axis=1,
    )
    layout = has @ (1 << np.arange(has.shape[1]))
    rec_bytes: list[tuple[npt.NDArray[np.int64], U8]] = []
    for lay in np.unique(layout).tolist():
        idx = np.flatnonzero(layout == lay)
        h = [(lay >> k) & 1 == 1 for k in range(6)]
        h_m3a, h_fl, h_addr, h_cs, h_tn, h_trk = h
        # FSPEC octet 1: I010 I140 I020 I040 I070 I090 I130 FX
        f1 = 0xF0 | (0x08 if h_m3a else 0) | (0x04 if h_fl else 0)
        # octet 2: I220 I240 I250 I161 I042 I200 I170 FX
        f2 = (0x80 if h_addr else 0) | (0x40 if h_cs else 0) | (0x10 if h_tn else 0)
        f2 |= 0x06 if h_trk else 0
        parts: list[npt.NDArray[np.int64]] = []
        m = idx.shape[0]

        def be(v: Any, nb: int) -> npt.NDArray[np.int64]:
            return np.stack([(v >> (8 * (nb - 1 - k))) & 0xFF for k in range(nb)], axis=1)

        fspec = [f1 | (1 if f2 else 0)] + ([f2] if f2 else [])
        parts.append(np.tile(np.array(fspec, dtype=np.int64), (m, 1)))
        parts.append(be(sac_a[idx] * 256 + sic_a[idx], 2))
        parts.append(be(np.round(t[idx] * 128.0).astype(np.int64) % (1 << 24), 3))
        parts.append(((typ_a[idx] & 7) << 5)[:, None])
        rho_i = np.clip(np.round(rho[idx] * 256.0), 0, 65535).astype(np.int64)
        th_i = np.round((theta[idx] % 360.0) * 65536.0 / 360.0).astype(np.int64) % 65536
        parts.append(be(rho_i * 65536 + th_i, 4))
        if h_m3a:
            parts.append(be(m3a[idx] & 0x0FFF, 2))
        if h_fl:
            parts.append(be(np.round(fl[idx] * 4.0).astype(np.int64) & 0x3FFF, 2))
        if h_addr:
            parts.append(be(addr[idx] & 0xFFFFFF, 3))
        if h_cs:
            chars = np.frombuffer(np.ascontiguousarray(cs[idx]).tobytes(), dtype=np.uint8).reshape(m, 8)
            codes = _IA5_CODE[chars]
            codes = np.where(chars == 0, 32, codes)
            packed = np.zeros(m, dtype=np.int64)
            for k in range(8):
                packed = (packed << 6) | codes[:, k]
            parts.append(be(packed, 6))
        if h_tn:
            parts.append(be(tn[idx] & 0x0FFF, 2))
        if h_trk:
            gs_i = np.clip(np.round(gs[idx] * 2.0**14), 0, 65535).astype(np.int64)
            hd_i = np.round((hdg[idx] % 360.0) * 65536.0 / 360.0).astype(np.int64) % 65536
            parts.append(be(gs_i * 65536 + hd_i, 4))
            parts.append(np.zeros((m, 1), dtype=np.int64))  # I170: confirmed track, no FX
        rec_bytes.append((idx, np.concatenate(parts, axis=1).astype(np.uint8)))
    lengths = np.zeros(n, dtype=np.int64)
    for idx, mat in rec_bytes:
        lengths[idx] = mat.shape[1]
    block_of = np.arange(n) // records_per_block
    n_blocks = int(block_of[-1]) + 1 if n else 0
    # Each record moves right by 3 header octets per block up to and including its own.
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) + 3 * (block_of + 1)
    out = np.zeros(int(lengths.sum()) + 3 * n_blocks, dtype=np.uint8)
    for idx, mat in rec_bytes:
        pos = offsets[idx][:, None] + np.arange(mat.shape[1])[None, :]
        out[pos] = mat
    block_len = np.bincount(block_of, weights=lengths, minlength=n_blocks).astype(np.int64) + 3
    first_rec = np.arange(n_blocks) * records_per_block
    header_at = offsets[first_rec] - 3
    out[header_at] = 48
    out[header_at + 1] = block_len >> 8
    out[header_at + 2] = block_len & 0xFF
    return out.tobytes()
