"""weaviate-ext: a plugin framework for vector-search hosts.

Plugins of six types (vectorizer, transformer, reranker, generator, storage, auth) from
several runtimes are loaded from ``plugin.yaml`` manifests into one pluggy hook registry
and called through typed handles::

    from weaviate_ext import PluginManager

    with PluginManager() as manager:
        manager.load("./plugins/custom-vectorizer/plugin.yaml", config={"modelPath": "m.bin"})
        vector = manager.get_vectorizer("custom-embedder").vectorize_text("hello world")

Importing the package is cheap: every name below is imported from its module the first
time it is used (a module ``__getattr__``, PEP 562), so ``import weaviate_ext`` and the
command line's ``--help`` do not pay for numpy, jsonschema, grpc, wasmtime or fastapi.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from weaviate_ext._version import __version__

if TYPE_CHECKING:
    from weaviate_ext.deadline import Deadline
    from weaviate_ext.dispatch import Call, current_call
    from weaviate_ext.errors import (
        ArtifactIntegrityError,
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
        RegistryError,
        RegistryUnreachable,
        ResourceLimitExceeded,
        RuntimeNotAllowed,
        RuntimeNotAvailable,
        SignatureError,
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

_LAZY: dict[str, str] = {
    "Deadline": "weaviate_ext.deadline",
    "Call": "weaviate_ext.dispatch",
    "current_call": "weaviate_ext.dispatch",
    "ArtifactIntegrityError": "weaviate_ext.errors",
    "AuthenticationError": "weaviate_ext.errors",
    "RegistryError": "weaviate_ext.errors",
    "RegistryUnreachable": "weaviate_ext.errors",
    "SignatureError": "weaviate_ext.errors",
    "ConfigError": "weaviate_ext.errors",
    "DeadlineExceeded": "weaviate_ext.errors",
    "DependencyError": "weaviate_ext.errors",
    "DimensionMismatch": "weaviate_ext.errors",
    "InvalidInput": "weaviate_ext.errors",
    "ManifestError": "weaviate_ext.errors",
    "PermissionNotGranted": "weaviate_ext.errors",
    "PluginBusy": "weaviate_ext.errors",
    "PluginCallError": "weaviate_ext.errors",
    "PluginCrashed": "weaviate_ext.errors",
    "PluginDisabled": "weaviate_ext.errors",
    "PluginLoadError": "weaviate_ext.errors",
    "PluginNotFound": "weaviate_ext.errors",
    "PluginNotLoaded": "weaviate_ext.errors",
    "PluginOutputError": "weaviate_ext.errors",
    "PluginTypeError": "weaviate_ext.errors",
    "PluginUnavailable": "weaviate_ext.errors",
    "Problem": "weaviate_ext.errors",
    "ResourceLimitExceeded": "weaviate_ext.errors",
    "RuntimeNotAllowed": "weaviate_ext.errors",
    "RuntimeNotAvailable": "weaviate_ext.errors",
    "WeaviateExtError": "weaviate_ext.errors",
    "Grant": "weaviate_ext.grants",
    "Grants": "weaviate_ext.grants",
    "AuthHandle": "weaviate_ext.handles",
    "GeneratorHandle": "weaviate_ext.handles",
    "PluginHandle": "weaviate_ext.handles",
    "RerankerHandle": "weaviate_ext.handles",
    "StorageHandle": "weaviate_ext.handles",
    "TransformerHandle": "weaviate_ext.handles",
    "VectorizerHandle": "weaviate_ext.handles",
    "hookimpl": "weaviate_ext.hookspecs",
    "hookspec": "weaviate_ext.hookspecs",
    "PluginManager": "weaviate_ext.manager",
    "Manifest": "weaviate_ext.manifest",
    "PluginConfig": "weaviate_ext.manifest",
    "Secret": "weaviate_ext.manifest",
    "load_manifest": "weaviate_ext.manifest",
    "Pipeline": "weaviate_ext.pipeline",
    "PluginStats": "weaviate_ext.stats",
    "LoadResult": "weaviate_ext.status",
    "PluginStatus": "weaviate_ext.status",
    "Identity": "weaviate_ext.types",
    "RankResult": "weaviate_ext.types",
}
"""The module each public name is imported from on first use."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ArtifactIntegrityError",
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
    "RegistryError",
    "RegistryUnreachable",
    "RerankerHandle",
    "ResourceLimitExceeded",
    "RuntimeNotAllowed",
    "RuntimeNotAvailable",
    "Secret",
    "SignatureError",
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
