"""Real redis-server processes for the tests, on a unix socket or a loopback port.

The binary is ``$REDIS_SERVER`` or ``redis-server`` on ``PATH``. Without one the tests
fail (they are not skipped: CI installs it with ``apt-get install -y redis-server``).
Every server is started by a fixture with persistence off and stopped afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import redis

from weaviate_ext import StorageHandle

INSTALL_HINT = (
    "redis-server is needed by the redis-storage tests and was not found: "
    "apt-get install -y redis-server (Debian), or set REDIS_SERVER to its path"
)


def redis_server_binary() -> str:
    """The redis-server to run, or fail the test with how to install one."""
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not found or not os.access(found, os.X_OK):
        pytest.fail(INSTALL_HINT, pytrace=False)
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on a unix socket, and optionally on 127.0.0.1:``port``."""

    def __init__(self, directory: Path, *, port: int = 0, extra: Sequence[str] = ()) -> None:
        self.directory = directory
        self.socket = str(directory / "redis.sock")
        self.port = port
        self.password: str | None = None
        args = [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            self.socket,
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            *extra,
        ]
        if "--requirepass" in extra:
            self.password = extra[list(extra).index("--requirepass") + 1]
        self.log = directory / "redis.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log.read_text()[-2000:]}")
            if os.path.exists(self.socket):
                try:
                    with self.client() as client:
                        client.ping()
                    return
                except redis.AuthenticationError:
                    return
                except redis.ConnectionError:
                    pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not start: {self.log.read_text()[-2000:]}")

    def client(self) -> redis.Redis:
        """A plain redis-py client on the socket (authenticated when a password is set)."""
        return redis.Redis(unix_socket_path=self.socket, password=self.password)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:port`` (only when started with a port)."""
        assert self.port, "this server listens on its unix socket only"
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def start_redis() -> Iterator[Any]:
    """``start_redis(port=0, extra=())``: start a server for this test; all are stopped after."""
    started: list[RedisServer] = []
    directories: list[str] = []

    def start(*, port: int = 0, extra: Sequence[str] = ()) -> RedisServer:
        # a short directory: unix socket paths are limited to about 100 bytes
        directory = tempfile.mkdtemp(prefix="wx-redis-")
        directories.append(directory)
        server = RedisServer(Path(directory), port=port, extra=extra)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[RedisServer]:
    """One server (unix socket only) for the tests that only need a working Redis."""
    directory = tempfile.mkdtemp(prefix="wx-redis-")
    server = RedisServer(Path(directory))
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def manifest() -> Path:
    """The plugin.yaml shipped in the installed package."""
    return Path(str(files("weaviate_ext_redis_storage") / "plugin.yaml"))


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test alone."""
    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def storage(
    load_plugin: Any, manifest: Path, shared_redis: RedisServer, prefix: str
) -> StorageHandle:
    """``redis-storage`` loaded through the framework on the shared server."""
    handle: StorageHandle = load_plugin(
        manifest, config={"unix_socket": shared_redis.socket, "prefix": prefix}
    )
    return handle
