"""Cone calibration: how often do the 50% and 90% cones hold the truth on simulated flights?

    .venv/bin/python bench/cone_calibration.py [--trials 80] [--members 300] [--hours 72] [--seed 0]
        [--sigma S --growth G --tau-h T --scale-spread K]   (override the default wind-error model)

See stratowatch.prediction.calibration for the simulation (random smooth error fields added
to the analytic field; balloons at 11-21 km anywhere in 25-60 deg of either hemisphere).
Target: the 90% cone holds the truth 85-95% of the time. Prints coverage per lead time and
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

from stratowatch.prediction import WindErrorModel
from stratowatch.prediction.calibration import calibrate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=80)
    ap.add_argument("--members", type=int, default=300)
    ap.add_argument("--hours", type=float, default=72.0)
    ap.add_argument("--seed", type=int, default=0)
    default = WindErrorModel()
    ap.add_argument("--sigma", type=float, default=default.sigma_mps)
    ap.add_argument("--growth", type=float, default=default.growth_mps_per_day)
    ap.add_argument("--tau-h", type=float, default=default.decorrelation_s / 3600.0)
    ap.add_argument("--scale-spread", type=float, default=default.scale_spread)
    args = ap.parse_args()
    model = WindErrorModel(args.sigma, args.growth, args.tau_h * 3600.0, args.scale_spread)
    t0 = time.perf_counter()
    cal = calibrate(
        trials=args.trials, members=args.members, hours=args.hours, seed=args.seed, wind_error=model
    )
    elapsed = time.perf_counter() - t0
    print(f"{args.trials} simulated flights, {args.members} members, wind error {model}")
    print("lead_h  in_50%  in_90%  median_error_km")
    for j, lead in enumerate(cal.lead_h):
        print(
            f"{lead:6.0f}  {cal.inside_50[:, j].mean():6.2f}  {cal.inside_90[:, j].mean():6.2f}  "
            f"{cal.median_error_km[j]:8.1f}"
        )
    verdict = "within" if 0.85 <= cal.coverage_90 <= 0.95 else "OUTSIDE"
    print(
        f"overall: 50% cone {cal.coverage_50:.3f}, 90% cone {cal.coverage_90:.3f} "
        f"({verdict} the 85-95% target)"
    )
    print(
        json.dumps(
            {
                "trials": args.trials,
                "members": args.members,
                "hours": args.hours,
                "coverage_50": round(cal.coverage_50, 4),
                "coverage_90": round(cal.coverage_90, 4),
                "coverage_90_by_lead": {
                    f"{h:g}": round(float(c), 3)
                    for h, c in zip(cal.lead_h, cal.inside_90.mean(axis=0), strict=True)
                },
                "elapsed_s": round(elapsed, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
