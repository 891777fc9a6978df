"""The vectorizer handle: float32 outputs, dimension checks, batch chunks."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from weaviate_ext.aio import awaitable
from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import (
    PluginOutputError,
)
from weaviate_ext.handles.base import PluginHandle, require_str, require_texts
from weaviate_ext.live import LivePlugin
from weaviate_ext.outputs import Vector, to_matrix, to_vector

_TEXT = "vectorize_text"
_BATCH = "vectorize_batch"
_ndarray = np.ndarray
_F32 = np.dtype(np.float32)
_perf_counter = time.perf_counter


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
        if type(text) is not str or not text.isascii():  # (the fast path: ASCII str)
            require_str(text, "text")
        live = self._slot.live
        if live is None or not live.enter():
            live, timeout = self._wait("vectorize_text", timeout)
        started = _perf_counter()
        failed = True
        try:
            call = live.calls.get(_TEXT)
            if call is not None:
                fn, wants_deadline = call
                deadline = (
                    Deadline(live.timeout if timeout is None else timeout, live.name, _TEXT)
                    if wants_deadline
                    else None
                )
                vector: Vector = fn(text, deadline)
                # (the common case checked inline: a float32 array of the declared shape)
                if (
                    type(vector) is not _ndarray
                    or vector.dtype is not _F32
                    or vector.shape != live.vector_shape
                ):
                    vector = to_vector(vector, live.dims, live.name, _TEXT)
            else:
                deadline = live.deadline(_BATCH, timeout)
                out = live.hooks[_BATCH]([text], deadline)
                vector = to_matrix(out, 1, live.dims, live.name, _BATCH)[0]
            failed = False
            return vector
        except Exception as exc:
            self._fail(live, _TEXT, exc)
        finally:
            live.exit(started, failed)

    def vectorize_batch(self, texts: Sequence[str], *, timeout: float | None = None) -> Vector:
        """Texts to a matrix of shape ``(len(texts), dims)``, row ``i`` for ``texts[i]``.

        Batches larger than ``capabilities.maxBatchSize`` are split into chunks of texts
        of similar length (a stable sort by character length, so each plugin call pads
        little); the rows come back in the caller's order. A batch that fits in one chunk
        goes to the plugin as given. The deadline covers the whole batch and is checked
        before each chunk.
        """
        items = require_texts(texts)
        live = self._slot.live
        if live is None or not live.enter():
            live, timeout = self._wait(_BATCH, timeout)
        started = _perf_counter()
        failed = True
        try:
            call = live.calls.get(_BATCH)
            limit = live.max_batch_size
            if call is not None and items and (not limit or len(items) <= limit):
                # one chunk (the common case), inline: one plugin call, its output checked
                fn, wants_deadline = call
                deadline = (
                    Deadline(live.timeout if timeout is None else timeout, live.name, _BATCH)
                    if wants_deadline
                    else None
                )
                out: Vector = fn(items, deadline)
                if (
                    type(out) is not _ndarray
                    or out.dtype is not _F32
                    or out.shape != (len(items), live.dims)
                ):
                    out = to_matrix(out, len(items), live.dims, live.name, _BATCH)
            else:
                deadline = Deadline(live.timeout if timeout is None else timeout, live.name, _BATCH)
                out = self._batch(live, items, deadline)
            failed = False
            return out
        except Exception as exc:
            self._fail(live, _BATCH, exc)
        finally:
            live.exit(started, failed)

    def _batch(self, live: LivePlugin, texts: list[str], deadline: Deadline) -> Vector:
        dims = live.dims
        if not texts:
            return np.empty((0, dims or 0), dtype=np.float32)
        batch_fn = live.hooks.get("vectorize_batch")
        single_fn = live.hooks.get("vectorize_text")
        # More than one chunk for the batch hook: cut the chunks from one global length
        # order (each then pads little) and write each chunk's rows straight to its
        # texts' places in the caller's order.
        order = self._length_order(live, texts) if batch_fn is not None else None
        rows_of = None
        if order is not None:
            texts = [texts[i] for i in order]
            rows_of = np.asarray(order, dtype=np.intp)
        result: Vector | None = None
        start = 0
        for chunk in self._chunks(live, texts):
            deadline.check()
            if batch_fn is not None:
                part = to_matrix(
                    batch_fn(chunk, deadline), len(chunk), dims, live.name, "vectorize_batch"
                )
            else:
                assert single_fn is not None
                part = np.stack(
                    [
                        to_vector(single_fn(t, deadline), dims, live.name, "vectorize_text")
                        for t in chunk
                    ]
                )
            if result is None:
                if len(part) == len(texts):  # a single chunk, in the caller's order
                    return part
                result = np.empty((len(texts), part.shape[1]), dtype=np.float32)
            elif part.shape[1] != result.shape[1]:
                raise PluginOutputError(
                    live.name, "vectorize_batch", "returned vectors of different lengths"
                )
            stop = start + len(part)
            result[slice(start, stop) if rows_of is None else rows_of[start:stop]] = part
            start = stop
        assert result is not None
        return result

    avectorize_text = awaitable(vectorize_text)
    avectorize_batch = awaitable(vectorize_batch)
