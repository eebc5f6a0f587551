"""Reader for the tracker benchmark's plots CSV, columnar and strict.

Header: ``time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m`` (any order; every column required, no
unknown columns). A bad row (wrong field count, a value that is not a finite number, a sigma that
is not positive) raises :class:`PlotsFileError` naming the file, line and field, or, with
``quarantine=True``, is set aside with the reason and reading goes on. Nothing is dropped
silently: ``rows_read == used + len(quarantined)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

COLUMNS = ("time_s", "sensor_id", "x_m", "y_m", "z_m", "sigma_m", "sigma_z_m")
NUMERIC = ("time_s", "x_m", "y_m", "z_m", "sigma_m", "sigma_z_m")


class PlotsFileError(ValueError):
    """A plots CSV that cannot be read; the message names file, line and field."""


@dataclass(slots=True)
class Plots:
    time_s: npt.NDArray[np.float64]
    xyz: npt.NDArray[np.float64]
    sigma: npt.NDArray[np.float64]  # (n, 2): horizontal, vertical
    sensor_index: npt.NDArray[np.int64]
    sensor_ids: list[str]
    line: npt.NDArray[np.int64]  # 1-based line number of each row
    rows_read: int = 0
    quarantined: list[dict[str, object]] = field(default_factory=list)


def read_plots_csv(path: str | Path, quarantine: bool = False) -> Plots:
    p = Path(path)
    text = p.read_text(encoding="utf-8-sig", errors="replace")
    lines = text.splitlines()
    if not lines:
        raise PlotsFileError(f"{p}:1: empty file, expected header {','.join(COLUMNS)}")
    header = [h.strip() for h in lines[0].split(",")]
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in COLUMNS if c not in header]
    if unknown or missing:
        what = []
        if unknown:
            what.append(f"unknown column(s) {', '.join(repr(u) for u in unknown)}")
        if missing:
            what.append(f"missing column(s) {', '.join(missing)}")
        raise PlotsFileError(f"{p}:1: header: {'; '.join(what)} (expected {','.join(COLUMNS)})")
    body = [(i + 2, ln) for i, ln in enumerate(lines[1:]) if ln.strip()]
    line_no = np.fromiter((n for n, _ in body), dtype=np.int64, count=len(body))
    split = [ln.split(",") for _, ln in body]
    ncol = len(header)
    counts = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    bad_reason: dict[int, tuple[str, str]] = {}
    for i in np.flatnonzero(counts != ncol).tolist():
        bad_reason[i] = ("row", f"{counts[i]} fields, expected {ncol}")
    good = np.flatnonzero(counts == ncol)
    cols = list(zip(*[split[i] for i in good.tolist()], strict=True)) if good.size else [()] * ncol
    numeric = np.full((good.size, len(NUMERIC)), np.nan)
    for k, name in enumerate(NUMERIC):
        raw = cols[header.index(name)]
        try:
            numeric[:, k] = np.asarray(raw, dtype=np.float64)
        except ValueError:
            for j, v in enumerate(raw):  # slow path only for a column that has a bad value
                try:
                    numeric[j, k] = float(v)
                except ValueError:
                    bad_reason.setdefault(int(good[j]), (name, f"not a number: {v.strip()!r}"))
    finite = np.isfinite(numeric)
    for j, k in zip(*np.nonzero(~finite), strict=True):
        gi = int(good[j])
        if gi not in bad_reason:
            bad_reason[gi] = (NUMERIC[k], "not a finite number")
    sig = numeric[:, 4:6]
    for j, k in zip(*np.nonzero(finite[:, 4:6] & (sig <= 0)), strict=True):
        gi = int(good[j])
        bad_reason.setdefault(gi, (NUMERIC[4 + k], f"sigma must be positive, got {sig[j, k]:g}"))
    if bad_reason and not quarantine:
        i = min(bad_reason)
        fld, why = bad_reason[i]
        raise PlotsFileError(f"{p}:{line_no[i]}: field '{fld}': {why}")
    quarantined = [
        {"file": str(p), "line": int(line_no[i]), "field": fld, "reason": why, "raw": body[i][1]}
        for i, (fld, why) in sorted(bad_reason.items())
    ]
    ok = ~np.isin(good, np.fromiter(bad_reason, dtype=np.int64, count=len(bad_reason)))
    use = good[ok]
    num = numeric[ok]
    sensors_raw = (
        np.asarray(cols[header.index("sensor_id")], dtype=object)[ok] if good.size else np.empty(0, object)
    )
    sensor_ids, sensor_index = (
        np.unique(sensors_raw.astype(str), return_inverse=True)
        if use.size
        else (np.empty(0, str), np.empty(0, np.int64))
    )
    return Plots(
        time_s=num[:, 0].copy(),
        xyz=num[:, 1:4].copy(),
        sigma=num[:, 4:6].copy(),
        sensor_index=np.asarray(sensor_index, dtype=np.int64).reshape(-1),
        sensor_ids=[str(s).strip() for s in sensor_ids.tolist()] or ["default"],
        line=line_no[use],
        rows_read=len(body),
        quarantined=quarantined,
    )
