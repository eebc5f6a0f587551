"""The in-process event bus: the pipeline publishes, the API's streams (and tests) subscribe.

Topics and bodies (JSON forms from :mod:`stratowatch.service.serialize`):

* ``"tracks"``: ``{"time_s": ..., "tracks": [track_json, ...]}`` after every pipeline step;
* ``"alerts"``: one ``alert_json`` per new or changed alert;
* ``"incidents"``: one ``incident_json`` per change;
* ``"predictions"``: ``{"track_id", "time_s", "payload"}`` when a prediction lands.

:meth:`InProcessBus.publish` may be called from any thread and never blocks: each subscription
holds a bounded queue, and a subscriber that falls behind loses its *oldest* events; its
``dropped`` counter says how many (an SSE stream tells its client). A subscription is consumed
with ``await sub.get()`` or ``async for topic, event in sub`` on an event loop, or with
``sub.get_nowait()`` / ``sub.drain()`` from synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

Event = tuple[str, dict[str, Any]]

#: Topic a subscriber names to receive every topic.
ALL_TOPICS = "*"


class BusClosed(Exception):
    """Raised by :meth:`Subscription.get` once the subscription (or its bus) is closed."""


class Subscription:
    """One subscriber's bounded queue of (topic, event)."""

    def __init__(self, bus: InProcessBus, topics: frozenset[str], maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.topics = topics
        self.maxsize = maxsize
        self.dropped = 0
        self._reported = 0
        self.closed = False
        self._bus = bus
        self._queue: deque[Event] = deque()
        self._lock = threading.Lock()
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        #: Events this returns False for never enter the queue (a partner's stream: what is not
        #: released to it is neither queued nor counted as dropped).
        self.accept: Callable[[str, dict[str, Any]], bool] | None = None

    def wants(self, topic: str) -> bool:
        return ALL_TOPICS in self.topics or topic in self.topics

    def _put(self, topic: str, event: dict[str, Any]) -> None:
        if self.accept is not None and not self.accept(topic, event):
            return
        with self._lock:
            if self.closed:
                return
            if len(self._queue) >= self.maxsize:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((topic, event))
            waiter = self._waiter
        if waiter is not None:
            loop, ready = waiter
            with contextlib.suppress(RuntimeError):  # the consumer's loop is gone
                loop.call_soon_threadsafe(ready.set)

    def get_nowait(self) -> Event | None:
        """The oldest queued event, or None when the queue is empty."""
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def drain(self) -> list[Event]:
        """Every queued event, oldest first, emptying the queue."""
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
            return out

    def take_dropped(self) -> int:
        """Events dropped since the last call (the total stays in ``dropped``)."""
        with self._lock:
            n = self.dropped - self._reported
            self._reported = self.dropped
            return n

    async def get(self) -> Event:
        """Wait for the next event. Raises :class:`BusClosed` once closed and empty."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._queue:
                    return self._queue.popleft()
                if self.closed:
                    raise BusClosed
                if self._waiter is None or self._waiter[0] is not loop:
                    self._waiter = (loop, asyncio.Event())
                ready = self._waiter[1]
                ready.clear()
            await ready.wait()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            try:
                yield await self.get()
            except BusClosed:
                return

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            waiter = self._waiter
        self._bus._remove(self)
        if waiter is not None:
            with contextlib.suppress(RuntimeError):
                waiter[0].call_soon_threadsafe(waiter[1].set)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessBus:
    """Publish/subscribe within one process. Thread-safe; publishing never blocks."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self.published = 0

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        with self._lock:
            subs = [s for s in self._subs if s.wants(topic)]
            self.published += 1
        for s in subs:
            s._put(topic, event)

    def subscribe(self, topics: Iterable[str], maxsize: int = 1000) -> Subscription:
        names = frozenset(topics)
        if not names:
            raise ValueError("subscribe to at least one topic (or '*')")
        sub = Subscription(self, names, maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def has_subscribers(self, topic: str) -> bool:
        """Whether anyone listens to ``topic`` (publishers may skip building the event)."""
        with self._lock:
            return any(s.wants(topic) for s in self._subs)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def close(self) -> None:
        """Close every subscription (their consumers see the end of the stream)."""
        with self._lock:
            subs = list(self._subs)
        for s in subs:
            s.close()


def open_bus(url: str = "memory://") -> Any:
    """The bus for a ``bus_url``: ``memory://`` (in-process, the default) or ``nats://host:port``
    (:class:`stratowatch.service.bus_nats.NatsBus`, NATS JetStream; connects at once)."""
    scheme = url.split("://", 1)[0]
    if scheme in ("memory", "inprocess", ""):
        return InProcessBus()
    if scheme in ("nats", "tls"):
        from stratowatch.service.bus_nats import open_nats_bus

        return open_nats_bus(url)
    raise ValueError(f"bus_url {url!r}: use memory:// (in-process) or nats://host:port")
