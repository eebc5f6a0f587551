"""Settings of the live service: one TOML file plus ``STRATOWATCH_`` environment variables.

Environment variables override the file; nested keys use ``__``
(``STRATOWATCH_API__PORT=9000``, ``STRATOWATCH_STORE_URL=postgresql://...``). Relative file paths
in the file are relative to the file's directory. :func:`load_settings` checks everything at
start-up (types, ranges, that named files exist, that source formats are known readers) and
raises :class:`ConfigError` naming the key (``sources[0].port: ...``).

A complete example with every section: ``examples/stratowatch.toml``.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "STRATOWATCH_"


class ConfigError(ValueError):
    """A wrong or missing setting; the message names the file (when any) and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiSettings(_Section):
    """``max_body_bytes``: larger request bodies are refused (413). ``tls_certfile`` and
    ``tls_keyfile`` (PEM): serve HTTPS instead of HTTP (both or neither)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    tls_certfile: str | None = None
    tls_keyfile: str | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiSettings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together")
        return self


class AuthSettings(_Section):
    """Who may call the API (see :mod:`stratowatch.sharing.auth`).

    ``jwt_secret``: the key that signs this node's tokens (at least 32 characters); unset, one is
    generated once and kept in the store. ``issuer``: the tokens' ``iss``. ``token_ttl_s``: how
    long an issued token lives. ``rate_per_s``/``burst``: each client's token bucket (per
    principal, or per address before authentication); exceeding it answers 429."""

    jwt_secret: str | None = Field(default=None, min_length=32)
    issuer: str = "stratowatch"
    token_ttl_s: float = Field(default=3600.0, gt=0, le=366 * 86400.0)
    rate_per_s: float = Field(default=100.0, gt=0)
    burst: int = Field(default=400, ge=1)


class SensorSettings(_Section):
    """``registry``: a sensor registry TOML file (``[[sensor]]`` tables, see
    :mod:`stratowatch.ingest.registry`); ``sensor``: the same tables inline."""

    registry: str | None = None
    sensor: list[dict[str, Any]] = Field(default_factory=list)


class SourceSettings(_Section):
    """One live feed: ``kind`` tcp | udp | http | mqtt | file (a file replayed at ``speed``)."""

    name: str
    kind: Literal["tcp", "udp", "http", "mqtt", "file"]
    format: str
    sensor_id: str = "default"
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65535)
    url: str | None = None
    topic: str | None = None
    path: str | None = None
    period_s: float = Field(default=1.0, gt=0)
    speed: float = Field(default=0.0, ge=0)  # file sources: x real time (0: as fast as possible)
    date_utc: str | None = None  # formats with a time of day only (SBS, ASTERIX)
    enabled: bool = True

    @model_validator(mode="after")
    def _needs(self) -> SourceSettings:
        need = {"tcp": "port", "udp": "port", "http": "url", "mqtt": "topic", "file": "path"}[self.kind]
        if getattr(self, need) is None:
            raise ValueError(f"a {self.kind} source needs '{need}'")
        if self.kind == "mqtt" and self.port is None:
            object.__setattr__(self, "port", 1883)
        return self


class NodeSettings(_Section):
    """The partner that runs this node. Its users read the full picture stored here; every other
    partner reads the picture rebuilt from only what is released to it."""

    partner: str = Field(default="LOCAL", pattern=r"^[A-Z][A-Z0-9_]{1,15}$")
    name: str = ""


#: What a partner may be refused even where the labels would release it.
REDACTIONS = ("sensor_sites", "observations", "predictions", "alerts", "incidents", "geofences")


class PartnerSettings(_Section):
    """A partner this node shares with: ``id`` is its code (``"USA"``); ``redact`` lists what it
    is not shown even when labels release it (e.g. ``["sensor_sites", "observations"]``: tracks
    only). ``releasable_to`` is the default label of this partner's feeds ingested here."""

    id: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")
    name: str = ""
    releasable_to: list[str] = Field(default_factory=lambda: ["PUBLIC"])
    redact: list[
        Literal["sensor_sites", "observations", "predictions", "alerts", "incidents", "geofences"]
    ] = Field(default_factory=list)


