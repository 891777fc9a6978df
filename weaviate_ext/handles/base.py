"""The handle machinery every type shares: slots, in-flight counting, errors, chunks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, NoReturn, TypeVar

from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import (
    InvalidInput,
    PluginBusy,
    PluginNotLoaded,
)
from weaviate_ext.inputs import AsciiTexts, ascii_strs, check_text
from weaviate_ext.live import LivePlugin
from weaviate_ext.manifest import Manifest
from weaviate_ext.stats import PluginStats

T = TypeVar("T")

FailureListener = Callable[[str, str, BaseException], None]

BUSY_RETRY_MIN = 1.0
BUSY_RETRY_MAX = 30.0
"""Bounds of :attr:`PluginBusy.retry_after` (seconds), which is the plugin's mean call time."""


def busy_error(plugin: str, hook: str, slots: int, waited: float, mean_s: float) -> PluginBusy:
    """The :class:`PluginBusy` of a call that waited ``waited`` seconds for one of the
    ``slots`` of its plugin's bulkhead. ``retry_after`` is about one call's time (a hung
    plugin's calls last their deadline), between :data:`BUSY_RETRY_MIN` and
    :data:`BUSY_RETRY_MAX`."""
    return PluginBusy(
        plugin,
        hook,
        f"busy: all {slots} slots (spec.maxConcurrency) stayed taken for {waited:.1f}s",
        retry_after=min(BUSY_RETRY_MAX, max(BUSY_RETRY_MIN, mean_s)),
    )


class Slot:
    """The current version of one named plugin; swapped atomically by reloads."""

    __slots__ = ("live", "name", "on_failure")

    def __init__(self, live: LivePlugin, on_failure: FailureListener) -> None:
        self.name = live.name
        self.live: LivePlugin | None = live
        self.on_failure = on_failure


def require_str(value: Any, what: str) -> None:
    """Refuse a non-``str`` argument, or text UTF-8 cannot encode (a lone surrogate),
    with :class:`InvalidInput` naming it."""
    check_text(value, what)


def require_texts(texts: Any, what: str = "texts") -> list[str]:
    """``texts`` as a list of ``str``, or :class:`InvalidInput` naming what is wrong."""
    if isinstance(texts, (str, bytes)):
        raise InvalidInput(f"{what} must be a sequence of str, not a single {type(texts).__name__}")
    items: list[str]
    try:
        items = AsciiTexts(texts)
    except TypeError:
        raise InvalidInput(
            f"{what} must be a sequence of str, got {type(texts).__name__}"
        ) from None
    if ascii_strs(items):  # the common case, in one pass
        return items
    items = list(items)  # (not all ASCII: a plain list)
    for i, text in enumerate(items):
        check_text(text, f"{what}[{i}]")
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

    def _acquire(self, hook: str, timeout: float | None) -> tuple[LivePlugin, float | None]:
        """The current version with a slot of its bulkhead taken for one call of ``hook``,
        and what is left of the call's ``timeout`` (``None``: the plugin's own deadline).

        The handles inline the fast path (``live.enter()`` on ``self._slot.live``) and
        call :meth:`_wait` when it fails.
        """
        live = self._slot.live
        if live is not None and live.enter():
            return live, timeout
        return self._wait(hook, timeout)

    def _wait(self, hook: str, timeout: float | None) -> tuple[LivePlugin, float | None]:
        """The slow path of :meth:`_acquire`: follow a reload, or wait for a free slot
        until the call's deadline and raise :class:`PluginBusy` when none came free.

        The wait counts against the call: the timeout returned is what is left of it.
        """
        started = time.monotonic()
        deadline: Deadline | None = None
        while True:
            live = self._slot.live
            if live is None:
                raise PluginNotLoaded(self._slot.name)
            entered = live.enter()
            if entered is None:  # every slot is taken: wait within the call's deadline
                if deadline is None:
                    deadline = Deadline(live.timeout if timeout is None else timeout)
                entered = live.wait_enter(deadline.lock_timeout())
                if entered is None:
                    self._busy(live, hook, time.monotonic() - started)
            if entered:
                if deadline is None or deadline.timeout is None:
                    return live, timeout
                return live, deadline.remaining()

    def _busy(self, live: LivePlugin, hook: str, waited: float) -> NoReturn:
        stats = live.counter.snapshot()
        error = busy_error(live.name, hook, live.max_concurrency, waited, stats.mean_ms / 1e3)
        self._slot.on_failure(live.name, hook, error)
        raise error

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
        live = self._slot.live
        if live is None or not live.enter():
            live, timeout = self._wait(hook, timeout)
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

    @staticmethod
    def _length_order(live: LivePlugin, texts: Sequence[str]) -> list[int] | None:
        """The indexes of ``texts`` shortest first (character length, a stable sort) when
        they make more than one ``maxBatchSize`` chunk; ``None`` when they fit in one.

        Chunks cut from this order hold texts of similar length, so a plugin that pads
        each call to its longest text pads little (a plugin sorting within its own chunk
        cannot do that across chunks). A single chunk keeps the caller's order.
        """
        size = live.manifest.spec.capabilities.max_batch_size
        if not size or len(texts) <= size:
            return None
        lengths = [len(text) for text in texts]
        return sorted(range(len(texts)), key=lengths.__getitem__)
