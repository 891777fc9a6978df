"""Base classes of gRPC plugins written in Python, one per plugin type.

A plugin subclasses one of them and overrides either the Pythonic methods
(``vectorize_text(text) -> array``; recommended, the SDK builds the messages) or the
raw gRPC methods (``VectorizeText(self, request, context) -> VectorizeResponse``, as
generated servicers have them). Whatever is not overridden is derived: a batch is a
loop over single calls, a whole generation is the joined stream, and so on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import grpc
import numpy as np

from weaviate_ext import plugin_types
from weaviate_ext.grpc import weaviate_plugin_pb2 as pb
from weaviate_ext.grpc.protocol import (
    from_item,
    pack_matrix,
    pack_vector,
    to_item,
    vector_of,
)
from weaviate_ext.types import Identity

Context = Any
"""A ``grpc.ServicerContext`` (or ``None`` when the SDK calls a raw method itself)."""


def overrides(obj: object, name: str) -> bool:
    """Whether ``obj``'s class overrides method ``name`` of the SDK's base classes."""
    for klass in type(obj).__mro__:
        if name in vars(klass):
            return not klass.__module__.startswith("weaviate_ext.sdk")
    return False


class PluginBase:
    """What every plugin has: a name, a version, setup, health and close.

    Subclasses are instantiated with no arguments; read configuration in :meth:`setup`.
    """

    plugin_type: ClassVar[str] = ""
    """The plugin type (set by each base class)."""
    service: ClassVar[str] = ""
    """The gRPC service of the type (from :mod:`weaviate_ext.plugin_types`)."""
    rpcs: ClassVar[tuple[str, ...]] = ()
    """The RPCs of the service (from :mod:`weaviate_ext.plugin_types`)."""
    message_names: ClassVar[tuple[str, ...]] = ()
    """Message classes a plugin module of this type may use without importing them."""

    plugin_name: ClassVar[str] = ""
    """The name ``Info`` reports (defaults to the class name)."""
    plugin_version: ClassVar[str] = "0.0.0"
    """The version ``Info`` reports."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        if "plugin_type" in own and "service" not in own:
            kind = plugin_types.get(cls.plugin_type)
            cls.service = kind.grpc_service
            cls.rpcs = tuple(kind.grpc_rpcs.values())
        from weaviate_ext.sdk import autoserve

        autoserve.note_subclass(cls)

    def setup(self, config: Mapping[str, Any]) -> None:
        """Receive the configuration (secret values in clear), once per process start.

        Called by the host's ``Init`` before any other call; raise to refuse loading.
        """

    def health(self) -> bool:
        """Whether the plugin can serve; ``False`` turns the health status NOT_SERVING."""
        return True

    def close(self) -> None:
        """Release resources; called when the server stops."""

    def implemented(self) -> list[str]:
        """The RPCs this plugin offers (reported by ``Info``)."""
        return list(self.rpcs)


# -- vectorizer ----------------------------------------------------------------------


class VectorizerPlugin(PluginBase):
    """A vectorizer: override ``vectorize_text`` (and optionally ``vectorize_batch``), or
    the raw ``VectorizeText``/``VectorizeBatch``."""

    plugin_type = "vectorizer"
    message_names = ("VectorizeRequest", "VectorizeResponse", "VectorizeBatchResponse")

    def vectorize_text(self, text: str) -> Any:
        """One text to one vector: a 1-D array, a sequence of floats, or packed bytes."""
        if overrides(self, "vectorize_batch"):
            return np.asarray(self.vectorize_batch([text]), dtype=np.float32)[0]
        raise NotImplementedError("override vectorize_text or VectorizeText")

    def vectorize_batch(self, texts: Sequence[str]) -> Any:
        """Texts to a ``(len(texts), dims)`` array; defaults to a loop."""
        return np.stack([np.asarray(self._one(t, None), dtype=np.float32) for t in texts])

    def _one(self, text: str, context: Context) -> Any:
        if overrides(self, "vectorize_text") or not overrides(self, "VectorizeText"):
            return self.vectorize_text(text)
        return vector_of(self.VectorizeText(pb.VectorizeRequest(text=text), context))

    def VectorizeText(self, request: pb.VectorizeRequest, context: Context) -> pb.VectorizeResponse:
        """Raw RPC: defaults to :meth:`vectorize_text`."""
        return pb.VectorizeResponse(packed=pack_vector(self.vectorize_text(request.text)))

    def VectorizeBatch(
        self, request: pb.VectorizeBatchRequest, context: Context
    ) -> pb.VectorizeBatchResponse:
        """Raw RPC: defaults to :meth:`vectorize_batch`, or a loop of ``VectorizeText``."""
        texts = list(request.texts)
        if overrides(self, "vectorize_batch"):
            out = self.vectorize_batch(texts)
        else:
            out = np.stack([np.asarray(self._one(t, context), dtype="<f4") for t in texts])
        packed, dims = pack_matrix(out, len(texts))
        return pb.VectorizeBatchResponse(packed=packed, dimensions=dims)


