"""The audit log is a hash chain in both backends: appends chain, the database refuses updates,
and any change, removal or insertion is found and named by the verifier."""

from __future__ import annotations

from typing import Any

import pytest

from stratowatch.sharing.audit import record_hash
from stratowatch.store import StoreError


def _fill(store: Any, n: int = 20) -> None:
    store.audit("admin", "principal_add", {"id": "alice", "partner": "CAN"}, time_s=1000.0)
    store.audit_many(
        [(f"usa-node-{i % 3}", "release", {"path": "/api/v1/tracks", "n": i}, 1001.0 + i) for i in range(n)]
    )
    store.audit("anonymous", "denied", {"status": 401, "path": "/api/v1/observations"}, time_s=2000.0)


def _raw(store: Any, sql: str, params: list[Any]) -> None:
    """Bypass the store API (an attacker with database access)."""
    store._write(lambda cur: cur.execute(store._sql(sql), params))


def test_appends_chain_and_verify(store: Any) -> None:
    assert store.verify_audit().ok and store.verify_audit().records == 0
    _fill(store)
    report = store.verify_audit()
    assert report.ok and report.records == 22, str(report)
    newest = store.audit_log(limit=1)[0]
    assert newest["action"] == "denied"


def test_the_database_refuses_to_change_a_record(store: Any) -> None:
    _fill(store)
    with pytest.raises(StoreError, match="append-only"):
        _raw(store, "UPDATE audit_log SET actor = ? WHERE id = ?", ["someone-else", 3])
    assert store.verify_audit().ok


def test_a_changed_record_is_found(store: Any, backend: str) -> None:
    _fill(store)
    _raw(store, "DROP TRIGGER audit_log_append_only" + (" ON audit_log" if backend == "postgres" else ""), [])
    _raw(store, "UPDATE audit_log SET details = ? WHERE id = ?", ['{"n":999,"path":"/api/v1/tracks"}', 7])
    report = store.verify_audit()
    assert not report.ok and report.bad_id == 7 and "changed" in report.reason


def test_a_removed_record_is_found(store: Any) -> None:
    _fill(store)
    _raw(store, "DELETE FROM audit_log WHERE id = ?", [10])
    report = store.verify_audit()
    assert not report.ok and report.bad_id == 11 and "removed" in report.reason


def test_a_forged_record_is_found(store: Any) -> None:
    _fill(store, n=3)
    last = store.audit_log(limit=1)[0]
    forged_hash = record_hash("not-the-previous", 3000.0, "admin", "principal_add", "{}")
    _raw(
        store,
        "INSERT INTO audit_log (time_s, actor, action, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
        [3000.0, "admin", "principal_add", "{}", "not-the-previous", forged_hash],
    )
    report = store.verify_audit()
    assert not report.ok and report.bad_id == last["id"] + 1


def test_retention_cuts_the_oldest_records_and_keeps_the_chain_verifiable(url: str) -> None:
    from stratowatch.store import RetentionSettings, open_store

    with open_store(url, retention=RetentionSettings(audit_log_max_age_s=500.0)) as store:
        _fill(store)
        deleted = store.apply_retention(1510.0)  # removes records older than 1010 s
        assert deleted["audit_log"] == 10
        report = store.verify_audit()
        assert report.ok and report.records == 12, str(report)
        store.audit("admin", "after", {})
        assert store.verify_audit().ok
        # removing the new first record is still found (it no longer follows the anchor)
        first = report.first_id
        _raw(store, "DELETE FROM audit_log WHERE id = ?", [first])
        broken = store.verify_audit()
        assert not broken.ok and broken.bad_id == first + 1
