"""``--reload``: watch the plugin directories and reload a plugin when its files change.

A change below a loaded plugin's directory (its manifest, its source, its binary)
reloads that plugin with the core's :meth:`~weaviate_ext.PluginManager.reload`: the new
version is built and probed before it is swapped in, calls in flight finish on the old
one, so no request fails during a reload, and a version that fails to build leaves the
old one serving (the error is logged). A new ``plugin.yaml`` below a ``--plugins``
directory is loaded. Changes are watched with ``watchfiles`` (its default filter skips
``__pycache__``, ``.git``, editor swap files and the like) and debounced, so one save of
several files reloads once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import anyio
import anyio.to_thread
from watchfiles import DefaultFilter, awatch

from weaviate_ext.errors import WeaviateExtError
from weaviate_ext.serve.state import ServeState

log = logging.getLogger("weaviate_ext.serve")

DEBOUNCE_MS = 300
"""Changes within this many milliseconds are handled together."""


def watch_roots(state: ServeState) -> list[Path]:
    """The directories to watch: ``--plugins`` directories and those of ``--plugin`` files
    (a directory inside another one is watched through it; an ``oci://`` artifact has
    none: it changes by a reload to a new tag)."""
    settings = state.settings
    candidates = [Path(d) for d in settings.plugin_dirs]
    candidates += [Path(f).parent for f in settings.plugin_files if not f.startswith("oci://")]
    resolved = sorted({c.resolve() for c in candidates if c.is_dir()}, key=lambda p: len(p.parts))
    roots: list[Path] = []
    for path in resolved:
        if not any(path.is_relative_to(root) for root in roots):
            roots.append(path)
    return roots


def affected_plugins(state: ServeState, paths: Iterable[Path]) -> tuple[list[str], list[Path]]:
    """What a set of changed files means: plugins to reload (each file belongs to the
    plugins of the deepest plugin directory holding it) and new manifests to load."""
    manager = state.manager
    if manager is None:
        return [], []
    directories: dict[Path, list[str]] = {}
    manifests: set[Path] = set()
    for name in manager.names():
        manifest = manager.manifest(name)
        if manifest.path is None:
            continue
        manifests.add(Path(manifest.path).resolve())
        directories.setdefault(Path(manifest.directory).resolve(), []).append(name)
    plugin_dirs = [Path(d).resolve() for d in state.settings.plugin_dirs]
    reload: list[str] = []
    new: list[Path] = []
    for path in sorted({p.resolve() for p in paths}):
        owners = [d for d in directories if path.is_relative_to(d)]
        if owners:
            deepest = max(owners, key=lambda d: len(d.parts))
            reload.extend(n for n in directories[deepest] if n not in reload)
        elif (
            path.name == "plugin.yaml"
            and path not in manifests
            and path.is_file()
            and any(path.is_relative_to(d) for d in plugin_dirs)
        ):
            new.append(path)
    return reload, new


async def apply_changes(state: ServeState, paths: Iterable[Path]) -> None:
    """Reload the plugins whose files changed and load new manifests."""
    manager = state.manager
    if manager is None:
        return
    reload, new = affected_plugins(state, paths)
    for name in reload:
        try:
            await anyio.to_thread.run_sync(manager.reload, name)
        except WeaviateExtError as exc:
            log.error("reload of %s failed, the old version keeps serving: %s", name, exc)
        else:
            log.info("reloaded plugin %s %s", name, manager.manifest(name).version)
    for path in new:
        try:
            await anyio.to_thread.run_sync(manager.load, path)
        except WeaviateExtError as exc:
            log.error("new plugin %s not loaded: %s", path, exc)
        else:
            log.info("loaded new plugin from %s", path)


async def watch(state: ServeState, stop: anyio.Event) -> None:
    """Watch until ``stop`` is set, applying each batch of changes."""
    roots = watch_roots(state)
    if not roots:
        log.warning("--reload: no plugin directory to watch")
        return
    log.info("--reload: watching %s", ", ".join(str(r) for r in roots))
    async for changes in awatch(
        *roots, watch_filter=DefaultFilter(), stop_event=stop, debounce=DEBOUNCE_MS, step=50
    ):
        await apply_changes(state, [Path(path) for _, path in changes])
