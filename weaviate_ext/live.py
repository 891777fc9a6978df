"""One loaded version of a plugin: its object, hook functions, counters and lifetime.

A :class:`LivePlugin` is what a handle calls. It counts calls in flight so that, when a
reload or unload retires it, it closes only after the last of them has finished. The
same count is the plugin's bulkhead: at most :attr:`LivePlugin.max_concurrency` calls
are in it at once, so a hung plugin holds only its own slots (docs/serve.md, Bulkheads).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pluggy

from weaviate_ext.deadline import Deadline
from weaviate_ext.dispatch import Registry, adapt, hookimpls, through_registry
from weaviate_ext.errors import (
    PluginCallError,
    ResourceLimitExceeded,
    WeaviateExtError,
)
from weaviate_ext.hookspecs import PLUGIN_LIFECYCLE_HOOKS
from weaviate_ext.manifest import Manifest, PluginConfig, Spec

log = logging.getLogger("weaviate_ext")

_perf_counter = time.perf_counter

REDACTED = "**********"

HookCall = Callable[..., Any]
"""A plugin's hook function adapted to take the spec's arguments positionally."""

DEFAULT_MAX_CONCURRENCY = 8
"""A plugin's bulkhead when its manifest sets neither ``spec.maxConcurrency`` nor
``resources.cpu``: the largest instance pool the wasm runtime runs (its ``MAX_POOL``)."""

SLOTS_PER_CPU = 2
"""Bulkhead slots per core of ``resources.cpu`` (rounded up): a call per core running and
one queued in the plugin, so the cores never wait on the host's side of a call."""


def max_concurrency(spec: Spec) -> int:
    """The size of a plugin's bulkhead: ``spec.maxConcurrency``, else
    :data:`SLOTS_PER_CPU` per core of ``resources.cpu`` (rounded up), else
    :data:`DEFAULT_MAX_CONCURRENCY`."""
    if spec.max_concurrency is not None:
        return max(1, spec.max_concurrency)
    cpu = spec.resources.cpu
    if cpu is None:
        return DEFAULT_MAX_CONCURRENCY
    return SLOTS_PER_CPU * max(1, math.ceil(cpu))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty value of ``secrets`` replaced by a redaction mark."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


class _Waiter:
    """A call waiting for a slot of a :class:`LivePlugin`'s bulkhead: ``wake`` is
    released when it is handed a slot (``granted``) or the plugin is retired."""

    __slots__ = ("granted", "wake")

    def __init__(self) -> None:
        self.granted = False
        self.wake = threading.Lock()
        self.wake.acquire()


