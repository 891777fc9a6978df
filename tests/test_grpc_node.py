"""The Node.js reranker example: a grpc plugin not written in Python.

These tests need ``node`` (>= 18) and ``npm`` on PATH, and the npm registry the first
time (``build.sh`` installs ``@grpc/grpc-js`` and ``@grpc/proto-loader``). They fail,
and do not skip, when node or npm are missing: CI installs them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from grpc_helpers import EXAMPLES, ROOT, wait_gone

from weaviate_ext import PluginLoadError, PluginManager
from weaviate_ext.testing import check_plugin

NODE_EXAMPLE = EXAMPLES / "grpc-node-reranker"
NAME = "grpc-node-reranker"

DOCUMENTS = [
    "Cooking pasta takes about ten minutes in boiling water.",
    "A vector search engine finds the nearest embeddings quickly.",
    "Search engines rank documents; vector search ranks vectors.",
    "The weather today is sunny with a light breeze.",
    "Ünïcödé wörds, 向量 search and naïve café tokens.",
]


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(
            f"{tool!r} is not on PATH: the Node.js gRPC example needs node >= 18 and npm "
            "(Debian/Ubuntu: apt-get install nodejs npm). These tests fail rather than skip "
            "because CI installs them.",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def built() -> Path:
    """Run the example's build.sh once (npm install, copy of the contract)."""
    _require("node")
    _require("npm")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < 18:
        pytest.fail(f"node {version.stdout.strip()} is too old: the example needs >= 18")
    done = subprocess.run(
        [str(NODE_EXAMPLE / "build.sh")],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"build.sh failed:\n{done.stdout}\n{done.stderr}"
    assert f"{NAME}: ok" in done.stdout
    return NODE_EXAMPLE / "plugin.yaml"


def _python_bm25() -> Any:
    path = EXAMPLES / "python-bm25-reranker" / "src" / "bm25_lite.py"
    spec = importlib.util.spec_from_file_location("bm25_lite_for_node_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.bm25_scores


def test_build_leaves_a_self_contained_plugin_directory(built: Path) -> None:
    assert (NODE_EXAMPLE / "weaviate_plugin.proto").read_bytes() == (
        ROOT / "hookspecs" / "weaviate_plugin.proto"
    ).read_bytes()
    assert (NODE_EXAMPLE / "node_modules" / "@grpc" / "grpc-js").is_dir()
    assert (NODE_EXAMPLE / "node_modules" / "@grpc" / "proto-loader").is_dir()
    ignored = (NODE_EXAMPLE / ".gitignore").read_text().split()
    assert "node_modules/" in ignored and "weaviate_plugin.proto" in ignored
    assert (NODE_EXAMPLE / "package-lock.json").is_file()


def test_conformance_through_get_reranker(built: Path, manager: PluginManager) -> None:
    manager.load(built)
    handle = manager.get_reranker(NAME)
    check_plugin(handle).raise_for_failures()
    top = handle.rerank("vector search", DOCUMENTS, top_k=2)
    assert {r.index for r in top} == {1, 2}


def test_scores_equal_the_python_bm25_example(built: Path, manager: PluginManager) -> None:
    manager.load(built, config={"k1": 1.2, "b": 0.5})
    handle = manager.get_reranker(NAME)
    query = "vector search café 向量"
    results = sorted(handle.rerank(query, DOCUMENTS), key=lambda r: r.index)
    expected = _python_bm25()(query, DOCUMENTS, k1=1.2, b=0.5)
    assert [r.score for r in results] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert any(s > 0 for s in expected)


def test_bad_config_refuses_the_load(built: Path, manager: PluginManager) -> None:
    with pytest.raises(PluginLoadError, match=r"Init failed: Error: config b must be between"):
        manager.load(built, config={"b": 3})
    assert NAME not in manager.names()


def test_process_model_socket_mode_and_unload(built: Path, manager: PluginManager) -> None:
    manager.load(built)
    supervisor = manager.registry.get_plugin(NAME).connection.supervisor
    assert stat.S_IMODE(supervisor.socket_path.stat().st_mode) == 0o600
    assert stat.S_ISSOCK(supervisor.socket_path.stat().st_mode)
    assert supervisor.methods == ["Rerank"]
    pid = supervisor.pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0].endswith(b"node") and cmdline[1].endswith(b"server.js")
    manager.unload(NAME)
    assert wait_gone(pid, 5)
    assert not supervisor.directory.exists()


def test_exits_when_its_stdin_closes(built: Path, tmp_path: Path) -> None:
    socket = tmp_path / "plugin.sock"
    process = subprocess.Popen(
        ["node", "server.js"],
        cwd=NODE_EXAMPLE,
        env={"PATH": os.environ.get("PATH", ""), "WEAVIATE_EXT_GRPC_SOCKET": str(socket)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline().strip() == f"weaviate-ext|1|unix|{socket}"
        assert stat.S_IMODE(socket.stat().st_mode) == 0o600
        process.stdin.close()
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_standalone_serves_a_remote_host(built: Path, tmp_path: Path) -> None:
    socket = tmp_path / "node.sock"
    env = {k: v for k, v in os.environ.items() if k != "WEAVIATE_EXT_GRPC_SOCKET"}
    process = subprocess.Popen(
        ["node", "server.js", "--address", f"unix://{socket}"],
        cwd=NODE_EXAMPLE,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        until = time.monotonic() + 20
        while not socket.exists() and time.monotonic() < until:
            time.sleep(0.05)
        assert socket.exists(), "the standalone Node.js server did not create its socket"
        manifest = tmp_path / "plugin.yaml"
        manifest.write_text(
            "apiVersion: weaviate.io/v1\nkind: Plugin\n"
            "metadata: {name: remote-node, version: 1.0.0}\n"
            f"spec:\n  type: reranker\n  runtime: grpc\n  address: unix://{socket}\n"
            "  capabilities: {deterministic: true}\n"
        )
        with PluginManager(discover=False) as manager:
            manager.load(manifest)
            check_plugin(manager.get_reranker("remote-node")).raise_for_failures()
    finally:
        process.terminate()
        process.wait(10)
