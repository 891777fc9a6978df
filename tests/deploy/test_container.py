"""The serve image, as built and run (marker ``container``; issue 13).

scripts/build_image.sh builds deploy/Containerfile from a Debian base made by mmdebstrap
(no registry is reachable) with a host-built wheelhouse (no network inside the build);
the containers run with podman on 127.0.0.1 and are removed by the fixtures. Checks: the
readiness probe, ``/meta``, ``/vectors`` with a mounted plugin directory, the installed
contrib packages, bearer tokens from the environment, the non-root user, the image's
HEALTHCHECK, a clean stop on SIGTERM that lets a request in flight finish and stops the
gRPC plugin processes, and docs/serve.md's compose ``plugins`` service as written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

if TYPE_CHECKING:  # the fixtures of tests/deploy/conftest.py
    from conftest import Container, Podman, RunContainer

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "plugins"
TOKENS = ("first-token", "second-token")
DRAIN_SECONDS = 4.0
"""How long the slow plugin's call lasts while the container is told to stop."""
STOP_GRACE = 30
"""``podman stop --time``: SIGKILL after this many seconds (exit code 137 then)."""

SLOW_MANIFEST = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: slow-embedder
  version: 1.0.0
  description: "Sleeps for 'sleep:S' texts, to have a request in flight"
spec:
  type: vectorizer
  runtime: python
  entrypoint: slow_embedder:SlowEmbedder
  timeout: 60s
  capabilities:
    dimensions: 4
  config:
    fill:
      type: number
      default: 1.0
"""

SLOW_SOURCE = """\
import sys
import time

import numpy as np

from weaviate_ext import hookimpl


class SlowEmbedder:
    fill = 1.0

    @hookimpl
    def plugin_setup(self, config, manifest):
        self.fill = config.get_float("fill")

    @hookimpl
    def vectorize_text(self, text, deadline):
        if text.startswith("sleep:"):
            print("slow-embedder: call started", file=sys.stderr, flush=True)
            time.sleep(float(text[len("sleep:"):]))
        return np.full(4, self.fill, dtype=np.float32)
"""


def copy_plugin(example: str, into: Path) -> None:
    """Copy an example plugin (without build caches) into the mounted directory."""
    shutil.copytree(
        EXAMPLES / example,
        into / example,
        ignore=shutil.ignore_patterns("__pycache__", "target", "*.so"),
    )


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """A directory for /plugins: the hash vectorizer, the Python gRPC vectorizer (a
    plugin process) and a slow vectorizer; readable by the image's user."""
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    copy_plugin("python-hash-vectorizer", plugins)
    copy_plugin("grpc-vectorizer", plugins)
    slow = plugins / "slow-embedder"
    (slow / "src").mkdir(parents=True)
    (slow / "plugin.yaml").write_text(SLOW_MANIFEST, encoding="utf-8")
    (slow / "src" / "slow_embedder.py").write_text(SLOW_SOURCE, encoding="utf-8")
    # a host config file (WEAVIATE_EXT_SERVE_CONFIG_FILE) sets the slow plugin's fill
    (plugins / "host.yaml").write_text("slow-embedder:\n  fill: 0.25\n", encoding="utf-8")
    for path in (plugins, *plugins.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return plugins


@pytest.fixture
def served(run_container: RunContainer, plugin_dir: Path) -> Container:
    """A ready container: /plugins mounted; tokens, the default vectorizer, the host
    config file and the graceful-shutdown time set by environment variables."""
    container = run_container(
        env={
            "AUTHENTICATION_ALLOWED_TOKENS": ",".join(TOKENS),
            "WEAVIATE_EXT_SERVE_VECTORIZER": "hash-embedder",
            "WEAVIATE_EXT_SERVE_CONFIG_FILE": "/plugins/host.yaml",
            "WEAVIATE_EXT_SERVE_GRACEFUL_TIMEOUT": "20",
        },
        volumes=[(plugin_dir, "/plugins")],
    )
    container.wait_ready()
    return container


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def test_serves_mounted_and_installed_plugins(served: Container) -> None:
    """/meta and /vectors answer from the mounted plugin chosen by env; the installed
    contrib packages and the gRPC plugin serve too."""
    auth = bearer(TOKENS[0])
    meta = httpx.get(f"{served.url}/meta", headers=auth, timeout=30)
    assert meta.status_code == 200, meta.text
    assert meta.json()["name"] == "hash-embedder"
    assert meta.json()["dimensions"] == 768

    answer = httpx.post(f"{served.url}/vectors", json={"text": "hello"}, headers=auth, timeout=30)
    assert answer.status_code == 200, answer.text
    vector = answer.json()["vector"]
    assert len(vector) == 768
    assert abs(sum(x * x for x in vector) - 1.0) < 1e-3  # normalized, not all zeros

    grpc = httpx.post(
        f"{served.url}/inference/grpc-embedder/vectors",
        json={"text": "hello"},
        headers=auth,
        timeout=30,
    )
    assert grpc.status_code == 200, grpc.text
    assert len(grpc.json()["vector"]) == 768

    minilm = httpx.post(
        f"{served.url}/inference/minilm-vectorizer/vectors",
        json={"text": "a fox"},
        headers=auth,
        timeout=60,
    )
    assert minilm.status_code == 200, minilm.text
    assert len(minilm.json()["vector"]) == 384

    ranked = httpx.post(
        f"{served.url}/rerank",
        json={"query": "red fox", "documents": ["a grey dog", "the red fox jumps"]},
        headers=auth,
        timeout=30,
    )
    assert ranked.status_code == 200, ranked.text
    scores = {row["document"]: row["score"] for row in ranked.json()["scores"]}
    assert scores["the red fox jumps"] > scores["a grey dog"]


def test_tokens_from_environment(served: Container) -> None:
    """Without a token, or with a wrong one: 401; with either configured token: 200.
    The probes stay open."""
    url = f"{served.url}/meta"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers=bearer("not-a-token"), timeout=10).status_code == 401
    for token in TOKENS:
        assert httpx.get(url, headers=bearer(token), timeout=10).status_code == 200
    assert httpx.get(f"{served.url}/.well-known/ready", timeout=10).status_code == 204
    assert httpx.get(f"{served.url}/.well-known/live", timeout=10).status_code == 204


