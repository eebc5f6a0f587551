"""Principals and revoked tokens, on both backends: kept, listed, disabled; revocations kept
until the token would have expired, and never hidden by a partner's read scope."""

from __future__ import annotations

import time

from stratowatch.store import Store
from stratowatch.store._sql import scope


def test_principals_are_kept_listed_and_disabled(store: Store) -> None:
    assert store.principal("alice") is None and store.principals() == []
    store.write_principal("alice", "CAN", "user", ["tracks:read", "alerts:ack", "tracks:read"], "h1")
    store.write_principal("feed-1", "USA", "key", ["observations:write"], "h2", details={"note": "radar"})
    alice = store.principal("alice")
    assert alice is not None
    assert (alice["partner"], alice["kind"], alice["scopes"]) == (
        "CAN",
        "user",
        ["alerts:ack", "tracks:read"],
    )
    assert alice["secret_hash"] == "h1" and not alice["disabled"] and alice["created_s"] > 0
    assert [p["principal_id"] for p in store.principals()] == ["alice", "feed-1"]
    assert store.principals()[1]["details"] == {"note": "radar"}
    assert store.disable_principal("alice") is True
    assert store.disable_principal("nobody") is False
    assert store.principal("alice")["disabled"] is True  # type: ignore[index]
    # a rewrite (new secret) replaces the row
    store.write_principal("feed-1", "USA", "key", ["observations:write"], "h3")
    assert store.principal("feed-1")["secret_hash"] == "h3"  # type: ignore[index]


def test_revoked_tokens_are_refused_until_they_expire(store: Store) -> None:
    now = time.time()
    assert not store.token_revoked("j1")
    store.revoke_token("j1", now + 3600)
    store.revoke_token("j1", now + 3600)  # twice: no error
    store.revoke_token("old", now - 7200)  # already expired: forgotten at the next revocation
    assert store.token_revoked("j1") and store.token_revoked("old")
    store.revoke_token("j2", now + 60)
    assert store.token_revoked("j2") and not store.token_revoked("old")


def test_authentication_reads_ignore_the_partner_scope(store: Store) -> None:
    store.write_principal("bob", "USA", "service", ["tracks:read"], "h")
    store.revoke_token("j9", time.time() + 60)
    with scope("USA"):
        assert store.principal("bob") is not None
        assert [p["principal_id"] for p in store.principals()] == ["bob"]
        assert store.token_revoked("j9")
