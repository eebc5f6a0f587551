"""``stratowatch score``: GOSPA and track continuity of a tracks file against truth.

Both files are CSV with a header. Truth: ``time_s,target_id`` and a position; tracks:
``time_s,track_id`` and a position. A position is ``x_m,y_m,z_m`` (a local Cartesian frame, as in
the shared benchmark) or ``lat_deg,lon_deg,alt_m`` (WGS-84, scored in ECEF metres); both files
must use the same kind. Velocity columns (``vx,vy,vz``), a class (``cls``) and a track ``status``
may be present and are ignored; any other column is an error, as are malformed rows and
non-finite numbers (the message names the file, line and field; exit code 2).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import numpy.typing as npt

from stratowatch.cli import UsageFailure
from stratowatch.sim.metrics import PointSet, ScoreResult, score_tracks

XYZ = ("x_m", "y_m", "z_m")
GEODETIC = ("lat_deg", "lon_deg", "alt_m")
IGNORED = frozenset({"vx", "vy", "vz", "cls", "status"})


@dataclass(slots=True)
class LoadedPoints:
    points: PointSet
    frame: str  # "xyz" or "geodetic"
    n_rows: int


def read_points(path: Path, id_column: str) -> LoadedPoints:
    """Read a truth or tracks CSV; raise :class:`UsageFailure` naming file, line and field."""
    name = str(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise UsageFailure(f"{name}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageFailure(f"{name}: not a UTF-8 text file") from exc
    except csv.Error as exc:
        raise UsageFailure(f"{name}: not a CSV file: {exc}") from exc
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise UsageFailure(f"{name}:1: empty file, expected a header starting 'time_s,{id_column}'")
    header = [cell.strip() for cell in rows[0]]
    columns = set(header)
    if len(columns) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise UsageFailure(f"{name}:1: column '{dup}' appears twice")
    if all(c in columns for c in XYZ):
        frame, position = "xyz", XYZ
    elif all(c in columns for c in GEODETIC):
        frame, position = "geodetic", GEODETIC
    else:
        have = XYZ if any(c in columns for c in XYZ) else GEODETIC
        missing = next(c for c in have if c not in columns)
        raise UsageFailure(
            f"{name}:1: missing column '{missing}' (a position is x_m,y_m,z_m or lat_deg,lon_deg,alt_m)"
        )
    for required in ("time_s", id_column):
        if required not in columns:
            raise UsageFailure(f"{name}:1: missing column '{required}'")
    known = {"time_s", id_column, *XYZ, *GEODETIC, *IGNORED}
    for h in header:
        if h not in known:
            raise UsageFailure(
                f"{name}:1: unknown column '{h}' (expected time_s,{id_column} and x_m,y_m,z_m "
                f"or lat_deg,lon_deg,alt_m; optional {','.join(sorted(IGNORED))})"
            )

    body = [(i + 1, r) for i, r in enumerate(rows) if i > 0 and any(cell.strip() for cell in r)]
    width = len(header)
    for line, r in body:
        if len(r) != width:
            raise UsageFailure(f"{name}:{line}: expected {width} fields, got {len(r)}")
    lines = np.fromiter((line for line, _ in body), dtype=np.int64, count=len(body))
    index = {h: k for k, h in enumerate(header)}

    def column(col: str, integer: bool = False) -> npt.NDArray[np.float64] | npt.NDArray[np.int64]:
        k = index[col]
        cells = [r[k].strip() for _, r in body]
        try:
            values = np.array([int(c) for c in cells], np.int64) if integer else np.array(cells, np.float64)
        except (ValueError, OverflowError):
            for (line, _), cell in zip(body, cells, strict=True):
                try:
                    int(cell) if integer else float(cell)
                except (ValueError, OverflowError):
                    what = "an integer id" if integer else "a number"
                    raise UsageFailure(f"{name}:{line}: field '{col}': not {what} ({cell!r})") from None
            raise
        if not integer:
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                i = int(bad[0])
                raise UsageFailure(f"{name}:{lines[i]}: field '{col}': not finite ({cells[i]})")
        return values

    time_s = column("time_s").astype(np.float64)
    ids = column(id_column, integer=True).astype(np.int64)
    a, b, c = (column(col).astype(np.float64) for col in position)
    if frame == "geodetic":
        for values, col, lo, hi in ((a, "lat_deg", -90.0, 90.0), (b, "lon_deg", -180.0, 360.0)):
            bad = np.flatnonzero((values < lo) | (values > hi))
            if bad.size:
                i = int(bad[0])
                raise UsageFailure(
                    f"{name}:{lines[i]}: field '{col}': {values[i]:g} outside [{lo:g}, {hi:g}]"
                )
        points = PointSet.from_geodetic(time_s, ids, a, b, c)
    else:
        points = PointSet(time_s, ids, np.column_stack([a, b, c]))
    return LoadedPoints(points, frame, len(body))


def _fmt(v: float | int, unit: str = "") -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:,.1f}{unit}" if abs(v) < 1e7 else f"{v:.4g}{unit}"
    return f"{v:,}{unit}"


def render(result: ScoreResult, truth_name: str, tracks_name: str) -> None:
    """Print the score as two readable tables."""
    from rich.console import Console
    from rich.table import Table

    s = result.summary()
    p = result.p
    console = Console()
    console.print(f"[bold]{tracks_name}[/bold] against [bold]{truth_name}[/bold]")
    gospa = Table(
        title=f"GOSPA (p={p:g}, c={result.c_m:g} m, alpha=2), mean over {s['n_times']} times",
        title_justify="left",
    )
    gospa.add_column("quantity")
    gospa.add_column("value", justify="right")
    gospa.add_column("as metres", justify="right")

    def root(v: float | int) -> str:
        return _fmt(float(v) ** (1.0 / p), " m") if not math.isnan(float(v)) else "n/a"

    gospa.add_row("GOSPA, mean over time", _fmt(s["gospa_mean_m"], " m"), "")
    gospa.add_row("GOSPA, RMS over time", _fmt(s["gospa_rms_over_time_m"], " m"), "")
    gospa.add_row(
        "  localisation (mean p-th power)",
        _fmt(s["localisation_mean_pth"]),
        root(s["localisation_mean_pth"]),
    )
    gospa.add_row("  missed (mean p-th power)", _fmt(s["missed_mean_pth"]), root(s["missed_mean_pth"]))
    gospa.add_row("  false (mean p-th power)", _fmt(s["false_mean_pth"]), root(s["false_mean_pth"]))
    gospa.add_row("truths per time", f"{s['mean_truths_per_scan']:.2f}", "")
    gospa.add_row("tracks per time", f"{s['mean_tracks_per_scan']:.2f}", "")
    gospa.add_row("missed truths per time", f"{s['mean_missed_per_scan']:.2f}", "")
    gospa.add_row("false tracks per time", f"{s['mean_false_per_scan']:.2f}", "")
    gospa.add_row("RMS error of assigned pairs", _fmt(s["rms_pos_err_assigned_m"], " m"), "")
    console.print(gospa)

    cont = Table(title="Track continuity", title_justify="left")
    cont.add_column("quantity")
    cont.add_column("value", justify="right")
    cont.add_row("truths", _fmt(s["n_truths"]))
    cont.add_row("track ids", _fmt(s["n_track_ids"]))
    cont.add_row("truths never tracked", _fmt(s["truths_never_tracked"]))
    cont.add_row("truths fragmented (> 1 track id)", _fmt(s["truths_fragmented"]))
    cont.add_row("track ids per tracked truth, mean", f"{s['ids_per_truth_mean_tracked']:.2f}")
    cont.add_row("track ids per truth, max", _fmt(s["ids_per_truth_max"]))
    cont.add_row("id switches", _fmt(s["id_switches"]))
    cont.add_row("false track ids (never assigned)", _fmt(s["unassigned_track_ids"]))
    console.print(cont)


@click.command("score")
@click.option("--truth", "truth_path", required=True, type=click.Path(path_type=Path), help="Truth CSV.")
@click.option("--tracks", "tracks_path", required=True, type=click.Path(path_type=Path), help="Tracks CSV.")
@click.option(
    "--c",
    "--cutoff-m",
    "c_m",
    type=float,
    default=1000.0,
    show_default=True,
    help="GOSPA cut-off c (m).",
)
@click.option("--p", "p", type=float, default=2.0, show_default=True, help="GOSPA order p.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    help="Also write the figures as JSON ('-' = stdout only).",
)
@click.option(
    "--per-time",
    "per_time_path",
    type=click.Path(path_type=Path),
    help="Write GOSPA per time to this CSV.",
)
def command(
    truth_path: Path,
    tracks_path: Path,
    c_m: float,
    p: float,
    json_path: Path | None,
    per_time_path: Path | None,
) -> None:
    """Score TRACKS against TRUTH: GOSPA (p=2, c=1000 m, alpha=2) averaged over time, with its
    localisation / missed / false parts, and track fragmentation.

    \b
    Truth header:  time_s,target_id,x_m,y_m,z_m[,vx,vy,vz,cls]
    Tracks header: time_s,track_id,x_m,y_m,z_m[,vx,vy,vz,status]
    (or lat_deg,lon_deg,alt_m instead of x_m,y_m,z_m in both files: scored in ECEF metres)
    """
    if not (c_m > 0 and math.isfinite(c_m)):
        raise UsageFailure(f"--c must be a positive number of metres, got {c_m}")
    if not (p >= 1 and math.isfinite(p)):
        raise UsageFailure(f"--p must be >= 1, got {p}")
    truth = read_points(truth_path, "target_id")
    tracks = read_points(tracks_path, "track_id")
    if truth.frame != tracks.frame and tracks.n_rows and truth.n_rows:
        raise UsageFailure(
            f"{truth_path} has {truth.frame} positions but {tracks_path} has {tracks.frame} positions"
        )
    result = score_tracks(truth.points, tracks.points, c_m=c_m, p=p)
    summary = result.summary()
    if json_path is not None and str(json_path) == "-":
        click.echo(json.dumps(summary, indent=1))
        return
    render(result, str(truth_path), str(tracks_path))
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageFailure(f"{json_path}: cannot write: {exc.strerror or exc}") from exc
    if per_time_path is not None:
        rows = np.column_stack(
            [
                result.times_s,
                result.distance_m,
                result.localisation_pth,
                result.missed_pth,
                result.false_pth,
                result.n_truth,
                result.n_tracks,
                np.bincount(np.searchsorted(result.times_s, result.pair_time_s), minlength=result.n_times),
            ]
        )
        try:
            with per_time_path.open("w", encoding="utf-8") as f:
                f.write("time_s,distance,localisation,missed,false,n_truth,n_tracks,n_pairs\n")
                np.savetxt(f, rows, delimiter=",", fmt="%.10g")
        except OSError as exc:
            raise UsageFailure(f"{per_time_path}: cannot write: {exc.strerror or exc}") from exc
