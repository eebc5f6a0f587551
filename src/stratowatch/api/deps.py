"""What every router needs: the pipeline and its store, pagination, box parsing, threadpool calls.

The store is synchronous (SQLite has one writer thread; reads use their own connections), so
routers call it through :func:`call`, which runs it in the threadpool and keeps the event loop
free for the live stream.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import Query, Request
from starlette.concurrency import run_in_threadpool

from stratowatch.api.errors import invalid_parameter

P = ParamSpec("P")
R = TypeVar("R")

#: Largest page a client may ask for.
MAX_LIMIT = 1000
#: Largest offset a client may ask for (the store counts rows in 64-bit integers).
MAX_OFFSET = 10**12
#: Lists longer than this are not counted exactly when the store has no filtered count.
COUNT_CAP = 100_000


async def get_pipeline(request: Request) -> Any:
    """The running pipeline (duck-typed: ``.store``, ``.bus``, ``.acknowledge``, ``.resolve``)."""
    return request.app.state.pipeline


def principal_of(request: Request) -> Any:
    """The authenticated caller (set by the access layer), or None on a public route."""
    return getattr(request.state, "principal", None)


def audience_of(request: Request) -> str:
    """The picture the caller reads: its principal's audience. A request without a principal
    (a public route) reads nothing: 401, never the node's own picture."""
    principal = principal_of(request)
    if principal is None:
        from stratowatch.api.errors import ApiError

        raise ApiError(401, "no_credentials", "this needs credentials", {})
    return str(principal.audience)


def redactions_for(settings: Any, audience: str) -> frozenset[str]:
    """What the partner ``audience`` is refused by the configuration's ``[[partners]] redact``."""
    if not audience:
        return frozenset()
    for partner in getattr(settings, "partners", None) or ():
        if partner.id == audience:
            return frozenset(partner.redact)
    return frozenset()


def scoped_store(request: Request) -> Any:
    """The store as the caller may read it (:class:`stratowatch.store.scoped.ScopedStore`)."""
    from stratowatch.store.scoped import ScopedStore

    pipeline = request.app.state.pipeline
    audience = audience_of(request)
    return ScopedStore(
        pipeline.store, audience, redactions_for(getattr(pipeline, "settings", None), audience)
    )


async def get_store(request: Request) -> Any:
    return scoped_store(request)


async def call(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a blocking store call in the threadpool."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def call_pipeline(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a pipeline method: awaited when it is a coroutine function, else in the threadpool
    (the pipeline serialises its own steps and operator actions with a lock, which may be held
    for a whole step: the event loop must not wait on it)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


@dataclass(frozen=True, slots=True)
class Paging:
    limit: int
    offset: int


async def paging(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (at most {MAX_LIMIT}).")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
) -> Paging:
    return Paging(limit, offset)


def page(items: Sequence[Any], total: int, paging: Paging) -> dict[str, Any]:
    return {"items": list(items), "total": int(total), "limit": paging.limit, "offset": paging.offset}


async def fetch_page(
    fetch: Callable[[int, int], Sequence[R]],
    paging: Paging,
    count: Callable[[], int] | None = None,
) -> tuple[Sequence[R], int]:
    """One page from ``fetch(limit, offset)`` and the total number of matches.

    A short page gives the total for free; otherwise ``count()`` when the caller has one, else
    the matches are counted by fetching them (up to :data:`COUNT_CAP`).
    """
    items = await call(fetch, paging.limit, paging.offset)
    if len(items) < paging.limit and (items or paging.offset == 0):
        return items, paging.offset + len(items)
    if count is not None:
        return items, int(await call(count))
    everything = await call(fetch, COUNT_CAP, 0)
    return items, len(everything)  # at most COUNT_CAP: the store offers no count for this list


def parse_bbox(text: str | None, name: str = "bbox") -> tuple[float, float, float, float] | None:
    """``"min_lat,min_lon,max_lat,max_lon"`` (degrees) -> tuple; a clear 400 when malformed."""
    if text is None or text == "":
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise invalid_parameter(name, f"expected min_lat,min_lon,max_lat,max_lon, got {text!r}")
    try:
        lat0, lon0, lat1, lon1 = (float(p) for p in parts)
    except ValueError:
        raise invalid_parameter(name, f"not four numbers: {text!r}") from None
    if not all(math.isfinite(v) for v in (lat0, lon0, lat1, lon1)):
        raise invalid_parameter(name, "values must be finite")
    if not (-90 <= lat0 <= lat1 <= 90):
        raise invalid_parameter(name, f"need -90 <= min_lat <= max_lat <= 90, got {lat0}, {lat1}")
    if not (-180 <= lon0 <= 180 and -180 <= lon1 <= 180):
        raise invalid_parameter(name, f"longitudes must be within [-180, 180], got {lon0}, {lon1}")
    return lat0, lon0, lat1, lon1


def parse_topics(text: str, allowed: Sequence[str]) -> list[str]:
    topics = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in topics if t not in allowed]
    if bad or not topics:
        raise invalid_parameter("topics", f"choose from {', '.join(allowed)}; got {text!r}")
    return list(dict.fromkeys(topics))
