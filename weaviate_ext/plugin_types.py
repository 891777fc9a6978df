"""The plugin types, each described once.

A plugin type (vectorizer, transformer, ...) is one frozen :class:`PluginType` record in
:data:`TYPES`: its hooks, which of them a plugin must implement, and where each layer
finds its part of the type (the typed handle, the C-ABI plugin class and exports, the
gRPC service and methods, the Python SDK's base class, the conformance checks, the
probe call a new version must answer before it serves). Every per-type table of the
framework is derived from :data:`TYPES` -- ``PLUGIN_TYPES`` (manifest),
``TYPE_HOOKS``/``REQUIRED_HOOKS`` (hookspecs), ``HANDLE_TYPES`` (handles), the C ABI's
``PLUGIN_CLASSES``/``HOOK_EXPORTS``/``REQUIRED_EXPORTS``, gRPC's ``SERVICES``/``RPCS``,
the SDK's ``PLUGIN_CLASSES`` and ``check_plugin`` -- so adding a type is one record here
(plus the code it points at: hookspecs, a handle, bridge classes, SDK templates).

This module is data only: it imports nothing of the framework, so the manifest package
and the core can read it without learning about runtimes. Classes and functions of
other layers are named by dotted path (``"package.module:attr"``) and imported on first
use by the layer that needs them (:func:`resolve`), so the core never imports a bridge.

The derived tables are live views (:class:`TypeTable`): a type added to :data:`TYPES`
(a test's throwaway type, say) shows up in all of them at once. The tables keyed by hook
or export, which calls read (gRPC's ``RPCS``, the C ABI's ``HOOK_EXPORTS``), are plain
dicts (:class:`HookTable`), so no plugin call pays for a view.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import attrs

if TYPE_CHECKING:
    from weaviate_ext.handles.base import PluginHandle

V = TypeVar("V")

Ref = str | type[Any] | Callable[..., Any]
"""A class or function, or its dotted path ``"package.module:attr"`` (imported lazily)."""


@attrs.frozen
class PluginType:
    """Everything the framework knows about one plugin type.

    :param name: the ``spec.type`` of a manifest.
    :param hooks: the hooks a plugin of the type may implement (declared in
        :mod:`weaviate_ext.hookspecs`, whose docstrings are the authors' reference).
    :param required: groups of hooks of which a plugin must implement at least one each.
    :param handle: the typed handle class (a :class:`~weaviate_ext.handles.PluginHandle`).
    :param probe: the call a freshly built version must answer before it serves,
        ``probe(handle, text)``; ``None`` for types whose calls have side effects.
    :param c_exports: the C ABI exports of the type (``hookspecs/weaviate_plugin.h``)
        and their argument kinds (see :mod:`weaviate_ext.bridges.cabi.abi`).
    :param c_required: the exports a binary of the type must have; the others of
        ``c_exports`` are optional (the bridge falls back without them).
    :param cabi_class: the plugin class the wasm and native bridges build.
    :param grpc_service: the service of the type in ``hookspecs/weaviate_plugin.proto``.
    :param grpc_rpcs: the RPC of each hook, in the order of ``hooks``.
    :param sdk_base: the Python gRPC SDK's base class for plugins of the type.
    :param conformance: the conformance suite, ``check(handle, **options) -> report``.
    """

    name: str
    hooks: tuple[str, ...]
    required: tuple[tuple[str, ...], ...]
    handle: Ref
    probe: Callable[[Any, str], object] | None
    c_exports: Mapping[str, str]
    c_required: tuple[str, ...]
    cabi_class: Ref
    grpc_service: str
    grpc_rpcs: Mapping[str, str]
    sdk_base: Ref
    conformance: Ref

    @property
    def handle_class(self) -> type[PluginHandle]:
        """The handle class, imported on first use."""
        cls: type[PluginHandle] = resolve(self.handle)
        return cls

    @property
    def c_optional(self) -> tuple[str, ...]:
        """The exports a binary of the type may have."""
        return tuple(e for e in self.c_exports if e not in self.c_required)


_resolved: dict[str, Any] = {}


def resolve(ref: Ref) -> Any:
    """The object ``ref`` names (imported once), or ``ref`` itself if it is no string."""
    if not isinstance(ref, str):
        return ref
    found = _resolved.get(ref)
    if found is None:
        module, _, attr = ref.partition(":")
        found = getattr(importlib.import_module(module), attr)
        _resolved[ref] = found
    return found


def _h(name: str) -> str:
    return f"weaviate_ext.handles.{name}"


def _c(name: str) -> str:
    return f"weaviate_ext.bridges.cabi.plugins:{name}"


def _sdk(name: str) -> str:
    return f"weaviate_ext.sdk.plugins:{name}"


def _check(name: str) -> str:
    return f"weaviate_ext.testing.conformance.{name}"


TYPES: dict[str, PluginType] = {
    t.name: t
    for t in (
        PluginType(
            name="vectorizer",
            hooks=("vectorize_text", "vectorize_batch"),
            required=(("vectorize_text", "vectorize_batch"),),
            handle=_h("vectorizer:VectorizerHandle"),
            probe=lambda handle, text: handle.vectorize_batch([text]),
            c_exports={"wv_vectorize_batch": "bio", "wv_vectorize_into": "bif"},
            c_required=("wv_vectorize_batch",),
            cabi_class=_c("VectorizerPlugin"),
            grpc_service="Vectorizer",
            grpc_rpcs={"vectorize_text": "VectorizeText", "vectorize_batch": "VectorizeBatch"},
            sdk_base=_sdk("VectorizerPlugin"),
            conformance=_check("vectors:check_vectorizer"),
        ),
        PluginType(
            name="transformer",
            hooks=("transform", "transform_batch"),
            required=(("transform", "transform_batch"),),
            handle=_h("text:TransformerHandle"),
            probe=lambda handle, text: handle.transform(text),
            c_exports={"wv_transform": "bo", "wv_transform_batch": "bio"},
            c_required=("wv_transform",),
            cabi_class=_c("TransformerPlugin"),
            grpc_service="Transformer",
            grpc_rpcs={"transform": "Transform", "transform_batch": "TransformBatch"},
            sdk_base=_sdk("TransformerPlugin"),
            conformance=_check("text:check_transformer"),
        ),
        PluginType(
            name="reranker",
            hooks=("rerank",),
            required=(("rerank",),),
            handle=_h("text:RerankerHandle"),
            probe=lambda handle, text: handle.rerank(text, [text]),
            c_exports={"wv_rerank": "bbio"},
            c_required=("wv_rerank",),
            cabi_class=_c("RerankerPlugin"),
            grpc_service="Reranker",
            grpc_rpcs={"rerank": "Rerank"},
            sdk_base=_sdk("RerankerPlugin"),
            conformance=_check("text:check_reranker"),
        ),
        PluginType(
            name="generator",
            hooks=("generate", "generate_stream"),
            required=(("generate", "generate_stream"),),
            handle=_h("text:GeneratorHandle"),
            probe=None,
            c_exports={"wv_generate": "bbo", "wv_generate_stream": "bb"},
            c_required=("wv_generate", "wv_generate_stream"),
            cabi_class=_c("GeneratorPlugin"),
            grpc_service="Generator",
            grpc_rpcs={"generate": "Generate", "generate_stream": "GenerateStream"},
            sdk_base=_sdk("GeneratorPlugin"),
            conformance=_check("text:check_generator"),
        ),
        PluginType(
            name="storage",
            hooks=("store", "retrieve", "delete"),
            required=(("store",), ("retrieve",), ("delete",)),
            handle=_h("records:StorageHandle"),
            probe=None,
            c_exports={"wv_store": "bb", "wv_retrieve": "bo", "wv_delete": "b"},
            c_required=("wv_store", "wv_retrieve", "wv_delete"),
            cabi_class=_c("StoragePlugin"),
            grpc_service="Storage",
            grpc_rpcs={"store": "Store", "retrieve": "Retrieve", "delete": "Delete"},
            sdk_base=_sdk("StoragePlugin"),
            conformance=_check("records:check_storage"),
        ),
        PluginType(
            name="auth",
            hooks=("authenticate", "authorize"),
            required=(("authenticate",),),
            handle=_h("records:AuthHandle"),
            probe=None,
            c_exports={"wv_authenticate": "bo", "wv_authorize": "bbb"},
            c_required=("wv_authenticate",),
            cabi_class=_c("AuthPlugin"),
            grpc_service="Auth",
            grpc_rpcs={"authenticate": "Authenticate", "authorize": "Authorize"},
            sdk_base=_sdk("AuthPlugin"),
            conformance=_check("records:check_auth"),
        ),
    )
}
"""The plugin types by name, in the order the docs list them: the one registry."""


def get(name: str) -> PluginType:
    """The record of type ``name``; :class:`KeyError` naming the known types if none."""
    try:
        return TYPES[name]
    except KeyError:
        raise KeyError(f"unknown plugin type {name!r}: one of {', '.join(TYPES)}") from None


def of_hook(hook: str) -> PluginType | None:
    """The type whose hooks include ``hook``, if any."""
    return next((t for t in TYPES.values() if hook in t.hooks), None)


# -- derived tables ----------------------------------------------------------------------


class TypeTable(Mapping[str, V]):
    """A read-only table keyed by type name, derived from :data:`TYPES` (a live view)."""

    __slots__ = ("_derive",)

    def __init__(self, derive: Callable[[PluginType], V]) -> None:
        self._derive = derive

    def __getitem__(self, name: str) -> V:
        return self._derive(TYPES[name])

    def __iter__(self) -> Iterator[str]:
        return iter(TYPES)

    def __len__(self) -> int:
        return len(TYPES)

    def __repr__(self) -> str:
        return repr(dict(self))


class TypeNames(Sequence[str]):
    """The type names, in order, as a live read-only sequence (equal to a tuple of them)."""

    __slots__ = ()

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return tuple(TYPES)[index]

    def __len__(self) -> int:
        return len(TYPES)

    def __contains__(self, name: object) -> bool:
        return name in TYPES

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(TYPES))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (TypeNames, tuple, list)):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(tuple(TYPES))


NAMES = TypeNames()
"""The type names (``manifest.PLUGIN_TYPES``)."""


class HookTable(dict[str, V]):
    """A table keyed by hook (or C export): ``base`` and every type's own entries.

    A plain dict, filled from :data:`TYPES` when it is made, so that reading it on a
    call's path costs what a dict lookup costs; a key of a type added later is found on
    the first miss (iteration shows the types known when the table was made)."""

    def __init__(
        self, derive: Callable[[PluginType], Mapping[str, V]], base: Mapping[str, V] | None = None
    ) -> None:
        super().__init__(base or {})
        for kind in TYPES.values():
            self.update(derive(kind))
        self._derive = derive

    def __missing__(self, key: str) -> V:
        for kind in TYPES.values():
            values = self._derive(kind)
            if key in values:
                self[key] = values[key]
                return values[key]
        raise KeyError(key)


def names() -> tuple[str, ...]:
    """The type names, in order."""
    return tuple(TYPES)


__all__ = [
    "NAMES",
    "TYPES",
    "HookTable",
    "PluginType",
    "Ref",
    "TypeNames",
    "TypeTable",
    "get",
    "names",
    "of_hook",
    "resolve",
]
