"""Typed handles: what ``manager.get_vectorizer(name)`` and friends return.

A handle is the one place that knows batching (``capabilities.maxBatchSize``), output
checks (``capabilities.dimensions``), deadlines, error translation and counters, so no
runtime bridge has to. It follows its plugin across hot reloads: each call goes to the
version that is current when the call starts, and finishes on it.
"""

from weaviate_ext.handles.base import PluginHandle, Slot
from weaviate_ext.handles.records import AuthHandle, StorageHandle
from weaviate_ext.handles.text import GeneratorHandle, RerankerHandle, TransformerHandle
from weaviate_ext.handles.vectorizer import VectorizerHandle

HANDLE_TYPES: dict[str, type[PluginHandle]] = {
    cls.plugin_type: cls
    for cls in (
        VectorizerHandle,
        TransformerHandle,
        RerankerHandle,
        GeneratorHandle,
        StorageHandle,
        AuthHandle,
    )
}
"""The handle class for each plugin type."""

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
