"""Fixtures: the installed manifest, and the plugin loaded once per fusion mode per session.

Loading the model takes about a second, so each configuration is loaded once (with one
onnxruntime thread: test machines are shared) and reused by every test that asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from weaviate_ext_minilm_vectorizer.encoder import MiniLMEncoder

from weaviate_ext import PluginManager, RerankerHandle

RerankerFactory = Callable[..., RerankerHandle]


@pytest.fixture(scope="session")
def manifest() -> Path:
    """The plugin.yaml shipped in the installed package."""
    return Path(str(files("weaviate_ext_semantic_reranker") / "plugin.yaml"))


@pytest.fixture(scope="session")
def reranker_with(manifest: Path) -> Iterator[RerankerFactory]:
    """``reranker_with(**config)``: the plugin loaded with ``config``, cached per config."""
    managers: dict[tuple[tuple[str, Any], ...], tuple[PluginManager, RerankerHandle]] = {}

    def get(**config: Any) -> RerankerHandle:
        config.setdefault("threads", 1)
        key = tuple(sorted(config.items()))
        if key not in managers:
            manager = PluginManager(discover=False)
            managers[key] = (manager, manager.load(manifest, config=config))
        return managers[key][1]

    yield get
    for manager, _ in managers.values():
        manager.close()


@pytest.fixture(scope="session")
def reranker(reranker_with: RerankerFactory) -> RerankerHandle:
    """The plugin with its default config (``fusion: none``)."""
    return reranker_with()


@pytest.fixture(scope="session")
def encoder() -> Iterator[MiniLMEncoder]:
    """The minilm-vectorizer package's encoder, to compute expected scores."""
    encoder = MiniLMEncoder(threads=1)
    yield encoder
    encoder.close()
