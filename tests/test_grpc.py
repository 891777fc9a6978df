"""The grpc runtime through the manager: the spec's example, every type, reload, remote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from grpc_helpers import EXAMPLES, FAULTY, ROOT, faulty_manifest, sdk_pythonpath, wait_gone

from weaviate_ext import PluginLoadError, PluginManager
from weaviate_ext.grpc.protocol import (
    HandshakeError,
    batches_by_size,
    format_handshake,
    pack_matrix,
    parse_handshake,
)
from weaviate_ext.testing import check_plugin

KINDS = Path(__file__).resolve().parent / "grpc_plugins" / "kinds.py"

SPEC_SNIPPET = """from weaviate_plugin_sdk import VectorizerPlugin
import grpc

class CustomVectorizer(VectorizerPlugin):
    def __init__(self):
        self.model = load_model()

    def VectorizeText(self, request, context):
        vector = self.model.encode(request.text)
        return VectorizeResponse(vector=vector.tolist())
"""
"""The product spec's gRPC plugin, character for character."""

GRPC_EXAMPLES = {
    "grpc-vectorizer": ("grpc-embedder", {}),
    "grpc-generator": ("grpc-extractive-generator", {"delayMs": 1}),
}


@pytest.fixture(autouse=True)
def _sdk_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", sdk_pythonpath())


def supervisor_of(manager: PluginManager, name: str) -> object:
    return manager.registry.get_plugin(name).connection.supervisor


# -- the spec's example -------------------------------------------------------------------


def test_spec_plugin_server_answers_through_get_vectorizer(manager: PluginManager) -> None:
    manager.load(EXAMPLES / "grpc-vectorizer" / "plugin.yaml")
    vectorizer = manager.get_vectorizer("grpc-embedder")
    vector = vectorizer.vectorize_text("hello world")
    assert vector.shape == (768,) and vector.dtype == np.float32
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    matrix = vectorizer.vectorize_batch(["hello world", "something else"])
    assert matrix.shape == (2, 768)
    np.testing.assert_array_equal(matrix[0], vector)


def test_spec_snippet_runs_verbatim(manager: PluginManager, tmp_path: Path) -> None:
    model = (EXAMPLES / "grpc-vectorizer" / "src" / "hashing_model.py").read_text()
    model = model.replace("from __future__ import annotations", "")
    (tmp_path / "plugin_server.py").write_text(SPEC_SNIPPET + "\n\n" + model)
    (tmp_path / "plugin.yaml").write_text(
        (EXAMPLES / "grpc-vectorizer" / "plugin.yaml").read_text()
    )
    manager.load(tmp_path / "plugin.yaml")
    assert manager.get_vectorizer("grpc-embedder").vectorize_text("a b c").shape == (768,)


