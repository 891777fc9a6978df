"""Calls through the hook registry: host wrappers around every plugin call, and a fast path.

The manager's :class:`Registry` is a ``pluggy.PluginManager`` that knows when host code
changes how plugin calls must be made: a registered object with ``wrapper=True`` (or
old-style ``hookwrapper=True``) hookimpls of plugin hooks, or call monitoring
(``add_hookcall_monitoring``, ``enable_tracing``). It then rewires every live plugin:

* **no wrapper, no monitoring** (the fast path): a handle calls the plugin's function
  directly, as adapted once at load (:func:`adapt`);
* **otherwise**: each call of plugin ``p``'s hook ``h`` runs through pluggy's call
  machinery (the registry's ``_hookexec``, so monitoring sees it) with exactly the
  implementations ``[p's impl] + the host's wrappers of h``, in pluggy's order
  (``tryfirst``/``trylast`` honoured). The wrapper's ``yield`` returns the plugin's
  answer (one value: a call to one plugin is ``firstresult``).

The rewiring is pushed to the live plugins when the wrappers change, so the fast path
costs nothing per call. During a wrapped call, :func:`current_call` says which plugin
and hook are being called, and the ``deadline`` argument is always a
:class:`~weaviate_ext.deadline.Deadline` (it carries ``plugin`` and ``hook`` too).

Hookimpls are validated against the specs without registering (:func:`hookimpls`), so
building a new plugin version needs no second registry.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import pluggy
from pluggy import HookImpl

if TYPE_CHECKING:
    from weaviate_ext.live import LivePlugin

HookExec = Callable[[str, Sequence[HookImpl], Mapping[str, object], bool], object]


class Call(NamedTuple):
    """The plugin call a host wrapper is wrapping (see :func:`current_call`)."""

    plugin: str
    """The plugin's name (its manifest's ``metadata.name``)."""
    hook: str
    """The hook called."""


_current: contextvars.ContextVar[Call | None] = contextvars.ContextVar(
    "weaviate_ext_call", default=None
)


def current_call() -> Call | None:
    """The plugin call being dispatched through host wrappers, or ``None`` outside one.

    A ``wrapper=True`` hookimpl of a plugin hook reads it to know which plugin it wraps::

        class Timing:
            @weaviate_ext.hookimpl(wrapper=True)
            def vectorize_batch(self, texts):
                started = time.perf_counter()
                try:
                    return (yield)
                finally:
                    call = weaviate_ext.current_call()
                    record(call.plugin, call.hook, time.perf_counter() - started)
    """
    return _current.get()


def is_wrapper(impl: HookImpl) -> bool:
    """Whether ``impl`` wraps the other implementations (new or old style)."""
    return bool(impl.wrapper or impl.hookwrapper)


def hookimpls(registry: pluggy.PluginManager, plugin: object, name: str) -> dict[str, HookImpl]:
    """``plugin``'s hook implementations by hook name, checked against the registry's
    specs the way ``register`` checks them, but without registering anything.

    An implementation of a hook without a spec is returned unchecked (the caller
    decides what an unknown hook means). Raises ``pluggy.PluginValidationError``.
    Reads only, so it is safe while other threads call or register.
    """
    found: dict[str, HookImpl] = {}
    for attr in dir(plugin):
        opts = registry.parse_hookimpl_opts(plugin, attr)
        if opts is None:
            continue
        opts = dict(opts)  # type: ignore[assignment]  # (never normalise the marker's own)
        for key in ("tryfirst", "trylast", "wrapper", "hookwrapper", "optionalhook"):
            opts.setdefault(key, False)  # type: ignore[misc]
        opts.setdefault("specname", None)
        impl = HookImpl(plugin, name, getattr(plugin, attr), opts)
        hook_name = opts.get("specname") or attr
        caller = getattr(registry.hook, hook_name, None)
        if caller is not None and caller.spec is not None:
            registry._verify_hook(caller, impl)
        found[hook_name] = impl
    return found


def adapt(impl: HookImpl, spec_args: tuple[str, ...]) -> Callable[..., Any]:
    """Make a positional caller for ``impl`` taking every spec argument in spec order.

    pluggy lets an implementation name fewer arguments than its spec; this drops the
    ones it does not name once, at load, instead of building kwargs on every call.
    """
    fn = impl.function
    wanted = tuple(impl.argnames)
    if wanted == spec_args:
        return fn
    positions = [spec_args.index(name) for name in wanted]
    if positions == list(range(len(wanted))):
        count = len(wanted)
        return lambda *args: fn(*args[:count])
    return lambda *args: fn(*[args[i] for i in positions])


def through_registry(
    hookexec: HookExec,
    plugin: str,
    hook: str,
    spec_args: tuple[str, ...],
    impls: list[HookImpl],
) -> Callable[..., Any]:
    """A positional caller (like :func:`adapt`'s) that runs ``impls`` (the plugin's own
    implementation first, then the wrappers in pluggy's order) through ``hookexec``."""
    call = Call(plugin, hook)
    current = _current

    def dispatch(*args: Any) -> Any:
        token = current.set(call)
        try:
            return hookexec(hook, impls, dict(zip(spec_args, args, strict=True)), True)
        finally:
            current.reset(token)

    return dispatch


class Registry(pluggy.PluginManager):
    """The manager's one hook registry, which rewires live plugins when host wrappers
    or call monitoring come and go (see the module's docstring)."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self._dispatch_lock = threading.RLock()
        self._live: weakref.WeakSet[LivePlugin] = weakref.WeakSet()
        self._monitors = 0
        self.generation = 0
        """Bumped by every ``register``/``unregister`` (so callers can cache orders)."""
        self.wrapping_version = 0
        """Bumped whenever the wrappers or the monitoring change."""
        self._wrappers: dict[str, list[HookImpl]] | None = None

    # -- what changes the way plugins are called -------------------------------------

    def _holds_wrappers(self, plugin: object) -> bool:
        return any(
            is_wrapper(impl)
            for caller in self.get_hookcallers(plugin) or ()
            for impl in caller.get_hookimpls()
            if impl.plugin is plugin
        )

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """``pluggy.PluginManager.register``; an object with wrapper hookimpls rewires
        every live plugin's calls through the registry."""
        with self._dispatch_lock:
            self.generation += 1
            registered = super().register(plugin, name)
            if registered is not None and self._holds_wrappers(plugin):
                self._changed()
            return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        """``pluggy.PluginManager.unregister``; removing the last wrapper restores the
        fast path."""
        with self._dispatch_lock:
            self.generation += 1
            target = self.get_plugin(name) if plugin is None and name is not None else plugin
            wraps = target is not None and self._holds_wrappers(target)
            removed = super().unregister(plugin, name)
            if wraps:
                self._changed()
            return removed

    def add_hookcall_monitoring(
        self, before: Callable[..., None], after: Callable[..., None]
    ) -> Callable[[], None]:
        """``pluggy.PluginManager.add_hookcall_monitoring`` (and so ``enable_tracing``):
        while monitored, every plugin call goes through the registry and is seen."""
        with self._dispatch_lock:
            undo = super().add_hookcall_monitoring(before, after)
            self._monitors += 1
            self._changed()

        def undo_and_rewire() -> None:
            with self._dispatch_lock:
                undo()
                self._monitors -= 1
                self._changed()

        return undo_and_rewire

    def _changed(self) -> None:
        self.wrapping_version += 1
        wrappers: dict[str, list[HookImpl]] = {}
        for hook_name, caller in vars(self.hook).items():
            if not isinstance(caller, pluggy.HookCaller) or caller.spec is None:
                continue
            found = [impl for impl in caller.get_hookimpls() if is_wrapper(impl)]
            if found or self._monitors:
                wrappers[hook_name] = found
        self._wrappers = wrappers if wrappers else None
        for live in list(self._live):
            live.rewire(self._wrappers)

    # -- live plugins ------------------------------------------------------------------

    @property
    def wrapped(self) -> bool:
        """Whether plugin calls currently go through the registry (else: the fast path)."""
        return self._wrappers is not None

    def track(self, live: LivePlugin) -> None:
        """Wire ``live`` for the current wrappers and keep it wired as they change."""
        with self._dispatch_lock:
            self._live.add(live)
            live.rewire(self._wrappers)

    def untrack(self, live: LivePlugin) -> None:
        """Stop rewiring ``live`` (it was closed)."""
        with self._dispatch_lock:
            self._live.discard(live)
