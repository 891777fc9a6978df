"""Dynamic batching: concurrent single-text requests to one vectorizer, one plugin call.

Only for plugins whose manifest declares ``capabilities.batchSafe: true`` (a text's
vector does not depend on the other texts of its batch), and only while
``batch_window_ms`` is more than 0. Every route that vectorizes one text
(``/vectors``, ``/inference/<name>/vectors``, ``/v1/embeddings``, ``/api/embed``,
``/api/embeddings``, ``/v1/plugins/<name>/vectorize``) goes through
:func:`weaviate_ext.serve.ops.vectorize`, which hands a text the cache does not hold to
the plugin's :class:`Batcher`.

How a batch is formed (all in the event loop, no thread of its own):

* a request joins the plugin's queue; a batch leaves it when a *lane* is free (at most
  :data:`LANES` batches of a plugin run at once) and the queue holds ``maxBatchSize``
  texts, or as many as the last batches had (so a lone client never waits), or its
  oldest text has waited the window. While every lane is busy, the queue fills up;
  when a batch ends, the next one leaves at once with whatever is queued;
* one batch is one plugin call (``vectorize_batch``, or ``vectorize_text`` for a batch
  of one) through :meth:`ServeState.call <weaviate_ext.serve.state.ServeState.call>`:
  one slot of the plugin's bulkhead, one call in the metrics (and the batch and its
  size in ``weaviate_ext_serve_batches_total`` / ``weaviate_ext_serve_batch_size``);
* each caller gets its own row, waits within its own deadline (its wait in the queue
  counts) and gets its own error: a text the handle would refuse is refused before it
  joins the queue; a batch refused as invalid input, or failed by the plugin, is
  retried text by text so that only the bad text's request fails; a non-finite row
  fails only its own request. A caller that gives up (its deadline, a closed
  connection) leaves its batch; if nobody is left the plugin is not called.
* when the server stops, queued texts are sent at once and running batches get a few
  seconds to end; whatever is left is answered 503, never left hanging.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np

from weaviate_ext.errors import (
    DimensionMismatch,
    InvalidInput,
    PluginCallError,
    PluginOutputError,
)
from weaviate_ext.handles import VectorizerHandle
from weaviate_ext.inputs import check_text
from weaviate_ext.outputs import Vector
from weaviate_ext.serve.errors import ApiError, from_framework

if TYPE_CHECKING:
    from weaviate_ext.serve.state import ServeState

LANES = 1
"""Batches of one plugin running at once: while they run, the next batch fills up."""

DEFAULT_MAX_SIZE = 32
"""Texts in one batch when the plugin declares no ``maxBatchSize``."""

CLOSE_WAIT = 5.0
"""Seconds running batches are given to end when the server stops."""

RETRIED_TEXT_BY_TEXT = (InvalidInput, PluginCallError, PluginOutputError, DimensionMismatch)
"""Errors of a batch call that may be one text's fault: the batch is retried text by
text (exact types of the plugin-call errors: not a deadline, crash or busy plugin)."""


class _Item:
    """One caller's text, waiting for its row."""

    __slots__ = ("arrived", "future", "handle", "text")

    def __init__(
        self, handle: VectorizerHandle, text: str, future: asyncio.Future[Any], arrived: float
    ) -> None:
        self.handle = handle
        self.text = text
        self.future = future
        self.arrived = arrived


def _copy(error: ApiError) -> ApiError:
    """A fresh answer with the same status and message, for one more caller."""
    answer = ApiError(
        error.status, error.message, plugin=error.plugin, kind=error.kind, headers=error.headers
    )
    answer.cause = error.cause
    return answer


def _retry_text_by_text(error: ApiError) -> bool:
    cause = error.cause
    return isinstance(cause, InvalidInput) or type(cause) in RETRIED_TEXT_BY_TEXT


