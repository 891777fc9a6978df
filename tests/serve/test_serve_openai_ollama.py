"""The OpenAI- and Ollama-compatible endpoints, with plain HTTP and (when it is
installed) the official ``openai`` client library."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import EXAMPLES, Server

from weaviate_ext import PluginManager

PASSAGE = (
    "Weaviate stores objects and vectors. A reranker reorders search results. "
    "Bread is baked from flour. Search results come from vectors and a reranker."
)


@pytest.fixture(scope="module")
def local() -> Iterator[PluginManager]:
    """The default vectorizer and generator of the main server, in this process."""
    with PluginManager(discover=False) as manager:
        manager.load(EXAMPLES / "python-hash-vectorizer" / "plugin.yaml")
        manager.load(EXAMPLES / "python-extractive-generator" / "plugin.yaml")
        yield manager


def sse_events(response: httpx.Response) -> list[str]:
    """The ``data:`` payloads of a server-sent event stream."""
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


# -- /v1/embeddings --------------------------------------------------------------------------


def test_embeddings_of_a_string_and_a_list(client: httpx.Client, local: PluginManager) -> None:
    handle = local.get_vectorizer("hash-embedder")
    one = client.post("/v1/embeddings", json={"input": "hello", "model": "text-embedding-3-small"})
    assert one.status_code == 200
    body = one.json()
    assert body["object"] == "list" and body["model"] == "hash-embedder"
    assert body["usage"] == {"prompt_tokens": 1, "total_tokens": 1}
    (item,) = body["data"]
    assert item["object"] == "embedding" and item["index"] == 0
    vector = np.asarray(item["embedding"], dtype=np.float32)
    assert np.array_equal(vector, handle.vectorize_text("hello"))
    many = client.post("/v1/embeddings", json={"input": ["a b", "c"]}).json()
    assert [d["index"] for d in many["data"]] == [0, 1]
    assert many["usage"]["prompt_tokens"] == 3


def test_embeddings_base64_and_dimensions(client: httpx.Client, local: PluginManager) -> None:
    text = "a longer text whose first values are not zero, hopefully"
    request = {"input": [text], "encoding_format": "base64", "dimensions": 128}
    encoded = client.post("/v1/embeddings", json=request).json()["data"][0]["embedding"]
    vector = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    full = local.get_vectorizer("hash-embedder").vectorize_text(text).astype(np.float64)
    assert vector.shape == (128,)
    assert np.allclose(vector, full[:128] / np.linalg.norm(full[:128]), atol=1e-6)


def test_embeddings_pick_a_named_plugin(client: httpx.Client) -> None:
    body = client.post("/v1/embeddings", json={"input": "x", "model": "flaky"}).json()
    assert body["model"] == "flaky" and len(body["data"][0]["embedding"]) == 8
    wrong = client.post("/v1/embeddings", json={"input": "x", "model": "bm25-lite"})
    assert wrong.status_code == 400
    error = wrong.json()["error"]
    assert error["message"] == "model 'bm25-lite' is a reranker, not a vectorizer"
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"input": []}, 422, "input must not be empty"),
        ({"input": ["ok", ""]}, 422, "input[1] must not be empty"),
        ({"input": [1, 2, 3]}, 422, "input"),
        ({"input": "x", "encoding_format": "int8"}, 422, "encoding_format"),
        ({"model": "x"}, 422, "input: Field required"),
    ],
)
def test_embeddings_errors_have_openais_shape(
    client: httpx.Client, body: dict[str, Any], status: int, message: str
) -> None:
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert message in error["message"]


# -- /v1/chat/completions --------------------------------------------------------------------


def test_chat_completion(client: httpx.Client, local: PluginManager) -> None:
    request = {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": ""}, {"role": "user", "content": PASSAGE}],
        "max_tokens": 6,
    }
    body = client.post("/v1/chat/completions", json=request).json()
    expected = local.get_generator("extractive-summarizer").generate(PASSAGE, max_tokens=6)
    assert body["object"] == "chat.completion" and body["model"] == "extractive-summarizer"
    assert body["id"].startswith("chatcmpl-")
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": expected}
    assert choice["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 6


def test_chat_completion_stream(client: httpx.Client) -> None:
    request = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": PASSAGE}]}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    whole = client.post("/v1/chat/completions", json={**request, "stream": False}).json()
    with client.stream("POST", "/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    content_chunks = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content_chunks) > 3, "streamed word by word"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_chat_stream_error_mid_stream_and_at_once(client: httpx.Client) -> None:
    request = {
        "model": "flaky-generator",
        "messages": [{"role": "user", "content": "one two explode"}],
        "stream": True,
    }
    with client.stream("POST", "/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        events = sse_events(response)
    last = json.loads(events[-1])
    assert "exploded mid-stream" in last["error"]["message"]
    assert "flaky-generator" in last["error"]["message"]
    request["messages"] = [{"role": "user", "content": "fail now"}]
    response = client.post("/v1/chat/completions", json=request)
    assert response.status_code == 502
    assert "failed at once" in response.json()["error"]["message"]


def test_chat_refuses_what_it_cannot_do(client: httpx.Client) -> None:
    base = {"messages": [{"role": "user", "content": "hi"}]}
    assert client.post("/v1/chat/completions", json={**base, "n": 2}).status_code == 422
    image = {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}
    response = client.post("/v1/chat/completions", json=image)
    assert response.status_code == 422
    assert "only text content" in response.json()["error"]["message"]
    assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 422


def test_models(client: httpx.Client) -> None:
    data = client.get("/v1/models").json()["data"]
    ids = {m["id"] for m in data}
    assert {"hash-embedder", "grpc-embedder", "bm25-lite", "extractive-summarizer"} <= ids
    assert "file-store" not in ids
    assert client.get("/v1/models/grpc-embedder").json()["owned_by"] == "weaviate-ext:vectorizer"
    missing = client.get("/v1/models/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_the_official_openai_client(main_server: Server, local: PluginManager) -> None:
    openai = pytest.importorskip("openai")
    api = openai.OpenAI(base_url=f"{main_server.url}/v1", api_key="unused", max_retries=0)
    try:
        # the client asks for base64 by default and decodes it itself
        result = api.embeddings.create(model="text-embedding-3-small", input=["hello", "fox"])
        expected = local.get_vectorizer("hash-embedder").vectorize_batch(["hello", "fox"])
        got = np.asarray([d.embedding for d in result.data], dtype=np.float32)
        assert np.array_equal(got, expected)
        messages = [{"role": "user", "content": PASSAGE}]
        whole = api.chat.completions.create(model="gpt-4o-mini", messages=messages)
        answer = whole.choices[0].message.content
        assert answer == local.get_generator("extractive-summarizer").generate(PASSAGE)
        stream = api.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert streamed == answer
        with pytest.raises(openai.BadRequestError, match="is a reranker"):
            api.embeddings.create(model="bm25-lite", input="x")
    finally:
        api.close()


# -- Ollama ----------------------------------------------------------------------------------


def test_ollama_embed(client: httpx.Client, local: PluginManager) -> None:
    handle = local.get_vectorizer("hash-embedder")
    body = client.post("/api/embed", content=b'{"model":"nomic-embed-text","input":["a","b"]}')
    assert body.status_code == 200
    answer = body.json()
    assert answer["model"] == "hash-embedder"
    matrix = np.asarray(answer["embeddings"], dtype=np.float32)
    assert np.array_equal(matrix, handle.vectorize_batch(["a", "b"]))
    one = client.post("/api/embed", json={"input": "a"}).json()
    assert one["embeddings"] == answer["embeddings"][:1]
    legacy = client.post("/api/embeddings", json={"model": "x", "prompt": "a"}).json()
    assert legacy["embedding"] == answer["embeddings"][0]
    empty = client.post("/api/embed", json={"input": []})
    assert empty.json() == {"error": "input must not be empty"}


def test_ollama_generate_streams_ndjson(client: httpx.Client, local: PluginManager) -> None:
    expected = local.get_generator("extractive-summarizer").generate(PASSAGE, max_tokens=5)
    request = {"model": "llama3", "prompt": PASSAGE, "options": {"num_predict": 5}}
    with client.stream("POST", "/api/generate", json=request) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert all(line["model"] == "extractive-summarizer" for line in lines)
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert "".join(line["response"] for line in lines) == expected
    assert lines[-1]["done_reason"] == "stop" and lines[-1]["eval_count"] == len(lines) - 1
    whole = client.post("/api/generate", json={**request, "stream": False}).json()
    assert whole["response"] == expected and whole["done"] is True


def test_ollama_generate_as_weaviate_sends_it(client: httpx.Client) -> None:
    body = json.dumps({"model": "llama3", "prompt": PASSAGE, "stream": False}).encode()
    response = client.post("/api/generate", content=body)
    assert response.status_code == 200 and response.json()["response"]


def test_ollama_generate_empty_prompt_and_errors(client: httpx.Client) -> None:
    load = client.post("/api/generate", json={"prompt": ""}).json()
    assert load["done"] is True and load["done_reason"] == "load" and load["response"] == ""
    request = {"model": "flaky-generator", "prompt": "one two explode"}
    with client.stream("POST", "/api/generate", json=request) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [line.get("response") for line in lines[:-1]] == ["one", " two"]
    assert "exploded mid-stream" in lines[-1]["error"]
    assert lines[-1]["plugin"] == "flaky-generator"
    too_long = client.post("/api/generate", json={"prompt": "x" * 3000})
    assert too_long.status_code == 413


def test_ollama_chat(client: httpx.Client) -> None:
    request = {"model": "flaky-generator", "messages": [{"role": "user", "content": "a b c"}]}
    with client.stream("POST", "/api/chat", json=request) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert "".join(line["message"]["content"] for line in lines) == "a b c"
    assert lines[-1]["done"] is True
    whole = client.post("/api/chat", json={**request, "stream": False}).json()
    assert whole["message"] == {"role": "assistant", "content": "a b c"}


def test_ollama_tags_and_version(client: httpx.Client) -> None:
    names = {m["name"] for m in client.get("/api/tags").json()["models"]}
    assert {"hash-embedder", "extractive-summarizer", "grpc-extractive-generator"} <= names
    assert client.get("/api/version").json()["version"]
