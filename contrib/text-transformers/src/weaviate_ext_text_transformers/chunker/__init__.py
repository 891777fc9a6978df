"""The ``text-chunker`` plugin: its manifest, found through its own entry point."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources import files
from typing import Any

from weaviate_ext import hookimpl

__all__ = ["weaviate_ext_discover"]


@hookimpl
def weaviate_ext_discover() -> Iterable[Any]:
    """Hand this plugin's manifest (and only it) to the plugin manager."""
    return [files(__name__) / "plugin.yaml"]
