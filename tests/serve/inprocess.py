"""The serve app in this process, with real example plugins (no uvicorn, no port):
for the OpenAPI contract run and the input hygiene tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from conftest import EXAMPLES, auth_config
from fastapi import FastAPI
from starlette.testclient import TestClient

from weaviate_ext.serve import ServeSettings, create_app

TOKEN = "inprocess-token-5be1c2"
"""The bearer token the in-process servers accept."""

EXAMPLE_FILES = (
    "python-hash-vectorizer/plugin.yaml",
    "python-bm25-reranker/plugin.yaml",
    "python-extractive-generator/plugin.yaml",
    "python-text-normalizer/plugin.yaml",
    "python-file-storage/plugin.yaml",
    "python-apikey-auth/plugin.yaml",
    "custom-vectorizer/plugin.yaml",
    "custom-vectorizer/plugin-native.yaml",
    "c-reranker/plugin.yaml",
    "c-generator/plugin.yaml",
    "c-storage/plugin.yaml",
)
"""Example plugins of all six types, as Python, WebAssembly and native plugins."""

PLUGINS_BY_TYPE = {
    "vectorizer": ("hash-embedder", "custom-embedder", "custom-embedder-native"),
    "reranker": ("bm25-lite", "overlap-reranker"),
    "generator": ("extractive-summarizer", "extractive-generator"),
    "transformer": ("text-normalizer",),
    "storage": ("file-store", "kv-store"),
    "auth": ("apikey-auth",),
}
"""The plugins :data:`EXAMPLE_FILES` load, by type."""


def example_app(root: Path, *, extra_dirs: tuple[str, ...] = (), **overrides: Any) -> FastAPI:
    """The app serving :data:`EXAMPLE_FILES` (and the plugins below ``extra_dirs``),
    with bearer token :data:`TOKEN`."""
    options: dict[str, Any] = {
        "plugin_dirs": extra_dirs,
        "plugin_files": tuple(str(EXAMPLES / f) for f in EXAMPLE_FILES),
        "config": {"file-store": {"path": str(root / "store")}, "apikey-auth": auth_config()},
        "vectorizer": "hash-embedder",
        "reranker": "bm25-lite",
        "generator": "extractive-summarizer",
        "tokens": (TOKEN,),
        "max_text_length": 2000,
        "max_batch": 16,
        "max_body_bytes": 200_000,
        "timeout": 10.0,
    }
    options.update(overrides)
    return create_app(ServeSettings(**options))


def wait_ready(client: TestClient, timeout: float = 120.0) -> None:
    """Wait until the app's plugins are loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/.well-known/ready")
        if response.status_code == 204:
            return
        if "still loading" not in response.text:
            raise RuntimeError(f"not ready: {response.text}")
        time.sleep(0.05)
    raise RuntimeError(f"not ready after {timeout}s")
