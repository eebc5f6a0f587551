"""Settings: one TOML file plus STRATOWATCH_ variables; wrong or missing settings name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratowatch.config import ConfigError, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "stratowatch.toml"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "stratowatch.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_example_config_loads_with_every_section() -> None:
    s = load_settings(EXAMPLE, env={})
    assert s.store_url == "sqlite:///stratowatch.db" and s.bus_url == "memory://"
    assert (s.api.host, s.api.port) == ("127.0.0.1", 8000)
    assert [x.name for x in s.sources] == ["dump1090"] and s.sources[0].port == 30003
    assert [p.id for p in s.partners] == ["CAN", "USA"]
    assert s.geofences.zones[0]["id"] == "yyc-approach"
    assert s.alerts.predicted_entry_probability == 0.3
    assert s.winds.analytic and s.predictions.members == 50
    assert Path(s.base_dir) == EXAMPLE.parent


def test_environment_overrides_the_file_with_nested_keys(tmp_path: Path) -> None:
    p = _write(tmp_path, 'store_url = "sqlite:///a.db"\n[api]\nport = 8100\n')
    s = load_settings(
        p,
        env={
            "STRATOWATCH_API__PORT": "9123",
            "STRATOWATCH_STORE_URL": "postgresql://sw@localhost:5432/sw",
            "STRATOWATCH_PREDICTIONS__MEMBERS": "12",
            "OTHER_API__PORT": "1",
        },
    )
    assert s.api.port == 9123
    assert s.store_url == "postgresql://sw@localhost:5432/sw"
    assert s.predictions.members == 12
    assert load_settings(p, env={}).api.port == 8100


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[api]\nport = 70000\n", {}, "api.port: Input should be less than or equal to 65535"),
        ("[api]\nprot = 1\n", {}, "api.prot: unknown setting"),
        ("colour = 'red'\n", {}, "colour: unknown setting"),
        ("", {"STRATOWATCH_API__PORT": "eighty"}, "api.port: Input should be a valid integer"),
        ('store_url = "mysql://x"\n', {}, "store_url: must be sqlite:///path.db or postgresql://"),
        ('bus_url = "amqp://localhost"\n', {}, "bus_url: must be memory:// (in-process) or nats://host:port"),
        (
            '[[sources]]\nname = "a"\nkind = "tcp"\nformat = "sbs"\n',
            {},
            "sources[0]: a tcp source needs 'port'",
        ),
        (
            '[[sources]]\nkind = "tcp"\nformat = "sbs"\nport = 1\n',
            {},
            "sources[0].name: required setting is missing",
        ),
        (
            '[[sources]]\nname = "a"\nkind = "tcp"\nformat = "nmea"\nport = 1\n',
            {},
            "sources[0].format: unknown format 'nmea'",
        ),
        (
            '[[sources]]\nname = "a"\nkind = "ftp"\nformat = "sbs"\nport = 1\n',
            {},
            "sources[0].kind: Input should be 'tcp', 'udp', 'http', 'mqtt' or 'file'",
        ),
        ("[winds]\nfiles = ['missing.nc']\n", {}, "winds.files[0]: file not found"),
        ("[geofences]\nfiles = ['nowhere.geojson']\n", {}, "geofences.files[0]: file not found"),
        (
            "[predictions]\nmembers = 0\n",
            {},
            "predictions.members: Input should be greater than or equal to 1",
        ),
        ("[alerts]\npredicted_entry_probability = 2\n", {}, "alerts.predicted_entry_probability"),
    ],
)
def test_wrong_settings_name_the_key(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(p, env=env)
    assert str(err.value).startswith(f"{p}: "), str(err.value)
    assert message in str(err.value)


def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.toml", env={})
    bad = _write(tmp_path, "[api\nport = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, env={})


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "zones.geojson").write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    p = _write(tmp_path, "[geofences]\nfiles = ['zones.geojson']\n")
    s = load_settings(p, env={})
    assert s.path(s.geofences.files[0]) == tmp_path / "zones.geojson"
