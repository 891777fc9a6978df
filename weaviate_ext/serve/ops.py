"""What every API does with a plugin: vectorize, rerank, generate (whole or streamed).

The inference-container, OpenAI, Ollama and native endpoints only translate their
request and answer formats; the calls, the cache, ``dimensions`` truncation and the
checks of what a plugin returned live here, once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio
import anyio.to_thread
import numpy as np

from weaviate_ext.errors import PluginBusy
from weaviate_ext.handles import GeneratorHandle
from weaviate_ext.outputs import Vector
from weaviate_ext.serve.cache import MISSING
from weaviate_ext.serve.errors import ApiError
from weaviate_ext.serve.state import GRACE, ServeState, error_kind, finite
from weaviate_ext.types import RankResult

RESERVED_OPTIONS = frozenset({"prompt", "callback", "timeout"})
"""Generation option names the handle keeps for itself."""


# ---------------------------------------------------------------------------------------
# vectorize
# ---------------------------------------------------------------------------------------


async def vectorize(
    state: ServeState, name: str, texts: list[str], *, dimensions: int | None = None
) -> Vector:
    """Vectors of ``texts`` (one row each) from vectorizer ``name``.

    ``dimensions`` smaller than the model's keeps the first values of each vector
    (Matryoshka-style) and, when the plugin declares ``capabilities.normalized``,
    scales each row back to unit length. Larger than the model's is a 422.
    """
    handle = state.require_manager().get_vectorizer(name)
    capabilities = handle.manifest.spec.capabilities
    declared = capabilities.dimensions
    if dimensions is not None:
        if dimensions < 1:
            raise ApiError(422, f"dimensions must be at least 1, got {dimensions}")
        if declared is not None and dimensions > declared:
            raise ApiError(
                422,
                f"dimensions {dimensions} is more than the {declared} of {name!r}",
                plugin=name,
            )
    cache = state.cache if capabilities.deterministic else None
    rows: list[Vector | None] = [None] * len(texts)
    missing = list(range(len(texts)))
    keys: list[tuple[Any, ...]] = []
    if cache is not None:
        generation = cache.generation(name)
        keys = [(name, generation, "vector", text) for text in texts]
        missing = []
        for i, key in enumerate(keys):
            hit = cache.get(key)
            if hit is MISSING:
                missing.append(i)
            else:
                rows[i] = hit
        hits = len(texts) - len(missing)
        if hits:
            state.metrics.cache_hits.labels(name).inc(hits)
        if missing:
            state.metrics.cache_misses.labels(name).inc(len(missing))
    if missing:
        todo = [texts[i] for i in missing]
        timeout = state.settings.timeout
        batcher = state.batcher(handle) if len(todo) == 1 else None
        if batcher is not None:  # one text: batched with concurrent requests' texts
            limit = state.call_timeout(handle) + GRACE
            matrix = (await batcher.vectorize(handle, todo[0], limit))[None]
        elif len(todo) == 1:
            matrix = await state.call(
                handle, "vectorize", lambda: handle.vectorize_text(todo[0], timeout=timeout)[None]
            )
        else:
            matrix = await state.call(
                handle, "vectorize", lambda: handle.vectorize_batch(todo, timeout=timeout)
            )
        finite(matrix, name, "vector value")
        for j, i in enumerate(missing):
            row = matrix[j]
            if cache is not None:
                row = row.copy()
                row.setflags(write=False)
                cache.put(keys[i], row)
            rows[i] = row
    result = np.stack([row for row in rows if row is not None]).astype(np.float32, copy=False)
    if dimensions is not None and dimensions < result.shape[1]:
        result = result[:, :dimensions]
        if capabilities.normalized:
            norms = np.linalg.norm(result.astype(np.float64), axis=1, keepdims=True)
            result = np.divide(result, norms, out=result.copy(), where=norms > 0).astype(np.float32)
    elif dimensions is not None and dimensions > result.shape[1]:
        raise ApiError(
            422,
            f"dimensions {dimensions} is more than the {result.shape[1]} of {name!r}",
            plugin=name,
        )
    return result


# ---------------------------------------------------------------------------------------
# rerank
# ---------------------------------------------------------------------------------------


async def rerank(
    state: ServeState, name: str, query: str, documents: list[str]
) -> list[RankResult]:
    """``documents`` ranked for ``query`` by reranker ``name``, best first.

    Cached (for deterministic plugins) per query and whole document list.
    """
    handle = state.require_manager().get_reranker(name)
    if not documents:
        return []
    cache = state.cache if handle.manifest.spec.capabilities.deterministic else None
    key: tuple[Any, ...] = ()
    if cache is not None:
        key = (name, cache.generation(name), "rerank", query, tuple(documents))
        hit = cache.get(key)
        if hit is not MISSING:
            state.metrics.cache_hits.labels(name).inc()
            return list(hit)
        state.metrics.cache_misses.labels(name).inc()
    timeout = state.settings.timeout
    ranked = await state.call(
        handle, "rerank", lambda: handle.rerank(query, documents, timeout=timeout)
    )
    finite([r.score for r in ranked], name, "score")
    if cache is not None:
        cache.put(key, tuple(ranked))
    return ranked


async def scores_in_input_order(
    state: ServeState, name: str, query: str, documents: list[str]
) -> list[float]:
    """The score of each document, in the order the documents were given."""
    ranked = await rerank(state, name, query, documents)
    scores = [0.0] * len(documents)
    for result in ranked:
        scores[result.index] = result.score
    return scores


# ---------------------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------------------


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Generation options without ``None`` values; reserved names are a 422."""
    reserved = sorted(RESERVED_OPTIONS & set(options))
    if reserved:
        raise ApiError(422, f"options {reserved} cannot be passed to a generator")
    return {key: value for key, value in options.items() if value is not None}


