"""Notifiers against real receivers: a local HTTP server and a mosquitto broker on free ports."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stratowatch.alerts.notify import (
    BackgroundNotifier,
    LogNotifier,
    MqttNotifier,
    WebhookNotifier,
    notifiers_from_config,
)
from stratowatch.model import Alert, Incident

ALERT = Alert(
    alert_id="new_unidentified:42",
    time_s=1675382400.0,
    rule="new_unidentified",
    severity="critical",
    message="Unidentified high-altitude object T42 (18.6 km, balloon 0.93)",
    track_id=42,
    details={"alt_m": 18600.0, "label": "balloon"},
    incident_id="INC-0001",
)
INCIDENT = Incident("INC-0001", 1675382400.0, "open", ALERT.message, (42,), (ALERT.alert_id,))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Receiver:
    """An HTTP server that answers ``fail_status`` to the first ``fail_first`` POSTs, then 204."""

    def __init__(self, fail_first: int, fail_status: int = 503) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.requests: list[tuple[int, dict[str, object]]] = []  # (answer, body)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = outer.fail_status if len(outer.requests) < outer.fail_first else 204
                outer.requests.append((status, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator[list[_Receiver]]:
    made: list[_Receiver] = []
    yield made
    for r in made:
        r.close()


def _receiver(made: list[_Receiver], fail_first: int, fail_status: int = 503) -> _Receiver:
    r = _Receiver(fail_first, fail_status)
    made.append(r)
    return r


def test_webhook_retries_with_backoff_then_delivers(
    receiver_factory: list[_Receiver], tmp_path: Path
) -> None:
    rx = _receiver(receiver_factory, fail_first=2)
    sleeps: list[float] = []
    hook = WebhookNotifier(
        rx.url, retries=3, backoff_s=0.01, dead_letter_path=tmp_path / "dead.jsonl", sleep=sleeps.append
    )
    assert hook.notify(ALERT, INCIDENT) is True
    assert [s for s, _ in rx.requests] == [503, 503, 204]
    assert sleeps == [0.01, 0.02]
    body = rx.requests[-1][1]
    assert body["alert_id"] == "new_unidentified:42" and body["severity"] == "critical"
    assert body["details"] == {"alt_m": 18600.0, "label": "balloon"}
    assert body["incident"]["incident_id"] == "INC-0001"  # type: ignore[index]
    assert not (tmp_path / "dead.jsonl").exists()
    assert hook.delivered == 1 and hook.dead_letters == 0


def test_webhook_dead_letters_after_the_last_try(receiver_factory: list[_Receiver], tmp_path: Path) -> None:
    rx = _receiver(receiver_factory, fail_first=100)
    audited: list[dict[str, object]] = []
    dead = tmp_path / "sub" / "dead.jsonl"
    hook = WebhookNotifier(
        rx.url, retries=2, backoff_s=0.0, dead_letter_path=dead, dead_letter=audited.append
    )
    assert hook.notify(ALERT) is False
    assert len(rx.requests) == 3
    (line,) = dead.read_text().splitlines()
    record = json.loads(line)
    assert record["attempts"] == 3 and record["url"] == rx.url
    assert record["error"] == "HTTP 503 Service Unavailable"
    assert record["payload"]["alert_id"] == ALERT.alert_id and record["payload"]["incident"] is None
    assert audited == [record]


def test_webhook_does_not_retry_a_refusal(receiver_factory: list[_Receiver], tmp_path: Path) -> None:
    rx = _receiver(receiver_factory, fail_first=100, fail_status=400)
    hook = WebhookNotifier(rx.url, retries=5, backoff_s=0.0, dead_letter_path=tmp_path / "d.jsonl")
    assert hook.notify(ALERT) is False
    assert len(rx.requests) == 1
    assert json.loads((tmp_path / "d.jsonl").read_text())["attempts"] == 1


def test_webhook_unreachable_is_dead_lettered(tmp_path: Path) -> None:
    hook = WebhookNotifier(
        f"http://127.0.0.1:{_free_port()}/hook",
        retries=1,
        backoff_s=0.0,
        timeout_s=2.0,
        dead_letter_path=tmp_path / "d.jsonl",
    )
    assert hook.notify(ALERT) is False
    record = json.loads((tmp_path / "d.jsonl").read_text())
    assert record["attempts"] == 2 and "Connection refused" in record["error"]
    with pytest.raises(ValueError, match="http"):
        WebhookNotifier("ftp://example/hook")


def test_background_notifier_delivers_in_order(receiver_factory: list[_Receiver]) -> None:
    rx = _receiver(receiver_factory, fail_first=0)
    bg = BackgroundNotifier([WebhookNotifier(rx.url, retries=0)])
    for k in range(5):
        assert bg.notify(Alert(f"a{k}", float(k), "geofence_enter", "warning", f"m{k}")) is True
    bg.close()
    assert [b["alert_id"] for _, b in rx.requests] == [f"a{k}" for k in range(5)]
    assert bg.dropped == 0 and bg.failed == 0


def test_log_notifier(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="stratowatch.alerts"):
        assert LogNotifier().notify(ALERT) is True
    assert "ALERT new_unidentified:42 [critical] Unidentified high-altitude object T42" in caplog.text
    assert "(INC-0001)" in caplog.text


@pytest.fixture
def mosquitto_port(tmp_path: Path) -> Iterator[int]:
    exe = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if exe is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n", encoding="utf-8")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"mosquitto did not start on port {port}: {err}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def test_mqtt_publishes_the_alert_json(mosquitto_port: int) -> None:
    import paho.mqtt.client as mqtt

    received: list[tuple[str, dict[str, object]]] = []
    got = threading.Event()
    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_connect = lambda c, *_: c.subscribe("stratowatch/alerts", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append((msg.topic, json.loads(msg.payload)))
        got.set()

    sub.on_message = on_message
    sub.connect("127.0.0.1", mosquitto_port)
    sub.loop_start()
    try:
        assert subscribed.wait(5)
        notifier = MqttNotifier("127.0.0.1", mosquitto_port, "stratowatch/alerts")
        assert notifier.notify(ALERT, INCIDENT) is True
        assert got.wait(5)
        notifier.close()
    finally:
        sub.loop_stop()
        sub.disconnect()
    ((topic, body),) = received
    assert topic == "stratowatch/alerts"
    assert body["alert_id"] == ALERT.alert_id and body["message"] == ALERT.message
    assert body["track_id"] == 42 and body["incident"]["status"] == "open"  # type: ignore[index]


def test_mqtt_without_broker_reports_failure(caplog: pytest.LogCaptureFixture) -> None:
    notifier = MqttNotifier("127.0.0.1", _free_port(), timeout_s=1.0)
    with caplog.at_level(logging.ERROR):
        assert notifier.notify(ALERT) is False
    assert "not published" in caplog.text


def test_notifiers_from_config(tmp_path: Path) -> None:
    made = notifiers_from_config(
        {
            "log": True,
            "webhooks": [
                {"url": "http://127.0.0.1:9/hook", "retries": 1, "dead_letter_path": str(tmp_path / "d")}
            ],
            "mqtt": {"host": "127.0.0.1", "port": 1884, "topic": "t"},
        }
    )
    assert [type(n).__name__ for n in made] == ["LogNotifier", "WebhookNotifier", "MqttNotifier"]
    hook = made[1]
    assert isinstance(hook, WebhookNotifier) and hook.retries == 1 and hook.dead_letter_path == tmp_path / "d"
    mqtt_n = made[2]
    assert isinstance(mqtt_n, MqttNotifier) and (mqtt_n.port, mqtt_n.topic) == (1884, "t")
    assert notifiers_from_config({"log": False}) == []
    with pytest.raises(ValueError, match=r"alerts\.notify\.webhooks\[0\]\.retries: an integer"):
        notifiers_from_config({"webhooks": [{"url": "http://x/", "retries": "three"}]})
    with pytest.raises(ValueError, match=r"alerts\.notify\.webhooks\[0\]: webhook url 'x'"):
        notifiers_from_config({"webhooks": [{"url": "x"}]})
    with pytest.raises(ValueError, match=r"alerts\.notify\.smtp: unknown setting"):
        notifiers_from_config({"smtp": {}})
    with pytest.raises(ValueError, match=r"alerts\.notify\.mqtt\.prt: unknown setting"):
        notifiers_from_config({"mqtt": {"prt": 1}})
