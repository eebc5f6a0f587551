"""Radiosonde soundings as a profile wind field.

Formats: University of Wyoming CSV (``TEXT:CSV``: time, longitude, latitude, pressure_hPa,
geopotential height_m, ..., wind direction_degree, wind speed_m/s), University of Wyoming text
tables (``TEXT:LIST``: PRES HGHT TEMP ... DRCT SKNT, speed in knots) and IGRA v2 station files
(fixed width; pressure in Pa, temperature in tenths of deg C, speed in tenths of m/s; several
soundings per file).

A sounding becomes a horizontally uniform :class:`WindGrid` (ny = nx = 2 spanning the globe,
``global_lon``) with the sounding's levels, surface first. Wind direction is where the wind
blows FROM, clockwise from north: u = -speed sin(dir), v = -speed cos(dir) (a westerly, from
270 deg, has u > 0). Levels without wind are used only for heights; heights missing at a level
are interpolated in ln p between the nearest levels with heights (standard-atmosphere shape
beyond them). Times: the launch time for UWyo CSV, the nominal synoptic time for IGRA2 and
UWyo text. Several IGRA2 soundings become several times on the union of their levels within
the pressure range they all cover (or pick one with ``time_s``).
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stratowatch.weather.errors import WindFormatError
from stratowatch.weather.grid import FloatArray, WindGrid
from stratowatch.weather.heights import isa_height_m, isa_pressure_hpa

log = logging.getLogger(__name__)

KNOT_MPS = 1852.0 / 3600.0
#: How far from its own time a profile is offered as valid (noted in the grid).
PROFILE_LAT_DEG = np.array([-90.0, 90.0])
PROFILE_LON_DEG = np.array([-180.0, 0.0])


@dataclass(frozen=True, slots=True)
class Sounding:
    """One sounding, levels surface first (pressure strictly descending), winds present."""

    time_s: float
    station: str
    lat_deg: float
    lon_deg: float
    pressure_hpa: FloatArray
    height_m: FloatArray  # geopotential
    u_mps: FloatArray
    v_mps: FloatArray
    temperature_k: FloatArray


def wind_components(speed_mps: npt.ArrayLike, direction_deg: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(u, v) from speed and the direction the wind blows FROM (deg clockwise from north)."""
    spd = np.asarray(speed_mps, dtype=np.float64)
    rad = np.radians(np.asarray(direction_deg, dtype=np.float64))
    return -spd * np.sin(rad), -spd * np.cos(rad)


def clean_profile(
    time_s: float,
    station: str,
    lat_deg: float,
    lon_deg: float,
    pressure_hpa: npt.ArrayLike,
    height_m: npt.ArrayLike,
    u_mps: npt.ArrayLike,
    v_mps: npt.ArrayLike,
    temperature_k: npt.ArrayLike,
    source: str,
) -> Sounding:
    """Sort, de-duplicate and fill a raw level list into a :class:`Sounding`."""
    p = np.asarray(pressure_hpa, dtype=np.float64)
    h = np.asarray(height_m, dtype=np.float64)
    u = np.asarray(u_mps, dtype=np.float64)
    v = np.asarray(v_mps, dtype=np.float64)
    t = np.asarray(temperature_k, dtype=np.float64)
    p = _pressure_from_height(p, h)
    ok = np.isfinite(p) & (p > 0)
    p, h, u, v, t = p[ok], h[ok], u[ok], v[ok], t[ok]
    order = np.argsort(-p, kind="stable")
    p, h, u, v, t = p[order], h[order], u[order], v[order], t[order]
    h = _fill_ln_p(p, h, isa=True)
    t = _fill_ln_p(p, t, isa=False)
    wind = np.isfinite(u) & np.isfinite(v)
    p, h, u, v, t = p[wind], h[wind], u[wind], v[wind], t[wind]
    keep = np.concatenate(([True], np.diff(p) < 0))  # drop repeated pressures (first wins)
    p, h, u, v, t = p[keep], h[keep], u[keep], v[keep], t[keep]
    rising = h > np.concatenate(([-np.inf], np.maximum.accumulate(h)[:-1]))
    if not rising.all():  # a height that does not rise with falling pressure is a bad level
        log.warning("%s: %d levels whose height does not rise dropped", source, int((~rising).sum()))
        p, h, u, v, t = p[rising], h[rising], u[rising], v[rising], t[rising]
    if p.shape[0] < 2:
        raise WindFormatError(f"{source}: sounding has fewer than 2 levels with wind")
    return Sounding(time_s, station, lat_deg, lon_deg, p, h, u, v, t)


