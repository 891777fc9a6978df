"""The server's state: the plugin manager, readiness, and how plugin calls are made.

Plugins are loaded in a worker thread after the server has started, so
``/.well-known/live`` answers at once and ``/.well-known/ready`` only when loading is
done. Every plugin call runs in a worker thread (``anyio.to_thread``) under a capacity
limiter, so a blocking plugin never blocks the event loop; a call that outlives its
deadline plus a grace period is answered with a 504 while the server keeps serving.

Before it takes a worker thread, a call takes a slot of its plugin's :class:`Bulkhead`
(``spec.maxConcurrency``), waiting in the event loop: a hung plugin holds at most that
many threads, abandoned calls included, and never the pool that other plugins use.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import numpy as np

from weaviate_ext.errors import (
    AuthenticationError,
    DeadlineExceeded,
    InvalidInput,
    PluginBusy,
    PluginCrashed,
    PluginOutputError,
    ResourceLimitExceeded,
    WeaviateExtError,
)
from weaviate_ext.grants import Grants
from weaviate_ext.handles import PluginHandle
from weaviate_ext.handles.base import busy_error
from weaviate_ext.hookspecs import hookimpl
from weaviate_ext.live import max_concurrency
from weaviate_ext.manager import PluginManager
from weaviate_ext.manifest import Manifest
from weaviate_ext.serve.batcher import Batcher
from weaviate_ext.serve.cache import ResultCache
from weaviate_ext.serve.errors import ApiError, from_framework
from weaviate_ext.serve.metrics import Metrics
from weaviate_ext.serve.settings import ServeSettings

log = logging.getLogger("weaviate_ext.serve")

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
"""Deadline of a call when neither the settings nor the manifest give one."""

GRACE = 1.0
"""Seconds the server waits past a call's deadline before answering 504 itself (the
runtimes that enforce deadlines answer first, with the plugin's own error)."""

REQUEST: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "weaviate_ext_serve_request", default=None
)
"""What the request log knows of the request being served (its id, the plugin called),
set by the app's request log middleware when ``request_log`` is on."""

DEFAULT_OPTIONS = {
    "vectorizer": "--vectorizer",
    "reranker": "--reranker",
    "generator": "--generator",
}


def error_kind(exc: BaseException) -> str:
    """A short label of a failed call's error, for the metrics."""
    if isinstance(exc, DeadlineExceeded):
        return "deadline"
    if isinstance(exc, PluginBusy):
        return "busy"
    if isinstance(exc, InvalidInput):
        return "invalid_input"
    if isinstance(exc, PluginCrashed):
        return "crashed"
    if isinstance(exc, PluginOutputError):
        return "bad_output"
    if isinstance(exc, ResourceLimitExceeded):
        return "resource_limit"
    if isinstance(exc, WeaviateExtError):
        return "failed"
    return "internal"


class Bulkhead:
    """``serve``'s side of one plugin's bulkhead: at most ``size`` calls of the plugin hold
    a worker thread; the others wait in the event loop, without a thread, within their
    deadline, then fail with :class:`PluginBusy` (a 503).

    A slot is given back when the worker thread returns from the plugin, also for a call
    whose caller gave up at its deadline (a 504): so a hung plugin holds at most ``size``
    threads, however many calls it abandoned. (The handle inside the thread has the same
    bulkhead per plugin version; this one keeps waiting calls off the thread pool.)
    """

    def __init__(self, size: int) -> None:
        self.limiter = anyio.CapacityLimiter(size)

    @property
    def size(self) -> int:
        """Calls that may hold a worker thread at once."""
        return int(self.limiter.total_tokens)

    @size.setter
    def size(self, size: int) -> None:
        self.limiter.total_tokens = size

    async def enter(self, handle: PluginHandle, operation: str, timeout: float) -> object:
        """Take a slot for one call, waiting up to ``timeout`` seconds; the ticket to
        :meth:`release` (or to :meth:`run`). :class:`PluginBusy` if none came free."""
        ticket = object()
        limiter = self.limiter
        with anyio.move_on_after(timeout):
            await limiter.acquire_on_behalf_of(ticket)
            return ticket
        raise busy_error(handle.name, operation, self.size, timeout, handle.stats.mean_ms / 1e3)

    def release(self, ticket: object) -> None:
        """Give a slot back (in the event loop's thread)."""
        self.limiter.release_on_behalf_of(ticket)

    async def run(self, ticket: object, fn: Callable[[], T], threads: anyio.CapacityLimiter) -> T:
        """Run ``fn`` in a worker thread (under ``threads``) with the slot of ``ticket``,
        which goes back when ``fn`` returns, or at once if the caller gives up before
        the thread started it. Cancelling abandons the thread (it finishes on its own)."""
        loop = asyncio.get_running_loop()
        call = _Call()

        def work() -> T | None:
            with call.lock:
                if call.state == _Call.GIVEN_UP:
                    return None  # the caller left before a thread took the call
                call.state = _Call.RUNNING
            try:
                return fn()
            finally:
                with call.lock:
                    abandoned = call.state == _Call.ABANDONED
                    call.state = _Call.DONE
                if abandoned:  # (a closed event loop raises: nobody waits any more)
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(self.release, ticket)

        try:
            result = await anyio.to_thread.run_sync(work, limiter=threads, abandon_on_cancel=True)
        finally:
            with call.lock:
                if call.state == _Call.RUNNING:
                    call.state = _Call.ABANDONED  # the thread gives the slot back
                    release = False
                else:
                    call.state = _Call.GIVEN_UP if call.state == _Call.PENDING else call.state
                    release = True
            if release:
                self.release(ticket)
        return result  # type: ignore[return-value]  # None only when never run


