"""Remote grpc plugins over TLS (``spec.tls``): server CA, server name, mutual TLS.

Each test starts the SDK's server for a small reranker in this process, on
127.0.0.1 with TLS, using a throwaway CA made with ``cryptography``
(:class:`grpc_helpers.Authority`), and loads a manifest that points at it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from grpc_helpers import Authority, fake_dns

from weaviate_ext import PluginLoadError, PluginManager
from weaviate_ext.sdk import RerankerPlugin
from weaviate_ext.sdk.server import build_server
from weaviate_ext.testing import check_plugin

SERVER_NAME = "reranker.plugins.test"


class Overlap(RerankerPlugin):
    """Scores a document by the query words it contains."""

    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        words = set(query.lower().split())
        return [float(len(words & set(d.lower().split()))) for d in documents]


class Pki:
    """A CA with a server certificate for SERVER_NAME and a client certificate."""

    def __init__(self) -> None:
        self.ca = Authority()
        self.server_cert, self.server_key = self.ca.issue(SERVER_NAME, server=True)
        self.client_cert, self.client_key = self.ca.issue("weaviate-host", server=False)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


Serve = Callable[..., int]


@pytest.fixture
def serve(pki: Pki) -> Iterator[Serve]:
    """Start a TLS reranker service on 127.0.0.1; returns its port. Stopped after the test."""
    servers: list[grpc.Server] = []

    def start(*, client_ca: bytes | None = None) -> int:
        server, _ = build_server(Overlap(), max_workers=4)
        credentials = grpc.ssl_server_credentials(
            [(pki.server_key, pki.server_cert)],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
        assert port
        server.start()
        servers.append(server)
        return int(port)

    yield start
    for server in servers:
        server.stop(grace=0).wait(5)


@pytest.fixture(autouse=True)
def _short_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_START_TIMEOUT", "3")


def remote_manifest(
    directory: Path,
    port: int,
    tls: str | None,
    files: dict[str, bytes],
    host: str = "127.0.0.1",
) -> Path:
    (directory / "certs").mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / "certs" / name).write_bytes(data)
    path = directory / "plugin.yaml"
    path.write_text(
        "apiVersion: weaviate.io/v1\nkind: Plugin\n"
        "metadata: {name: tls-reranker, version: 1.0.0}\n"
        f"spec:\n  type: reranker\n  runtime: grpc\n  address: dns:///{host}:{port}\n"
        "  timeout: 10s\n  capabilities: {deterministic: true}\n"
        + (f"  tls: {tls}\n" if tls is not None else "")
    )
    return path


def test_reachable_with_the_right_ca(
    serve: Serve, pki: Pki, manager: PluginManager, tmp_path: Path
) -> None:
    port = serve()
    tls = f"{{ca: certs/ca.pem, serverName: {SERVER_NAME}}}"
    manager.load(remote_manifest(tmp_path, port, tls, {"ca.pem": pki.ca.pem}))
    handle = manager.get_reranker("tls-reranker")
    top = handle.rerank("vector search", ["cooking", "vector search engine", "vector"])
    assert [r.index for r in top] == [1, 2, 0]
    check_plugin(handle).raise_for_failures()
    assert manager.registry.get_plugin("tls-reranker").plugin_health() is True


def test_a_dns_name_is_verified_against_the_certificate_per_replica(
    serve: Serve,
    pki: Pki,
    manager: PluginManager,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Remote mode connects to each resolved IP on its own, yet TLS checks the name of
    the address (no serverName needed), as gRPC's own resolver would."""
    fake_dns(monkeypatch, {SERVER_NAME: ["127.0.0.1"]})
    port = serve()
    files = {"ca.pem": pki.ca.pem}
    manager.load(remote_manifest(tmp_path, port, "{ca: certs/ca.pem}", files, host=SERVER_NAME))
    handle = manager.get_reranker("tls-reranker")
    assert handle.rerank("a b", ["a", "a b", "c"])[0].index == 1
    replicas = manager.registry.get_plugin("tls-reranker").connection.service.replicas
    assert [r.address for r in replicas] == [f"127.0.0.1:{port}"]


