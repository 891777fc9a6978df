"""Keys, JWKS and tokens made by the tests (``cryptography``), and a local JWKS server.

Nothing is fetched from outside: the keys are generated per session, and the JWKS URL
tests use an HTTP server on 127.0.0.1 started and stopped by a fixture.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://issuer.test"
AUDIENCE = "weaviate-host"


class Signer:
    """A private key with its ``kid`` and JWS algorithm; makes tokens and its JWK."""

    def __init__(self, kid: str, alg: str) -> None:
        self.kid = kid
        self.alg = alg
        if alg.startswith("RS"):
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        self.jwk.update({"kid": kid, "use": "sig", "alg": alg})

    @property
    def public_pem(self) -> bytes:
        """The public key as PEM (what an HS256 confusion attack would use as secret)."""
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def token(
        self,
        claims: dict[str, Any] | None = None,
        *,
        drop: tuple[str, ...] = (),
        headers: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        """A signed token: valid standard claims, ``overrides`` applied, ``drop`` removed."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "roles": ["reader"],
            **(claims or {}),
            **overrides,
        }
        for name in drop:
            payload.pop(name, None)
        header = {"kid": self.kid, **(headers or {})}
        return jwt.encode(payload, self.private, algorithm=self.alg, headers=header)


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], payload: dict[str, Any], secret: bytes = b"") -> str:
    """A token built by hand: ``alg: none`` (empty signature) or HMAC-signed with ``secret``."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if not secret:
        return signing_input + "."
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture(scope="session")
def rsa_signer() -> Signer:
    """An RS256 key, ``kid`` rsa-1."""
    return Signer("rsa-1", "RS256")


@pytest.fixture(scope="session")
def ec_signer() -> Signer:
    """An ES256 key, ``kid`` ec-1."""
    return Signer("ec-1", "ES256")


@pytest.fixture(scope="session")
def impostor() -> Signer:
    """Another RS256 key claiming the same ``kid`` as ``rsa_signer``: wrong signatures."""
    return Signer("rsa-1", "RS256")


@pytest.fixture
def jwks(rsa_signer: Signer, ec_signer: Signer) -> dict[str, Any]:
    """The JWKS of the two trusted keys."""
    return {"keys": [rsa_signer.jwk, ec_signer.jwk]}


@pytest.fixture
def jwks_file(tmp_path: Path, jwks: dict[str, Any]) -> Path:
    """The JWKS written to a file."""
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    return path


@pytest.fixture
def manifest() -> Path:
    """The plugin.yaml shipped in the installed package."""
    return Path(str(files("weaviate_ext_jwt_auth") / "plugin.yaml"))


@pytest.fixture
def base_config(jwks_file: Path) -> dict[str, Any]:
    """A working config on the JWKS file."""
    return {"jwks_file": str(jwks_file), "issuer": ISSUER, "audience": AUDIENCE}


class JwksServer:
    """An HTTP server on 127.0.0.1 serving ``jwks`` at /jwks.json, counting requests."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.requests = 0
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = json.dumps(server.jwks).encode()
                self.send_response(server.status if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        """The JWKS URL."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def jwks_server(jwks: dict[str, Any]) -> Iterator[JwksServer]:
    """A local JWKS server for one test."""
    server = JwksServer(jwks)
    try:
        yield server
    finally:
        server.stop()
