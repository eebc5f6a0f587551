"""``stratowatch demo`` end to end: simulate, track, summarise, and agree with ``score``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from stratowatch.cli import cli

pytest.importorskip("stratowatch.tracking")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(
        cli, ["demo", "--no-serve", "--hours", "1", "--aircraft", "5", "--seed", "1", "--out", str(out)]
    )
    return result, out


def test_demo_tracks_both_balloons(demo: tuple[Result, Path]) -> None:
    result, _ = demo
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2 balloons, 5 aircraft; 6 radars of CAN and USA" in out
    rows = re.findall(
        r"^ *(balloon-\d) +(none|aprs:\S+) +(\d\d:\d\d:\d\d) +(\d\d:\d\d:\d\d) +(\d+)% +(\d+): ",
        out,
        flags=re.M,
    )
    assert [r[0] for r in rows] == ["balloon-1", "balloon-2"], out
    b1, b2 = rows
    assert b1[1] == "none" and b2[1] == "aprs:N0CALL-11"
    assert b1[2] == "18:00:00" and b2[2] == "18:30:00"  # the second appears half-way
    for name, _ident, appears, first, pct, n_ids in rows:
        assert first >= appears, name
        assert int(pct) >= 60, f"{name} tracked only {pct}%"
        assert int(n_ids) >= 1
    # held within two minutes of appearing
    for _name, _ident, appears, first, _pct, _n in rows:
        h0, m0, s0 = map(int, appears.split(":"))
        h1, m1, s1 = map(int, first.split(":"))
        assert (h1 - h0) * 3600 + (m1 - m0) * 60 + (s1 - s0) <= 120


def test_demo_track_table_shows_classes_identities_and_errors(demo: tuple[Result, Path]) -> None:
    result, _ = demo
    rows = re.findall(
        r"^ *(\d+) +(balloon|aircraft|unknown|-) ?([.\d]*) +(\S+) +(\S*) +(\d\d:\d\d-\d\d:\d\d) +(\d+:\d\d) +"
        r"(\S+) +([\d,]+ m|-)",
        result.output,
        flags=re.M,
    )
    assert len(rows) >= 7, result.output
    by_truth: dict[str, list[tuple[str, ...]]] = {}
    for r in rows:
        by_truth.setdefault(r[7], []).append(r)
    # every tracked balloon row is classified as a balloon; aircraft with ADS-B carry their ICAO
    balloon_rows = by_truth["balloon-1"] + by_truth["balloon-2"]
    assert all(r[1] == "balloon" for r in balloon_rows)
    assert any(r[3] == "aprs:N0CALL-11" for r in by_truth["balloon-2"])
    aircraft_rows = [r for k, v in by_truth.items() if k.startswith("aircraft") for r in v]
    assert len(aircraft_rows) >= 4
    assert all(r[1] == "aircraft" for r in aircraft_rows if r[3].startswith("icao:"))
    # radar plots of both partners contribute
    assert any(r[4] == "CAN+USA" for r in rows)
    # mean errors: tens of metres for ADS-B aircraft, well under a kilometre for balloons
    for r in aircraft_rows:
        if r[3].startswith("icao:"):
            assert int(r[8].split()[0].replace(",", "")) < 200
    for r in balloon_rows:
        assert int(r[8].split()[0].replace(",", "")) < 1000


def test_demo_gospa_equals_score_of_its_csvs(demo: tuple[Result, Path]) -> None:
    result, out = demo
    m = re.search(r"^ *GOSPA +([\d,]+) m", result.output, flags=re.M)
    assert m, result.output
    printed = int(m.group(1).replace(",", ""))
    assert 0 < printed < 5000
    assert re.search(r"^ *truths never tracked +0 *$", result.output, flags=re.M)
    scored = CliRunner().invoke(
        cli,
        [
            "score",
            "--truth",
            str(out / "truth.csv"),
            "--tracks",
            str(out / "tracks.csv"),
            "--c",
            "5000",
            "--json",
            "-",
        ],
    )
    assert scored.exit_code == 0, scored.output
    s = json.loads(scored.output)
    assert round(s["gospa_mean_m"]) == printed
    assert s["n_truths"] == 7  # 2 balloons + 5 aircraft, all observable at some time


def test_demo_rejects_bad_options() -> None:
    for args, msg in (
        (["--hours", "0"], "--hours must be in (0, 48]"),
        (["--aircraft", "-1"], "--aircraft must be in [0, 2000]"),
        (["--coarse", "0"], "--coarse must be >= 1"),
    ):
        res = CliRunner().invoke(cli, ["demo", *args])
        assert res.exit_code == 2 and msg in res.output
