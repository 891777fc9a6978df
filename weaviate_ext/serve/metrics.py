"""Prometheus metrics at ``/metrics``, made with ``prometheus-client``.

Per plugin: calls, errors (by kind) and a latency histogram of every call the server
makes; per route: requests by status and a latency histogram; the cache's hits and
misses; which plugins are loaded. Each app has its own registry, so several apps (or
tests) in one process do not collide. Under several worker processes set
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode): ``/metrics`` then
adds up every worker's values.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_asgi_app,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Histogram buckets in seconds: plugin calls range from microseconds to many seconds."""

BATCH_SIZE_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)
"""Histogram buckets of dynamic batch sizes (requests per batch)."""

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The server's metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "weaviate_ext_serve_requests",
            "HTTP requests answered, by route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "weaviate_ext_serve_request_duration_seconds",
            "Time to answer an HTTP request (to the last byte of a stream)",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.plugin_calls = Counter(
            "weaviate_ext_plugin_calls",
            "Calls of a plugin made by the server",
            ["plugin", "operation"],
            registry=registry,
        )
        self.plugin_errors = Counter(
            "weaviate_ext_plugin_errors",
            "Calls of a plugin that failed, by kind of error",
            ["plugin", "operation", "kind"],
            registry=registry,
        )
        self.plugin_seconds = Histogram(
            "weaviate_ext_plugin_call_duration_seconds",
            "Latency of a plugin call made by the server, errors included",
            ["plugin", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.cache_hits = Counter(
            "weaviate_ext_serve_cache_hits",
            "Results served from the result cache",
            ["plugin"],
            registry=registry,
        )
        self.cache_misses = Counter(
            "weaviate_ext_serve_cache_misses",
            "Results the cache did not hold (the plugin was called)",
            ["plugin"],
            registry=registry,
        )
        self.batches = Counter(
            "weaviate_ext_serve_batches",
            "Dynamic batches: plugin calls made for several concurrent requests at once",
            ["plugin"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "weaviate_ext_serve_batch_size",
            "Requests (texts) per dynamic batch",
            ["plugin"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.plugin_info = Gauge(
            "weaviate_ext_plugin_info",
            "Loaded plugins (1 per plugin), with version, type and runtime",
            ["plugin", "version", "type", "runtime"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.ready = Gauge(
            "weaviate_ext_serve_ready",
            "1 once the plugins are loaded and the server answers",
            registry=registry,
            multiprocess_mode="max",
        )

    def observe_call(self, plugin: str, operation: str, seconds: float, error: str | None) -> None:
        """Count one plugin call with its latency, and its error kind if it failed."""
        self.plugin_calls.labels(plugin, operation).inc()
        self.plugin_seconds.labels(plugin, operation).observe(seconds)
        if error is not None:
            self.plugin_errors.labels(plugin, operation, error).inc()

    def set_plugins(self, rows: list[tuple[str, str, str, str]]) -> None:
        """Replace the ``weaviate_ext_plugin_info`` series by ``rows`` (name, version,
        type, runtime)."""
        self.plugin_info.clear()
        for row in rows:
            self.plugin_info.labels(*row).set(1)

    def asgi_app(self) -> ASGIApp:
        """The ``/metrics`` endpoint: prometheus-client's ASGI app (text or OpenMetrics
        format, gzip when asked), over this registry or, in multiprocess mode, over
        every worker's values."""
        registry = self.registry
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return _Endpoint(make_asgi_app(registry))


class _Endpoint:
    """An ASGI app as an object, so that Starlette routes to it as an app, not as a
    request/response function."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class RequestMetricsMiddleware:
    """Counts every HTTP request by route template (never the raw path) and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request, then count it under its route's path template."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = _route_of(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.request_seconds.labels(method, route).observe(
                time.perf_counter() - started
            )


def _route_of(scope: dict[str, Any] | Scope) -> str:
    """The matched route's path template (``/v1/plugins/{name}/vectorize``)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    raw = scope.get("path", "")
    if raw == "/metrics" or raw.startswith("/metrics/"):
        return "/metrics"
    return "unmatched"
