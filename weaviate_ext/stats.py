"""Per-plugin call counters, kept by the handles and read with ``manager.stats()``."""

from __future__ import annotations

import threading

import attrs


@attrs.frozen
class PluginStats:
    """A snapshot of one plugin's counters since it was loaded.

    ``mean_ms`` and ``max_ms`` are wall-clock latencies of calls through its handle,
    errors included. ``in_flight`` is the number of calls running at the snapshot.
    """

    calls: int
    errors: int
    total_ms: float
    max_ms: float
    in_flight: int

    @property
    def mean_ms(self) -> float:
        """Mean latency per call in milliseconds (0 before the first call)."""
        return self.total_ms / self.calls if self.calls else 0.0


class CallCounter:
    """Thread-safe counters plus the in-flight count that decides when a retired plugin
    may close. One lock guards both, so a call costs two uncontended acquisitions."""

    __slots__ = ("_lock", "calls", "errors", "in_flight", "max_s", "total_s")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.errors = 0
        self.in_flight = 0
        self.total_s = 0.0
        self.max_s = 0.0

    def snapshot(self) -> PluginStats:
        """Copy the counters as a :class:`PluginStats`."""
        with self._lock:
            return PluginStats(
                calls=self.calls,
                errors=self.errors,
                total_ms=self.total_s * 1e3,
                max_ms=self.max_s * 1e3,
                in_flight=self.in_flight,
            )
