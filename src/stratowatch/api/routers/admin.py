"""Principals (users, service accounts, API keys): list, create (the secret is shown once),
disable. Every change is audited."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from stratowatch.api.errors import ApiError, not_found
from stratowatch.api.models import ErrorBody
from stratowatch.api.routers.auth import audit
from stratowatch.sharing.auth import Authority
from stratowatch.sharing.principal import SCOPES

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

Scope = Literal[
    "tracks:read", "observations:read", "observations:write", "alerts:read", "alerts:ack", "admin"
]
assert set(Scope.__args__) == set(SCOPES)  # type: ignore[attr-defined]


class PrincipalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
    partner: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")
    kind: Literal["user", "service", "key"] = "user"
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))
    name: str = Field(default="", max_length=200)


class PrincipalOut(BaseModel):
    principal_id: str
    partner: str
    kind: str
    scopes: list[str]
    created_s: float
    disabled: bool
    name: str = ""


class PrincipalCreated(BaseModel):
    principal: PrincipalOut
    secret: str = Field(description="The credential (sw_<id>.<secret>); shown this once only.")


class PrincipalPage(BaseModel):
    items: list[PrincipalOut]
    total: int


def principal_json(rec: dict[str, Any]) -> dict[str, Any]:
    """A principal as the API shows it: never its secret hash."""
    return {
        "principal_id": rec["principal_id"],
        "partner": rec["partner"],
        "kind": rec["kind"],
        "scopes": list(rec["scopes"]),
        "created_s": rec["created_s"],
        "disabled": rec["disabled"],
        "name": str(rec.get("details", {}).get("name", "")),
    }


def _authority(request: Request) -> Authority:
    authority: Authority = request.app.state.authority
    return authority


@router.get("/principals", response_model=PrincipalPage, summary="Principals")
async def list_principals(request: Request) -> JSONResponse:
    recs = await run_in_threadpool(_authority(request).store.principals)
    return JSONResponse({"items": [principal_json(r) for r in recs], "total": len(recs)})


@router.post(
    "/principals",
    response_model=PrincipalCreated,
    status_code=201,
    responses={409: {"model": ErrorBody, "description": "The id is taken."}},
    summary="Create a principal (its secret is shown once)",
)
async def create_principal(request: Request, body: PrincipalIn) -> JSONResponse:
    authority = _authority(request)
    try:
        secret = await run_in_threadpool(
            authority.create_principal,
            body.principal_id,
            body.partner,
            body.kind,
            list(body.scopes),
            details={"name": body.name} if body.name else None,
        )
    except ValueError as exc:
        if "exists" in str(exc):
            raise ApiError(409, "conflict", str(exc), {"principal_id": body.principal_id}) from None
        raise ApiError(400, "invalid_parameter", str(exc), None) from None
    rec = await run_in_threadpool(authority.store.principal, body.principal_id)
    out = principal_json(rec)
    await audit(request, request.state.principal.subject, "principal_create", out)
    return JSONResponse(
        {"principal": out, "secret": secret},
        status_code=201,
        headers={"Cache-Control": "no-store", "Location": f"/api/v1/admin/principals/{body.principal_id}"},
    )


@router.delete(
    "/principals/{principal_id}",
    status_code=204,
    responses={
        404: {"model": ErrorBody, "description": "No such principal."},
        409: {"model": ErrorBody, "description": "A principal cannot disable itself."},
    },
    summary="Disable a principal (its keys and tokens are refused from now on)",
)
async def disable_principal(request: Request, principal_id: Annotated[str, Path(max_length=64)]) -> Response:
    me = request.state.principal
    if principal_id == me.subject:
        raise ApiError(409, "conflict", "a principal cannot disable itself", {"principal_id": principal_id})
    if not await run_in_threadpool(_authority(request).disable, principal_id):
        raise not_found("principal", principal_id)
    await audit(request, me.subject, "principal_disable", {"principal_id": principal_id})
    return Response(status_code=204)