class GeofenceSettings(_Section):
    files: list[str] = Field(default_factory=list)  # GeoJSON
    zones: list[dict[str, Any]] = Field(default_factory=list)  # inline tables
    sample_sites: bool = True  # the package's sample of sensitive sites


class AlertSettings(_Section):
    predicted_entry_hours: float = Field(default=24.0, gt=0)
    predicted_entry_probability: float = Field(default=0.3, gt=0, le=1)
    new_object_min_alt_m: float = 15_000.0
    lost_after_s: float = Field(default=600.0, gt=0)
    border_geofence_ids: list[str] = Field(default_factory=list)
    webhook_url: str | None = None
    mqtt_host: str | None = None
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_topic: str = "stratowatch/alerts"


class WindSettings(_Section):
    """``files``: GRIB2/NetCDF wind files (merged in time). ``analytic``: with no files, use the
    analytic field (demos, tests). ``steady``: use the first time of the field at any time (a
    field whose valid time differs from the data's)."""

    files: list[str] = Field(default_factory=list)
    analytic: bool = False
    steady: bool = False


class PredictionSettings(_Section):
    enabled: bool = True
    hours: float = Field(default=24.0, gt=0, le=240)
    members: int = Field(default=50, ge=1, le=5000)
    every_s: float = Field(default=600.0, gt=0)  # refresh period per track (data time)
    moved_m: float = Field(default=20_000.0, gt=0)  # refresh when the track is this far from the last start
    workers: int = Field(default=1, ge=1, le=64)
    classes: tuple[Literal["balloon", "unknown", "aircraft"], ...] = ("balloon", "unknown")
    #: A dask.distributed scheduler (``tcp://host:8786``) to run the ensembles on instead of the
    #: local process pool (``stratowatch serve --dask-scheduler``); needs ``stratowatch[scale]``.
    dask_scheduler: str | None = None


class PipelineSettings(_Section):
    step_s: float = Field(default=1.0, gt=0)  # live ingest: one pipeline step per this many seconds
    state_every_steps: int = Field(default=10, ge=1)  # tracker snapshot period (and after each batch)
    max_batch: int = Field(default=50_000, ge=1)  # most observations in one step
    classify_with_winds: bool = True


class RetentionConfig(_Section):
    """How long the store keeps rows (seconds; omit a key for its default, null keeps for ever),
    and how often (in data time) old rows are removed."""

    every_s: float = Field(default=3600.0, gt=0)
    observations_max_age_s: float | None = Field(default=7 * 86400.0, gt=0)
    quarantine_max_age_s: float | None = Field(default=30 * 86400.0, gt=0)
    track_states_max_age_s: float | None = Field(default=30 * 86400.0, gt=0)
    ended_tracks_max_age_s: float | None = Field(default=30 * 86400.0, gt=0)
    predictions_max_age_s: float | None = Field(default=7 * 86400.0, gt=0)
    alerts_max_age_s: float | None = Field(default=365 * 86400.0, gt=0)
    resolved_incidents_max_age_s: float | None = Field(default=365 * 86400.0, gt=0)
    audit_log_max_age_s: float | None = Field(default=None, gt=0)

    def store_settings(self) -> Any:
        from stratowatch.store.base import RetentionSettings

        return RetentionSettings.from_mapping(self.model_dump(exclude={"every_s"}))


