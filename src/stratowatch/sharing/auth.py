"""Credentials: hashed secrets, API keys and the node's bearer tokens (JWT).

* **Secrets** are stored only as ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (a salt per secret) and
  compared in constant time.
* **API keys** read ``sw_<principal_id>.<random>``: the principal is in the key, so one scrypt
  check verifies it. Every principal's secret is shown once, in that form, when it is created;
  users use it as their password, service accounts as their client secret, sensors and feeders
  (kind ``key``) send it as ``X-API-Key``.
* **Bearer tokens** are HS256 JWTs with ``iss`` (``[auth] issuer``), ``aud``
  (``stratowatch:<node partner>``), ``sub``, ``partner``, ``scope`` (space separated), ``iat``,
  ``exp`` and ``jti``. :meth:`Authority.verify` refuses an expired token, another node's or
  issuer's, a bad signature, any algorithm but HS256 (``none`` included), a revoked ``jti``, a
  disabled or unknown principal, and a token whose scopes are no longer all granted to its
  principal (so neither a forged claim nor a since-narrowed grant escalates).
* **One-time login tokens** (``use: "login"``, short-lived) open a console session once: they
  are revoked as they are redeemed, and are never accepted as bearer tokens.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from stratowatch.sharing.principal import SCOPES, Principal, audience_for

#: Principal kinds: a person, a partner's system (OAuth2 client credentials), a sensor or feeder key.
KINDS = ("user", "service", "key")
#: Kinds that may send their key as ``X-API-Key`` (people log in for a token or a session).
KEY_KINDS = ("service", "key")
#: Store state key of the generated signing secret.
SECRET_STATE_KEY = "auth.jwt_secret"
ALGORITHM = "HS256"
KEY_PREFIX = "sw_"
PRINCIPAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
PARTNER = re.compile(r"^[A-Z][A-Z0-9_]{1,15}$")

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class AuthError(Exception):
    """Credentials refused. ``reason`` (for the audit log) says why; clients only ever see
    a generic message, so a refusal reveals nothing about which principals exist."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# -- secrets ------------------------------------------------------------------------------------
