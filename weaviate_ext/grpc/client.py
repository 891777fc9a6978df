"""Host side: plugin objects whose hooks call a plugin's gRPC service.

:func:`make_plugin_object` builds, for a plugin type, an object with one
``@hookimpl`` per hook the plugin offers (``Info.methods``), registered by the manager
like any other plugin. Each hook turns its arguments into a request, calls the RPC with
the call's deadline as the gRPC deadline, and turns the answer into what the hookspec
returns (vectors via ``np.frombuffer``, no Python lists). gRPC errors become the
framework's exceptions in :meth:`Connection.error`.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import grpc
import numpy as np

from weaviate_ext import plugin_types, tracing
from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import (
    AuthenticationError,
    DeadlineExceeded,
    PluginCallError,
    PluginCrashed,
    PluginOutputError,
    ResourceLimitExceeded,
    WeaviateExtError,
)
from weaviate_ext.grpc import weaviate_plugin_pb2 as pb
from weaviate_ext.grpc.connection import Stubs
from weaviate_ext.grpc.protocol import (
    PORTABLE_MESSAGE_BYTES,
    RPCS,
    batches_by_size,
    dumps,
    from_item,
    matrix_of,
    to_item,
    vector_of,
)
from weaviate_ext.grpc.supervisor import Generation, NotServing, PluginProcess
from weaviate_ext.hookspecs import hookimpl
from weaviate_ext.live import scrub
from weaviate_ext.types import Identity, RankResult

_CRASH_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    }
)


def _limit(deadline: Deadline | None) -> float | None:
    return None if deadline is None else deadline.timeout


def timeout_of(deadline: Deadline | None) -> float | None:
    """The gRPC timeout of a call: the deadline's remaining seconds, or none."""
    if deadline is None or deadline.timeout is None or math.isinf(deadline.at):
        return None
    return deadline.remaining()


class Connection:
    """How hooks reach a plugin: the stubs to call, error translation, health, close.

    Subclasses: :class:`ProcessConnection` follows a supervised process through its
    restarts; :class:`~weaviate_ext.grpc.remote.RemoteConnection` spreads calls over
    the healthy replicas of a running service.
    """

    name: str
    _secrets: tuple[str, ...]

    isolation = "process: a separate gRPC process"

    def stubs(self, hook: str, timeout: float | None) -> tuple[Stubs, Generation | None]:
        """The stubs to call now, and the process generation behind them (if any)."""
        raise NotImplementedError

    def call(self, hook: str, request: Any, deadline: Deadline | None) -> Any:
        """Call the RPC of ``hook`` with ``request`` within ``deadline``."""
        timeout = timeout_of(deadline)
        stubs, generation = self.stubs(hook, timeout)
        try:
            return getattr(stubs.service, RPCS[hook])(
                request, timeout=timeout, metadata=tracing.outgoing_metadata()
            )
        except grpc.RpcError as exc:
            raise self.error(hook, exc, _limit(deadline), generation) from None

    def stream(self, hook: str, request: Any, deadline: Deadline | None) -> Iterator[Any]:
        """Call the server-streaming RPC of ``hook``; cancelled if the caller stops early."""
        timeout = timeout_of(deadline)
        stubs, generation = self.stubs(hook, timeout)
        responses = getattr(stubs.service, RPCS[hook])(
            request, timeout=timeout, metadata=tracing.outgoing_metadata()
        )
        try:
            yield from responses
        except grpc.RpcError as exc:
            raise self.error(hook, exc, _limit(deadline), generation) from None
        finally:
            responses.cancel()

    def error(
        self,
        hook: str,
        exc: grpc.RpcError,
        limit: float | None,
        generation: Generation | None,
    ) -> WeaviateExtError:
        """The framework exception for a failed RPC (secrets scrubbed)."""
        code = exc.code()
        details = scrub(str(exc.details() or ""), self._secrets)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            what = f"deadline of {limit:g}s" if limit is not None else "deadline"
            return DeadlineExceeded(self.name, hook, f"{what} exceeded")
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return AuthenticationError(details, plugin=self.name, hook=hook)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return ResourceLimitExceeded(self.name, hook, details)
        crashed = self.crash_message(generation) if code in _CRASH_CODES else None
        if crashed is not None:
            return PluginCrashed(self.name, hook, crashed)
        return PluginCallError(self.name, hook, f"{code.name}: {details}")

    def crash_message(self, generation: Generation | None) -> str | None:
        """Why the call's process died, or ``None`` if it did not."""
        return None

    def healthy(self) -> bool:
        """Whether the plugin's health status is SERVING."""
        raise NotImplementedError

    def runtime_status(self) -> tuple[str, str | None]:
        """``(state, reason)`` for ``weaviate-ext list``; ``("serving", None)`` when fine."""
        return "serving", None

    def close(self) -> None:
        """Close the channels (and stop the process, for a supervised plugin)."""


