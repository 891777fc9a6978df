"""Fixtures: the installed package's manifest and one loaded vectorizer per session.

Loading the model takes about a second, so the plugin is loaded once per session (with
one onnxruntime thread: test machines are shared) and every test uses that handle.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

from weaviate_ext import PluginManager, VectorizerHandle

TEST_CONFIG = {"threads": 1}


@pytest.fixture(scope="session")
def manifest() -> Path:
    """The plugin.yaml shipped in the installed package."""
    return Path(str(files("weaviate_ext_minilm_vectorizer") / "plugin.yaml"))


@pytest.fixture(scope="session")
def session_manager() -> Iterator[PluginManager]:
    """A manager shared by the session's tests."""
    with PluginManager(discover=False) as manager:
        yield manager


@pytest.fixture(scope="session")
def vectorizer(session_manager: PluginManager, manifest: Path) -> VectorizerHandle:
    """``minilm-vectorizer`` loaded through the framework, once."""
    handle: VectorizerHandle = session_manager.load(manifest, config=TEST_CONFIG)
    return handle
