"""The native API (every plugin type, by name) and its OpenAPI description."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import httpx
import pytest
from conftest import API_KEY, ROOT, Server

from weaviate_ext.cli._list import LIST_COLUMNS


def test_plugins_list_is_what_list_json_shows(client: httpx.Client, main_server: Server) -> None:
    rows = client.get("/v1/plugins").json()
    assert all(list(row) == [*LIST_COLUMNS, "permissions"] for row in rows)
    by_name = {row["name"]: row for row in rows}
    assert by_name["grpc-embedder"]["runtime"] == "grpc"
    assert by_name["custom-embedder-native"]["runtime"] == "native"
    assert all(row["status"] == "loaded" for row in rows), rows
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "weaviate_ext",
            "--no-discover",
            "--plugins",
            str(main_server.info["plugins_dir"]),
            "list",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    for row in json.loads(listed.stdout):
        assert by_name[row["name"]] == row


def test_one_plugin(client: httpx.Client) -> None:
    client.post("/v1/plugins/text-normalizer/transform", json={"data": "x"})
    info = client.get("/v1/plugins/text-normalizer").json()
    assert info["name"] == "text-normalizer" and info["type"] == "transformer"
    assert info["stats"]["calls"] >= 1 and info["stats"]["in_flight"] == 0
    assert client.get("/v1/plugins/nope").status_code == 404


def test_vectorize(client: httpx.Client) -> None:
    many = client.post("/v1/plugins/grpc-embedder/vectorize", json={"texts": ["a", "b"]}).json()
    assert many["dim"] == 768 and len(many["vectors"]) == 2
    one = client.post("/v1/plugins/grpc-embedder/vectorize", json={"text": "a"}).json()
    assert one["vector"] == many["vectors"][0]
    short = client.post(
        "/v1/plugins/custom-embedder/vectorize", json={"text": "a", "dimensions": 32}
    ).json()
    assert short["dim"] == 32
    both = client.post("/v1/plugins/grpc-embedder/vectorize", json={"text": "a", "texts": ["b"]})
    assert both.status_code == 422
    wrong = client.post("/v1/plugins/bm25-lite/vectorize", json={"text": "a"})
    assert wrong.status_code == 400


def test_transform(client: httpx.Client) -> None:
    one = client.post("/v1/plugins/text-normalizer/transform", json={"data": "  Héllo\tWORLD  "})
    assert one.json() == {"plugin": "text-normalizer", "result": "héllo world"}
    many = client.post("/v1/plugins/text-normalizer/transform", json={"items": ["A  B", "C"]})
    assert many.json()["results"] == ["a b", "c"]
    assert client.post("/v1/plugins/text-normalizer/transform", json={}).status_code == 422
    refused = client.post("/v1/plugins/text-normalizer/transform", json={"data": 42})
    assert refused.status_code in (422, 502)
    assert refused.json()["plugin"] == "text-normalizer"


def test_rerank(client: httpx.Client) -> None:
    request = {"query": "red fox", "documents": ["a dog", "the red fox", "red"], "top_k": 2}
    for name in ("bm25-lite", "overlap-reranker-native", "overlap-reranker"):
        results = client.post(f"/v1/plugins/{name}/rerank", json=request).json()["results"]
        assert len(results) == 2
        assert results[0] == {
            "index": 1,
            "score": results[0]["score"],
            "document": "the red fox",
        }
        assert results[0]["score"] >= results[1]["score"]


@pytest.mark.parametrize(
    "name", ["extractive-summarizer", "extractive-generator", "grpc-extractive-generator"]
)
def test_generate_streams_ndjson(client: httpx.Client, name: str) -> None:
    prompt = "Weaviate stores vectors. Rerankers reorder results. Vectors power search."
    request = {"prompt": prompt, "options": {"max_tokens": 4}}
    with client.stream("POST", f"/v1/plugins/{name}/generate", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.iter_lines() if line]
    chunks = [line["chunk"] for line in lines[:-1]]
    assert lines[-1] == {"done": True, "text": "".join(chunks)}
    assert len(chunks) >= 2 and len("".join(chunks).split()) <= 4
    whole = client.post(f"/v1/plugins/{name}/generate", json={**request, "stream": False})
    assert whole.json() == {"plugin": name, "text": "".join(chunks)}


def test_generate_refuses_reserved_options(client: httpx.Client) -> None:
    request = {"prompt": "hi", "options": {"timeout": 1}}
    response = client.post("/v1/plugins/extractive-summarizer/generate", json=request)
    assert response.status_code == 422 and "timeout" in response.json()["error"]


def test_client_leaving_a_stream_ends_the_plugin_call(main_server: Server) -> None:
    words = " ".join(f"w{i}" for i in range(200))
    request = {"prompt": words, "options": {"delay": 0.02}}
    with (
        main_server.client() as http,
        http.stream("POST", "/v1/plugins/flaky-generator/generate", json=request) as response,
    ):
        lines = response.iter_lines()
        assert json.loads(next(lines)) == {"chunk": "w0"}
    # the server notices the closed connection and closes the plugin's stream
    with main_server.client() as http:
        for _ in range(200):
            stats = http.get("/v1/plugins/flaky-generator").json()["stats"]
            if stats["in_flight"] == 0:
                break
            time.sleep(0.05)
        assert stats["in_flight"] == 0


@pytest.mark.parametrize("name", ["file-store", "kv-store"])
def test_storage(client: httpx.Client, name: str) -> None:
    base = f"/v1/plugins/{name}"
    stored = client.post(f"{base}/store", json={"key": "greeting", "value": "héllo"}).json()
    assert stored == {"plugin": name, "key": "greeting", "stored": 6}
    got = client.post(f"{base}/retrieve", json={"key": "greeting"}).json()
    assert got["value"] == "héllo" and got["size"] == 6
    assert base64.b64decode(got["base64"]) == "héllo".encode()
    binary = base64.b64encode(b"\xff\x00\x01").decode()
    client.post(f"{base}/store", json={"key": "bin", "base64": binary})
    got = client.post(f"{base}/retrieve", json={"key": "bin"}).json()
    assert got["value"] is None and got["base64"] == binary
    assert client.post(f"{base}/delete", json={"key": "bin"}).json()["deleted"] is True
    assert client.post(f"{base}/delete", json={"key": "bin"}).json()["deleted"] is False
    missing = client.post(f"{base}/retrieve", json={"key": "bin"})
    assert missing.status_code == 404 and missing.json()["plugin"] == name
    assert client.post(f"{base}/retrieve", json={"key": ""}).status_code == 422
    bad = client.post(f"{base}/store", json={"key": "k", "base64": "***"})
    assert bad.status_code == 422
    assert client.post(f"{base}/store", json={"key": "k"}).status_code == 422


def test_authenticate_and_authorize(client: httpx.Client) -> None:
    base = "/v1/plugins/apikey-auth"
    known = client.post(f"{base}/authenticate", json={"credentials": {"api_key": API_KEY}})
    identity = known.json()["identity"]
    assert identity["subject"] == "reader" and identity["roles"] == ["reader"]
    assert identity["plugin"] == "apikey-auth"
    wrong = client.post(f"{base}/authenticate", json={"credentials": {"api_key": "nope"}}).json()
    assert wrong["identity"] is None and wrong["rejected"]
    other = client.post(f"{base}/authenticate", json={"credentials": {"user": "x"}}).json()
    assert other == {"plugin": "apikey-auth", "identity": None}

    def decision(**body: object) -> str:
        answer = client.post(f"{base}/authorize", json=body).json()
        return str(answer["decision"])

    credentials = {"api_key": API_KEY}
    assert decision(credentials=credentials, resource="docs", action="read") == "allow"
    assert decision(credentials=credentials, resource="docs", action="write") == "abstain"
    assert decision(credentials={"api_key": "x"}, resource="docs", action="read") == (
        "unauthenticated"
    )
    reader = {"subject": "someone", "roles": ["reader"]}
    assert decision(identity=reader, resource="docs-2", action="read") == "allow"
    missing = client.post(f"{base}/authorize", json={"resource": "d", "action": "a"})
    assert missing.status_code == 422


def test_openapi_document_describes_every_endpoint(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/.well-known/live",
        "/.well-known/ready",
        "/meta",
        "/vectors",
        "/rerank",
        "/inference/{name}/vectors",
        "/v1/embeddings",
        "/v1/chat/completions",
        "/v1/models",
        "/api/embed",
        "/api/generate",
        "/api/chat",
        "/v1/plugins",
        "/v1/plugins/{name}",
    ):
        assert path in paths, path
    for operation in (
        "vectorize",
        "transform",
        "rerank",
        "generate",
        "store",
        "retrieve",
        "delete",
        "authenticate",
        "authorize",
    ):
        assert "post" in paths[f"/v1/plugins/{{name}}/{operation}"], operation
    schemas = document["components"]["schemas"]
    assert {"VectorRequest", "RerankRequest", "OpenAIEmbeddingsRequest", "ErrorBody"} <= set(
        schemas
    )
    assert not any("__" in name for name in schemas), "every schema has a readable name"
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
