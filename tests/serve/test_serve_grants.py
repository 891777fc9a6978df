"""The serve settings' grants reach the plugin manager: a plugin whose manifest requests
an environment variable loads under ``serve`` only when the host grants it (the
``--grant`` / ``WEAVIATE_EXT_SERVE_GRANT`` / ``_grants`` of the config file)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES
from starlette.testclient import TestClient

from weaviate_ext.serve import ServeSettings, create_app


def _requesting_env(directory: Path) -> Path:
    """The hash vectorizer example, renamed, its manifest requesting env ``HASH_SALT``."""
    target = directory / "plugin"
    shutil.copytree(EXAMPLES / "python-hash-vectorizer", target)
    manifest = target / "plugin.yaml"
    data = yaml.safe_load(manifest.read_text())
    data["metadata"]["name"] = "salted-embedder"
    data["spec"]["permissions"] = {"env": ["HASH_SALT"]}
    manifest.write_text(yaml.safe_dump(data, sort_keys=False))
    return manifest


def _status(settings: ServeSettings) -> tuple[int, str]:
    with TestClient(create_app(settings)) as client:
        for _ in range(400):
            ready = client.get("/.well-known/ready")
            if "still loading" not in ready.text:
                break
        answer = client.post("/vectors", json={"text": "granted?"})
        return answer.status_code, client.get("/v1/plugins").text


def test_a_grant_in_the_serve_settings_lets_the_plugin_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = _requesting_env(tmp_path)
    refused, _ = _status(ServeSettings(plugin_files=(str(manifest),)))
    assert refused != 200
    assert "grant it with --grant salted-embedder:env=HASH_SALT" in caplog.text
    granted = ServeSettings(
        plugin_files=(str(manifest),), grants={"salted-embedder": {"env": ["HASH_SALT"]}}
    )
    status, listing = _status(granted)
    assert status == 200, listing
    assert "HASH_SALT" in listing