def test_refused_with_a_wrong_ca(
    serve: Serve, manager: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_START_TIMEOUT", "30")
    port = serve()
    tls = f"{{ca: certs/ca.pem, serverName: {SERVER_NAME}}}"
    manifest = remote_manifest(tmp_path, port, tls, {"ca.pem": Authority("another CA").pem})
    started = time.monotonic()
    with pytest.raises(PluginLoadError) as caught:
        manager.load(manifest)
    assert time.monotonic() - started < 10, "a TLS refusal should not wait for the timeout"
    message = str(caught.value)
    assert f"service at dns:///127.0.0.1:{port}: refused the TLS connection" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert "tls-reranker" not in manager.names()


def test_refused_when_the_name_does_not_match(
    serve: Serve, pki: Pki, manager: PluginManager, tmp_path: Path
) -> None:
    port = serve()  # the certificate names SERVER_NAME only, not 127.0.0.1
    manifest = remote_manifest(tmp_path, port, "{ca: certs/ca.pem}", {"ca.pem": pki.ca.pem})
    with pytest.raises(PluginLoadError, match=r"refused the TLS connection: .*Hostname"):
        manager.load(manifest)


def test_mutual_tls_with_a_client_certificate(
    serve: Serve, pki: Pki, manager: PluginManager, tmp_path: Path
) -> None:
    port = serve(client_ca=pki.ca.pem)
    tls = (
        "{ca: certs/ca.pem, cert: certs/client.pem, key: certs/client.key, "
        f"serverName: {SERVER_NAME}}}"
    )
    files = {"ca.pem": pki.ca.pem, "client.pem": pki.client_cert, "client.key": pki.client_key}
    manager.load(remote_manifest(tmp_path, port, tls, files))
    handle = manager.get_reranker("tls-reranker")
    assert handle.rerank("a b", ["a", "a b", "c"])[0].index == 1
    check_plugin(handle).raise_for_failures()


def test_mutual_tls_refuses_a_host_without_a_client_certificate(
    serve: Serve, pki: Pki, manager: PluginManager, tmp_path: Path
) -> None:
    port = serve(client_ca=pki.ca.pem)
    tls = f"{{ca: certs/ca.pem, serverName: {SERVER_NAME}}}"
    manifest = remote_manifest(tmp_path, port, tls, {"ca.pem": pki.ca.pem})
    with pytest.raises(PluginLoadError) as caught:
        manager.load(manifest)
    message = str(caught.value)
    assert "accepted no connection within 3s" in message
    assert "requires a client certificate: spec.tls.cert and spec.tls.key" in message


def test_mutual_tls_refuses_a_client_certificate_of_another_ca(
    serve: Serve, pki: Pki, manager: PluginManager, tmp_path: Path
) -> None:
    port = serve(client_ca=pki.ca.pem)
    stranger_cert, stranger_key = Authority("stranger").issue("intruder", server=False)
    tls = (
        "{ca: certs/ca.pem, cert: certs/client.pem, key: certs/client.key, "
        f"serverName: {SERVER_NAME}}}"
    )
    files = {"ca.pem": pki.ca.pem, "client.pem": stranger_cert, "client.key": stranger_key}
    with pytest.raises(PluginLoadError, match=r"trust the CA of the client certificate"):
        manager.load(remote_manifest(tmp_path, port, tls, files))
    assert "tls-reranker" not in manager.names()


def test_plaintext_host_against_a_tls_service_says_so(
    serve: Serve, manager: PluginManager, tmp_path: Path
) -> None:
    port = serve()
    with pytest.raises(PluginLoadError, match=r"\(if the service speaks TLS: spec\.tls\)"):
        manager.load(remote_manifest(tmp_path, port, None, {}))


def test_tls_with_a_command_is_refused(manager: PluginManager, tmp_path: Path) -> None:
    path = tmp_path / "plugin.yaml"
    (tmp_path / "ca.pem").write_text("pem")
    path.write_text(
        "apiVersion: weaviate.io/v1\nkind: Plugin\n"
        "metadata: {name: tls-process, version: 1.0.0}\n"
        "spec:\n  type: reranker\n  runtime: grpc\n  command: python server.py\n"
        "  tls: {ca: ca.pem}\n"
    )
    with pytest.raises(PluginLoadError, match=r"spec\.tls is for a service at spec\.address"):
        manager.load(path)
