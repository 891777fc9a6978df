"""Liveness answers while plugins load; readiness only once they are loaded, and not at
all (with the reason) when the server was started with a default that is not loaded."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from conftest import EXAMPLES, running
from plugin_factory import write_plugin

SLOW = """
    import time

    from weaviate_ext import hookimpl


    class Plugin:
        @hookimpl
        def plugin_setup(self, config, manifest):
            time.sleep(2)

        @hookimpl
        def vectorize_text(self, text):
            return [1.0, 0.0]
"""


def test_ready_only_once_loaded_and_only_if_the_defaults_are(tmp_path: Path) -> None:
    manifest = write_plugin(
        tmp_path / "plugins", "slow-embedder", "vectorizer", SLOW, capabilities={"dimensions": 2}
    )
    args = ["--plugin", str(manifest), "--vectorizer", "nope"]
    with running(args, tmp_path / "server.log", ready=False) as server, server.client() as http:
        # the plugin's setup takes 2 s: the server answers meanwhile, but is not ready
        assert http.get("/.well-known/live").status_code == 204
        loading = http.get("/.well-known/ready")
        assert loading.status_code == 503
        assert loading.json() == {"error": "not ready: the plugins are still loading"}
        waiting = http.post("/vectors", content=b'{"text": "x"}')
        assert waiting.status_code == 503
        # loading ends; --vectorizer names a plugin that is not loaded: never ready
        deadline = time.monotonic() + 60
        while "still loading" in http.get("/.well-known/ready").text:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        failed = http.get("/.well-known/ready")
        assert failed.status_code == 503
        assert failed.json()["error"].startswith("not ready: --vectorizer nope: not loaded")
        assert "slow-embedder" in failed.json()["error"]
        assert http.get("/.well-known/live").status_code == 204
        assert http.get("/meta").status_code == 503
    assert "not ready: --vectorizer nope" in server.logs()


EMBEDDED = """
import signal
import sys

import uvicorn

from weaviate_ext import PluginManager
from weaviate_ext.serve import ServeSettings, create_app

manifest, port = sys.argv[1], int(sys.argv[sys.argv.index("--port") + 1])
with PluginManager(discover=False) as manager:
    manager.load(manifest)
    app = create_app(ServeSettings(cache=True), manager=manager)
    # uvicorn re-raises SIGTERM after its graceful shutdown: let the script go on
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")
    print("manager still open after the server stopped:", manager.names(), flush=True)
"""


def test_create_app_serves_a_manager_of_the_host(tmp_path: Path) -> None:
    manifest = EXAMPLES / "python-hash-vectorizer" / "plugin.yaml"
    command = [sys.executable, "-c", EMBEDDED, str(manifest)]
    with running([], tmp_path / "server.log", command=command) as server, server.client() as http:
        assert http.get("/meta").json()["name"] == "hash-embedder"
        assert http.post("/vectors", content=b'{"text": "x"}').json()["dim"] == 768
    assert "manager still open after the server stopped: ('hash-embedder',)" in server.logs()
