"""``stratowatch ingest``: counts, --db, --quarantine, --format auto, errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from stratowatch.cli import cli
from stratowatch.store.sqlite import SqliteStore

PLOTS = "time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m\n0,r1,1,2,3,4,5\n1,r1,1,2,3,4,5\n2,r1,1,oops,3,4,5\n"


def test_ingest_counts_store_and_quarantine(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text(PLOTS)
    db, q = tmp_path / "o.db", tmp_path / "q.jsonl"
    r = CliRunner().invoke(cli, ["ingest", str(f), "--db", str(db), "--quarantine", str(q), "--json"])
    assert r.exit_code == 0, r.output
    counts = json.loads(r.output)
    assert counts["format"] == "plots"  # detected from the header
    assert (counts["units"], counts["observations"], counts["stored"]) == (3, 2, 2)
    assert counts["quarantined"] == {"plots: y_m: not a number": 1}
    rec = json.loads(q.read_text().strip())
    assert rec["position"] == 4 and rec["field"] == "y_m" and rec["raw_text"] == "2,r1,1,oops,3,4,5"
    with SqliteStore(db) as store:
        assert store.count() == 2 and store.count("quarantine") == 1
        assert [o.source.position for o in store.observations() if o.source] == [2, 3]


def test_ingest_text_summary(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text(PLOTS)
    r = CliRunner().invoke(cli, ["ingest", str(f), "--format", "plots"])
    assert r.exit_code == 0
    assert "read          3 units" in r.output and "observations  2" in r.output
    assert "plots: y_m: not a number" in r.output


def test_ingest_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["ingest", str(tmp_path / "missing.csv")])
    assert r.exit_code == 2 and "missing.csv: no such file" in r.output and "Traceback" not in r.output
    f = tmp_path / "p.csv"
    f.write_text(PLOTS)
    r = runner.invoke(cli, ["ingest", str(f), "--format", "nope"])
    assert r.exit_code == 2 and "unknown format 'nope'" in r.output and "asterix" in r.output
    g = tmp_path / "g.bin"
    g.write_bytes(b"\x00\x01\x02\x03 nothing")
    r = runner.invoke(cli, ["ingest", str(g)])
    assert r.exit_code == 2 and "cannot detect the format" in r.output
    r = runner.invoke(cli, ["ingest", str(f), "--date", "04/02/2023"])
    assert r.exit_code == 2 and "--date" in r.output
    bad = tmp_path / "s.toml"
    bad.write_text("[[sensor]]\nid = 'x'\nlat_deg = 'n'\n")
    r = runner.invoke(cli, ["ingest", str(f), "--sensors", str(bad)])
    assert r.exit_code == 2 and "field 'lat_deg'" in r.output


def test_ingest_asterix_with_date_and_registry(tmp_path: Path) -> None:
    from stratowatch.ingest._cat048 import encode_cat048

    f = tmp_path / "r.ast"
    f.write_bytes(
        encode_cat048(
            sac=25,
            sic=201,
            tod_s=[10.0, 11.0],
            typ=[2, 1],
            rho_nm=50.0,
            theta_deg=10.0,
            flight_level=[300.0, float("nan")],
        )
    )
    reg = tmp_path / "s.toml"
    reg.write_text(
        "[[sensor]]\nid = 'radar-a'\nlat_deg = 45.0\nlon_deg = 15.0\naliases = ['asterix:25/201']\n"
    )
    db = tmp_path / "o.db"
    r = CliRunner().invoke(
        cli, ["ingest", str(f), "--date", "2024-01-02", "--sensors", str(reg), "--db", str(db), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["observations"] == 2
    with SqliteStore(db) as store:
        a, b = store.observations()
    assert a.sensor_id == b.sensor_id == "radar-a"
    assert a.time_s == 1704153610.0 and a.value[2] == 300 * 100 * 0.3048
    assert len(b.value) == 2  # the height-less plot became a ground point
