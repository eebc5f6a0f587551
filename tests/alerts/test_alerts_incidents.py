"""The incident book: lifecycle, history, de-duplication record, snapshot/restore."""

from __future__ import annotations

import json

import pytest

from stratowatch.alerts.incidents import (
    IncidentBook,
    IncidentStateError,
    UnknownIdError,
    fingerprint,
    material_change,
)
from stratowatch.model import Alert


def _alert(alert_id: str = "geofence_enter:42:site", t: float = 100.0, **kw: object) -> Alert:
    return Alert(
        alert_id=alert_id,
        time_s=t,
        rule=alert_id.split(":")[0],
        severity="warning",
        message="m",
        track_id=42,
        **kw,
    )  # type: ignore[arg-type]


def test_lifecycle_with_who_did_what_and_when() -> None:
    book = IncidentBook()
    inc = book.open(100.0, "T42 entered Test site", track_ids=(42,), rule="geofence_enter")
    assert inc.incident_id == "INC-0001" and inc.status == "open"
    inc = book.add_alert(inc.incident_id, _alert(), "new")
    assert inc.alert_ids == ("geofence_enter:42:site",)
    assert book.alert("geofence_enter:42:site").incident_id == "INC-0001"
    inc = book.acknowledge("geofence_enter:42:site", "alice", 130.0)
    assert inc.status == "tracking"
    assert book.alert("geofence_enter:42:site").acknowledged_by == "alice"
    assert book.alert("geofence_enter:42:site").acknowledged_s == 130.0
    again = book.acknowledge("geofence_enter:42:site", "bob", 140.0)
    assert again == inc, "the first acknowledgement stands"
    inc = book.resolve("INC-0001", "bob", 200.0, "a weather balloon")
    assert inc.status == "resolved" and inc.updated_s == 200.0
    assert inc.history == (
        (100.0, "system", "opened: T42 entered Test site"),
        (100.0, "system", "alert geofence_enter:42:site (new): m"),
        (130.0, "alice", "acknowledged alert geofence_enter:42:site"),
        (130.0, "alice", "status open -> tracking"),
        (200.0, "bob", "status tracking -> resolved: a weather balloon"),
    )
    with pytest.raises(IncidentStateError, match="already resolved"):
        book.resolve("INC-0001", "bob", 210.0)
    assert book.active_for_track(42) is None
    assert book.open(300.0, "again", track_ids=(42,)).incident_id == "INC-0002"
    assert book.active_for_track(42).incident_id == "INC-0002"  # type: ignore[union-attr]
    assert [i.incident_id for i in book.incidents("resolved")] == ["INC-0001"]


def test_take_and_unknown_ids() -> None:
    book = IncidentBook()
    inc = book.open(0.0, "x")
    assert book.take(inc.incident_id, "carol", 5.0, "watching").history[-1] == (
        5.0,
        "carol",
        "status open -> tracking: watching",
    )
    with pytest.raises(IncidentStateError):
        book.take(inc.incident_id, "carol", 6.0)
    with pytest.raises(UnknownIdError, match="INC-0099"):
        book.resolve("INC-0099", "x", 0.0)
    with pytest.raises(UnknownIdError, match="nope"):
        book.acknowledge("nope", "x", 0.0)
    book.record_alert(_alert("track_lost:1"))
    with pytest.raises(IncidentStateError, match="no incident"):
        book.acknowledge("track_lost:1", "x", 0.0)


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        ({}, {}, None),
        ({"severity": "warning"}, {"severity": "critical"}, "severity up"),
        ({"severity": "critical"}, {"severity": "warning"}, None),
        ({"details": {"probability": 0.40}}, {"details": {"probability": 0.54}}, None),
        ({"details": {"probability": 0.40}}, {"details": {"probability": 0.56}}, "probability 0.40 -> 0.56"),
        ({"details": {"probability": 0.40}}, {"details": {"probability": 0.20}}, "probability 0.40 -> 0.20"),
        ({"details": {"expected_entry_s": 0.0}}, {"details": {"expected_entry_s": 3500.0}}, None),
        (
            {"details": {"expected_entry_s": 0.0}},
            {"details": {"expected_entry_s": 3700.0}},
            "expected entry moved by +1.0 h",
        ),
        ({"details": {"geofence_ids": ["a"]}}, {"details": {"geofence_ids": ["a", "b"]}}, "new geofence"),
        ({"details": {"geofence_ids": ["a", "b"]}}, {"details": {"geofence_ids": ["a"]}}, None),
    ],
)
def test_material_change(before: dict[str, object], after: dict[str, object], reason: str | None) -> None:
    a = Alert(
        "k",
        0.0,
        "predicted_entry",
        str(before.get("severity", "warning")),
        "m",
        details=before.get("details", {}),
    )  # type: ignore[arg-type]
    b = Alert(
        "k",
        10.0,
        "predicted_entry",
        str(after.get("severity", "warning")),
        "m",
        details=after.get("details", {}),
    )  # type: ignore[arg-type]
    assert material_change(fingerprint(a), fingerprint(b)) == reason
    assert material_change(None, fingerprint(b)) == "new"


def test_dedup_record_and_rearm() -> None:
    book = IncidentBook()
    a = _alert(t=0.0)
    assert book.should_notify(a) == "new"
    book.mark_notified(a)
    assert book.should_notify(_alert(t=5000.0)) is None, "unchanged: quiet however long"
    book.rearm(a.alert_id)
    assert book.should_notify(_alert(t=100.0), rearm_after_s=600.0) is None
    assert book.should_notify(_alert(t=700.0), rearm_after_s=600.0) == "again"


def test_snapshot_round_trips_through_json() -> None:
    book = IncidentBook()
    inc = book.open(0.0, "Unidentified high-altitude object T42", track_ids=(42,), rule="new_unidentified")
    alert = _alert("new_unidentified:42", details={"label": "balloon", "alt_m": 18600.0})
    book.add_alert(inc.incident_id, alert, "new")
    book.mark_notified(alert)
    book.acknowledge(alert.alert_id, "alice", 10.0)
    snap = json.loads(json.dumps(book.snapshot(), allow_nan=False))
    again = IncidentBook.restore(snap)
    assert again.incidents() == book.incidents()
    assert again.alerts() == book.alerts()
    assert again.active_for_track(42) == book.incident("INC-0001")
    assert [i.incident_id for i in again.active_opened_by("new_unidentified")] == ["INC-0001"]
    assert again.should_notify(alert) is None
    assert again.open(20.0, "next").incident_id == "INC-0002"
    with pytest.raises(ValueError, match="version"):
        IncidentBook.restore({"version": 99})
