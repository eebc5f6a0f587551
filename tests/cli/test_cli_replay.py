"""``stratowatch replay``: mixed files through the tracker, summaries, errors."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from stratowatch.cli import cli


def balloon_csv(path: Path, n: int = 31) -> None:
    lines = ["time_utc,lat,lon,alt_m,sigma_h_m,sigma_v_m,sensor_id,identity"]
    for k in range(n):
        lines.append(f"{1675535940 + 10 * k},33.5,{-78.9 + k * 0.00108:.6f},18500,50,50,p,")
    path.write_text("\n".join(lines) + "\n")


def test_replay_prints_summaries_and_final_track(tmp_path: Path) -> None:
    g = tmp_path / "b.csv"
    balloon_csv(g)
    s = tmp_path / "s.json"
    s.write_text('{"serial":"S9","datetime":"2023-02-04T18:39:05Z","lat":10.0,"lon":10.0,"alt":100}\n')
    r = CliRunner().invoke(cli, ["replay", str(g), str(s), "--speed", "0", "--every", "100"])
    assert r.exit_code == 0, r.output
    assert f"{g}: geodetic-csv, 31 units, 31 observations" in r.output
    assert f"{s}: sondehub, 1 units, 1 observations" in r.output
    assert "2023-02-04T18:40:40Z  steps 12  observations 12  tracks 1" in r.output  # 100 s in
    assert r.output.count("2023-02-04T18:44:00Z") == 1  # the final summary, once
    assert "replayed 32 observations in 32 steps" in r.output
    assert r.output.count("  track ") == 1  # the balloon; a single sonde report is not confirmed
    assert " 18500 m" in r.output or " 1850" in r.output


def test_replay_skips_radar_plots_without_site_and_rejects_mixing_frames(tmp_path: Path) -> None:
    from stratowatch.ingest._cat048 import encode_cat048

    f = tmp_path / "r.ast"
    f.write_bytes(
        encode_cat048(
            sac=1, sic=2, tod_s=[10.0, 14.0], typ=2, rho_nm=50.0, theta_deg=10.0, flight_level=300.0
        )
    )
    r = CliRunner().invoke(cli, ["replay", str(f), "--date", "2024-01-02"])
    assert r.exit_code == 0, r.output
    assert "skipped 2 radar plots of sensors without a registered site" in r.output
    p = tmp_path / "p.csv"
    p.write_text("time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m\n0,r1,1,2,3,4,5\n")
    g = tmp_path / "b.csv"
    balloon_csv(g, 2)
    r = CliRunner().invoke(cli, ["replay", str(p), str(g)])
    assert r.exit_code == 2 and "cannot be replayed together" in r.output
    r = CliRunner().invoke(cli, ["replay", str(tmp_path / "none.csv")])
    assert r.exit_code == 2 and "no such file" in r.output
