"""``stratowatch track DETECTIONS.csv -o TRACKS.csv``: the tracker on a plots CSV.

Input header ``time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m`` (local Cartesian metres, rows
grouped by scan time); output ``time_s,track_id,x_m,y_m,z_m`` for every reported confirmed track
at every scan time.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from stratowatch.cli import UsageFailure
from stratowatch.tracking.plots_csv import PlotsFileError, read_plots_csv


@click.command(help=__doc__)
@click.argument("detections", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Tracks CSV to write.",
)
@click.option("--association", type=click.Choice(["gnn", "jpda"]), default="gnn", show_default=True)
@click.option(
    "--confirm",
    default="2/3",
    show_default=True,
    help="M/N confirmation: M hits in the first N scans.",
)
@click.option("--max-misses", default=3, show_default=True, help="Consecutive misses before deletion.")
@click.option(
    "--quarantine",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write bad rows here (JSON lines) and go on.",
)
@click.option("--timing", is_flag=True, help="Print one JSON line of timings on stderr.")
def command(
    detections: Path,
    output: Path,
    association: str,
    confirm: str,
    max_misses: int,
    quarantine: Path | None,
    timing: bool,
) -> None:
    from stratowatch.model import MeasurementKind, ObservationBatch
    from stratowatch.tracking import TrackerConfig, local_tracker

    try:
        m_str, n_str = confirm.split("/")
        cfg = TrackerConfig(
            association=association,
            confirm_hits=int(m_str),
            confirm_window=int(n_str),
            max_misses=max_misses,
        )
    except ValueError as exc:
        raise UsageFailure(f"--confirm {confirm!r}: {exc}") from None

    t0 = time.perf_counter()
    try:
        plots = read_plots_csv(detections, quarantine=quarantine is not None)
    except PlotsFileError as exc:
        raise UsageFailure(str(exc)) from None
    except OSError as exc:
        raise UsageFailure(f"{detections}: {exc.strerror}") from None
    if quarantine is not None:
        with quarantine.open("w") as fq:
            for rec in plots.quarantined:
                fq.write(json.dumps(rec) + "\n")
    read_s = time.perf_counter() - t0

    tracker = local_tracker(cfg)
    order = np.argsort(plots.time_s, kind="stable")
    times = plots.time_s[order]
    starts = np.flatnonzero(np.r_[True, np.diff(times) > 0])
    ends = np.r_[starts[1:], times.size]
    out_t, out_id, out_xyz = [], [], []
    per_scan = []
    loop_t0 = time.perf_counter()
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):  # one step per scan
        rows = order[s:e]
        ts = time.perf_counter()
        batch = ObservationBatch.from_arrays(
            plots.time_s[rows],
            MeasurementKind.LOCAL_XYZ,
            plots.xyz[rows],
            plots.sigma[rows],
            sensor_index=plots.sensor_index[rows],
            sensor_ids=plots.sensor_ids,
            obs_index=rows,
        )
        table = tracker.step_batch(float(times[s]), batch)
        per_scan.append(time.perf_counter() - ts)
        out_t.append(np.full(len(table), times[s]))
        out_id.append(table.track_id)
        out_xyz.append(table.x[:, :3])
    loop_s = time.perf_counter() - loop_t0

    t_all = np.concatenate(out_t) if out_t else np.empty(0)
    id_all = np.concatenate(out_id) if out_id else np.empty(0, np.int64)
    xyz_all = np.concatenate(out_xyz) if out_xyz else np.empty((0, 3))
    with output.open("w") as f:
        f.write("time_s,track_id,x_m,y_m,z_m\n")
        f.writelines(
            f"{t:.3f},{i},{x:.2f},{y:.2f},{z:.2f}\n"
            for t, i, (x, y, z) in zip(t_all.tolist(), id_all.tolist(), xyz_all.tolist(), strict=True)
        )
    click.echo(
        f"{detections}: read {plots.rows_read} rows, used {plots.time_s.size}, "
        f"quarantined {len(plots.quarantined)}; {len(starts)} scans, "
        f"{np.unique(id_all).size} confirmed track ids -> {output}",
        err=True,
    )
    if timing:
        sys.stderr.write(
            json.dumps(
                {
                    "read_s": round(read_s, 4),
                    "track_loop_s": round(loop_s, 4),
                    "per_scan_median_ms": round(1000 * float(np.median(per_scan)) if per_scan else 0.0, 3),
                    "n_scans": len(starts),
                    "n_track_ids": int(np.unique(id_all).size),
                }
            )
            + "\n"
        )
