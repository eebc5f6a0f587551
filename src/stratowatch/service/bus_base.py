"""The ``Bus`` protocol: what the pipeline publishes to and the API's streams subscribe to.

Two implementations: :class:`stratowatch.service.bus.InProcessBus` (the default, one process)
and :class:`stratowatch.service.bus_nats.NatsBus` (NATS JetStream, durable, many processes).
Both publish ``(topic, event)`` with a JSON-able ``event`` dict and hand out bounded
:class:`~stratowatch.service.bus.Subscription` queues whose slow consumers lose their oldest
events (and are told how many). Durable, acknowledged delivery of observations is the NATS
bus's own surface (:meth:`NatsBus.durable`), not part of this protocol.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from stratowatch.service.bus import Subscription


@runtime_checkable
class Bus(Protocol):
    """Publish JSON events by topic; subscribe with a bounded queue."""

    def publish(self, topic: str, event: dict[str, Any]) -> None: ...

    def subscribe(self, topics: Iterable[str], maxsize: int = 1000) -> Subscription: ...

    def close(self) -> None: ...


__all__ = ["Bus"]
