"""Typed handles: what ``manager.get_vectorizer(name)`` and friends return.

A handle is the one place that knows batching (``capabilities.maxBatchSize``), output
checks (``capabilities.dimensions``), deadlines, error translation and counters, so no
runtime bridge has to. It follows its plugin across hot reloads: each call goes to the
version that is current when the call starts, and finishes on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, ClassVar, NoReturn, ParamSpec, TypeVar

import attrs
import numpy as np

from weaviate_ext.aio import awaitable
from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import (
    InvalidInput,
    PluginNotLoaded,
    PluginOutputError,
)
from weaviate_ext.live import LivePlugin
from weaviate_ext.manifest import Manifest
from weaviate_ext.outputs import Vector, to_matrix, to_rank_results, to_vector
from weaviate_ext.stats import PluginStats
from weaviate_ext.types import Identity, RankResult

P = ParamSpec("P")
T = TypeVar("T")
H = TypeVar("H", bound="PluginHandle")

FailureListener = Callable[[str, str, BaseException], None]


class Slot:
    """The current version of one named plugin; swapped atomically by reloads."""

    __slots__ = ("live", "name", "on_failure")

    def __init__(self, live: LivePlugin, on_failure: FailureListener) -> None:
        self.name = live.name
        self.live: LivePlugin | None = live
        self.on_failure = on_failure


def _require_str(value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be str, got {type(value).__name__}")


def _require_texts(texts: Any, what: str = "texts") -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise InvalidInput(f"{what} must be a sequence of str, not a single {type(texts).__name__}")
    try:
        items = list(texts)
    except TypeError:
        raise InvalidInput(
            f"{what} must be a sequence of str, got {type(texts).__name__}"
        ) from None
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInput(f"{what}[{i}] must be str, got {type(text).__name__}")
    return items


class PluginHandle:
    """Base of the typed handles: name, manifest, stats and the call machinery."""

    plugin_type: ClassVar[str] = ""

    __slots__ = ("_slot",)

    def __init__(self, slot: Slot) -> None:
        self._slot = slot

    def __repr__(self) -> str:
        live = self._slot.live
        version = live.manifest.version if live is not None else "unloaded"
        return f"<{type(self).__name__} {self._slot.name!r} {version}>"

    @property
    def name(self) -> str:
        """The plugin's name."""
        return self._slot.name

    @property
    def manifest(self) -> Manifest:
        """The manifest of the version currently serving."""
        return self._current().manifest

    @property
    def stats(self) -> PluginStats:
        """Call counters of the version currently serving."""
        return self._current().counter.snapshot()

    def _current(self) -> LivePlugin:
        live = self._slot.live
        if live is None:
            raise PluginNotLoaded(self._slot.name)
        return live

    def _acquire(self) -> LivePlugin:
        while True:
            live = self._slot.live
            if live is None:
                raise PluginNotLoaded(self._slot.name)
            if live.enter():
                return live

    def _fail(self, live: LivePlugin, hook: str, exc: BaseException) -> NoReturn:
        error = live.call_error(hook, exc)
        self._slot.on_failure(live.name, hook, error)
        if error is exc:
            raise error
        if live.keeps_cause(exc):
            raise error from exc
        raise error from None

    def _run(
        self,
        hook: str,
        timeout: float | None,
        body: Callable[[LivePlugin, Deadline], T],
    ) -> T:
        """Run ``body`` against the current version, counting and translating errors."""
        live = self._acquire()
        started = time.perf_counter()
        failed = True
        try:
            result = body(
                live, Deadline(live.timeout if timeout is None else timeout, live.name, hook)
            )
            failed = False
            return result
        except Exception as exc:
            self._fail(live, hook, exc)
        finally:
            live.exit(started, failed)

    def _chunks(self, live: LivePlugin, items: Sequence[T]) -> Iterator[Sequence[T]]:
        size = live.manifest.spec.capabilities.max_batch_size or len(items) or 1
        for start in range(0, len(items), size):
            yield items[start : start + size]


