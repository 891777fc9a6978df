"""Bearer-token authentication: tokens from the environment, a flag and a file, or an
auth plugin; liveness, readiness and the API description stay open. (Every other test
runs against a server without authentication.)"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import API_KEY, EXAMPLES, Server, auth_config, running, write_config

TOKENS = ("tok-a-3f9e", "tok-b-77c1", "tok-c-flag-0d2a", "tok-d-file-91bb")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("auth")
    token_file = root / "tokens.txt"
    token_file.write_text(f"# accepted tokens\n{TOKENS[3]}\n")
    config = write_config(root / "host.yaml", {"apikey-auth": auth_config()})
    args = [
        "--plugin",
        str(EXAMPLES / "python-hash-vectorizer" / "plugin.yaml"),
        "--plugin",
        str(EXAMPLES / "python-apikey-auth" / "plugin.yaml"),
        "--auth-token",
        TOKENS[2],
        "--auth-token-file",
        str(token_file),
        "--auth-plugins",
    ]
    with running(
        args,
        root / "server.log",
        env={"AUTHENTICATION_ALLOWED_TOKENS": f"{TOKENS[0]}, {TOKENS[1]}"},
        global_args=["--config-file", str(config)],
    ) as started:
        yield started


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_liveness_readiness_and_docs_stay_open(http: httpx.Client) -> None:
    assert http.get("/.well-known/live").status_code == 204
    assert http.get("/.well-known/ready").status_code == 204
    # per-plugin readiness names a plugin: it needs a token (see test_serve_input_hygiene)
    assert http.get("/inference/hash-embedder/.well-known/ready").status_code == 401
    ready = http.get("/inference/hash-embedder/.well-known/ready", headers=bearer(TOKENS[0]))
    assert ready.status_code == 204
    assert http.get("/openapi.json").status_code == 200
    assert http.get("/docs").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong"),
        {"Authorization": f"Basic {TOKENS[0]}"},
        {"Authorization": "Bearer"},
        {"Authorization": TOKENS[0]},
        bearer("nope-" + API_KEY),
    ],
)
def test_requests_without_a_valid_token_get_401(
    http: httpx.Client, headers: dict[str, str]
) -> None:
    for method, path in (
        ("POST", "/vectors"),
        ("GET", "/meta"),
        ("POST", "/rerank"),
        ("GET", "/v1/plugins"),
        ("GET", "/metrics"),
        ("POST", "/api/embed"),
        ("GET", "/no-such-path"),
    ):
        response = http.request(method, path, content=b'{"text": "x"}', headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.json() == {"error": "Unauthorized"}
        assert response.headers["www-authenticate"] == "Bearer"


def test_unauthenticated_requests_learn_nothing_about_the_body(http: httpx.Client) -> None:
    response = http.post("/vectors", content=b"{not json")
    assert response.status_code == 401


def test_openai_endpoints_answer_401_in_openais_shape(http: httpx.Client) -> None:
    response = http.post("/v1/embeddings", json={"input": "x"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Unauthorized"
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("token", [*TOKENS, API_KEY])
def test_every_token_source_and_the_auth_plugin(http: httpx.Client, token: str) -> None:
    response = http.post("/vectors", content=b'{"text": "x"}', headers=bearer(token))
    assert response.status_code == 200, response.text
    assert len(response.json()["vector"]) == 768
    models = http.get("/v1/models", headers=bearer(token))
    assert models.status_code == 200


def test_tokens_are_not_logged(server: Server, http: httpx.Client) -> None:
    http.post("/vectors", content=b'{"text": "x"}', headers=bearer(TOKENS[2]))
    log = server.logs()
    assert "POST /vectors" in log
    assert not any(token in log for token in TOKENS)
    assert API_KEY not in log
