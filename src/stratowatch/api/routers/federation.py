"""Federation: the common picture fused from this node's tracks and its partners' nodes' tracks,
and the state of the links to those nodes (see :mod:`stratowatch.sharing.federation`).

The fused picture holds contributions of the node's own full picture, so only the node's own
users read it; a partner's caller reads ``/api/v1/tracks`` (the picture released to it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from stratowatch.api.convert import json_safe
from stratowatch.api.deps import Paging, page, paging
from stratowatch.api.errors import ApiError

router = APIRouter(prefix="/api/v1/federation", tags=["federation"])


def _federation(request: Request) -> Any:
    principal = getattr(request.state, "principal", None)
    if principal is not None and getattr(principal, "audience", "") != "":
        raise ApiError(
            403,
            "forbidden",
            "the federated picture is for this node's own users; partners read /api/v1/tracks",
        )
    federation = getattr(request.app.state, "federation", None)
    if federation is None:
        raise ApiError(
            404, "not_configured", "federation is not configured on this node (no [[federation.peers]])"
        )
    return federation


@router.get("/tracks", summary="The fused common picture")
async def federated_tracks(
    request: Request,
    paging: Annotated[Paging, Depends(paging)],
    node: Annotated[
        str | None, Query(description="Only fused tracks with a contribution of this node.")
    ] = None,
) -> JSONResponse:
    """Every fused track: its global id (the same on every node that fuses the same pair), the
    fused state (position, ENU velocity, one-sigma position and velocity uncertainties) at the
    fusion epoch, and its contributors (origin node, track id there, the name partners know it
    by, the time of the contributed state)."""
    federation = _federation(request)
    picture = federation.picture
    items = picture.items
    if node is not None:
        items = [t for t in items if node.upper() in t["nodes"]]
    body = page(items[paging.offset : paging.offset + paging.limit], len(items), paging)
    body["epoch_s"] = picture.epoch_s
    body["fused_s"] = picture.fused_s
    body["node"] = federation.node
    return JSONResponse(json_safe(body))


@router.get("/peers", summary="The links to partner nodes")
async def federation_peers(request: Request) -> JSONResponse:
    """Per configured peer: its partner code and URL, ``up``/``down``/``starting``, the
    consecutive failures and the last error (naming the URL), tracks last received."""
    federation = _federation(request)
    return JSONResponse(json_safe({"node": federation.node, "items": federation.peers()}))
