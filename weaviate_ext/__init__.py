"""weaviate-ext: a plugin framework for vector-search hosts.

Plugins of six types (vectorizer, transformer, reranker, generator, storage, auth) from
several runtimes are loaded from ``plugin.yaml`` manifests into one pluggy hook registry
and called through typed handles::

    from weaviate_ext import PluginManager

    with PluginManager() as manager:
        manager.load("./plugins/custom-vectorizer/plugin.yaml", config={"modelPath": "m.bin"})
        vector = manager.get_vectorizer("custom-embedder").vectorize_text("hello world")
"""

from weaviate_ext._version import __version__
from weaviate_ext.deadline import Deadline
from weaviate_ext.dispatch import Call, current_call
from weaviate_ext.errors import (
    AuthenticationError,
    ConfigError,
    DeadlineExceeded,
    DependencyError,
    DimensionMismatch,
    InvalidInput,
    ManifestError,
    PermissionNotGranted,
    PluginBusy,
    PluginCallError,
    PluginCrashed,
    PluginDisabled,
    PluginLoadError,
    PluginNotFound,
    PluginNotLoaded,
    PluginOutputError,
    PluginTypeError,
    PluginUnavailable,
    Problem,
    ResourceLimitExceeded,
    RuntimeNotAllowed,
    RuntimeNotAvailable,
    WeaviateExtError,
)
from weaviate_ext.grants import Grant, Grants
from weaviate_ext.handles import (
    AuthHandle,
    GeneratorHandle,
    PluginHandle,
    RerankerHandle,
    StorageHandle,
    TransformerHandle,
    VectorizerHandle,
)
from weaviate_ext.hookspecs import hookimpl, hookspec
from weaviate_ext.manager import PluginManager
from weaviate_ext.manifest import Manifest, PluginConfig, Secret, load_manifest
from weaviate_ext.pipeline import Pipeline
from weaviate_ext.stats import PluginStats
from weaviate_ext.status import LoadResult, PluginStatus
from weaviate_ext.types import Identity, RankResult

__all__ = [
    "AuthHandle",
    "AuthenticationError",
    "Call",
    "ConfigError",
    "Deadline",
    "DeadlineExceeded",
    "DependencyError",
    "DimensionMismatch",
    "GeneratorHandle",
    "Grant",
    "Grants",
    "Identity",
    "InvalidInput",
    "LoadResult",
    "Manifest",
    "ManifestError",
    "PermissionNotGranted",
    "Pipeline",
    "PluginBusy",
    "PluginCallError",
    "PluginConfig",
    "PluginCrashed",
    "PluginDisabled",
    "PluginHandle",
    "PluginLoadError",
    "PluginManager",
    "PluginNotFound",
    "PluginNotLoaded",
    "PluginOutputError",
    "PluginStats",
    "PluginStatus",
    "PluginTypeError",
    "PluginUnavailable",
    "Problem",
    "RankResult",
    "RerankerHandle",
    "ResourceLimitExceeded",
    "RuntimeNotAllowed",
    "RuntimeNotAvailable",
    "Secret",
    "StorageHandle",
    "TransformerHandle",
    "VectorizerHandle",
    "WeaviateExtError",
    "__version__",
    "current_call",
    "hookimpl",
    "hookspec",
    "load_manifest",
]
