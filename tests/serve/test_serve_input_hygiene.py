"""Input hygiene: what JSON can spell but no plugin can take is refused before any
plugin is called, on every endpoint; HEAD works wherever GET does; an unknown plugin
name is a 404 only for a caller who passed authentication.

The app runs in this process with real example plugins (Python, WebAssembly, native)
and bearer-token authentication on. "The plugin was not called" is read from the
handle's call counters, which count every call that reached the plugin, failed or not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES
from inprocess import TOKEN, example_app, wait_ready
from starlette.testclient import TestClient

from weaviate_ext import InvalidInput, PluginManager

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LONE = "\ud800"
"""A lone surrogate: a JSON ``"\\ud800"`` escape parses to it; UTF-8 cannot encode it."""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = example_app(tmp_path_factory.mktemp("hygiene"))
    with TestClient(app, raise_server_exceptions=False) as http:
        wait_ready(http)
        yield http


def manager_of(client: TestClient) -> PluginManager:
    manager = client.app.state.serve.manager  # type: ignore[attr-defined]
    assert manager is not None
    return manager


def calls(client: TestClient) -> dict[str, int]:
    """Calls that reached each plugin so far (succeeded or failed)."""
    manager = manager_of(client)
    return {name: manager.get(name).stats.calls for name in manager.names()}


def raw(value: Any) -> str:
    """``value`` as JSON text, lone surrogates escaped as ``\\udXXX`` (the way an
    attacker sends them) and non-finite floats as ``NaN`` / ``Infinity``."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


def message_of(response: Any) -> str:
    error = response.json()["error"]
    return error["message"] if isinstance(error, dict) else error


def post(client: TestClient, path: str, body: Any) -> Any:
    return client.post(path, content=raw(body).encode("ascii"), headers=AUTH)


# -- text that cannot be encoded as UTF-8 ----------------------------------------------------

CHAT = [{"role": "user", "content": "hi there"}]

SURROGATE_CASES = [
    ("/vectors", {"text": f"ok {LONE}"}, "text"),
    ("/vectors", {"texts": ["a", LONE]}, "texts[1]"),
    ("/vectors/", {"texts": [LONE]}, "texts[0]"),
    ("/inference/custom-embedder/vectors", {"text": LONE}, "text"),
    ("/rerank", {"query": "q", "documents": ["a", LONE]}, "documents[1]"),
    ("/rerank", {"query": LONE, "property": "x"}, "query"),
    ("/inference/overlap-reranker/rerank", {"query": "q", "property": LONE}, "property"),
    ("/v1/embeddings", {"input": ["a", "b", "c", LONE]}, "input[3]"),
    ("/v1/embeddings", {"input": LONE, "model": "custom-embedder-native"}, "input"),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": LONE}]},
        "messages[0].content",
    ),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": LONE}]}]},
        "messages[0].content[0].text",
    ),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "stop": LONE},
        "stop",
    ),
    ("/api/embed", {"input": [LONE]}, "input[0]"),
    ("/api/embeddings", {"prompt": LONE}, "prompt"),
    ("/api/generate", {"prompt": LONE, "stream": False}, "prompt"),
    ("/api/generate", {"prompt": "hi", "system": LONE}, "system"),
    ("/api/generate", {"prompt": "hi", "options": {"stop": ["x", LONE]}}, "options.stop[1]"),
    ("/api/chat", {"messages": [{"role": "user", "content": LONE}]}, "messages[0].content"),
    ("/v1/plugins/custom-embedder-native/vectorize", {"texts": ["a", LONE]}, "texts[1]"),
    ("/v1/plugins/hash-embedder/vectorize", {"text": LONE}, "text"),
    ("/v1/plugins/text-normalizer/transform", {"data": LONE}, "data"),
    ("/v1/plugins/text-normalizer/transform", {"items": ["a", LONE]}, "items[1]"),
    ("/v1/plugins/text-normalizer/transform", {"data": {"a b": [LONE]}}, "data['a b'][0]"),
    ("/v1/plugins/bm25-lite/rerank", {"query": LONE, "documents": ["a"]}, "query"),
    ("/v1/plugins/overlap-reranker/rerank", {"query": "q", "documents": [LONE]}, "documents[0]"),
    ("/v1/plugins/extractive-generator/generate", {"prompt": LONE}, "prompt"),
    ("/v1/plugins/extractive-summarizer/generate", {"prompt": LONE, "stream": False}, "prompt"),
    ("/v1/plugins/file-store/store", {"key": LONE, "value": "v"}, "key"),
    ("/v1/plugins/kv-store/store", {"key": "k", "value": LONE}, "value"),
    ("/v1/plugins/file-store/retrieve", {"key": f"k{LONE}"}, "key"),
    ("/v1/plugins/kv-store/delete", {"key": LONE}, "key"),
    (
        "/v1/plugins/apikey-auth/authenticate",
        {"credentials": {"api_key": LONE}},
        "credentials.api_key",
    ),
    (
        "/v1/plugins/apikey-auth/authorize",
        {"identity": {"subject": "s"}, "resource": LONE, "action": "read"},
        "resource",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "field"), SURROGATE_CASES, ids=[f"{p} {f}" for p, _, f in SURROGATE_CASES]
)
def test_a_lone_surrogate_is_a_422_naming_the_field_before_any_plugin_call(
    client: TestClient, caplog: pytest.LogCaptureFixture, path: str, body: Any, field: str
) -> None:
    before = calls(client)
    with caplog.at_level(logging.WARNING, logger="weaviate_ext"):
        response = post(client, path, body)
    assert response.status_code == 422, response.text
    message = message_of(response)
    assert message.startswith(f"invalid request: {field}: not valid Unicode text"), message
    assert "U+D800" in message
    assert calls(client) == before, "a plugin was called"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_lone_surrogate_in_a_key_of_the_body_is_refused(client: TestClient) -> None:
    response = post(client, "/api/generate", {"prompt": "hi", "options": {LONE: 1}})
    assert response.status_code == 422
    assert message_of(response).startswith("invalid request: options: a key is not valid")