def _pressure_from_height(p: FloatArray, h: FloatArray) -> FloatArray:
    """Pressure for height-only levels (IGRA2 wind levels), from the sounding's own
    height/ln p relation; the standard-atmosphere shape above or below the known levels."""
    need = ~np.isfinite(p) & np.isfinite(h)
    known = np.isfinite(p) & np.isfinite(h) & (p > 0)
    if not need.any() or known.sum() < 2:
        return p
    order = np.argsort(h[known])
    hk, lnpk = h[known][order], np.log(p[known][order])
    out = p.copy()
    hq = h[need]
    lnp = np.interp(hq, hk, lnpk)
    above, below = hq > hk[-1], hq < hk[0]
    top_p, bottom_p = np.exp(lnpk[-1]), np.exp(lnpk[0])
    lnp[above] = np.log(isa_pressure_hpa(isa_height_m(top_p) + hq[above] - hk[-1]))
    lnp[below] = np.log(isa_pressure_hpa(isa_height_m(bottom_p) + hq[below] - hk[0]))
    out[need] = np.exp(lnp)
    return out


def _fill_ln_p(p: FloatArray, x: FloatArray, *, isa: bool) -> FloatArray:
    good = np.isfinite(x)
    if good.all() or not good.any():
        if not good.any() and isa:
            return isa_height_m(p)
        return x
    lnp = -np.log(p)
    out = np.interp(lnp, lnp[good], x[good])
    if isa:  # beyond the known heights: standard-atmosphere shape from the nearest known level
        first, last = np.flatnonzero(good)[[0, -1]]
        below, above = lnp < lnp[first], lnp > lnp[last]
        out[below] = x[first] + isa_height_m(p[below]) - isa_height_m(p[first])
        out[above] = x[last] + isa_height_m(p[above]) - isa_height_m(p[last])
    return out


def profile_grid(soundings: list[Sounding], source: str, notes: list[str] | None = None) -> WindGrid:
    """A profile :class:`WindGrid` from soundings (several become several times)."""
    notes = list(notes or [])
    soundings = sorted(soundings, key=lambda s: s.time_s)
    if len(soundings) == 1:
        levels = soundings[0].pressure_hpa
    else:
        bottom = min(float(s.pressure_hpa[0]) for s in soundings)
        top = max(float(s.pressure_hpa[-1]) for s in soundings)
        allp = np.unique(np.concatenate([s.pressure_hpa for s in soundings]))[::-1]
        levels = allp[(allp <= bottom) & (allp >= top)]
        notes.append(f"{len(soundings)} soundings on the union of their levels, {bottom:g}..{top:g} hPa")
    times = np.array([s.time_s for s in soundings])
    if np.any(np.diff(times) <= 0):
        raise WindFormatError(f"{source}: two soundings have the same time")
    cols = {name: np.empty((len(soundings), len(levels))) for name in ("u", "v", "h", "t")}
    for i, s in enumerate(soundings):
        x, xq = -np.log(s.pressure_hpa), -np.log(levels)
        cols["u"][i] = np.interp(xq, x, s.u_mps)
        cols["v"][i] = np.interp(xq, x, s.v_mps)
        cols["h"][i] = np.interp(xq, x, s.height_m)
        cols["t"][i] = np.interp(xq, x, s.temperature_k)
    shape = (len(times), len(levels), 2, 2)

    def spread(a: FloatArray) -> FloatArray:
        return np.ascontiguousarray(np.broadcast_to(a[:, :, None, None], shape))

    for s in soundings:
        notes.append(
            f"sounding {s.station} at {s.lat_deg:.2f}, {s.lon_deg:.2f} "
            f"{datetime.fromtimestamp(s.time_s, UTC):%Y-%m-%d %H:%MZ}: "
            f"{s.pressure_hpa[0]:g}..{s.pressure_hpa[-1]:g} hPa, top {s.height_m[-1]:.0f} gpm"
        )
    temp = spread(cols["t"])
    return WindGrid(
        time_s=times,
        pressure_hpa=np.asarray(levels, dtype=np.float64),
        lat_deg=PROFILE_LAT_DEG.copy(),
        lon_deg=PROFILE_LON_DEG.copy(),
        u_mps=spread(cols["u"]),
        v_mps=spread(cols["v"]),
        height_m=spread(cols["h"]),
        global_lon=True,
        heights_geopotential=True,
        temperature_k=temp if np.isfinite(temp).any() else None,
        source=source,
        notes=notes,
    ).validate()


# -- University of Wyoming CSV ------------------------------------------------------------

_UWYO_CSV_COLUMNS = {
    "time": "time",
    "lon": "longitude",
    "lat": "latitude",
    "p": "pressure_hPa",
    "h": "geopotential height_m",
    "t": "temperature_C",
    "dir": "wind direction_degree",
    "spd": "wind speed_m/s",
}