class Batcher:
    """The queue of one vectorizer's single-text requests, and its running batches.

    :param state: the server state that calls the plugin.
    :param name: the plugin.
    :param window: the longest wait for more texts, in seconds (more than 0).
    """

    def __init__(self, state: ServeState, name: str, window: float) -> None:
        self.state = state
        self.name = name
        self.window = window
        self.queue: collections.deque[_Item] = collections.deque()
        self.running = 0
        """Batches in flight."""
        self.expected = 1
        """How many texts a batch waits for (besides the window): about the size of the
        last batches, so a lone client never waits and 16 clients fill one batch."""
        self.closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- callers ----------------------------------------------------------------------

    async def vectorize(self, handle: VectorizerHandle, text: str, limit: float) -> Vector:
        """The vector of ``text`` (shape ``(dims,)``), computed in a batch with the texts
        of concurrent callers; 504 if it did not come within ``limit`` seconds."""
        try:
            if not text.isascii():  # what the handle refuses, refused alone
                check_text(text, "text")
        except InvalidInput as exc:
            answer = from_framework(exc)
            answer.plugin = self.name
            raise answer from None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Vector] = loop.create_future()
        self.queue.append(_Item(handle, text, future, loop.time()))
        self._dispatch()
        try:
            with anyio.fail_after(limit):
                return await future
        except TimeoutError:
            raise ApiError(
                504,
                f"plugin {self.name!r} vectorize: no answer within {limit:g}s",
                plugin=self.name,
            ) from None

    # -- forming batches ------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start every batch that is due, while lanes are free."""
        queue = self.queue
        loop = asyncio.get_running_loop()
        while queue and self.running < LANES:
            while queue and queue[0].future.done():  # its caller left
                queue.popleft()
            if not queue:
                break
            size = self._max_size(queue[0].handle)
            count = len(queue)
            due = queue[0].arrived + self.window
            if not (self.closing or count >= size or count >= self.expected or loop.time() >= due):
                if self._timer is None:
                    self._timer = loop.call_at(due, self._on_timer)
                return
            batch = [queue.popleft() for _ in range(min(count, size))]
            self.expected = max(len(batch), self.expected // 2)
            self.running += 1
            task = loop.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._timer is not None and (not queue or self.running >= LANES):
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _max_size(self, handle: VectorizerHandle) -> int:
        declared = handle.manifest.spec.capabilities.max_batch_size
        return max(1, min(declared or DEFAULT_MAX_SIZE, self.state.settings.max_batch))

    # -- running batches ----------------------------------------------------------------

    async def _run(self, batch: list[_Item]) -> None:
        try:
            items = [item for item in batch if not item.future.done()]
            if items:
                metrics = self.state.metrics
                metrics.batches.labels(self.name).inc()
                metrics.batch_size.labels(self.name).observe(len(items))
                await self._call(items)
        finally:
            for item in batch:  # only when cancelled (the server stops)
                if not item.future.done():
                    item.future.set_exception(
                        ApiError(503, "the server is stopping", plugin=self.name)
                    )
            self.running -= 1
            if not self.closing or self.queue:
                with contextlib.suppress(RuntimeError):  # (a closed event loop)
                    self._dispatch()

    async def _call(self, items: list[_Item]) -> None:
        """One plugin call for ``items``; each gets its row or its own error."""
        state = self.state
        handle = items[0].handle
        timeout = state.settings.timeout
        texts = [item.text for item in items]
        try:
            if len(texts) == 1:
                text = texts[0]
                matrix = await state.call(
                    handle, "vectorize", lambda: handle.vectorize_text(text, timeout=timeout)[None]
                )
            else:
                matrix = await state.call(
                    handle, "vectorize", lambda: handle.vectorize_batch(texts, timeout=timeout)
                )
        except ApiError as exc:
            if len(items) > 1 and _retry_text_by_text(exc):
                await asyncio.gather(*(self._call([item]) for item in items))
                return
            for item in items:
                if not item.future.done():
                    item.future.set_exception(_copy(exc))
            return
        except Exception as exc:  # not a plugin's error: the same for every caller
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for row, item in zip(matrix, items, strict=True):
            if item.future.done():
                continue
            if np.isfinite(row).all():
                item.future.set_result(row)
            else:
                item.future.set_exception(
                    ApiError(
                        502,
                        f"plugin {self.name!r} returned a non-finite vector value",
                        plugin=self.name,
                    )
                )

    # -- stopping -------------------------------------------------------------------------

    async def close(self) -> None:
        """Send what is queued at once, give running batches :data:`CLOSE_WAIT` seconds,
        then answer whatever is left with 503."""
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._dispatch()
        tasks = set(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_WAIT)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        while self.queue:  # no lane came free in time
            item = self.queue.popleft()
            if not item.future.done():
                item.future.set_exception(ApiError(503, "the server is stopping", plugin=self.name))
