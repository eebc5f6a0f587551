"""Alerts and incidents: geofences, rules over all tracks at once, incidents, notifications.

from stratowatch.alerts import AlertEngine, RulesConfig, load_geofences, sample_sites_path
engine = AlertEngine(load_geofences(sample_sites_path()), RulesConfig())
alerts = engine.evaluate(time_s, tracks, predictions)   # new or materially changed only
engine.acknowledge(alerts[0].alert_id, "duty officer")  # -> the Incident, now "tracking"
"""

from stratowatch.alerts.borders import Border, shared_border
from stratowatch.alerts.engine import AlertEngine, RulesConfig
from stratowatch.alerts.geofences import (
    GeofenceError,
    GeofenceIndex,
    airfields_from_csv,
    arrivals_payload,
    crossings,
    geofences_from_config,
    inside,
    load_border_sides,
    load_geofences,
    sample_sites_path,
    to_regions,
)
from stratowatch.alerts.incidents import IncidentBook, IncidentStateError, UnknownIdError
from stratowatch.alerts.notify import (
    BackgroundNotifier,
    LogNotifier,
    MqttNotifier,
    Notifier,
    WebhookNotifier,
    notifiers_from_config,
)

__all__ = [
    "AlertEngine",
    "BackgroundNotifier",
    "Border",
    "GeofenceError",
    "GeofenceIndex",
    "IncidentBook",
    "IncidentStateError",
    "LogNotifier",
    "MqttNotifier",
    "Notifier",
    "RulesConfig",
    "UnknownIdError",
    "WebhookNotifier",
    "airfields_from_csv",
    "arrivals_payload",
    "crossings",
    "geofences_from_config",
    "inside",
    "load_border_sides",
    "load_geofences",
    "notifiers_from_config",
    "sample_sites_path",
    "shared_border",
    "to_regions",
]
