"""Alerts and incidents: geofences, rules over all tracks at once, incidents, notifications.

from stratowatch.alerts import AlertEngine, RulesConfig, load_geofences, sample_sites_path
engine = AlertEngine(load_geofences(sample_sites_path()), RulesConfig())
alerts = engine.evaluate(time_s, tracks, predictions)   # new or materially changed only
engine.acknowledge(alerts[0].alert_id, "duty officer")  # -> the Incident, now "tracking"
"""

from stratowatch.alerts.engine import AlertEngine, RulesConfig
from stratowatch.alerts.geofences import (
    GeofenceError,
    GeofenceIndex,
    airfields_from_csv,
    crossings,
    geofences_from_config,
    inside,
    load_border_sides,
    load_geofences,
    sample_sites_path,
)
from stratowatch.alerts.incidents import IncidentBook, IncidentStateError, UnknownIdError

__all__ = [
    "AlertEngine",
    "GeofenceError",
    "GeofenceIndex",
    "IncidentBook",
    "IncidentStateError",
    "RulesConfig",
    "UnknownIdError",
    "airfields_from_csv",
    "crossings",
    "geofences_from_config",
    "inside",
    "load_border_sides",
    "load_geofences",
    "sample_sites_path",
]