async def generate(state: ServeState, name: str, prompt: str, options: Mapping[str, Any]) -> str:
    """The whole answer of generator ``name`` for ``prompt``."""
    handle = state.require_manager().get_generator(name)
    opts = check_options(options)
    timeout = state.settings.timeout
    text = await state.call(
        handle, "generate", lambda: handle.generate(prompt, timeout=timeout, **opts)
    )
    return text


class ChunkStream:
    """A generator plugin's answer, chunk by chunk, each pulled in a worker thread.

    Made by :func:`open_stream`, which already pulls the first chunk: a plugin that fails
    at once fails the request with a proper status, before any byte of a stream is sent.
    Always :meth:`aclose` it (idempotent): that ends the plugin call, which counts as in
    flight (a reload waits for it) and holds a slot of the plugin's bulkhead until then.
    """

    def __init__(
        self,
        state: ServeState,
        handle: GeneratorHandle,
        iterator: Any,
        release: Callable[[], None] | None = None,
    ) -> None:
        self.state = state
        self.handle = handle
        self.plugin = handle.name
        self._iterator = iterator
        self._release = release
        self._started = time.perf_counter()
        self._first: str | None = None
        self._closed = False
        self._error: str | None = None
        self.chunks = 0
        """Chunks delivered so far."""

    async def _pull(self) -> str | None:
        try:
            chunk: str | None = await anyio.to_thread.run_sync(
                next, self._iterator, None, limiter=self.state.limiter
            )
        except Exception as exc:
            self._error = error_kind(exc)
            raise
        return chunk

    async def __aiter__(self) -> AsyncIterator[str]:
        """The chunks, the first one included."""
        chunk = self._first
        self._first = None
        while chunk is not None:
            self.chunks += 1
            yield chunk
            chunk = await self._pull()

    async def aclose(self) -> None:
        """End the plugin call (closing the plugin's stream) and count it."""
        if self._closed:
            return
        self._closed = True
        try:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._iterator.close)
        finally:
            if self._release is not None:
                self._release()  # the bulkhead slot, once the plugin's stream is closed
        self.state.metrics.observe_call(
            self.plugin, "generate_stream", time.perf_counter() - self._started, self._error
        )


async def open_stream(
    state: ServeState, name: str, prompt: str, options: Mapping[str, Any]
) -> ChunkStream:
    """Start generator ``name`` on ``prompt``; the first chunk is already pulled.

    The stream holds a slot of the plugin's bulkhead until it is closed: taken first,
    waiting within the call's deadline (else :class:`~weaviate_ext.PluginBusy`, a 503).
    """
    handle = state.require_manager().get_generator(name)
    opts = check_options(options)
    bulkhead = state.bulkhead(handle)
    started = time.perf_counter()
    try:
        ticket = await bulkhead.enter(handle, "generate_stream", state.call_timeout(handle))
    except PluginBusy:
        elapsed = time.perf_counter() - started
        state.metrics.observe_call(name, "generate_stream", elapsed, "busy")
        raise
    try:
        # in a worker thread: the handle's own bulkhead may make it wait
        iterator = await anyio.to_thread.run_sync(
            lambda: handle.generate_stream(prompt, timeout=state.settings.timeout, **opts),
            limiter=state.limiter,
        )
    except BaseException:
        bulkhead.release(ticket)
        raise
    stream = ChunkStream(state, handle, iterator, lambda: bulkhead.release(ticket))
    try:
        stream._first = await stream._pull()
    except BaseException:
        await stream.aclose()
        raise
    return stream


def word_count(*texts: str) -> int:
    """Whitespace-separated words: what the APIs report as token counts."""
    return sum(len(text.split()) for text in texts)
