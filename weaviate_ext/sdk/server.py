"""``serve()``: run a plugin as a gRPC server, for a host or standalone.

Started by a host, the plugin finds the unix socket to serve on in the environment
(``WEAVIATE_EXT_GRPC_SOCKET``), creates it with mode 0600, prints one handshake line on
stdout (``weaviate-ext|1|unix|/path/to.sock``) and exits when its stdin closes (the
host is gone). Run by hand it serves on ``--address`` (``127.0.0.1:50051`` by default,
or ``unix:///path``), for a host that connects to it with ``spec.address``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from weaviate_ext.grpc import weaviate_plugin_pb2 as pb
from weaviate_ext.grpc import weaviate_plugin_pb2_grpc as pb_grpc
from weaviate_ext.grpc.protocol import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    SOCKET_ENV,
    format_handshake,
)
from weaviate_ext.sdk.plugins import PluginBase, status_for

log = logging.getLogger("weaviate_plugin_sdk")

DEFAULT_ADDRESS = "127.0.0.1:50051"
"""Where a plugin run by hand serves when no ``--address`` is given."""

SERVER_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
)


class _Pool(futures.Executor):
    """A small thread pool for the gRPC server.

    ``concurrent.futures.ThreadPoolExecutor`` refuses work once the interpreter starts
    shutting down, which is exactly when an auto-served plugin runs (see
    :mod:`weaviate_ext.sdk.autoserve`); this one does not.
    """

    def __init__(self, max_workers: int) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max = max_workers
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        future: futures.Future[Any] = futures.Future()
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, daemon=True, name="plugin-worker")
                self._threads.append(thread)
                thread.start()
        self._queue.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
            if item is None:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self._threads:
            self._queue.put(None)


class _Tracing:
    """Server spans for calls that carry a W3C trace context (``traceparent`` metadata,
    sent by a host that traces its plugin calls), when OpenTelemetry is importable.

    The span is a child of the host's span for the call, named ``<Service>/<Rpc>``, kind
    ``SERVER``, and current while the plugin's method runs. It goes to the plugin
    process's global tracer provider; with none configured, the current span inside the
    call is still the host's (so ``trace.get_current_span()`` carries its trace id).
    """

    def __init__(self, plugin: PluginBase) -> None:
        import importlib.util

        self.available = importlib.util.find_spec("opentelemetry") is not None
        self.plugin = plugin
        self._tracer: Any = None

    def span(
        self, rpc: str, context: grpc.ServicerContext
    ) -> contextlib.AbstractContextManager[Any]:
        """The server span of one call, or nothing when it carries no trace context."""
        if not self.available:
            return contextlib.nullcontext()
        try:
            metadata = context.invocation_metadata()
        except Exception:  # a test's stand-in context
            return contextlib.nullcontext()
        carrier = {str(k): v for k, v in metadata or () if isinstance(v, str)}
        if "traceparent" not in carrier:
            return contextlib.nullcontext()
        from opentelemetry import propagate, trace

        if self._tracer is None:
            self._tracer = trace.get_tracer("weaviate_plugin_sdk")
        service = f"weaviate.plugin.v1.{self.plugin.service}"
        return self._tracer.start_as_current_span(  # type: ignore[no-any-return]
            f"{service}/{rpc}",
            context=propagate.extract(carrier),
            kind=trace.SpanKind.SERVER,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": service,
                "rpc.method": rpc,
                "weaviate_ext.plugin": self.plugin.plugin_name or type(self.plugin).__name__,
            },
        )


def _guard_unary(plugin: PluginBase, rpc: str, tracing: _Tracing) -> Callable[[Any, Any], Any]:
    method = getattr(plugin, rpc)

    def call(request: Any, context: grpc.ServicerContext) -> Any:
        with tracing.span(rpc, context):
            try:
                return method(request, context)
            except Exception as exc:
                if _aborted(context):
                    raise
                context.abort(status_for(exc), f"{type(exc).__name__}: {exc}")

    return call


def _guard_stream(
    plugin: PluginBase, rpc: str, tracing: _Tracing
) -> Callable[[Any, Any], Iterator[Any]]:
    method = getattr(plugin, rpc)

    def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with tracing.span(rpc, context):
            try:
                yield from method(request, context)
            except Exception as exc:
                if _aborted(context):
                    raise
                context.abort(status_for(exc), f"{type(exc).__name__}: {exc}")

    return call


def _aborted(context: grpc.ServicerContext) -> bool:
    code = getattr(context, "code", None)
    return callable(code) and code() is not None


class _PluginService(pb_grpc.PluginServicer):
    """``Init`` and ``Info``; flips the health status to SERVING after a good ``Init``."""

    def __init__(self, plugin: PluginBase, health_servicer: health.HealthServicer) -> None:
        self.plugin = plugin
        self.health = health_servicer

    def Init(self, request: pb.InitRequest, context: grpc.ServicerContext) -> pb.InitResponse:
        import json

        try:
            config = json.loads(request.config_json) if request.config_json else {}
            self.plugin.setup(config)
        except Exception as exc:
            self._set(health_pb2.HealthCheckResponse.NOT_SERVING)
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{type(exc).__name__}: {exc}")
        self._set(
            health_pb2.HealthCheckResponse.SERVING
            if self.plugin.health()
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        return pb.InitResponse()

    def Info(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.InfoResponse:
        plugin = self.plugin
        return pb.InfoResponse(
            name=plugin.plugin_name or type(plugin).__name__,
            version=plugin.plugin_version,
            protocol_version=PROTOCOL_VERSION,
            plugin_type=plugin.plugin_type,
            methods=plugin.implemented(),
        )

    def _set(self, status: Any) -> None:
        self.health.set("", status)
        self.health.set(f"weaviate.plugin.v1.{self.plugin.service}", status)


def build_server(plugin: PluginBase, max_workers: int = 8) -> tuple[grpc.Server, Any]:
    """A gRPC server with the plugin's services and health (not started).

    Returns the server and the health servicer (status NOT_SERVING until ``Init``).
    """
    if not isinstance(plugin, PluginBase) or not plugin.service:
        raise TypeError(
            f"serve() needs an instance of a plugin base class, got {type(plugin).__name__}"
        )
    server = grpc.server(_Pool(max_workers), options=SERVER_OPTIONS)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    plugin_service = _PluginService(plugin, health_servicer)
    pb_grpc.add_PluginServicer_to_server(plugin_service, server)  # type: ignore[no-untyped-call]
    tracing = _Tracing(plugin)
    handlers = {
        rpc: staticmethod(
            _guard_stream(plugin, rpc, tracing)
            if rpc == "GenerateStream"
            else _guard_unary(plugin, rpc, tracing)
        )
        for rpc in plugin.rpcs
    }
    servicer = type(f"{plugin.service}Adapter", (), handlers)()
    getattr(pb_grpc, f"add_{plugin.service}Servicer_to_server")(servicer, server)
    plugin_service._set(health_pb2.HealthCheckResponse.NOT_SERVING)
    return server, plugin_service


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--address", default=None)
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    return known


def serve(
    plugin: PluginBase,
    *,
    address: str | None = None,
    argv: Sequence[str] | None = None,
    max_workers: int = 8,
) -> None:
    """Serve ``plugin`` until the process is told to stop.

    :param plugin: an instance of :class:`VectorizerPlugin` or another base class.
    :param address: where to listen when not started by a host (``host:port`` or
        ``unix:///path``); defaults to ``--address`` on the command line, then
        ``127.0.0.1:50051``.
    :param argv: the arguments to read ``--address`` from (default ``sys.argv[1:]``).
    :param max_workers: threads serving calls concurrently.
    """
    from weaviate_ext.sdk import autoserve

    autoserve.served()
    socket_path = os.environ.get(SOCKET_ENV)
    server, plugin_service = build_server(plugin, max_workers)
    stop = threading.Event()
    if socket_path:
        old = os.umask(0o077)
        try:
            server.add_insecure_port(f"unix:{socket_path}")
            server.start()
        finally:
            os.umask(old)
        os.chmod(socket_path, 0o600)
        print(format_handshake("unix", socket_path), flush=True)
        threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()
    else:
        target = address or _parse(argv).address or DEFAULT_ADDRESS
        port = server.add_insecure_port(target)
        if port == 0 and not target.startswith("unix:"):
            raise OSError(f"cannot listen on {target}")
        if not target.startswith("unix:"):
            target = f"{target.rpartition(':')[0]}:{port}"
        server.start()
        plugin_service._set(
            health_pb2.HealthCheckResponse.SERVING
            if plugin.health()
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        print(f"serving {type(plugin).__name__} on {target}", file=sys.stderr, flush=True)
    _on_sigterm(stop)
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(grace=1.0).wait(2.0)
        try:
            plugin.close()
        except Exception:
            log.exception("plugin close failed")


def _watch_stdin(stop: threading.Event) -> None:
    """The host holds our stdin open; when it closes the host is gone: stop."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    stop.set()


def _on_sigterm(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        return  # the program chose to ignore it; the host will SIGKILL after its grace
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