# -- transformer ---------------------------------------------------------------------


class TransformerPlugin(PluginBase):
    """A transformer: override ``transform`` (and optionally ``transform_batch``).

    Items are ``str``, ``bytes`` or JSON values; a chunker returns a list.
    """

    plugin_type = "transformer"
    message_names = ("TransformRequest", "TransformResponse", "Item")

    def transform(self, data: Any) -> Any:
        """Transform one item."""
        raise NotImplementedError("override transform or Transform")

    def transform_batch(self, items: Sequence[Any]) -> Sequence[Any]:
        """Transform several items, in order; defaults to a loop."""
        return [self.transform(item) for item in items]

    def Transform(self, request: pb.TransformRequest, context: Context) -> pb.TransformResponse:
        """Raw RPC: defaults to :meth:`transform`."""
        return pb.TransformResponse(item=to_item(self.transform(from_item(request.item))))

    def TransformBatch(
        self, request: pb.TransformBatchRequest, context: Context
    ) -> pb.TransformBatchResponse:
        """Raw RPC: defaults to :meth:`transform_batch`."""
        items = [from_item(i) for i in request.items]
        if overrides(self, "transform_batch") or not overrides(self, "Transform"):
            out = list(self.transform_batch(items))
        else:
            out = [
                from_item(self.Transform(pb.TransformRequest(item=to_item(i)), context).item)
                for i in items
            ]
        return pb.TransformBatchResponse(items=[to_item(o) for o in out])


# -- reranker ------------------------------------------------------------------------


class RerankerPlugin(PluginBase):
    """A reranker: override ``rerank(query, documents)`` returning one score per document
    (or ``(index, score)`` pairs covering every document)."""

    plugin_type = "reranker"
    message_names = ("RerankRequest", "RerankResponse")

    def rerank(self, query: str, documents: Sequence[str]) -> Iterable[Any]:
        """Scores for ``documents``; higher ranks higher."""
        raise NotImplementedError("override rerank or Rerank")

    def Rerank(self, request: pb.RerankRequest, context: Context) -> pb.RerankResponse:
        """Raw RPC: defaults to :meth:`rerank`."""
        documents = list(request.documents)
        return pb.RerankResponse(scores=_scores(self.rerank(request.query, documents), documents))


def _scores(out: Iterable[Any], documents: Sequence[str]) -> list[float]:
    items = out.tolist() if isinstance(out, np.ndarray) else list(out)
    if items and not isinstance(items[0], (int, float)):
        scores = [float("nan")] * len(documents)
        for item in items:
            index, score = (item.index, item.score) if hasattr(item, "index") else item
            scores[int(index)] = float(score)
        return scores
    return [float(s) for s in items]


# -- generator -----------------------------------------------------------------------


class GeneratorPlugin(PluginBase):
    """A generator: override ``generate_stream`` (yield chunks) and/or ``generate``."""

    plugin_type = "generator"
    message_names = ("GenerateRequest", "GenerateResponse")

    def generate(self, prompt: str, options: Mapping[str, Any]) -> str:
        """The whole answer; defaults to the joined stream."""
        if not overrides(self, "generate_stream"):
            raise NotImplementedError("override generate or generate_stream")
        return "".join(self.generate_stream(prompt, options))

    def generate_stream(self, prompt: str, options: Mapping[str, Any]) -> Iterator[str]:
        """The answer in chunks; defaults to the whole answer as one chunk."""
        if not overrides(self, "generate"):
            raise NotImplementedError("override generate or generate_stream")
        yield self.generate(prompt, options)

    def Generate(self, request: pb.GenerateRequest, context: Context) -> pb.GenerateResponse:
        """Raw RPC: defaults to :meth:`generate`."""
        return pb.GenerateResponse(text=self.generate(request.prompt, _options(request)))

    def GenerateStream(
        self, request: pb.GenerateRequest, context: Context
    ) -> Iterator[pb.GenerateResponse]:
        """Raw server-streaming RPC: defaults to :meth:`generate_stream`."""
        for chunk in self.generate_stream(request.prompt, _options(request)):
            yield pb.GenerateResponse(text=chunk)