class VectorizerHandle(PluginHandle):
    """Calls one vectorizer plugin. Outputs are float32 numpy arrays."""

    plugin_type = "vectorizer"
    __slots__ = ()

    @property
    def dimensions(self) -> int | None:
        """``capabilities.dimensions`` of the version serving (``None`` if undeclared)."""
        return self._current().manifest.spec.capabilities.dimensions

    def vectorize_text(self, text: str, *, timeout: float | None = None) -> Vector:
        """One text to one vector of shape ``(dims,)``."""
        if type(text) is not str:
            _require_str(text, "text")
        live = self._acquire()
        started = time.perf_counter()
        failed = True
        try:
            dims = live.manifest.spec.capabilities.dimensions
            fn = live.hooks.get("vectorize_text")
            if fn is not None:
                deadline = live.deadline("vectorize_text", timeout)
                vector = to_vector(fn(text, deadline), dims, live.name, "vectorize_text")
            else:
                deadline = live.deadline("vectorize_batch", timeout)
                out = live.hooks["vectorize_batch"]([text], deadline)
                vector = to_matrix(out, 1, dims, live.name, "vectorize_batch")[0]
            failed = False
            return vector
        except Exception as exc:
            self._fail(live, "vectorize_text", exc)
        finally:
            live.exit(started, failed)

    def vectorize_batch(self, texts: Sequence[str], *, timeout: float | None = None) -> Vector:
        """Texts to a matrix of shape ``(len(texts), dims)``, row ``i`` for ``texts[i]``.

        Batches larger than ``capabilities.maxBatchSize`` are split into chunks; the
        deadline covers the whole batch and is checked before each chunk.
        """
        items = _require_texts(texts)
        return self._run("vectorize_batch", timeout, lambda live, d: self._batch(live, items, d))

    def _batch(self, live: LivePlugin, texts: list[str], deadline: Deadline) -> Vector:
        dims = live.manifest.spec.capabilities.dimensions
        if not texts:
            return np.empty((0, dims or 0), dtype=np.float32)
        batch_fn = live.hooks.get("vectorize_batch")
        single_fn = live.hooks.get("vectorize_text")
        parts = []
        for chunk in self._chunks(live, texts):
            deadline.check()
            if batch_fn is not None:
                parts.append(
                    to_matrix(
                        batch_fn(chunk, deadline), len(chunk), dims, live.name, "vectorize_batch"
                    )
                )
            else:
                assert single_fn is not None
                rows = [
                    to_vector(single_fn(t, deadline), dims, live.name, "vectorize_text")
                    for t in chunk
                ]
                parts.append(np.stack(rows))
        if len(parts) == 1:
            return parts[0]
        try:
            return np.concatenate(parts)
        except ValueError:
            raise PluginOutputError(
                live.name, "vectorize_batch", "returned vectors of different lengths"
            ) from None

    avectorize_text = awaitable(vectorize_text)
    avectorize_batch = awaitable(vectorize_batch)


class TransformerHandle(PluginHandle):
    """Calls one transformer plugin."""

    plugin_type = "transformer"
    __slots__ = ()

    def transform(self, data: Any, *, timeout: float | None = None) -> Any:
        """Transform one item."""

        def body(live: LivePlugin, deadline: Deadline) -> Any:
            fn = live.hooks.get("transform")
            if fn is not None:
                return fn(data, deadline)
            results = list(live.hooks["transform_batch"]([data], deadline))
            if len(results) != 1:
                raise PluginOutputError(
                    live.name, "transform_batch", f"returned {len(results)} results for 1 item"
                )
            return results[0]

        return self._run("transform", timeout, body)

    def transform_batch(self, items: Sequence[Any], *, timeout: float | None = None) -> list[Any]:
        """Transform several items, one result each, in order (split by maxBatchSize)."""
        items = list(items)

        def body(live: LivePlugin, deadline: Deadline) -> list[Any]:
            batch_fn = live.hooks.get("transform_batch")
            single_fn = live.hooks.get("transform")
            results: list[Any] = []
            for chunk in self._chunks(live, items):
                deadline.check()
                if batch_fn is not None:
                    out = list(batch_fn(chunk, deadline))
                    if len(out) != len(chunk):
                        raise PluginOutputError(
                            live.name,
                            "transform_batch",
                            f"returned {len(out)} results for {len(chunk)} items",
                        )
                    results.extend(out)
                else:
                    assert single_fn is not None
                    results.extend(single_fn(item, deadline) for item in chunk)
            return results

        return self._run("transform_batch", timeout, body)

    atransform = awaitable(transform)
    atransform_batch = awaitable(transform_batch)


