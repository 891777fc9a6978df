"""The inference-container API (``text2vec-transformers``) and the reranker API
(``reranker-transformers``) on the main server, request by request."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from conftest import EXAMPLES, Server

from weaviate_ext import PluginManager


@pytest.fixture(scope="module")
def local() -> Iterator[PluginManager]:
    """The example plugins the main server serves, loaded in this process."""
    with PluginManager(discover=False) as manager:
        manager.load(EXAMPLES / "python-hash-vectorizer" / "plugin.yaml")
        manager.load(EXAMPLES / "python-bm25-reranker" / "plugin.yaml")
        manager.load(EXAMPLES / "custom-vectorizer" / "plugin-native.yaml")
        yield manager


def post_raw(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    """POST ``body`` as it is, without a Content-Type header (as Weaviate sends it)."""
    response = client.post(path, content=body)
    assert "content-type" not in response.request.headers
    return response


# -- liveness, readiness, meta -------------------------------------------------------------


def test_live_and_ready_are_204_without_a_body(client: httpx.Client) -> None:
    for path in ("/.well-known/live", "/.well-known/ready"):
        response = client.get(path)
        assert response.status_code == 204 and response.content == b""


def test_per_plugin_readiness(client: httpx.Client) -> None:
    assert client.get("/inference/custom-embedder/.well-known/ready").status_code == 204
    assert client.get("/inference/grpc-embedder/.well-known/live").status_code == 204
    missing = client.get("/inference/nope/.well-known/ready")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no plugin named 'nope'"}


def test_meta_describes_the_default_vectorizer(client: httpx.Client) -> None:
    meta = client.get("/meta").json()
    assert meta["name"] == "hash-embedder"
    assert meta["version"] == "1.0.0"
    assert meta["dimensions"] == 768
    assert meta["runtime"] == "python"
    assert meta["type"] == "vectorizer"
    assert meta["normalized"] is True


@pytest.mark.parametrize(
    ("name", "runtime", "dimensions"),
    [
        ("custom-embedder", "wasm", 768),
        ("custom-embedder-native", "native", 768),
        ("grpc-embedder", "grpc", 768),
        ("overlap-reranker", "wasm", None),
    ],
)
def test_meta_of_each_plugin(
    client: httpx.Client, name: str, runtime: str, dimensions: int | None
) -> None:
    meta = client.get(f"/inference/{name}/meta").json()
    assert (meta["name"], meta["runtime"], meta["dimensions"]) == (name, runtime, dimensions)


# -- /vectors -----------------------------------------------------------------------------


def test_vectors_as_weaviate_sends_them(client: httpx.Client, local: PluginManager) -> None:
    body = (
        b'{"text":"hello world","dims":0,"vector":null,"error":"",'
        b'"config":{"pooling_strategy":"masked_mean","task_type":"passage"}}'
    )
    response = post_raw(client, "/vectors", body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["text"] == "hello world"
    assert answer["dim"] == 768 and answer["dims"] == 768
    expected = local.get_vectorizer("hash-embedder").vectorize_text("hello world")
    assert np.array_equal(np.asarray(answer["vector"], dtype=np.float32), expected)


def test_vectors_with_a_trailing_slash_and_no_config(client: httpx.Client) -> None:
    plain = post_raw(client, "/vectors", b'{"text": "abc"}').json()
    slash = post_raw(client, "/vectors/", b'{"text": "abc"}').json()
    empty_config = post_raw(client, "/vectors", b'{"text": "abc", "config": {}}').json()
    assert plain == slash == empty_config
    assert len(plain["vector"]) == 768


def test_vectors_with_a_json_content_type(client: httpx.Client) -> None:
    response = client.post("/vectors", json={"text": "abc", "config": None})
    assert response.status_code == 200 and len(response.json()["vector"]) == 768


def test_dimensions_truncate_and_renormalise(client: httpx.Client, local: PluginManager) -> None:
    text = "a rather long sentence so that the first values are not all zero at all"
    full = local.get_vectorizer("hash-embedder").vectorize_text(text).astype(np.float64)
    for dims in (768, 700, 64):
        body = json.dumps({"text": text, "config": {"dimensions": dims}}).encode()
        answer = post_raw(client, "/vectors", body).json()
        vector = np.asarray(answer["vector"])
        assert answer["dim"] == dims == vector.shape[0]
        head = full[:dims]
        assert np.allclose(vector, head / np.linalg.norm(head), atol=1e-6)


def test_query_and_passage_give_the_same_vector(client: httpx.Client) -> None:
    answers = [
        post_raw(client, "/vectors", json.dumps({"text": "q", "config": {"task_type": t}}).encode())
        for t in ("query", "passage", "")
    ]
    assert all(a.status_code == 200 for a in answers)
    assert answers[0].json() == answers[1].json() == answers[2].json()


def test_per_plugin_vectors_of_every_runtime(client: httpx.Client, local: PluginManager) -> None:
    expected = local.get_vectorizer("custom-embedder-native").vectorize_text("fox")
    for name in ("custom-embedder", "custom-embedder-native"):
        answer = post_raw(client, f"/inference/{name}/vectors", b'{"text": "fox"}').json()
        assert np.array_equal(np.asarray(answer["vector"], dtype=np.float32), expected), name
    grpc = post_raw(client, "/inference/grpc-embedder/vectors/", b'{"text": "fox"}').json()
    assert len(grpc["vector"]) == 768


def test_batch_form_of_newer_weaviate(client: httpx.Client, local: PluginManager) -> None:
    texts = ["one", "two", "three"]
    body = json.dumps({"texts": texts, "config": {"task_type": "passage"}}).encode()
    answer = post_raw(client, "/vectors", body).json()
    expected = local.get_vectorizer("hash-embedder").vectorize_batch(texts)
    assert answer["dim"] == 768
    assert np.array_equal(np.asarray(answer["vectors"], dtype=np.float32), expected)


def test_vectors_of_a_plugin_of_another_type(client: httpx.Client) -> None:
    response = post_raw(client, "/inference/bm25-lite/vectors", b'{"text": "x"}')
    assert response.status_code == 400
    assert "plugin 'bm25-lite' is a reranker, not a vectorizer" in response.json()["error"]
    response = post_raw(client, "/inference/nope/vectors", b'{"text": "x"}')
    assert response.status_code == 404
    assert re.match(r"no plugin named 'nope' \(loaded: .*hash-embedder", response.json()["error"])


# -- /rerank -------------------------------------------------------------------------------


def test_rerank_batch_form_in_input_order(client: httpx.Client, local: PluginManager) -> None:
    documents = ["a dog", "the red fox", "red", "a red red fox"]
    body = json.dumps({"query": "red fox", "documents": documents, "property": ""}).encode()
    answer = post_raw(client, "/rerank", body).json()
    ranked = local.get_reranker("bm25-lite").rerank("red fox", documents)
    expected = {r.index: r.score for r in ranked}
    assert answer == {
        "query": "red fox",
        "property": None,
        "score": None,
        "scores": [{"document": d, "score": expected[i]} for i, d in enumerate(documents)],
    }


def test_rerank_single_form(client: httpx.Client, local: PluginManager) -> None:
    body = b'{"query": "red fox", "property": "the red fox"}'
    answer = post_raw(client, "/rerank", body).json()
    (expected,) = local.get_reranker("bm25-lite").rerank("red fox", ["the red fox"])
    assert answer == {"query": "red fox", "property": "the red fox", "score": expected.score}


def test_rerank_empty_documents_and_per_plugin(client: httpx.Client) -> None:
    empty = post_raw(client, "/rerank", b'{"query": "q", "documents": []}').json()
    assert empty["scores"] == []
    for name in ("overlap-reranker", "overlap-reranker-native"):
        body = b'{"query": "red fox", "documents": ["blue", "red fox"]}'
        scores = post_raw(client, f"/inference/{name}/rerank", body).json()["scores"]
        assert [s["document"] for s in scores] == ["blue", "red fox"]
        assert scores[1]["score"] > scores[0]["score"]


def test_rerank_needs_documents_or_property(client: httpx.Client) -> None:
    response = post_raw(client, "/rerank", b'{"query": "q"}')
    assert response.status_code == 422
    assert "documents" in response.json()["error"]


# -- the cache -----------------------------------------------------------------------------


def _counter(client: httpx.Client, name: str, plugin: str) -> float:
    text = client.get("/metrics").text
    match = re.search(rf'^{name}{{plugin="{re.escape(plugin)}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_cache_serves_repeated_texts_with_the_same_answer(client: httpx.Client) -> None:
    text = b'{"text": "cache me if you can"}'
    hits = _counter(client, "weaviate_ext_serve_cache_hits_total", "hash-embedder")
    calls_before = client.get("/v1/plugins/hash-embedder").json()["stats"]["calls"]
    first = post_raw(client, "/vectors", text).json()
    after_first = client.get("/v1/plugins/hash-embedder").json()["stats"]["calls"]
    again = [post_raw(client, "/vectors", text).json() for _ in range(3)]
    after = client.get("/v1/plugins/hash-embedder").json()["stats"]["calls"]
    assert all(a == first for a in again)
    assert after_first == calls_before + 1
    assert after == after_first, "repeated texts did not reach the plugin"
    assert _counter(client, "weaviate_ext_serve_cache_hits_total", "hash-embedder") >= hits + 3


def test_cache_of_rerank_is_per_document_list(client: httpx.Client, local: PluginManager) -> None:
    # BM25 scores a document against the others: the same document in another list
    # scores differently, so a cached score must not be reused across lists
    reranker = local.get_reranker("bm25-lite")
    for documents in (["red fox", "dog"], ["red fox", "red", "red red"], ["red fox", "dog"]):
        body = json.dumps({"query": "red fox", "documents": documents}).encode()
        scores = [s["score"] for s in post_raw(client, "/rerank", body).json()["scores"]]
        expected = {r.index: r.score for r in reranker.rerank("red fox", documents)}
        assert scores == [expected[i] for i in range(len(documents))]


def test_non_deterministic_plugins_are_not_cached(client: httpx.Client) -> None:
    before = client.get("/v1/plugins/flaky").json()["stats"]["calls"]
    for _ in range(3):
        assert post_raw(client, "/inference/flaky/vectors", b'{"text": "same"}').status_code == 200
    assert client.get("/v1/plugins/flaky").json()["stats"]["calls"] == before + 3


def test_server_is_a_real_process(main_server: Server) -> None:
    assert main_server.process is not None and main_server.process.poll() is None
    assert main_server.url.startswith("http://127.0.0.1:")
