"""Behaviour under load and bad input: 4xx JSON for every bad request, 5xx JSON naming
the plugin for a failing one, concurrent answers that are correct, an event loop that
a blocking plugin does not block, and the metrics of all of it."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import EXAMPLES, Server

from weaviate_ext import PluginManager

TOO_LONG = "x" * 2001
"""One character more than the main server's --max-text-length."""


@pytest.fixture(scope="module")
def local() -> Iterator[PluginManager]:
    with PluginManager(discover=False) as manager:
        manager.load(EXAMPLES / "python-hash-vectorizer" / "plugin.yaml")
        manager.load(EXAMPLES / "python-bm25-reranker" / "plugin.yaml")
        yield manager


# -- bad input ------------------------------------------------------------------------------

BAD_REQUESTS: list[tuple[str, str, bytes, int, str]] = [
    ("POST", "/vectors", b'{"text": ', 400, "malformed JSON"),
    ("POST", "/vectors", b"\xff\xfe\x00", 400, "malformed JSON"),
    ("POST", "/vectors", b'{"text": "\xff"}', 400, "malformed JSON"),
    ("POST", "/vectors", b"", 422, "Field required"),
    ("POST", "/vectors", b"[]", 422, "must be a JSON object"),
    ("POST", "/vectors", b'"hello"', 422, "must be a JSON object"),
    ("POST", "/vectors", b'{"text": 5}', 422, "text: Input should be a valid string"),
    ("POST", "/vectors", b'{"text": ["a"]}', 422, "text: Input should be a valid string"),
    ("POST", "/vectors", b'{"text": null}', 422, "text: Field required"),
    ("POST", "/vectors", b'{"config": {}}', 422, "text: Field required"),
    ("POST", "/vectors", b'{"text": ""}', 422, "text must not be empty"),
    ("POST", "/vectors", json.dumps({"text": TOO_LONG}).encode(), 413, "2001 characters"),
    ("POST", "/vectors", json.dumps({"texts": ["a"] * 17}).encode(), 413, "17 texts"),
    ("POST", "/vectors", b'{"texts": []}', 422, "texts must not be empty"),
    ("POST", "/vectors", b'{"text": "a", "texts": ["b"]}', 422, "not both"),
    ("POST", "/vectors", b'{"text": "a", "config": "x"}', 422, "config"),
    ("POST", "/vectors", b'{"text": "a", "config": {"dimensions": "8"}}', 422, "dimensions"),
    ("POST", "/vectors", b'{"text": "a", "config": {"dimensions": 0}}', 422, "at least 1"),
    ("POST", "/vectors", b'{"text": "a", "config": {"dimensions": 769}}', 422, "more than"),
    ("POST", "/vectors", b'{"text": "a", "config": {"task_type": "x"}}', 422, "task_type"),
    ("POST", "/rerank", b'{"query": 1, "documents": []}', 422, "query"),
    ("POST", "/rerank", b'{"query": "", "documents": ["a"]}', 422, "query must not be empty"),
    ("POST", "/rerank", b'{"query": "q", "documents": ["a", 3]}', 422, "documents.1"),
    ("POST", "/rerank", b'{"query": "q", "documents": "abc"}', 422, "documents"),
    ("POST", "/rerank", json.dumps({"query": "q", "documents": ["a"] * 17}).encode(), 413, "17"),
    ("POST", "/rerank", json.dumps({"query": "q", "documents": [TOO_LONG]}).encode(), 413, "2001"),
    ("POST", "/v1/embeddings", json.dumps({"input": ["a"] * 17}).encode(), 413, "17 texts"),
    ("POST", "/v1/embeddings", b'{"input": "x", "dimensions": -1}', 422, "at least 1"),
    ("POST", "/v1/chat/completions", b'{"messages": "hi"}', 422, "messages"),
    ("POST", "/api/generate", b'{"prompt": 5}', 422, "prompt"),
    ("POST", "/api/generate", b'{"prompt": "hi", "stream": "maybe"}', 422, "stream"),
    ("POST", "/v1/plugins/hash-embedder/vectorize", b'{"texts": "abc"}', 422, "texts"),
    ("POST", "/v1/plugins/hash-embedder/vectorize", b'{"text": "a", "x": 1}', 422, "x: Extra"),
    ("POST", "/v1/plugins/file-store/store", b'{"key": "", "value": "v"}', 422, "key must not"),
    ("GET", "/vectors", b"", 405, "Method Not Allowed"),
    ("GET", "/no/such/path", b"", 404, "Not Found"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    BAD_REQUESTS,
    ids=[f"{m} {p} {b[:30]!r}" for m, p, b, _, _ in BAD_REQUESTS],
)
def test_bad_input_gets_a_4xx_json_error(
    client: httpx.Client, method: str, path: str, body: bytes, status: int, message: str
) -> None:
    response = client.request(method, path, content=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    text = error["message"] if isinstance(error, dict) else error
    assert message in text
    assert "Traceback" not in response.text


def test_a_body_over_the_size_cap_is_refused(client: httpx.Client) -> None:
    body = json.dumps({"texts": ["word " * 300] * 200}).encode()
    assert len(body) > 200_000
    response = client.post("/vectors", content=body)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": f"the request body is {len(body)} bytes, more than the limit of 200000"
    }


def test_a_chunked_body_over_the_cap_is_refused(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(300):
            yield b"y" * 1000
        yield b'"}'

    response = client.post("/vectors", content=chunks())
    assert response.status_code == 413
    assert response.json() == {
        "error": "the request body is larger than the limit (--max-body-bytes)"
    }


# -- failing plugins ---------------------------------------------------------------------------


def still_serving(client: httpx.Client) -> None:
    assert client.get("/.well-known/ready").status_code == 204
    assert client.post("/vectors", content=b'{"text": "still here"}').status_code == 200


def test_a_plugin_that_raises_gives_502_naming_it(client: httpx.Client) -> None:
    response = client.post("/inference/flaky/vectors", content=b'{"text": "boom"}')
    assert response.status_code == 502
    body = response.json()
    assert body["plugin"] == "flaky"
    assert "plugin 'flaky'" in body["error"] and "boom happened" in body["error"]
    assert "Traceback" not in response.text
    still_serving(client)


def test_a_plugin_that_hangs_gives_504_naming_it(client: httpx.Client) -> None:
    response = client.post("/inference/flaky/vectors", content=b'{"text": "slow"}')
    assert response.status_code == 504
    assert response.json() == {
        "error": "plugin 'flaky' vectorize: no answer within 2s",
        "plugin": "flaky",
    }
    still_serving(client)
    assert client.post("/inference/flaky/vectors", content=b'{"text": "ok"}').status_code == 200


def test_non_finite_output_is_a_502(client: httpx.Client) -> None:
    response = client.post("/inference/flaky/vectors", content=b'{"text": "nan"}')
    assert response.status_code == 502
    assert response.json()["error"] == "plugin 'flaky' returned a non-finite vector value"


def test_a_grpc_plugin_that_crashes_or_hangs(client: httpx.Client) -> None:
    crashed = client.post("/inference/faulty/vectors", content=b'{"text": "crash"}')
    assert crashed.status_code == 502
    assert crashed.json()["plugin"] == "faulty"
    assert "faulty" in crashed.json()["error"]
    still_serving(client)
    # the supervisor restarts the process; until it serves, calls get a clear 502
    for _ in range(300):
        restarted = client.post("/inference/faulty/vectors", content=b'{"text": "after"}')
        if restarted.status_code == 200:
            break
        assert restarted.status_code == 502, restarted.text
        assert "restarting" in restarted.json()["error"]
        time.sleep(0.1)
    assert restarted.status_code == 200 and restarted.json()["dim"] == 8
    hung = client.post("/inference/faulty/vectors", content=b'{"text": "hang"}')
    assert hung.status_code == 504
    assert hung.json()["plugin"] == "faulty"
    still_serving(client)


# -- concurrency -----------------------------------------------------------------------------


def test_fifty_concurrent_clients_get_correct_answers(
    main_server: Server, local: PluginManager
) -> None:
    vectorizer = local.get_vectorizer("hash-embedder")
    reranker = local.get_reranker("bm25-lite")
    documents = ["the red fox", "a lazy dog", "red red red", "foxes are red"]
    expected_scores = {r.index: r.score for r in reranker.rerank("red fox", documents)}
    rerank_body = json.dumps({"query": "red fox", "documents": documents}).encode()
    failures: list[str] = []
    start = threading.Barrier(50)

    def one_client(i: int) -> int:
        texts = [f"client {i} text", "shared text"]
        answers = 0
        with main_server.client() as http:
            start.wait(timeout=60)
            for text in texts:
                body = json.dumps({"text": text}).encode()
                vector = np.asarray(http.post("/vectors", content=body).json()["vector"])
                if not np.array_equal(vector.astype(np.float32), vectorizer.vectorize_text(text)):
                    failures.append(f"wrong vector for {text!r}")
                answers += 1
            scores = http.post("/rerank", content=rerank_body).json()["scores"]
            if [s["score"] for s in scores] != [expected_scores[k] for k in range(4)]:
                failures.append(f"wrong scores for client {i}")
            answers += 1
        return answers

    with ThreadPoolExecutor(max_workers=50) as pool:
        counts = list(pool.map(one_client, range(50)))
    assert failures == []
    assert counts == [3] * 50


def test_a_blocking_plugin_call_does_not_block_the_event_loop(
    main_server: Server, tmp_path: Path
) -> None:
    gate = tmp_path / "gate-open"
    result: dict[str, Any] = {}

    def waiting_call() -> None:
        with main_server.client() as http:
            body = json.dumps({"text": f"wait:{gate}"}).encode()
            result["response"] = http.post("/inference/gate/vectors", content=body)

    waiter = threading.Thread(target=waiting_call)
    waiter.start()
    try:
        with main_server.client() as http:
            # the waiting call is inside the plugin, blocking its worker thread ...
            for _ in range(600):
                if http.get("/v1/plugins/gate").json()["stats"]["in_flight"] == 1:
                    break
                threading.Event().wait(0.05)
            else:
                pytest.fail("the waiting call never reached the plugin")
            # ... and the server still answers other requests, including plugin calls
            assert http.get("/.well-known/live").status_code == 204
            assert http.post("/vectors", content=b'{"text": "meanwhile"}').status_code == 200
            opened = http.post("/inference/gate/vectors", content=f'{{"text": "open:{gate}"}}')
            assert opened.status_code == 200
    finally:
        waiter.join(timeout=60)
    assert result["response"].status_code == 200, result["response"].text


# -- metrics ---------------------------------------------------------------------------------


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus text exposition (0 if absent)."""
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:{{(.*)}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return 0.0


def test_metrics_per_plugin_and_per_route(client: httpx.Client) -> None:
    before = client.get("/metrics").text
    client.post("/inference/grpc-embedder/vectors", content=b'{"text": "metrics one"}')
    client.post("/inference/flaky/vectors", content=b'{"text": "boom"}')
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    calls = {"plugin": "grpc-embedder", "operation": "vectorize"}
    assert metric(text, "weaviate_ext_plugin_calls_total", **calls) == (
        metric(before, "weaviate_ext_plugin_calls_total", **calls) + 1
    )
    failed = {"plugin": "flaky", "operation": "vectorize", "kind": "failed"}
    assert metric(text, "weaviate_ext_plugin_errors_total", **failed) >= 1
    assert (
        metric(
            text,
            "weaviate_ext_plugin_call_duration_seconds_bucket",
            plugin="grpc-embedder",
            operation="vectorize",
            le="+Inf",
        )
        >= 1
    )
    assert metric(text, "weaviate_ext_plugin_call_duration_seconds_count", **calls) >= 1
    route = {"method": "POST", "route": "/inference/{name}/vectors", "status": "502"}
    assert metric(text, "weaviate_ext_serve_requests_total", **route) >= 1
    info = {"plugin": "grpc-embedder", "type": "vectorizer", "runtime": "grpc"}
    assert metric(text, "weaviate_ext_plugin_info", **info) == 1
    assert metric(text, "weaviate_ext_serve_ready") == 1
    assert "/no/such" not in text, "unmatched paths are one series, not one per path"


def test_requests_are_logged_and_no_traceback(main_server: Server, client: httpx.Client) -> None:
    client.post("/inference/flaky/vectors", content=b'{"text": "boom"}')
    log = main_server.logs()
    assert '"POST /inference/flaky/vectors HTTP/1.1" 502' in log
    assert "Traceback" not in log
