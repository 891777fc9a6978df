"""``serve`` observability: OpenTelemetry request spans with a child span per plugin call
(a gRPC plugin process joining the trace), and ``--log-format json``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, running
from inprocess import wait_ready
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.testclient import TestClient
from tracing_helpers import decode_echo, global_exporter, write_echo_plugin

from weaviate_ext.serve import ServeSettings, create_app

HASH = EXAMPLES / "python-hash-vectorizer" / "plugin.yaml"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return global_exporter()


@pytest.fixture
def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter
) -> Iterator[TestClient]:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the SDK, for the gRPC plugin process
    settings = ServeSettings(
        plugin_files=(str(HASH), str(write_echo_plugin(tmp_path / "echo"))),
        vectorizer="hash-embedder",
        timeout=20.0,
        otel=True,
        request_log=True,
    )
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        exporter.clear()
        yield test_client


def _plugin_spans(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return [s for s in spans if "weaviate_ext.plugin" in (s.attributes or {})]


def _request_span(spans: tuple[ReadableSpan, ...]) -> ReadableSpan:
    (span,) = [s for s in spans if s.kind is SpanKind.SERVER]
    return span


def test_a_request_span_with_a_child_span_per_plugin_call(
    client: TestClient, exporter: InMemorySpanExporter
) -> None:
    response = client.post("/v1/plugins/hash-embedder/vectorize", json={"texts": ["a", "b"]})
    assert response.status_code == 200, response.text
    spans = exporter.get_finished_spans()
    request = _request_span(spans)
    assert request.name == "POST /v1/plugins/{name}/vectorize"
    (call,) = _plugin_spans(spans)
    assert call.parent is not None and call.parent.span_id == request.context.span_id
    assert call.context.trace_id == request.context.trace_id
    attributes = call.attributes or {}
    assert attributes["weaviate_ext.plugin"] == "hash-embedder"
    assert attributes["weaviate_ext.runtime"] == "python"
    assert attributes["weaviate_ext.outcome"] == "ok"


def test_the_grpc_plugin_process_joins_the_request_trace(
    client: TestClient, exporter: InMemorySpanExporter
) -> None:
    response = client.post("/v1/plugins/trace-echo/vectorize", json={"text": "x"})
    assert response.status_code == 200, response.text
    spans = exporter.get_finished_spans()
    request = _request_span(spans)
    (call,) = _plugin_spans(spans)
    assert (call.attributes or {})["weaviate_ext.runtime"] == "grpc"
    assert call.parent is not None and call.parent.span_id == request.context.span_id
    trace_id, parent_id, recording = decode_echo(response.json()["vector"])
    assert trace_id == request.context.trace_id  # the plugin's server span: same trace,
    assert parent_id == call.context.span_id  # child of the host's span for the call
    assert recording


def test_request_log_records(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="weaviate_ext.serve.access"):
        response = client.post(
            "/v1/plugins/hash-embedder/vectorize",
            json={"text": "a"},
            headers={"X-Request-ID": "req-42"},
        )
        other = client.get("/.well-known/live")
    assert response.headers["x-request-id"] == "req-42"
    assert len(other.headers["x-request-id"]) == 32  # a new id
    first, second = (r for r in caplog.records if r.name == "weaviate_ext.serve.access")
    fields = ("request_id", "plugin", "status")
    assert [getattr(first, f) for f in fields] == ["req-42", "hash-embedder", 200]
    assert first.__dict__["latency_ms"] > 0
    assert second.__dict__["plugin"] is None


def test_serve_log_format_json(tmp_path: Path) -> None:
    args = ["--plugin", str(HASH), "--log-format", "json", "--otel"]
    with running(args, tmp_path / "serve.log", env={"OTEL_TRACES_EXPORTER": "none"}) as server:
        with server.client() as http:
            answer = http.post("/v1/plugins/hash-embedder/vectorize", json={"text": "a"})
            assert answer.status_code == 200, answer.text
        server.stop()
        lines = [line for line in server.logs().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry), entry
    (call,) = [e for e in entries if e.get("path") == "/v1/plugins/hash-embedder/vectorize"]
    assert call["logger"] == "weaviate_ext.serve.access"
    assert call["plugin"] == "hash-embedder" and call["status"] == 200
    assert len(call["request_id"]) == 32 and call["latency_ms"] > 0
    assert any(e["logger"].startswith("uvicorn") for e in entries)
    assert any(e["logger"] == "weaviate_ext.serve" for e in entries)  # "ready: ..."
