"""Fixtures: the installed package's manifest and the plugin loaded through the framework."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from weaviate_ext import RerankerHandle


@pytest.fixture
def manifest() -> Path:
    """The plugin.yaml shipped in the installed package."""
    return Path(str(files("weaviate_ext_bm25_reranker") / "plugin.yaml"))


@pytest.fixture
def reranker(load_plugin: Any, manifest: Path) -> RerankerHandle:
    """``bm25-reranker`` with its default config."""
    handle: RerankerHandle = load_plugin(manifest)
    return handle
