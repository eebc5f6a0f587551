"""``stratowatch predict``: where a drifting balloon goes (or, with --backward, came from).

Examples::

    stratowatch predict --winds gfs.nc --lat 45 --lon -140 --alt-m 18000 \\
        --time 2010-10-26T12:00:00Z --hours 72 --members 1000 -o cone.geojson
    stratowatch predict --winds flight_0.kmz --from-flight flight_1.kmz --burst-alt-m 30000 -o next.csv

OUT ends in .geojson (50%/90% cones every --cone-every-h hours, median and deterministic
paths, region arrivals), .kml, or .csv (``member,time_utc,lat,lon,alt_m``; member 0 is the
deterministic run). ``--winds`` takes GRIB, NetCDF, soundings, or a flight track (KML/KMZ/CSV)
from whose ascent a wind profile is derived; several files (``--winds A B`` or ``--winds A
--winds B``) are merged along time. Without ``--winds`` the analytic test field is used
(said on stderr).
"""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click
import numpy as np

from stratowatch.cli import UsageFailure


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageFailure(f"--time {text!r}: not an ISO 8601 time or POSIX seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _parse_region(text: str) -> tuple[str, float, float, float]:
    try:
        name, rest = text.split("=", 1)
        lat, lon, radius_km = (float(x) for x in rest.split(","))
    except ValueError:
        raise UsageFailure(f"--region {text!r}: expected NAME=LAT,LON,RADIUS_KM") from None
    if not name or not radius_km > 0 or abs(lat) > 90:
        raise UsageFailure(f"--region {text!r}: needs a name, |lat| <= 90 and a positive radius")
    return name, lat, lon, radius_km


def launch_from_flight(path: Path, window_s: float = 600.0) -> tuple[float, float, float, float, float]:
    """(time_s, lat, lon, alt_m, ascent rate m/s) from a flight's first points.

    The ascent rate is the least-squares slope of altitude over the first ``window_s`` seconds
    (at least the first three points).
    """
    from stratowatch.ingest.kml import FlightFormatError, read_flight

    try:
        flight = read_flight(path)
    except FlightFormatError as exc:
        raise UsageFailure(str(exc)) from None
    if len(flight) < 3:
        raise UsageFailure(f"{path}: --from-flight needs at least 3 timed points, found {len(flight)}")
    t = flight.time_s - flight.time_s[0]
    n = max(3, int(np.searchsorted(t, window_s, side="right")))
    slope = float(np.polyfit(t[:n], flight.alt_m[:n], 1)[0])
    if not slope > 0:
        raise UsageFailure(f"{path}: the flight does not climb over its first {n} points")
    return (
        float(flight.time_s[0]),
        float(flight.lat_deg[0]),
        float(flight.lon_deg[0]),
        float(flight.alt_m[0]),
        slope,
    )


@click.command(help=__doc__)
@click.argument("more_winds", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--winds", "winds", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Wind file(s): GRIB, NetCDF, sounding, or a flight track (repeatable).")  # fmt: skip
@click.option("--from-flight", type=click.Path(dir_okay=False, path_type=Path),
              help="Take launch point, time and ascent rate from this flight's first points.")  # fmt: skip
@click.option("--lat", type=float, help="Start latitude (deg).")
@click.option("--lon", type=float, help="Start longitude (deg).")
@click.option(
    "--alt-m", type=float, help="Start altitude (m); omit with --velocity to infer it from the drift."
)
@click.option("--time", "time_text", help="Start time: ISO 8601 UTC or POSIX seconds.")
@click.option("--hours", type=float, default=72.0, show_default=True)
@click.option("--members", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--backward", is_flag=True, help="Integrate backward in time (where did it come from).")
@click.option("--profile", "profile_kind", default=None,
              type=click.Choice(["float", "float-pressure", "ascent-burst-descent", "descent"]),
              help="Vertical profile [float; ascent-burst-descent with --from-flight].")  # fmt: skip
@click.option("--ascent-rate", type=float, default=5.0, show_default=True, help="m/s")
@click.option("--burst-alt-m", type=float, default=30000.0, show_default=True)
@click.option("--descent-rate", type=float, default=5.0, show_default=True, help="Sea-level m/s.")
@click.option("--float-pressure-hpa", type=float, default=float("nan"))
@click.option("--ground-alt-m", type=float, default=0.0, show_default=True)
@click.option(
    "--velocity", nargs=2, type=float, default=None, help="Observed ground velocity EAST NORTH (m/s)."
)
@click.option(
    "--sigma-pos-m", type=float, default=1000.0, show_default=True, help="Horizontal position sigma."
)
@click.option("--sigma-alt-m", type=float, default=300.0, show_default=True)
@click.option("--wind-sigma", type=float, default=None, help="Wind error sigma at lead 0 (m/s).")
@click.option("--wind-growth", type=float, default=None, help="Wind error growth (m/s per day).")
@click.option("--wind-tau-h", type=float, default=None, help="Wind error decorrelation time (h).")
@click.option("--dt-s", type=float, default=60.0, show_default=True, help="Integration step.")
@click.option("--output-every-s", type=float, default=600.0, show_default=True)
@click.option("--cone-every-h", type=float, default=6.0, show_default=True)
@click.option("--region", "regions", multiple=True, help="NAME=LAT,LON,RADIUS_KM: report entry probability.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="OUT.geojson, OUT.kml or OUT.csv")  # fmt: skip
@click.option("--timing", is_flag=True, help="Print one JSON line with load_s and integrate_s on stderr.")
def command(
    more_winds: tuple[Path, ...],
    winds: tuple[Path, ...],
    from_flight: Path | None,
    lat: float | None,
    lon: float | None,
    alt_m: float | None,
    time_text: str | None,
    hours: float,
    members: int,
    seed: int,
    backward: bool,
    profile_kind: str | None,
    ascent_rate: float,
    burst_alt_m: float,
    descent_rate: float,
    float_pressure_hpa: float,
    ground_alt_m: float,
    velocity: tuple[float, float] | None,
    sigma_pos_m: float,
    sigma_alt_m: float,
    wind_sigma: float | None,
    wind_growth: float | None,
    wind_tau_h: float | None,
    dt_s: float,
    output_every_s: float,
    cone_every_h: float,
    regions: tuple[str, ...],
    output: Path,
    timing: bool,
) -> None:
    from dataclasses import replace

    from stratowatch.prediction import (
        FlightProfile,
        Region,
        TrackState,
        WindErrorModel,
        cones,
        ensemble,
        region_arrival,
    )
    from stratowatch.prediction.output import cone_lead_indices, write_csv, write_geojson, write_kml
    from stratowatch.weather.errors import WindDomainError, WindFormatError
    from stratowatch.weather.interp import wind_at

    winds = winds + more_winds  # `--winds A B C` and `--winds A --winds B` both work
    suffix = output.suffix.lower()
    if suffix not in (".geojson", ".json", ".kml", ".csv"):
        raise UsageFailure(f"{output}: output must end in .geojson, .kml or .csv")
    if members < 1 or hours <= 0 or dt_s <= 0 or output_every_s <= 0:
        raise UsageFailure("--members, --hours, --dt-s and --output-every-s must be positive")
    region_list = [Region.circle(n, la, lo, r * 1000.0) for n, la, lo, r in map(_parse_region, regions)]

    if from_flight is not None:
        t_f, lat_f, lon_f, alt_f, rate = launch_from_flight(from_flight)
        lat = lat if lat is not None else lat_f
        lon = lon if lon is not None else lon_f
        alt_m = alt_m if alt_m is not None else alt_f
        start_s = _parse_time(time_text) if time_text else t_f
        ascent_rate = rate
        profile_kind = profile_kind or "ascent-burst-descent"
        click.echo(
            f"from {from_flight}: launch {lat_f:.5f},{lon_f:.5f} at {alt_f:.0f} m, "
            f"{datetime.fromtimestamp(t_f, UTC):%Y-%m-%dT%H:%M:%SZ}, ascent {rate:.2f} m/s",
            err=True,
        )
    else:
        if lat is None or lon is None or time_text is None:
            raise UsageFailure("give --lat, --lon and --time (or --from-flight FILE)")
        start_s = _parse_time(time_text)
    assert lat is not None and lon is not None
    if abs(lat) > 90:
        raise UsageFailure(f"--lat {lat}: must be within [-90, 90]")
    profile_kind = profile_kind or "float"
    alt_known = alt_m is not None and math.isfinite(alt_m)
    if not alt_known and (velocity is None or profile_kind != "float"):
        raise UsageFailure("give --alt-m, or --velocity EAST NORTH to infer a float altitude from the drift")
    try:
        profile = FlightProfile(
            kind=profile_kind,  # type: ignore[arg-type]
            ascent_rate_mps=ascent_rate,
            burst_alt_m=burst_alt_m,
            descent_rate_mps=descent_rate,
            ground_alt_m=ground_alt_m,
            float_pressure_hpa=float_pressure_hpa,
            ascent_rate_sigma_mps=0.1 * ascent_rate,
            burst_alt_sigma_m=0.05 * burst_alt_m,
            descent_rate_sigma_mps=0.1 * descent_rate,
        )
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None
    default_error = WindErrorModel()
    wind_error = WindErrorModel(
        sigma_mps=default_error.sigma_mps if wind_sigma is None else wind_sigma,
        growth_mps_per_day=default_error.growth_mps_per_day if wind_growth is None else wind_growth,
        decorrelation_s=default_error.decorrelation_s if wind_tau_h is None else wind_tau_h * 3600.0,
        scale_spread=default_error.scale_spread,
    )

    t0 = time.perf_counter()
    if winds:
        from stratowatch.weather.load import load_winds

        try:
            grid = load_winds(list(winds))
        except WindFormatError as exc:
            raise UsageFailure(str(exc)) from None
    else:
        from stratowatch.weather.analytic import analytic_field

        first = start_s - (hours * 3600.0 if backward else 0.0)
        first = math.floor(first / 21600.0) * 21600.0
        grid = analytic_field(t0_s=first, hours=hours + 12.0)
        click.echo("no --winds given: using the analytic test field (not real winds)", err=True)
    load_s = time.perf_counter() - t0

    ve, vn = velocity if velocity is not None else (float("nan"), float("nan"))
    state = TrackState(start_s, lat, lon, alt_m if alt_known else float("nan"), ve, vn, alt_known)  # type: ignore[arg-type]
    try:
        wind_at(grid, start_s, lat, lon, alt_m if alt_m is not None and alt_known else 0.0, policy="raise")
    except WindDomainError as exc:
        if exc.axis in ("latitude", "longitude"):
            raise UsageFailure(f"start point: {exc}") from None
    cov = np.diag([sigma_pos_m**2, sigma_pos_m**2, sigma_alt_m**2 if alt_known else 0.0])
    t1 = time.perf_counter()
    try:
        pred = ensemble(
            grid, state, hours, members, covariance=cov, profile=profile, wind_error=wind_error,
            seed=seed, dt_s=dt_s, output_every_s=output_every_s, backward=backward,
        )  # fmt: skip
    except (ValueError, WindDomainError) as exc:
        raise UsageFailure(str(exc)) from None
    integrate_s = time.perf_counter() - t1
    if not winds:
        pred = replace(pred, notes=("analytic test field, not real winds", *pred.notes))

    t2 = time.perf_counter()
    arrivals = region_arrival(pred, region_list) if region_list else []
    if suffix == ".csv":
        write_csv(output, pred)
    else:
        cone_list = cones(pred, (0.5, 0.9), time_index=cone_lead_indices(pred, cone_every_h))
        if suffix == ".kml":
            write_kml(output, pred, cone_list)
        else:
            write_geojson(output, pred, cone_list, arrivals)
    write_s = time.perf_counter() - t2

    for note in pred.notes:
        click.echo(f"note: {note}", err=True)
    lat_e, lon_e, alt_e = pred.end_points()
    landed = int(np.count_nonzero(pred.status == 1))
    click.echo(
        f"{pred.members} members, {hours:g} h {'backward' if backward else 'forward'}: deterministic end "
        f"{lat_e[0]:.4f},{lon_e[0]:.4f} at {alt_e[0]:.0f} m; {landed} landed; wrote {output}",
        err=True,
    )
    for a in arrivals:
        when = (
            f", earliest {datetime.fromtimestamp(a.earliest_time_s, UTC):%Y-%m-%dT%H:%MZ}, median "
            f"{datetime.fromtimestamp(a.median_time_s, UTC):%Y-%m-%dT%H:%MZ}"
            if a.members_entering
            else ""
        )
        click.echo(f"region {a.name}: probability {a.probability:.3f}{when}", err=True)
    if timing:
        sys.stderr.write(
            json.dumps(
                {
                    "load_s": round(load_s, 4),
                    "integrate_s": round(integrate_s, 4),
                    "write_s": round(write_s, 4),
                    "members": pred.members,
                    "steps": round(hours * 3600.0 / dt_s),
                }
            )
            + "\n"
        )
