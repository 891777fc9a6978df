"""The app under an ASGI server with several workers, ``--workers``, and a unix socket."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from conftest import EXAMPLES, ROOT, running, server_env

from weaviate_ext import PluginManager

HASH = EXAMPLES / "python-hash-vectorizer"


def test_two_workers_share_settings_and_metrics(tmp_path: Path, manager: PluginManager) -> None:
    """``--workers 2`` runs ``weaviate_ext.serve:app_from_env`` under uvicorn's process
    manager (what ``uvicorn --factory ... --workers 2`` does), handing the settings over
    in a private file; with ``PROMETHEUS_MULTIPROC_DIR`` /metrics adds up both workers."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    args = ["--plugin", str(HASH / "plugin.yaml"), "--workers", "2", "--max-text-length", "20"]
    env = {
        "AUTHENTICATION_ALLOWED_TOKENS": "worker-token",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    expected = manager.load(HASH / "plugin.yaml")
    headers = {"Authorization": "Bearer worker-token"}
    with running(args, tmp_path / "server.log", env=env) as server:
        for i in range(12):
            # a new connection each time, so that both workers answer some
            with server.client(headers=headers) as http:
                body = json.dumps({"text": f"worker text {i}"}).encode()
                answer = http.post("/vectors", content=body).json()
            vector = np.asarray(answer["vector"], dtype=np.float32)
            assert np.array_equal(vector, expected.vectorize_text(f"worker text {i}"))
        with server.client() as http:
            assert http.post("/vectors", content=b'{"text": "abc"}').status_code == 401
            too_long = http.post(
                "/vectors", content=b'{"text": "%s"}' % (b"y" * 21), headers=headers
            )
            assert too_long.status_code == 413
            chat = {"messages": [{"role": "user", "content": "hi"}]}
            no_generator = http.post("/v1/chat/completions", json=chat, headers=headers)
            assert no_generator.status_code == 404
            assert no_generator.json()["error"]["message"] == "no generator plugin is loaded"
            text = http.get("/metrics", headers=headers).text
        calls = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("weaviate_ext_plugin_calls_total{")
            and 'plugin="hash-embedder"' in line
        ]
        assert sum(calls) == 12
        log = server.logs()
        started = [line for line in log.splitlines() if "Started server process" in line]
        assert len({line.split("[")[1] for line in started}) == 2, log
        assert log.count("ready: 1 plugin(s) loaded (hash-embedder)") == 2, log
        assert "worker-token" not in log


def test_unix_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "serve.sock"
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "weaviate_ext",
            "--no-discover",
            "serve",
            "--plugin",
            str(HASH / "plugin.yaml"),
            "--uds",
            str(socket_path),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=server_env(),
        cwd=ROOT,
    )
    try:
        transport = httpx.HTTPTransport(uds=str(socket_path))
        with httpx.Client(transport=transport, base_url="http://serve", timeout=30) as http:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                try:
                    if http.get("/.well-known/ready").status_code == 204:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "not ready"
                time.sleep(0.05)
            answer = http.post("/vectors", content=b'{"text": "over a socket"}').json()
            assert answer["dim"] == 768
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
    log_text = (tmp_path / "server.log").read_text()
    assert "Application shutdown complete" in log_text, "stopped gracefully on SIGTERM"