def test_spec_script_serves_standalone_on_an_address(tmp_path: Path) -> None:
    socket = tmp_path / "s.sock"
    env = {**os.environ, "PYTHONPATH": sdk_pythonpath()}
    env.pop("WEAVIATE_EXT_GRPC_SOCKET", None)
    process = subprocess.Popen(
        [sys.executable, "plugin_server.py", "--address", f"unix://{socket}"],
        cwd=EXAMPLES / "grpc-vectorizer",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        until = time.monotonic() + 20
        while not socket.exists() and time.monotonic() < until:
            time.sleep(0.05)
        assert socket.exists(), "the standalone server did not create its socket"
        manifest = tmp_path / "remote.yaml"
        manifest.write_text(
            "apiVersion: weaviate.io/v1\nkind: Plugin\n"
            "metadata: {name: remote-embedder, version: 1.0.0}\n"
            f"spec:\n  type: vectorizer\n  runtime: grpc\n  address: unix://{socket}\n"
            "  capabilities: {dimensions: 768, deterministic: true, normalized: true}\n"
        )
        with PluginManager(discover=False) as manager:
            manager.load(manifest)
            handle = manager.get_vectorizer("remote-embedder")
            assert handle.vectorize_text("remote").shape == (768,)
            check_plugin(handle).raise_for_failures()
    finally:
        process.terminate()
        process.wait(10)
        assert process.stderr is not None
        process.stderr.close()


# -- examples ------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", sorted(GRPC_EXAMPLES))
def test_example_conformance(manager: PluginManager, directory: str) -> None:
    name, config = GRPC_EXAMPLES[directory]
    manager.load(EXAMPLES / directory / "plugin.yaml", config=config)
    check_plugin(manager.get(name)).raise_for_failures()


@pytest.mark.parametrize("directory", sorted(GRPC_EXAMPLES))
def test_example_build_script(directory: str) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        [str(EXAMPLES / directory / "build.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout


def test_generator_streams_chunk_by_chunk(manager: PluginManager) -> None:
    manager.load(EXAMPLES / "grpc-generator" / "plugin.yaml")
    handle = manager.get_generator("grpc-extractive-generator")
    chunks = list(handle.generate_stream("Short. The quick brown fox jumps over the dog."))
    assert chunks[:3] == ["The", " quick", " brown"]
    assert handle.generate("One two three.", max_tokens=2) == "One two"


# -- every other type --------------------------------------------------------------------


def kind_manifest(directory: Path, kind: str, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "plugin.yaml"
    path.write_text(
        f"apiVersion: weaviate.io/v1\nkind: Plugin\n"
        f"metadata: {{name: grpc-{kind}, version: 1.0.0}}\n"
        f"spec:\n  type: {kind}\n  runtime: grpc\n"
        f'  command: ["python", "{KINDS}", "--kind", "{kind}"]\n'
        f"  capabilities: {{deterministic: true, maxBatchSize: 4}}\n{extra}"
    )
    return path


@pytest.mark.parametrize("kind", ["transformer", "reranker", "storage"])
def test_sdk_types_pass_conformance(manager: PluginManager, tmp_path: Path, kind: str) -> None:
    manager.load(kind_manifest(tmp_path, kind))
    check_plugin(manager.get(f"grpc-{kind}")).raise_for_failures()


def test_auth_over_grpc(manager: PluginManager, tmp_path: Path) -> None:
    extra = "  config:\n    apiKey: {type: string, secret: true, required: true}\n"
    manager.load(kind_manifest(tmp_path, "auth", extra), config={"apiKey": "k-123456"})
    handle = manager.get_auth("grpc-auth")
    check_plugin(
        handle, valid_credentials={"api_key": "k-123456"}, invalid_credentials={"api_key": "no"}
    ).raise_for_failures()
    identity = manager.authenticate({"api_key": "k-123456"})
    assert identity is not None and identity.subject == "key-user"
    assert identity.claims["kind"] == "api_key"
    assert manager.authorize(identity, "collections/A", "read") is True
    assert manager.authorize(identity, "collections/A", "write") is False


# -- reload --------------------------------------------------------------------------------


def test_reload_swaps_the_process(manager: PluginManager, tmp_path: Path) -> None:
    manager.load(faulty_manifest(tmp_path / "v1"))
    old_pid = supervisor_of(manager, "faulty").pid  # type: ignore[attr-defined]
    handle = manager.get_vectorizer("faulty")
    assert handle.vectorize_text("x").shape == (8,)
    new = faulty_manifest(tmp_path / "v2")
    new.write_text(new.read_text().replace("version: 1.0.0", "version: 1.1.0"))
    manager.reload("faulty", new)
    assert handle.manifest.version == "1.1.0"
    assert handle.vectorize_text("x").shape == (8,)
    new_pid = supervisor_of(manager, "faulty").pid  # type: ignore[attr-defined]
    assert new_pid != old_pid
    assert wait_gone(old_pid)


def test_failed_reload_keeps_the_old_process(manager: PluginManager, tmp_path: Path) -> None:
    manager.load(faulty_manifest(tmp_path / "v1"))
    bad = tmp_path / "v2" / "plugin.yaml"
    bad.parent.mkdir()
    bad.write_text(
        faulty_manifest(tmp_path / "v1").read_text().replace(str(FAULTY), "/nonexistent/x.py")
    )
    with pytest.raises(PluginLoadError):
        manager.reload("faulty", bad)
    assert manager.get_vectorizer("faulty").vectorize_text("x").shape == (8,)


# -- protocol helpers ----------------------------------------------------------------------


def test_handshake_round_trip_and_errors() -> None:
    assert parse_handshake(format_handshake("unix", "/tmp/x.sock") + "\n") == "unix:/tmp/x.sock"
    assert parse_handshake("weaviate-ext|1|tcp|127.0.0.1:5000") == "127.0.0.1:5000"
    for bad in ("hello", "weaviate-ext|2|unix|/x", "weaviate-ext|1|tcp|10.0.0.1:1"):
        with pytest.raises(HandshakeError):
            parse_handshake(bad)


def test_batches_stay_under_the_message_limit() -> None:
    texts = ["x" * 100] * 50
    parts = batches_by_size(texts, 1000, per_item=0)
    assert sum(len(p) for p in parts) == 50
    assert all(len(p) <= 9 for p in parts)
    assert batches_by_size([], 1000) == []


def test_pack_matrix_checks_shape() -> None:
    data, dims = pack_matrix(np.ones((2, 3)), 2)
    assert dims == 3 and len(data) == 24
    with pytest.raises(ValueError):
        pack_matrix(np.ones((2, 3)), 3)


def test_latency_benchmark_prints_json_last() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "grpc_latency.py"),
            "--calls=60",
            "--batch-calls=5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    for key in ("p50_ms", "p99_ms", "batch100_ms", "p50_over_raw", "raw_p50_ms"):
        assert result[key] > 0
    assert "framework vectorize_text" in done.stdout
