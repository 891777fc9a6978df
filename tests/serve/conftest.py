"""Running ``weaviate-ext serve`` as a real process on a free loopback port.

Every server a test starts binds 127.0.0.1 (never another address), is started with
``python -m weaviate_ext ... serve`` and stopped by the test (SIGTERM, then SIGKILL if it
does not exit). Its output goes to a log file, shown when a start fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from plugin_factory import write_plugin

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "plugins"
FAULTY = ROOT / "tests" / "grpc_plugins" / "faulty.py"

API_KEY = "serve-test-key-0123456789"
"""An API key the apikey-auth example is configured to recognise."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a server: the SDK importable by gRPC plugin processes, quick
    stops of plugin processes, no inherited serve settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AUTHENTICATION_ALLOWED_TOKENS", "ENABLE_CACHE", "WEAVIATE_EXT_PLUGINS")
        and not k.startswith("WEAVIATE_EXT_SERVE_")
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["WEAVIATE_EXT_GRPC_STOP_GRACE"] = "0.5"
    env.update(extra or {})
    return env


class Server:
    """One ``weaviate-ext serve`` process."""

    def __init__(
        self,
        args: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        global_args: Sequence[str] = (),
        command: Sequence[str] | None = None,
    ) -> None:
        self.args = list(args)
        self.global_args = list(global_args)
        self.log_path = log_path
        self.env = server_env(env)
        self.command = list(command) if command is not None else None
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        """What the fixture that started the server wants tests to know."""

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client for this server (keep-alive, generous timeout)."""
        kwargs.setdefault("timeout", 60.0)
        return httpx.Client(base_url=self.url, **kwargs)

    def logs(self) -> str:
        """Everything the server wrote so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        """Start the process (retrying with another port if the chosen one was taken)."""
        for _ in range(3):
            self.port = free_port()
            if self.command is not None:
                argv = [*self.command, "--port", str(self.port)]
            else:
                argv = [
                    sys.executable,
                    "-m",
                    "weaviate_ext",
                    "--no-discover",
                    *self.global_args,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.args,
                ]
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT
                )
            if self._listening():
                return
            if "address already in use" not in self.logs().lower():
                raise RuntimeError(f"server did not start:\n{self.logs()}")
        raise RuntimeError(f"no free port found:\n{self.logs()}")

    def _listening(self, timeout: float = 60.0) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{self.url}/.well-known/live", timeout=2.0)
                return True
            time.sleep(0.05)
        raise RuntimeError(f"server not listening after {timeout}s:\n{self.logs()}")

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until ``/.well-known/ready`` answers 204."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.logs()}")
            response = httpx.get(f"{self.url}/.well-known/ready", timeout=5.0)
            if response.status_code == 204:
                return
            last = response.text
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s ({last}):\n{self.logs()}")

    def stop(self) -> int | None:
        """Stop the process (SIGTERM, SIGKILL after 20 s); its exit code."""
        process = self.process
        if process is None or process.poll() is not None:
            return process.returncode if process is not None else None
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=10)


@contextlib.contextmanager
def running(
    args: Sequence[str], log_path: Path, *, ready: bool = True, **kwargs: Any
) -> Iterator[Server]:
    """A started (and, with ``ready``, ready) server, stopped on exit."""
    server = Server(args, log_path, **kwargs)
    try:
        server.start()
        if ready:
            server.wait_ready()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_many(
    configs: Sequence[tuple[Sequence[str], Path]], **kwargs: Any
) -> Iterator[list[Server]]:
    """Several servers started at once (their plugins load in parallel), all stopped on exit."""
    servers = [Server(args, log, **kwargs) for args, log in configs]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


# ---------------------------------------------------------------------------------------
# test plugins
# ---------------------------------------------------------------------------------------

FLAKY = """
    import hashlib
    import math
    import os
    import time

    from weaviate_ext import hookimpl

    DIMS = 8


    def vector(text):
        digest = hashlib.sha256(text.encode()).digest()
        values = [b - 127.5 for b in digest[:DIMS]]
        norm = math.sqrt(sum(v * v for v in values))
        return [v / norm for v in values]


    class Plugin:
        @hookimpl
        def vectorize_text(self, text):
            if text == "boom":
                raise RuntimeError("boom happened")
            if text == "slow":
                time.sleep(4)
            if text == "nan":
                return [float("nan")] * DIMS
            if text.startswith("open:"):
                open(text[5:], "w").close()
            if text.startswith("wait:"):
                deadline = time.monotonic() + 30
                while not os.path.exists(text[5:]) and time.monotonic() < deadline:
                    time.sleep(0.01)
                if not os.path.exists(text[5:]):
                    raise RuntimeError("the gate never opened")
            return vector(text)
"""
"""A vectorizer that fails, hangs, returns NaN or waits for a file, as its text says."""

