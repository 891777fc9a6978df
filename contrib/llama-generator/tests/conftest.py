"""Fixtures: the installed plugin, loaded once per session with a small context."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from weaviate_ext_llama import MANIFEST

from weaviate_ext import GeneratorHandle, PluginManager

NAME = "llama-generator"
SMALL: dict[str, Any] = {"n_ctx": 512, "n_threads": 1, "max_tokens": 12}
"""The session's config: a small context and short answers keep the tests quick; one
thread, since llama.cpp's threads spin while they wait and a busy machine slows several
of them down far more than one."""


@pytest.fixture(scope="session")
def manifest_path() -> Path:
    """The plugin.yaml the installed package ships."""
    return Path(str(MANIFEST))


@pytest.fixture(scope="session")
def manager() -> Iterator[PluginManager]:
    """A manager that finds the plugin as an installed package (entry point)."""
    with PluginManager(config={NAME: SMALL}) as manager:
        yield manager


@pytest.fixture(scope="session")
def generator(manager: PluginManager) -> GeneratorHandle:
    """The plugin's handle; the model is loaded once, on first use."""
    return manager.get_generator(NAME)
