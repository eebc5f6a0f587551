"""Authenticating in tests: principals and bearer tokens for an app's (or a store's) authority.

``bearer(app)`` creates (once) an admin service account of the node's own partner and returns
the ``Authorization`` header of a fresh token for it; ``bearer(app, "analyst", scopes=[...])``
another principal. ``MemoryCredentials`` holds principals for apps over fake stores."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from stratowatch.sharing.auth import Authority

ADMIN = "test-admin"


def authority_of(target: Any) -> Authority:
    """The authority of a FastAPI app (``app.state.authority``), a TestClient's app, or itself."""
    app = getattr(target, "app", target)
    state = getattr(app, "state", None)
    found = getattr(state, "authority", None) if state is not None else None
    return found if found is not None else target


def ensure_principal(
    authority: Authority,
    principal_id: str,
    *,
    scopes: Sequence[str] = ("admin",),
    partner: str | None = None,
    kind: str = "service",
) -> str | None:
    """Create the principal unless it exists; its credential when created."""
    if authority.record(principal_id) is not None:
        return None
    return authority.create_principal(principal_id, partner or authority.node_partner, kind, list(scopes))


def bearer(
    target: Any,
    principal_id: str = ADMIN,
    *,
    scopes: Sequence[str] = ("admin",),
    partner: str | None = None,
    kind: str = "service",
) -> dict[str, str]:
    """``{"Authorization": "Bearer <jwt>"}`` for ``principal_id`` (created when missing)."""
    authority = authority_of(target)
    ensure_principal(authority, principal_id, scopes=scopes, partner=partner, kind=kind)
    return {"Authorization": f"Bearer {authority.issue(principal_id).token}"}


class MemoryCredentials:
    """The store methods an :class:`Authority` uses, in memory (for apps over fake stores)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.revoked: dict[str, float] = {}
        self.state: dict[str, bytes] = {}

    def write_principal(
        self,
        principal_id: str,
        partner: str,
        kind: str,
        scopes: Sequence[str],
        secret_hash: str,
        *,
        disabled: bool = False,
        details: Mapping[str, Any] | None = None,
        created_s: float | None = None,
    ) -> None:
        self.rows[principal_id] = {
            "principal_id": principal_id,
            "partner": partner,
            "kind": kind,
            "scopes": sorted(set(scopes)),
            "secret_hash": secret_hash,
            "created_s": time.time() if created_s is None else created_s,
            "disabled": disabled,
            "details": dict(details or {}),
        }

    def principal(self, principal_id: str) -> dict[str, Any] | None:
        row = self.rows.get(principal_id)
        return dict(row) if row is not None else None

    def principals(self) -> list[dict[str, Any]]:
        return [dict(self.rows[k]) for k in sorted(self.rows)]

    def disable_principal(self, principal_id: str) -> bool:
        if principal_id not in self.rows:
            return False
        self.rows[principal_id]["disabled"] = True
        return True

    def revoke_token(self, jti: str, expires_s: float) -> None:
        self.revoked[jti] = expires_s

    def token_revoked(self, jti: str) -> bool:
        return jti in self.revoked

    def save_state(self, key: str, blob: bytes) -> None:
        self.state[key] = bytes(blob)

    def load_state(self, key: str) -> bytes | None:
        return self.state.get(key)

    def audit(self, *args: Any, **kw: Any) -> None:
        pass


def memory_authority(node_partner: str = "LOCAL") -> Authority:
    return Authority(MemoryCredentials(), node_partner=node_partner)


def config_bearer(
    config_path: Any = None,
    *,
    store_url: str | None = None,
    principal_id: str = ADMIN,
    scopes: Sequence[str] = ("admin",),
) -> dict[str, str]:
    """The bearer header of an admin of the node a config file (or a store URL) describes,
    made in its store before ``stratowatch serve`` starts on it (as ``stratowatch auth add``
    then ``auth token`` would)."""
    from stratowatch.config import load_settings
    from stratowatch.store import open_store

    overrides: dict[str, Any] = {"store_url": store_url} if store_url else {}
    settings = load_settings(config_path, {}, check_files=False, **overrides)
    store = open_store(settings.store_url)
    try:
        return bearer(Authority.from_settings(store, settings), principal_id, scopes=scopes)
    finally:
        store.close()