def _options(request: pb.GenerateRequest) -> dict[str, Any]:
    return dict(json.loads(request.options_json)) if request.options_json else {}


# -- storage -------------------------------------------------------------------------


class StoragePlugin(PluginBase):
    """A storage backend: override ``store``, ``retrieve`` and ``delete``."""

    plugin_type = "storage"
    message_names = ("StoreResponse", "RetrieveResponse", "DeleteResponse")

    def store(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; return once it is durable."""
        raise NotImplementedError("override store or Store")

    def retrieve(self, key: str) -> bytes | None:
        """The bytes under ``key`` or ``None``."""
        raise NotImplementedError("override retrieve or Retrieve")

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it existed."""
        raise NotImplementedError("override delete or Delete")

    def Store(self, request: pb.StoreRequest, context: Context) -> pb.StoreResponse:
        """Raw RPC: defaults to :meth:`store`."""
        self.store(request.key, request.data)
        return pb.StoreResponse()

    def Retrieve(self, request: pb.RetrieveRequest, context: Context) -> pb.RetrieveResponse:
        """Raw RPC: defaults to :meth:`retrieve`."""
        data = self.retrieve(request.key)
        if data is None:
            return pb.RetrieveResponse(found=False)
        return pb.RetrieveResponse(found=True, data=bytes(data))

    def Delete(self, request: pb.DeleteRequest, context: Context) -> pb.DeleteResponse:
        """Raw RPC: defaults to :meth:`delete`."""
        return pb.DeleteResponse(existed=bool(self.delete(request.key)))


# -- auth ----------------------------------------------------------------------------


class AuthPlugin(PluginBase):
    """An auth plugin: override ``authenticate`` (and optionally ``authorize``).

    Raise :class:`weaviate_ext.AuthenticationError` for credentials of your kind that are
    wrong; return ``None`` for credentials that are not your kind.
    """

    plugin_type = "auth"
    message_names = ("AuthenticateResponse", "AuthorizeResponse", "Identity")

    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        """The identity of ``credentials``, or ``None`` when they are not this plugin's."""
        raise NotImplementedError("override authenticate or Authenticate")

    def authorize(self, identity: Identity, resource: str, action: str) -> bool | None:
        """``True`` allow, ``False`` deny, ``None`` abstain (the default)."""
        return None

    def implemented(self) -> list[str]:
        """``Authorize`` only when overridden (otherwise the plugin abstains)."""
        if overrides(self, "authorize") or overrides(self, "Authorize"):
            return list(self.rpcs)
        return ["Authenticate"]

    def Authenticate(
        self, request: pb.AuthenticateRequest, context: Context
    ) -> pb.AuthenticateResponse:
        """Raw RPC: defaults to :meth:`authenticate`."""
        identity = self.authenticate(dict(request.credentials))
        if identity is None:
            return pb.AuthenticateResponse(recognized=False)
        return pb.AuthenticateResponse(recognized=True, identity=identity_to_message(identity))

    def Authorize(self, request: pb.AuthorizeRequest, context: Context) -> pb.AuthorizeResponse:
        """Raw RPC: defaults to :meth:`authorize`."""
        verdict = self.authorize(
            identity_from_message(request.identity), request.resource, request.action
        )
        decision = (
            pb.DECISION_ABSTAIN
            if verdict is None
            else (pb.DECISION_ALLOW if verdict else pb.DECISION_DENY)
        )
        return pb.AuthorizeResponse(decision=decision)


def identity_to_message(identity: Identity) -> pb.Identity:
    """An :class:`Identity` as its message (claims as JSON)."""
    from weaviate_ext.grpc.protocol import dumps

    return pb.Identity(
        subject=identity.subject, roles=list(identity.roles), claims_json=dumps(identity.claims)
    )


def identity_from_message(message: pb.Identity) -> Identity:
    """The :class:`Identity` of a message."""
    claims = json.loads(message.claims_json) if message.claims_json else {}
    return Identity(message.subject, tuple(message.roles), claims)


PLUGIN_CLASSES: tuple[type[PluginBase], ...] = tuple(
    plugin_types.resolve(kind.sdk_base) for kind in plugin_types.TYPES.values()
)
"""The base class of each type, in the order of :data:`weaviate_ext.plugin_types.TYPES`."""


def status_for(exc: BaseException) -> grpc.StatusCode:
    """The status code a plugin exception is reported with."""
    from weaviate_ext.errors import AuthenticationError

    if isinstance(exc, AuthenticationError):
        return grpc.StatusCode.UNAUTHENTICATED
    if isinstance(exc, MemoryError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED
    return grpc.StatusCode.INTERNAL