class ScaleSettings(_Section):
    """Scale-out (:mod:`stratowatch.service.cellworker`): the cells of the world every ingest and
    track process shares (``cell_size_deg`` must divide 180 and be the same everywhere), how long a
    tracker worker's lease of a cell lasts without renewal (``lease_s``: how soon a dead worker's
    cells are taken over), which cells this worker may own (``cells``: none given, any cell with
    traffic), at most how many (``max_cells``, 0: no limit), how far from a cell's edge an
    observation also goes to the neighbour (``halo_km``: more than a target moves between two of
    its reports), the durable consumers' redelivery wait (``ack_wait_s``) and fetch size, the
    position gate (``merge_d2``, squared Mahalanobis distance) that merges a handed-over track
    with a local twin, and whether workers share the cells out evenly (``rebalance``: a worker
    started into a running deployment takes its share from the others)."""

    cell_size_deg: float = Field(default=10.0, ge=0.1, le=90.0)
    lease_s: float = Field(default=15.0, gt=0)
    cells: list[int] | None = None
    max_cells: int = Field(default=0, ge=0)
    halo_km: float = Field(default=50.0, ge=0)
    ack_wait_s: float = Field(default=60.0, gt=0)
    fetch_batch: int = Field(default=64, ge=1, le=10_000)
    merge_d2: float = Field(default=16.0, gt=0)
    #: spread the cells over the live workers (each keeps at most its fair share; see cellworker)
    rebalance: bool = True


class PeerSettings(_Section):
    """A partner node this node federates with (see :mod:`stratowatch.sharing.federation`):
    ``partner`` its code, ``url`` its API base (``https://usa.example:8000``), ``api_key`` the key
    that node issued to this one (sent as ``X-API-Key``), ``ca_file`` the PEM bundle that verifies
    its TLS certificate (default: the system's), ``period_s`` how often its tracks are pulled."""

    partner: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")
    url: str
    api_key: str | None = None
    ca_file: str | None = None
    period_s: float = Field(default=2.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be http://host:port or https://host:port")
        return v.rstrip("/")


class FederationSettings(_Section):
    """Track-to-track fusion with partner nodes. ``peers``: the nodes to pull tracks from.
    ``period_s``: how often the common picture is fused. ``stale_s``: a partner's track older than
    this (data time) is left out. ``gate_probability``: the association gate. ``process_noise``:
    white acceleration noise (m^2/s^3) when bringing tracks to one time. ``velocity_sigma_mps``:
    the velocity uncertainty assumed for tracks that publish none. ``max_backoff_s``: the longest
    wait between reconnection attempts."""

    peers: list[PeerSettings] = Field(default_factory=list)
    period_s: float = Field(default=2.0, gt=0)
    stale_s: float = Field(default=300.0, gt=0)
    gate_probability: float = Field(default=0.9999, gt=0, lt=1)
    process_noise: float = Field(default=0.05, ge=0)
    velocity_sigma_mps: float = Field(default=5.0, gt=0)
    criterion: Literal["trace", "det"] = "trace"
    max_backoff_s: float = Field(default=30.0, gt=0)


class Settings(BaseSettings):
    """Everything the service reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    store_url: str = "sqlite:///stratowatch.db"
    bus_url: str = "memory://"
    node: NodeSettings = NodeSettings()
    api: ApiSettings = ApiSettings()
    auth: AuthSettings = AuthSettings()
    sensors: SensorSettings = SensorSettings()
    sources: list[SourceSettings] = Field(default_factory=list)
    partners: list[PartnerSettings] = Field(default_factory=list)
    geofences: GeofenceSettings = GeofenceSettings()
    alerts: AlertSettings = AlertSettings()
    winds: WindSettings = WindSettings()
    predictions: PredictionSettings = PredictionSettings()
    pipeline: PipelineSettings = PipelineSettings()
    retention: RetentionConfig = RetentionConfig()
    federation: FederationSettings = FederationSettings()
    scale: ScaleSettings = ScaleSettings()
    base_dir: str = "."  # where relative paths are resolved (the config file's directory)

    @field_validator("store_url")
    @classmethod
    def _store_url(cls, v: str) -> str:
        if not (v.startswith("sqlite:///") or v.startswith(("postgresql://", "postgres://"))):
            raise ValueError("must be sqlite:///path.db or postgresql://user@host:port/db")
        return v

    @field_validator("bus_url")
    @classmethod
    def _bus_url(cls, v: str) -> str:
        if v.split("://", 1)[0] not in ("memory", "inprocess", "nats", "tls"):
            raise ValueError("must be memory:// (in-process) or nats://host:port (NATS JetStream)")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)  # the environment overrides the file

    def path(self, p: str) -> Path:
        """A configured file path, resolved against ``base_dir``."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else Path(self.base_dir) / q


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _explain(exc: ValidationError, where: str) -> ConfigError:
    err = exc.errors()[0]
    key = _key(tuple(err["loc"]))
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    elif err["type"] == "missing":
        msg = "required setting is missing"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return ConfigError(f"{where}{key}: {msg}{more}")


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    check_files: bool = True,
    **overrides: Any,
) -> Settings:
    """Read the TOML file (optional), apply ``STRATOWATCH_*`` variables and ``overrides``, check.

    ``env`` replaces ``os.environ`` (tests). Raises :class:`ConfigError` naming the key.
    """
    doc: dict[str, Any] = {}
    where = ""
    if path is not None:
        p = Path(path)
        where = f"{p}: "
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
        doc.setdefault("base_dir", str(p.resolve().parent))
    doc.update(overrides)
    saved = None
    if env is not None:  # pydantic-settings reads os.environ: swap in the given mapping
        saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
        for k in saved:
            del os.environ[k]
        os.environ.update({k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})
    try:
        settings = Settings(**doc)
    except ValidationError as exc:
        raise _explain(exc, where) from None
    finally:
        if saved is not None:
            for k in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
                del os.environ[k]
            os.environ.update(saved)
    if check_files:
        check(settings, where)
    return settings


