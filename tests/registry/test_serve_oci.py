"""``weaviate-ext serve --plugin oci://...``: a signed artifact pulled, verified against
the ``_registry`` policy of the host config file, loaded and served; an artifact the
policy does not trust is not loaded (and the server says why)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import Registry
from helpers import plugin_copy

from weaviate_ext.registry.push import push_plugin, sign_artifact
from weaviate_ext.registry.signing import generate_key_pair, load_signing_key

pytestmark = pytest.mark.registry


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _serve(config_file: Path, reference: str, cache: Path) -> Iterator[tuple[str, list[str]]]:
    """``weaviate-ext --config-file F serve --plugin REF`` on a free loopback port; yields
    its base URL and, when it stopped, its log lines through the list."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "weaviate_ext",
        "--no-discover",
        "--config-file",
        str(config_file),
        "serve",
        "--plugin",
        reference,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    env = {**os.environ, "WEAVIATE_EXT_OCI_CACHE": str(cache)}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:  # ready, or done loading with nothing to serve
                ready = httpx.get(f"{base}/.well-known/ready", timeout=1)
                if ready.status_code < 300 or "still loading" not in ready.text:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base, lines
    finally:
        process.terminate()
        try:
            out, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        lines.extend(out.splitlines())


def _host_config(path: Path, public_key: Path, cache: Path) -> Path:
    data = {
        "_registry": {
            "policy": {"repositories": [{"match": "*", "keys": [str(public_key)]}]},
            "cache": {"dir": str(cache)},
        }
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_serve_loads_a_signed_artifact_and_refuses_an_unsigned_one(
    registry: Registry, cache_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "keys").mkdir()
    private, public = generate_key_pair(tmp_path / "keys", password=b"")
    plugin = plugin_copy("python-hash-vectorizer", tmp_path / "plugin", "serve-oci")
    signed = registry.ref("serve/hash", "1.0.0")
    push_plugin(plugin / "plugin.yaml", signed)
    sign_artifact(signed, load_signing_key(private, b""))
    unsigned = registry.ref("serve/hash-unsigned", "1.0.0")
    push_plugin(plugin / "plugin.yaml", unsigned)
    config = _host_config(tmp_path / "host.yaml", public, cache_dir)

    with _serve(config, signed, cache_dir) as (base, _):
        answer = httpx.post(f"{base}/vectors", json={"text": "hello registry"}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["vector"]) == answer.json()["dim"] > 0
        plugins = httpx.get(f"{base}/v1/plugins", timeout=10).json()
        assert [p["name"] for p in plugins] == ["hash-embedder"]

    with _serve(config, unsigned, cache_dir) as (base, lines):
        answer = httpx.post(f"{base}/vectors", json={"text": "hello registry"}, timeout=30)
        assert answer.status_code in (404, 503), answer.text
    text = "\n".join(lines)
    assert "not loaded" in text and "unsigned" in text, text
    assert "Traceback" not in text
