"""The in-process bus: topic filtering, order, bounded queues that drop the oldest, threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from stratowatch.service.bus import ALL_TOPICS, InProcessBus, open_bus


def test_subscribers_get_their_topics_in_order() -> None:
    bus = InProcessBus()
    tracks = bus.subscribe(["tracks"])
    everything = bus.subscribe([ALL_TOPICS])
    bus.publish("tracks", {"n": 1})
    bus.publish("alerts", {"id": "a"})
    bus.publish("tracks", {"n": 2})
    assert tracks.drain() == [("tracks", {"n": 1}), ("tracks", {"n": 2})]
    assert [t for t, _ in everything.drain()] == ["tracks", "alerts", "tracks"]
    tracks.close()
    bus.publish("tracks", {"n": 3})
    assert tracks.get_nowait() is None
    assert bus.subscribers == 1


def test_slow_consumer_loses_oldest_and_is_told_how_many() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(["tracks"], maxsize=3)
    for n in range(10):
        bus.publish("tracks", {"n": n})  # never blocks, whatever the subscriber does
    assert [e["n"] for _, e in sub.drain()] == [7, 8, 9]
    assert sub.dropped == 7
    assert sub.take_dropped() == 7 and sub.take_dropped() == 0


def test_async_consumer_receives_events_published_from_threads() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(["alerts"], maxsize=10_000)

    def producer(k: int) -> None:
        for n in range(500):
            bus.publish("alerts", {"k": k, "n": n})

    async def consume() -> list[tuple[int, int]]:
        threads = [threading.Thread(target=producer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        got = []
        async for _topic, event in sub:
            got.append((event["k"], event["n"]))
            if len(got) == 2000:
                break
        for t in threads:
            t.join()
        return got

    got = asyncio.run(asyncio.wait_for(consume(), timeout=10))
    assert sorted(got) == [(k, n) for k in range(4) for n in range(500)]
    for k in range(4):  # each producer's events arrive in its order
        assert [n for kk, n in got if kk == k] == list(range(500))
    assert sub.dropped == 0


def test_close_ends_a_waiting_iterator() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(["tracks"])

    async def run() -> list[object]:
        seen: list[object] = []

        async def reader() -> None:
            async for _t, e in sub:
                seen.append(e)

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.01)
        bus.publish("tracks", {"n": 1})
        await asyncio.sleep(0.01)
        bus.close()
        await asyncio.wait_for(task, 2)
        return seen

    assert asyncio.run(run()) == [{"n": 1}]


def test_open_bus_accepts_memory_and_rejects_unknown_schemes() -> None:
    assert isinstance(open_bus("memory://"), InProcessBus)
    with pytest.raises(ValueError, match="bus_url 'amqp://localhost'"):
        open_bus("amqp://localhost")


def test_has_subscribers_follows_subscriptions() -> None:
    bus = InProcessBus()
    assert not bus.has_subscribers("tracks")
    sub = bus.subscribe(["alerts"])
    assert not bus.has_subscribers("tracks") and bus.has_subscribers("alerts")
    everything = bus.subscribe([ALL_TOPICS])
    assert bus.has_subscribers("tracks")
    everything.close()
    sub.close()
    assert not bus.has_subscribers("alerts")
