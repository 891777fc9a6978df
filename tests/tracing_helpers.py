"""Shared by the tracing tests: an in-memory span exporter on the global tracer provider,
and a gRPC plugin that answers with the trace context its server span saw."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_EXPORTER = InMemorySpanExporter()


def global_exporter() -> InMemorySpanExporter:
    """The in-memory exporter behind the global tracer provider (set once per process;
    OpenTelemetry allows no second one), emptied."""
    provider = trace.get_tracer_provider()
    if not getattr(provider, "_weaviate_ext_test", False):
        assert isinstance(provider, trace.ProxyTracerProvider), provider
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._weaviate_ext_test = True  # type: ignore[attr-defined]
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    return _EXPORTER


ECHO_DIMS = 32 + 16 + 1
"""trace id (32 hex digits), parent span id (16 hex digits), server span recording."""

ECHO_PLUGIN = '''\
"""Answers each text with the trace context of the server span its call ran in."""
import numpy as np
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from weaviate_plugin_sdk import VectorizerPlugin

trace.set_tracer_provider(TracerProvider())  # a real SDK: server spans are recorded


class TraceEcho(VectorizerPlugin):
    def vectorize_text(self, text):
        span = trace.get_current_span()
        parent = getattr(span, "parent", None)
        digits = f"{span.get_span_context().trace_id:032x}"
        digits += f"{parent.span_id:016x}" if parent is not None else "0" * 16
        return np.array([int(d, 16) for d in digits] + [float(span.is_recording())], "f4")
'''


def write_echo_plugin(directory: Path, name: str = "trace-echo") -> Path:
    """Write the trace-echo gRPC vectorizer (Python SDK) into ``directory``; its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "plugin_server.py").write_text(ECHO_PLUGIN)
    manifest = directory / "plugin.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: weaviate.io/v1
            kind: Plugin
            metadata: {{name: {name}, version: 1.0.0}}
            spec:
              type: vectorizer
              runtime: grpc
              command: python plugin_server.py
              timeout: 20s
              capabilities: {{dimensions: {ECHO_DIMS}}}
            """
        )
    )
    return manifest


def decode_echo(vector: np.ndarray) -> tuple[int, int, bool]:
    """(trace id, parent span id, recording) from a trace-echo vector."""
    digits = "".join(f"{int(v):x}" for v in vector[:48])
    return int(digits[:32], 16), int(digits[32:48], 16), bool(vector[48])