def test_valid_non_ascii_text_still_works(client: TestClient) -> None:
    response = post(client, "/v1/embeddings", {"input": ["héllo wörld 🦊", "日本語"]})
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 2


# -- NaN and infinities ------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")

NUMBER_CASES = [
    ("/v1/chat/completions", {"messages": CHAT, "temperature": NAN}, "temperature"),
    ("/v1/chat/completions", {"messages": CHAT, "top_p": INF}, "top_p"),
    ("/api/generate", {"prompt": "hi", "options": {"temperature": NAN}}, "options.temperature"),
    ("/api/generate", {"prompt": "hi", "options": {"top_p": -INF}}, "options.top_p"),
    ("/api/chat", {"messages": CHAT, "options": {"num_predict": INF}}, "options.num_predict"),
    (
        "/v1/plugins/extractive-generator/generate",
        {"prompt": "hi", "options": {"temperature": NAN}},
        "options.temperature",
    ),
    ("/v1/plugins/text-normalizer/transform", {"items": [1.0, NAN]}, "items[1]"),
    (
        "/v1/plugins/apikey-auth/authorize",
        {"identity": {"subject": "s", "claims": {"w": INF}}, "resource": "d", "action": "r"},
        "identity.claims.w",
    ),
    ("/vectors", {"text": "x", "config": {"dimensions": NAN}}, "config.dimensions"),
]


@pytest.mark.parametrize(
    ("path", "body", "field"), NUMBER_CASES, ids=[f"{p} {f}" for p, _, f in NUMBER_CASES]
)
def test_nan_and_infinity_are_a_422_naming_the_field(
    client: TestClient, path: str, body: Any, field: str
) -> None:
    before = calls(client)
    response = post(client, path, body)
    assert response.status_code == 422, response.text
    assert message_of(response).startswith(f"invalid request: {field}: "), response.text
    assert "is not a finite number" in message_of(response)
    assert calls(client) == before, "a plugin was called"


def test_nan_from_a_python_client_and_1e999_are_refused(client: TestClient) -> None:
    # the standard library's json (and requests, aiohttp ... with it) writes float("nan")
    # as a bare NaN unless told not to
    body = json.dumps({"messages": CHAT, "temperature": NAN})
    assert "NaN" in body
    response = client.post("/v1/chat/completions", content=body, headers=AUTH)
    assert response.status_code == 422
    assert "temperature: nan is not a finite number" in message_of(response)
    huge = b'{"prompt": "hi", "stream": false, "options": {"temperature": 1e999}}'
    response = client.post("/api/generate", content=huge, headers=AUTH)
    assert response.status_code == 422
    assert "options.temperature: inf is not a finite number" in message_of(response)


def test_finite_options_still_work(client: TestClient) -> None:
    body = {"prompt": "One. Two.", "stream": False, "options": {"temperature": 0.5}}
    assert post(client, "/api/generate", body).status_code == 200
    body = {"messages": CHAT, "temperature": 0.2, "top_p": 1}
    assert post(client, "/v1/chat/completions", body).status_code == 200


# -- the handles refuse text UTF-8 cannot encode, for every runtime -------------------------------


@pytest.fixture(scope="module")
def manager() -> Iterator[PluginManager]:
    with PluginManager(discover=False) as loaded:
        for path in (
            "python-bm25-reranker/plugin.yaml",
            "c-reranker/plugin.yaml",
            "c-reranker/plugin-native.yaml",
            "python-extractive-generator/plugin.yaml",
            "c-generator/plugin.yaml",
            "python-hash-vectorizer/plugin.yaml",
        ):
            loaded.load(EXAMPLES / path)
        yield loaded


