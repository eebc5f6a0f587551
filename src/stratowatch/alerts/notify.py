"""Notifications: webhook (retries, dead letters), MQTT, the log, and a background dispatcher.

Every notifier sends the same JSON document: the alert's JSON form
(:func:`stratowatch.service.serialize.alert_to_json`) with its incident's JSON under
``"incident"`` (or ``null``). ``notify`` returns True when the notification was delivered and
never raises for a delivery failure: it logs, and the webhook writes a dead-letter record (a JSON
line: time, url, attempts, error, payload) after its last try, so nothing is silently lost.

Network notifiers block while they retry; :class:`BackgroundNotifier` runs them on a thread
behind a bounded queue so the pipeline never waits on a slow receiver.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from stratowatch.model import Alert, Incident
from stratowatch.service.serialize import alert_to_json, incident_to_json

log = logging.getLogger(__name__)

__all__ = [
    "BackgroundNotifier",
    "LogNotifier",
    "MqttNotifier",
    "Notifier",
    "WebhookNotifier",
    "alert_payload",
    "notifiers_from_config",
]


class Notifier(Protocol):
    """Something that tells people about an alert."""

    def notify(self, alert: Alert, incident: Incident | None = None) -> bool: ...

    def close(self) -> None: ...


def alert_payload(alert: Alert, incident: Incident | None = None) -> dict[str, Any]:
    doc = alert_to_json(alert)
    doc["incident"] = incident_to_json(incident) if incident is not None else None
    return doc


def _encode(alert: Alert, incident: Incident | None) -> bytes:
    return json.dumps(alert_payload(alert, incident), allow_nan=False, ensure_ascii=False).encode("utf-8")


class LogNotifier:
    """One log line per alert (logger ``stratowatch.alerts``)."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.WARNING) -> None:
        self.logger = logger or logging.getLogger("stratowatch.alerts")
        self.level = level

    def notify(self, alert: Alert, incident: Incident | None = None) -> bool:
        self.logger.log(
            self.level,
            "ALERT %s [%s] %s%s",
            alert.alert_id,
            alert.severity,
            alert.message,
            f" ({alert.incident_id})" if alert.incident_id else "",
        )
        return True

    def close(self) -> None:
        return None


