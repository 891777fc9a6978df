"""weaviate-ext generator plugin ``llama-generator``: local generation with llama.cpp.

Installing this package makes the plugin available to every
:class:`~weaviate_ext.PluginManager` (entry-point group ``weaviate_ext``); the plugin
class is :class:`weaviate_ext_llama.plugin.LlamaGenerator`.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from weaviate_ext import hookimpl

__all__ = ["MANIFEST", "weaviate_ext_discover"]

MANIFEST: Traversable = files(__name__) / "plugin.yaml"
"""The plugin's manifest, shipped as package data."""


@hookimpl
def weaviate_ext_discover() -> list[Traversable]:
    """Hand the manifest this package ships to the plugin manager."""
    return [MANIFEST]
