"""How long loading each shared wind / sounding / flight file takes (load_s).

Run:  .venv/bin/python bench/bench_weather_load.py [--repeat 3]
Prints the best of ``--repeat`` loads of each file (after one warm-up load for the imports).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from stratowatch.weather import load_winds

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    files = sorted((DATA / "wind").iterdir())
    files += sorted(p for p in (DATA / "soundings").iterdir() if "UPA_obs" not in p.name)
    files += sorted((DATA / "balloon_tracks").glob("*.kmz"))
    load_winds(files[0])  # warm-up: imports
    for f in files:
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            g = load_winds(f)
            best = min(best, time.perf_counter() - t0)
        print(f"load_s {best:7.3f}  {f.name:55s} {g.shape}")
    ruc = sorted((DATA / "wind").glob("ruc.*"))
    t0 = time.perf_counter()
    g = load_winds(ruc)
    print(f"load_s {time.perf_counter() - t0:7.3f}  {'both RUC files merged':55s} {g.shape}")


if __name__ == "__main__":
    main()