class _Call:
    """Who gives a :class:`Bulkhead` slot back: the event loop (the call ended, or never
    started) or the worker thread (the caller gave up while the plugin still ran)."""

    PENDING, RUNNING, DONE, ABANDONED, GIVEN_UP = range(5)
    __slots__ = ("lock", "state")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state = _Call.PENDING


class _Observer:
    """Lifecycle hooks of the manager: forget cached answers, keep the metrics current."""

    def __init__(self, state: ServeState) -> None:
        self.state = state

    @hookimpl
    def weaviate_ext_plugin_loaded(self, name: str, manifest: Manifest) -> None:
        """A plugin was loaded (also by ``--reload`` finding a new one)."""
        self.state.plugins_changed(name)

    @hookimpl
    def weaviate_ext_plugin_reloaded(self, name: str, old: Manifest, new: Manifest) -> None:
        """A new version of a plugin serves: its old answers are not valid any more."""
        self.state.plugins_changed(name)

    @hookimpl
    def weaviate_ext_plugin_unloaded(self, name: str, manifest: Manifest) -> None:
        """A plugin is gone."""
        self.state.plugins_changed(name)


class ServeState:
    """The manager behind the app, whether it is loaded, and how to call plugins.

    :param manager: an already loaded manager to serve (the host keeps owning it); by
        default the state makes one from the settings when the app starts and closes
        it when the app stops.
    """

    def __init__(self, settings: ServeSettings, manager: PluginManager | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.cache = ResultCache(settings.cache_size) if settings.cache else None
        self.manager: PluginManager | None = manager
        self.owns_manager = manager is None
        self.ready = False
        self.startup_error: str | None = None
        self.failures: dict[str, str] = {}
        """What failed to load, by plugin name or manifest path."""
        self._limiter: anyio.CapacityLimiter | None = None
        self._bulkheads: dict[str, Bulkhead] = {}
        self._batchers: dict[str, Batcher] = {}
        self._closing = False
        self._untrace: Callable[[], None] | None = None
        if manager is not None:
            manager.add_observer(_Observer(self))
            if settings.otel:
                from weaviate_ext.tracing import instrument

                self._untrace = instrument(manager)

    # -- lifetime -------------------------------------------------------------------------

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The limit on plugin calls running at once (made in the event loop)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.settings.threads)
        return self._limiter

    def bulkhead(self, handle: PluginHandle) -> Bulkhead:
        """The bulkhead of ``handle``'s plugin, sized by the version serving now (made in
        the event loop)."""
        size = max_concurrency(handle.manifest.spec)
        bulkhead = self._bulkheads.get(handle.name)
        if bulkhead is None:
            bulkhead = self._bulkheads[handle.name] = Bulkhead(size)
        elif bulkhead.size != size:
            bulkhead.size = size  # a reload changed it
        return bulkhead

    def batcher(self, handle: PluginHandle) -> Batcher | None:
        """The dynamic batcher of ``handle``'s plugin (made in the event loop), or
        ``None``: batching is off (``batch_window_ms`` 0), the version serving does not
        declare ``capabilities.batchSafe``, or the server is stopping."""
        window = self.settings.batch_window_ms
        if window <= 0 or self._closing or not handle.manifest.spec.capabilities.batch_safe:
            return None
        batcher = self._batchers.get(handle.name)
        if batcher is None:
            batcher = self._batchers[handle.name] = Batcher(self, handle.name, window / 1e3)
        return batcher

    async def load(self) -> None:
        """Load the plugins (in a worker thread) and become ready."""
        try:
            if self.manager is None:
                await anyio.to_thread.run_sync(self._load_plugins)
            self._check_defaults()
        except WeaviateExtError as exc:
            self.startup_error = str(exc)
        except Exception as exc:  # reported, not raised: the server stays up to say why
            log.exception("loading the plugins failed")
            self.startup_error = f"loading the plugins failed: {type(exc).__name__}: {exc}"
        if self.startup_error is None and self.manager is not None and not self.manager.names():
            self.startup_error = "no plugin is loaded" + (
                f" ({len(self.failures)} failed to load)" if self.failures else ""
            )
        if self.startup_error is not None:
            log.error("not ready: %s", self.startup_error)
            return
        self.ready = True
        self.metrics.ready.set(1)
        self._update_plugin_metrics()
        assert self.manager is not None
        log.info(
            "ready: %d plugin(s) loaded (%s); %s",
            len(self.manager.names()),
            ", ".join(self.manager.names()),
            "; ".join(f"{t}: {self.default_name_or_none(t) or '-'}" for t in DEFAULT_OPTIONS),
        )

    def _load_plugins(self) -> None:
        settings = self.settings
        registry = None
        if settings.registry is not None:
            from weaviate_ext.registry.settings import RegistrySettings

            registry = RegistrySettings.from_data(settings.registry, Path(settings.registry_base))
        manager = PluginManager(
            discover=settings.discover,
            config=settings.config,
            tracing=settings.otel,
            grants=Grants.from_data(settings.grants, "serve setting grants"),
            registry=registry,
        )
        manager.add_observer(_Observer(self))
        self.manager = manager
        for directory in settings.plugin_dirs:
            result = manager.load_directory(directory)
            self.failures.update({k: str(v) for k, v in result.failed.items()})
        for path in settings.plugin_files:
            try:
                manager.load(path)
            except WeaviateExtError as exc:
                log.error("plugin %s not loaded: %s", path, exc)
                self.failures[path] = str(exc)
        if settings.discover:
            result = manager.load_installed()
            self.failures.update({k: str(v) for k, v in result.failed.items()})

    def _check_defaults(self) -> None:
        """An explicitly named default plugin must be loaded and of its type."""
        manager = self.manager
        if manager is None:
            return
        for plugin_type, name in self.explicit_defaults().items():
            if name is None:
                continue
            if name not in manager.names():
                reason = self.failures.get(name)
                why = f": {reason}" if reason else f" (loaded: {', '.join(manager.names())})"
                raise WeaviateExtError(f"{DEFAULT_OPTIONS[plugin_type]} {name}: not loaded{why}")
            actual = manager.manifest(name).spec.type
            if actual != plugin_type:
                raise WeaviateExtError(
                    f"{DEFAULT_OPTIONS[plugin_type]} {name}: it is a {actual}, not a {plugin_type}"
                )

    async def close(self) -> None:
        """Answer the requests the batchers hold, then close the manager if this state
        made it (in a worker thread)."""
        self._closing = True
        for batcher in list(self._batchers.values()):
            await batcher.close()
        self.ready = False
        manager = self.manager
        if manager is not None and self.owns_manager:
            await anyio.to_thread.run_sync(manager.close)
        if self._untrace is not None:
            self._untrace()

    def plugins_changed(self, name: str) -> None:
        """A plugin was loaded, reloaded or unloaded: drop its cached answers."""
        if self.cache is not None:
            self.cache.invalidate(name)
        if self.ready:
            self._update_plugin_metrics()

    def _update_plugin_metrics(self) -> None:
        manager = self.manager
        if manager is None:
            return
        rows = []
        for name in manager.names():
            try:
                spec = manager.manifest(name)
            except WeaviateExtError:
                continue
            rows.append((name, spec.version, spec.spec.type, spec.spec.runtime))
        self.metrics.set_plugins(rows)

    # -- which plugin -----------------------------------------------------------------------

    def require_manager(self) -> PluginManager:
        """The manager, once the plugins are loaded; else a 503."""
        if not self.ready or self.manager is None:
            reason = self.startup_error or "the plugins are still loading"
            raise ApiError(503, f"not ready: {reason}")
        return self.manager

    def explicit_defaults(self) -> Mapping[str, str | None]:
        """The plugins named by ``--vectorizer``, ``--reranker`` and ``--generator``."""
        s = self.settings
        return {"vectorizer": s.vectorizer, "reranker": s.reranker, "generator": s.generator}

    def default_name_or_none(self, plugin_type: str) -> str | None:
        """The default plugin of a type, or ``None`` when there is none (or several)."""
        try:
            return self.default_name(plugin_type)
        except ApiError:
            return None

    def default_name(self, plugin_type: str) -> str:
        """The plugin behind the type's default endpoints: the one named by its option,
        else the only loaded plugin of that type (404 with none, 409 with several)."""
        explicit = self.explicit_defaults().get(plugin_type)
        if explicit is not None:
            return explicit
        names = self.require_manager().names(plugin_type)
        if len(names) == 1:
            return names[0]
        if not names:
            raise ApiError(404, f"no {plugin_type} plugin is loaded")
        option = DEFAULT_OPTIONS.get(plugin_type, f"--{plugin_type}")
        raise ApiError(
            409,
            f"{len(names)} {plugin_type} plugins are loaded ({', '.join(names)}): start the "
            f"server with {option} NAME, or name the plugin in the request",
        )

    def pick(self, plugin_type: str, requested: str | None) -> str:
        """The plugin a request names as its model, else the type's default.

        Clients of OpenAI and Ollama APIs always send a model name (``text-embedding-3-small``,
        ``llama3``): a name that is not a loaded plugin means the default one. A loaded
        plugin of another type is an error.
        """
        manager = self.require_manager()
        if requested:
            if requested in manager.names(plugin_type):
                return requested
            if requested in manager.names():
                actual = manager.manifest(requested).spec.type
                raise ApiError(400, f"model {requested!r} is a {actual}, not a {plugin_type}")
        return self.default_name(plugin_type)

    # -- calling plugins ---------------------------------------------------------------------

    def call_timeout(self, handle: PluginHandle) -> float:
        """The deadline of one call of ``handle``'s plugin, in seconds."""
        if self.settings.timeout is not None:
            return self.settings.timeout
        declared = handle.manifest.spec.timeout
        manager_default = self.manager.default_timeout if self.manager is not None else None
        return float(declared or manager_default or DEFAULT_TIMEOUT)

    async def call(self, handle: PluginHandle, operation: str, fn: Callable[[], T]) -> T:
        """Run the blocking ``fn`` (a call of ``handle``'s plugin) in a worker thread.

        Counted in the metrics. The call first takes a slot of the plugin's
        :class:`Bulkhead`, waiting within its deadline (else a 503, busy). A call still
        running ``GRACE`` seconds after its deadline is abandoned (the thread finishes on
        its own, then gives the slot back) and answered with a 504.
        """
        plugin = handle.name
        request = REQUEST.get()
        if request is not None:
            request.setdefault("plugin", plugin)
        timeout = self.call_timeout(handle)
        limit = timeout + GRACE
        started = time.perf_counter()
        error: str | None = None
        try:
            with anyio.fail_after(limit):
                bulkhead = self.bulkhead(handle)
                ticket = await bulkhead.enter(handle, operation, timeout)
                return await bulkhead.run(ticket, fn, self.limiter)
        except AuthenticationError as exc:  # an answer for whoever asked, not a failure
            error = error_kind(exc)
            raise
        except WeaviateExtError as exc:
            error = error_kind(exc)
            answer = from_framework(exc)
            answer.plugin = answer.plugin or plugin
            answer.cause = exc
            raise answer from None
        except TimeoutError:
            error = "timeout"
            log.warning("plugin %r %s: no answer within %gs", plugin, operation, limit)
            raise ApiError(
                504, f"plugin {plugin!r} {operation}: no answer within {limit:g}s", plugin=plugin
            ) from None
        except Exception as exc:
            error = error_kind(exc)
            raise
        finally:
            self.metrics.observe_call(plugin, operation, time.perf_counter() - started, error)

    # -- checking inputs ---------------------------------------------------------------------

    def check_text(self, text: str, what: str = "text", *, allow_empty: bool = False) -> None:
        """Refuse an empty text (422) or one longer than ``max_text_length`` (413)."""
        if not text and not allow_empty:
            raise ApiError(422, f"{what} must not be empty")
        limit = self.settings.max_text_length
        if len(text) > limit:
            raise ApiError(
                413, f"{what} is {len(text)} characters long, more than the limit of {limit}"
            )

    def check_texts(
        self, texts: list[str], what: str = "input", *, allow_empty: bool = False
    ) -> None:
        """Refuse an empty list, more than ``max_batch`` texts, or a bad text among them."""
        if not texts:
            raise ApiError(422, f"{what} must not be empty")
        limit = self.settings.max_batch
        if len(texts) > limit:
            raise ApiError(413, f"{what} has {len(texts)} texts, more than the limit of {limit}")
        for i, text in enumerate(texts):
            self.check_text(text, f"{what}[{i}]", allow_empty=allow_empty)


def finite(values: Any, plugin: str, what: str) -> None:
    """Refuse NaN and infinite values from a plugin (JSON cannot carry them): a 502."""
    if not np.all(np.isfinite(values)):
        raise ApiError(502, f"plugin {plugin!r} returned a non-finite {what}", plugin=plugin)