class WebhookNotifier:
    """POST the alert JSON to ``url``; retry with exponential backoff, then dead-letter it.

    ``retries`` more tries follow the first, after ``backoff_s``, ``2 * backoff_s``, ...
    A 4xx answer other than 408/429 is not retried (the receiver refused the document).
    Dead letters go to the JSON-lines file ``dead_letter_path`` and/or the ``dead_letter``
    callable (e.g. a function writing the store's audit log).
    """

    def __init__(
        self,
        url: str,
        retries: int = 3,
        backoff_s: float = 0.5,
        *,
        timeout_s: float = 5.0,
        dead_letter_path: str | Path | None = None,
        dead_letter: Callable[[Mapping[str, Any]], None] | None = None,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url {url!r}: must start with http:// or https://")
        if retries < 0 or backoff_s < 0:
            raise ValueError("webhook: retries and backoff_s must not be negative")
        self.url = url
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.dead_letter_path = Path(dead_letter_path) if dead_letter_path is not None else None
        self.dead_letter = dead_letter
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.sleep = sleep
        self.delivered = 0
        self.dead_letters = 0
        self._lock = threading.Lock()

    def notify(self, alert: Alert, incident: Incident | None = None) -> bool:
        body = _encode(alert, incident)
        error = ""
        attempts = 0
        for attempt in range(self.retries + 1):
            attempts = attempt + 1
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            status, error = self._post(body)
            if status is not None and 200 <= status < 300:
                self.delivered += 1
                return True
            log.warning("webhook %s: try %d for %s failed: %s", self.url, attempts, alert.alert_id, error)
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                break
        self._dead_letter(alert, body, attempts, error)
        return False

    def _post(self, body: bytes) -> tuple[int | None, str]:
        req = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
                return int(resp.status), ""
        except urllib.error.HTTPError as exc:
            return int(exc.code), f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return None, f"{type(exc).__name__}: {reason}"

    def _dead_letter(self, alert: Alert, body: bytes, attempts: int, error: str) -> None:
        record = {
            "time_s": time.time(),
            "url": self.url,
            "alert_id": alert.alert_id,
            "attempts": attempts,
            "error": error,
            "payload": json.loads(body),
        }
        self.dead_letters += 1
        log.error(
            "webhook %s: alert %s dead-lettered after %d tries: %s", self.url, alert.alert_id, attempts, error
        )
        if self.dead_letter_path is not None:
            with self._lock:
                self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
                with self.dead_letter_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.dead_letter is not None:
            try:
                self.dead_letter(record)
            except Exception:
                log.exception("webhook %s: dead-letter callback failed for %s", self.url, alert.alert_id)

    def close(self) -> None:
        return None


class MqttNotifier:
    """Publish the alert JSON to ``topic`` on an MQTT broker (paho-mqtt, QoS 1 by default).

    Connects on first use and keeps the connection (paho reconnects in its network thread)."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = 1883,
        topic: str = "stratowatch/alerts",
        *,
        qos: int = 1,
        client_id: str = "",
        timeout_s: float = 5.0,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port, self.topic, self.qos = host, port, topic, qos
        self.client_id = client_id
        self.timeout_s = timeout_s
        self.username, self.password = username, password
        self._client: Any = None
        self._lock = threading.Lock()
        self.published = 0

    def _connect(self) -> Any:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id)
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        connected = threading.Event()
        client.on_connect = lambda *_args, **_kw: connected.set()
        client.connect(self.host, self.port, keepalive=30)
        client.loop_start()
        if not connected.wait(self.timeout_s):
            client.loop_stop()
            raise TimeoutError(f"no CONNACK from {self.host}:{self.port} within {self.timeout_s} s")
        return client

    def notify(self, alert: Alert, incident: Incident | None = None) -> bool:
        body = _encode(alert, incident)
        with self._lock:
            try:
                if self._client is None:
                    self._client = self._connect()
                info = self._client.publish(self.topic, body, qos=self.qos)
                info.wait_for_publish(self.timeout_s)
                ok = bool(info.is_published())
            except (OSError, TimeoutError, RuntimeError, ValueError) as exc:
                log.error("mqtt %s:%d: alert %s not published: %s", self.host, self.port, alert.alert_id, exc)
                return False
        if ok:
            self.published += 1
        else:
            log.error("mqtt %s:%d: alert %s not acknowledged", self.host, self.port, alert.alert_id)
        return ok

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None


class BackgroundNotifier:
    """Runs notifiers on one thread behind a bounded queue: ``notify`` never blocks.

    When the queue is full the oldest waiting alert is dropped and counted (``dropped``) and
    logged; ``close`` delivers what is queued (up to ``timeout_s``) and stops the thread."""

    def __init__(self, notifiers: Sequence[Notifier], maxsize: int = 1000) -> None:
        self.notifiers = tuple(notifiers)
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[tuple[Alert, Incident | None] | None] = queue.Queue(maxsize)
        self._thread = threading.Thread(target=self._run, name="alert-notify", daemon=True)
        self._thread.start()

    def notify(self, alert: Alert, incident: Incident | None = None) -> bool:
        while True:
            try:
                self._queue.put_nowait((alert, incident))
                return True
            except queue.Full:
                try:
                    old = self._queue.get_nowait()
                except queue.Empty:
                    continue
                self.dropped += 1
                if old is not None:
                    log.error("notification queue full: alert %s dropped", old[0].alert_id)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            alert, incident = item
            for n in self.notifiers:
                try:
                    if not n.notify(alert, incident):
                        self.failed += 1
                except Exception:
                    self.failed += 1
                    log.exception("notifier %s failed on alert %s", type(n).__name__, alert.alert_id)

    def close(self, timeout_s: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)
        for n in self.notifiers:
            n.close()


def notifiers_from_config(config: Mapping[str, Any], where: str = "alerts.notify") -> list[Notifier]:
    """Notifiers from a config table, e.g. TOML::

        [alerts.notify]
        log = true
        mqtt = {host = "localhost", port = 1883, topic = "stratowatch/alerts"}
        [[alerts.notify.webhooks]]
        url = "https://example.org/hook"
        retries = 3
        backoff_s = 0.5
        dead_letter_path = "dead_letters.jsonl"

    A wrong key or value raises ``ValueError`` naming it (``alerts.notify.webhooks[0].retries``).
    """
    known = {"log", "mqtt", "webhooks"}
    for key in config:
        if key not in known:
            raise ValueError(f"{where}.{key}: unknown setting (known: {', '.join(sorted(known))})")
    out: list[Notifier] = []
    log_on = config.get("log", True)
    if not isinstance(log_on, bool):
        raise ValueError(f"{where}.log: true or false is required")
    if log_on:
        out.append(LogNotifier())
    hooks = config.get("webhooks", [])
    if not isinstance(hooks, list):
        raise ValueError(f"{where}.webhooks: a list of tables is required")
    for k, hook in enumerate(hooks):
        here = f"{where}.webhooks[{k}]"
        if not isinstance(hook, Mapping) or "url" not in hook:
            raise ValueError(f"{here}.url: required")
        allowed = {"url", "retries", "backoff_s", "timeout_s", "dead_letter_path", "headers"}
        for key in hook:
            if key not in allowed:
                raise ValueError(f"{here}.{key}: unknown setting")
        try:
            out.append(
                WebhookNotifier(
                    str(hook["url"]),
                    retries=_int(hook.get("retries", 3), f"{here}.retries"),
                    backoff_s=_float(hook.get("backoff_s", 0.5), f"{here}.backoff_s"),
                    timeout_s=_float(hook.get("timeout_s", 5.0), f"{here}.timeout_s"),
                    dead_letter_path=hook.get("dead_letter_path"),
                    headers={str(a): str(b) for a, b in dict(hook.get("headers", {})).items()},
                )
            )
        except ValueError as exc:
            if str(exc).startswith(here):
                raise
            raise ValueError(f"{here}: {exc}") from None
    mqtt_cfg = config.get("mqtt")
    if mqtt_cfg is not None:
        here = f"{where}.mqtt"
        if not isinstance(mqtt_cfg, Mapping):
            raise ValueError(f"{here}: a table is required")
        allowed = {"host", "port", "topic", "qos", "username", "password"}
        for key in mqtt_cfg:
            if key not in allowed:
                raise ValueError(f"{here}.{key}: unknown setting")
        out.append(
            MqttNotifier(
                str(mqtt_cfg.get("host", "localhost")),
                _int(mqtt_cfg.get("port", 1883), f"{here}.port"),
                str(mqtt_cfg.get("topic", "stratowatch/alerts")),
                qos=_int(mqtt_cfg.get("qos", 1), f"{here}.qos"),
                username=mqtt_cfg.get("username"),
                password=mqtt_cfg.get("password"),
            )
        )
    return out


def _int(v: object, key: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{key}: an integer is required, not {v!r}")
    return v


def _float(v: object, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{key}: a number is required, not {v!r}")
    return float(v)
