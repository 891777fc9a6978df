"""The handle machinery every type shares: slots, in-flight counting, errors, chunks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, NoReturn, TypeVar

from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import (
    InvalidInput,
    PluginNotLoaded,
)
from weaviate_ext.inputs import check_key
from weaviate_ext.live import LivePlugin
from weaviate_ext.manifest import Manifest
from weaviate_ext.stats import PluginStats

T = TypeVar("T")

FailureListener = Callable[[str, str, BaseException], None]


class Slot:
    """The current version of one named plugin; swapped atomically by reloads."""

    __slots__ = ("live", "name", "on_failure")

    def __init__(self, live: LivePlugin, on_failure: FailureListener) -> None:
        self.name = live.name
        self.live: LivePlugin | None = live
        self.on_failure = on_failure


def require_str(value: Any, what: str) -> None:
    """Refuse a non-``str`` argument with :class:`InvalidInput` naming it."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be str, got {type(value).__name__}")


def require_texts(texts: Any, what: str = "texts") -> list[str]:
    """``texts`` as a list of ``str``, or :class:`InvalidInput` naming what is wrong."""
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


def require_key(key: Any) -> None:
    """Refuse a storage key that is not a non-empty ``str``."""
    check_key(key)


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