def check(settings: Settings, where: str = "") -> None:
    """Start-up checks beyond types: named files exist, formats are known, ids are unique."""
    from stratowatch.ingest.base import reader_names

    def exists(key: str, p: str) -> None:
        if not settings.path(p).is_file():
            raise ConfigError(f"{where}{key}: file not found: {settings.path(p)}")

    if settings.sensors.registry:
        exists("sensors.registry", settings.sensors.registry)
    for i, f in enumerate(settings.geofences.files):
        exists(f"geofences.files[{i}]", f)
    if settings.api.tls_certfile and settings.api.tls_keyfile:
        exists("api.tls_certfile", settings.api.tls_certfile)
        exists("api.tls_keyfile", settings.api.tls_keyfile)
    for i, f in enumerate(settings.winds.files):
        exists(f"winds.files[{i}]", f)
    known = set(reader_names())
    names: set[str] = set()
    for i, s in enumerate(settings.sources):
        if s.format not in known:
            raise ConfigError(
                f"{where}sources[{i}].format: unknown format {s.format!r} (one of {', '.join(sorted(known))})"
            )
        if s.name in names:
            raise ConfigError(f"{where}sources[{i}].name: duplicate source name {s.name!r}")
        names.add(s.name)
        if s.kind == "file" and s.path:
            exists(f"sources[{i}].path", s.path)
        if s.date_utc is not None:
            from datetime import date

            try:
                date.fromisoformat(s.date_utc)
            except ValueError:
                raise ConfigError(f"{where}sources[{i}].date_utc: not a YYYY-MM-DD date") from None
    ids = [p.id for p in settings.partners]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}partners: duplicate partner id")
    peers = [p.partner for p in settings.federation.peers]
    for i, peer in enumerate(settings.federation.peers):
        if peer.ca_file:
            exists(f"federation.peers[{i}].ca_file", peer.ca_file)
        if peer.partner == settings.node.partner:
            raise ConfigError(
                f"{where}federation.peers[{i}].partner: {peer.partner!r} is this node's own partner"
            )
        if peers.count(peer.partner) > 1:
            raise ConfigError(f"{where}federation.peers[{i}].partner: duplicate peer {peer.partner!r}")
    if not math.isfinite(settings.alerts.new_object_min_alt_m):
        raise ConfigError(f"{where}alerts.new_object_min_alt_m: not a finite number")