class LivePlugin:
    """A plugin object registered in the hook registry, with what calling it needs."""

    def __init__(
        self,
        manifest: Manifest,
        config: PluginConfig,
        obj: object,
        registry: pluggy.PluginManager,
        default_timeout: float | None,
        source: str,
    ) -> None:
        from weaviate_ext.stats import CallCounter

        self.manifest = manifest
        self.config = config
        self.obj = obj
        self.source = source
        self.name = manifest.name
        self.type = manifest.spec.type
        self.timeout = manifest.spec.timeout if manifest.spec.timeout else default_timeout
        capabilities = manifest.spec.capabilities
        self.dims: int | None = capabilities.dimensions
        """``capabilities.dimensions`` (read on every vectorizer call)."""
        self.vector_shape: tuple[int | None] = (self.dims,)
        """The shape of one vector: ``(dims,)``."""
        self.max_batch_size: int | None = capabilities.max_batch_size
        """``capabilities.maxBatchSize`` (``None``: no limit)."""
        self.counter = CallCounter()
        self._lock = self.counter._lock
        self.max_concurrency = max_concurrency(manifest.spec)
        """The size of the bulkhead: calls that may be in the plugin at once."""
        self._queue: deque[_Waiter] = deque()
        """Calls waiting for a slot, first come first served (see :meth:`wait_enter`)."""
        self._retired = False
        self._closed = False
        self._secrets = tuple(s for s in config.secret_values if s)
        self._registry = registry
        self.impls: dict[str, pluggy.HookImpl] = {}
        """The plugin's own implementation of each hook it implements (never registered
        by this object: see :func:`weaviate_ext.dispatch.hookimpls`)."""
        self._spec_args: dict[str, tuple[str, ...]] = {}
        self.direct: dict[str, HookCall] = {}
        """The fast path: each hook's function, adapted to take the spec's arguments."""
        self._direct_wants: dict[str, bool] = {}
        # a plugin object whose runtime cannot enforce deadlines (native code) says so
        # with ``weaviate_ext_uses_deadline = False``: its hooks are passed None and no
        # Deadline is made (a bridge's attribute, in the project's namespace)
        uses_deadline = getattr(obj, "weaviate_ext_uses_deadline", True) is not False
        for hook, impl in hookimpls(registry, obj, self.name).items():
            caller = getattr(registry.hook, hook, None)
            if caller is None or caller.spec is None:
                continue
            spec_args = tuple(caller.spec.argnames)
            self.impls[hook] = impl
            self._spec_args[hook] = spec_args
            self.direct[hook] = adapt(impl, spec_args)
            self._direct_wants[hook] = uses_deadline and "deadline" in impl.argnames
        self.hooks: dict[str, HookCall] = self.direct
        """What a handle calls: :attr:`direct`, or callers through the registry while the
        host has wrappers (:meth:`rewire`). Swapped whole, so a call sees one or the other."""
        self.wants_deadline: dict[str, bool] = self._direct_wants
        self._direct_calls = {h: (fn, self._direct_wants[h]) for h, fn in self.direct.items()}
        self.calls: dict[str, tuple[HookCall, bool]] = self._direct_calls
        """:attr:`hooks` and :attr:`wants_deadline` in one lookup, ``hook -> (function,
        whether it takes a Deadline)``: what the hottest handle paths read (swapped with
        them)."""
        if isinstance(registry, Registry):
            registry.track(self)

    def rewire(self, wrappers: Mapping[str, list[pluggy.HookImpl]] | None) -> None:
        """Call through the registry the hooks that ``wrappers`` (the host's wrapper
        hookimpls by hook name) wrap; ``None``: every hook on the direct fast path.

        Called by the :class:`~weaviate_ext.dispatch.Registry` when wrappers come or go.
        A wrapped hook always gets a :class:`~weaviate_ext.deadline.Deadline` (wrappers
        may read it), whether or not the plugin's implementation names it."""
        if not wrappers:
            self.hooks, self.wants_deadline = self.direct, self._direct_wants
            self.calls = self._direct_calls
            return
        hooks = dict(self.direct)
        wants = dict(self._direct_wants)
        hookexec = self._registry._hookexec
        for hook, found in wrappers.items():
            impl = self.impls.get(hook)
            if impl is None:
                continue
            impls = [impl, *found]
            hooks[hook] = through_registry(hookexec, self.name, hook, self._spec_args[hook], impls)
            wants[hook] = "deadline" in self._spec_args[hook]
        self.wants_deadline = wants
        self.hooks = hooks
        self.calls = {h: (fn, wants[h]) for h, fn in hooks.items()}

    # -- what the plugin implements ---------------------------------------------------

    def has(self, hook: str) -> bool:
        """Whether the plugin implements ``hook``."""
        return hook in self.hooks

    def deadline(self, hook: str, timeout: float | None) -> Deadline | None:
        """A deadline for one call of ``hook``, or ``None`` if the hook ignores it."""
        if not self.wants_deadline.get(hook, False):
            return None
        return Deadline(self.timeout if timeout is None else timeout, self.name, hook)

    # -- lifetime ---------------------------------------------------------------------

    def enter(self) -> bool | None:
        """Count a call in, taking a slot of the bulkhead: ``True``; ``False`` if the
        plugin is already closed; ``None`` if every slot is taken (see :meth:`wait_enter`)."""
        counter = self.counter
        with self._lock:
            if self._closed:
                return False
            # (a call waiting means every slot is taken: a freed one is handed to it)
            in_flight = counter.in_flight
            if in_flight >= self.max_concurrency:
                return None
            counter.in_flight = in_flight + 1
            return True

    def wait_enter(self, timeout: float) -> bool | None:
        """:meth:`enter`, waiting up to ``timeout`` seconds (``-1``: for ever) for a slot.

        Waiting calls get slots in the order they came: a call that ends hands its slot
        to the first of them, and a new call does not overtake them. ``False`` as soon
        as the plugin is retired or closed (the caller takes the version that replaced
        it); ``None`` if no slot came free in time.
        """
        counter = self.counter
        waiter = _Waiter()
        with self._lock:
            if self._closed or self._retired:
                return False
            if counter.in_flight < self.max_concurrency and not self._queue:
                counter.in_flight += 1
                return True
            self._queue.append(waiter)
        waiter.wake.acquire(True, timeout)
        with self._lock:
            if waiter.granted:  # handed a slot (perhaps as the wait timed out): take it
                return True
            with contextlib.suppress(ValueError):
                self._queue.remove(waiter)
            return False if self._closed or self._retired else None

    def exit(self, started: float, failed: bool) -> None:
        """Count a call out with its latency, freeing its slot; close if it was the last
        of a retired one."""
        elapsed = _perf_counter() - started
        counter = self.counter
        with self._lock:
            if self._queue:  # the slot goes to the first waiting call
                waiter = self._queue.popleft()
                waiter.granted = True
                waiter.wake.release()
            else:
                counter.in_flight -= 1
            counter.calls += 1
            counter.total_s += elapsed
            if elapsed > counter.max_s:
                counter.max_s = elapsed
            if failed:
                counter.errors += 1
            if not self._retired:
                return
            close_now = not self._closed and counter.in_flight == 0
            if close_now:
                self._closed = True
        if close_now:
            self._close()

    def retire(self) -> None:
        """Stop taking new calls; close now if idle, else after the last call in flight."""
        with self._lock:
            self._retired = True
            while self._queue:  # calls waiting for a slot go to the version replacing it
                self._queue.popleft().wake.release()
            close_now = not self._closed and self.counter.in_flight == 0
            if close_now:
                self._closed = True
        if close_now:
            self._close()

    @property
    def closed(self) -> bool:
        """Whether ``plugin_close`` has been called."""
        return self._closed

    def call_lifecycle(self, hook: str, *args: Any) -> Any:
        """Call ``plugin_setup``/``plugin_health``/``plugin_close`` if implemented."""
        assert hook in PLUGIN_LIFECYCLE_HOOKS
        fn = self.hooks.get(hook)
        return None if fn is None else fn(*args)

    def runtime_status(self) -> tuple[str, str | None] | None:
        """What the plugin's ``plugin_runtime_status`` hook says, or ``None`` if it does
        not implement it (it then counts as serving)."""
        fn = self.hooks.get("plugin_runtime_status")
        if fn is None:
            return None
        state, reason = fn()
        return str(state), None if reason is None else str(reason)

    def _close(self) -> None:
        if isinstance(self._registry, Registry):
            self._registry.untrack(self)
        try:
            self.call_lifecycle("plugin_close")
        except Exception as exc:
            log.warning("plugin %r: plugin_close failed: %s", self.name, self.scrub(str(exc)))

    # -- errors -----------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """``text`` with every secret configuration value of this plugin redacted."""
        return scrub(text, self._secrets)

    def call_error(self, hook: str, exc: BaseException) -> WeaviateExtError:
        """Turn an exception raised by the plugin into the framework's error type."""
        if isinstance(exc, WeaviateExtError):
            # the same error, or a copy of the same class whose reason is scrubbed
            return exc.redacted(self.scrub)
        detail = self.scrub(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, MemoryError):
            return ResourceLimitExceeded(self.name, hook, f"out of memory ({detail})")
        return PluginCallError(self.name, hook, detail)

    def keeps_cause(self, exc: BaseException) -> bool:
        """Whether ``exc`` may be chained as ``__cause__`` (it holds no secret)."""
        text = str(exc)
        return not any(secret in text for secret in self._secrets)
