"""Fixtures for the container tests (marker ``container``): podman, the serve image built
by scripts/build_image.sh from an mmdebstrap base, and containers published on loopback.

podman runs with ``--runtime runc`` and ``CONTAINERS_CONF=deploy/containers.conf`` (crun
and the default ulimits fail in this sandbox); nothing machine-wide is changed. Every
container is started by a fixture, bound to 127.0.0.1, and removed by it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / "deploy" / "containers.conf"
BUILD_SCRIPT = ROOT / "scripts" / "build_image.sh"
IMAGE = "localhost/weaviate-ext-serve:test"
READY_TIMEOUT = 120.0
"""Seconds a container gets to answer ``/.well-known/ready`` (plugins load first)."""


_config: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    """Keep the config: progress lines go to the terminal without ``-s``."""
    _config[:] = [config]


def progress(message: str) -> None:
    """One progress line on the terminal (the build takes minutes when cold)."""
    line = f"[container] {message}"
    capture = _config[0].pluginmanager.get_plugin("capturemanager") if _config else None
    if capture is None:
        print(line, file=sys.stderr, flush=True)
        return
    with capture.global_and_fixture_disabled():
        print(line, file=sys.stderr, flush=True)


def podman_env() -> dict[str, str]:
    """The environment for podman: the repository's containers.conf."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``podman --runtime runc ARGS``; fail the test with podman's stderr if it fails."""
    done = subprocess.run(
        ["podman", "--runtime", "runc", *args],
        capture_output=True,
        text=True,
        env=podman_env(),
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def build_image(tag: str) -> str:
    """Build the image with scripts/build_image.sh (cached base, wheelhouse and layers)."""
    progress(f"building {tag} with scripts/build_image.sh (cold: a few minutes)")
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        capture_output=True,
        text=True,
        env={**podman_env(), "IMAGE": tag},
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/build_image.sh exited {done.returncode}:\n{done.stderr[-4000:]}")
    progress(f"built {tag} in {time.monotonic() - started:.0f}s")
    return tag


@pytest.fixture(scope="session")
def podman_ok() -> None:
    """Skip when podman is not installed (CI installs it: scripts/install_toolchains.sh)."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/install_toolchains.sh installs it)")


@pytest.fixture(scope="session")
def serve_image(podman_ok: None) -> str:
    """The serve image, built once per session."""
    return build_image(IMAGE)


@pytest.fixture(scope="session")
def base_image(serve_image: str) -> str:
    """The mmdebstrap base the image was built on (cached by the build script)."""
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-base"],
        capture_output=True,
        text=True,
        env=podman_env(),
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/build_image.sh --print-base failed: {done.stderr[-2000:]}")
    return done.stdout.strip()


class Container:
    """A running container of the serve image, published on ``127.0.0.1:port``."""

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def logs(self) -> str:
        """Everything the container printed so far."""
        done = podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def inspect(self, template: str) -> str:
        """``podman inspect --format TEMPLATE`` of the container."""
        return podman("inspect", "--format", template, self.name).stdout.strip()

    def wait_ready(self, token: str | None = None) -> None:
        """Poll ``/.well-known/ready`` until 204 (bounded); fail with the logs if never."""
        deadline = time.monotonic() + READY_TIMEOUT
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        last = "no answer"
        while time.monotonic() < deadline:
            if self.inspect("{{.State.Running}}") != "true":
                pytest.fail(f"container {self.name} exited:\n{self.logs()[-4000:]}")
            try:
                answer = httpx.get(f"{self.url}/.well-known/ready", headers=headers, timeout=5)
                if answer.status_code == 204:
                    return
                last = f"{answer.status_code} {answer.text}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.5)
        pytest.fail(
            f"{self.name} not ready in {READY_TIMEOUT:.0f}s ({last}):\n{self.logs()[-4000:]}"
        )

    def remove(self) -> None:
        """Stop (SIGKILL if still running) and remove the container."""
        podman("rm", "--force", "--time", "0", self.name, check=False)


RunContainer = Callable[..., Container]
Podman = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def say() -> Callable[[str], None]:
    """:func:`progress` for tests: a line on the terminal."""
    return progress


@pytest.fixture(scope="session")
def podman_cli(podman_ok: None) -> Podman:
    """:func:`podman` for tests (``podman_cli("ps", check=False)``)."""
    return podman


@pytest.fixture
def run_container(serve_image: str) -> Iterator[RunContainer]:
    """Start containers of the serve image on 127.0.0.1 (removed after the test).

    ``run_container(env={...}, volumes=[(host, guest)], args=[...], image=...)``; the
    container's port 8080 is published on a free loopback port.
    """
    started: list[Container] = []

    def run(
        env: Mapping[str, str] | None = None,
        volumes: Sequence[tuple[Path, str]] = (),
        args: Sequence[str] = (),
        image: str = serve_image,
        options: Sequence[str] = (),
        container_port: int = 8080,
    ) -> Container:
        port = free_port()
        name = f"weaviate-ext-test-{uuid.uuid4().hex[:10]}"
        command = ["run", "--detach", "--name", name, "-p", f"127.0.0.1:{port}:{container_port}"]
        for key, value in (env or {}).items():
            command += ["--env", f"{key}={value}"]
        for host, guest in volumes:
            command += ["--volume", f"{host}:{guest}:ro"]
        podman(*command, *options, image, *args)
        container = Container(name, port)
        started.append(container)
        progress(f"started {name} on 127.0.0.1:{port}")
        return container

    yield run
    for container in started:
        container.remove()
