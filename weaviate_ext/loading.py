"""A manager's loaded plugins: loading, reloading and unloading them, in step with its registry.

Each loaded plugin has a :class:`~weaviate_ext.handles.Slot` that its handles hold; a
reload swaps the slot's :class:`~weaviate_ext.live.LivePlugin`, an unload empties it.
Every change of a slot is made together with the registration of the plugin object under
its name, undoing the registry's side when it fails, so the slots and the registry never
disagree. A new version is built off the registry first (:mod:`weaviate_ext.builder`),
so a failed load or reload leaves everything as it was. Loads, reloads and unloads hold
the manager's lock; calls through handles never wait for it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from weaviate_ext import dependencies, status
from weaviate_ext.builder import Builder, check_replaces, discard
from weaviate_ext.discovery import Packages, manifests_in
from weaviate_ext.dispatch import Registry
from weaviate_ext.errors import (
    DependencyError,
    PluginLoadError,
    PluginNotFound,
    WeaviateExtError,
)
from weaviate_ext.handles import Slot
from weaviate_ext.live import LivePlugin
from weaviate_ext.manifest import Manifest, PluginConfig, load_manifest
from weaviate_ext.status import LoadResult, PluginStatus

log = logging.getLogger("weaviate_ext")


def _as_path(path: str | os.PathLike[str]) -> tuple[Path, str]:
    return Path(path), os.fspath(path)


class Loader:
    """The plugins loaded into ``registry`` by name, and how each got there.

    :param config: the manager's host config per plugin name (for loads without one).
    :param default_timeout: the manager's per-call deadline (:class:`LivePlugin`).

    Observers hear of loads, reloads, unloads and failed calls through the lifecycle
    hooks (``weaviate_ext_plugin_loaded`` ...); an observer that raises is logged.
    """

    def __init__(
        self,
        registry: Registry,
        builder: Builder,
        packages: Packages,
        config: Mapping[str, Mapping[str, Any]],
        default_timeout: float | None,
    ) -> None:
        self.registry = registry
        self.builder = builder
        self.packages = packages
        self.config = config
        self.default_timeout = default_timeout
        self.lock = threading.RLock()
        """Held by every load, reload and unload (they are serialised)."""
        self.slots: dict[str, Slot] = {}
        """The slot of each loaded plugin, by name."""
        self.host_config: dict[str, Mapping[str, Any] | None] = {}
        """The host's config values each plugin was loaded with (reused by a reload)."""
        self.failures: dict[str, PluginStatus] = {}
        """Why each plugin (or unreadable manifest, by path) that failed is not loaded."""
        self._loading: set[str] = set()
        self._closed = False
        self.resolve: Callable[[str | os.PathLike[str]], tuple[Path, str]] = _as_path
        """Maps what a reload is given to ``(manifest path, source)``; the manager sets it
        to pull an ``oci://`` reference into the cache first."""

    def notify(self, hook_name: str, /, **kwargs: Any) -> None:
        """Call the observers' lifecycle hook ``hook_name`` (errors are logged)."""
        try:
            getattr(self.registry.hook, hook_name)(**kwargs)
        except Exception:
            log.exception("observer hook %s failed", hook_name)

    def call_failed(self, name: str, hook: str, error: BaseException) -> None:
        """Tell observers a call of plugin ``name`` failed (``weaviate_ext_call_failed``)."""
        self.notify("weaviate_ext_call_failed", name=name, hook=hook, error=error)

    # -- what is loaded ---------------------------------------------------------------------

    def snapshot(self) -> list[tuple[str, Slot]]:
        """The slots by name, safe to iterate while other threads load or unload."""
        with self.lock:
            return list(self.slots.items())

    def manifests(self) -> dict[str, Manifest]:
        """The manifest of each loaded plugin, by name."""
        return {n: s.live.manifest for n, s in self.snapshot() if s.live is not None}

    def known_names(self) -> list[str]:
        """Loaded and installed plugins' names (for :class:`PluginNotFound`)."""
        return sorted(set(self.slots) | set(self.packages.entries))

    def version_of(self, name: str) -> str | None:
        """The version of loaded plugin ``name``, or ``None``."""
        slot = self.slots.get(name)
        return slot.live.manifest.version if slot is not None and slot.live else None

    def slot(self, name: str) -> Slot:
        """The slot of ``name``, importing and loading an installed plugin on first use."""
        if name not in self.slots:
            if name not in self.packages.entries:
                raise PluginNotFound(name, self.known_names())
            self.load_package(name)
        return self.slots[name]

    def live(self, name: str) -> LivePlugin:
        """The version of ``name`` serving now (loading an installed one on first use)."""
        live = self.slot(name).live
        if live is None:
            raise PluginNotFound(name, self.known_names())
        return live

    def _current(self, name: str) -> LivePlugin:
        slot = self.slots.get(name)
        if slot is None or slot.live is None:
            raise PluginNotFound(name, self.known_names())
        return slot.live

    def record_failure(
        self, key: str, error: WeaviateExtError, source: str, manifest: Manifest | None = None
    ) -> None:
        """Remember why ``key`` (a name, or a manifest path) is not loaded, for ``plugins()``."""
        self.failures[key] = status.failure(key, error, source, manifest)

    # -- loading ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise WeaviateExtError("the plugin manager is closed")

    def _check_dependencies(self, manifest: Manifest) -> None:
        """Load the installed plugins ``manifest`` needs, then check every range."""
        installed = self.packages.entries
        dependencies.load_needed(manifest, self.slots, installed, self._loading, self.load_package)
        dependencies.check(manifest, self.version_of)

    def _register(
        self, obj: object, manifest: Manifest, config: PluginConfig, source: str
    ) -> LivePlugin:
        self.registry.register(obj, name=manifest.name)
        return LivePlugin(manifest, config, obj, self.registry, self.default_timeout, source)

    def load(self, manifest: Manifest, config: Mapping[str, Any] | None, source: str) -> Slot:
        """Build, register and announce plugin ``manifest`` (``config``: the host's values,
        default the manager's for its name); returns its new slot."""
        name = manifest.name
        with self.lock:
            self._check_open()
            if name in self.slots:
                where = self._current(name).source
                raise PluginLoadError(
                    name, f"is already loaded (from {where}); use reload() to replace it"
                )
            host_config = config if config is not None else self.config.get(name)
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
                self.record_failure(name, exc, source, manifest)
                raise
            finally:
                self._loading.discard(name)
            slot = self.slots[name] = Slot(live, self.call_failed)
            self.host_config[name] = host_config
            self.failures.pop(name, None)
        spec = manifest.spec
        log.info(
            "loaded plugin %s %s (%s, runtime %s) from %s",
            *(name, manifest.version, spec.type, spec.runtime, source),
        )
        self.notify("weaviate_ext_plugin_loaded", name=name, manifest=manifest)
        return slot

    def load_directory(
        self, directory: str | os.PathLike[str], config: Mapping[str, Mapping[str, Any]]
    ) -> LoadResult:
        """Load every ``plugin.yaml`` below ``directory``, dependencies first, reporting
        (and logging) the ones that fail."""
        root = Path(directory)
        if not root.is_dir():
            raise WeaviateExtError(f"{root}: not a directory")
        manifests, failed = manifests_in(root)
        loaded = dependencies.load_in_order(
            manifests, failed, lambda m: self.load(m, config.get(m.name), str(m.path))
        )
        by_name = {m.name: m for m in manifests}
        for key, error in failed.items():
            log.error("plugin %s not loaded: %s", key, error)
            if key not in self.failures:
                manifest = by_name.get(key)
                self.record_failure(key, error, str(manifest.path) if manifest else key, manifest)
        return LoadResult(tuple(loaded), failed)

    def load_installed(self, names: Iterable[str] | None) -> LoadResult:
        """Import and load installed plugins (all of them, or ``names``)."""
        loaded: list[str] = []
        failed: dict[str, WeaviateExtError] = {}
        for name in sorted(self.packages.entries if names is None else names):
            if name in self.slots:
                continue
            try:
                self.load_package(name)
            except WeaviateExtError as exc:
                failed[name] = exc
            else:
                loaded.append(name)
        return LoadResult(tuple(loaded), failed)

    def load_package(self, name: str) -> None:
        """Import the installed package of plugin ``name`` and load what it ships."""
        if name not in self.packages.entries:
            raise PluginNotFound(name, self.known_names())
        with self.lock:
            self.builder.check_enabled(name)  # before the package is imported
            self.packages.load(name, self.slots, self._load_shipped, self.record_failure)

    def _load_shipped(self, manifest: Manifest, source: str) -> Slot:
        return self.load(manifest, None, source)

    # -- reload, unload ---------------------------------------------------------------------

    def reload(
        self, name: str, path: str | os.PathLike[str] | None, config: Mapping[str, Any] | None
    ) -> None:
        """Build the version of ``name`` at ``path`` off the registry, then swap it into
        its slot; the old version is retired (closed after its last call in flight)."""
        source: str | None = None
        if path is not None:  # an oci:// reference is pulled and verified before the lock
            path, source = self.resolve(path)
        with self.lock:
            self._check_open()
            old = self._current(name)
            if path is None:
                if old.manifest.path is None:
                    raise PluginLoadError(name, "was not loaded from a file; give a path")
                path = old.manifest.path
            if source is None:
                source = str(path)
            manifest = load_manifest(path)
            check_replaces(old.manifest, manifest, path)
            dependencies.check_dependents(manifest, self.manifests())
            host_config = config if config is not None else self.host_config.get(name)
            self._check_dependencies(manifest)
            obj, resolved = self.builder.build(manifest, host_config, source)
            self.registry.unregister(name=name)
            try:
                live = self._register(obj, manifest, resolved, source)
            except Exception as exc:
                self.registry.register(old.obj, name=name)
                discard(obj, name)
                raise PluginLoadError(name, f"new version cannot be registered: {exc}") from None
            self.slots[name].live = live
            self.host_config[name] = host_config
        old.retire()
        log.info("reloaded plugin %s %s -> %s", name, old.manifest.version, manifest.version)
        self.notify("weaviate_ext_plugin_reloaded", name=name, old=old.manifest, new=manifest)

    def _remove(self, name: str) -> LivePlugin | None:
        """Unregister ``name`` and empty its slot; returns the version that served."""
        slot = self.slots.pop(name)
        self.host_config.pop(name, None)
        live = slot.live
        if live is not None:
            self.registry.unregister(name=name)
        slot.live = None
        return live

    def unload(self, name: str) -> None:
        """Unregister ``name`` (refused while loaded plugins depend on it) and retire it."""
        with self.lock:
            self._current(name)
            users = dependencies.dependents(name, self.manifests())
            if users:
                raise DependencyError(name, f"cannot be unloaded: {', '.join(users)} depend on it")
            live = self._remove(name)
        assert live is not None
        live.retire()
        log.info("unloaded plugin %s", name)
        self.notify("weaviate_ext_plugin_unloaded", name=name, manifest=live.manifest)

    def close(self) -> None:
        """Unload every plugin, dependents first; nothing loads afterwards."""
        with self.lock:
            if self._closed:
                return
            self._closed = True
            for name in dependencies.unload_order(self.manifests()):
                live = self._remove(name)
                if live is not None:
                    live.retire()
                    self.notify("weaviate_ext_plugin_unloaded", name=name, manifest=live.manifest)
