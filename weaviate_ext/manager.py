"""The :class:`PluginManager`: loads plugins into one pluggy registry and hands out handles.

Loading goes manifest -> checks (disabled, allowed runtime, dependencies, config) ->
the runtime's bridge (``weaviate_ext_make_plugin``) -> hook validation -> setup,
health and a probe call -> registration under the manifest's name. Only the last step
touches the live registry, so a failed load or reload leaves everything as it was.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import attrs
import pluggy

from weaviate_ext import dependencies, hookspecs
from weaviate_ext.aio import awaitable
from weaviate_ext.builder import Builder, discard
from weaviate_ext.discovery import (
    PLUGIN_GROUP,
    RUNTIME_GROUP,
    Installed,
    disabled_names,
    installed,
    manifest_paths,
)
from weaviate_ext.dispatch import Registry, is_wrapper
from weaviate_ext.errors import (
    DependencyError,
    InvalidInput,
    PluginDisabled,
    PluginLoadError,
    PluginNotFound,
    PluginTypeError,
    WeaviateExtError,
)
from weaviate_ext.grants import Grant, Grants, describe
from weaviate_ext.handles import (
    HANDLE_TYPES,
    AuthHandle,
    GeneratorHandle,
    PluginHandle,
    RerankerHandle,
    Slot,
    StorageHandle,
    TransformerHandle,
    VectorizerHandle,
)
from weaviate_ext.hookspecs import PROJECT_NAME
from weaviate_ext.live import LivePlugin
from weaviate_ext.manifest import Manifest, PluginConfig, load_manifest
from weaviate_ext.pipeline import Pipeline
from weaviate_ext.stats import PluginStats
from weaviate_ext.types import Identity

log = logging.getLogger("weaviate_ext")

H = TypeVar("H", bound=PluginHandle)

PROBE_TEXT = "weaviate-ext probe"


@attrs.frozen
class LoadResult:
    """What :meth:`PluginManager.load_directory` did: names loaded, and what failed why.

    ``failed`` maps a plugin's name (or the manifest's path when it could not be read)
    to the error that stopped it.
    """

    loaded: tuple[str, ...]
    failed: Mapping[str, WeaviateExtError]

    @property
    def ok(self) -> bool:
        """Whether every plugin found was loaded."""
        return not self.failed


@attrs.frozen
class PluginStatus:
    """One row of ``weaviate-ext list``: a loaded, installed, disabled or broken plugin."""

    name: str
    status: str
    """``loaded``, ``installed`` (found, not imported yet), ``disabled`` or ``broken``; for a
    loaded plugin whose runtime reports trouble, the runtime's state (``restarting``,
    ``failed``)."""
    source: str
    version: str | None = None
    type: str | None = None
    runtime: str | None = None
    reason: str | None = None
    isolation: str | None = None
    """What isolates the plugin from the host, as its runtime says (``none: ...``)."""
    permissions: Mapping[str, Any] | None = None
    """What a loaded plugin requests and what the host grants it
    (:func:`weaviate_ext.grants.describe`)."""


def _runtime_status(live: LivePlugin) -> tuple[str, str | None]:
    """``loaded``, or what the plugin's ``plugin_runtime_status`` hook says when it is not
    serving (a supervised process that keeps crashing is ``failed``, with the reason)."""
    try:
        report = live.runtime_status()
    except Exception as exc:
        return "unknown", f"plugin_runtime_status failed: {live.scrub(str(exc))}"
    if report is None:
        return "loaded", None
    state, reason = report
    return ("loaded", None) if state == "serving" else (str(state), reason)


def _authenticate_by(handle: AuthHandle) -> Callable[..., Identity | None]:
    def authenticate(credentials: Mapping[str, str]) -> Identity | None:
        return handle.authenticate(credentials)

    return authenticate


class PluginManager:
    """Loads plugins of every runtime into one pluggy hook registry and calls them.

    :param discover: find pip-installed plugins (entry-point group ``weaviate_ext``);
        they are imported only when asked for by name, or by :meth:`load_installed`.
    :param allowed_runtimes: runtimes this manager accepts (``None``: all installed).
    :param disabled: plugin names to refuse, on top of ``WEAVIATE_EXT_DISABLE=a,b``.
    :param config: host configuration per plugin name, used by every load of that name
        that does not pass ``config=`` itself (installed plugins get theirs from here).
    :param default_timeout: per-call deadline in seconds when a manifest sets no
        ``spec.timeout`` (``None``: no deadline).
    :param bridges: extra bridge objects (``weaviate_ext_make_plugin`` implementations)
        beside the installed ones.
    :param observers: objects implementing the lifecycle hooks
        (``weaviate_ext_plugin_loaded`` ...).
    :param grants: what the host grants each plugin (:class:`~weaviate_ext.grants.Grant`
        by name, ``"*"`` for all) beyond a read of its own directory: directories,
        environment variables, network, references in config defaults. A manifest only
        requests; a request not granted refuses the load (docs/security.md).
    :param trust: names of plugins granted everything they request.

    Every method is thread-safe. Loading, unloading and reloading are serialised; calls
    through handles never wait for them.
    """

    def __init__(
        self,
        *,
        discover: bool = True,
        allowed_runtimes: Iterable[str] | None = None,
        disabled: Iterable[str] = (),
        config: Mapping[str, Mapping[str, Any]] | None = None,
        default_timeout: float | None = 30.0,
        bridges: Iterable[object] = (),
        observers: Iterable[object] = (),
        grants: Grants | Mapping[str, Grant] | None = None,
        trust: Iterable[str] = (),
    ) -> None:
        self.registry = Registry(PROJECT_NAME)
        """The one hook registry: every loaded plugin is registered here by name, and
        every plugin call goes through it while the host has wrappers (:meth:`add_wrapper`)."""
        self._auth_order: tuple[int, list[pluggy.HookImpl], list[AuthHandle]] = (-1, [], [])
        self.registry.add_hookspecs(hookspecs)
        self.default_timeout = default_timeout
        self.allowed_runtimes = None if allowed_runtimes is None else frozenset(allowed_runtimes)
        self._disabled = disabled_names(disabled)
        self._config = {k: dict(v) for k, v in (config or {}).items()}
        self._lock = threading.RLock()
        self._slots: dict[str, Slot] = {}
        self._host_config: dict[str, Mapping[str, Any] | None] = {}
        self._failures: dict[str, PluginStatus] = {}
        self._loading: set[str] = set()
        self._closed = False
        self._installed: dict[str, Installed] = installed(PLUGIN_GROUP) if discover else {}
        self.builder = Builder(
            self.registry,
            installed(RUNTIME_GROUP),
            self.allowed_runtimes,
            self._disabled,
            default_timeout,
            Grants.of(grants, trust),
        )
        for bridge in bridges:
            self.registry.register(bridge)
        for observer in observers:
            self.add_observer(observer)

    # -- context manager ----------------------------------------------------------------

    def __enter__(self) -> PluginManager:
        """Use the manager as a context manager: :meth:`close` runs on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PluginManager loaded={sorted(self._slots)}>"

    # -- registration helpers -------------------------------------------------------------

    def add_observer(self, observer: object) -> None:
        """Register an object implementing lifecycle hooks (loaded, unloaded, ...)."""
        self.registry.register(observer)

    def add_wrapper(self, wrapper: object, name: str | None = None) -> Callable[[], None]:
        """Register host hookimpls with ``wrapper=True`` around every plugin call.

        Each method of ``wrapper`` marked ``@weaviate_ext.hookimpl(wrapper=True)`` and
        named after a plugin hook (``vectorize_batch``, ``transform``, ...) wraps every
        call of that hook to every plugin, whatever its runtime, from now on and across
        reloads; :func:`weaviate_ext.current_call` names the plugin inside it, and its
        ``yield`` returns that plugin's answer. The same as
        ``manager.registry.register(wrapper)``. Returns a function that removes it; with
        no wrapper left, handles call plugins directly again (the fast path).
        """
        self.registry.register(wrapper, name)
        return lambda: self._remove_wrapper(wrapper)

    def _remove_wrapper(self, wrapper: object) -> None:
        if self.registry.is_registered(wrapper):
            self.registry.unregister(wrapper)

    def register_bridge(self, bridge: object) -> None:
        """Register a bridge object (a ``weaviate_ext_make_plugin`` implementation)."""
        self.registry.register(bridge)

    @property
    def runtimes(self) -> tuple[str, ...]:
        """Names of the runtimes installed through the ``weaviate_ext.runtimes`` group."""
        return tuple(self.builder.runtime_names)

    def _loaded_slots(self) -> list[tuple[str, Slot]]:
        """A snapshot of the slots, safe to iterate while other threads load or unload."""
        with self._lock:
            return list(self._slots.items())

    def _record_failure(
        self, key: str, error: WeaviateExtError, source: str, manifest: Manifest | None = None
    ) -> None:
        """Remember why ``key`` (a name, or a manifest path) is not loaded, for ``plugins()``."""
        reason = error.describe(known=key)  # the row names the plugin already
        spec = manifest.spec if manifest is not None else None
        self._failures[key] = PluginStatus(
            name=key,
            status="disabled" if isinstance(error, PluginDisabled) else "broken",
            source=source,
            version=manifest.version if manifest is not None else None,
            type=spec.type if spec is not None else None,
            runtime=spec.runtime if spec is not None else None,
            reason=reason,
        )

    def _notify(self, hook_name: str, /, **kwargs: Any) -> None:
        try:
            getattr(self.registry.hook, hook_name)(**kwargs)
        except Exception:
            log.exception("observer hook %s failed", hook_name)

    def _call_failed(self, name: str, hook: str, error: BaseException) -> None:
        self._notify("weaviate_ext_call_failed", name=name, hook=hook, error=error)

    def _register(
        self, obj: object, manifest: Manifest, config: PluginConfig, source: str
    ) -> LivePlugin:
        self.registry.register(obj, name=manifest.name)
        return LivePlugin(manifest, config, obj, self.registry, self.default_timeout, source)

    # -- dependencies -----------------------------------------------------------------------

    def _version_of(self, name: str) -> str | None:
        slot = self._slots.get(name)
        return slot.live.manifest.version if slot is not None and slot.live else None

    def _check_dependencies(self, manifest: Manifest) -> None:
        """Load the installed plugins ``manifest`` needs, then check every range."""
        self._load_dependencies(manifest)
        dependencies.check(manifest, self._version_of)

    def _load_dependencies(self, manifest: Manifest) -> None:
        """Load installed (pip) plugins that ``manifest`` depends on and that are not loaded."""
        for dep in manifest.spec.dependencies:
            if dep.name in self._slots or dep.name not in self._installed:
                continue
            if dep.name in self._loading:
                raise DependencyError(
                    manifest.name, f"is part of a dependency cycle with {dep.name!r}"
                )
            try:
                self._load_installed(dep.name)
            except WeaviateExtError as exc:
                raise DependencyError(
                    manifest.name, f"depends on {dep.name!r}, which failed to load: {exc}"
                ) from None

    # -- loading ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise WeaviateExtError("the plugin manager is closed")

    def load(self, path: str | os.PathLike[str], config: Mapping[str, Any] | None = None) -> Any:
        """Load the plugin described by the manifest at ``path``; returns its typed handle.

        :param config: values for the manifest's config schema (default: the manager's
            ``config`` for this name). Raises :class:`~weaviate_ext.ManifestError`,
            :class:`~weaviate_ext.ConfigError` or :class:`~weaviate_ext.PluginLoadError`.
        """
        manifest = load_manifest(path)
        return self._load_manifest(manifest, config, str(path))

    def load_manifest(self, manifest: Manifest, config: Mapping[str, Any] | None = None) -> Any:
        """Load an already parsed :class:`~weaviate_ext.Manifest`; returns its handle."""
        return self._load_manifest(manifest, config, str(manifest.path or "<manifest>"))

    def _load_manifest(
        self, manifest: Manifest, config: Mapping[str, Any] | None, source: str
    ) -> PluginHandle:
        name = manifest.name
        with self._lock:
            self._check_open()
            if name in self._slots:
                existing = self._slots[name].live
                where = existing.source if existing else "?"
                raise PluginLoadError(
                    name, f"is already loaded (from {where}); use reload() to replace it"
                )
            host_config = config if config is not None else self._config.get(name)
            self._loading.add(name)
            try:
                self._check_dependencies(manifest)
                obj, resolved = self.builder.build(manifest, host_config, source)
                try:
                    live = self._register(obj, manifest, resolved, source)
                except Exception as exc:
                    discard(obj, name)
                    raise PluginLoadError(name, f"cannot be registered: {exc}") from None
            except WeaviateExtError as exc:
                self._record_failure(name, exc, source, manifest)
                raise
            finally:
                self._loading.discard(name)
            slot = Slot(live, self._call_failed)
            self._slots[name] = slot
            self._host_config[name] = host_config
            self._failures.pop(name, None)
        log.info(
            "loaded plugin %s %s (%s, runtime %s) from %s",
            name,
            manifest.version,
            manifest.spec.type,
            manifest.spec.runtime,
            source,
        )
        self._notify("weaviate_ext_plugin_loaded", name=name, manifest=manifest)
        return HANDLE_TYPES[live.type](slot)

    def load_directory(
        self,
        directory: str | os.PathLike[str],
        config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> LoadResult:
        """Load every ``plugin.yaml`` below ``directory``, dependencies first.

        A broken plugin (bad manifest, failed dependency, failing bridge, ...) is
        logged and reported in the result; the others are still loaded.
        """
        root = Path(directory)
        if not root.is_dir():
            raise WeaviateExtError(f"{root}: not a directory")
        failed: dict[str, WeaviateExtError] = {}
        manifests: list[Manifest] = []
        seen: dict[str, Path] = {}
        paths: dict[str, str] = {}
        for path in sorted(root.rglob("plugin.yaml")):
            if any(part.startswith(".") for part in path.relative_to(root).parts):
                continue
            try:
                manifest = load_manifest(path)
            except WeaviateExtError as exc:
                failed[str(path)] = exc
                continue
            if manifest.name in seen:
                failed[manifest.name] = PluginLoadError(
                    manifest.name, f"is defined twice: {seen[manifest.name]} and {path}"
                )
                continue
            seen[manifest.name] = path
            paths[manifest.name] = str(path)
            manifests.append(manifest)
        by_name = {m.name: m for m in manifests}
        manifests = [m for m in manifests if m.name not in failed]
        order, cycles = dependencies.load_order(manifests)
        failed.update(cycles)
        loaded: list[str] = []
        for manifest in order:
            broken = [d.name for d in manifest.spec.dependencies if d.name in failed]
            if broken:
                failed[manifest.name] = DependencyError(
                    manifest.name, f"depends on {broken[0]!r}, which failed to load"
                )
                continue
            host_config = (config or {}).get(manifest.name)
            try:
                self._load_manifest(manifest, host_config, str(manifest.path))
            except WeaviateExtError as exc:
                failed[manifest.name] = exc
            except Exception as exc:
                failed[manifest.name] = PluginLoadError(
                    manifest.name, f"{type(exc).__name__}: {exc}"
                )
            else:
                loaded.append(manifest.name)
        for key, error in failed.items():
            log.error("plugin %s not loaded: %s", key, error)
            if key not in self._failures:
                self._record_failure(key, error, paths.get(key, key), by_name.get(key))
        return LoadResult(tuple(loaded), failed)

    # -- installed (pip) plugins -------------------------------------------------------------

    @property
    def installed(self) -> tuple[str, ...]:
        """Names of the pip-installed plugins found through entry points."""
        return tuple(sorted(self._installed))

    def load_installed(self, names: Iterable[str] | None = None) -> LoadResult:
        """Import and load installed plugins (all of them, or ``names``)."""
        loaded: list[str] = []
        failed: dict[str, WeaviateExtError] = {}
        for name in sorted(self._installed if names is None else names):
            if name in self._slots:
                continue
            try:
                self._load_installed(name)
            except WeaviateExtError as exc:
                failed[name] = exc
            else:
                loaded.append(name)
        return LoadResult(tuple(loaded), failed)

    def _load_installed(self, name: str) -> None:
        entry = self._installed.get(name)
        if entry is None:
            raise PluginNotFound(name, self._known_names())
        source = f"{entry.distribution} (entry point {name})"
        with self._lock:
            if name in self._disabled:
                raise PluginDisabled(name, "is disabled (manager argument or WEAVIATE_EXT_DISABLE)")
            try:
                manifests = self._discover(entry)
            except WeaviateExtError as exc:
                self._record_failure(name, exc, source)
                raise
            except Exception as exc:
                reason = f"cannot import {entry.value} from {entry.distribution}: {exc}"
                error = PluginLoadError(name, reason)
                self._record_failure(name, error, source)
                raise error from None
            order, cycles = dependencies.load_order(manifests)
            if cycles:
                raise next(iter(cycles.values()))
            for manifest in order:
                if manifest.name not in self._slots:
                    self._load_manifest(manifest, None, source)
            if name not in self._slots:
                reason = f"{entry.distribution} ships no manifest named {name!r}"
                error = PluginLoadError(name, reason)
                self._record_failure(name, error, source)
                raise error

    def _discover(self, entry: Installed) -> list[Manifest]:
        obj = entry.load()
        if not self.registry.is_registered(obj):
            self.registry.register(obj, name=f"package:{entry.name}")
        if not any(
            impl.plugin is obj for impl in self.registry.hook.weaviate_ext_discover.get_hookimpls()
        ):
            raise PluginLoadError(
                entry.name, f"{entry.value} implements no weaviate_ext_discover hook"
            )
        others = [p for p in self.registry.get_plugins() if p is not obj]
        discover = self.registry.subset_hook_caller("weaviate_ext_discover", others)
        return [load_manifest(p) for p in manifest_paths(discover())]

    # -- handles ---------------------------------------------------------------------------------

    def _known_names(self) -> list[str]:
        return sorted(set(self._slots) | set(self._installed))

    def _slot(self, name: str) -> Slot:
        slot = self._slots.get(name)
        if slot is None:
            if name not in self._installed:
                raise PluginNotFound(name, self._known_names())
            self._load_installed(name)
            slot = self._slots[name]
        return slot

    def _typed(self, name: str, handle_type: type[H]) -> H:
        slot = self._slot(name)
        live = slot.live
        if live is None:
            raise PluginNotFound(name, self._known_names())
        if live.type != handle_type.plugin_type:
            raise PluginTypeError(name, live.type, handle_type.plugin_type)
        return handle_type(slot)

    def get(self, name: str) -> PluginHandle:
        """The handle of plugin ``name``, typed by its manifest's type."""
        slot = self._slot(name)
        live = slot.live
        if live is None:
            raise PluginNotFound(name, self._known_names())
        return HANDLE_TYPES[live.type](slot)

    def get_vectorizer(self, name: str) -> VectorizerHandle:
        """The vectorizer ``name`` (imports an installed one on first use)."""
        return self._typed(name, VectorizerHandle)

    def get_transformer(self, name: str) -> TransformerHandle:
        """The transformer ``name``."""
        return self._typed(name, TransformerHandle)

    def get_reranker(self, name: str) -> RerankerHandle:
        """The reranker ``name``."""
        return self._typed(name, RerankerHandle)

    def get_generator(self, name: str) -> GeneratorHandle:
        """The generator ``name``."""
        return self._typed(name, GeneratorHandle)

    def get_storage(self, name: str) -> StorageHandle:
        """The storage backend ``name``."""
        return self._typed(name, StorageHandle)

    def get_auth(self, name: str) -> AuthHandle:
        """The auth plugin ``name``."""
        return self._typed(name, AuthHandle)

    def pipeline(self, *names: str) -> Pipeline:
        """Chain transformers ``names`` (in order) into a :class:`~weaviate_ext.Pipeline`."""
        if not names:
            raise ValueError("a pipeline needs at least one transformer")
        return Pipeline([self.get_transformer(n) for n in names])

    def names(self, plugin_type: str | None = None) -> tuple[str, ...]:
        """Names of the loaded plugins, optionally of one type."""
        return tuple(
            sorted(
                n
                for n, s in self._loaded_slots()
                if s.live is not None and (plugin_type is None or s.live.type == plugin_type)
            )
        )

    # -- unload, reload, close ---------------------------------------------------------------

    def unload(self, name: str) -> None:
        """Unregister plugin ``name``; calls in flight finish before it is closed.

        Refused while other loaded plugins depend on it.
        """
        with self._lock:
            slot = self._slots.get(name)
            if slot is None or slot.live is None:
                raise PluginNotFound(name, self._known_names())
            users = dependencies.dependents(name, self._manifests())
            if users:
                raise DependencyError(name, f"cannot be unloaded: {', '.join(users)} depend on it")
            live = slot.live
            self.registry.unregister(name=name)
            slot.live = None
            del self._slots[name]
            self._host_config.pop(name, None)
        live.retire()
        log.info("unloaded plugin %s", name)
        self._notify("weaviate_ext_plugin_unloaded", name=name, manifest=live.manifest)

    def reload(
        self,
        name: str,
        path: str | os.PathLike[str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """Replace plugin ``name`` by the version at ``path`` (default: the same manifest).

        The new version is built, set up, health-checked and probed completely first;
        then it is swapped in atomically. Calls in flight finish on the old version,
        which is closed after the last of them. If anything fails, the old version keeps
        serving and the error is raised. ``config`` defaults to the previous host values.
        """
        with self._lock:
            self._check_open()
            slot = self._slots.get(name)
            if slot is None or slot.live is None:
                raise PluginNotFound(name, self._known_names())
            old = slot.live
            if path is None:
                if old.manifest.path is None:
                    raise PluginLoadError(name, "was not loaded from a file; give a path")
                path = old.manifest.path
            manifest = load_manifest(path)
            if manifest.name != name:
                raise PluginLoadError(name, f"{path} defines {manifest.name!r}, not {name!r}")
            if manifest.spec.type != old.type:
                raise PluginLoadError(
                    name, f"a reload cannot change its type ({old.type} -> {manifest.spec.type})"
                )
            self._check_dependents_accept(manifest)
            host_config = config if config is not None else self._host_config.get(name)
            self._check_dependencies(manifest)
            obj, resolved = self.builder.build(manifest, host_config, str(path))
            self.registry.unregister(name=name)
            try:
                live = self._register(obj, manifest, resolved, str(path))
            except Exception as exc:
                self.registry.register(old.obj, name=name)
                discard(obj, name)
                raise PluginLoadError(name, f"new version cannot be registered: {exc}") from None
            slot.live = live
            self._host_config[name] = host_config
        old.retire()
        log.info("reloaded plugin %s %s -> %s", name, old.manifest.version, manifest.version)
        self._notify("weaviate_ext_plugin_reloaded", name=name, old=old.manifest, new=manifest)

    def _check_dependents_accept(self, manifest: Manifest) -> None:
        for other, m in self._manifests().items():
            for dep in m.spec.dependencies:
                if dep.name == manifest.name and not dep.matches(manifest.version):
                    raise DependencyError(
                        manifest.name,
                        f"version {manifest.version} is outside {other!r}'s range {dep.version}",
                    )

    def _manifests(self) -> dict[str, Manifest]:
        return {n: s.live.manifest for n, s in self._loaded_slots() if s.live is not None}

    def close(self) -> None:
        """Unload every plugin (dependents first). The manager cannot load afterwards."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            remaining = self._manifests()
            order, _ = dependencies.load_order(list(remaining.values()))
            names = [m.name for m in order] + [
                n for n in remaining if n not in {m.name for m in order}
            ]
            for name in reversed(names):
                slot = self._slots.pop(name)
                live = slot.live
                slot.live = None
                if live is None:
                    continue
                self.registry.unregister(name=name)
                live.retire()
                self._notify("weaviate_ext_plugin_unloaded", name=name, manifest=live.manifest)

    # -- across plugins ----------------------------------------------------------------------------

    def _auth_plugins(self) -> tuple[list[pluggy.HookImpl], list[AuthHandle]]:
        """One ``authenticate`` implementation per auth plugin, in the registry's order
        (``tryfirst``/``trylast`` honoured), each calling the plugin through its handle
        (bulkhead, deadline, errors, host wrappers); and the handles in pluggy's call
        order (the reverse). Cached until the next register or unregister."""
        generation, impls, handles = self._auth_order
        if generation == self.registry.generation:
            return impls, handles
        with self._lock:
            generation = self.registry.generation
            impls, handles = [], []
            for impl in self.registry.hook.authenticate.get_hookimpls():
                slot = self._slots.get(impl.plugin_name)
                if slot is None or is_wrapper(impl):
                    continue
                handle = AuthHandle(slot)
                call = _authenticate_by(handle)
                impls.append(pluggy.HookImpl(impl.plugin, impl.plugin_name, call, impl.opts))
                handles.insert(0, handle)
            self._auth_order = (generation, impls, handles)
        return impls, handles

    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        """Ask the auth plugins in turn; the first that recognises the credentials answers.

        pluggy's ``firstresult`` call of ``authenticate`` over the auth plugins, in its
        order (the last loaded first; ``tryfirst``/``trylast`` honoured). Returns
        ``None`` when none does. An auth plugin that rejects credentials of its kind
        raises :class:`~weaviate_ext.AuthenticationError`, which is passed on.
        """
        if not isinstance(credentials, Mapping):
            raise InvalidInput(f"credentials must be a mapping, got {type(credentials).__name__}")
        kwargs = {"credentials": credentials, "deadline": None}
        impls, _ = self._auth_plugins()
        identity = self.registry._hookexec("authenticate", impls, kwargs, True)
        return identity  # type: ignore[return-value]

    def authorize(self, identity: Identity, resource: str, action: str) -> bool:
        """Ask every auth plugin (in ``authenticate``'s order): one deny wins; at least
        one allow is needed."""
        allowed = False
        for handle in self._auth_plugins()[1]:
            decision = handle.authorize(identity, resource, action)
            if decision is False:
                return False
            allowed = allowed or decision is True
        return allowed

    def stats(self) -> dict[str, PluginStats]:
        """Call counters of every loaded plugin, by name."""
        return {
            name: slot.live.counter.snapshot()
            for name, slot in sorted(self._loaded_slots())
            if slot.live is not None
        }

    def plugins(self) -> list[PluginStatus]:
        """Every plugin the manager knows: loaded, installed, disabled and broken."""
        rows: dict[str, PluginStatus] = {}
        for name, entry in self._installed.items():
            source = f"{entry.distribution} (entry point)"
            status = "disabled" if name in self._disabled else "installed"
            rows[name] = PluginStatus(name, status, source)
        rows.update(self._failures)
        for name, slot in self._loaded_slots():
            live = slot.live
            if live is None:
                continue
            spec = live.manifest.spec
            status, reason = _runtime_status(live)
            rows[name] = PluginStatus(
                name,
                status,
                live.source,
                live.manifest.version,
                spec.type,
                spec.runtime,
                reason=reason,
                isolation=self.builder.isolation(live.manifest, live.obj),
                permissions=describe(live.manifest, self.builder.grants.for_plugin(name)),
            )
        return [rows[n] for n in sorted(rows)]

    def manifest(self, name: str) -> Manifest:
        """The manifest of loaded plugin ``name``."""
        return self._slot(name).live.manifest  # type: ignore[union-attr]

    def permissions(self, name: str) -> dict[str, Any]:
        """What loaded plugin ``name`` requests (``spec.permissions``) and what the host
        grants it, side by side (:func:`weaviate_ext.grants.describe`)."""
        return describe(self.manifest(name), self.builder.grants.for_plugin(name))

    def config_of(self, name: str) -> PluginConfig:
        """The resolved configuration of loaded plugin ``name`` (secrets redacted in repr)."""
        return self._slot(name).live.config  # type: ignore[union-attr]

    # -- async --------------------------------------------------------------------------

    aload = awaitable(load)
    aload_directory = awaitable(load_directory)
    areload = awaitable(reload)
    aunload = awaitable(unload)
    aauthenticate = awaitable(authenticate)
    aauthorize = awaitable(authorize)
