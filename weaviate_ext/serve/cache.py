"""The result cache: repeated texts are answered from memory, never differently.

Only plugins whose manifest declares ``capabilities.deterministic: true`` are cached
(equal input gives equal output). A key holds everything an answer depends on: the
plugin, its *generation* (bumped by every load, reload and unload of that plugin, so an
answer of an old version is never served after a reload), the operation and its whole
input: a vector per text (a vectorizer's output for a text does not depend on the rest
of its batch), a ranking per query *and* document list (rerankers such as BM25 score a
document against the others, so a score is only reused for the same list).

The generation is read before the plugin is called: a call that raced with a reload
stores its answer under the old generation, where nobody will look for it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

MISSING: Any = object()
"""What :meth:`ResultCache.get` returns for a key it does not hold."""


class ResultCache:
    """A thread-safe, bounded (least recently used out) mapping of results."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("a cache holds at least one entry")
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def generation(self, plugin: str) -> int:
        """The current generation of ``plugin``: part of every key of its results."""
        return self._generations.get(plugin, 0)

    def invalidate(self, plugin: str) -> None:
        """Forget every result of ``plugin`` (it was loaded, reloaded or unloaded)."""
        with self._lock:
            self._generations[plugin] = self._generations.get(plugin, 0) + 1
            stale = [key for key in self._entries if _plugin_of(key) == plugin]
            for key in stale:
                del self._entries[key]

    def get(self, key: Hashable) -> Any:
        """The value under ``key`` (now the most recently used), or :data:`MISSING`."""
        with self._lock:
            value = self._entries.get(key, MISSING)
            if value is not MISSING:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key``, dropping the least recently used when full.

        A key of an older generation than the plugin's current one is not kept.
        """
        plugin = _plugin_of(key)
        with self._lock:
            if plugin is not None and key[1] != self._generations.get(plugin, 0):  # type: ignore[index]
                return
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


def _plugin_of(key: Hashable) -> str | None:
    """The plugin name a key starts with (keys are ``(plugin, generation, ...)``)."""
    if isinstance(key, tuple) and key and isinstance(key[0], str):
        return key[0]
    return None
