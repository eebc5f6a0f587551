"""Prometheus metrics, written in the text exposition format (version 0.0.4) by hand.

:class:`RequestMetrics` is a pure ASGI middleware: it times every HTTP request and files it under
its route template (``/api/v1/tracks/{track_id}``, so ids do not explode the label set), method
and status code. :func:`render` adds gauges read from the store and the pipeline at scrape time.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Latency histogram bucket upper bounds (seconds).
BUCKETS_S: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Histogram:
    __slots__ = ("count", "counts", "sum_s")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_S) + 1)  # last: above the largest bound
        self.count = 0
        self.sum_s = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.count += 1
        self.sum_s += seconds


class RequestMetrics:
    """Per (method, route, status) request counts and a latency histogram per (method, route)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], _Histogram] = {}
        self.started_s = time.time()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get((method, route))
        if hist is None:
            hist = self.latency[(method, route)] = _Histogram()
        hist.observe(seconds)


class MetricsMiddleware:
    """Times HTTP requests into a :class:`RequestMetrics` (streams: time to the response head)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        observed = False

        def done() -> None:
            nonlocal observed
            if observed:
                return
            observed = True
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - start)

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done()

        try:
            await self.app(scope, receive, timed_send)
        finally:
            done()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _number(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


def render(metrics: RequestMetrics, gauges: Mapping[str, tuple[str, float]], extra: Mapping[str, Any]) -> str:
    """The exposition text: ``gauges`` maps a metric name to (help, value); ``extra`` may hold
    ``{"counters": {name: (help, value)}}`` from the pipeline."""
    lines: list[str] = []
    for name, (help_text, value) in sorted(gauges.items()):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {_number(value)}"]
    for name, (help_text, value) in sorted(dict(extra.get("counters", {})).items()):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {_number(value)}"]
    lines += [
        "# HELP stratowatch_http_requests_total HTTP requests by method, route template and status.",
        "# TYPE stratowatch_http_requests_total counter",
    ]
    for (method, route, status), n in sorted(metrics.requests.items()):
        lines.append(
            f"stratowatch_http_requests_total{_labels(method=method, route=route, status=status)} {n}"
        )
    name = "stratowatch_http_request_duration_seconds"
    lines += [f"# HELP {name} HTTP request latency by method and route template.", f"# TYPE {name} histogram"]
    for (method, route), hist in sorted(metrics.latency.items()):
        cumulative = 0
        for bound, n in zip((*BUCKETS_S, math.inf), hist.counts, strict=True):
            cumulative += n
            le = "+Inf" if math.isinf(bound) else repr(bound)
            lines.append(f"{name}_bucket{_labels(method=method, route=route, le=le)} {cumulative}")
        lines.append(f"{name}_sum{_labels(method=method, route=route)} {hist.sum_s!r}")
        lines.append(f"{name}_count{_labels(method=method, route=route)} {hist.count}")
    return "\n".join(lines) + "\n"
