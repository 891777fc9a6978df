"""Handles of the text types: transformer, reranker, generator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, cast

from weaviate_ext.aio import awaitable
from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import (
    InvalidInput,
    PluginOutputError,
)
from weaviate_ext.handles.base import PluginHandle, require_str, require_texts
from weaviate_ext.live import LivePlugin
from weaviate_ext.outputs import to_rank_results
from weaviate_ext.types import RankResult


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
        assumes the plugin's scores are comparable across calls (pointwise scoring);
        more than one chunk's documents are chunked in order of length (each call pads
        little), and the indexes are the caller's.
        """
        require_str(query, "query")
        docs = require_texts(documents, "documents")
        if top_k is not None and top_k < 0:
            raise InvalidInput(f"top_k must be >= 0, got {top_k}")

        def body(live: LivePlugin, deadline: Deadline) -> list[RankResult]:
            if not docs:
                return []
            fn = live.hooks["rerank"]
            results: list[RankResult] = []
            offset = 0
            chunks = 0
            order = self._length_order(live, docs)
            work = docs if order is None else [docs[i] for i in order]
            for chunk in self._chunks(live, work):
                chunks += 1
                deadline.check()
                ranked = to_rank_results(fn(query, chunk, deadline), chunk, live.name)
                if order is None:
                    results.extend(
                        RankResult(r.index + offset, r.score, r.document) for r in ranked
                    )
                else:
                    results.extend(
                        RankResult(order[r.index + offset], r.score, r.document) for r in ranked
                    )
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

    def generate(self, /, prompt: str, *, timeout: float | None = None, **options: Any) -> str:
        """The whole answer for ``prompt``; ``options`` go to the plugin as a mapping."""
        require_str(prompt, "prompt")

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
        require_str(prompt, "prompt")
        if callback is not None and not callable(callback):
            raise InvalidInput(f"callback must be callable, got {type(callback).__name__}")
        live, timeout = self._acquire("generate_stream", timeout)
        stream = self._stream(live, prompt, callback, timeout, options)
        # run it to its first (empty) yield, inside the try that releases the call: now
        # closing the stream, or dropping it, before reading a chunk still counts the
        # call out (a generator that never started would skip its finally)
        next(stream)
        return cast("Generator[str, None, None]", stream)

    def _stream(
        self,
        live: LivePlugin,
        prompt: str,
        callback: Callable[[str], Any] | None,
        timeout: float | None,
        options: Mapping[str, Any],
    ) -> Generator[str | None, None, None]:
        started = time.perf_counter()
        failed = True
        deadline = Deadline(
            live.timeout if timeout is None else timeout, live.name, "generate_stream"
        )
        try:
            yield None  # primed by generate_stream
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