class RerankerHandle(PluginHandle):
    """Calls one reranker plugin."""

    plugin_type = "reranker"
    __slots__ = ()

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_k: int | None = None,
        timeout: float | None = None,
    ) -> list[RankResult]:
        """Documents ranked for ``query``, best first; each index appears once.

        With ``capabilities.maxBatchSize`` the documents are scored in chunks, which
        assumes the plugin's scores are comparable across calls (pointwise scoring).
        """
        _require_str(query, "query")
        docs = _require_texts(documents, "documents")
        if top_k is not None and top_k < 0:
            raise InvalidInput(f"top_k must be >= 0, got {top_k}")

        def body(live: LivePlugin, deadline: Deadline) -> list[RankResult]:
            if not docs:
                return []
            fn = live.hooks["rerank"]
            results: list[RankResult] = []
            offset = 0
            chunks = 0
            for chunk in self._chunks(live, docs):
                chunks += 1
                deadline.check()
                ranked = to_rank_results(fn(query, chunk, deadline), chunk, live.name)
                results.extend(RankResult(r.index + offset, r.score, r.document) for r in ranked)
                offset += len(chunk)
            if chunks > 1:
                results.sort(key=lambda r: (-r.score, r.index))
            return results if top_k is None else results[:top_k]

        return self._run("rerank", timeout, body)

    arerank = awaitable(rerank)


class GeneratorHandle(PluginHandle):
    """Calls one generator plugin."""

    plugin_type = "generator"
    __slots__ = ()

    def generate(self, prompt: str, *, timeout: float | None = None, **options: Any) -> str:
        """The whole answer for ``prompt``; ``options`` go to the plugin as a mapping."""
        _require_str(prompt, "prompt")

        def body(live: LivePlugin, deadline: Deadline) -> str:
            return "".join(self._chunks_of(live, prompt, options, deadline, prefer_whole=True))

        return self._run("generate", timeout, body)

    def generate_stream(
        self,
        prompt: str,
        callback: Callable[[str], Any] | None = None,
        *,
        timeout: float | None = None,
        **options: Any,
    ) -> Generator[str, None, None]:
        """Yield the answer's chunks as the plugin produces them.

        With ``callback``, each chunk is also passed to it (the spec's
        ``GenerateStream(ctx, prompt, callback)``). ``callback`` and ``timeout`` are
        therefore not available as generation option names. The call counts as in flight until
        the iterator is exhausted or closed, so a reload waits for it.
        """
        _require_str(prompt, "prompt")
        if callback is not None and not callable(callback):
            raise InvalidInput(f"callback must be callable, got {type(callback).__name__}")
        live = self._acquire()
        return self._stream(live, prompt, callback, timeout, options)

    def _stream(
        self,
        live: LivePlugin,
        prompt: str,
        callback: Callable[[str], Any] | None,
        timeout: float | None,
        options: Mapping[str, Any],
    ) -> Generator[str, None, None]:
        started = time.perf_counter()
        failed = True
        deadline = Deadline(
            live.timeout if timeout is None else timeout, live.name, "generate_stream"
        )
        try:
            for chunk in self._chunks_of(live, prompt, options, deadline):
                if callback is not None:
                    callback(chunk)
                yield chunk
            failed = False
        except GeneratorExit:
            failed = False
            raise
        except Exception as exc:
            self._fail(live, "generate_stream", exc)
        finally:
            live.exit(started, failed)

    @staticmethod
    def _chunks_of(
        live: LivePlugin,
        prompt: str,
        options: Mapping[str, Any],
        deadline: Deadline,
        prefer_whole: bool = False,
    ) -> Iterator[str]:
        """The answer's chunks: from ``generate_stream``, or ``generate`` as one chunk
        (preferred when the caller wants the whole answer anyway)."""
        fn = live.hooks.get("generate_stream")
        if fn is None or (prefer_whole and "generate" in live.hooks):
            answer = live.hooks["generate"](prompt, options, deadline)
            if not isinstance(answer, str):
                raise PluginOutputError(
                    live.name, "generate", f"returned {type(answer).__name__}, not str"
                )
            yield answer
            return
        stream = fn(prompt, options, deadline)
        try:
            for chunk in stream:
                if not isinstance(chunk, str):
                    raise PluginOutputError(
                        live.name, "generate_stream", f"yielded {type(chunk).__name__}, not str"
                    )
                yield chunk
                deadline.check()
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    agenerate = awaitable(generate)

    async def agenerate_stream(
        self, prompt: str, *, timeout: float | None = None, **options: Any
    ) -> AsyncIterator[str]:
        """Awaitable :meth:`generate_stream`: each chunk is produced in a worker thread."""
        stream = self.generate_stream(prompt, timeout=timeout, **options)
        done = object()
        try:
            while True:
                chunk = await asyncio.to_thread(next, stream, done)
                if chunk is done:
                    return
                yield chunk  # type: ignore[misc]
        finally:
            stream.close()


