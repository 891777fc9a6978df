"""The ASGI app: :func:`create_app` for code and tests, :func:`app_from_env` for servers.

``weaviate-ext serve`` runs it on uvicorn; any ASGI server can run it too, with several
worker processes (each loads its own plugins)::

    WEAVIATE_EXT_PLUGINS=./plugins uvicorn --factory weaviate_ext.serve:app_from_env --workers 4
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weaviate_ext._version import __version__
from weaviate_ext.errors import ConfigError
from weaviate_ext.manager import PluginManager
from weaviate_ext.serve import errors, inference, native, ollama, openai, reranker
from weaviate_ext.serve.auth import BearerAuthMiddleware
from weaviate_ext.serve.errors import ContentLengthLimitMiddleware
from weaviate_ext.serve.metrics import RequestMetricsMiddleware
from weaviate_ext.serve.reload import watch
from weaviate_ext.serve.settings import ServeSettings
from weaviate_ext.serve.state import REQUEST, ServeState

access_log = logging.getLogger("weaviate_ext.serve.access")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""An ``X-Request-ID`` taken as it is (else a new id replaces it)."""

DESCRIPTION = """\
Plugins loaded by weaviate-ext, of every runtime (Python, WebAssembly, native, gRPC),
behind the HTTP APIs that vector databases already call:

* the **inference container** API of Weaviate's `text2vec-transformers` module
  (`/.well-known/live`, `/.well-known/ready`, `/meta`, `/vectors`) and the **reranker**
  API of `reranker-transformers` (`/rerank`), also per plugin under `/inference/{name}/`;
* **OpenAI**-compatible (`/v1/embeddings`, `/v1/chat/completions`, `/v1/models`) and
  **Ollama**-compatible (`/api/embed`, `/api/generate`, `/api/chat`) endpoints;
* a **native** API for all six plugin types (`/v1/plugins/...`);
* Prometheus metrics at `/metrics`.

Errors are JSON: `{"error": "..."}` (OpenAI's shape on the OpenAI endpoints).
"""


class HeadAsGetMiddleware:
    """``HEAD`` wherever ``GET`` works (``/meta``, the ``.well-known`` endpoints, ...):
    the request is routed as a ``GET`` and the answer's body is dropped, its status and
    headers (``Content-Length`` too) kept. A path without ``GET`` answers 405 as before."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route a ``HEAD`` request as a ``GET`` and send no body back."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


class RequestLogMiddleware:
    """One INFO record per HTTP request on ``weaviate_ext.serve.access``, with the
    attributes ``request_id``, ``plugin`` (the first plugin called, if any),
    ``latency_ms``, ``method``, ``path`` and ``status``.

    The request id is the request's ``X-Request-ID`` header when it is a plain token,
    else a new one; the answer carries it in ``X-Request-ID``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its id current, then log it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        info: dict[str, object] = {"request_id": request_id}
        token = REQUEST.set(info)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [h for h in message.get("headers", ()) if h[0] != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST.reset(token)
            latency_ms = round((time.perf_counter() - started) * 1e3, 3)
            method, path = scope.get("method", ""), scope.get("path", "")
            access_log.info(
                "%s %s %d %.1fms",
                method,
                path,
                status,
                latency_ms,
                extra={
                    "request_id": request_id,
                    "plugin": info.get("plugin"),
                    "latency_ms": latency_ms,
                    "method": method,
                    "path": path,
                    "status": status,
                },
            )


def _instrument(app: FastAPI) -> None:
    """A server span per request (OpenTelemetry's FastAPI instrumentation), in the global
    tracer provider, configured from the ``OTEL_*`` environment if nobody set one."""
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError as exc:
        raise ConfigError(
            f"serve setting otel needs OpenTelemetry ({exc}); "
            "install the otel extra: pip install 'weaviate-ext[otel]'"
        ) from None
    from weaviate_ext.tracing import configure_from_env

    configure_from_env()
    FastAPIInstrumentor.instrument_app(app, excluded_urls="/metrics,/.well-known/")


def create_app(
    settings: ServeSettings | None = None, *, manager: PluginManager | None = None
) -> FastAPI:
    """The ASGI app serving the plugins described by ``settings``.

    :param settings: what to load and how to serve (default: :meth:`ServeSettings.from_env`).
    :param manager: serve this already loaded manager instead of loading plugins; the
        app does not close it.

    The plugins are loaded when the app starts (its lifespan), in a worker thread:
    ``/.well-known/live`` answers meanwhile, ``/.well-known/ready`` once they are loaded.
    """
    settings = settings if settings is not None else ServeSettings.from_env()
    state = ServeState(settings, manager)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Load the plugins in the background while serving; close them at the end."""
        stop = anyio.Event()

        async def start() -> None:
            """Load, then (with ``reload``) watch the plugin directories."""
            await state.load()
            if settings.reload and state.ready:
                await watch(state, stop)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(start)
            try:
                yield
            finally:
                stop.set()
                tasks.cancel_scope.cancel()
        await state.close()

    app = FastAPI(
        title="weaviate-ext serve",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        strict_content_type=False,  # Weaviate's modules send JSON without a Content-Type
    )
    app.state.serve = state
    errors.install(app)
    # the body limit is set per router, inside the middleware that answers a declared
    # Content-Length over it with a JSON 413 (an app-wide limit would answer it in text)
    for router in (
        inference.router,
        inference.protected,
        reranker.router,
        openai.router,
        ollama.router,
        native.router,
    ):
        app.include_router(router, max_body_size=settings.max_body_bytes)
    app.router.routes.append(
        Route("/metrics", state.metrics.asgi_app(), methods=["GET"], include_in_schema=False)
    )
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(ContentLengthLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(BearerAuthMiddleware, state=state)
    app.add_middleware(RequestMetricsMiddleware, metrics=state.metrics)
    if settings.request_log:
        app.add_middleware(RequestLogMiddleware)
    if settings.otel:
        _instrument(app)
    return app


def app_from_env() -> FastAPI:
    """The app with :meth:`ServeSettings.from_env` settings: the factory for ASGI servers
    (``uvicorn --factory weaviate_ext.serve:app_from_env``).

    Unless logging is configured already, the server's own messages (ready, reloads,
    plugin failures) go to stderr at INFO level, like the ASGI server's.
    """
    logger = logging.getLogger("weaviate_ext")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return create_app(ServeSettings.from_env())
