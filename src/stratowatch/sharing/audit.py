"""The audit log as a hash chain: every record's hash covers the previous record's hash.

``hash_i = SHA-256(json([prev_hash, time_s, actor, action, details]))`` where ``details`` is the
JSON text exactly as stored. Changing, inserting or removing a record inside the chain changes
every later hash, so :func:`verify` finds the first record that does not fit. Retention may cut
the oldest records: the store then keeps the hash of the last one removed as the *anchor* the
first remaining record must point at. The database refuses ``UPDATE`` on the log (a trigger).

This format is fixed (migration 0004 chains older records with it): change it only with a new
format version and a migration.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

#: The state key under which the store keeps the retention anchor.
ANCHOR_KEY = "audit.anchor"


def record_hash(prev_hash: str, time_s: float, actor: str, action: str, details_text: str) -> str:
    message = json.dumps([prev_hash, float(time_s), actor, action, details_text], separators=(",", ":"))
    return hashlib.sha256(message.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :func:`verify` found: ``ok``, how many records it checked, and the first bad one."""

    ok: bool
    records: int
    first_id: int | None = None
    last_id: int | None = None
    bad_id: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            if not self.records:
                return "audit log: empty, nothing to verify"
            return f"audit log: {self.records} records (ids {self.first_id}..{self.last_id}) chain intact"
        return f"audit log: BROKEN at record {self.bad_id}: {self.reason} ({self.records} records checked)"


def verify(rows: Iterable[tuple[int, float, str, str, str, str, str]], anchor: str = "") -> ChainReport:
    """Check ``(id, time_s, actor, action, details_text, prev_hash, hash)`` rows in id order.

    ``anchor``: the hash of the last record retention removed ("" when none was removed)."""
    expected_prev = anchor
    n = 0
    first = last = None
    for rid, time_s, actor, action, details, prev, digest in rows:
        if first is None:
            first = rid
        if prev != expected_prev:
            why = (
                "does not follow the record before it (one was removed, inserted or reordered)"
                if n
                else "does not follow the retention anchor (records were removed from the start)"
            )
            return ChainReport(False, n, first, last, rid, why)
        if record_hash(prev, time_s, actor, action, details) != digest:
            return ChainReport(False, n, first, last, rid, "its contents do not match its hash (changed)")
        expected_prev = digest
        last = rid
        n += 1
    return ChainReport(True, n, first, last)
