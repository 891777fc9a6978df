"""OpenTelemetry tracing of plugin calls (weaviate_ext.tracing): a span per call, opt-in,
the trace context carried into gRPC plugins and joined by the Python SDK's server span."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from grpc_helpers import sdk_pythonpath
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from plugin_factory import write_plugin
from tracing_helpers import decode_echo, write_echo_plugin

from weaviate_ext import PluginManager, tracing
from weaviate_ext.cli._output import JsonFormatter, Output

SOURCE = """
    import numpy as np
    from weaviate_ext import hookimpl

    class Plugin:
        @hookimpl
        def vectorize_batch(self, texts):
            if any(t == "boom" for t in texts):
                raise ValueError("boom")
            return np.ones((len(texts), 4), dtype=np.float32)
"""


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[PluginManager]:
    with PluginManager(discover=False) as manager:
        manager.load(
            write_plugin(tmp_path, "traced", "vectorizer", SOURCE, capabilities={"dimensions": 4})
        )
        yield manager


def test_a_span_per_plugin_call_with_its_attributes(
    loaded: PluginManager, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracing.instrument(loaded, tracer_provider=provider)
    vectorizer = loaded.get_vectorizer("traced")
    vectorizer.vectorize_batch(["a", "b", "c"])
    vectorizer.vectorize_text("a")
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["vectorize_batch traced", "vectorize_batch traced"]
    assert dict(spans[0].attributes or {}) == {
        "weaviate_ext.plugin": "traced",
        "weaviate_ext.hook": "vectorize_batch",
        "weaviate_ext.runtime": "python",
        "weaviate_ext.batch_size": 3,
        "weaviate_ext.outcome": "ok",
    }
    assert spans[0].kind is SpanKind.INTERNAL
    assert (spans[1].attributes or {})["weaviate_ext.batch_size"] == 1


def test_a_failed_call_records_its_exception(
    loaded: PluginManager, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracing.instrument(loaded, tracer_provider=provider)
    with pytest.raises(Exception, match="boom"):
        loaded.get_vectorizer("traced").vectorize_batch(["boom"])
    (span,) = exporter.get_finished_spans()
    attributes = span.attributes or {}
    assert attributes["weaviate_ext.outcome"] == "error"
    assert attributes["weaviate_ext.error"] == "ValueError"
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


def test_calls_are_children_of_the_current_span(
    loaded: PluginManager, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracing.instrument(loaded, tracer_provider=provider)
    with provider.get_tracer("test").start_as_current_span("request") as parent:
        loaded.get_vectorizer("traced").vectorize_text("a")
    call, request = exporter.get_finished_spans()
    assert call.parent is not None and call.parent.span_id == parent.get_span_context().span_id
    assert call.context.trace_id == request.context.trace_id


def test_tracing_is_opt_in_and_undone(
    loaded: PluginManager, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    assert not loaded.registry.wrapped and not tracing.instrumented(loaded)
    assert tracing.outgoing_metadata() is None
    undo = tracing.instrument(loaded, tracer_provider=provider)
    assert loaded.registry.wrapped and tracing.instrumented(loaded)
    assert tracing.instrument(loaded) is not undo  # a second instrument changes nothing
    undo()
    undo()
    assert not loaded.registry.wrapped and not tracing.instrumented(loaded)
    assert tracing.outgoing_metadata() is None
    loaded.get_vectorizer("traced").vectorize_text("a")
    assert exporter.get_finished_spans() == ()


def test_manager_option() -> None:
    with PluginManager(discover=False) as plain:
        assert not tracing.instrumented(plain)
    with PluginManager(discover=False, tracing=True) as traced:
        assert tracing.instrumented(traced) and traced.registry.wrapped


def test_the_trace_context_reaches_a_grpc_plugin(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    monkeypatch.setenv("PYTHONPATH", sdk_pythonpath())
    with PluginManager(discover=False) as manager:
        manager.load(write_echo_plugin(tmp_path / "echo"))
        echo = manager.get_vectorizer("trace-echo")
        # not traced: no trace context goes over the wire
        assert decode_echo(echo.vectorize_text("x")) == (0, 0, False)
        undo = tracing.instrument(manager, tracer_provider=provider)
        vector = echo.vectorize_text("x")
        (span,) = exporter.get_finished_spans()
        assert span.kind is SpanKind.CLIENT
        assert (span.attributes or {})["weaviate_ext.runtime"] == "grpc"
        trace_id, parent_id, recording = decode_echo(vector)
        assert trace_id == span.context.trace_id
        assert parent_id == span.context.span_id  # the plugin's server span is its child
        assert recording
        batch = echo.vectorize_batch(["x", "y"])
        assert decode_echo(batch[1])[0] == exporter.get_finished_spans()[-1].context.trace_id
        undo()
        assert decode_echo(echo.vectorize_text("x")) == (0, 0, False)


def test_outgoing_metadata_carries_the_current_span(
    loaded: PluginManager, provider: TracerProvider
) -> None:
    undo = tracing.instrument(loaded, tracer_provider=provider)
    try:
        assert tracing.outgoing_metadata() is None  # no span current
        with provider.get_tracer("t").start_as_current_span("s") as span:
            metadata = dict(tracing.outgoing_metadata() or ())
        context = span.get_span_context()
        assert metadata["traceparent"].startswith(
            f"00-{context.trace_id:032x}-{context.span_id:016x}-"
        )
        assert tracing.incoming_context(list(metadata.items())) is not None
        assert tracing.incoming_context([]) is None
    finally:
        undo()


def test_json_formatter_writes_one_object_per_line() -> None:
    formatter = JsonFormatter(Output({"s3cret"}))
    record = logging.LogRecord(
        "weaviate_ext.serve", logging.INFO, "f", 1, "key %s", ("s3cret",), None
    )
    record.request_id, record.plugin, record.latency_ms = "abc", "p", 1.5
    line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["time"].endswith("Z") and entry["level"] == "INFO"
    assert entry["logger"] == "weaviate_ext.serve" and "s3cret" not in entry["message"]
    assert (entry["request_id"], entry["plugin"], entry["latency_ms"]) == ("abc", "p", 1.5)
    try:
        raise RuntimeError("bad\nthing")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "m", None, sys.exc_info())
    entry = json.loads(formatter.format(record))
    assert "RuntimeError: bad" in entry["exception"] and "\n" not in entry["exception"]


def test_no_provider_means_no_recording_spans(loaded: PluginManager) -> None:
    # instrumented without an SDK provider: calls still work, nothing is recorded
    undo = tracing.instrument(loaded, tracer_provider=trace.NoOpTracerProvider())
    try:
        vector = loaded.get_vectorizer("traced").vectorize_text("a")
        assert np.asarray(vector).shape == (4,)
    finally:
        undo()


def test_configure_from_env_installs_an_sdk_provider_once() -> None:
    script = (
        "from opentelemetry import trace\n"
        "from weaviate_ext.tracing import configure_from_env\n"
        "print(configure_from_env(), configure_from_env())\n"
        "with trace.get_tracer('t').start_as_current_span('hello-span'): pass\n"
        "trace.get_tracer_provider().shutdown()\n"
    )
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console,missing", "OTEL_SERVICE_NAME": "svc"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("True False")  # a provider set already is left alone
    assert '"name": "hello-span"' in done.stdout and '"service.name": "svc"' in done.stdout
    assert "OTEL_TRACES_EXPORTER=missing" in done.stderr
