"""``stratowatch replay FILE... [--speed 10]``: merge sensor files of any formats in time order
and run them through the tracker as if live, printing a periodic summary.

Observations are cut into tracker steps of ``--window`` seconds of data time (default 1 s).
``--speed 10`` replays ten times faster than real time; ``--speed 0`` as fast as possible.
Radar plots (POLAR / POLAR_HEIGHT) need their sensor's site in the ``--sensors`` registry; plots
of unregistered radars are skipped and counted. Benchmark plots (local x/y/z) are tracked in a
local frame and cannot be mixed with geodetic formats.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import click

from stratowatch.cli import UsageFailure
from stratowatch.cli.ingest import parse_date
from stratowatch.model import MeasurementKind, Observation, Sensor, Track


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.command(help=__doc__)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-f", "--format", "fmt", default="auto", show_default=True, help="Format of all files, or auto."
)
@click.option(
    "--speed", default=0.0, show_default=True, type=float, help="Times real time; 0 = as fast as possible."
)
@click.option(
    "--window", default=1.0, show_default=True, type=float, help="Seconds of data per tracker step."
)
@click.option("--every", default=60.0, show_default=True, type=float, help="Data seconds between summaries.")
@click.option("--sensors", type=click.Path(dir_okay=False, path_type=Path), help="Sensor registry (TOML).")
@click.option("--date", "date_text", help="UTC date (YYYY-MM-DD) for formats with only a time of day.")
def command(
    files: tuple[Path, ...],
    fmt: str,
    speed: float,
    window: float,
    every: float,
    sensors: Path | None,
    date_text: str | None,
) -> None:
    from stratowatch.ingest.registry import EMPTY_REGISTRY, RegistryError, load_registry
    from stratowatch.ingest.replay import ReplayInputError, load, merge, paced, steps
    from stratowatch.tracking import Tracker, local_tracker

    if not window > 0:
        raise UsageFailure(f"--window {window}: must be positive")
    registry = EMPTY_REGISTRY
    if sensors is not None:
        try:
            registry = load_registry(sensors)
        except RegistryError as e:
            raise UsageFailure(str(e)) from None
    for f in files:
        if not f.is_file():
            raise UsageFailure(f"{f}: no such file")
    try:
        loaded = load(list(files), fmt, registry, parse_date(date_text))
    except ReplayInputError as e:
        raise UsageFailure(str(e)) from None
    for path, st in loaded.stats.items():
        q = sum(st.quarantined.values())
        click.echo(
            f"{path}: {loaded.formats[path]}, {st.units} units, {st.observations} observations, "
            f"{sum(st.messages.values())} messages, {q} quarantined"
        )
    observations, skipped = usable(merge(loaded.observations), registry.sensors)
    if skipped:
        click.echo(f"skipped {skipped} radar plots of sensors without a registered site")
    if not observations:
        click.echo("no observations to replay")
        return
    local = [o.kind == MeasurementKind.LOCAL_XYZ for o in observations]
    if any(local) and not all(local):
        raise UsageFailure("plots in local x/y/z cannot be replayed together with geodetic formats")
    tracker = local_tracker() if all(local) else Tracker(sensors=registry.sensors)
    n_steps = n_obs = 0
    next_summary = observations[0].time_s + every
    tracks: list[Track] = []
    printed = False
    wall0 = time.perf_counter()
    for t, obs in paced(steps(observations, window), speed):
        tracks = tracker.step(t, obs)
        n_steps += 1
        n_obs += len(obs)
        printed = False
        if t >= next_summary:
            click.echo(_summary(t, n_steps, n_obs, tracks))
            next_summary = t + every
            printed = True
    if not printed:
        click.echo(_summary(observations[-1].time_s, n_steps, n_obs, tracks))
    click.echo(f"replayed {n_obs} observations in {n_steps} steps, {time.perf_counter() - wall0:.1f} s wall")
    for tr in tracks:
        ids = ",".join(tr.identities) or "-"
        click.echo(
            f"  track {tr.track_id:5d}  {tr.lat_deg:9.4f} {tr.lon_deg:10.4f} {tr.alt_m:8.0f} m  "
            f"{tr.speed_mps:6.1f} m/s  {tr.n_updates:5d} updates  {ids}"
        )


def usable(observations: list[Observation], sensors: Mapping[str, Sensor]) -> tuple[list[Observation], int]:
    """Drop radar plots whose sensor has no registered site (the tracker needs the site)."""
    polar = (MeasurementKind.POLAR, MeasurementKind.POLAR_HEIGHT)
    reg = sensors
    keep = [
        o for o in observations if o.kind not in polar or (o.sensor_id in reg and reg[o.sensor_id].has_site)
    ]
    return keep, len(observations) - len(keep)


def _summary(t: float, n_steps: int, n_obs: int, tracks: list[Track]) -> str:
    with_id = sum(1 for tr in tracks if tr.identities)
    return f"{_utc(t)}  steps {n_steps}  observations {n_obs}  tracks {len(tracks)} ({with_id} with identity)"
