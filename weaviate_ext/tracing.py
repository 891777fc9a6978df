"""OpenTelemetry tracing of plugin calls (the ``otel`` extra: ``pip install 'weaviate-ext[otel]'``).

Opt-in, per manager::

    import weaviate_ext.tracing

    undo = weaviate_ext.tracing.instrument(manager)   # or PluginManager(tracing=True)

registers :class:`TracingWrapper`, a host ``wrapper=True`` hookimpl of every plugin hook
(see :mod:`weaviate_ext.dispatch`): each call of each plugin, whatever its runtime, runs
inside a span named ``"<hook> <plugin>"`` with the attributes

* ``weaviate_ext.plugin``, ``weaviate_ext.hook``, ``weaviate_ext.runtime``;
* ``weaviate_ext.batch_size`` for the batch hooks (texts, items, documents) and 1 for
  single-item hooks (``vectorize_text``, ``transform``);
* ``weaviate_ext.outcome``: ``ok`` or ``error``, and ``weaviate_ext.error`` (the
  exception's type name) with the exception recorded as a span event and the span's
  status set to ERROR.

Spans of gRPC plugins are ``CLIENT`` spans, the others ``INTERNAL``. While any manager is
instrumented, calls into gRPC plugins carry the W3C trace context (``traceparent``,
``tracestate``) in their call metadata (:func:`outgoing_metadata`), and the Python SDK's
server starts its server span as a child of it.

Nothing here is imported, and nothing is registered, unless asked: without a tracing
wrapper, handles call plugins directly (the dispatch fast path) and gRPC calls carry no
metadata. The spans go to the global tracer provider, or to ``tracer_provider``.
``generate_stream``'s span covers the call that returns the stream, not its consumption.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from weaviate_ext._version import __version__
from weaviate_ext.dispatch import current_call
from weaviate_ext.hookspecs import hookimpl

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

    from weaviate_ext.manager import PluginManager

__all__ = [
    "TracingWrapper",
    "configure_from_env",
    "instrument",
    "instrumented",
    "outgoing_metadata",
]

log = logging.getLogger(__name__)

WRAPPER_NAME = "weaviate_ext.tracing"
"""The name the tracing wrapper is registered under in a manager's registry."""

INSTRUMENTATION = "weaviate_ext"
"""The instrumentation scope name of the spans."""

_lock = threading.Lock()
_active = 0
"""How many managers are instrumented: gRPC calls carry trace context while > 0."""


def _missing(exc: ImportError) -> RuntimeError:
    return RuntimeError(
        f"tracing needs OpenTelemetry ({exc}); install the otel extra: "
        "pip install 'weaviate-ext[otel]'"
    )


class TracingWrapper:
    """The host wrapper that puts every plugin call in a span (see the module's docstring).

    :param manager: the manager whose plugins it wraps (it reads their runtimes).
    :param tracer_provider: where spans go (default: the global tracer provider).
    """

    def __init__(
        self, manager: PluginManager, tracer_provider: TracerProvider | None = None
    ) -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:
            raise _missing(exc) from None
        self._trace = trace
        self.tracer: Tracer = trace.get_tracer(
            INSTRUMENTATION, __version__, tracer_provider=tracer_provider
        )
        self._manager = manager
        self._runtimes: dict[str, str] = {}
        self._generation = -1

    def _runtime(self, plugin: str) -> str:
        registry = self._manager.registry
        if registry.generation != self._generation:  # loads, reloads, unloads
            self._runtimes = {}
            self._generation = registry.generation
        runtime = self._runtimes.get(plugin)
        if runtime is None:
            try:
                runtime = self._manager.manifest(plugin).spec.runtime
            except Exception:  # a version being built (probe call): not registered yet
                return "unknown"
            self._runtimes[plugin] = runtime
        return runtime

    def _traced(self, batch_size: int | None) -> Generator[None, Any, Any]:
        call = current_call()
        plugin, hook = (call.plugin, call.hook) if call is not None else ("unknown", "unknown")
        runtime = self._runtime(plugin)
        attributes: dict[str, str | int] = {
            "weaviate_ext.plugin": plugin,
            "weaviate_ext.hook": hook,
            "weaviate_ext.runtime": runtime,
        }
        if batch_size is not None:
            attributes["weaviate_ext.batch_size"] = batch_size
        kind = self._trace.SpanKind.CLIENT if runtime == "grpc" else self._trace.SpanKind.INTERNAL
        with self.tracer.start_as_current_span(
            f"{hook} {plugin}", kind=kind, attributes=attributes
        ) as span:
            try:
                result = yield
            except BaseException as exc:
                span.set_attribute("weaviate_ext.outcome", "error")
                span.set_attribute("weaviate_ext.error", type(exc).__name__)
                raise
            span.set_attribute("weaviate_ext.outcome", "ok")
            return result

    # -- one wrapper per plugin hook (pluggy passes the arguments named here) ------------

    @hookimpl(wrapper=True)
    def vectorize_text(self) -> Generator[None, Any, Any]:
        """Trace a ``vectorize_text`` call (batch size 1)."""
        return (yield from self._traced(1))

    @hookimpl(wrapper=True)
    def vectorize_batch(self, texts: Sequence[str]) -> Generator[None, Any, Any]:
        """Trace a ``vectorize_batch`` call (batch size: the texts)."""
        return (yield from self._traced(len(texts)))

    @hookimpl(wrapper=True)
    def transform(self) -> Generator[None, Any, Any]:
        """Trace a ``transform`` call (batch size 1)."""
        return (yield from self._traced(1))

    @hookimpl(wrapper=True)
    def transform_batch(self, items: Sequence[Any]) -> Generator[None, Any, Any]:
        """Trace a ``transform_batch`` call (batch size: the items)."""
        return (yield from self._traced(len(items)))

    @hookimpl(wrapper=True)
    def rerank(self, documents: Sequence[str]) -> Generator[None, Any, Any]:
        """Trace a ``rerank`` call (batch size: the documents)."""
        return (yield from self._traced(len(documents)))

    @hookimpl(wrapper=True)
    def generate(self) -> Generator[None, Any, Any]:
        """Trace a ``generate`` call."""
        return (yield from self._traced(None))

    @hookimpl(wrapper=True)
    def generate_stream(self) -> Generator[None, Any, Any]:
        """Trace a ``generate_stream`` call (until it returns the stream)."""
        return (yield from self._traced(None))

    @hookimpl(wrapper=True)
    def store(self) -> Generator[None, Any, Any]:
        """Trace a ``store`` call."""
        return (yield from self._traced(None))

    @hookimpl(wrapper=True)
    def retrieve(self) -> Generator[None, Any, Any]:
        """Trace a ``retrieve`` call."""
        return (yield from self._traced(None))

    @hookimpl(wrapper=True)
    def delete(self) -> Generator[None, Any, Any]:
        """Trace a ``delete`` call."""
        return (yield from self._traced(None))

    @hookimpl(wrapper=True)
    def authenticate(self) -> Generator[None, Any, Any]:
        """Trace an ``authenticate`` call."""
        return (yield from self._traced(None))

    @hookimpl(wrapper=True)
    def authorize(self) -> Generator[None, Any, Any]:
        """Trace an ``authorize`` call."""
        return (yield from self._traced(None))


