"""Shared fixtures: a manager that is always closed, and plugin directories."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from weaviate_ext import PluginManager


@pytest.fixture
def manager() -> Iterator[PluginManager]:
    """A manager that ignores pip-installed plugins, closed after the test."""
    with PluginManager(discover=False) as m:
        yield m
