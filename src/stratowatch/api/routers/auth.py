"""Signing in: the OAuth2 token endpoint, token revocation, and the console's session cookie.

* ``POST /api/v1/auth/token`` (form): ``grant_type=client_credentials`` with ``client_id`` and
  ``client_secret`` (service accounts; HTTP Basic works too) or ``grant_type=password`` with
  ``username`` and ``password`` (users); an optional ``scope`` narrows the grant, and asking for
  more than is granted is refused (``invalid_scope``). Answers
  ``{"access_token", "token_type": "bearer", "expires_in", "scope"}``.
* ``POST /api/v1/auth/revoke``: revoke the caller's own token (or the form's ``token``, when it is
  the caller's), so that it is refused from then on.
* ``POST /api/v1/auth/login`` (form ``key``: a ``sw_`` credential) and ``GET /?login=<one-time
  token>`` (see the console router) set the ``sw_session`` cookie; ``POST /api/v1/auth/logout``
  revokes it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from stratowatch.api.access import SESSION_COOKIE, client_address
from stratowatch.api.errors import ApiError, error_response
from stratowatch.api.models import ErrorBody
from stratowatch.sharing.auth import AuthError, Authority, Issued, parse_key, parse_scopes

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Unsupported grant type or scope not granted."},
    401: {"model": ErrorBody, "description": "Unknown client or wrong secret."},
    429: {"model": ErrorBody, "description": "Too many failed attempts from this address."},
}


def _authority(request: Request) -> Authority:
    authority: Authority = request.app.state.authority
    return authority


async def audit(request: Request, actor: str, action: str, details: dict[str, Any]) -> None:
    """An administrative or sign-in record, written before the answer goes out."""
    store = request.app.state.pipeline.store
    await run_in_threadpool(store.audit, actor, action, details)


async def refused(request: Request, reason: str, actor: str = "anonymous", status: int = 401) -> None:
    """A failed sign-in: counted against the address (brute force) and audited."""
    failures = getattr(request.app.state, "auth_failures", None)
    if failures is not None:
        failures.take(f"ip:{client_address(request.scope)}")
    details = {
        "status": status,
        "reason": reason,
        "method": request.method,
        "path": request.url.path,
        "client": client_address(request.scope),
        "partner": None,
    }
    with contextlib.suppress(Exception):  # the refusal stands even when the store cannot record it
        await audit(request, actor, "access_denied", details)


def throttled(request: Request) -> float:
    """Seconds this address must wait before another sign-in attempt (0: none)."""
    failures = getattr(request.app.state, "auth_failures", None)
    return float(failures.empty(f"ip:{client_address(request.scope)}")) if failures is not None else 0.0


def _too_many(wait_s: float) -> JSONResponse:
    r = error_response(429, "too_many_requests", "too many failed attempts; retry later", None)
    r.headers["Retry-After"] = str(max(1, int(wait_s + 0.999)))
    return r


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    kind, _, value = header.partition(" ")
    if kind.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


@router.post("/token", summary="OAuth2 token endpoint (client credentials, password)", responses=_ERRORS)
async def token(
    request: Request,
    grant_type: Annotated[str, Form(max_length=64)],
    client_id: Annotated[str | None, Form(max_length=128)] = None,
    client_secret: Annotated[str | None, Form(max_length=512)] = None,
    username: Annotated[str | None, Form(max_length=128)] = None,
    password: Annotated[str | None, Form(max_length=512)] = None,
    scope: Annotated[str | None, Form(max_length=512)] = None,
) -> JSONResponse:
    """A bearer token (JWT) for a service account (``client_credentials``) or a user
    (``password``), with the granted scopes or the narrower ``scope`` asked for."""
    if grant_type == "client_credentials":
        basic = _basic(request)
        if basic is not None and client_id is None:
            client_id, client_secret = basic
        who, secret, kinds = client_id, client_secret, ("service",)
    elif grant_type == "password":
        who, secret, kinds = username, password, ("user",)
    else:
        raise ApiError(400, "unsupported_grant_type", "grant_type: client_credentials or password", None)
    if not who or not secret:
        raise ApiError(400, "invalid_request", "the grant needs an id and a secret", None)
    try:
        wanted = parse_scopes(scope) if scope else None
    except ValueError as exc:
        raise ApiError(400, "invalid_scope", str(exc), None) from None
    wait = throttled(request)
    if wait > 0:
        return _too_many(wait)
    authority = _authority(request)
    try:
        await run_in_threadpool(authority.check_secret, who, secret, kinds)
    except AuthError as exc:
        await refused(request, exc.reason, who)
        raise ApiError(401, "invalid_client", "unknown client or wrong secret", None) from None
    try:
        issued: Issued = await run_in_threadpool(authority.issue, who, wanted)
    except AuthError as exc:
        await refused(request, exc.reason, who, exc.status)
        raise ApiError(400, "invalid_scope", "a scope asked for is not granted", None) from None
    await audit(request, who, "token_issue", {"jti": issued.claims["jti"], "scope": issued.scope})
    return JSONResponse(
        {
            "access_token": issued.token,
            "token_type": "bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.post("/revoke", status_code=204, summary="Revoke the caller's own token")
async def revoke(request: Request, token: Annotated[str | None, Form(max_length=8192)] = None) -> Response:
    """Revoke the token this request was made with (or ``token``, one of the caller's own)."""
    principal = request.state.principal
    authority = _authority(request)
    claims: dict[str, Any] | None = getattr(request.state, "auth_claims", None)
    if token:
        try:
            claims = await run_in_threadpool(authority.decode, token)
        except AuthError:
            raise ApiError(400, "invalid_token", "not a valid token of this node", None) from None
        if claims["sub"] != principal.subject and not principal.has("admin"):
            raise ApiError(403, "forbidden", "not your token", None)
    if claims is None:
        raise ApiError(400, "invalid_request", "no token to revoke (API keys are disabled instead)", None)
    await run_in_threadpool(authority.revoke, claims)
    await audit(request, principal.subject, "token_revoke", {"jti": claims["jti"], "sub": claims["sub"]})
    response = Response(status_code=204)
    if request.cookies.get(SESSION_COOKIE):
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def set_session(request: Request, response: Response, issued: Issued) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=issued.expires_in,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


@router.post("/login", summary="Console sign-in with a credential (sets a session cookie)", responses=_ERRORS)
async def login(request: Request, key: Annotated[str, Form(max_length=1024)]) -> Response:
    """Check a ``sw_<id>.<secret>`` credential and open a console session (303 to ``/``)."""
    wait = throttled(request)
    if wait > 0:
        return _too_many(wait)
    parsed = parse_key(key.strip())
    authority = _authority(request)
    try:
        if parsed is None:
            raise AuthError("malformed_key")
        await run_in_threadpool(authority.check_secret, parsed[0], parsed[1])
        issued: Issued = await run_in_threadpool(authority.issue, parsed[0])
    except AuthError as exc:
        await refused(request, exc.reason, parsed[0] if parsed else "anonymous")
        return RedirectResponse("/?failed=1", status_code=303)
    await audit(request, parsed[0], "login", {"jti": issued.claims["jti"], "via": "credential"})
    response = RedirectResponse("/", status_code=303)
    set_session(request, response, issued)
    return response


@router.post("/logout", status_code=204, summary="End the console session (revokes its token)")
async def logout(request: Request) -> Response:
    authority = _authority(request)
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        try:
            claims = await run_in_threadpool(authority.decode, session)
        except AuthError:
            claims = None
        if claims is not None:
            await run_in_threadpool(authority.revoke, claims)
            await audit(request, str(claims["sub"]), "token_revoke", {"jti": claims["jti"], "via": "logout"})
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ----------------------------------------------------------------------------- the console's sign-in
_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stratowatch — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 15px system-ui, sans-serif; background: #0d1620; color: #dde6ee; display: grid;
  place-items: center; height: 100vh; margin: 0; }}
