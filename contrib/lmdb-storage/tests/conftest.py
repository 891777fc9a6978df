"""Fixtures: the installed package's manifest and a loaded plugin on a fresh environment."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from weaviate_ext import StorageHandle


@pytest.fixture
def manifest() -> Path:
    """The plugin.yaml shipped in the installed package."""
    return Path(str(files("weaviate_ext_lmdb_storage") / "plugin.yaml"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's LMDB environment lives (a directory)."""
    return tmp_path / "data" / "env"


@pytest.fixture
def storage(load_plugin: Any, manifest: Path, db_path: Path) -> StorageHandle:
    """``lmdb-storage`` loaded through the framework on ``db_path``."""
    handle: StorageHandle = load_plugin(manifest, config={"path": str(db_path)})
    return handle
