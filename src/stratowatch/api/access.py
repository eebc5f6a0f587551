"""Who may call what: the one table of access rules and the middleware that applies it.

:data:`RULES` maps ``(method, route path template)`` to what the route needs: a scope
(``"tracks:read"``...; ``admin`` holds every scope), the same prefixed with ``own:`` (only
for the node's own principals, not partners'), :data:`AUTHENTICATED` (any valid principal) or
:data:`PUBLIC` (no credentials). A route missing from the table is refused to
everyone (deny by default), and the authorization matrix test fails for it: adding an endpoint
means adding its line here, e.g. ``("GET", "/api/v1/federation/tracks"): "tracks:read",``.

:class:`AccessMiddleware` runs before routing, on every HTTP request:

1. bodies over ``api.max_body_bytes`` are refused (413), by ``Content-Length`` and while streaming;
2. credentials (``Authorization: Bearer <JWT>``, ``X-API-Key: sw_...`` or the console's
   ``sw_session`` cookie) become a :class:`~stratowatch.sharing.principal.Principal`, put on
   ``request.state.principal``; missing or invalid ones answer 401 (``WWW-Authenticate: Bearer``),
   a principal without the rule's scope 403;
3. each client has a token bucket (its principal, or its address before authentication) and
   each address one for failed authentications (brute force); an empty bucket answers 429 with
   ``Retry-After``;
4. denials (401/403/429) are audited at once; every successful response to a principal on a
   scoped route (a *release*: actor, partner, method, path, query, status) is audited through
   :class:`AuditQueue`, flushed by a background thread within a second.

Error bodies say what is missing (credentials, a scope), never anything about the data.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.cookies import SimpleCookie
from typing import Any

from fastapi import FastAPI, HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratowatch.api.errors import error_response
from stratowatch.sharing.auth import AuthError, Authority
from stratowatch.sharing.principal import Principal

log = logging.getLogger(__name__)

#: Needs no credentials.
PUBLIC = "public"
#: Needs a valid principal, whatever its scopes.
AUTHENTICATED = "authenticated"
#: Prefix of a rule open only to the node's own principals: ``"own:tracks:read"`` is
#: ``tracks:read`` held by a principal of the partner that runs the node (partners get 403).
OWN = "own:"
#: The console's session cookie (an access token; HttpOnly, SameSite=Strict).
SESSION_COOKIE = "sw_session"

#: (method, route path template) -> the scope it needs, or PUBLIC / AUTHENTICATED.
#: HEAD is checked as GET. A route without a line here is refused to everyone.
RULES: dict[tuple[str, str], str] = {
    # liveness; the console's page (its login form without a session) and built files (no data)
    ("GET", "/health"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/static/{name}"): PUBLIC,
    # sign-in
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): AUTHENTICATED,
    ("POST", "/api/v1/auth/revoke"): AUTHENTICATED,
    # the API's description
    ("GET", "/openapi.json"): AUTHENTICATED,
    ("GET", "/docs"): AUTHENTICATED,
    ("GET", "/docs/oauth2-redirect"): AUTHENTICATED,
    ("GET", "/redoc"): AUTHENTICATED,
    # the picture
    ("GET", "/api/v1/tracks"): "tracks:read",
    ("GET", "/api/v1/tracks/{track_id}"): "tracks:read",
    ("GET", "/api/v1/tracks/{track_id}/history"): "tracks:read",
    ("GET", "/api/v1/history"): "tracks:read",
    ("GET", "/api/v1/predictions/{track_id}"): "tracks:read",
    ("GET", "/api/v1/predictions/{track_id}/paths"): "tracks:read",
    ("GET", "/api/v1/predictions/{track_id}/cones"): "tracks:read",
    ("GET", "/api/v1/predictions/{track_id}/arrivals"): "tracks:read",
    ("GET", "/api/v1/arrivals"): "tracks:read",
    # federation: the fused common picture (own users only, see routers/federation.py), links
    ("GET", "/api/v1/federation/tracks"): "own:tracks:read",
    ("GET", "/api/v1/federation/peers"): "own:tracks:read",
    ("GET", "/api/v1/sensors"): "tracks:read",
    ("GET", "/api/v1/sensors/{sensor_id}"): "tracks:read",
    ("GET", "/api/v1/geofences"): "tracks:read",
    ("GET", "/api/v1/geofences/{geofence_id}"): "tracks:read",
    ("GET", "/api/v1/stream"): "tracks:read",
    ("GET", "/api/v1/exports/tracks.{fmt}"): "tracks:read",
    ("GET", "/api/v1/exports/predictions/{track_id}.{fmt}"): "tracks:read",
    ("GET", "/api/v1/console/whoami"): AUTHENTICATED,
    ("GET", "/api/v1/console/backtrack/{track_id}"): "tracks:read",
    ("GET", "/api/v1/observations"): "observations:read",
    # alerts and incidents
    ("GET", "/api/v1/alerts"): "alerts:read",
    ("GET", "/api/v1/alerts/{alert_id}"): "alerts:read",
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): "alerts:ack",
    ("GET", "/api/v1/incidents"): "alerts:read",
    ("GET", "/api/v1/incidents/{incident_id}"): "alerts:read",
    ("GET", "/api/v1/incidents/{incident_id}/alerts"): "alerts:read",
    ("POST", "/api/v1/incidents/{incident_id}/resolve"): "alerts:ack",
    ("GET", "/api/v1/exports/incidents/{incident_id}.{fmt}"): "alerts:read",
    # administration
    ("POST", "/api/v1/geofences"): "admin",
    ("PUT", "/api/v1/geofences/{geofence_id}"): "admin",
    ("DELETE", "/api/v1/geofences/{geofence_id}"): "admin",
    ("GET", "/api/v1/audit"): "own:admin",
    ("GET", "/api/v1/audit/verify"): "own:admin",
    ("GET", "/metrics"): "admin",
    ("GET", "/api/v1/admin/principals"): "admin",
    ("POST", "/api/v1/admin/principals"): "admin",
    ("DELETE", "/api/v1/admin/principals/{principal_id}"): "admin",
}

#: Failed authentications an address may make: a burst, then one per this many seconds.
FAILURE_BURST = 20
FAILURE_RATE_PER_S = 0.5


def rule_for(method: str, path: str) -> str | None:
    """The rule of a route (None: no rule, refused)."""
    return RULES.get(("GET" if method == "HEAD" else method, path))


class RateLimiter:
    """Token buckets by key: ``rate_per_s`` refill, ``burst`` capacity. Not thread-safe (the
    event loop is its one user)."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate_per_s)

    def take(self, key: str) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        now = self.clock()
        tokens = self._level(key, now)
        if tokens >= 1.0:
            if len(self._buckets) > 100_000:
                self._buckets = {k: v for k, v in self._buckets.items() if self._level(k, now) < self.burst}
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate_per_s

    def empty(self, key: str) -> float:
        """Seconds until ``key`` has a token (0.0: it has one now); takes nothing."""
        tokens = self._level(key, self.clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s


class AuditQueue:
    """Audit records written in batches by a background thread, at most ``flush_s`` late.

    Uses the store's ``audit_many(records)`` when it has one (one transaction per batch), else
    ``audit`` per record."""

    def __init__(self, store: Any, flush_s: float = 0.5, max_pending: int = 100_000) -> None:
        self.store = store
        self.flush_s = float(flush_s)
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: list[tuple[str, str, Mapping[str, Any], float]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def put(self, actor: str, action: str, details: Mapping[str, Any], time_s: float | None = None) -> None:
        with self._cond:
            if self._closed:
                return
            if len(self._pending) >= self.max_pending:
                self.dropped += 1
                return
            self._pending.append((actor, action, dict(details), time.time() if time_s is None else time_s))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-queue", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait(self.flush_s)
                closed = self._closed
            self.flush()
            if closed:
                return

    def flush(self) -> None:
        with self._cond:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            many = getattr(self.store, "audit_many", None)
            if many is not None:
                many(batch)
            else:
                for actor, action, details, t in batch:
                    self.store.audit(actor, action, details, t)
        except Exception:
            log.exception("could not write %d audit records", len(batch))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout=10.0)
        self.flush()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw)
    except Exception:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class _TooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class AccessMiddleware:
    """Applies :data:`RULES`, the rate limits and the body size limit; audits (see the module)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        fastapi_app: FastAPI,
        authority: Authority,
        store: Any,
        audit_queue: AuditQueue,
        max_body_bytes: int,
        limiter: RateLimiter,
        failures: RateLimiter,
        rules: Mapping[tuple[str, str], str] = RULES,
    ) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.authority = authority
        self.store = store
        self.audit_queue = audit_queue
        self.max_body_bytes = int(max_body_bytes)
        self.limiter = limiter
        self.failures = failures
        self.rules = rules
        self._limited_audited: dict[str, float] = {}
        self._table: list[tuple[re.Pattern[str], str, str]] = []

    # -- the request ---------------------------------------------------------------------------
    def _build_table(self) -> None:
        table = []
        for method, path in route_methods(self.fastapi_app):
            table.append((compile_path(path)[0], method, path))
        self._table = table

    def _match(self, method: str, path: str) -> tuple[str | None, bool]:
        """(the route template, whether the method matches too); (None, False): no such path."""
        method = "GET" if method == "HEAD" else method
        partial = None
        for regex, m, template in self._table:
            if regex.match(path):
                if m == method:
                    return template, True
                partial = partial or template
        return partial, False

    def _route(self, method: str, path: str) -> tuple[str | None, bool]:
        template, full = self._match(method, path)
        if template is None:  # routes added since the table was built? look again once
            self._build_table()
            template, full = self._match(method, path)
        return template, full

    def _authenticate(self, scope: Scope) -> tuple[Principal | None, str, str | None, dict[str, Any] | None]:
        """(principal, how, refusal reason, token claims); how: bearer | key | cookie | ""."""
        authorization = _header(scope, b"authorization")
        try:
            if authorization:
                kind, _, token = authorization.partition(" ")
                if kind.lower() != "bearer" or not token.strip():
                    return None, "bearer", "unsupported_authorization", None
                principal, claims = self.authority.verify(token.strip())
                return principal, "bearer", None, claims
            key = _header(scope, b"x-api-key")
            if key:
                return self.authority.check_key(key.strip()), "key", None, None
            session = _cookie(scope, SESSION_COOKIE)
            if session:
                principal, claims = self.authority.verify(session)
                return principal, "cookie", None, claims
        except AuthError as exc:
            return None, "", exc.reason, None
        except Exception:
            log.exception("authentication failed unexpectedly")
            return None, "", "authentication_error", None
        return None, "", None, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path = scope["path"]
        address = client_address(scope)

        length = _header(scope, b"content-length")
        if length is not None:
            try:
                too_large = int(length) > self.max_body_bytes
            except ValueError:
                too_large = False
            if too_large:
                response = error_response(
                    413, "too_large", f"request body over {self.max_body_bytes} bytes", None
                )
                await response(scope, receive, send)
                return

        matched, full = self._route(method, path)
        template = matched if full else None
        rule = self.rules.get(("GET" if method == "HEAD" else method, template)) if template else None

        has_credentials = bool(
            _header(scope, b"authorization") or _header(scope, b"x-api-key") or _cookie(scope, SESSION_COOKIE)
        )
        principal: Principal | None = None
        how = ""
        reason: str | None = None
        claims: dict[str, Any] | None = None
        if has_credentials:
            wait = self.failures.empty(f"ip:{address}")
            if wait > 0:
                await self._deny(scope, receive, send, 429, "too_many_failures", None, wait)
                return
            principal, how, reason, claims = await run_in_threadpool(self._authenticate, scope)
            if reason is not None:
                self.failures.take(f"ip:{address}")
        key = f"principal:{principal.subject}" if principal is not None else f"ip:{address}"
        wait = self.limiter.take(key)
        if wait > 0:
            await self._deny(scope, receive, send, 429, "rate_limited", principal, wait)
            return

        if rule == PUBLIC:
            pass  # credentials optional (a stale session cookie must still reach the login page)
        elif reason is not None:
            await self._deny(scope, receive, send, 401, reason, None)
            return
        elif principal is None:
            await self._deny(scope, receive, send, 401, "no_credentials", None)
            return
        elif rule is None and full:
            await self._deny(scope, receive, send, 403, "no_access_rule", principal)
            return
        elif rule is not None and rule.startswith(OWN) and not principal.is_own:
            await self._deny(scope, receive, send, 403, "own_principals_only", principal)
            return
        elif rule is not None and rule != AUTHENTICATED and not principal.has(rule.removeprefix(OWN)):
            needed = rule.removeprefix(OWN)
            await self._deny(scope, receive, send, 403, "insufficient_scope", principal, scope_needed=needed)
            return
        elif how == "cookie" and method not in ("GET", "HEAD") and not _same_origin(scope):
            await self._deny(scope, receive, send, 403, "cross_origin", principal)
            return

        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["auth_claims"] = claims
        release = principal is not None and rule not in (None, PUBLIC, AUTHENTICATED)
        await self.app(
            scope, self._limited(receive), self._released(scope, send, principal) if release else send
        )

    def _limited(self, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        return limited

    def _released(self, scope: Scope, send: Send, principal: Principal | None) -> Send:
        assert principal is not None

        async def audited(message: Message) -> None:
            if message["type"] == "http.response.start" and int(message["status"]) < 400:
                self.audit_queue.put(
                    principal.subject,
                    "release",
                    {
                        "partner": principal.partner,
                        "method": scope["method"],
                        "path": scope["path"],
                        "query": bytes(scope.get("query_string", b"")).decode("latin-1"),
                        "status": int(message["status"]),
                    },
                )
            await send(message)

        return audited

    # -- refusals --------------------------------------------------------------------------------
    async def _deny(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        reason: str,
        principal: Principal | None,
        retry_after_s: float | None = None,
        scope_needed: str | None = None,
    ) -> None:
        scope.setdefault("route", _Named(scope["path"]))  # for the request metrics
        headers: dict[str, str] = {}
        if status == 401:
            message = "authentication required" if reason == "no_credentials" else "invalid credentials"
            code = "unauthorized"
            headers["WWW-Authenticate"] = (
                "Bearer" if reason == "no_credentials" else 'Bearer error="invalid_token"'
            )
        elif status == 403:
            code = "forbidden"
            if scope_needed is not None:
                message = f"this needs the scope {scope_needed}"
                headers["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{scope_needed}"'
            elif reason == "cross_origin":
                message = "cross-origin request refused"
            elif reason == "own_principals_only":
                message = "only this node's own principals may call this"
            else:
                message = "no access rule allows this request"
        else:
            code = "too_many_requests"
            message = "too many requests; retry later"
            headers["Retry-After"] = str(max(1, math.ceil(retry_after_s or 1.0)))
        details = {"scope": scope_needed} if scope_needed else None
        response = error_response(status, code, message, details)
        response.headers.update(headers)
        await self._audit_denial(scope, status, reason, principal)
        await response(scope, receive, send)

    async def _audit_denial(
        self, scope: Scope, status: int, reason: str, principal: Principal | None
    ) -> None:
        actor = principal.subject if principal is not None else "anonymous"
        address = client_address(scope)
        if status == 429:  # at most one record per client and second: a flood must not flood the log
            key = f"{actor}@{address}"
            now = time.monotonic()
            if now - self._limited_audited.get(key, -math.inf) < 1.0:
                return
            if len(self._limited_audited) > 10_000:
                self._limited_audited.clear()
            self._limited_audited[key] = now
        details = {
            "status": status,
            "reason": reason,
            "method": scope["method"],
            "path": scope["path"],
            "client": address,
            "partner": principal.partner if principal is not None else None,
        }
        try:
            await run_in_threadpool(self.store.audit, actor, "access_denied", details)
        except Exception:
            log.exception("could not audit a denial")


class _Named:
    def __init__(self, path: str) -> None:
        self.path = path


def _same_origin(scope: Scope) -> bool:
    """A cookie-authenticated change must come from the console's own origin (when the browser
    says where it comes from; SameSite=Strict already keeps the cookie off cross-site requests)."""
    origin = _header(scope, b"origin")
    if not origin:
        return True
    host = _header(scope, b"host") or ""
    return origin.split("://", 1)[-1].rstrip("/") == host


def install(
    app: FastAPI, pipeline: Any, settings: Any = None, authority: Authority | None = None
) -> Authority:
    """Put the access layer on ``app`` (call after the routers are included and before the
    metrics middleware, so that refusals are timed too). Sets ``app.state.authority`` and
    ``app.state.audit_queue`` (closed by :func:`close`)."""
    from stratowatch.config import ApiSettings, AuthSettings

    settings = settings if settings is not None else getattr(pipeline, "settings", None)
    api = getattr(settings, "api", None) or ApiSettings()
    auth = getattr(settings, "auth", None) or AuthSettings()
    store = pipeline.store
    if authority is None:
        authority = Authority.from_settings(store, settings)
    queue = AuditQueue(store)
    app.state.authority = authority
    app.state.audit_queue = queue
    app.state.rate_limiter = RateLimiter(auth.rate_per_s, auth.burst)
    app.state.auth_failures = RateLimiter(FAILURE_RATE_PER_S, FAILURE_BURST)
    app.add_middleware(
        AccessMiddleware,
        fastapi_app=app,
        authority=authority,
        store=store,
        audit_queue=queue,
        max_body_bytes=api.max_body_bytes,
        limiter=app.state.rate_limiter,
        failures=app.state.auth_failures,
    )
    return authority


def close(app: FastAPI) -> None:
    queue = getattr(app.state, "audit_queue", None)
    if queue is not None:
        queue.close()


def routes_without_rules(app: FastAPI, rules: Mapping[tuple[str, str], str] = RULES) -> list[str]:
    """``"METHOD /path"`` of every route of ``app`` that has no rule (each one is refused)."""
    return [f"{method} {path}" for method, path in route_methods(app) if (method, path) not in rules]


def route_methods(app: FastAPI) -> Sequence[tuple[str, str]]:
    """Every (method, full path template) ``app`` answers (HEAD left out: it is checked as GET)."""
    try:
        from fastapi.routing import iter_route_contexts

        routes: Any = iter_route_contexts(app.routes)
    except ImportError:  # FastAPI before included routers kept their own contexts
        routes = app.routes
    out = []
    for route in routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                out.append((method, str(route.path)))
    return out