def is_uwyo_csv(head: bytes) -> bool:
    first = head.split(b"\n", 1)[0].lower()
    return b"pressure_hpa" in first and b"wind direction" in first


def read_uwyo_csv(path: str | Path) -> Sounding:
    """One University of Wyoming CSV sounding."""
    p = Path(path)
    with p.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise WindFormatError(f"{p}: empty file")
    header = [c.strip() for c in rows[0]]
    idx: dict[str, int] = {}
    for key, name in _UWYO_CSV_COLUMNS.items():
        if name not in header:
            raise WindFormatError(f"{p}:1: column {name!r} missing (header: {', '.join(header)})")
        idx[key] = header.index(name)
    data = {k: np.full(len(rows) - 1, np.nan) for k in ("lon", "lat", "p", "h", "t", "dir", "spd")}
    time_text = ""
    for n, row in enumerate(rows[1:]):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise WindFormatError(f"{p}:{n + 2}: {len(row)} fields, expected {len(header)}")
        time_text = time_text or row[idx["time"]].strip()
        for k in data:
            data[k][n] = _number(row[idx[k]], p, n + 2, _UWYO_CSV_COLUMNS[k])
    try:
        t0 = datetime.strptime(time_text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise WindFormatError(f"{p}:2: field 'time': not a time {time_text!r}") from None
    u, v = wind_components(data["spd"], data["dir"])
    return clean_profile(
        t0,
        p.stem,
        float(np.nanmean(data["lat"])),
        float(np.nanmean(data["lon"])),
        data["p"],
        data["h"],
        u,
        v,
        data["t"] + 273.15,
        str(p),
    )


def _number(text: str, path: Path, line: int, field: str) -> float:
    s = text.strip()
    if not s:
        return float("nan")
    try:
        return float(s)
    except ValueError:
        raise WindFormatError(f"{path}:{line}: field {field!r}: not a number {s!r}") from None


# -- University of Wyoming text table -----------------------------------------------------

_UWYO_TITLE = re.compile(r"^\s*(\d+)\s+(\w+)?.*Observations at (\d\d)Z (\d+) (\w+) (\d{4})")


def is_uwyo_text(head: bytes) -> bool:
    return b"PRES" in head and b"HGHT" in head and b"SKNT" in head and b"Observations at" in head


def read_uwyo_text(path: str | Path) -> Sounding:
    """A University of Wyoming ``TEXT:LIST`` table (7-character columns, speed in knots)."""
    p = Path(path)
    lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
    title = next((m for m in map(_UWYO_TITLE.match, lines) if m), None)
    if title is None:
        raise WindFormatError(f"{p}: no 'NNNNN XXX ... Observations at HHZ DD Mon YYYY' title line")
    when = f"{title.group(6)} {title.group(5)} {title.group(4)} {title.group(3)}"
    try:
        t0 = datetime.strptime(when, "%Y %b %d %H").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise WindFormatError(f"{p}: title line: bad date {when!r}") from None
    header_at = next((i for i, ln in enumerate(lines) if ln.split()[:2] == ["PRES", "HGHT"]), None)
    if header_at is None:
        raise WindFormatError(f"{p}: no PRES HGHT ... header line")
    names = lines[header_at].split()
    for need in ("PRES", "HGHT", "DRCT", "SKNT"):
        if need not in names:
            raise WindFormatError(f"{p}:{header_at + 1}: column {need} missing")
    rows: list[list[float]] = []
    start = header_at + 3  # names, units, dashes
    for n in range(start, len(lines)):
        line = lines[n]
        if not line.strip() or not re.match(r"^\s*\d", line):
            break
        fields = [line[7 * k : 7 * k + 7] for k in range(len(names))]
        rows.append([_number(f, p, n + 1, names[k]) for k, f in enumerate(fields)])
    if not rows:
        raise WindFormatError(f"{p}: no data rows under the header")
    table = np.array(rows)
    col = {name: table[:, k] for k, name in enumerate(names)}
    u, v = wind_components(col["SKNT"] * KNOT_MPS, col["DRCT"])
    temp = col.get("TEMP", np.full(len(rows), np.nan)) + 273.15
    return clean_profile(
        t0, f"{title.group(1)} {title.group(2) or ''}".strip(), float("nan"), float("nan"),
        col["PRES"], col["HGHT"], u, v, temp, str(p),
    )  # fmt: skip


# -- IGRA v2 ------------------------------------------------------------------------------

_IGRA_HEADER = re.compile(r"^#[A-Z]{2}[A-Z0-9]{9} \d{4} \d\d \d\d \d\d")


def is_igra2(head: bytes) -> bool:
    return bool(_IGRA_HEADER.match(head.split(b"\n", 1)[0].decode("ascii", "replace")))


def read_igra2(path: str | Path) -> tuple[list[Sounding], list[str]]:
    """All soundings of an IGRA v2 data file (nominal times), and notes on the ones skipped
    (a header without levels or without two wind levels)."""
    p = Path(path)
    out: list[Sounding] = []
    skipped: list[str] = []
    header: tuple[int, float, str, float, float] | None = None
    levels: list[tuple[float, float, float, float, float]] = []

    def flush() -> None:
        if header is None:
            return
        line, t0, station, lat, lon = header
        if not levels:
            skipped.append(f"{p}:{line}: sounding header without levels skipped")
            log.warning("%s", skipped[-1])
            return
        arr = np.array(levels)
        u, v = wind_components(arr[:, 4], arr[:, 3])
        try:
            out.append(
                clean_profile(t0, station, lat, lon, arr[:, 0], arr[:, 1], u, v, arr[:, 2], f"{p}:{line}")
            )
        except WindFormatError as exc:
            skipped.append(f"{exc} (skipped)")
            log.warning("%s", skipped[-1])

    with p.open(encoding="ascii", errors="replace") as f:
        for n, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            if line.startswith("#"):
                flush()
                levels = []
                header = _igra_header(line, p, n)
                continue
            if header is None:
                raise WindFormatError(f"{p}:{n}: data line before the first '#' header")
            levels.append(_igra_level(line, p, n))
    flush()
    if not out:
        raise WindFormatError(f"{p}: no IGRA2 soundings with winds ({'; '.join(skipped)})")
    return out, skipped


def _igra_int(line: str, a: int, b: int, path: Path, n: int, field: str) -> int | None:
    s = line[a:b].strip()
    try:
        value = int(s)
    except ValueError:
        raise WindFormatError(f"{path}:{n}: field {field!r}: not a number {s!r}") from None
    return None if value in (-9999, -8888) else value


def _igra_header(line: str, path: Path, n: int) -> tuple[int, float, str, float, float]:
    if len(line) < 71:
        raise WindFormatError(f"{path}:{n}: IGRA2 header line too short ({len(line)} < 71)")
    year = _igra_int(line, 13, 17, path, n, "YEAR")
    month = _igra_int(line, 18, 20, path, n, "MONTH")
    day = _igra_int(line, 21, 23, path, n, "DAY")
    hour = _igra_int(line, 24, 26, path, n, "HOUR")
    lat = _igra_int(line, 55, 62, path, n, "LAT")
    lon = _igra_int(line, 63, 71, path, n, "LON")
    if None in (year, month, day) or hour is None or hour == 99:
        raise WindFormatError(f"{path}:{n}: field 'HOUR': no nominal time")
    assert year is not None and month is not None and day is not None
    try:
        t0 = datetime(year, month, day, hour, tzinfo=UTC).timestamp()
    except ValueError:
        raise WindFormatError(f"{path}:{n}: bad date {year}-{month}-{day} {hour}") from None
    return (
        n,
        t0,
        line[1:12],
        float("nan") if lat is None else lat / 1e4,
        float("nan") if lon is None else lon / 1e4,
    )


def _igra_level(line: str, path: Path, n: int) -> tuple[float, float, float, float, float]:
    line = line.ljust(51)
    press = _igra_int(line, 9, 15, path, n, "PRESS")
    gph = _igra_int(line, 16, 21, path, n, "GPH")
    temp = _igra_int(line, 22, 27, path, n, "TEMP")
    wdir = _igra_int(line, 40, 45, path, n, "WDIR")
    wspd = _igra_int(line, 46, 51, path, n, "WSPD")
    nan = float("nan")
    return (
        nan if press is None else press / 100.0,
        nan if gph is None else float(gph),
        nan if temp is None else temp / 10.0 + 273.15,
        nan if wdir is None else float(wdir),
        nan if wspd is None else wspd / 10.0,
    )


def read_sounding_file(path: str | Path, time_s: float | None = None) -> WindGrid:
    """Any supported sounding file as a profile grid. ``time_s`` picks the IGRA2 sounding
    nearest that time (otherwise all of them become times)."""
    p = Path(path)
    with p.open("rb") as f:
        head = f.read(4096)
    notes: list[str] = []
    if is_uwyo_csv(head):
        soundings = [read_uwyo_csv(p)]
    elif is_igra2(head):
        soundings, notes = read_igra2(p)
        if time_s is not None:
            soundings = [min(soundings, key=lambda s: abs(s.time_s - time_s))]
    elif is_uwyo_text(head):
        soundings = [read_uwyo_text(p)]
    else:
        raise WindFormatError(f"{p}: not a University of Wyoming CSV/text or IGRA2 sounding")
    return profile_grid(soundings, str(p), notes)
