#!/usr/bin/env python3
"""The console with many live tracks: frame time and update latency in real headless Chromium.

The service is the real API (:func:`stratowatch.api.create_app` over a
:class:`~stratowatch.service.pipeline.Pipeline` and a temporary SQLite store, uvicorn on a free
loopback port). Its bus receives one ``tracks`` event per ``--period`` seconds carrying
``--tracks`` moving tracks (the pipeline's own event body, :func:`track_to_json`; a third each
balloons, aircraft and unknowns spread over North America), published straight onto the bus
that ``/api/v1/stream`` serves, so the figures are the console's and the stream's, not the
tracker's. Debian's Chromium (Playwright, ``/usr/bin/chromium``, software WebGL: SwiftShader)
opens the console, follows the stream for ``--duration`` seconds, and the page's own counters
are read back:

- update latency: from a tracks event's arrival in the page to the first frame drawn with it
  (the map's source re-tiled and rendered);
- render: building the track, trail and ellipse layers and handing them to MapLibre (JS);
- parse: ``JSON.parse`` of one event;
- frame time: ``requestAnimationFrame`` intervals while the updates stream in;
- data age: wall clock at arrival minus the event's time (server encode + transfer + queueing).

    .venv/bin/python bench/console_bench.py                       # 5,000 tracks, 1 Hz, 20 s
    .venv/bin/python bench/console_bench.py --tracks 500 --duration 10

Never run as a test: these are measurements. Prints one JSON line per run, then a table.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "web"))

from console_helpers import LiveService, chromium_missing, launch_chromium, offline_page  # noqa: E402

from stratowatch.model import Classification, ObjectClass, Track, TrackStatus  # noqa: E402
from stratowatch.service.serialize import track_to_json  # noqa: E402

CLASSES = (ObjectClass.BALLOON, ObjectClass.AIRCRAFT, ObjectClass.UNKNOWN)


class Picture:
    """``n`` tracks moving on straight lines; ``at(t)`` is the pipeline's tracks event at ``t``."""

    def __init__(self, n: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.lat0 = rng.uniform(25.0, 65.0, n)
        self.lon0 = rng.uniform(-135.0, -60.0, n)
        self.cls = np.arange(n) % 3
        self.alt = np.where(self.cls == 1, rng.uniform(3000, 12500, n), rng.uniform(15000, 25000, n))
        speed = np.where(self.cls == 1, rng.uniform(150, 260, n), rng.uniform(5, 40, n))
        heading = rng.uniform(0, 2 * math.pi, n)
        self.ve = speed * np.sin(heading)
        self.vn = speed * np.cos(heading)
        self.t0 = time.time()

    def at(self, t: float) -> dict[str, Any]:
        dt = t - self.t0
        lat = self.lat0 + self.vn * dt / 111_000.0
        lon = self.lon0 + self.ve * dt / (111_000.0 * np.cos(np.radians(self.lat0)))
        tracks = []
        for i in range(self.n):  # the bus carries one JSON object per track, as the pipeline's
            label = CLASSES[int(self.cls[i])]
            ident = (f"icao:{i:06X}",) if label == ObjectClass.AIRCRAFT else ()
            tracks.append(
                track_to_json(
                    Track(
                        track_id=i + 1,
                        time_s=t,
                        status=TrackStatus.CONFIRMED,
                        lat_deg=float(lat[i]),
                        lon_deg=float(lon[i]),
                        alt_m=float(self.alt[i]),
                        velocity_enu_mps=(float(self.ve[i]), float(self.vn[i]), 0.0),
                        position_sigma_m=(300.0, 300.0, 100.0),
                        model_probabilities={"cv": 1.0},
                        identities=ident,
                        sensors=("bench-radar",),
                        first_time_s=self.t0,
                        last_update_s=t,
                        n_updates=int(dt) + 1,
                        classification=Classification(label, 0.9, {label.name.lower(): 0.9}, ("bench",)),
                    )
                )
            )
        return {"time_s": t, "tracks": tracks}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run(n_tracks: int, duration_s: float, period_s: float, hide: tuple[str, ...] = ()) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    svc = LiveService(tmp, settings={"geofences": {"sample_sites": True}})
    picture = Picture(n_tracks)
    stop = threading.Event()
    published = [0]
    encode_s: list[float] = []

    def publisher() -> None:
        next_t = time.time()
        while not stop.is_set():
            t0 = time.perf_counter()
            svc.pipeline.bus.publish("tracks", picture.at(time.time()))
            encode_s.append(time.perf_counter() - t0)
            published[0] += 1
            next_t += period_s
            stop.wait(max(0.0, next_t - time.time()))

    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page, outside = offline_page(browser, svc.url)
            page.goto(svc.login_url())
            page.wait_for_function(
                "window.stratowatch && window.stratowatch.state.ready === true", timeout=60_000
            )
            for layer in hide:  # the console's own layer switches
                page.uncheck(f"#show-{layer}")
            thread = threading.Thread(target=publisher, daemon=True)
            thread.start()
            page.wait_for_function(f"window.stratowatch.state.tracks.size === {n_tracks}", timeout=60_000)
            # measure from here: drop the warm-up figures
            page.evaluate(
                "() => { const s = window.stratowatch.stats; for (const k of"
                " ['latenciesMs','parseMs','renderMs','dataAgeMs','frameDeltasMs']) s[k].length = 0;"
                " s.trackEvents = 0; }"
            )
            time.sleep(duration_s)
            stats = page.evaluate("() => window.stratowatch.stats")
            shown = page.evaluate("window.stratowatch.state.visible")
            stop.set()
            thread.join(5.0)
            browser.close()
    finally:
        stop.set()
        svc.close()
    frames = stats["frameDeltasMs"]
    return {
        "tracks": n_tracks,
        "hidden": list(hide),
        "shown": shown,
        "duration_s": duration_s,
        "period_s": period_s,
        "events_received": stats["trackEvents"],
        "dropped": stats["dropped"],
        "outside_requests": len(outside),
        "latency_ms": {
            "p50": pct(stats["latenciesMs"], 50),
            "p95": pct(stats["latenciesMs"], 95),
            "max": pct(stats["latenciesMs"], 100),
        },
        "render_ms": {"p50": pct(stats["renderMs"], 50), "p95": pct(stats["renderMs"], 95)},
        "parse_ms": {"p50": pct(stats["parseMs"], 50), "p95": pct(stats["parseMs"], 95)},
        "data_age_ms": {"p50": pct(stats["dataAgeMs"], 50), "p95": pct(stats["dataAgeMs"], 95)},
        "frame_ms": {"p50": pct(frames, 50), "p95": pct(frames, 95), "max": pct(frames, 100)},
        "fps": 1000.0 / statistics.fmean(frames) if frames else float("nan"),
        "server_event_build_ms_p50": 1000.0 * pct(encode_s, 50),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, nargs="+", default=[5000])
    ap.add_argument("--duration", type=float, default=20.0, help="seconds measured per run")
    ap.add_argument("--period", type=float, default=1.0, help="seconds between tracks events")
    ap.add_argument(
        "--hide", nargs="*", default=[], choices=["trails", "ellipses", "labels"], help="layers switched off"
    )
    args = ap.parse_args()
    reason = chromium_missing()
    if reason:
        sys.exit(f"console_bench: {reason}")
    rows = []
    for n in args.tracks:
        r = run(n, args.duration, args.period, tuple(args.hide))
        print(json.dumps(r), flush=True)
        rows.append(r)
    print("\n| tracks | events | latency p50 / p95 / max ms | render p50 ms | parse p50 ms |", end="")
    print(" frame p50 / p95 ms | fps |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        lat, fr = r["latency_ms"], r["frame_ms"]
        print(
            f"| {r['tracks']} | {r['events_received']} |"
            f" {lat['p50']:.0f} / {lat['p95']:.0f} / {lat['max']:.0f} |"
            f" {r['render_ms']['p50']:.0f} | {r['parse_ms']['p50']:.0f} |"
            f" {fr['p50']:.0f} / {fr['p95']:.0f} | {r['fps']:.1f} |"
        )


if __name__ == "__main__":
    main()
