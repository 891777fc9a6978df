"""Which CPUs a gRPC plugin process is pinned to: spread over the host's CPUs.

``resources.cpu: N`` pins a plugin process to ``ceil(N)`` CPUs (``sched_setaffinity``;
it is not a CPU quota). Plugins are spread: each takes the CPUs that the fewest live
plugin processes of this host are pinned to (ties: the lowest CPU number), among the
CPUs the host itself may run on (``os.sched_getaffinity(0)``), and gives them back when
its process is closed. Two plugins with ``cpu: 1`` on a two-CPU host therefore get one
CPU each, rather than both CPU 0.

A plugin asking for as many CPUs as the host has, or more, is not pinned at all.
One allocator serves the whole process (:func:`allocate`, :func:`release`); it is
thread-safe.
"""

from __future__ import annotations

import math
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable


def _host_cpus() -> set[int]:
    return set(os.sched_getaffinity(0))


class CpuAllocator:
    """Hands out CPUs to pinned plugin processes, least-loaded first."""

    def __init__(self, available: Callable[[], Iterable[int]] | None = None) -> None:
        if available is None:
            available = _host_cpus if hasattr(os, "sched_getaffinity") else None
        self._available = available
        self._lock = threading.Lock()
        self._load: Counter[int] = Counter()

    def allocate(self, cores: float | None) -> set[int] | None:
        """The CPUs for a process limited to ``cores`` (``None``: not pinned).

        Not pinned when ``cores`` is ``None``, when CPU affinity is unavailable, or when
        ``ceil(cores)`` is as many CPUs as the host has, or more. What is returned must
        be given back with :meth:`release` once the process is gone.
        """
        if cores is None or self._available is None:
            return None
        wanted = max(1, math.ceil(cores))
        with self._lock:
            available = sorted(set(self._available()))
            if wanted >= len(available):
                return None
            chosen = sorted(available, key=lambda cpu: (self._load[cpu], cpu))[:wanted]
            self._load.update(chosen)
            return set(chosen)

    def release(self, cpus: Iterable[int] | None) -> None:
        """Give back CPUs :meth:`allocate` returned (``None``: nothing to give back)."""
        if not cpus:
            return
        with self._lock:
            for cpu in cpus:
                if self._load[cpu] > 1:
                    self._load[cpu] -= 1
                else:
                    del self._load[cpu]

    def load(self) -> dict[int, int]:
        """How many live pinned processes each CPU has (CPUs with none are left out)."""
        with self._lock:
            return {cpu: count for cpu, count in sorted(self._load.items()) if count}


_allocator = CpuAllocator()


def allocate(cores: float | None) -> set[int] | None:
    """The least-loaded CPUs for a plugin process (see :meth:`CpuAllocator.allocate`)."""
    return _allocator.allocate(cores)


def release(cpus: Iterable[int] | None) -> None:
    """Give back CPUs :func:`allocate` returned."""
    _allocator.release(cpus)


def load() -> dict[int, int]:
    """How many live pinned plugin processes of this host each CPU has."""
    return _allocator.load()
