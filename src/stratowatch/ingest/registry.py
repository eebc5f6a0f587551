"""The sensor registry: which sensors exist, whose they are, where they stand, who may see them.

A registry is read from a TOML file with one ``[[sensor]]`` table per sensor::

    [[sensor]]
    id = "radar-bodo"              # the sensor id observations carry
    owner = "NO"                   # owning partner (becomes Observation.originator)
    kind = "radar"                 # radar | adsb | aprs | sonde | wspr | sighting | generic ...
    lat_deg = 67.27
    lon_deg = 14.36
    alt_m = 120.0
    max_range_m = 450000.0         # optional
    sigma_range_m = 60.0           # optional accuracies (model.Sensor defaults otherwise)
    sigma_azimuth_deg = 0.08
    sigma_h_m = 100.0
    sigma_v_m = 150.0
    update_period_s = 4.0
    releasable_to = ["NO", "NATO"] # the releasability label (the sensor and its observations)
    site_releasable_to = ["NO"]    # optional: who may see where it stands (default: as above)
    aliases = ["asterix:25/201"]   # ids that formats produce for this sensor (ASTERIX SAC/SIC ...)
    name = "Bodø PSR/SSR"

Readers produce raw ids (``"asterix:25/201"``, the ``ReadContext.sensor_id`` ...);
:meth:`SensorRegistry.resolve` maps an alias to the registered id, so every observation carries
the registered sensor, its owner and its releasability label. An unregistered id is kept as is,
with the public label and the reader's own default accuracies.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Protocol, runtime_checkable

from stratowatch.model import PUBLIC, Sensor


class RegistryError(ValueError):
    """A sensor registry file is unreadable or invalid; the message names file, sensor and field."""


@dataclass(frozen=True, slots=True)
class SensorRegistry:
    """Registered sensors by id, plus aliases (format-produced ids) pointing at them."""

    sensors: Mapping[str, Sensor] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, raw_id: str) -> str:
        """The registered id for a raw id (itself when registered or unknown)."""
        return self.aliases.get(raw_id, raw_id)

    def get(self, raw_id: str) -> Sensor | None:
        """The registered sensor for a raw or registered id, or None."""
        return self.sensors.get(self.resolve(raw_id))

    def label(self, raw_id: str) -> tuple[str, frozenset[str], str]:
        """(registered id, releasability label, originator) for observations of a sensor."""
        sid = self.resolve(raw_id)
        s = self.sensors.get(sid)
        if s is None:
            return sid, PUBLIC, ""
        return sid, s.releasable_to, s.owner

    def with_sensors(self, extra: Mapping[str, Sensor]) -> SensorRegistry:
        merged = dict(self.sensors)
        merged.update(extra)
        return SensorRegistry(merged, dict(self.aliases))


EMPTY_REGISTRY = SensorRegistry()


@runtime_checkable
class UsesSensorRegistry(Protocol):
    """A reader that maps the ids it produces through a registry (and needs radar sites)."""

    registry: SensorRegistry


_FLOAT_FIELDS = {
    f.name
    for f in fields(Sensor)
    if f.name not in {"sensor_id", "owner", "kind", "releasable_to", "name", "site_releasable_to"}
}
_KNOWN_KEYS = _FLOAT_FIELDS | {
    "id",
    "owner",
    "kind",
    "releasable_to",
    "site_releasable_to",
    "aliases",
    "name",
}


def load_registry(path: str | Path) -> SensorRegistry:
    """Read a sensor registry TOML file; raises :class:`RegistryError` naming the bad field."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise RegistryError(f"{p}: cannot read sensor registry: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise RegistryError(f"{p}: not valid TOML: {e}") from None
    return registry_from_dict(doc, str(p))


def registry_from_dict(doc: Mapping[str, object], where: str = "<registry>") -> SensorRegistry:
    """Build a registry from a parsed TOML document (``{"sensor": [ {...}, ... ]}``)."""
    entries = doc.get("sensor", [])
    if not isinstance(entries, list):
        raise RegistryError(f"{where}: 'sensor' must be an array of tables ([[sensor]])")
    sensors: dict[str, Sensor] = {}
    aliases: dict[str, str] = {}
    for i, entry in enumerate(entries, start=1):
        at = f"{where}: sensor #{i}"
        if not isinstance(entry, dict):
            raise RegistryError(f"{at}: must be a table")
        sid = entry.get("id")
        if not isinstance(sid, str) or not sid:
            raise RegistryError(f"{at}: field 'id': required, a non-empty string")
        at = f"{where}: sensor {sid!r}"
        unknown = sorted(set(entry) - _KNOWN_KEYS)
        if unknown:
            raise RegistryError(f"{at}: unknown field {unknown[0]!r}")
        if sid in sensors:
            raise RegistryError(f"{at}: field 'id': duplicate sensor id")
        kwargs: dict[str, object] = {"sensor_id": sid}
        for key in ("owner", "kind", "name"):
            if key in entry:
                v = entry[key]
                if not isinstance(v, str):
                    raise RegistryError(f"{at}: field {key!r}: must be a string")
                kwargs[key] = v
        for key in _FLOAT_FIELDS:
            if key in entry:
                v = entry[key]
                if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(float(v)):
                    raise RegistryError(f"{at}: field {key!r}: not a number")
                kwargs[key] = float(v)
        lat = float(kwargs.get("lat_deg", math.nan))  # type: ignore[arg-type]
        lon = float(kwargs.get("lon_deg", math.nan))  # type: ignore[arg-type]
        if not math.isnan(lat) and not -90.0 <= lat <= 90.0:
            raise RegistryError(f"{at}: field 'lat_deg': {lat} is outside -90..90")
        if not math.isnan(lon) and not -180.0 <= lon <= 360.0:
            raise RegistryError(f"{at}: field 'lon_deg': {lon} is outside -180..360")
        for key in _FLOAT_FIELDS:
            if key.startswith("sigma_") or key == "update_period_s" or key == "max_range_m":
                v = kwargs.get(key)
                if v is not None and not float(v) > 0:  # type: ignore[arg-type]
                    raise RegistryError(f"{at}: field {key!r}: must be positive")
        for key in ("releasable_to", "site_releasable_to"):
            if key not in entry:
                continue
            rel = entry[key]
            if isinstance(rel, str):
                rel = [rel]
            if not isinstance(rel, list) or not rel or not all(isinstance(r, str) and r for r in rel):
                raise RegistryError(f"{at}: field {key!r}: a non-empty list of labels")
            kwargs[key] = frozenset(rel)
        sensors[sid] = Sensor(**kwargs)  # type: ignore[arg-type]
        al = entry.get("aliases", [])
        if isinstance(al, str):
            al = [al]
        if not isinstance(al, list) or not all(isinstance(a, str) and a for a in al):
            raise RegistryError(f"{at}: field 'aliases': a list of sensor ids")
        for a in al:
            if a in aliases and aliases[a] != sid:
                raise RegistryError(f"{at}: field 'aliases': {a!r} already names {aliases[a]!r}")
            aliases[a] = sid
    for a, sid in aliases.items():
        if a in sensors and a != sid:
            raise RegistryError(f"{where}: alias {a!r} of {sid!r} is itself a registered sensor id")
    return SensorRegistry(sensors, aliases)