class StorageHandle(PluginHandle):
    """Calls one storage plugin. Keys are ``str``, values ``bytes``."""

    plugin_type = "storage"
    __slots__ = ()

    def store(self, key: str, data: bytes, *, timeout: float | None = None) -> None:
        """Store ``data`` under ``key``; returns once the plugin acknowledged the write."""
        _require_key(key)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidInput(f"data must be bytes, got {type(data).__name__}")
        payload = bytes(data)
        self._run("store", timeout, lambda live, d: live.hooks["store"](key, payload, d))

    def retrieve(self, key: str, *, timeout: float | None = None) -> bytes | None:
        """The bytes under ``key``, or ``None`` when there is no such key."""
        _require_key(key)

        def body(live: LivePlugin, deadline: Deadline) -> bytes | None:
            out = live.hooks["retrieve"](key, deadline)
            if out is None or isinstance(out, bytes):
                return out
            if isinstance(out, (bytearray, memoryview)):
                return bytes(out)
            raise PluginOutputError(
                live.name, "retrieve", f"returned {type(out).__name__}, not bytes or None"
            )

        return self._run("retrieve", timeout, body)

    def delete(self, key: str, *, timeout: float | None = None) -> bool:
        """Remove ``key``; ``True`` if it existed."""
        _require_key(key)
        return bool(self._run("delete", timeout, lambda live, d: live.hooks["delete"](key, d)))

    astore = awaitable(store)
    aretrieve = awaitable(retrieve)
    adelete = awaitable(delete)


def _require_key(key: Any) -> None:
    _require_str(key, "key")
    if not key:
        raise InvalidInput("key must not be empty")


class AuthHandle(PluginHandle):
    """Calls one auth plugin (the manager's ``authenticate``/``authorize`` ask them all)."""

    plugin_type = "auth"
    __slots__ = ()

    def authenticate(
        self, credentials: Mapping[str, str], *, timeout: float | None = None
    ) -> Identity | None:
        """The identity this plugin recognises in ``credentials``, or ``None``."""
        if not isinstance(credentials, Mapping):
            raise InvalidInput(f"credentials must be a mapping, got {type(credentials).__name__}")

        def body(live: LivePlugin, deadline: Deadline) -> Identity | None:
            out = live.hooks["authenticate"](credentials, deadline)
            if out is None:
                return None
            if not isinstance(out, Identity):
                raise PluginOutputError(
                    live.name, "authenticate", f"returned {type(out).__name__}, not Identity"
                )
            return out if out.plugin == live.name else _with_plugin(out, live.name)

        return self._run("authenticate", timeout, body)

    def authorize(
        self, identity: Identity, resource: str, action: str, *, timeout: float | None = None
    ) -> bool | None:
        """``True`` (allow), ``False`` (deny) or ``None`` (abstain, or no ``authorize`` hook)."""
        _require_str(resource, "resource")
        _require_str(action, "action")

        def body(live: LivePlugin, deadline: Deadline) -> bool | None:
            fn = live.hooks.get("authorize")
            if fn is None:
                return None
            out = fn(identity, resource, action, deadline)
            if out is not None and not isinstance(out, (bool, np.bool_)):
                raise PluginOutputError(
                    live.name, "authorize", f"returned {type(out).__name__}, not bool or None"
                )
            return None if out is None else bool(out)

        return self._run("authorize", timeout, body)

    aauthenticate = awaitable(authenticate)
    aauthorize = awaitable(authorize)


def _with_plugin(identity: Identity, plugin: str) -> Identity:
    return attrs.evolve(identity, plugin=plugin)


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