def instrumented(manager: PluginManager) -> bool:
    """Whether ``manager``'s plugin calls are traced."""
    return manager.registry.get_plugin(WRAPPER_NAME) is not None


def instrument(
    manager: PluginManager, *, tracer_provider: TracerProvider | None = None
) -> Callable[[], None]:
    """Trace every plugin call of ``manager`` from now on (and propagate the trace
    context into gRPC plugins); returns a function that stops it (the fast path again).

    Instrumenting an instrumented manager changes nothing (its undo does nothing).

    :raises RuntimeError: OpenTelemetry is not installed (the ``otel`` extra).
    """
    global _active
    if instrumented(manager):
        return lambda: None
    wrapper = TracingWrapper(manager, tracer_provider)
    remove = manager.add_wrapper(wrapper, WRAPPER_NAME)
    with _lock:
        _active += 1
    done = False

    def undo() -> None:
        global _active
        nonlocal done
        if done:
            return
        done = True
        remove()
        with _lock:
            _active -= 1

    return undo


def outgoing_metadata() -> tuple[tuple[str, str], ...] | None:
    """gRPC call metadata with the current trace context (``traceparent``,
    ``tracestate``), or ``None`` when no manager is instrumented or no span is current."""
    if not _active:
        return None
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple(carrier.items()) or None


def incoming_context(metadata: Sequence[tuple[str, Any]] | None) -> Any:
    """The OpenTelemetry context carried by gRPC ``metadata`` (``None`` without a
    ``traceparent``); the Python SDK's server starts its span in it."""
    carrier = {str(k): v for k, v in metadata or () if isinstance(v, str)}
    if "traceparent" not in carrier:
        return None
    from opentelemetry import propagate

    return propagate.extract(carrier)


def configure_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Install an SDK tracer provider as the global one, unless one is set already
    (by the host program, or by ``opentelemetry-instrument``); whether it did.

    Its exporters are those named by ``OTEL_TRACES_EXPORTER`` (comma-separated, default
    ``otlp``; ``none``: spans are made and propagated but not exported), found through
    the ``opentelemetry_traces_exporter`` entry points (``console`` comes with the SDK,
    ``otlp`` with ``opentelemetry-exporter-otlp``), each behind a batch span processor;
    the service is ``OTEL_SERVICE_NAME`` (default ``weaviate-ext``). An exporter that
    is not installed is reported in a warning and left out.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise _missing(exc) from None
    from importlib.metadata import entry_points

    env = os.environ if environ is None else environ
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return False
    service = env.get("OTEL_SERVICE_NAME") or "weaviate-ext"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    names = [n.strip() for n in (env.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")]
    found = {ep.name: ep for ep in entry_points(group="opentelemetry_traces_exporter")}
    for name in names:
        if not name or name == "none":
            continue
        if name not in found:
            log.warning(
                "OTEL_TRACES_EXPORTER=%s: no such span exporter installed (known: %s)",
                name,
                ", ".join(sorted(found)) or "none",
            )
            continue
        provider.add_span_processor(BatchSpanProcessor(found[name].load()()))
    trace.set_tracer_provider(provider)
    return True
