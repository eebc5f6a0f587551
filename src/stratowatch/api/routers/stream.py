"""The live stream: Server-Sent Events of track, alert, incident (and geofence) updates.

``GET /api/v1/stream?topics=tracks,alerts,incidents`` answers ``text/event-stream``. Each bus
event becomes one SSE message ``id: <n>`` / ``event: <topic>`` / ``data: <json>``; the bodies
are the bus's (see :mod:`stratowatch.service.bus`). The stream opens with a ``: connected``
comment (the client knows it is subscribed), sends a ``: heartbeat`` comment when nothing
happened for the heartbeat period (15 s), an ``event: dropped`` message with the count when the
client was too slow and the bus dropped its oldest events (the pipeline never waits), and ends
when the bus closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from stratowatch.api.convert import json_safe
from stratowatch.api.deps import audience_of, get_pipeline, parse_topics, redactions_for
from stratowatch.service.bus import BusClosed

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["stream"])

TOPICS = ("tracks", "alerts", "incidents", "predictions", "geofences")
#: Events a client may fall behind before the oldest are dropped.
QUEUE_EVENTS = 1000


#: Stream topics a partner's redaction withholds.
_REDACTED_TOPICS = {
    "alerts": "alerts",
    "incidents": "incidents",
    "predictions": "predictions",
    "geofences": "geofences",
}


def event_filter(audience: str, redact: frozenset[str]) -> Any:
    """What a caller of ``audience`` may receive: the events of its own picture (tracks, alerts,
    incidents, predictions carry their ``audience``), geofences released to it, nothing its
    partner's redactions withhold."""
    from stratowatch.sharing.labels import visible

    def accept(topic: str, event: dict[str, Any]) -> bool:
        if _REDACTED_TOPICS.get(topic) in redact:
            return False
        if topic == "geofences":
            body = event.get("geofence") or {}
            label = body.get("releasable_to", ["PUBLIC"]) if isinstance(body, dict) else []
            return not audience or visible(frozenset(label or ()), audience)
        return str(event.get("audience", "")) == audience

    return accept


def sse_message(topic: str, event: Any, seq: int) -> str:
    try:
        data = json.dumps(event, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        data = json.dumps(json_safe(event), separators=(",", ":"))
    return f"id: {seq}\nevent: {topic}\ndata: {data}\n\n"


@router.get(
    "/stream",
    summary="Live updates (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An endless SSE stream."}},
)
async def stream(
    request: Request,
    pipeline: Annotated[Any, Depends(get_pipeline)],
    topics: Annotated[str, Query(description=f"Comma-separated topics: {', '.join(TOPICS)}.")] = ",".join(
        TOPICS[:3]
    ),
) -> StreamingResponse:
    chosen = parse_topics(topics, TOPICS)
    state = request.app.state
    heartbeat_s: float = state.heartbeat_s
    audience = audience_of(request)
    subscription = pipeline.bus.subscribe(chosen, maxsize=QUEUE_EVENTS)
    subscription.accept = event_filter(
        audience, redactions_for(getattr(pipeline, "settings", None), audience)
    )

    async def events() -> AsyncIterator[str]:
        state.stream_clients += 1
        seq = 0
        dropped_seen = 0
        try:
            yield ": connected\n\n"
            while True:
                try:
                    topic, event = await asyncio.wait_for(subscription.get(), heartbeat_s)
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                except BusClosed:
                    return
                dropped = int(subscription.dropped)
                if dropped > dropped_seen:
                    state.stream_dropped += dropped - dropped_seen
                    seq += 1
                    yield sse_message("dropped", {"dropped": dropped - dropped_seen}, seq)
                    dropped_seen = dropped
                seq += 1
                yield sse_message(topic, event, seq)
        finally:
            state.stream_clients -= 1
            subscription.close()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
