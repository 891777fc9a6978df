"""Fixtures of the registry tests: Debian's docker-registry (the CNCF distribution
server) on loopback with a temporary storage directory, with and without htpasswd auth,
and a fresh artifact cache per test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest

REGISTRY_BINARY = "/usr/bin/docker-registry"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"

pytestmark = pytest.mark.registry


@attrs.frozen
class Registry:
    """A running registry: ``HOST:PORT`` and where it stores blobs."""

    host: str
    storage: Path
    process: subprocess.Popen[bytes]

    def ref(self, repository: str, tag: str = "1.0.0") -> str:
        """``oci://HOST:PORT/REPOSITORY:TAG``."""
        return f"oci://{self.host}/{repository}:{tag}"

    def blob_file(self, digest: str) -> Path:
        """The file the registry keeps blob ``digest`` in."""
        hexdigest = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(tmp: Path, htpasswd: Path | None = None) -> Iterator[Registry]:
    if not Path(REGISTRY_BINARY).exists():
        pytest.skip("docker-registry is not installed (scripts/install_toolchains.sh)")
    storage = tmp / "storage"
    storage.mkdir()
    port = _free_port()
    auth = (
        f"auth:\n  htpasswd:\n    realm: weaviate-ext-tests\n    path: {htpasswd}\n"
        if htpasswd
        else ""
    )
    config = tmp / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth
    )
    log = (tmp / "registry.log").open("wb")
    process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log, stderr=log)
    host = f"127.0.0.1:{port}"
    try:
        for _ in range(200):
            if process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(tmp / 'registry.log').read_text()}")
            try:
                answer = httpx.get(f"http://{host}/v2/", timeout=1.0)
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            if answer.status_code in (200, 401):
                break
        else:
            raise RuntimeError("docker-registry did not answer on /v2/")
        yield Registry(host, storage, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry on 127.0.0.1 (one per test module)."""
    yield from _start(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with htpasswd auth: user ``user``, password ``s3cret-pass``."""
    htpasswd_tool = shutil.which("htpasswd")
    if htpasswd_tool is None:
        pytest.skip("htpasswd is not installed (apache2-utils)")
    tmp = tmp_path_factory.mktemp("auth-registry")
    line = subprocess.run(
        [htpasswd_tool, "-Bbn", "user", "s3cret-pass"], check=True, capture_output=True
    ).stdout
    htpasswd = tmp / "htpasswd"
    htpasswd.write_bytes(line.strip() + b"\n")
    yield from _start(tmp, htpasswd)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty artifact cache (``$WEAVIATE_EXT_OCI_CACHE``) and no credentials
    from the real home directory."""
    cache = tmp_path / "oci-cache"
    monkeypatch.setenv("WEAVIATE_EXT_OCI_CACHE", str(cache))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.delenv("WEAVIATE_EXT_REGISTRY_USERNAME", raising=False)
    monkeypatch.delenv("WEAVIATE_EXT_REGISTRY_PASSWORD", raising=False)
    return cache
