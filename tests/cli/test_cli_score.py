"""``stratowatch score``: equal to the shared benchmark scorer, readable output, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stratowatch import geo
from stratowatch.cli import cli
from stratowatch.sim import metrics

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_BENCH = REPO_ROOT.parent / "shared" / "bench" / "tracking"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["score", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def make_tracks(truth_csv: Path, out: Path, seed: int) -> None:
    """Tracks from truth: noise, dropped rows, a fragment after t=300 for every third target,
    and Poisson false tracks."""
    rng = np.random.default_rng(seed)
    d = np.genfromtxt(truth_csv, delimiter=",", names=True, dtype=None, encoding=None)
    lines = ["time_s,track_id,x_m,y_m,z_m"]
    for r in d:
        if rng.random() < 0.1:
            continue
        tid = int(r["target_id"])
        trk = tid * 10 + (1 if r["time_s"] > 300 and tid % 3 == 0 else 0)
        x, y, z = (
            r["x_m"] + rng.normal(0, 300),
            r["y_m"] + rng.normal(0, 300),
            r["z_m"] + rng.normal(0, 400),
        )
        lines.append(f"{r['time_s']:.1f},{trk},{x:.2f},{y:.2f},{z:.2f}")
    for t in np.unique(d["time_s"]):
        for k in range(rng.poisson(1.5)):
            x, y = rng.uniform(0, 4e5, 2)
            lines.append(f"{t:.1f},{9000 + k},{x:.2f},{y:.2f},10000.00")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.shared_data
@pytest.mark.parametrize("clustered", [False, True])
def test_equal_to_the_shared_scorer_on_a_generated_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clustered: bool
) -> None:
    if not (SHARED_BENCH / "score.py").exists():
        pytest.skip(f"shared benchmark scorer not found at {SHARED_BENCH}")
    scen = tmp_path / "scen"
    subprocess.run(
        [
            sys.executable,
            str(SHARED_BENCH / "gen_scenario.py"),
            str(scen),
            "--targets",
            "40",
            "--duration",
            "600",
            "--seed",
            "4",
        ],
        check=True,
        capture_output=True,
    )
    tracks = tmp_path / "tracks.csv"
    make_tracks(scen / "truth.csv", tracks, seed=4)
    if clustered:  # the large-set path (assignment per cluster of close points)
        monkeypatch.setattr(metrics, "DENSE_LIMIT", 0)
    for c in ("1000", "400"):
        ref_json = tmp_path / f"ref{c}.json"
        subprocess.run(
            [
                sys.executable,
                str(SHARED_BENCH / "score.py"),
                str(scen / "truth.csv"),
                str(tracks),
                "--c",
                c,
                "--json",
                str(ref_json),
            ],
            check=True,
            capture_output=True,
        )
        ref = json.loads(ref_json.read_text())
        code, out = run("--truth", str(scen / "truth.csv"), "--tracks", str(tracks), "--c", c, "--json", "-")
        assert code == 0, out
        ours = json.loads(out)
        assert set(ours) == set(ref)
        for key, value in ref.items():
            assert ours[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
        assert ours["truths_fragmented"] > 0 and ours["unassigned_track_ids"] > 0


def _small_pair(tmp_path: Path) -> tuple[Path, Path]:
    truth = write(
        tmp_path / "truth.csv",
        "time_s,target_id,x_m,y_m,z_m,vx,vy,vz,cls\n"
        "0,1,0,0,0,1,0,0,balloon\n0,2,5000,0,0,0,0,0,aircraft\n"
        "10,1,10,0,0,1,0,0,balloon\n10,2,5000,0,0,0,0,0,aircraft\n",
    )
    tracks = write(
        tmp_path / "tracks.csv",
        "time_s,track_id,x_m,y_m,z_m\n0,7,3,4,0\n10,7,10,0,0\n10,8,9000,0,0\n",
    )
    return truth, tracks


def test_readable_table_json_and_per_time(tmp_path: Path) -> None:
    truth, tracks = _small_pair(tmp_path)
    js, per_time = tmp_path / "s.json", tmp_path / "pt.csv"
    code, out = run(
        "--truth",
        str(truth),
        "--tracks",
        str(tracks),
        "--json",
        str(js),
        "--per-time",
        str(per_time),
    )
    assert code == 0, out
    assert "GOSPA (p=2, c=1000 m, alpha=2), mean over 2 times" in out
    assert "truths fragmented" in out and "false track ids" in out
    s = json.loads(js.read_text())
    # t0: loc 25, truth 2 missed (5e5); t10: loc 0, missed 5e5, false 5e5
    assert s["gospa_mean_m"] == pytest.approx((np.sqrt(25 + 5e5) + np.sqrt(1e6)) / 2)
    assert s["missed_mean_pth"] == 5e5 and s["false_mean_pth"] == 2.5e5
    assert s["n_truths"] == 2 and s["truths_never_tracked"] == 1 and s["unassigned_track_ids"] == 1
    rows = np.loadtxt(per_time, delimiter=",", skiprows=1)
    assert rows.shape == (2, 8)
    assert rows[:, 7].tolist() == [1, 1]  # pairs per time


def test_geodetic_files_are_scored_in_ecef(tmp_path: Path) -> None:
    lat2, lon2 = geo.destination(49.0, -112.0, 45.0, 600.0)
    truth = write(tmp_path / "t.csv", "time_s,target_id,lat_deg,lon_deg,alt_m\n0,1,49.0,-112.0,19000\n")
    tracks = write(
        tmp_path / "r.csv",
        f"time_s,track_id,lat_deg,lon_deg,alt_m\n0,3,{lat2:.9f},{lon2:.9f},19800\n",
    )
    code, out = run("--truth", str(truth), "--tracks", str(tracks), "--c", "5000", "--json", "-")
    assert code == 0, out
    assert json.loads(out)["gospa_mean_m"] == pytest.approx(1000.0, rel=0.005)
    xyz = write(tmp_path / "x.csv", "time_s,track_id,x_m,y_m,z_m\n0,3,0,0,0\n")
    code, out = run("--truth", str(truth), "--tracks", str(xyz))
    assert code == 2 and "geodetic positions but" in out


@pytest.mark.parametrize(
    ("truth_text", "expect"),
    [
        (
            "time_s,target_id,x_m,y_m,z_m\n0,1,0,0,0\n0,2,1,2\n",
            "truth.csv:3: expected 5 fields, got 4",
        ),
        (
            "time_s,target_id,x_m,y_m,z_m\n0,1,0,0,0\n5,2,abc,0,0\n",
            "truth.csv:3: field 'x_m': not a number ('abc')",
        ),
        (
            "time_s,target_id,x_m,y_m,z_m\n0,1,0,0,0\n\n5,2,0,nan,0\n",
            "truth.csv:4: field 'y_m': not finite (nan)",
        ),
        (
            "time_s,target_id,x_m,y_m,z_m\n0,1,0,0,inf\n",
            "truth.csv:2: field 'z_m': not finite (inf)",
        ),
        (
            "time_s,target_id,x_m,y_m,z_m\n0,1.5,0,0,0\n",
            "truth.csv:2: field 'target_id': not an integer id ('1.5')",
        ),
        (
            "time_s,target_id,x_m,y_m,z_m,colour\n0,1,0,0,0,red\n",
            "truth.csv:1: unknown column 'colour'",
        ),
        ("time_s,target_id,x_m,y_m\n0,1,0,0\n", "truth.csv:1: missing column 'z_m'"),
        ("target_id,x_m,y_m,z_m\n1,0,0,0\n", "truth.csv:1: missing column 'time_s'"),
        ("time_s,target_id,x_m,x_m,z_m\n0,1,0,0,0\n", "truth.csv:1: column 'x_m' appears twice"),
        ("", "truth.csv:1: empty file"),
        (
            "time_s,target_id,lat_deg,lon_deg,alt_m\n0,1,95,0,0\n",
            "truth.csv:2: field 'lat_deg': 95 outside [-90, 90]",
        ),
    ],
)
def test_bad_input_names_file_line_and_field(tmp_path: Path, truth_text: str, expect: str) -> None:
    truth = write(tmp_path / "truth.csv", truth_text)
    tracks = write(tmp_path / "tracks.csv", "time_s,track_id,x_m,y_m,z_m\n0,1,0,0,0\n")
    code, out = run("--truth", str(truth), "--tracks", str(tracks))
    assert code == 2
    assert expect in out
    assert "Traceback" not in out


def test_bad_tracks_file_and_missing_file(tmp_path: Path) -> None:
    truth, _ = _small_pair(tmp_path)
    tracks = write(tmp_path / "tracks.csv", "time_s,track_id,x_m,y_m,z_m\n0,7,3,4,0\n10,7,-inf,0,0\n")
    code, out = run("--truth", str(truth), "--tracks", str(tracks))
    assert code == 2 and "tracks.csv:3: field 'x_m': not finite (-inf)" in out
    code, out = run("--truth", str(tmp_path / "nope.csv"), "--tracks", str(tracks))
    assert code == 2 and "nope.csv: cannot read" in out
    code, out = run("--truth", str(truth), "--tracks", str(truth))
    assert code == 2 and "missing column 'track_id'" in out
    code, out = run("--truth", str(truth), "--tracks", str(truth), "--c", "-3")
    assert code == 2 and "--c must be a positive" in out
