#!/usr/bin/env python3
"""Tracking benchmark: stratowatch against Stone Soup on the shared scenarios.

Uses ../shared/bench/tracking (scenario generator, GOSPA scorer, Stone Soup runner). For each
target count it generates the seeded scenario, runs ``stratowatch track --timing`` (and, where a
Python with stonesoup is given, the Stone Soup runner), scores both with the shared scorer and
prints one JSON line per run plus a Markdown table.

    python bench/tracking_bench.py --targets 100 1000 --stonesoup-python /tmp/ss/bin/python
    python bench/tracking_bench.py --targets 10000 --duration 600
    python bench/tracking_bench.py --targets 100000 --duration 100 --no-score

Peak memory of the stratowatch run is measured with /usr/bin/time when available (else
resource.getrusage of the child). Never run as a test: these are measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "bench" / "tracking"


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload]


def last_json(text: str) -> dict[str, object]:
    return json.loads([ln for ln in text.splitlines() if ln.strip().startswith("{")][-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "tracking")
    ap.add_argument("--stonesoup-python", default=None, help="python with stonesoup installed")
    ap.add_argument("--association", default="gnn")
    ap.add_argument("--no-score", action="store_true")
    a = ap.parse_args()
    if not SHARED.is_dir():
        print(f"shared benchmark tools not found at {SHARED}", file=sys.stderr)
        return 2
    sw = shutil.which("stratowatch") or str(Path(sys.executable).parent / "stratowatch")
    rows = []
    for n in a.targets:
        scen = a.out / f"n{n}_d{int(a.duration)}_s{a.seed}"
        if not (scen / "detections_blind.csv").exists():
            run(
                [
                    sys.executable,
                    str(SHARED / "gen_scenario.py"),
                    str(scen),
                    "--targets",
                    str(n),
                    "--duration",
                    str(a.duration),
                    "--seed",
                    str(a.seed),
                ]
            )
        tracks = scen / f"sw_tracks_{a.association}.csv"
        timer = ["/usr/bin/time", "-f", "MAXRSS_KB %M"] if Path("/usr/bin/time").exists() else []
        p = run(
            [
                *timer,
                sw,
                "track",
                str(scen / "detections_blind.csv"),
                "-o",
                str(tracks),
                "--timing",
                "--association",
                a.association,
            ]
        )
        t = last_json(p.stderr)
        rss = [ln for ln in p.stderr.splitlines() if ln.startswith("MAXRSS_KB")]
        peak_mb = (
            int(rss[-1].split()[1]) / 1024
            if rss
            else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        )
        row: dict[str, object] = {
            "targets": n,
            "system": "stratowatch",
            "association": a.association,
            "ms_per_scan_median": t["per_scan_median_ms"],
            "track_loop_s": t["track_loop_s"],
            "peak_rss_mb": round(peak_mb, 1),
        }
        if not a.no_score:
            s = last_json(
                run([sys.executable, str(SHARED / "score.py"), str(scen / "truth.csv"), str(tracks)]).stdout
            )
            row.update(
                gospa_m=s["gospa_mean_m"],
                fragmented=s["truths_fragmented"],
                track_ids=s["n_track_ids"],
                missed_per_scan=s["mean_missed_per_scan"],
                false_per_scan=s["mean_false_per_scan"],
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
        if a.stonesoup_python:
            ss_out = scen / "ss"
            p = run(
                [
                    a.stonesoup_python,
                    str(SHARED / "run_stonesoup.py"),
                    str(scen),
                    "--assoc",
                    "kdgnn",
                    "--out",
                    str(ss_out),
                ]
            )
            st = last_json(p.stdout)
            srow: dict[str, object] = {
                "targets": n,
                "system": "stonesoup-kdgnn",
                "ms_per_scan_median": st.get("per_scan_median_ms"),
                "track_loop_s": st["track_loop_s"],
            }
            s = last_json(
                run(
                    [
                        sys.executable,
                        str(SHARED / "score.py"),
                        str(scen / "truth.csv"),
                        str(ss_out / "tracks.csv"),
                    ]
                ).stdout
            )
            srow.update(
                gospa_m=s["gospa_mean_m"],
                fragmented=s["truths_fragmented"],
                track_ids=s["n_track_ids"],
                missed_per_scan=s["mean_missed_per_scan"],
                false_per_scan=s["mean_false_per_scan"],
            )
            srow["speedup_stratowatch"] = round(float(st["track_loop_s"]) / float(t["track_loop_s"]), 1)  # type: ignore[arg-type]
            rows.append(srow)
            print(json.dumps(srow), flush=True)
    keys = [
        "targets",
        "system",
        "ms_per_scan_median",
        "track_loop_s",
        "gospa_m",
        "fragmented",
        "track_ids",
        "peak_rss_mb",
    ]
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print(
            "| "
            + " | ".join(
                str(round(r[k], 3)) if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys
            )
            + " |"
        )
    os.makedirs(a.out, exist_ok=True)
    (a.out / "results.jsonl").open("a").write("".join(json.dumps(r) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