def test_runs_as_non_root_with_healthcheck(served: Container, podman_cli: Podman) -> None:
    """Every process in the container (server, gRPC plugin keeper and process) runs as
    uid 10001; the image's HEALTHCHECK passes once ready."""
    assert podman_cli("exec", served.name, "id", "-u").stdout.strip() == "10001"
    assert podman_cli("exec", served.name, "id", "-g").stdout.strip() == "10001"
    status = podman_cli("exec", served.name, "cat", "/proc/1/status").stdout
    assert re.search(r"^Uid:\s+10001\s+10001\s+10001\s+10001$", status, re.M), status
    rows = podman_cli("top", served.name, "user", "args").stdout.strip().splitlines()[1:]
    assert any("plugin_server.py" in row for row in rows), rows
    assert rows and all(row.split()[0] == "weaviate" for row in rows), rows
    assert served.inspect("{{.Config.User}}") == "10001:10001"
    assert podman_cli("healthcheck", "run", served.name, check=False).returncode == 0


def test_bad_setting_fails_clearly(run_container: RunContainer) -> None:
    """A malformed environment setting stops the container with one clear line."""
    container = run_container(env={"WEAVIATE_EXT_SERVE_PORT": "eighty"})
    deadline = time.monotonic() + 60
    while container.inspect("{{.State.Running}}") == "true" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert container.inspect("{{.State.ExitCode}}") == "2"
    logs = container.logs()
    assert "WEAVIATE_EXT_SERVE_PORT" in logs or "--port" in logs, logs
    assert "Traceback" not in logs, logs


def test_sigterm_drains_and_stops_plugins(
    served: Container, podman_cli: Podman, say: Callable[[str], None]
) -> None:
    """``podman stop`` (SIGTERM): a request in flight finishes with 200, the plugins are
    closed (the gRPC plugin process is gone), the server exits 0 by itself within the
    grace period, and no process of the container is left on the host."""
    rows = podman_cli("top", served.name, "hpid", "args").stdout.strip().splitlines()[1:]
    host_pids = [int(row.split()[0]) for row in rows]
    plugin_pids = [int(row.split()[0]) for row in rows if "plugin_server.py" in row]
    assert plugin_pids, rows

    result: dict[str, Any] = {}

    def slow_request() -> None:
        try:
            result["answer"] = httpx.post(
                f"{served.url}/inference/slow-embedder/vectors",
                json={"text": f"sleep:{DRAIN_SECONDS}"},
                headers=bearer(TOKENS[1]),
                timeout=60,
            )
        except httpx.HTTPError as exc:
            result["error"] = exc

    client = threading.Thread(target=slow_request)
    client.start()
    deadline = time.monotonic() + 30
    while "slow-embedder: call started" not in served.logs():
        assert time.monotonic() < deadline, "the slow call never started"
        assert client.is_alive(), result
        time.sleep(0.1)

    say("podman stop (SIGTERM) with a request in flight")
    podman_cli("stop", "--time", str(STOP_GRACE), served.name, timeout=STOP_GRACE + 30)
    client.join(timeout=60)
    assert not client.is_alive()

    assert "error" not in result, result
    assert result["answer"].status_code == 200, result["answer"].text
    assert result["answer"].json()["vector"] == [0.25] * 4  # fill from the host config file
    # 0: it exited by itself; 137 if podman had to SIGKILL it at the end of the grace
    # period (nothing else exits 143 here: uvicorn handles SIGTERM)
    assert served.inspect("{{.State.ExitCode}}") == "0"
    assert served.inspect("{{.State.Running}}") == "false"
    assert served.inspect("{{.State.Pid}}") == "0"
    logs = served.logs()
    assert "Application shutdown complete" in logs, logs
    assert "Traceback" not in logs, logs
    for pid in host_pids:  # gone, or the PID reused by something else
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        assert b"weaviate-ext" not in cmdline and b"plugin_server" not in cmdline, cmdline