def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hash_secret(secret: str) -> str:
    """``scrypt$n$r$p$salt$hash`` of ``secret`` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=64 * 1024 * 1024, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored`` (constant-time comparison; False when malformed)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = _unb64(digest)
        got = hashlib.scrypt(
            secret.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
            dklen=len(want),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def format_key(principal_id: str, secret: str) -> str:
    return f"{KEY_PREFIX}{principal_id}.{secret}"


def parse_key(key: str) -> tuple[str, str] | None:
    """``sw_<principal_id>.<secret>`` -> (principal_id, secret); None when not of that form."""
    if not key.startswith(KEY_PREFIX):
        return None
    principal_id, dot, secret = key[len(KEY_PREFIX) :].rpartition(".")
    if not dot or not secret or not PRINCIPAL_ID.match(principal_id):
        return None
    return principal_id, secret


def parse_scopes(text: str | Iterable[str] | None) -> list[str] | None:
    """Scopes from ``"a b"``, ``"a,b"`` or a list (None when none given); unknown ones refused."""
    if text is None:
        return None
    items = re.split(r"[\s,]+", text) if isinstance(text, str) else list(text)
    scopes = sorted({s.strip() for s in items if s and s.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return scopes


@dataclass(frozen=True, slots=True)
class Issued:
    token: str
    claims: dict[str, Any]

    @property
    def expires_in(self) -> int:
        return max(0, int(self.claims["exp"] - self.claims["iat"]))

    @property
    def scope(self) -> str:
        return str(self.claims["scope"])


class Authority:
    """This node's credentials over its store: creates principals, checks secrets and keys,
    issues and verifies tokens, revokes them. Thread-safe; principal records and revocation
    checks are cached for ``cache_s`` (changes made through this object apply at once)."""

    def __init__(
        self,
        store: Any,
        *,
        node_partner: str = "LOCAL",
        secret: str | None = None,
        issuer: str = "stratowatch",
        token_ttl_s: float = 3600.0,
        cache_s: float = 2.0,
    ) -> None:
        self.store = store
        self.node_partner = node_partner
        self.issuer = issuer
        self.audience = f"stratowatch:{node_partner}"
        self.token_ttl_s = float(token_ttl_s)
        self.cache_s = float(cache_s)
        self._secret = secret.encode() if secret else None
        self._lock = threading.Lock()
        self._redeem_lock = threading.Lock()
        self._records: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._revoked: dict[str, float] = {}  # jti -> exp (known revoked)
        self._not_revoked: dict[str, float] = {}  # jti -> monotonic time checked
        self._keys: dict[bytes, tuple[str, float]] = {}  # sha256(key) -> (principal id, checked)

    @classmethod
    def from_settings(cls, store: Any, settings: Any) -> Authority:
        auth = getattr(settings, "auth", None)
        node = getattr(settings, "node", None)
        return cls(
            store,
            node_partner=str(getattr(node, "partner", "LOCAL")),
            secret=getattr(auth, "jwt_secret", None),
            issuer=str(getattr(auth, "issuer", "stratowatch")),
            token_ttl_s=float(getattr(auth, "token_ttl_s", 3600.0)),
        )

    # -- the signing secret ---------------------------------------------------------------------
    @property
    def secret(self) -> bytes:
        if self._secret is None:
            with self._lock:
                if self._secret is None:
                    self._secret = self._stored_secret()
        return self._secret

    def _stored_secret(self) -> bytes:
        blob = self.store.load_state(SECRET_STATE_KEY)
        if blob:
            return bytes(blob)
        self.store.save_state(SECRET_STATE_KEY, secrets.token_urlsafe(48).encode())
        return bytes(self.store.load_state(SECRET_STATE_KEY))

    # -- principals -----------------------------------------------------------------------------
    def create_principal(
        self,
        principal_id: str,
        partner: str,
        kind: str,
        scopes: Sequence[str],
        *,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a principal; returns its credential (``sw_<id>.<secret>``), shown this once.
        Raises ValueError for a taken id, a bad id, partner, kind or scope."""
        if not PRINCIPAL_ID.match(principal_id):
            raise ValueError("id: letters, digits and _ . @ - (at most 64), starting with a letter or digit")
        if not PARTNER.match(partner):
            raise ValueError("partner: an upper-case partner code such as CAN")
        if kind not in KINDS:
            raise ValueError(f"kind: one of {', '.join(KINDS)}")
        granted = parse_scopes(list(scopes)) or []
        if not granted:
            raise ValueError("scopes: at least one")
        if self.store.principal(principal_id) is not None:
            raise ValueError(f"principal {principal_id} exists")
        secret = new_secret()
        self.store.write_principal(
            principal_id, partner, kind, granted, hash_secret(secret), details=dict(details or {})
        )
        self._forget(principal_id)
        return format_key(principal_id, secret)

    def disable(self, principal_id: str) -> bool:
        ok = bool(self.store.disable_principal(principal_id))
        self._forget(principal_id)
        return ok

    def _forget(self, principal_id: str) -> None:
        with self._lock:
            self._records.pop(principal_id, None)
            for k in [k for k, (pid, _) in self._keys.items() if pid == principal_id]:
                del self._keys[k]

    def record(self, principal_id: str) -> dict[str, Any] | None:
        """The stored principal (cached for ``cache_s``)."""
        now = time.monotonic()
        with self._lock:
            hit = self._records.get(principal_id)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        rec = self.store.principal(principal_id)
        with self._lock:
            if len(self._records) > 10_000:
                self._records.clear()
            self._records[principal_id] = (now, rec)
        return rec

    def principal(self, rec: Mapping[str, Any], scopes: Iterable[str] | None = None) -> Principal:
        partner = str(rec["partner"])
        return Principal(
            subject=str(rec["principal_id"]),
            partner=partner,
            scopes=frozenset(rec["scopes"] if scopes is None else scopes),
            kind=str(rec["kind"]),
            audience=audience_for(partner, self.node_partner),
        )

    def _active(self, principal_id: str) -> dict[str, Any]:
        rec = self.record(principal_id)
        if rec is None:
            raise AuthError("unknown_principal")
        if rec["disabled"]:
            raise AuthError("disabled_principal")
        return rec

    def check_secret(self, principal_id: str, secret: str, kinds: Sequence[str] = KINDS) -> dict[str, Any]:
        """The principal whose secret (or whole ``sw_`` key) ``secret`` is; AuthError otherwise."""
        parsed = parse_key(secret)
        if parsed is not None:
            if parsed[0] != principal_id:
                raise AuthError("bad_secret")
            secret = parsed[1]
        rec = self.record(principal_id)
        stored = rec["secret_hash"] if rec is not None else _dummy_hash()
        ok = verify_secret(secret, stored)  # hashed even for an unknown id: same time either way
        if rec is None:
            raise AuthError("unknown_principal")
        if not ok:
            raise AuthError("bad_secret")
        if rec["disabled"]:
            raise AuthError("disabled_principal")
        if rec["kind"] not in kinds:
            raise AuthError("wrong_kind")
        return rec

    def check_key(self, key: str) -> Principal:
        """The principal of an ``X-API-Key`` (service accounts and keys only)."""
        parsed = parse_key(key)
        if parsed is None:
            raise AuthError("malformed_key")
        digest = hashlib.sha256(key.encode()).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._keys.get(digest)
        if hit is not None and now - hit[1] < 300.0 and hit[0] == parsed[0]:
            rec = self._active(parsed[0])
            if rec["kind"] in KEY_KINDS:
                return self.principal(rec)
        rec = self.check_secret(parsed[0], parsed[1], KEY_KINDS)
        with self._lock:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[digest] = (parsed[0], now)
        return self.principal(rec)

    # -- tokens ---------------------------------------------------------------------------------
    def issue(
        self,
        principal_id: str,
        scopes: Iterable[str] | None = None,
        ttl_s: float | None = None,
        *,
        use: str = "access",
    ) -> Issued:
        """A signed token for an active principal. ``scopes`` narrows the grant (None: all of
        it); asking for a scope not granted raises ``AuthError("scope_not_granted", 400)``."""
        rec = self._active(principal_id)
        granted = set(rec["scopes"])
        wanted = set(parse_scopes(list(scopes)) or []) if scopes is not None else granted
        if not wanted or not wanted <= granted:
            raise AuthError("scope_not_granted", 400)
        now = int(time.time())
        ttl = self.token_ttl_s if ttl_s is None else float(ttl_s)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": principal_id,
            "partner": rec["partner"],
            "scope": " ".join(sorted(wanted)),
            "iat": now,
            "exp": now + max(1, round(ttl)),
            "jti": uuid.uuid4().hex,
        }
        if use != "access":
            claims["use"] = use
        return Issued(jwt.encode(claims, self.secret, algorithm=ALGORITHM), claims)

    def decode(self, token: str, *, use: str = "access", verify_exp: bool = True) -> dict[str, Any]:
        """The claims of a token this node signed for itself (signature, algorithm, issuer,
        audience, expiry and purpose checked; not yet revocation or the principal)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed_token") from None
        if header.get("alg") != ALGORITHM:
            raise AuthError("bad_algorithm")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti", "scope"], "verify_exp": verify_exp},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("expired_token") from None
        except jwt.InvalidAudienceError:
            raise AuthError("wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("wrong_issuer") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad_signature") from None
        except jwt.PyJWTError:
            raise AuthError("invalid_token") from None
        if claims.get("use", "access") != use:
            raise AuthError("wrong_token_use")
        if not isinstance(claims["scope"], str) or not isinstance(claims["sub"], str):
            raise AuthError("invalid_token")
        return claims

    def verify(self, token: str, *, use: str = "access") -> tuple[Principal, dict[str, Any]]:
        """The principal a valid token speaks for, and its claims; AuthError otherwise."""
        claims = self.decode(token, use=use)
        if self.revoked(str(claims["jti"])):
            raise AuthError("revoked_token")
        rec = self._active(claims["sub"])
        if claims.get("partner") != rec["partner"]:
            raise AuthError("wrong_partner")
        try:
            scopes = set(parse_scopes(claims["scope"]) or [])
        except ValueError:
            raise AuthError("invalid_scope") from None
        if not scopes or not scopes <= set(rec["scopes"]):
            raise AuthError("scope_escalation")
        return self.principal(rec, scopes), claims

    def revoked(self, jti: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if jti in self._revoked:
                return True
            checked = self._not_revoked.get(jti)
        if checked is not None and now - checked < self.cache_s:
            return False
        revoked = bool(self.store.token_revoked(jti))
        with self._lock:
            if len(self._not_revoked) > 50_000:
                self._not_revoked.clear()
            if revoked:
                self._revoked[jti] = time.time() + 86400.0
            else:
                self._not_revoked[jti] = now
        return revoked

    def revoke(self, claims: Mapping[str, Any]) -> None:
        """Refuse this token from now on (until it would expire anyway)."""
        jti, exp = str(claims["jti"]), float(claims["exp"])
        self.store.revoke_token(jti, exp)
        with self._lock:
            self._revoked[jti] = exp
            self._not_revoked.pop(jti, None)
            if len(self._revoked) > 50_000:
                wall = time.time()
                self._revoked = {k: v for k, v in self._revoked.items() if v > wall}

    def redeem_login(self, token: str) -> Issued:
        """Exchange a one-time login token for a session token (same principal and scopes).
        The login token is revoked first: a second use is refused as revoked (replay)."""
        claims = self.decode(token, use="login")
        with self._redeem_lock:
            if self.revoked(str(claims["jti"])):
                raise AuthError("replayed_login_token")
            self.revoke(claims)
        self._active(claims["sub"])
        return self.issue(claims["sub"], claims["scope"].split())


@functools.cache
def _dummy_hash() -> str:
    return hash_secret(secrets.token_urlsafe(16))