class ProcessConnection(Connection):
    """A connection to a supervised plugin process, across its restarts."""

    def __init__(self, supervisor: PluginProcess, secrets: tuple[str, ...]) -> None:
        self.supervisor = supervisor
        self.name = supervisor.name
        self._secrets = secrets

    def stubs(self, hook: str, timeout: float | None) -> tuple[Stubs, Generation | None]:
        try:
            generation = self.supervisor.acquire(timeout)
        except NotServing as exc:
            raise PluginCrashed(self.name, hook, str(exc)) from None
        assert generation.stubs is not None
        return generation.stubs, generation

    def crash_message(self, generation: Generation | None) -> str | None:
        if generation is None or not self.supervisor.died(generation):
            return None
        return f"{self.supervisor.describe_exit(generation)} during the call; restarting it"

    def runtime_status(self) -> tuple[str, str | None]:
        return self.supervisor.runtime_status()

    isolation = (
        "process: own process group under a keeper, private directory, scrubbed "
        "environment, memory rlimit and CPU affinity from spec.resources"
    )

    def healthy(self) -> bool:
        try:
            generation = self.supervisor.acquire(5.0)
        except NotServing:
            return False
        return generation.stubs is not None and generation.stubs.healthy(timeout=5.0)

    def close(self) -> None:
        self.supervisor.close()


# -- the plugin objects ----------------------------------------------------------------


class GrpcPlugin:
    """Base of the host-side objects: lifecycle hooks and the connection."""

    runtime = "grpc"

    def __init__(self, connection: Connection, dimensions: int | None) -> None:
        self.connection = connection
        self.dimensions = dimensions

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.connection.name!r}>"

    @property
    def isolation(self) -> str:
        """What isolates the plugin from the host (shown by ``weaviate-ext list``)."""
        return self.connection.isolation

    def runtime_status(self) -> tuple[str, str | None]:
        """``(state, reason)``: ``"serving"`` (reason ``None``), ``"restarting"`` after a
        crash (the reason says what happened) or ``"failed"`` after repeated failures
        (the reason says why; reload the plugin to try again). Never blocks."""
        return self.connection.runtime_status()

    @hookimpl
    def plugin_runtime_status(self) -> tuple[str, str | None]:
        """The bridge contract's runtime status: :meth:`runtime_status`."""
        return self.runtime_status()

    @hookimpl
    def plugin_health(self) -> bool:
        """Health service status SERVING (and, for a process, not failed)."""
        return self.connection.healthy()

    @hookimpl
    def plugin_close(self) -> None:
        """Close the channel; stop the process group of a supervised plugin."""
        self.connection.close()


def _vectorize_text(self: GrpcPlugin, text: str, deadline: Deadline) -> Any:
    reply = self.connection.call("vectorize_text", pb.VectorizeRequest(text=text), deadline)
    return vector_of(reply)


def _vectorize_batch(self: GrpcPlugin, texts: Sequence[str], deadline: Deadline) -> Any:
    per_item = (self.dimensions or 0) * 4
    approx = sum(map(len, texts)) * 4 + len(texts) * (per_item + 16)
    parts = [texts] if approx <= PORTABLE_MESSAGE_BYTES else None
    if parts is None:
        parts = batches_by_size(texts, PORTABLE_MESSAGE_BYTES, per_item)
    matrices = []
    for part in parts:
        request = pb.VectorizeBatchRequest(texts=part)
        reply = self.connection.call("vectorize_batch", request, deadline)
        try:
            matrices.append(matrix_of(reply, len(part)))
        except ValueError as exc:
            raise PluginOutputError(self.connection.name, "vectorize_batch", str(exc)) from None
    return matrices[0] if len(matrices) == 1 else np.concatenate(matrices)


def _transform(self: GrpcPlugin, data: Any, deadline: Deadline) -> Any:
    reply = self.connection.call("transform", pb.TransformRequest(item=to_item(data)), deadline)
    return from_item(reply.item)


def _transform_batch(self: GrpcPlugin, items: Sequence[Any], deadline: Deadline) -> Any:
    request = pb.TransformBatchRequest(items=[to_item(i) for i in items])
    reply = self.connection.call("transform_batch", request, deadline)
    return [from_item(i) for i in reply.items]