# -- docs/serve.md's compose file ------------------------------------------------------


def compose_file() -> dict[str, Any]:
    """The compose file in docs/serve.md (the YAML block holding ``services:``)."""
    text = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "services:" in b]
    assert len(blocks) == 1, "docs/serve.md should hold one compose file"
    loaded: dict[str, Any] = yaml.safe_load(blocks[0])
    return loaded


def test_compose_plugins_service_builds_and_starts(
    run_container: RunContainer, base_image: str, podman_cli: Podman, tmp_path: Path
) -> None:
    """The ``plugins`` service of docs/serve.md builds from its build section (context
    and dockerfile relative to the top of the repository) and starts with its
    environment, volumes and healthcheck, serving on the port Weaviate is pointed at.

    Two things are supplied by the test: the base image (``BASE_IMAGE``: no registry is
    reachable to pull the default) and the contents of ``./plugins`` (three examples)."""
    services = compose_file()["services"]
    weaviate_env = services["weaviate"]["environment"]
    urls = {weaviate_env["TRANSFORMERS_INFERENCE_API"], weaviate_env["RERANKER_INFERENCE_API"]}
    assert len(urls) == 1
    match = re.fullmatch(r"http://plugins:(\d+)", urls.pop())
    assert match, "the inference URLs should point at the plugins service"
    port = int(match.group(1))
    assert services["weaviate"]["depends_on"]["plugins"]["condition"] == "service_healthy"

    service = services["plugins"]
    build = service["build"]
    tag = "localhost/weaviate-ext-compose:test"
    podman_cli(
        "build",
        "--format",
        "docker",
        "--network",
        "none",
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "--file",
        str(ROOT / build["context"] / build["dockerfile"]),
        "--tag",
        tag,
        str(ROOT / build["context"]),
        timeout=900,
    )
    exposed = podman_cli("image", "inspect", "--format", "{{.Config.ExposedPorts}}", tag).stdout
    assert f"{port}/tcp" in exposed

    project = tmp_path / "project"  # the folder of the compose file: "./plugins" is here
    (project / "plugins").mkdir(parents=True, mode=0o755)
    wasm = EXAMPLES / "custom-vectorizer" / "plugin-binary.wasm"
    assert wasm.is_file(), f"{wasm} is missing: run scripts/build_examples.sh"
    for example in ("custom-vectorizer", "python-bm25-reranker", "python-extractive-generator"):
        copy_plugin(example, project / "plugins")
    for path in (project, *project.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)

    volumes: list[tuple[Path, str]] = []
    for volume in service["volumes"]:
        source, target, *mode = volume.split(":")
        assert mode == ["ro"]
        volumes.append(((project / source).resolve(), target))
    health = service["healthcheck"]["test"]
    assert health[0] == "CMD"
    options = ["--health-cmd", json.dumps(health[1:])]  # podman: a JSON array is exec form
    env = {key: os.path.expandvars(str(value)) for key, value in service["environment"].items()}
    args = [str(arg) for arg in service.get("command", [])]
    container = run_container(
        env=env, volumes=volumes, args=args, image=tag, options=options, container_port=port
    )
    container.wait_ready()
    assert podman_cli("healthcheck", "run", container.name, check=False).returncode == 0

    meta = httpx.get(f"{container.url}/meta", timeout=30)
    assert meta.status_code == 200, meta.text
    assert meta.json()["name"] == env["WEAVIATE_EXT_SERVE_VECTORIZER"]
    vector = httpx.post(f"{container.url}/vectors", json={"text": "hello"}, timeout=30)
    assert vector.status_code == 200, vector.text
    assert len(vector.json()["vector"]) == meta.json()["dimensions"]
    ranked = httpx.post(
        f"{container.url}/rerank",
        json={"query": "red fox", "documents": ["a grey dog", "the red fox jumps"]},
        timeout=30,
    )
    assert ranked.status_code == 200, ranked.text
    meta_rr = httpx.get(f"{container.url}/inference/bm25-lite/meta", timeout=30)
    assert meta_rr.status_code == 200, meta_rr.text