form {{ background: #16222e; padding: 24px 28px; border-radius: 8px; width: 360px; }}
h1 {{ font-size: 18px; margin: 0 0 12px; }} p {{ color: #9fb0c0; font-size: 13px; }}
input {{ width: 100%; box-sizing: border-box; padding: 8px; margin: 8px 0 14px; background: #0d1620;
  color: #dde6ee; border: 1px solid #35475a; border-radius: 4px; }}
button {{ padding: 8px 16px; background: #2d6da3; color: white; border: 0; border-radius: 4px; }}
.error {{ color: #ff9d8a; }}
</style></head>
<body><form method="post" action="/api/v1/auth/login">
<h1>stratowatch console</h1>
<p>Sign in with your credential (<code>sw_&lt;id&gt;.&lt;secret&gt;</code>), or open the one-time
login link that <code>stratowatch serve</code> printed.</p>
{message}
<label for="key">Credential</label>
<input id="key" name="key" type="password" autocomplete="current-password" required maxlength="1024">
<button type="submit">Sign in</button>
</form></body></html>
"""

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
}


def login_page(message: str = "", status: int = 200) -> HTMLResponse:
    """The console's sign-in form (no data, no script)."""
    html = _LOGIN_PAGE.format(message=f'<p class="error">{message}</p>' if message else "")
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


async def console_login(request: Request, token: str) -> Response:
    """``GET /?login=<one-time token>``: open a session (cookie) and go to ``/``; a used,
    expired or forged token gets the sign-in form."""
    authority = _authority(request)
    try:
        if len(token) > 8192:
            raise AuthError("malformed_token")
        issued: Issued = await run_in_threadpool(authority.redeem_login, token)
    except AuthError as exc:
        await refused(request, exc.reason)
        return login_page("That login link is used, expired or not valid here.", status=401)
    sub = str(issued.claims["sub"])
    await audit(request, sub, "login", {"jti": issued.claims["jti"], "via": "login link"})
    response = RedirectResponse("/", status_code=303)
    set_session(request, response, issued)
    return response
