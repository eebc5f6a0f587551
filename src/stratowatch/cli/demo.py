"""``stratowatch demo``: simulate a two-balloon episode, track it, and say how well it went.

The episode comes from :mod:`stratowatch.sim` (two balloons at 18–20 km over Alberta and
Montana, the second appearing hours after the first, a few dozen airliners, six radars of two
partners with noise and clutter, ADS-B and APRS). The tracker runs over it scan by scan exactly
as it would live; afterwards the demo prints every confirmed track (class, identity, sensors,
when it was held, its error against the truth it followed), what became of each balloon, and
GOSPA against the truth, computed in ECEF metres.

GOSPA uses ``c = 5000 m`` by default rather than the benchmark's 1000 m: a radar plot 300 km
from the site has about 1 km of cross-range and vertical error, and balloons are seen only
every few scans, so 1 km would count well-held tracks as missed.

That printed summary is ``--no-serve``. By default the demo *serves*: it replays the episode's
scans through the live pipeline (:class:`stratowatch.service.pipeline.Pipeline`: tracker,
classifier with the wind match, drift predictions, alerts, store, bus) paced at ``--speed`` x
real time, and serves the HTTP API on ``--port`` meanwhile. The wind field is the real GFS
analysis in ``../shared/data/wind`` when present (valid 2010-10-26 12Z: its time axis is moved to
the episode, i.e. it is used as a steady field of a real day), else the analytic field.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
import numpy.typing as npt

from stratowatch.cli import UsageFailure
from stratowatch.model import ObjectClass, ObservationBatch, Track
from stratowatch.sim.metrics import PointSet, ScoreResult, score_tracks
from stratowatch.sim.scenario import Scenario, ScenarioConfig, generate_scenario
from stratowatch.weather.grid import WindGrid

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: How often (simulated seconds) the demo takes a classified snapshot of the tracks.
SNAPSHOT_PERIOD_S = 60.0


@dataclass(frozen=True, slots=True)
class TrackSummary:
    """One confirmed track over the episode."""

    track_id: int
    first_s: float
    last_s: float
    n_reports: int
    snapshot: Track | None
    truth_name: str | None
    truth_pairs: int
    mean_error_m: float

    @property
    def held_s(self) -> float:
        return self.last_s - self.first_s

    @property
    def class_label(self) -> str:
        c = self.snapshot.classification if self.snapshot else None
        if c is None:
            return "-"
        prob = "1.0" if c.probability >= 0.995 else f"{c.probability:.2f}".lstrip("0")
        return f"{c.label.name.lower()} {prob}"


@dataclass(frozen=True, slots=True)
class BalloonSummary:
    """What became of one true balloon: when it was observable, tracked, by which track ids."""

    name: str
    identity: str | None
    appears_s: float
    observable_times: int
    tracked_times: int
    first_tracked_s: float
    track_ids: tuple[int, ...]
    mean_error_m: float

    @property
    def tracked_fraction(self) -> float:
        return self.tracked_times / self.observable_times if self.observable_times else 0.0


@dataclass(slots=True)
class DemoResult:
    scenario: Scenario
    score: ScoreResult
    tracks: list[TrackSummary]
    balloons: list[BalloonSummary]
    elapsed_s: float
    track_loop_s: float
    truth_points: PointSet = field(repr=False)
    track_points: PointSet = field(repr=False)
    truth_geodetic: FloatArray = field(repr=False)
    track_geodetic: FloatArray = field(repr=False)


def run_demo(
    scenario: Scenario, c_m: float = 5000.0, on_scan: Callable[[int, float, int], None] | None = None
) -> DemoResult:
    """Track and score one simulated episode. ``on_scan(i, time_s, n_tracks)`` reports progress."""
    from stratowatch.tracking import Tracker

    started = time.perf_counter()
    tracker = Tracker(scenario.sensors)
    times: list[FloatArray] = []
    ids: list[IntArray] = []
    positions: list[FloatArray] = []
    snapshots: dict[int, Track] = {}
    next_snapshot = -np.inf
    loop_start = time.perf_counter()
    table = None
    for i, (t, observations) in enumerate(scenario.scans):
        batch = ObservationBatch.from_observations(observations, tracker.identities)
        table = tracker.step_batch(t, batch)
        n = len(table)
        if n:
            times.append(np.full(n, t))
            ids.append(table.track_id.astype(np.int64))
            positions.append(np.column_stack([table.lat_deg, table.lon_deg, table.alt_m]))
        if n and (t >= next_snapshot or not snapshots.keys() >= set(table.track_id.tolist())):
            # classified snapshots: every minute, and whenever a new track is confirmed
            snapshots.update((trk.track_id, trk) for trk in tracker.to_tracks(table))
            next_snapshot = t + SNAPSHOT_PERIOD_S
        if on_scan is not None:
            on_scan(i, t, n)
    if table is not None and len(table):
        snapshots.update((trk.track_id, trk) for trk in tracker.to_tracks(table))
    loop_s = time.perf_counter() - loop_start

    track_t = np.concatenate(times) if times else np.empty(0)
    track_id = np.concatenate(ids) if ids else np.empty(0, np.int64)
    track_geo = np.vstack(positions) if positions else np.empty((0, 3))
    scan_t = np.array([t for t, _ in scenario.scans])
    truth = scenario.truth_at(scan_t)
    truth_geo = np.column_stack([truth.lat_deg, truth.lon_deg, truth.alt_m])
    truth_pts = PointSet.from_geodetic(truth.time_s, truth.target_id, *truth_geo.T)
    track_pts = PointSet.from_geodetic(track_t, track_id, *track_geo.T)
    score = score_tracks(truth_pts, track_pts, c_m=c_m)

    matches = {m.track_id: m for m in score.track_matches()}
    summaries: list[TrackSummary] = []
    if track_id.size:
        uid, first_idx, counts = np.unique(track_id, return_index=True, return_counts=True)
        last_idx = track_id.size - 1 - np.unique(track_id[::-1], return_index=True)[1]
        for k, tid in enumerate(uid.tolist()):  # one row per track id, for the report
            m = matches.get(tid)
            summaries.append(
                TrackSummary(
                    track_id=tid,
                    first_s=float(track_t[first_idx[k]]),
                    last_s=float(track_t[last_idx[k]]),
                    n_reports=int(counts[k]),
                    snapshot=snapshots.get(tid),
                    truth_name=scenario.names[m.truth_id] if m else None,
                    truth_pairs=m.n_pairs if m else 0,
                    mean_error_m=m.mean_error_m if m else float("nan"),
                )
            )
    balloons = _balloon_summaries(scenario, score, truth_pts)
    return DemoResult(
        scenario=scenario,
        score=score,
        tracks=summaries,
        balloons=balloons,
        elapsed_s=time.perf_counter() - started,
        track_loop_s=loop_s,
        truth_points=truth_pts,
        track_points=track_pts,
        truth_geodetic=truth_geo,
        track_geodetic=track_geo,
    )


def _balloon_summaries(scenario: Scenario, score: ScoreResult, truth: PointSet) -> list[BalloonSummary]:
    out = []
    for tgt in scenario.targets:
        if tgt.object_class != ObjectClass.BALLOON:
            continue
        mine = score.pair_truth_id == tgt.target_id
        pair_t = score.pair_time_s[mine]
        out.append(
            BalloonSummary(
                name=tgt.name,
                identity=tgt.identity,
                appears_s=float(tgt.time_s[0]) if tgt.time_s.size else float("nan"),
                observable_times=int(np.sum(truth.ids == tgt.target_id)),
                tracked_times=int(mine.sum()),
                first_tracked_s=float(pair_t.min()) if pair_t.size else float("nan"),
                track_ids=tuple(int(v) for v in np.unique(score.pair_track_id[mine])),
                mean_error_m=float(score.pair_distance_m[mine].mean()) if mine.any() else float("nan"),
            )
        )
    return out


def write_csvs(result: DemoResult, out_dir: Path) -> tuple[Path, Path]:
    """truth.csv and tracks.csv (geodetic) that ``stratowatch score`` reads back."""
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_path, tracks_path = out_dir / "truth.csv", out_dir / "tracks.csv"
    classes = result.scenario.truth.object_class
    with truth_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "target_id", "lat_deg", "lon_deg", "alt_m", "cls"])
        tp = result.truth_points
        for t, i, (lat, lon, alt) in zip(
            tp.time_s.tolist(), tp.ids.tolist(), result.truth_geodetic.tolist(), strict=True
        ):
            cls = ObjectClass(int(classes[i])).name.lower()
            w.writerow([f"{t:.3f}", i, f"{lat:.8f}", f"{lon:.8f}", f"{alt:.2f}", cls])
    with tracks_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "track_id", "lat_deg", "lon_deg", "alt_m"])
        rp = result.track_points
        for t, i, (lat, lon, alt) in zip(
            rp.time_s.tolist(), rp.ids.tolist(), result.track_geodetic.tolist(), strict=True
        ):
            w.writerow([f"{t:.3f}", i, f"{lat:.8f}", f"{lon:.8f}", f"{alt:.2f}"])
    return truth_path, tracks_path


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S") if np.isfinite(t) else "-"


def _duration(seconds: float) -> str:
    s = max(round(seconds), 0)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _metres(v: float) -> str:
    return f"{v:,.0f} m" if np.isfinite(v) else "-"


def _console() -> Console:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or captured: room for the whole table
        console = Console(width=max(console.width, 110))
    return console


def render(result: DemoResult, max_rows: int) -> None:
    from rich import box
    from rich.table import Table

    console = _console()
    sc = result.scenario
    cfg = sc.config
    s = result.score.summary()
    n_ball = sum(1 for t in sc.targets if t.object_class == ObjectClass.BALLOON)
    start = datetime.fromtimestamp(cfg.start_time_s, UTC).strftime("%Y-%m-%d %H:%M")
    owners = sorted({x.owner for x in sc.sensors.values() if x.kind.startswith("radar")})
    console.print(
        f"[bold]Episode[/bold] {start} UTC + {_duration(cfg.duration_s)}, seed {cfg.seed}: "
        f"{n_ball} balloons, {len(sc.targets) - n_ball} aircraft; "
        f"{sum(1 for x in sc.sensors.values() if x.kind.startswith('radar'))} radars of "
        f"{' and '.join(owners)}, ADS-B and APRS; {len(sc.scans):,} scans, "
        f"{sc.n_observations:,} observations"
    )

    rows = sorted(result.tracks, key=lambda r: (not (r.truth_name or "").startswith("balloon"), r.first_s))
    table = Table(title="Confirmed tracks", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    for name, justify in (
        ("id", "right"),
        ("class", "left"),
        ("identity", "left"),
        ("partners", "left"),
        ("held, UTC", "left"),
        ("for", "right"),
        ("truth", "left"),
        ("error", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows[:max_rows]:
        snap = r.snapshot
        partners = ""
        if snap is not None:
            owners_of = {sc.sensors[x].owner for x in snap.sensors if x in sc.sensors}
            partners = "+".join(sorted(owners_of - {"OPEN"})) or "open"
        table.add_row(
            str(r.track_id),
            r.class_label,
            ", ".join(snap.identities) if snap and snap.identities else "-",
            partners,
            f"{_clock(r.first_s)[:5]}-{_clock(r.last_s)[:5]}",
            _duration(r.held_s)[:-3],
            r.truth_name or "(false)",
            _metres(r.mean_error_m),
        )
    table.caption = "error: mean distance to the truth the track followed most"
    if len(rows) > max_rows:
        table.caption += f"; {len(rows) - max_rows} more tracks not shown (--max-rows)"
    table.caption_justify = "left"
    console.print(table)

    bt = Table(title="Balloons", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    for name in ("truth", "identity", "appears", "tracked from", "tracked", "track ids", "error"):
        bt.add_column(name)
    for b in result.balloons:
        ids = ", ".join(str(t) for t in b.track_ids[:3]) + (", ..." if len(b.track_ids) > 3 else "")
        bt.add_row(
            b.name,
            b.identity or "none",
            _clock(b.appears_s),
            _clock(b.first_tracked_s),
            f"{100 * b.tracked_fraction:.0f}%",
            f"{len(b.track_ids)}: {ids}" if b.track_ids else "not tracked",
            _metres(b.mean_error_m),
        )
    bt.caption = "tracked: share of the scans where it was observable that a track was on it (< c)"
    bt.caption_justify = "left"
    console.print(bt)

    p = result.score.p
    console.print(
        f"[italic]GOSPA against truth[/italic] in ECEF metres (p={p:g}, c={result.score.c_m:g} m, "
        f"alpha=2), mean over {s['n_times']:,} scans"
    )
    gt = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    gt.add_column("quantity")
    gt.add_column("value", justify="right")
    gt.add_row("GOSPA", _metres(float(s["gospa_mean_m"])))
    for part in ("localisation", "missed", "false"):
        gt.add_row(f"  {part} part", _metres(float(s[f"{part}_mean_pth"]) ** (1 / p)))
    gt.add_row(
        "truths / tracks per scan", f"{s['mean_truths_per_scan']:.1f} / {s['mean_tracks_per_scan']:.1f}"
    )
    gt.add_row("truths (observable at some scan)", str(s["n_truths"]))
    gt.add_row("truths never tracked", str(s["truths_never_tracked"]))
    gt.add_row("track ids", str(s["n_track_ids"]))
    gt.add_row("fragmented truths", str(s["truths_fragmented"]))
    gt.add_row("id switches", str(s["id_switches"]))
    gt.add_row("false tracks", str(s["unassigned_track_ids"]))
    gt.add_row("RMS error of matched pairs", _metres(float(s["rms_pos_err_assigned_m"])))
    console.print(gt)
    console.print(
        f"Tracked {len(sc.scans):,} scans in {result.track_loop_s:.1f} s "
        f"({1000 * result.track_loop_s / max(len(sc.scans), 1):.1f} ms per scan); "
        f"total {result.elapsed_s:.1f} s."
    )


@click.command("demo")
@click.option("--hours", type=float, default=4.0, show_default=True, help="Simulated duration.")
@click.option(
    "--aircraft", "n_aircraft", type=int, default=30, show_default=True, help="Aircraft over the episode."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed (same seed, same episode).")
@click.option(
    "--coarse",
    type=int,
    default=1,
    show_default=True,
    help="Keep every k-th radar rotation only (a quicker, coarser picture).",
)
@click.option("--gospa-c", "c_m", type=float, default=5000.0, show_default=True, help="GOSPA cut-off c (m).")
@click.option("--max-rows", type=int, default=60, show_default=True, help="Most track rows to print.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write truth.csv and tracks.csv here.",
)
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="Serve the episode live through the pipeline and API, or only print the summary.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address when serving.")
@click.option("--port", type=int, default=8000, show_default=True, help="Listen port when serving (0: any).")
@click.option(
    "--speed",
    type=float,
    default=60.0,
    show_default=True,
    help="Replay speed when serving, x real time (0: as fast as the pipeline goes).",
)
@click.option(
    "--store",
    "store_url",
    help="Store URL when serving (default: a fresh SQLite file in a temporary directory).",
)
@click.option(
    "--winds",
    "winds_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Wind file for serving (default: the GFS sample in ../shared/data/wind, else analytic).",
)
def command(
    hours: float,
    n_aircraft: int,
    seed: int,
    coarse: int,
    c_m: float,
    max_rows: int,
    out_dir: Path | None,
    serve: bool,
    host: str,
    port: int,
    speed: float,
    store_url: str | None,
    winds_path: Path | None,
) -> None:
    """Simulate two drifting balloons, a few dozen aircraft and six radars of two partners over
    Alberta, Saskatchewan and Montana. By default replay them live through the pipeline and serve
    the API; with --no-serve, track them and print what the tracker made of it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not (0 < hours <= 48):
        raise UsageFailure(f"--hours must be in (0, 48], got {hours:g}")
    if not (0 <= n_aircraft <= 2000):
        raise UsageFailure(f"--aircraft must be in [0, 2000], got {n_aircraft}")
    if coarse < 1:
        raise UsageFailure(f"--coarse must be >= 1, got {coarse}")
    if not (c_m > 0 and np.isfinite(c_m)):
        raise UsageFailure(f"--gospa-c must be a positive number of metres, got {c_m:g}")
    config = ScenarioConfig(
        seed=seed, duration_s=hours * 3600.0, n_aircraft=n_aircraft, radar_report_every=coarse
    )
    if serve:
        if not (speed >= 0 and np.isfinite(speed)):
            raise UsageFailure(f"--speed must be >= 0, got {speed:g}")
        if not 0 <= port <= 65535:
            raise UsageFailure(f"--port must be in [0, 65535], got {port}")
        serve_demo(config, host, port, speed, store_url, winds_path)
        return
    console = _console()
    started = time.perf_counter()
    with console.status("simulating the episode"):
        scenario = generate_scenario(config)
    with Progress(
        TextColumn("[bold]tracking[/bold] {task.fields[clock]} UTC"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("scans, {task.fields[tracks]} tracks"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("demo", total=len(scenario.scans), clock="--:--:--", tracks=0)

        def on_scan(i: int, t: float, n: int) -> None:
            if i % 25 == 0 or i == len(scenario.scans) - 1:
                progress.update(task, completed=i + 1, clock=_clock(t), tracks=n)

        result = run_demo(scenario, c_m=c_m, on_scan=on_scan)
    result.elapsed_s = time.perf_counter() - started
    render(result, max_rows)
    if out_dir is not None:
        try:
            truth_path, tracks_path = write_csvs(result, out_dir)
        except OSError as exc:
            raise UsageFailure(f"{out_dir}: cannot write: {exc.strerror or exc}") from exc
        console.print(
            f"Wrote {truth_path} and {tracks_path}; score them with\n"
            f"  stratowatch score --truth {truth_path} --tracks {tracks_path} --c {c_m:g}"
        )


# ----------------------------------------------------------------------------- serving


def demo_winds(start_s: float, path: Path | None = None) -> WindGrid:
    """The demo's wind field: ``path``, else the GFS sample in ../shared/data/wind, else the
    analytic field. A real file's time axis is moved to start 6 h before the episode."""
    from stratowatch.service.pipeline import shift_field
    from stratowatch.weather import WindFormatError, analytic_field, load_winds

    if path is not None and not path.is_file():
        raise UsageFailure(f"{path}: wind file not found")
    candidates = [path] if path is not None else [d / GFS_SAMPLE for d in _shared_wind_dirs()]
    for p in candidates:
        if p is not None and p.is_file():
            try:
                grid = load_winds(p)
            except WindFormatError as exc:
                raise UsageFailure(str(exc)) from None
            return shift_field(grid, start_s - 6 * 3600.0)
    return analytic_field(t0_s=start_s - 6 * 3600.0, hours=72.0)


GFS_SAMPLE = "gfs_northamerica_2010102612_1deg.nc"


def _shared_wind_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    roots = [Path.cwd(), *[p for p in here.parents if (p / "pyproject.toml").is_file()]]
    return [r.parent / "shared" / "data" / "wind" for r in roots]


def serve_demo(
    config: ScenarioConfig,
    host: str,
    port: int,
    speed: float,
    store_url: str | None,
    winds_path: Path | None,
) -> None:
    """Replay the episode through the live pipeline at ``speed`` x real time and serve the API."""
    import asyncio
    import tempfile

    from stratowatch.cli.serve import start
    from stratowatch.config import ConfigError, load_settings
    from stratowatch.service.pipeline import Pipeline

    scenario = generate_scenario(config)
    winds = demo_winds(config.start_time_s, winds_path)
    if store_url is None:
        store_url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='stratowatch-demo-')) / 'demo.db'}"
    try:
        settings = load_settings(
            None,
            store_url=store_url,
            api={"host": host, "port": port},
            predictions={"members": 50, "hours": 24.0, "every_s": 900.0},
        )
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    n_ball = sum(1 for t in scenario.targets if t.object_class == ObjectClass.BALLOON)
    pace = f"replay at {speed:g}x real time" if speed > 0 else "replay as fast as possible"
    wind_note = f" ({winds.notes[-1]})" if winds.notes else ""
    click.echo(
        f"Demo episode: {n_ball} balloons, {len(scenario.targets) - n_ball} aircraft, "
        f"{len(scenario.scans):,} scans, {scenario.n_observations:,} observations over "
        f"{_duration(config.duration_s)}; winds: {winds.source}{wind_note}; store {store_url}; {pace}"
    )

    async def feed(pipeline: Pipeline) -> None:
        loop = asyncio.get_running_loop()
        wall0 = loop.time()
        t0 = scenario.scans[0][0] if scenario.scans else 0.0
        for t, observations in scenario.scans:
            if speed > 0:
                wait = wall0 + (t - t0) / speed - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            await asyncio.to_thread(pipeline.process, t, observations)
        log.warning("demo: the episode is over (%d scans replayed); still serving", len(scenario.scans))

    start(settings, feed=feed, winds=winds, sensors=scenario.sensors)