def _rerank(self: GrpcPlugin, query: str, documents: Sequence[str], deadline: Deadline) -> Any:
    request = pb.RerankRequest(query=query, documents=list(documents))
    reply = self.connection.call("rerank", request, deadline)
    scores = list(reply.scores)
    if len(scores) != len(documents):
        raise PluginOutputError(
            self.connection.name,
            "rerank",
            f"returned {len(scores)} scores for {len(documents)} documents",
        )
    return [RankResult(i, s, documents[i]) for i, s in enumerate(scores)]


def _generate(self: GrpcPlugin, prompt: str, options: Mapping[str, Any], deadline: Deadline) -> Any:
    request = pb.GenerateRequest(prompt=prompt, options_json=dumps(dict(options)))
    return self.connection.call("generate", request, deadline).text


def _generate_stream(
    self: GrpcPlugin, prompt: str, options: Mapping[str, Any], deadline: Deadline
) -> Iterator[str]:
    request = pb.GenerateRequest(prompt=prompt, options_json=dumps(dict(options)))
    for chunk in self.connection.stream("generate_stream", request, deadline):
        yield chunk.text


def _store(self: GrpcPlugin, key: str, data: bytes, deadline: Deadline) -> None:
    self.connection.call("store", pb.StoreRequest(key=key, data=data), deadline)


def _retrieve(self: GrpcPlugin, key: str, deadline: Deadline) -> bytes | None:
    reply = self.connection.call("retrieve", pb.RetrieveRequest(key=key), deadline)
    return reply.data if reply.found else None


def _delete(self: GrpcPlugin, key: str, deadline: Deadline) -> bool:
    return bool(self.connection.call("delete", pb.DeleteRequest(key=key), deadline).existed)


def _authenticate(
    self: GrpcPlugin, credentials: Mapping[str, str], deadline: Deadline
) -> Identity | None:
    request = pb.AuthenticateRequest(credentials=dict(credentials))
    reply = self.connection.call("authenticate", request, deadline)
    if not reply.recognized:
        return None
    claims = json.loads(reply.identity.claims_json) if reply.identity.claims_json else {}
    return Identity(reply.identity.subject, tuple(reply.identity.roles), claims)


def _authorize(
    self: GrpcPlugin, identity: Identity, resource: str, action: str, deadline: Deadline
) -> bool | None:
    message = pb.Identity(
        subject=identity.subject, roles=list(identity.roles), claims_json=dumps(identity.claims)
    )
    request = pb.AuthorizeRequest(identity=message, resource=resource, action=action)
    decision = self.connection.call("authorize", request, deadline).decision
    return None if decision == pb.DECISION_ABSTAIN else decision == pb.DECISION_ALLOW


HOOK_FUNCTIONS: Mapping[str, Any] = {
    "vectorize_text": _vectorize_text,
    "vectorize_batch": _vectorize_batch,
    "transform": _transform,
    "transform_batch": _transform_batch,
    "rerank": _rerank,
    "generate": _generate,
    "generate_stream": _generate_stream,
    "store": _store,
    "retrieve": _retrieve,
    "delete": _delete,
    "authenticate": _authenticate,
    "authorize": _authorize,
}


def make_plugin_object(
    connection: Connection, plugin_type: str, methods: Sequence[str], dimensions: int | None
) -> GrpcPlugin:
    """An object implementing the hooks of ``plugin_type`` that the plugin offers.

    ``methods`` are the RPC names from ``Info`` (empty: all of the type's RPCs); the
    type's hooks and their RPCs are its ``grpc_rpcs`` in :mod:`weaviate_ext.plugin_types`,
    each hook's code is in :data:`HOOK_FUNCTIONS`.
    """
    rpcs = plugin_types.get(plugin_type).grpc_rpcs
    offered = set(methods) if methods else set(rpcs.values())
    hooks = tuple(hook for hook, rpc in rpcs.items() if rpc in offered)
    return _plugin_class(plugin_type, hooks)(connection, dimensions)


@functools.cache
def _plugin_class(plugin_type: str, hooks: tuple[str, ...]) -> type[GrpcPlugin]:
    """The host-side class of a ``plugin_type`` plugin offering ``hooks`` (made once)."""
    service = plugin_types.get(plugin_type).grpc_service
    namespace = {hook: hookimpl(HOOK_FUNCTIONS[hook]) for hook in hooks}
    return type(f"Grpc{service}", (GrpcPlugin,), namespace)
