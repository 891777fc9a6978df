"""Fixtures: the manifests the installed package ships, and the repository's example vectorizer."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]
"""The weaviate-ext checkout this package lives in (contrib/text-transformers/tests/..)."""


@pytest.fixture
def chunker_manifest() -> Path:
    """text-chunker's plugin.yaml, from the installed package."""
    return Path(str(files("weaviate_ext_text_transformers.chunker") / "plugin.yaml"))


@pytest.fixture
def normalizer_manifest() -> Path:
    """unicode-normalizer's plugin.yaml, from the installed package."""
    return Path(str(files("weaviate_ext_text_transformers.normalizer") / "plugin.yaml"))


@pytest.fixture
def hash_embedder() -> Path:
    """The framework's example python-hash-vectorizer (needs only the core)."""
    path = REPOSITORY / "examples" / "plugins" / "python-hash-vectorizer" / "plugin.yaml"
    if not path.is_file():
        pytest.skip(f"the weaviate-ext checkout's examples are not at {path.parent}")
    return path
