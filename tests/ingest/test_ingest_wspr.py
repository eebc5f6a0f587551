"""WSPR reader: Maidenhead positions, U4B telemetry decoding and pairing, duplicates."""

from __future__ import annotations

import io
import math

import pytest

from stratowatch.ingest.base import CollectingSink, ReadContext, sniff_format
from stratowatch.ingest.wspr import POWERS_DBM, WsprReader, decode_u4b, locator_to_latlon
from stratowatch.model import MeasurementKind

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def encode_u4b(
    sub: str, alt_m: float, temp_c: int, volt_v: float, speed_kn: int, gps: int, sats: int
) -> tuple[str, str, int]:
    """Test-side encoder of U4B basic telemetry (channel id Q?1)."""
    big = ((ord(sub[0]) - 65) * 24 + (ord(sub[1]) - 65)) * 1068 + int(alt_m // 20)
    c6, big = big % 26, big // 26
    c5, big = big % 26, big // 26
    c4, c2 = big % 26, big // 26
    call = "Q" + ALNUM[c2] + "1" + chr(65 + c4) + chr(65 + c5) + chr(65 + c6)
    volt_idx = (round((volt_v - 3.0) / 0.05) + 20) % 40
    val = ((((temp_c + 50) * 40 + volt_idx) * 42 + speed_kn // 2) * 2 + gps) * 2 + sats
    p, val = val % 19, val // 19
    g4, val = val % 10, val // 10
    g3, val = val % 10, val // 10
    g2, g1 = val % 18, val // 18
    return call, f"{chr(65 + g1)}{chr(65 + g2)}{g3}{g4}", POWERS_DBM[p]


def test_locator_centre_and_sigma() -> None:
    lat, lon, sigma = locator_to_latlon("FN31pr")
    assert (lat, lon) == pytest.approx((41.729167, -72.708333), abs=1e-5)
    assert sigma == pytest.approx(5 / 60 * 111_195 * math.cos(math.radians(lat)) / math.sqrt(12), rel=1e-3)
    lat4, lon4, sigma4 = locator_to_latlon("FN31")
    assert (lat4, lon4) == (41.5, -73.0)
    assert 30_000 < sigma4 < 70_000


@pytest.mark.parametrize(
    "sub,alt,temp,volt,speed,gps,sats",
    [
        ("PR", 12_340.0, -35, 4.1, 24, 1, 1),
        ("AA", 0.0, -50, 3.0, 0, 0, 0),
        ("XX", 21_340.0, 39, 4.95, 82, 1, 0),
    ],
)
def test_u4b_round_trip(
    sub: str, alt: float, temp: int, volt: float, speed: int, gps: int, sats: int
) -> None:
    call, grid, power = encode_u4b(sub, alt, temp, volt, speed, gps, sats)
    t = decode_u4b(call, grid, power)
    assert (t.subsquare, t.alt_m, t.temperature_c, t.speed_knots) == (sub, alt, temp, speed)
    assert t.voltage_v == pytest.approx(volt)
    assert (t.gps_valid, t.sats_ok) == (bool(gps), bool(sats))


def _csv(rows: list[tuple[str, str, str, int, str]]) -> bytes:
    lines = ["time,tx_sign,tx_loc,power,rx_sign"] + [f"{t},{c},{g},{p},{rx}" for t, c, g, p, rx in rows]
    return ("\n".join(lines) + "\n").encode()


def read(data: bytes) -> tuple[CollectingSink, object]:
    sink = CollectingSink()
    stats = WsprReader().read(io.BytesIO(data), ReadContext("w.csv"), sink)
    assert stats.accounted == stats.units
    return sink, stats


def test_regular_plus_telemetry_gives_geodetic_fix() -> None:
    call, grid, power = encode_u4b("PR", 12_340.0, -35, 4.1, 24, 1, 1)
    data = _csv(
        [
            ("2023-06-01 12:00:00", "K1ABC", "FN31", 13, "W1AW"),
            ("2023-06-01 12:00:00", "K1ABC", "FN31", 13, "G4XYZ"),  # same transmission, 2nd receiver
            ("2023-06-01 12:02:00", call, grid, power, "W1AW"),
        ]
    )
    assert sniff_format(data) == "wspr"
    sink, stats = read(data)
    assert stats.messages["wspr_duplicate_spot"] == 1
    assert stats.messages["wspr_telemetry_used"] == 1
    (o,) = sink.observations
    assert o.kind == MeasurementKind.GEODETIC and o.identity == "wspr:K1ABC"
    assert o.value == pytest.approx((41.729167, -72.708333, 12_340.0), abs=1e-5)
    assert o.sigma[0] < 3_000 and o.sigma[1] == 12.0
    assert o.time_s == 1685620800.0


def test_unpaired_and_invalid_gps_fall_back_to_grid4() -> None:
    call, grid, power = encode_u4b("PR", 12_340.0, -35, 4.1, 24, 0, 1)  # GPS not valid
    data = _csv(
        [
            ("2023-06-01 12:00:00", "K1ABC", "FN31", 13, "W1AW"),
            ("2023-06-01 12:02:00", call, grid, power, "W1AW"),
            ("2023-06-01 13:02:00", call, grid, power, "W1AW"),  # no regular message before it
            ("2023-06-01 13:04:00", "K1ABC", "ZZ99", 13, "W1AW"),  # not a locator
        ]
    )
    sink, stats = read(data)
    (o,) = sink.observations
    assert o.kind == MeasurementKind.GROUND_2D and o.value == (41.5, -73.0)
    assert stats.messages["wspr_telemetry_used"] == 1 and stats.messages["wspr_telemetry_unpaired"] == 1
    assert stats.quarantined["wspr: grid: not a Maidenhead locator"] == 1


def test_wsprnet_archive_layout_without_header() -> None:
    row = "12345678,1685620800,W1AW,FN31pr,-20,14.097100,K1ABC,FN31,23,0,500,45,20,2.6.1,0\n"
    assert sniff_format(row.encode()) == "wspr"
    sink, stats = read(row.encode() + b"1,2,3\n")
    assert (
        stats.observations == 1 and stats.quarantined["wspr: wrong number of fields (the layout has 15)"] == 1
    )
    assert sink.observations[0].time_s == 1685620800.0
