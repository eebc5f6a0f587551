"""Sensor registry from TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratowatch.ingest.registry import RegistryError, load_registry

TOML = """
[[sensor]]
id = "radar-bodo"
owner = "NO"
kind = "radar"
lat_deg = 67.27
lon_deg = 14.36
alt_m = 120.0
sigma_range_m = 60.0
sigma_azimuth_deg = 0.08
releasable_to = ["NO", "NATO"]
aliases = ["asterix:25/201"]

[[sensor]]
id = "aprs-is"
owner = "PUBLIC"
kind = "aprs"
"""


def test_load_and_resolve(tmp_path: Path) -> None:
    p = tmp_path / "sensors.toml"
    p.write_text(TOML)
    reg = load_registry(p)
    s = reg.get("asterix:25/201")
    assert s is not None and s.sensor_id == "radar-bodo" and s.has_site
    assert (s.lat_deg, s.alt_m, s.sigma_range_m, s.sigma_h_m) == (67.27, 120.0, 60.0, 100.0)
    assert reg.label("asterix:25/201") == ("radar-bodo", frozenset({"NO", "NATO"}), "NO")
    assert reg.label("unknown") == ("unknown", frozenset({"PUBLIC"}), "")
    assert not reg.sensors["aprs-is"].has_site


@pytest.mark.parametrize(
    "text,message",
    [
        ("[[sensor]]\nid = 'a'\nlat_deg = 'north'\n", "sensor 'a': field 'lat_deg': not a number"),
        ("[[sensor]]\nid = 'a'\nlat_deg = 95.0\n", "field 'lat_deg': 95.0 is outside -90..90"),
        ("[[sensor]]\nowner = 'x'\n", "sensor #1: field 'id': required"),
        ("[[sensor]]\nid = 'a'\ncolour = 'red'\n", "unknown field 'colour'"),
        ("[[sensor]]\nid = 'a'\n[[sensor]]\nid = 'a'\n", "duplicate sensor id"),
        ("[[sensor]]\nid = 'a'\nsigma_range_m = -1\n", "field 'sigma_range_m': must be positive"),
        ("[[sensor]\n", "not valid TOML"),
    ],
)
def test_errors_name_file_sensor_and_field(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(RegistryError) as e:
        load_registry(p)
    assert str(p) in str(e.value) and message in str(e.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "missing.toml")