FLAKY_GENERATOR = """
    import time

    from weaviate_ext import hookimpl


    class Plugin:
        @hookimpl
        def generate_stream(self, prompt, options):
            words = prompt.split()
            for i, word in enumerate(words):
                if word == "explode" and i > 0:
                    raise RuntimeError("exploded mid-stream")
                if word == "fail":
                    raise RuntimeError("failed at once")
                if options.get("delay"):
                    time.sleep(float(options["delay"]))
                yield word if i == 0 else " " + word
"""
"""A generator streaming the prompt's words, failing when a word says so."""


def faulty_grpc_manifest(directory: Path) -> Path:
    """The gRPC test plugin that crashes or hangs on request, with a 1 s deadline."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {
        "apiVersion": "weaviate.io/v1",
        "kind": "Plugin",
        "metadata": {"name": "faulty", "version": "1.0.0"},
        "spec": {
            "type": "vectorizer",
            "runtime": "grpc",
            "command": [sys.executable, str(FAULTY), "--mode", "normal"],
            "timeout": "1s",
            "capabilities": {"dimensions": 8},
        },
    }
    path = directory / "plugin.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def auth_config() -> dict[str, Any]:
    """apikey-auth configuration recognising :data:`API_KEY` as a reader."""
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    return {
        "keys": {"reader": {"sha256": digest, "roles": ["reader"]}},
        "rules": [{"role": "reader", "resource": "docs*", "action": "read", "allow": True}],
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """A host config file (``--config-file``)."""
    path.write_text(yaml.safe_dump(config))
    return path


MAIN_LIMITS = ["--max-text-length", "2000", "--max-batch", "16", "--max-body-bytes", "200000"]
"""Limits of the main server, small so that the bad-input tests can pass them."""


@pytest.fixture(scope="session")
def main_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for most tests: a plugin of every type and runtime, plus test plugins
    that fail on request. Cache on, no authentication."""
    root = tmp_path_factory.mktemp("main-server")
    test_plugins = root / "plugins"
    write_plugin(
        test_plugins,
        "flaky",
        "vectorizer",
        textwrap.dedent(FLAKY),
        capabilities={"dimensions": 8},
        extra_spec={"timeout": 1},
    )
    write_plugin(
        test_plugins, "gate", "vectorizer", textwrap.dedent(FLAKY), capabilities={"dimensions": 8}
    )
    write_plugin(test_plugins, "flaky-generator", "generator", textwrap.dedent(FLAKY_GENERATOR))
    faulty = faulty_grpc_manifest(root / "faulty")
    config = write_config(
        root / "host.yaml",
        {"file-store": {"path": str(root / "store")}, "apikey-auth": auth_config()},
    )
    files = [
        "python-hash-vectorizer/plugin.yaml",
        "python-bm25-reranker/plugin.yaml",
        "python-extractive-generator/plugin.yaml",
        "python-text-normalizer/plugin.yaml",
        "python-file-storage/plugin.yaml",
        "python-apikey-auth/plugin.yaml",
        "custom-vectorizer/plugin.yaml",
        "custom-vectorizer/plugin-native.yaml",
        "c-reranker/plugin.yaml",
        "c-reranker/plugin-native.yaml",
        "c-generator/plugin.yaml",
        "c-storage/plugin.yaml",
        "grpc-vectorizer/plugin.yaml",
        "grpc-generator/plugin.yaml",
    ]
    if shutil.which("node"):
        files.append("grpc-node-reranker/plugin.yaml")
    args = [
        "--plugins",
        str(test_plugins),
        *[arg for f in files for arg in ("--plugin", str(EXAMPLES / f))],
        "--plugin",
        str(faulty),
        "--vectorizer",
        "hash-embedder",
        "--reranker",
        "bm25-lite",
        "--generator",
        "extractive-summarizer",
        "--cache",
        *MAIN_LIMITS,
    ]
    with running(args, root / "server.log", global_args=["--config-file", str(config)]) as server:
        server.info.update(plugins_dir=test_plugins, store=root / "store")
        yield server


@pytest.fixture(scope="session")
def client(main_server: Server) -> Iterator[httpx.Client]:
    """A keep-alive client of the main server."""
    with main_server.client() as http:
        yield http