def test_handles_refuse_a_lone_surrogate_naming_its_place(manager: PluginManager) -> None:
    rerankers = manager.names("reranker")
    assert len(rerankers) == 3  # python, wasm, native
    for name in rerankers:
        handle = manager.get_reranker(name)
        with pytest.raises(InvalidInput, match=r"^query is not valid Unicode text.*position 2"):
            handle.rerank(f"ab{LONE}", ["doc"])
        with pytest.raises(InvalidInput, match=r"^documents\[1\] is not valid Unicode text"):
            handle.rerank("q", ["fine", LONE])
        assert handle.stats.calls == 0, name
    for name in manager.names("generator"):
        generator = manager.get_generator(name)
        with pytest.raises(InvalidInput, match="^prompt is not valid Unicode text"):
            generator.generate(LONE)
        with pytest.raises(InvalidInput, match="^prompt is not valid Unicode text"):
            generator.generate_stream(LONE)
        assert generator.stats.calls == 0, name
    vectorizer = manager.get_vectorizer("hash-embedder")
    with pytest.raises(InvalidInput, match=r"^texts\[0\] is not valid Unicode text"):
        vectorizer.vectorize_batch([LONE, "b"])
    with pytest.raises(InvalidInput, match=r"^text is not valid Unicode text.*position 1"):
        vectorizer.vectorize_text(f"é{LONE}")
    assert vectorizer.stats.calls == 0
    assert vectorizer.vectorize_text("ünïcode ✓").shape == (768,)
    assert manager.get_reranker(rerankers[0]).rerank("q", ["ünïcode ✓"])[0].index == 0


# -- HEAD wherever GET -------------------------------------------------------------------------

GET_PATHS = [
    "/.well-known/live",
    "/.well-known/ready",
    "/inference/hash-embedder/.well-known/live",
    "/inference/hash-embedder/.well-known/ready",
    "/meta",
    "/inference/custom-embedder/meta",
    "/v1/models",
    "/v1/models/hash-embedder",
    "/api/tags",
    "/api/version",
    "/v1/plugins",
    "/v1/plugins/kv-store",
    "/openapi.json",
    "/metrics",
]


@pytest.mark.parametrize("path", GET_PATHS)
def test_head_answers_like_get_without_a_body(client: TestClient, path: str) -> None:
    get = client.get(path, headers=AUTH)
    head = client.head(path, headers=AUTH)
    assert get.status_code in (200, 204)
    assert head.status_code == get.status_code
    assert head.content == b""
    assert head.headers.get("content-type") == get.headers.get("content-type")


def test_head_is_refused_like_get(client: TestClient) -> None:
    assert client.head("/meta").status_code == 401  # no token
    assert client.head("/v1/plugins/nope", headers=AUTH).status_code == 404
    refused = client.head("/vectors", headers=AUTH)  # POST only
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"


# -- unknown plugin names: 404, only after authentication ----------------------------------------

NAMED_PATHS = [
    ("GET", "/inference/{}/.well-known/ready"),
    ("GET", "/inference/{}/.well-known/live"),
    ("GET", "/inference/{}/meta"),
    ("POST", "/inference/{}/vectors"),
    ("GET", "/v1/plugins/{}"),
    ("POST", "/v1/plugins/{}/vectorize"),
]


@pytest.mark.parametrize(("method", "template"), NAMED_PATHS)
def test_an_unauthenticated_caller_cannot_tell_which_names_exist(
    client: TestClient, method: str, template: str
) -> None:
    body = {"text": "hello"}
    answers = []
    for name in ("hash-embedder", "no-such-plugin"):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            kwargs: dict[str, Any] = {"headers": headers}
            if method == "POST":
                kwargs["json"] = body
            response = client.request(method, template.format(name), **kwargs)
            answers.append((response.status_code, response.content))
    assert set(answers) == {(401, b'{"error":"Unauthorized"}')}


@pytest.mark.parametrize(("method", "template"), NAMED_PATHS)
def test_an_unknown_name_is_a_404_for_an_authenticated_caller(
    client: TestClient, method: str, template: str
) -> None:
    kwargs: dict[str, Any] = {"headers": AUTH}
    if method == "POST":
        kwargs["json"] = {"text": "hello"}
    response = client.request(method, template.format("no-such-plugin"), **kwargs)
    assert response.status_code == 404, response.text
    known = client.request(method, template.format("hash-embedder"), **kwargs)
    assert known.status_code in (200, 204), known.text


def test_the_server_readiness_stays_open(client: TestClient) -> None:
    assert client.get("/.well-known/ready").status_code == 204
    assert client.get("/.well-known/live").status_code == 204
    assert client.head("/.well-known/ready").status_code == 204


def test_unknown_plugin_readiness_without_auth_is_404(tmp_path: Path) -> None:
    app = example_app(tmp_path, tokens=())
    with TestClient(app) as http:
        wait_ready(http)
        missing = http.get("/inference/nope/.well-known/ready")
        assert missing.status_code == 404
        assert missing.json() == {"error": "no plugin named 'nope'"}
        assert http.get("/inference/kv-store/.well-known/ready").status_code == 204
