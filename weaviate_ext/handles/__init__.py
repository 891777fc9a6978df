"""Typed handles: what ``manager.get_vectorizer(name)`` and friends return.

A handle is the one place that knows batching (``capabilities.maxBatchSize``), output
checks (``capabilities.dimensions``), deadlines, error translation and counters, so no
runtime bridge has to. It follows its plugin across hot reloads: each call goes to the
version that is current when the call starts, and finishes on it.
"""

from collections.abc import Mapping

from weaviate_ext.handles.base import PluginHandle, Slot
from weaviate_ext.handles.records import AuthHandle, StorageHandle
from weaviate_ext.handles.text import GeneratorHandle, RerankerHandle, TransformerHandle
from weaviate_ext.handles.vectorizer import VectorizerHandle
from weaviate_ext.plugin_types import TypeTable

HANDLE_TYPES: Mapping[str, type[PluginHandle]] = TypeTable(lambda t: t.handle_class)
"""The handle class for each plugin type (derived from :mod:`weaviate_ext.plugin_types`)."""

__all__ = [
    "HANDLE_TYPES",
    "AuthHandle",
    "GeneratorHandle",
    "PluginHandle",
    "RerankerHandle",
    "Slot",
    "StorageHandle",
    "TransformerHandle",
    "VectorizerHandle",
]
