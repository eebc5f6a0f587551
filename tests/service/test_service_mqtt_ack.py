"""MQTT QoS 1 messages are acknowledged only once the pipeline has committed them: a service that
stops before committing gets them again from the broker."""

from __future__ import annotations

import time

import pytest

from stratowatch.ingest.base import ReadContext
from stratowatch.ingest.sbs import SbsReader
from stratowatch.ingest.sources import MqttSource
from stratowatch.service.app import FeedBuffer

pytest.importorskip("paho.mqtt")


def sbs_line(i: int) -> bytes:
    return (
        f"MSG,3,1,1,4CA2D6,1,2026/11/26,12:00:{i:02d}.000,2026/11/26,12:00:{i:02d}.000,,35000,,,"
        f"{50.0 + i / 100:.5f},4.50000,,,0,0,0,0\n"
    ).encode()


def wait_for(cond, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def _publish(port: int, lines: list[bytes]) -> None:
    import paho.mqtt.client as mqtt

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    for line in lines:
        pub.publish("adsb/sbs", line, qos=1).wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()


def _source(port: int, buffer: FeedBuffer) -> MqttSource:
    return MqttSource(
        "127.0.0.1", port, "adsb/sbs", SbsReader(), ReadContext("mqtt"), buffer, client_id="sw-test", qos=1
    )


def test_uncommitted_messages_come_back_committed_ones_do_not(mosquitto: int) -> None:
    # First life: receive 3 messages, commit nothing, stop (as a crash would).
    first = FeedBuffer()
    src = _source(mosquitto, first)
    with src:
        assert src.subscribed.wait(5)
        _publish(mosquitto, [sbs_line(i) for i in range(3)])
        assert wait_for(lambda: first.put_seq == 3, 5)
        obs, _, _ = first.take_through(100)
        assert len(obs) == 3 and src.acked == 0
    # Second life, same client id: the broker delivers the 3 again; this time they are committed.
    second = FeedBuffer()
    src = _source(mosquitto, second)
    with src:
        assert wait_for(lambda: second.put_seq == 3, 10), second.put_seq
        _, _, through = second.take_through(100)
        second.committed(through)
        assert wait_for(lambda: src.acked == 3, 5)
        time.sleep(0.3)
    # Third life: nothing is redelivered.
    third = FeedBuffer()
    src = _source(mosquitto, third)
    with src:
        assert src.subscribed.wait(5)
        time.sleep(1.0)
        assert third.put_seq == 0
