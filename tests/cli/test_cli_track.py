import json

import numpy as np
from click.testing import CliRunner

from stratowatch.cli import cli


def _scenario(tmp_path, n_targets=6, scans=30, seed=0):
    """A small plots file: straight-flying aircraft and balloons, Pd 0.9, a little clutter."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(5e4, 3.5e5, (n_targets, 3))
    x0[:, 2] = np.where(np.arange(n_targets) % 2, 10e3, 19e3)
    v = rng.normal(0, 1, (n_targets, 3))
    v[:, 2] = 0
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v *= np.where(np.arange(n_targets) % 2, 200.0, 20.0)[:, None]
    rows, truth = [], []
    for k in range(scans):
        t = 10.0 * k
        pos = x0 + v * t
        truth += [(t, i, *pos[i]) for i in range(n_targets)]
        for i in range(n_targets):
            if rng.random() < 0.9:
                z = pos[i] + rng.normal(0, [150, 150, 300])
                rows.append((t, *z))
        for _ in range(rng.poisson(3)):
            rows.append((t, *rng.uniform(0, [4e5, 4e5, 25e3])))
    det = tmp_path / "det.csv"
    det.write_text(
        "time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m\n"
        + "".join(f"{r[0]},radar1,{r[1]:.2f},{r[2]:.2f},{r[3]:.2f},150,300\n" for r in rows)
    )
    return det, truth


def test_track_command_end_to_end(tmp_path):
    det, truth = _scenario(tmp_path)
    out = tmp_path / "tracks.csv"
    res = CliRunner().invoke(cli, ["track", str(det), "-o", str(out), "--timing"])
    assert res.exit_code == 0, res.output
    timing = json.loads([ln for ln in res.stderr.splitlines() if ln.startswith("{")][-1])
    assert set(timing) == {"read_s", "track_loop_s", "per_scan_median_ms", "n_scans", "n_track_ids"}
    assert timing["n_scans"] == 30
    lines = out.read_text().splitlines()
    assert lines[0] == "time_s,track_id,x_m,y_m,z_m"
    data = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]])
    # at the last scan every target has a track within 500 m, and there is no false track
    t_last = 290.0
    last = data[data[:, 0] == t_last]
    tr = np.array([p[2:] for p in truth if p[0] == t_last])
    d = np.linalg.norm(tr[:, None, :] - last[None, :, 2:], axis=2)
    assert np.all(d.min(axis=1) < 500.0)
    assert len(last) == len(tr)
    assert timing["n_track_ids"] <= 8  # six targets, at most a couple of breaks


def test_track_command_reports_bad_input_without_traceback(tmp_path):
    det = tmp_path / "bad.csv"
    det.write_text("time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m\n0,r,1,2,3,150,300\n0,r,1,2,3,-1,300\n")
    res = CliRunner().invoke(cli, ["track", str(det), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 2
    assert "bad.csv:3: field 'sigma_m': sigma must be positive" in res.output
    assert "Traceback" not in res.output
    q = tmp_path / "q.jsonl"
    res = CliRunner().invoke(cli, ["track", str(det), "-o", str(tmp_path / "o.csv"), "--quarantine", str(q)])
    assert res.exit_code == 0
    assert "read 2 rows, used 1, quarantined 1" in res.stderr
    rec = json.loads(q.read_text())
    assert rec["line"] == 3 and rec["field"] == "sigma_m"


def test_track_command_missing_file_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(cli, ["track", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "nope.csv" in res.output and "Traceback" not in res.output
